//! Issue 14's rendering bugs, each checked on the rendered screen.

use crate::tui_fixtures::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ptui_catalog::Manifest;
use ptui_tui::app::{App, LastCheck, Modal, Screen};
use ptui_tui::keymap::Action;
use ptui_types::job::{JobStatus, LogLine, LogStream};
use ptui_types::server::ServerStatus;

const LONG_LABELS: &str = r#"
id: hardening
name: Hardening
version: "2.0"
description: "Locks the box down.\n"
category: test
os_requirements: { family: [debian] }
install_script: install.sh
timeout_seconds: 60
inputs:
  - name: no_passwords
    type: boolean
    label: Disable SSH password login
    default: true
  - name: admin_keys_source
    type: string
    label: Where the administrators' keys come from
    default: github
"#;

fn with_long_labels() -> App {
    let mut a = full();
    a.catalog
        .items
        .push(yaml_serde::from_str::<Manifest>(LONG_LABELS).expect("manifest"));
    a
}

fn screen(a: &mut App, w: u16, h: u16) -> String {
    render(a, w, h).backend().to_string()
}

#[test]
fn review_and_form_keep_labels_apart_from_values() {
    let mut a = with_long_labels();
    a.open_install("hardening", vec!["web1".into()]);
    let form = screen(&mut a, 120, 40);
    assert!(
        form.contains("Where the administrators' keys come from "),
        "the whole label at 120 columns: {form}"
    );
    a.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    for (w, h) in [(120, 40), (80, 24)] {
        let text = screen(&mut a, w, h);
        assert!(!text.contains("logintrue"), "{w}: {text}");
        assert!(
            text.lines()
                .any(|l| l.contains("Disable SSH password login ") && l.contains(" true")),
            "{w}: {text}"
        );
    }
    insta::assert_snapshot!("review_long_labels_80x24", render(&mut a, 80, 24).backend());
}

#[test]
fn controls_and_line_ends_do_not_show_as_question_marks() {
    assert_eq!(
        ptui_tui::views::clean("Locks the box down.\n"),
        "Locks the box down."
    );
    let mut a = with_long_labels();
    a.screen = Screen::Catalog;
    a.catalog.sel = 1;
    let text = screen(&mut a, 120, 40);
    assert!(text.contains("Locks the box down."), "{text}");
    assert!(
        !text.contains("down.?") && !text.contains("down.\\"),
        "{text}"
    );
    // apt's carriage-return progress shows its final state; systemd's ESC colours are visible.
    a.screen = Screen::Jobs;
    a.jobs.focus_log = true;
    for (seq, t) in [
        (41, "Progress: [ 10%]\rProgress: [100%]"),
        (42, "\x1b[0;32mactive\x1b[0m\r\n"),
    ] {
        a.jobs.log.lines.push_back(LogLine {
            job_id: 3,
            seq,
            stream: LogStream::Stdout,
            ts: NOW,
            text: t.into(),
        });
    }
    a.jobs.log.last_seq = 42;
    let text = screen(&mut a, 120, 40);
    assert!(
        text.contains("Progress: [100%]") && !text.contains("10%]"),
        "{text}"
    );
    assert!(text.contains("\\u{1b}[0;32mactive"), "{text}");
    for l in text
        .lines()
        .filter(|l| l.contains("active") || l.contains("Progress"))
    {
        assert!(!l.contains('?'), "{l}");
    }
}

#[test]
fn failure_words_fit_and_long_names_end_in_an_ellipsis() {
    let mut a = full();
    a.fleet.servers.push(server(
        9,
        "a-very-long-server-name-from-the-inventory",
        "very-long-hostname.eu-west.example.internal",
        ServerStatus::Ready,
        &[],
    ));
    a.fleet.reorder();
    a.apply_health(LastCheck {
        server: "web2".into(),
        at_ms: NOW - 5_000,
        latency_ms: None,
        load: None,
        mem_pct: None,
        disk_pct: None,
        failure: Some("host_key_changed".into()),
    });
    for (w, h) in [(80, 24), (120, 40)] {
        let text = screen(&mut a, w, h);
        assert!(text.contains("hostkey"), "{w}: {text}");
        assert!(text.contains("a-very-lo"), "{w}: {text}");
        assert!(text.contains('…'), "a cut name says so at {w}: {text}");
    }
    insta::assert_snapshot!("fleet_long_names_80x24", render(&mut a, 80, 24).backend());
}

#[test]
fn a_new_log_search_starts_empty() {
    let mut a = full();
    a.screen = Screen::Jobs;
    a.jobs.focus_log = true;
    key(&mut a, KeyCode::Char('/'));
    typ(&mut a, "step 3");
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Char('/'));
    typ(&mut a, "step 4");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.jobs.log.search.as_deref(), Some("step 4"), "not appended");
}

#[test]
fn the_cancelling_message_goes_when_the_job_ends() {
    use ptui_tui::work::Msg;
    let mut a = full();
    a.apply(Msg::Cancelled(3, Ok(())));
    assert!(screen(&mut a, 120, 40).contains("cancelling job #3…"));
    let mut j = job(3, "web1", JobStatus::Cancelled);
    j.error_kind = None;
    a.on_event(ptui_engine::Event::JobFinished { job: j });
    let text = screen(&mut a, 120, 40);
    assert!(!text.contains("cancelling job #3"), "{text}");
    assert!(text.contains("job #3 cancelled"), "{text}");
}

#[test]
fn the_audit_screen_shows_values_not_rust_options() {
    let mut a = full();
    a.screen = Screen::Audit;
    a.audit.items[0].action = "server.policy".into();
    a.audit.items[0].details = "recovery=on base=- interval_ms=Some(15000)".into();
    let text = screen(&mut a, 120, 40);
    assert!(text.contains("interval_ms=15000"), "{text}");
    assert!(!text.contains("Some("), "{text}");
}

#[test]
fn the_fleet_footer_shows_install_and_import_at_120_columns() {
    let mut a = full();
    let text = screen(&mut a, 120, 40);
    let foot = text.lines().last().unwrap_or_default().to_string();
    for hint in ["i install", "I import", "? help", ": command", "q quit"] {
        assert!(foot.contains(hint), "{hint}: {foot}");
    }
}

#[test]
fn a_theme_switch_says_so_and_is_remembered() {
    use ptui_tui::app::Cmd;
    let mut a = full();
    key(&mut a, KeyCode::Char(':'));
    typ(&mut a, "theme light");
    key(&mut a, KeyCode::Enter);
    assert!(screen(&mut a, 120, 40).contains("theme light"));
    assert!(
        a.cmds
            .iter()
            .any(|c| matches!(c, Cmd::SaveTheme(n) if n == "light")),
        "saved to the config off the loop"
    );
}

#[test]
fn the_status_picker_follows_the_lifecycle() {
    let mut a = full();
    a.update(Action::SetStatus);
    let Some(Modal::Picker { items, .. }) = &a.modal else {
        panic!("picker")
    };
    let names: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
    assert_ne!(names.first(), Some(&"force_rebuild"), "{names:?}");
    assert_eq!(names.last(), Some(&"decommissioned"), "{names:?}");
    let rebuild = names.iter().position(|n| *n == "force_rebuild");
    let in_use = names.iter().position(|n| *n == "in_use");
    assert!(in_use < rebuild, "{names:?}");
}
