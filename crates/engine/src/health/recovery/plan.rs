//! The recovery plan of a server: its base installer (the server's, the config's default, or
//! a recorded `role: base` deployment), the other recorded bases, then the recorded apps in
//! `depends_on` order, each with its recorded inputs.

use crate::health::service::HealthService;
use ptui_catalog::{Catalog, Installer, Role};
use ptui_types::records::Deployment;
use ptui_types::server::Server;
use std::collections::BTreeMap;

/// One step of a recovery plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub app_id: String,
    pub inputs: BTreeMap<String, String>,
}

/// Why a plan cannot run at all (retrying will not help).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanError(pub String);

fn inputs_of(v: &serde_json::Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(m) = v.as_object() {
        for (k, v) in m {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            out.insert(k.clone(), s);
        }
    }
    out
}

/// Topological order over `depends_on` among `group` (dependencies outside it are ignored),
/// otherwise by app id.
fn in_dependency_order<'a>(
    catalog: &Catalog,
    group: &[&'a Deployment],
) -> Result<Vec<&'a Deployment>, PlanError> {
    let mut done: Vec<&Deployment> = Vec::new();
    while done.len() < group.len() {
        let ready = |d: &&&Deployment| {
            !done.iter().any(|x| x.app_id == d.app_id)
                && catalog.get(&d.app_id).is_none_or(|i| {
                    i.manifest.depends_on.iter().all(|dep| {
                        done.iter().any(|x| &x.app_id == dep)
                            || !group.iter().any(|a| &a.app_id == dep)
                    })
                })
        };
        match group.iter().find(ready) {
            Some(d) => done.push(d),
            None => return Err(PlanError("the deployments' depends_on form a cycle".into())),
        }
    }
    Ok(done)
}

/// Sensitive inputs are recorded masked; their values are sealed apart (`secrets.rs`). A
/// masked one is dropped from the step (the launch fills it in from the sealed copy); one
/// with no usable sealed copy makes the step impossible.
fn unmasked(
    installer: &Installer,
    inputs: &mut BTreeMap<String, String>,
    server: &Server,
    stored: Result<BTreeMap<String, String>, crate::secrets::Unsealable>,
) -> Result<(), PlanError> {
    let id = &installer.manifest.id;
    for spec in &installer.manifest.inputs {
        if spec.is_sensitive()
            && inputs
                .get(&spec.name)
                .is_some_and(|v| v == ptui_types::secret::MASK)
        {
            let why = match &stored {
                Ok(v) if v.contains_key(&spec.name) => {
                    inputs.remove(&spec.name);
                    continue;
                }
                Ok(_) => "its value was not recorded".to_string(),
                Err(e) => e.to_string(),
            };
            return Err(PlanError(format!(
                "cannot redeploy {id}: its sensitive input `{}` was stored masked and {why}; \
                 reinstall {id} by hand with `provision-tui install {id} --on {} --set-env {}=VAR`",
                spec.name, server.name, spec.name
            )));
        }
    }
    Ok(())
}

impl HealthService {
    /// The base installer then the apps in dependency order.
    pub fn recovery_plan(&self, server: &Server) -> Result<Vec<Step>, PlanError> {
        let store = self.engine.store();
        let catalog = self.engine.catalog();
        let deployments = store
            .deployments(Some(server.id))
            .map_err(|e| PlanError(format!("{e:#}")))?;
        let policy = store.health_policy(server.id).unwrap_or_default();
        let role = |id: &str| catalog.get(id).map(|i| i.manifest.role);
        let base_id = policy
            .base_installer
            .clone()
            .or_else(|| self.cfg.recovery.base_installer.clone())
            .or_else(|| {
                deployments
                    .iter()
                    .find(|d| role(&d.app_id) == Some(Role::Base))
                    .map(|d| d.app_id.clone())
            });
        let mut steps = Vec::new();
        if let Some(b) = &base_id {
            let installer = catalog
                .get(b)
                .ok_or_else(|| PlanError(format!("base installer {b} is not in the catalog")))?;
            let mut inputs = deployments
                .iter()
                .find(|d| &d.app_id == b)
                .map(|d| inputs_of(&d.inputs))
                .unwrap_or_default();
            let stored = self.engine.stored_secrets(server.id, b);
            unmasked(installer, &mut inputs, server, stored)?;
            steps.push(Step {
                app_id: b.clone(),
                inputs,
            });
        }
        // Other recorded base deployments are part of the server's state too: after the
        // chosen base, before the apps.
        let (bases, apps): (Vec<_>, Vec<_>) = deployments
            .iter()
            .filter(|d| Some(&d.app_id) != base_id.as_ref())
            .partition(|d| role(&d.app_id) == Some(Role::Base));
        for group in [bases, apps] {
            for d in in_dependency_order(&catalog, &group)? {
                let installer = catalog.get(&d.app_id).ok_or_else(|| {
                    PlanError(format!(
                        "{} is deployed but no longer in the catalog",
                        d.app_id
                    ))
                })?;
                let mut inputs = inputs_of(&d.inputs);
                let stored = self.engine.stored_secrets(server.id, &d.app_id);
                unmasked(installer, &mut inputs, server, stored)?;
                steps.push(Step {
                    app_id: d.app_id.clone(),
                    inputs,
                });
            }
        }
        if steps.is_empty() {
            return Err(PlanError(
                "nothing to re-provision: no base installer configured and no recorded deployments"
                    .into(),
            ));
        }
        Ok(steps)
    }
}
