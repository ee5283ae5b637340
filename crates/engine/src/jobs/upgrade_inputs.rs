//! `upgrade` on many servers: one set of given inputs, each server's missing ones filled from
//! its own recorded deployment of the app. A server left without a value for a required input
//! refuses the whole request before anything runs.

use crate::engine::{Engine, RequestError};
use ptui_catalog::{InputError, Installer, ResolvedInputs, resolve_inputs};
use ptui_types::server::Server;
use std::collections::{BTreeMap, HashMap};

/// Per server id: the inputs its upgrade job sends, and their masked JSON.
pub(crate) type PerServer = HashMap<i64, (ResolvedInputs, serde_json::Value)>;

/// The values a server's upgrade runs with: its recorded inputs (declared, not masked secrets),
/// then `given` over them.
fn merged(
    installer: &Installer,
    recorded: Option<&serde_json::Value>,
    given: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for spec in &installer.manifest.inputs {
        // Secrets are recorded as `***`: never a value to send.
        if spec.is_sensitive() {
            continue;
        }
        if let Some(v) = recorded
            .and_then(|r| r.get(&spec.name))
            .and_then(|v| v.as_str())
        {
            out.insert(spec.name.clone(), v.to_string());
        }
    }
    out.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

impl Engine {
    /// Resolves each server's upgrade inputs. Errors name the server and the input; a required
    /// secret the upgrade script does not read is not demanded (`missing_secrets` already
    /// refused the ones it reads).
    pub(crate) fn upgrade_inputs(
        &self,
        installer: &Installer,
        given: &BTreeMap<String, String>,
        servers: &[Server],
    ) -> Result<PerServer, RequestError> {
        let app = &installer.manifest.id;
        let mut out = PerServer::new();
        let mut errors = Vec::new();
        for s in servers {
            let deployments = self
                .store()
                .deployments(Some(s.id))
                .map_err(|e| RequestError::Invalid(e.to_string()))?;
            let recorded = deployments.iter().find(|d| &d.app_id == app);
            let values = merged(installer, recorded.map(|d| &d.inputs), given);
            let resolved = match resolve_inputs(&installer.manifest, &values) {
                Ok(r) => r,
                Err(errs) => {
                    let secret = |name: &str| {
                        installer
                            .manifest
                            .inputs
                            .iter()
                            .any(|i| i.name == name && i.is_sensitive())
                    };
                    let real: Vec<InputError> = errs
                        .into_iter()
                        .filter(|e| !(e.message == "is required" && secret(&e.input)))
                        .collect();
                    if real.is_empty() {
                        super::launch::relaxed_inputs(installer, &values)
                    } else {
                        for e in real {
                            let message = if e.message == "is required" {
                                let why = if recorded.is_some() {
                                    format!(
                                        "the recorded deployment of {app} on server {} has no \
                                         value for it",
                                        s.name
                                    )
                                } else {
                                    format!("server {} has no recorded deployment of {app}", s.name)
                                };
                                format!(
                                    "is required, and {why}; nothing was started (pass --set {}=VALUE, \
                                     or leave {} out)",
                                    e.input, s.name
                                )
                            } else {
                                format!("on server {}: {}", s.name, e.message)
                            };
                            errors.push(InputError {
                                input: e.input,
                                message,
                            });
                        }
                        continue;
                    }
                }
            };
            let masked = resolved.masked_json();
            out.insert(s.id, (resolved, masked));
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(RequestError::Inputs {
                app: app.clone(),
                errors,
            })
        }
    }
}
