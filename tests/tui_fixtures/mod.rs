//! Fixtures of the dashboard snapshot tests: servers, jobs, incidents and apps in known
//! states, a fixed clock, and key helpers.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ptui_catalog::Manifest;
use ptui_engine::HostKeyScan;
use ptui_tui::app::{App, LastCheck, Screen};
use ptui_tui::{theme, views};
use ptui_types::hostkey::HostKeyVerdict;
use ptui_types::job::{Job, JobAction, JobStatus, LogLine, LogStream};
use ptui_types::records::AuditEntry;
use ptui_types::records::IncidentRow;
use ptui_types::server::{Server, ServerStatus};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

pub const NOW: i64 = 1_700_000_600_000;
pub const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKdcO54GOcw2hsG683GjgLv3OJjCn9qDHOqMTrVYhSVm fixture";

pub const MANIFEST: &str = r#"
id: echo-ok
name: Echo OK
version: "1.0"
description: Prints its inputs. A fixture for snapshots.
category: test
os_requirements: { family: [debian, ubuntu] }
install_script: install.sh
timeout_seconds: 60
inputs:
  - name: message
    type: string
    label: Message
    default: hello
  - name: token
    type: password
    label: API token
    required: true
    validation: { min_length: 6 }
  - name: port
    type: port
    label: Listen port
    default: 8080
  - name: verbose
    type: boolean
    default: false
  - name: level
    type: select
    label: Log level
    visible_if: { input: verbose, equals: true }
    default: info
    validation: { allowed_values: [info, debug] }
"#;

pub fn server(id: i64, name: &str, host: &str, status: ServerStatus, tags: &[&str]) -> Server {
    Server {
        id,
        name: name.into(),
        host: host.into(),
        port: 22,
        user: "root".into(),
        identity: None,
        jump: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        password_env: None,
        status,
        created_at: NOW - 86_400_000,
        updated_at: NOW - 3_600_000,
        site: ptui_types::server::default_site(),
    }
}

pub fn job(id: i64, server: &str, status: JobStatus) -> Job {
    let finished = status.is_terminal().then_some(NOW - 60_000);
    Job {
        id,
        server_id: Some(1),
        server_name: server.into(),
        app_id: "echo-ok".into(),
        app_version: "1.0".into(),
        action: JobAction::Install,
        status,
        error_kind: (status == JobStatus::Failed)
            .then_some(ptui_types::error::ErrorKind::Installation),
        error_message: None,
        exit_code: status
            .is_terminal()
            .then_some(if status == JobStatus::Failed { 2 } else { 0 }),
        inputs: serde_json::json!({"token": "***"}),
        attempts: 1,
        created_at: NOW - 125_000,
        started_at: Some(NOW - 120_000),
        finished_at: finished,
        owner: None,
        site: None,
        spool: None,
    }
}

pub fn incident(id: i64, server: &str, kind: &str, state: &str, details: &str) -> IncidentRow {
    let resolved = state == "resolved";
    IncidentRow {
        id,
        server: server.into(),
        kind: kind.into(),
        state: state.into(),
        app_id: (kind == "service_down").then(|| "echo-ok".into()),
        opened_at: NOW - id * 3_600_000,
        updated_at: NOW - id * 60_000,
        resolved_at: resolved.then_some(NOW - id * 30_000),
        details: details.into(),
        attempts: if state == "recovering" || state == "failed" {
            2
        } else {
            0
        },
        next_attempt_at: None,
        acked_by: (id == 4).then(|| "alice".into()),
    }
}

/// Open first, then resolved: the order the store returns.
pub fn with_incidents(mut app: App) -> App {
    app.screen = Screen::Incidents;
    app.incidents.items = vec![
        incident(
            5,
            "web2",
            "server_unreachable",
            "detected",
            "no answer on :22 for 3 checks",
        ),
        incident(
            4,
            "db-01",
            "disk_full",
            "recovering",
            "/ at 96%, threshold 90%",
        ),
        incident(
            3,
            "web1",
            "service_down",
            "failed",
            "echo-ok inactive; reinstall failed",
        ),
        incident(
            2,
            "web1",
            "memory_pressure",
            "resolved",
            "97% for 5m, back to 61%",
        ),
        incident(
            1,
            "web2",
            "host_key_changed",
            "resolved",
            "key replaced after check",
        ),
    ];
    app.summary.incidents_open = 3;
    app
}

pub fn empty() -> App {
    let mut app = App::new(theme::dark());
    app.now_ms = NOW;
    app.utc = true;
    app.db_path = "/var/lib/provision-tui/state.db".into();
    app
}

pub fn full() -> App {
    let mut app = empty();
    app.fleet.servers = vec![
        server(
            1,
            "web1",
            "10.0.0.11",
            ServerStatus::Ready,
            &["web", "prod"],
        ),
        server(
            2,
            "web2",
            "10.0.0.12",
            ServerStatus::Error,
            &["web", "prod"],
        ),
        server(3, "db-01", "10.0.0.20", ServerStatus::Maintenance, &["db"]),
        server(
            4,
            "new-box",
            "192.168.1.50",
            ServerStatus::PendingSetup,
            &[],
        ),
    ];
    app.fleet.reorder();
    for (i, lat) in [12u32, 14, 11, 30, 18, 12].iter().enumerate() {
        app.apply_health(LastCheck {
            server: "web1".into(),
            at_ms: NOW - 30_000 + i as i64,
            latency_ms: Some(*lat),
            load: Some(0.42),
            mem_pct: Some(61),
            disk_pct: Some(37),
            failure: None,
        });
    }
    app.catalog.items = vec![yaml_serde::from_str::<Manifest>(MANIFEST).expect("manifest")];
    app.jobs.jobs = vec![
        job(3, "web1", JobStatus::Running),
        job(2, "web2", JobStatus::Failed),
        job(1, "web1", JobStatus::Succeeded),
    ];
    app.summary.running = 1;
    app.audit.items = (1..=3)
        .rev()
        .map(|i| AuditEntry {
            id: i,
            ts: NOW - i * 60_000,
            operator: "alice".into(),
            action: ["server.add", "server.trust", "job.install"][(i - 1) as usize].into(),
            target: "web1".into(),
            details: if i == 3 {
                "job #3 app=echo-ok inputs={\"token\":\"***\"}".into()
            } else {
                String::new()
            },
        })
        .collect();
    // The selected job's log: a window filled directly (no database here).
    app.jobs.log.job_id = Some(3);
    for seq in 1..=40 {
        app.jobs.log.lines.push_back(LogLine {
            job_id: 3,
            seq,
            stream: if seq % 7 == 0 {
                LogStream::Stderr
            } else {
                LogStream::Stdout
            },
            ts: NOW - 100_000 + seq * 100,
            text: format!(
                "step {seq}: configuring the echo service with a fairly long line of output"
            ),
        });
    }
    app.jobs.log.last_seq = 40;
    app
}

pub fn render(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    term.draw(|f| views::draw(f, app)).expect("draw");
    term
}

pub fn key(app: &mut App, c: KeyCode) {
    app.key(KeyEvent::new(c, KeyModifiers::NONE));
}

pub fn typ(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

pub fn scan(verdict: HostKeyVerdict) -> HostKeyScan {
    let key = russh::keys::ssh_key::PublicKey::from_openssh(KEY).expect("key");
    HostKeyScan::from_key("new-box", key, verdict)
}
