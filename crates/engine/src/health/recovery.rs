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
use crate::engine::{Event, InstallRequest};
use ptui_catalog::{Catalog, Installer, Role};
use ptui_store::incidents::Incident;
use ptui_types::job::{JobAction, JobStatus};
use ptui_types::records::Deployment;
use ptui_types::server::Server;
use ptui_types::time::now_ms;
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

/// Sensitive inputs are recorded masked: a step that would get `***` cannot run.
fn unmasked(
    installer: &Installer,
    inputs: &BTreeMap<String, String>,
    server: &Server,
) -> Result<(), PlanError> {
    let id = &installer.manifest.id;
    for spec in &installer.manifest.inputs {
        if spec.is_sensitive()
            && inputs
                .get(&spec.name)
                .is_some_and(|v| v == ptui_types::secret::MASK)
        {
            return Err(PlanError(format!(
                "cannot redeploy {id}: its sensitive input `{}` was stored masked and its value is not \
                 available; reinstall {id} by hand with `provision-tui install {id} --on {} --set-env {}=VAR`",
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
            let inputs = deployments
                .iter()
                .find(|d| &d.app_id == b)
                .map(|d| inputs_of(&d.inputs))
                .unwrap_or_default();
            unmasked(installer, &inputs, server)?;
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
                let inputs = inputs_of(&d.inputs);
                unmasked(installer, &inputs, server)?;
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

    /// Starts recovery for incidents whose grace has passed (policy `auto` only).
    pub fn recovery_tick(self: Arc<Self>) {
        let store = self.engine.store();
        let open = store.open_incidents().unwrap_or_default();
        let now = now_ms();
        let grace = self.cfg.recovery.grace.0.as_millis() as i64;
        for inc in &open {
            let Some(sid) = inc.server_id else { continue };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::config::Dur;
    use crate::health::notify::Notifier;
    use crate::health::{HealthConfig, Sample, ServerHealthPolicy};
    use ptui_types::server::{ServerSpec, ServerStatus};
    use tokio::sync::mpsc;

    struct Fx {
        svc: Arc<HealthService>,
        server: Server,
        sent: mpsc::Receiver<Message>,
        _dirs: (tempfile::TempDir, tempfile::TempDir),
    }

    fn installer(dir: &std::path::Path, id: &str, extra: &str) {
        let d = dir.join(id);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("install.sh"), "#!/bin/sh\ntrue\n").unwrap();
        std::fs::write(
            d.join("manifest.yml"),
            format!(
                "id: {id}\nname: {id}\nversion: \"1\"\ndescription: test\ninstall_script: install.sh\n{extra}"
            ),
        )
        .unwrap();
    }

    /// A service on a scratch database with policy `auto` on server `s` (never dialed:
    /// every test stops before a job would start), grace 0 and two attempts.
    fn fx(backoff: Duration) -> Fx {
        let inst = tempfile::tempdir().unwrap();
        let p = inst.path();
        installer(
            p,
            "base-a",
            "role: base\ninputs:\n  - name: root_pw\n    type: password\n",
        );
        installer(p, "base-b", "role: base\n");
        installer(p, "app-x", "depends_on: [app-y]\n");
        installer(
            p,
            "app-y",
            "inputs:\n  - name: token\n    type: string\n    sensitive: true\n",
        );
        let (db, engine) = crate::health::test_engine(vec![p.to_path_buf()]);
        for id in ["base-a", "base-b", "app-x", "app-y"] {
            assert!(
                engine.catalog().get(id).is_some(),
                "{id}: {:?}",
                engine.catalog().problems
            );
        }
        let mut cfg = HealthConfig::default();
        cfg.recovery.grace = Dur(Duration::ZERO);
        cfg.recovery.backoff = Dur(backoff);
        cfg.recovery.max_attempts = 2;
        let mut svc = HealthService::new(engine, cfg).unwrap();
        let (notifier, sent) = Notifier::for_test(16);
        Arc::get_mut(&mut svc).unwrap().notifier = notifier;
        let store = svc.engine.store();
        let server = store
            .add_server(
                &ServerSpec {
                    name: "s".into(),
                    host: "127.0.0.1".into(),
                    port: 1,
                    user: "root".into(),
                    ..Default::default()
                },
                ServerStatus::Ready,
            )
            .unwrap();
        store
            .set_health_policy(&ServerHealthPolicy {
                server_id: server.id,
                recovery: RecoveryPolicy::Auto,
                ..Default::default()
            })
            .unwrap();
        Fx {
            svc,
            server,
            sent,
            _dirs: (inst, db),
        }
    }

    impl Fx {
        fn deploy(&self, app: &str, inputs: serde_json::Value) {
            self.svc
                .engine
                .store()
                .record_deployment(self.server.id, app, "1", &inputs, 0)
                .unwrap();
        }

        fn open_service_down(&self) -> Incident {
            self.svc
                .engine
                .store()
                .open_incident(
                    self.server.id,
                    IncidentKind::ServiceDown,
                    Some("app-y"),
                    "down",
                )
                .unwrap()
                .expect("opened")
                .incident
        }

        fn timeline(&self, id: i64) -> Vec<String> {
            self.svc
                .engine
                .store()
                .incident_timeline(id)
                .unwrap()
                .into_iter()
                .map(|t| t.message)
                .collect()
        }

        fn sent(&mut self) -> Vec<Topic> {
            std::iter::from_fn(|| self.sent.try_recv().ok())
                .map(|m| m.event)
                .collect()
        }
    }

    /// Waits for the recovery tasks started so far to end.
    async fn settle(svc: &HealthService) {
        for _ in 0..500 {
            if lock(&svc.recovering).is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("recovery still running after 5 s");
    }

    fn incident_events(rx: &mut tokio::sync::broadcast::Receiver<Event>, id: i64) -> usize {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter(|e| matches!(e, Event::IncidentChanged { incident } if incident.id == id))
            .count()
    }

    fn ids(plan: &[Step]) -> Vec<&str> {
        plan.iter().map(|s| s.app_id.as_str()).collect()
    }

    #[test]
    fn plan_redeploys_every_base_then_the_apps_in_order() {
        let f = fx(Duration::from_secs(60));
        f.deploy("app-x", serde_json::json!({}));
        f.deploy("app-y", serde_json::json!({"token": "t"}));
        f.deploy("base-b", serde_json::json!({}));
        f.deploy("base-a", serde_json::json!({"root_pw": "pw"}));
        let plan = f.svc.recovery_plan(&f.server).unwrap();
        assert_eq!(ids(&plan), ["base-a", "base-b", "app-y", "app-x"]);
        assert_eq!(
            plan[0].inputs.get("root_pw").map(String::as_str),
            Some("pw")
        );
    }

    #[test]
    fn plan_refuses_a_masked_input_of_the_base_installer_too() {
        let f = fx(Duration::from_secs(60));
        f.deploy(
            "base-a",
            serde_json::json!({"root_pw": ptui_types::secret::MASK}),
        );
        let err = f.svc.recovery_plan(&f.server).unwrap_err().0;
        assert!(
            err.contains("cannot redeploy base-a") && err.contains("`root_pw`"),
            "{err}"
        );
        // The same check as for apps.
        f.deploy("base-a", serde_json::json!({"root_pw": "pw"}));
        f.deploy(
            "app-y",
            serde_json::json!({"token": ptui_types::secret::MASK}),
        );
        let err = f.svc.recovery_plan(&f.server).unwrap_err().0;
        assert!(err.contains("`token`"), "{err}");
    }

    #[tokio::test]
    async fn maintenance_postpones_once_and_ticks_wait_for_the_next_attempt() {
        let f = fx(Duration::from_secs(60));
        let store = f.svc.engine.store();
        let inc = f.open_service_down();
        store
            .maintenance_on(Some(f.server.id), None, "patching", "test")
            .unwrap();
        let mut events = f.svc.engine.subscribe();
        f.svc.clone().recovery_tick();
        settle(&f.svc).await;
        let after = store.incident(inc.id).unwrap();
        assert_eq!(after.state, IncidentState::Detected);
        assert!(after.next_attempt_at.is_some_and(|t| t > now_ms() + 30_000));
        let tl = f.timeline(inc.id);
        assert_eq!(tl.len(), 2, "{tl:?}");
        assert!(
            tl[1].starts_with("recovery postponed: server in maintenance"),
            "{tl:?}"
        );
        for _ in 0..5 {
            f.svc.clone().recovery_tick();
            assert!(lock(&f.svc.recovering).is_empty(), "not started again");
            settle(&f.svc).await;
        }
        assert_eq!(
            f.timeline(inc.id),
            tl,
            "the timeline does not grow per tick"
        );
        assert_eq!(incident_events(&mut events, inc.id), 1);
    }

    #[tokio::test]
    async fn a_repeated_postponement_for_the_same_reason_adds_no_row() {
        // Backoff 0: every tick retries, and finds the same reason.
        let f = fx(Duration::ZERO);
        let store = f.svc.engine.store();
        let inc = f.open_service_down();
        store
            .maintenance_on(Some(f.server.id), None, "patching", "test")
            .unwrap();
        let mut events = f.svc.engine.subscribe();
        for _ in 0..5 {
            f.svc.clone().recovery_tick();
            settle(&f.svc).await;
        }
        let tl = f.timeline(inc.id);
        assert_eq!(tl.len(), 2, "{tl:?}");
        assert_eq!(incident_events(&mut events, inc.id), 1);
    }

    #[tokio::test]
    async fn force_rebuild_in_a_window_is_recorded_silently_and_not_reentered() {
        let mut f = fx(Duration::from_secs(60));
        let store = f.svc.engine.store().clone();
        store
            .transition_server(f.server.id, ServerStatus::ForceRebuild, "test", None)
            .unwrap();
        store
            .maintenance_on(Some(f.server.id), None, "patching", "test")
            .unwrap();
        let server = store.server_by_id(f.server.id).unwrap().unwrap();
        f.svc.clone().force_rebuild(&server);
        settle(&f.svc).await;
        let open = store.open_incidents().unwrap();
        assert_eq!(open.len(), 1, "{open:?}");
        let inc = &open[0];
        assert_eq!(inc.kind, IncidentKind::ForceRebuild);
        assert_eq!(inc.state, IncidentState::Detected);
        assert_eq!(inc.last_notified_at, None);
        assert!(f.sent().is_empty(), "nothing sent during maintenance");
        let tl = f.timeline(inc.id);
        assert!(
            tl.iter().any(|m| m.starts_with("recovery postponed")),
            "{tl:?}"
        );
        // The loop calls force_rebuild every tick while the status stays force_rebuild.
        for _ in 0..5 {
            f.svc.clone().force_rebuild(&server);
            assert!(lock(&f.svc.recovering).is_empty(), "not re-entered");
            settle(&f.svc).await;
        }
        assert_eq!(f.timeline(inc.id), tl);
        assert_eq!(store.open_incidents().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn force_rebuild_outside_a_window_is_notified_when_it_opens() {
        let mut f = fx(Duration::from_secs(60));
        let store = f.svc.engine.store().clone();
        store
            .transition_server(f.server.id, ServerStatus::ForceRebuild, "test", None)
            .unwrap();
        let server = store.server_by_id(f.server.id).unwrap().unwrap();
        // Nothing to re-provision: the plan fails before any job, so the incident fails.
        f.svc.clone().force_rebuild(&server);
        settle(&f.svc).await;
        assert_eq!(f.sent(), [Topic::IncidentOpened, Topic::IncidentFailed]);
        let open = store.open_incidents().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].state, IncidentState::Failed);
        assert!(open[0].last_notified_at.is_some());
        f.svc.clone().force_rebuild(&server);
        settle(&f.svc).await;
        assert!(
            f.sent().is_empty(),
            "a failed rebuild is not retried per tick"
        );
    }

    #[tokio::test]
    async fn an_attempt_interrupted_at_the_limit_gives_up() {
        let mut f = fx(Duration::from_secs(60));
        let store = f.svc.engine.store();
        let inc = f.open_service_down();
        // A process died during attempt 2 of 2.
        store
            .update_incident(
                inc.id,
                IncidentState::Recovering,
                "recovery attempt 2/2",
                Some(2),
                None,
            )
            .unwrap();
        f.svc.clone().recovery_tick();
        settle(&f.svc).await;
        let after = store.incident(inc.id).unwrap();
        assert_eq!(after.state, IncidentState::Failed);
        assert_eq!(after.attempts, 2, "no third attempt");
        let tl = f.timeline(inc.id);
        assert!(
            tl.last().is_some_and(|m| m.contains("interrupted")),
            "{tl:?}"
        );
        assert_eq!(f.sent(), [Topic::IncidentFailed]);
        f.svc.clone().recovery_tick();
        assert!(
            lock(&f.svc.recovering).is_empty(),
            "failed: not picked up again"
        );
    }

    #[test]
    fn a_pending_host_key_change_blocks_recovery() {
        let f = fx(Duration::from_secs(60));
        assert_eq!(f.svc.blocked(&f.server), None);
        let mut s = Sample::unreachable(
            f.server.id,
            &f.server.name,
            IncidentKind::HostKeyChanged,
            "host key changed".into(),
        );
        let crossings = lock(&f.svc.tracker).evaluate(&mut s, 90.0, 95.0);
        assert!(crossings.is_empty(), "one failure of three: PENDING");
        assert_eq!(
            f.svc.blocked(&f.server).as_deref(),
            Some("the server's host key changed")
        );
    }
}
