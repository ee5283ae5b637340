//! Automatic recovery. For a server whose policy is `auto`, a confirmed (DOWN) incident of a
//! recoverable kind waits `grace`, then each attempt re-runs the base installer (the server's,
//! the config's default, or a recorded `role: base` deployment) and redeploys every recorded
//! app in `depends_on` order with its recorded inputs, each step a normal job linked to the
//! incident. Attempts are limited, with doubling backoff; after the last failure the incident
//! is `failed` and people are told. Never during maintenance, never while the host key changed.
//! An operator setting `force_rebuild` runs the same procedure at once, whatever the policy.

use crate::engine::{Event, InstallRequest};
use crate::health::notify::{Message, Topic};
use crate::health::service::{HealthService, lock};
use crate::health::{IncidentKind, IncidentState, RecoveryPolicy};
use ptui_store::incidents::Incident;
use ptui_types::job::{JobAction, JobStatus};
use ptui_types::server::Server;
use ptui_types::time::now_ms;
use std::sync::Arc;
use std::time::Duration;

mod plan;
#[cfg(test)]
mod tests;

pub use plan::{PlanError, Step};

impl HealthService {
    /// Starts recovery for incidents whose grace has passed (policy `auto` only).
    pub fn recovery_tick(self: Arc<Self>) {
        let store = self.engine.store();
        let open = store.open_incidents().unwrap_or_default();
        let now = now_ms();
        let grace = self.cfg.recovery.grace.0.as_millis() as i64;
        for inc in &open {
            let Some(sid) = inc.server_id else { continue };
            if !self.is_mine(sid) {
                continue;
            }
            let ready = match inc.state {
                // Postponed (maintenance, host key) incidents wait for their next attempt.
                IncidentState::Detected => {
                    now - inc.opened_at >= grace && inc.next_attempt_at.is_none_or(|t| now >= t)
                }
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
            // Postponed (maintenance, host key): the loop calls this every tick; wait for the
            // next attempt instead of re-entering recovery each time.
            Some(i) if i.next_attempt_at.is_some_and(|t| now_ms() < t) => return,
            Some(i) => i,
            // The normal open path: notified, except during maintenance (recorded silently).
            None => match self.open(
                server.id,
                IncidentKind::ForceRebuild,
                None,
                "force_rebuild set by an operator",
            ) {
                Some(i) => i,
                None => return,
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
            .any(|i| i.server_id == Some(server.id) && i.kind == IncidentKind::HostKeyChanged)
            // Still PENDING (below the threshold, no incident yet) counts too.
            || lock(&self.tracker).failing(server.id, IncidentKind::HostKeyChanged);
        hk.then(|| "the server's host key changed".to_string())
    }

    async fn recover(&self, mut inc: Incident) {
        let store = self.engine.store().clone();
        let r = &self.cfg.recovery;
        let max = i64::from(r.max_attempts.max(1));
        let Some(sid) = inc.server_id else { return };
        if inc.attempts >= max {
            // The process stopped during the last attempt: there is no attempt left to run.
            return self.give_up(
                &inc,
                &format!("recovery was interrupted during its last attempt ({max}/{max})"),
            );
        }
        while inc.attempts < max {
            let Ok(Some(server)) = store.server_by_id(sid) else {
                return;
            };
            if let Some(why) = self.blocked(&server) {
                let next = now_ms() + r.backoff.0.as_millis() as i64;
                match store.postpone_incident(inc.id, &format!("recovery postponed: {why}"), next) {
                    Ok((i, true)) => self.engine.emit(Event::IncidentChanged { incident: i }),
                    Ok(_) => {}
                    Err(e) => tracing::error!("incident #{}: {e:#}", inc.id),
                }
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
                    match store.resolve_incident(inc.id, "rebuilt") {
                        Ok(res) => {
                            self.notifier.send(Message::incident(
                                Topic::IncidentResolved,
                                &res.incident,
                                "rebuilt",
                            ));
                            self.engine.emit(Event::IncidentChanged {
                                incident: res.incident,
                            });
                        }
                        Err(e) => tracing::warn!(
                            "incident #{}: rebuilt, but cannot resolve it: {e:#}",
                            inc.id
                        ),
                    }
                    return;
                }
                Ok(()) => {
                    self.note(
                        inc.id,
                        &format!("attempt {attempt}: every job succeeded; waiting for the checks to confirm"),
                        None,
                    );
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
                            ptui_types::time::human_ms(wait.as_millis() as i64)
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
                    self.note(inc.id, &format!("attempt {attempt}: {msg}"), None);
                    return Err(msg);
                }
            };
            lock(&self.recovery_jobs).insert(job.id);
            self.note(
                inc.id,
                &format!("attempt {attempt}: job #{} install {}", job.id, step.app_id),
                Some(job.id),
            );
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
                self.note(inc.id, &format!("attempt {attempt}: {msg}"), Some(done.id));
                return Err(msg);
            }
        }
        Ok(())
    }
}
