//! Issue 14's incident items: app/age/recovery columns, the detail page with its timeline,
//! acknowledging and notes, the Fleet's marker and the status line on resolve.

use crate::tui_fixtures::*;
use crossterm::event::KeyCode;
use ptui_engine::queries::{Incident, IncidentDetail, TimelineEntry};
use ptui_tui::app::{App, Cmd, Screen};
use ptui_types::health::{IncidentKind, IncidentState};

fn detail_of(id: i64) -> IncidentDetail {
    IncidentDetail {
        incident: Incident {
            id,
            server_id: Some(1),
            server: "web1".into(),
            kind: IncidentKind::ServiceDown,
            state: IncidentState::Failed,
            app_id: Some("echo-ok".into()),
            opened_at: NOW - 3 * 3_600_000,
            updated_at: NOW - 60_000,
            resolved_at: None,
            details: "echo-ok inactive; reinstall failed".into(),
            previous_status: None,
            affected: serde_json::json!([{"app_id": "echo-ok", "app_version": "1.0"}]),
            attempts: 2,
            next_attempt_at: None,
            last_notified_at: None,
        },
        acked_by: None,
        timeline: vec![
            TimelineEntry {
                ts: NOW - 3 * 3_600_000,
                message: "opened: echo-ok inactive".into(),
                job_id: None,
            },
            TimelineEntry {
                ts: NOW - 2 * 3_600_000,
                message: "attempt 1: reinstall echo-ok failed".into(),
                job_id: Some(2),
            },
            TimelineEntry {
                ts: NOW - 3_600_000,
                message: "recovery stopped: 2 attempts used (max_attempts 2)".into(),
                job_id: None,
            },
        ],
    }
}

/// The incidents screen with #3 (web1, service_down, failed) selected.
fn on_incident_3() -> App {
    let mut a = with_incidents(full());
    a.incidents.sel = 2;
    a
}

#[test]
fn the_list_shows_app_age_and_recovery() {
    let mut a = with_incidents(full());
    for (w, h) in [(80, 24), (120, 40)] {
        let text = render(&mut a, w, h).backend().to_string();
        for col in ["APP", "AGE", "RECOVERY"] {
            assert!(text.contains(col), "{w}: {col}: {text}");
        }
        let row3 = text.lines().find(|l| l.contains("#3")).unwrap_or_default();
        assert!(
            row3.contains("echo-ok") && row3.contains("3h"),
            "{w}: {row3}"
        );
        assert!(row3.contains("stopped (2)"), "{w}: {row3}");
        let row4 = text.lines().find(|l| l.contains("#4")).unwrap_or_default();
        assert!(row4.contains("recovering ✓"), "acknowledged: {row4}");
    }
}

#[test]
fn enter_opens_the_timeline_and_why_recovery_stopped() {
    let mut a = on_incident_3();
    key(&mut a, KeyCode::Enter);
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(
        text.contains("Incident #3 service_down on web1 (echo-ok)"),
        "{text}"
    );
    assert!(text.contains("loading the timeline"), "{text}");
    a.on_incident_detail(3, Ok(detail_of(3)));
    for (w, h) in [(80, 24), (120, 40)] {
        let text = render(&mut a, w, h).backend().to_string();
        assert!(
            text.contains("why it stopped: recovery stopped: 2 attempts used"),
            "{w}: {text}"
        );
        assert!(text.contains("echo-ok 1.0"), "affected deployments: {text}");
        assert!(text.contains("[job #2]"), "{text}");
        assert!(text.contains("not acknowledged"), "{text}");
    }
    insta::assert_snapshot!("incident_detail_80x24", render(&mut a, 80, 24).backend());
    // Enter on an entry without a job says so; on the recovery job it opens that job's log.
    key(&mut a, KeyCode::Enter);
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|(m, e)| *e && m.contains("no job"))
    );
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.screen, Screen::Jobs);
    assert!(a.jobs.focus_log);
    assert_eq!(a.jobs.selected().map(|j| j.id), Some(2));
}

#[test]
fn acknowledge_and_note_go_to_the_engine_with_the_text() {
    let mut a = on_incident_3();
    key(&mut a, KeyCode::Char('a'));
    let text = render(&mut a, 80, 24).backend().to_string();
    assert!(text.contains("acknowledge: note (optional)"), "{text}");
    typ(&mut a, "on it");
    key(&mut a, KeyCode::Enter);
    assert!(
        a.cmds
            .iter()
            .any(|c| matches!(c, Cmd::AckIncident(3, Some(n)) if n == "on it")),
        "{:?}",
        a.cmds
    );
    // On the detail page too, and a note without text records nothing.
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Char('n'));
    typ(&mut a, "restarted by hand");
    key(&mut a, KeyCode::Enter);
    assert!(
        a.cmds
            .iter()
            .any(|c| matches!(c, Cmd::NoteIncident(3, n) if n == "restarted by hand"))
    );
    key(&mut a, KeyCode::Char('n'));
    key(&mut a, KeyCode::Enter);
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|(m, e)| *e && m.contains("empty"))
    );
    // A resolved incident is not acknowledged.
    let mut a = with_incidents(full());
    a.incidents.sel = 3;
    key(&mut a, KeyCode::Char('a'));
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|(m, _)| m.contains("already resolved"))
    );
    // The engine's answer is shown and the list re-read.
    a.on_incident_updated(3, "acknowledged; its reminders stop", Ok(()));
    assert!(
        render(&mut a, 120, 40)
            .backend()
            .to_string()
            .contains("incident #3: acknowledged")
    );
}

#[test]
fn the_fleet_marks_servers_with_open_incidents() {
    let mut a = with_incidents(full());
    a.screen = Screen::Fleet;
    let text = render(&mut a, 80, 24).backend().to_string();
    let row = |name: &str| {
        text.lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("web1").contains("!1"), "{text}");
    assert!(row("db-01").contains("!1"), "{text}");
    assert!(!row("new-box").contains('!'), "{text}");
    insta::assert_snapshot!(
        "fleet_incident_markers_80x24",
        render(&mut a, 80, 24).backend()
    );
}

#[test]
fn the_status_line_says_when_an_incident_resolves() {
    let mut a = with_incidents(full());
    let mut inc = detail_of(3).incident;
    inc.state = IncidentState::Resolved;
    inc.resolved_at = Some(NOW);
    a.on_event(ptui_engine::Event::IncidentChanged { incident: inc });
    assert_eq!(
        a.flash,
        Some(("resolved: service_down on web1 (echo-ok)".into(), false))
    );
}
