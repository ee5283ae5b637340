//! Automatic recovery. For a server whose policy is `auto`, a confirmed (DOWN) incident of a
//! recoverable kind waits `grace`, then each attempt re-runs the base installer (the server's,
//! the config's default, or a recorded `role: base` deployment) and redeploys every recorded
//! app in `depends_on` order with its recorded inputs, each step a normal job linked to the
//! incident. Attempts are limited, with doubling backoff; after the last failure the incident
//! is `failed` and people are told. Never during maintenance, never while the host key changed.
//! An operator setting `force_rebuild` runs the same procedure at once, whatever the policy.

use super::notify::{Message, Topic};
use super::service::{HealthService, lock};
use super::{IncidentKind, IncidentState, RecoveryPolicy};
use crate::catalog::Role;
use crate::engine::{Event, InstallRequest};
use crate::fleet::Server;
use crate::jobs::job::{JobAction, JobStatus};
use crate::store::incidents::Incident;
use crate::store::now_ms;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
            if catalog.get(b).is_none() {
                return Err(PlanError(format!(
                    "base installer {b} is not in the catalog"
                )));
            }
            let inputs = deployments
                .iter()
                .find(|d| &d.app_id == b)
                .map(|d| inputs_of(&d.inputs))
                .unwrap_or_default();
            steps.push(Step {
                app_id: b.clone(),
                inputs,
            });
        }
        let apps: Vec<_> = deployments
            .iter()
            .filter(|d| Some(&d.app_id) != base_id.as_ref() && role(&d.app_id) != Some(Role::Base))
            .collect();
        // Topological order over depends_on (among deployed apps), stable by app id.
        let mut done: Vec<String> = Vec::new();
        while done.len() < apps.len() {
            let next = apps.iter().find(|d| {
                !done.contains(&d.app_id)
                    && catalog.get(&d.app_id).is_none_or(|i| {
                        i.manifest
                            .depends_on
                            .iter()
                            .all(|dep| done.contains(dep) || !apps.iter().any(|a| &a.app_id == dep))
                    })
            });
            match next {
                Some(d) => done.push(d.app_id.clone()),
                None => return Err(PlanError("the deployments' depends_on form a cycle".into())),
            }
        }
        for id in done {
            let Some(d) = apps.iter().find(|d| d.app_id == id) else {
                continue;
            };
            let installer = catalog.get(&id).ok_or_else(|| {
                PlanError(format!("{id} is deployed but no longer in the catalog"))
            })?;
            let inputs = inputs_of(&d.inputs);
            for spec in &installer.manifest.inputs {
                if spec.is_sensitive()
                    && inputs
                        .get(&spec.name)
                        .is_some_and(|v| v == crate::secret::MASK)
                {
                    return Err(PlanError(format!(
                        "cannot redeploy {id}: its sensitive input `{}` was stored masked and its value is not \
                         available; reinstall {id} by hand with `provision-tui install {id} --on {} --set-env {}=VAR`",
                        spec.name, server.name, spec.name
                    )));
                }
            }
            steps.push(Step { app_id: id, inputs });
        }
        if steps.is_empty() {
            return Err(PlanError(
                "nothing to re-provision: no base installer configured and no recorded deployments"
                    .into(),
            ));
        }
        Ok(steps)
    }

    /// Starts recovery for incidents whose grace has passed (policy `auto` only).
    pub fn recovery_tick(self: Arc<Self>) {
        let store = self.engine.store();
        let open = store.open_incidents().unwrap_or_default();
        let now = now_ms();
        let grace = self.cfg.recovery.grace.0.as_millis() as i64;
        for inc in &open {
            let Some(sid) = inc.server_id else { continue };
            let ready = match inc.state {
                IncidentState::Detected => now - inc.opened_at >= grace,
                // Left recovering by a process that stopped: pick it up again.
                IncidentState::Recovering => inc.next_attempt_at.is_none_or(|t| now >= t),
                _ => false,
            };
            if !ready || !inc.kind.recoverable() || inc.kind == IncidentKind::ForceRebuild {
                continue;
            }
            if store
                .health_policy(sid)
                .map(|p| p.recovery)
                .unwrap_or_default()
                != RecoveryPolicy::Auto
            {
                continue;
            }
            if lock(&self.recovering).contains(&sid) {
                continue;
            }
            self.clone().start_recovery(inc.clone());
        }
    }

    /// An operator set `force_rebuild`: recover now, whatever the policy.
    pub fn force_rebuild(self: Arc<Self>, server: &Server) {
        if lock(&self.recovering).contains(&server.id) {
            return;
        }
        let store = self.engine.store();
        let existing = store
            .open_incidents()
            .unwrap_or_default()
            .into_iter()
            .find(|i| i.server_id == Some(server.id) && i.kind == IncidentKind::ForceRebuild);
        let inc = match existing {
            Some(i) if i.state == IncidentState::Failed => return,
            Some(i) => i,
            None => match store.open_incident(
                server.id,
                IncidentKind::ForceRebuild,
                None,
                "force_rebuild set by an operator",
            ) {
                Ok(Some(o)) => {
                    self.engine.emit(Event::IncidentChanged {
                        incident: o.incident.clone(),
                    });
                    o.incident
                }
                _ => return,
            },
        };
        self.start_recovery(inc);
    }

    fn start_recovery(self: Arc<Self>, inc: Incident) {
        let Some(sid) = inc.server_id else { return };
        if !lock(&self.recovering).insert(sid) {
            return;
        }
        tokio::spawn(async move {
            self.recover(inc).await;
            lock(&self.recovering).remove(&sid);
        });
    }

    fn set_state(
        &self,
        inc: &Incident,
        state: IncidentState,
        msg: &str,
        attempts: Option<i64>,
        next: Option<i64>,
    ) -> Option<Incident> {
        match self
            .engine
            .store()
            .update_incident(inc.id, state, msg, attempts, next)
        {
            Ok(i) => {
                self.engine.emit(Event::IncidentChanged {
                    incident: i.clone(),
                });
                Some(i)
            }
            Err(e) => {
                tracing::error!("incident #{}: {e:#}", inc.id);
                None
            }
        }
    }

    fn give_up(&self, inc: &Incident, msg: &str) {
        if let Some(i) = self.set_state(inc, IncidentState::Failed, msg, None, None) {
            tracing::error!("incident #{}: {msg}", inc.id);
            if self.maintenance().reason(&i.server).is_none() {
                self.notifier
                    .send(Message::incident(Topic::IncidentFailed, &i, msg));
            }
        }
    }

    /// Why recovery may not run now, if it may not.
    fn blocked(&self, server: &Server) -> Option<String> {
        if let Some(m) = self.maintenance().reason(&server.name) {
            return Some(format!("server in maintenance ({m})"));
        }
        if server.status.is_operator_hold() {
            return Some(format!("server is {}", server.status));
        }
        let hk = self
            .engine
            .store()
            .open_incidents()
            .unwrap_or_default()
            .into_iter()
            .any(|i| i.server_id == Some(server.id) && i.kind == IncidentKind::HostKeyChanged);
        hk.then(|| "the server's host key changed".to_string())
    }

    async fn recover(&self, mut inc: Incident) {
        let store = self.engine.store().clone();
        let r = &self.cfg.recovery;
        let max = i64::from(r.max_attempts.max(1));
        let Some(sid) = inc.server_id else { return };
        while inc.attempts < max {
            let Ok(Some(server)) = store.server_by_id(sid) else {
                return;
            };
            if let Some(why) = self.blocked(&server) {
                store
                    .incident_event(inc.id, &format!("recovery postponed: {why}"), None)
                    .ok();
                let next = now_ms() + r.backoff.0.as_millis() as i64;
                self.set_state(
                    &inc,
                    IncidentState::Detected,
                    &format!("waiting: {why}"),
                    None,
                    Some(next),
                );
                return;
            }
            let plan = match self.recovery_plan(&server) {
                Ok(p) => p,
                Err(PlanError(msg)) => return self.give_up(&inc, &msg),
            };
            let attempt = inc.attempts + 1;
            let names: Vec<&str> = plan.iter().map(|s| s.app_id.as_str()).collect();
            let Some(i) = self.set_state(
                &inc,
                IncidentState::Recovering,
                &format!("recovery attempt {attempt}/{max}: {}", names.join(" -> ")),
                Some(attempt),
                None,
            ) else {
                return;
            };
            inc = i;
            let outcome = self.run_plan(&inc, &server, &plan, attempt).await;
            let Ok(current) = store.incident(inc.id) else {
                return;
            };
            if !current.is_open() {
                return;
            }
            let wait = r.backoff.0 * 2u32.saturating_pow((attempt - 1) as u32);
            match outcome {
                Ok(()) if inc.kind == IncidentKind::ForceRebuild => {
                    if let Ok(res) = store.resolve_incident(inc.id, "rebuilt") {
                        self.notifier.send(Message::incident(
                            Topic::IncidentResolved,
                            &res.incident,
                            "rebuilt",
                        ));
                        self.engine.emit(Event::IncidentChanged {
                            incident: res.incident,
                        });
                    }
                    return;
                }
                Ok(()) => {
                    store
                        .incident_event(inc.id, &format!("attempt {attempt}: every job succeeded; waiting for the checks to confirm"), None)
                        .ok();
                    if self.wait_for_checks(inc.id, sid, wait).await {
                        return;
                    }
                    if attempt >= max {
                        return self.give_up(
                            &inc,
                            &format!("the checks still fail after {max} recovery attempts"),
                        );
                    }
                }
                Err(msg) if attempt >= max => {
                    return self.give_up(
                        &inc,
                        &format!("recovery failed after {max} attempts: {msg}"),
                    );
                }
                Err(msg) => {
                    let next = now_ms() + wait.as_millis() as i64;
                    if let Some(i) = self.set_state(
                        &inc,
                        IncidentState::Recovering,
                        &format!(
                            "attempt {attempt} failed: {msg}; next attempt in {}",
                            super::human_ms(wait.as_millis() as i64)
                        ),
                        None,
                        Some(next),
                    ) {
                        inc = i;
                    }
                    tokio::time::sleep(wait).await;
                    match store.incident(inc.id) {
                        Ok(i) if i.is_open() => inc = i,
                        _ => return,
                    }
                }
            }
        }
    }

    /// After a successful plan the incident resolves through the checks. Waits until it
    /// closes (true), or until enough fresh checks of the server have run to confirm it
    /// (`success_threshold` + 1 samples; a slow check must not count as a failed recovery),
    /// bounded by the backoff or the time those checks may take, whichever is longer.
    async fn wait_for_checks(&self, incident_id: i64, server_id: i64, backoff: Duration) -> bool {
        let store = self.engine.store();
        let h = &self.cfg.health;
        let needed = h.success_threshold + 1;
        let limit = backoff.max((h.interval.0 + h.timeout.0) * needed);
        let until = tokio::time::Instant::now() + limit;
        let mut events = self.engine.subscribe();
        let mut seen = 0u32;
        let closed = || {
            store
                .incident(incident_id)
                .map(|i| !i.is_open())
                .unwrap_or(true)
        };
        while tokio::time::Instant::now() < until {
            match tokio::time::timeout(Duration::from_millis(250), events.recv()).await {
                Ok(Ok(Event::HealthSample { sample })) if sample.server_id == server_id => {
                    seen += 1;
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return closed(),
                _ => {}
            }
            if closed() {
                return true;
            }
            if seen > needed {
                // The last sample's crossing is applied just after it is emitted.
                tokio::time::sleep(Duration::from_millis(250)).await;
                return closed();
            }
        }
        closed()
    }

    /// Runs each step as a normal job, in order; stops at the first failure.
    async fn run_plan(
        &self,
        inc: &Incident,
        server: &Server,
        plan: &[Step],
        attempt: i64,
    ) -> Result<(), String> {
        let store = self.engine.store();
        for step in plan {
            let req = InstallRequest {
                app: step.app_id.clone(),
                servers: vec![server.name.clone()],
                inputs: step.inputs.clone(),
                action: JobAction::Install,
            };
            let job = match self.engine.start_install(&req) {
                Ok(mut jobs) if !jobs.is_empty() => jobs.remove(0),
                Ok(_) => return Err(format!("{}: no job started", step.app_id)),
                Err(e) => {
                    let msg = format!("{}: {e}", step.app_id);
                    store
                        .incident_event(inc.id, &format!("attempt {attempt}: {msg}"), None)
                        .ok();
                    return Err(msg);
                }
            };
            lock(&self.recovery_jobs).insert(job.id);
            store
                .incident_event(
                    inc.id,
                    &format!("attempt {attempt}: job #{} install {}", job.id, step.app_id),
                    Some(job.id),
                )
                .ok();
            let done = self
                .engine
                .wait_job(job.id)
                .await
                .map_err(|e| format!("{e:#}"))?;
            if done.status != JobStatus::Succeeded {
                let msg = format!(
                    "job #{} install {} {}: {}",
                    done.id,
                    step.app_id,
                    done.status,
                    done.error_message.as_deref().unwrap_or("")
                );
                store
                    .incident_event(inc.id, &format!("attempt {attempt}: {msg}"), Some(done.id))
                    .ok();
                return Err(msg);
            }
        }
        Ok(())
    }
}
