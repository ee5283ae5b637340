//! Recovery: the plan, postponements in maintenance, force_rebuild, attempt limits.

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
    /// Starts a manual maintenance window on the server.
    fn maintenance_on(&self) {
        self.svc
            .engine
            .store()
            .maintenance_on(Some(self.server.id), None, "patching", "test")
            .unwrap();
    }

    /// Puts the server in force_rebuild, as an operator would.
    fn set_force_rebuild(&self) -> Server {
        self.svc
            .engine
            .store()
            .transition_server(self.server.id, ServerStatus::ForceRebuild, "test", None)
            .unwrap()
    }

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
    f.maintenance_on();
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
    let inc = f.open_service_down();
    f.maintenance_on();
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
    f.set_force_rebuild();
    f.maintenance_on();
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
    let server = f.set_force_rebuild();
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
