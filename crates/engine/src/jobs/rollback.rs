//! `rollback APP --on SERVER`: back to the deployment the current one replaced, on purpose.
//! The job runs the install script with that deployment's inputs (its secrets unsealed from
//! the store) inside the configuration guard, which first puts back the configuration copy
//! kept on the server when that deployment was replaced (`config_guard.rs`).

use crate::engine::{Engine, InstallRequest, RequestError};
use ptui_store::deployment_history::PastDeployment;
use ptui_types::job::{Job, JobAction};
use ptui_types::server::Server;
use std::collections::BTreeMap;

/// What a rollback goes back to, for the CLI and the dashboard to show before they start it.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct RollbackTarget {
    pub server: String,
    pub app: String,
    /// The installer version that deployment was made with.
    pub app_version: String,
    /// Its inputs, secrets masked.
    pub inputs: serde_json::Value,
    /// The job that made it, and the one that replaced it (whose copy holds its configuration).
    pub job_id: Option<i64>,
    pub replaced_by_job: i64,
    pub replaced_at: i64,
}

impl Engine {
    /// The server and the deployment of `app` on it that the current one replaced.
    fn past_deployment(
        &self,
        app: &str,
        server: &str,
    ) -> Result<(Server, PastDeployment), RequestError> {
        let invalid = |e: color_eyre::Report| RequestError::Invalid(e.to_string());
        let s = self.store().require_server(server).map_err(invalid)?;
        let past = self
            .store()
            .previous_deployment(s.id, app)
            .map_err(invalid)?
            .ok_or_else(|| {
                RequestError::Invalid(format!(
                    "no earlier deployment of {app} on {server} is recorded: a rollback returns to the deployment a successful install or upgrade replaced"
                ))
            })?;
        Ok((s, past))
    }

    /// The deployment `rollback` would return to; an error says why there is none.
    pub fn rollback_target(&self, app: &str, server: &str) -> Result<RollbackTarget, RequestError> {
        let (s, past) = self.past_deployment(app, server)?;
        Ok(RollbackTarget {
            server: s.name,
            app: past.app_id,
            app_version: past.app_version,
            inputs: past.inputs,
            job_id: past.job_id,
            replaced_by_job: past.replaced_by_job,
            replaced_at: past.replaced_at,
        })
    }

    /// Starts the rollback job of `app` on `server` (see the module).
    pub fn start_rollback(&self, app: &str, server: &str) -> Result<Job, RequestError> {
        let (s, past) = self.past_deployment(app, server)?;
        let installer = self
            .catalog()
            .require(app)
            .map_err(RequestError::Invalid)?
            .clone();
        if installer.manifest.configuration.is_none() {
            return Err(RequestError::Invalid(format!(
                "installer {app} declares no configuration (`configuration:` in its manifest), so no copy of it was kept; reinstall it with the inputs you want instead"
            )));
        }
        let mut inputs = BTreeMap::new();
        if let Some(obj) = past.inputs.as_object() {
            for (k, v) in obj {
                let text = match v {
                    serde_json::Value::String(t) if t == "***" => continue,
                    serde_json::Value::String(t) => t.clone(),
                    serde_json::Value::Null => continue,
                    other => other.to_string(),
                };
                inputs.insert(k.clone(), text);
            }
        }
        if let Some(blob) = &past.sealed_secrets {
            let key = self.secrets_key(false).ok().flatten().ok_or_else(|| {
                RequestError::Invalid(format!(
                    "the secrets of the earlier deployment of {app} on {server} are sealed, and the secrets key ({}) is missing",
                    self.config().secrets_key_path.display()
                ))
            })?;
            let secrets = crate::secrets::unseal(&key, s.id, app, blob).map_err(|why| {
                RequestError::Invalid(format!(
                    "the secrets of the earlier deployment of {app} on {server} cannot be opened ({why}); reinstall it with its secrets instead"
                ))
            })?;
            inputs.extend(secrets);
        }
        let req = InstallRequest {
            app: app.to_string(),
            servers: vec![s.name.clone()],
            inputs,
            action: JobAction::Rollback,
        };
        let mut prepared = self.prepare_install(&req, true)?;
        prepared.restore_from = Some(past.replaced_by_job);
        let server = prepared
            .servers
            .first()
            .cloned()
            .ok_or_else(|| RequestError::Invalid(format!("server {server} takes no jobs")))?;
        self.launch_one(&prepared, &server, None)
    }
}
