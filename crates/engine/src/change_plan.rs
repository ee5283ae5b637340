//! `install|upgrade|uninstall --plan`: what a fan-out would do, computed from the same
//! validation and targeting as the run, without writing anything or contacting a server.
//! The dashboard's review step shows the same `ChangePlan` (`Engine::plan_fanout`).

use crate::engine::{Engine, RequestError};
use crate::jobs::fanout::{FanoutRequest, default_concurrency, fd_bound};
use ptui_catalog::ScriptKind;
use ptui_catalog::pins::{PinStatus, sha256_hex};
use ptui_types::job::JobAction;
use ptui_types::secret::MASK;
use serde::Serialize;
use std::collections::BTreeMap;

/// What a run would do.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChangePlan {
    pub app: String,
    pub action: String,
    pub version: String,
    /// The script a run sends, and its sha256.
    pub script: String,
    pub script_sha256: String,
    /// `pinned`, `unpinned` or `mismatch` (a mismatch is refused before this plan is made).
    pub pin: String,
    pub concurrency: usize,
    pub max_fail: Option<usize>,
    /// Server names per rolling batch, in run order.
    pub batches: Vec<Vec<String>>,
    pub servers: Vec<PlannedServer>,
    pub skipped: Vec<SkippedServer>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlannedServer {
    pub name: String,
    pub status: String,
    pub batch: usize,
    /// `new`, `no-op`, `changed`, `upgrade`, `remove` or `absent` (uninstall of an app it
    /// does not have).
    pub change: String,
    /// The inputs the job would get, secrets as `***`.
    pub inputs: BTreeMap<String, String>,
    /// What differs from the recorded deployment (secrets as `***` both sides).
    pub changes: Vec<InputChange>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InputChange {
    pub input: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SkippedServer {
    pub name: String,
    /// `status`, `lease` or `host_key`.
    pub kind: String,
    pub reason: String,
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Engine {
    /// The plan of a fan-out: reads only (database, catalog, known_hosts, key file).
    pub fn plan_fanout(&self, req: &FanoutRequest) -> Result<ChangePlan, RequestError> {
        let (prepared, excluded) = self.prepare_fanout(req)?;
        let installer = &prepared.installer;
        let kind = ScriptKind::of(req.action);
        let mut skipped: Vec<SkippedServer> = excluded
            .into_iter()
            .map(|(name, reason)| SkippedServer {
                name,
                kind: "status".into(),
                reason,
            })
            .collect();
        let ttl = self.config().jobs.lease_ttl.as_millis() as i64;
        let mut runnable = Vec::new();
        for s in &prepared.servers {
            if let Ok(Some(l)) = self.store().active_lease(s.id, ttl) {
                let job = l
                    .job_id
                    .map(|j| format!("job #{j}"))
                    .unwrap_or("a job".into());
                skipped.push(SkippedServer {
                    name: s.name.clone(),
                    kind: "lease".into(),
                    reason: format!(
                        "{job} ({}) holds it; a run would wait for it to end",
                        l.holder
                    ),
                });
                continue;
            }
            if s.jump.is_none()
                && self
                    .known_hosts()
                    .recorded_algorithms(&s.host, s.port)
                    .is_empty()
            {
                skipped.push(SkippedServer {
                    name: s.name.clone(),
                    kind: "host_key".into(),
                    reason: format!(
                        "no trusted host key for {}:{}; a run would fail to connect (`provision-tui server trust {}`)",
                        s.host, s.port, s.name
                    ),
                });
                continue;
            }
            runnable.push(s);
        }
        let total = runnable.len();
        let size = req
            .batch
            .map(|b| b.batch_size(total))
            .unwrap_or(total)
            .max(1);
        let batches: Vec<Vec<String>> = runnable
            .chunks(size)
            .map(|c| c.iter().map(|s| s.name.clone()).collect())
            .collect();
        let deployments = self.store().deployments(None).unwrap_or_default();
        let mut servers = Vec::new();
        for (bi, batch) in runnable.chunks(size).enumerate() {
            for s in batch {
                let inputs = prepared.inputs_for(s);
                let masked: BTreeMap<String, String> = inputs
                    .masked_json()
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                    .unwrap_or_default();
                let recorded = deployments
                    .iter()
                    .find(|d| d.server_id == s.id && d.app_id == installer.manifest.id);
                let stored = self
                    .stored_secrets(s.id, &installer.manifest.id)
                    .unwrap_or_default();
                let mut changes = Vec::new();
                if let Some(d) = recorded {
                    let old: BTreeMap<String, String> = d
                        .inputs
                        .as_object()
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                        .unwrap_or_default();
                    for name in old
                        .keys()
                        .chain(masked.keys())
                        .collect::<std::collections::BTreeSet<_>>()
                    {
                        let (from, to) = (old.get(name), masked.get(name));
                        // A secret compares by its sealed value, shown masked either way.
                        let secret_changed = to.is_some_and(|t| t == MASK)
                            && inputs
                                .inputs
                                .iter()
                                .find(|i| &i.name == name)
                                .is_some_and(|i| {
                                    stored.get(name).map(String::as_str) != Some(i.value.expose())
                                });
                        if from != to || secret_changed {
                            changes.push(InputChange {
                                input: name.clone(),
                                from: from.cloned(),
                                to: to.cloned(),
                            });
                        }
                    }
                }
                let change = match (req.action, recorded) {
                    (JobAction::Uninstall, Some(_)) => "remove",
                    (JobAction::Uninstall, None) => "absent",
                    (JobAction::Upgrade, Some(d))
                        if d.app_version != installer.manifest.version =>
                    {
                        "upgrade"
                    }
                    (_, None) => "new",
                    (_, Some(d))
                        if changes.is_empty() && d.app_version == installer.manifest.version =>
                    {
                        "no-op"
                    }
                    _ => "changed",
                };
                if req.action == JobAction::Uninstall {
                    changes.clear();
                }
                servers.push(PlannedServer {
                    name: s.name.clone(),
                    status: s.status.to_string(),
                    batch: bi + 1,
                    change: change.into(),
                    inputs: masked,
                    changes,
                });
            }
        }
        let script = installer.script_path(kind).unwrap_or("").to_string();
        Ok(ChangePlan {
            app: installer.manifest.id.clone(),
            action: prepared.action.as_str().to_string(),
            version: installer.manifest.version.clone(),
            script_sha256: installer
                .script(kind)
                .map(|b| sha256_hex(b.as_bytes()))
                .unwrap_or_default(),
            script,
            pin: match installer.pin {
                PinStatus::Pinned => "pinned",
                PinStatus::Unpinned => "unpinned",
                PinStatus::Mismatch(_) => "mismatch",
            }
            .into(),
            concurrency: req
                .concurrency
                .unwrap_or_else(|| default_concurrency(total))
                .clamp(1, fd_bound()),
            max_fail: req.max_fail.map(|m| m.tolerated(total)),
            batches,
            servers,
            skipped,
        })
    }
}
