//! Issue 14's operations that needed the CLI: maintenance, policy, uninstall/upgrade and the
//! review's fan-out options, each from a key and the `:` palette.

use crate::tui_fixtures::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ptui_engine::jobs::fanout::Amount;
use ptui_tui::app::{App, Cmd, Modal, Screen};
use ptui_tui::ops::OpCmd;
use ptui_tui::work::FanOpts;
use ptui_types::job::JobAction;

fn ops(a: &App) -> Vec<OpCmd> {
    a.cmds
        .iter()
        .filter_map(|c| match c {
            Cmd::Op(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

fn palette_line(a: &App) -> String {
    match &a.modal {
        Some(Modal::Palette(p)) => p.input.value().to_string(),
        other => panic!("no palette: {other:?}"),
    }
}

#[test]
fn maintenance_from_a_key_and_the_palette() {
    let mut a = full();
    key(&mut a, KeyCode::Char('m'));
    assert_eq!(palette_line(&a), "maintenance on db-01 for 1h reason ");
    typ(&mut a, "kernel upgrade");
    key(&mut a, KeyCode::Enter);
    match ops(&a).as_slice() {
        [
            OpCmd::MaintenanceOn {
                servers,
                ends_at: Some(_),
                reason,
            },
        ] => {
            assert_eq!(servers, &["db-01"]);
            assert_eq!(reason, "kernel upgrade");
        }
        other => panic!("{other:?}"),
    }
    for (line, want) in [
        (
            "maintenance off web2",
            OpCmd::MaintenanceOff {
                servers: vec!["web2".into()],
            },
        ),
        ("maintenance list", OpCmd::MaintenanceList),
    ] {
        a.cmds.clear();
        key(&mut a, KeyCode::Char(':'));
        typ(&mut a, line);
        key(&mut a, KeyCode::Enter);
        assert_eq!(ops(&a), [want], "{line}");
    }
    a.cmds.clear();
    key(&mut a, KeyCode::Char(':'));
    typ(&mut a, "maintenance on web1 for soon");
    key(&mut a, KeyCode::Enter);
    assert!(ops(&a).is_empty(), "a bad duration starts nothing");
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|(m, e)| *e && m.starts_with("maintenance on:"))
    );
}

#[test]
fn policy_from_a_key_and_the_palette() {
    let mut a = full();
    key(&mut a, KeyCode::Char('P'));
    assert_eq!(palette_line(&a), "policy db-01 ");
    typ(&mut a, "recovery auto interval 30s");
    key(&mut a, KeyCode::Enter);
    assert_eq!(
        ops(&a),
        [OpCmd::Policy {
            server: "db-01".into(),
            recovery: Some(ptui_engine::health::RecoveryPolicy::Auto),
            interval_ms: Some(Some(30_000)),
        }]
    );
    // From the server detail page too.
    a.cmds.clear();
    a.modal = None;
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Char('P'));
    assert_eq!(palette_line(&a), "policy new-box ");
}

#[test]
fn uninstall_and_upgrade_open_the_form_with_that_action() {
    let mut a = full();
    a.fleet.sel = 2; // web1 (db-01 is in maintenance: no form)
    a.screen = Screen::Catalog;
    key(&mut a, KeyCode::Char('u'));
    let text = render(&mut a, 80, 24).backend().to_string();
    assert!(text.contains("Uninstall Echo OK 1.0 on web1"), "{text}");
    key(&mut a, KeyCode::Tab);
    typ(&mut a, "s3cret-token");
    a.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    key(&mut a, KeyCode::Char('y'));
    assert!(
        a.cmds
            .iter()
            .any(|c| matches!(c, Cmd::Install(r, _) if r.action == JobAction::Uninstall)),
        "{:?}",
        a.cmds
    );
    let mut a = full();
    key(&mut a, KeyCode::Char(':'));
    typ(&mut a, "upgrade echo-ok web2");
    key(&mut a, KeyCode::Enter);
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(text.contains("Upgrade Echo OK 1.0 on web2"), "{text}");
}

#[test]
fn the_review_sets_the_fan_out_options() {
    let mut a = full();
    a.open_install("echo-ok", vec!["web1".into(), "web2".into()]);
    key(&mut a, KeyCode::Tab);
    typ(&mut a, "s3cret-token");
    a.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    let text = render(&mut a, 80, 24).backend().to_string();
    assert!(
        text.contains("2 at once · batch all · failure budget none"),
        "{text}"
    );
    for (k, v) in [('c', "3"), ('b', "50%"), ('f', "1")] {
        key(&mut a, KeyCode::Char(k));
        typ(&mut a, v);
        key(&mut a, KeyCode::Enter);
    }
    key(&mut a, KeyCode::Char('b'));
    typ(&mut a, "lots");
    key(&mut a, KeyCode::Enter);
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|(m, e)| *e && m.starts_with("batch size:"))
    );
    let text = render(&mut a, 80, 24).backend().to_string();
    assert!(
        text.contains("3 at once · batch 50% · failure budget 1"),
        "{text}"
    );
    insta::assert_snapshot!("review_fanout_80x24", render(&mut a, 80, 24).backend());
    key(&mut a, KeyCode::Char('y'));
    let want = FanOpts {
        concurrency: Some(3),
        batch: Some(Amount::Percent(50)),
        max_fail: Some(Amount::Count(1)),
    };
    assert!(
        a.cmds
            .iter()
            .any(|c| matches!(c, Cmd::Install(_, f) if *f == want)),
        "{:?}",
        a.cmds
    );
}

#[test]
fn e_edits_the_selected_server_in_a_prefilled_form() {
    let mut a = full();
    key(&mut a, KeyCode::Char('e'));
    let text = render(&mut a, 80, 24).backend().to_string();
    assert!(text.contains("Edit server db-01"), "{text}");
    assert!(
        text.contains("10.0.0.20") && text.contains("db"),
        "prefilled: {text}"
    );
    assert!(!text.contains("* Name"), "the name is not edited: {text}");
    insta::assert_snapshot!("edit_server_80x24", render(&mut a, 80, 24).backend());
    // Host is the first field: replace it, then save.
    for _ in 0.."10.0.0.20".len() {
        key(&mut a, KeyCode::Backspace);
    }
    typ(&mut a, "10.0.0.21");
    a.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    match a.cmds.as_slice() {
        [Cmd::EditServer(name, spec)] => {
            assert_eq!(name, "db-01");
            assert_eq!(spec.host, "10.0.0.21");
            assert_eq!(spec.tags, ["db"]);
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 12 part 3: `:rollback APP` asks, then runs `rollback APP --on SERVER` for the one
/// selected server; with several marked servers it needs the server named.
#[test]
fn rollback_from_the_palette_asks_then_acts_on_one_server() {
    let mut a = full();
    key(&mut a, KeyCode::Char(':'));
    typ(&mut a, "rollback echo-ok");
    key(&mut a, KeyCode::Enter);
    match &a.modal {
        Some(Modal::Confirm { text, .. }) => assert!(
            text.contains("Return echo-ok on db-01 to its previous recorded deployment"),
            "{text}"
        ),
        other => panic!("no confirm: {other:?}"),
    }
    assert!(ops(&a).is_empty(), "nothing runs before the answer");
    key(&mut a, KeyCode::Char('y'));
    assert_eq!(
        ops(&a),
        vec![OpCmd::Rollback {
            app: "echo-ok".into(),
            server: "db-01".into(),
        }]
    );
    let mut b = full();
    b.fleet
        .marks
        .extend(["web1".to_string(), "web2".to_string()]);
    key(&mut b, KeyCode::Char(':'));
    typ(&mut b, "rollback echo-ok");
    key(&mut b, KeyCode::Enter);
    assert!(
        !matches!(b.modal, Some(Modal::Confirm { .. })),
        "{:?}",
        b.modal
    );
    assert!(ops(&b).is_empty());
    key(&mut b, KeyCode::Char(':'));
    typ(&mut b, "rollback echo-ok web2");
    key(&mut b, KeyCode::Enter);
    key(&mut b, KeyCode::Char('y'));
    assert_eq!(
        ops(&b),
        vec![OpCmd::Rollback {
            app: "echo-ok".into(),
            server: "web2".into(),
        }]
    );
}

#[test]
fn the_review_shows_the_plan_as_plan_prints_it() {
    use ptui_engine::change_plan::{ChangePlan, InputChange, PlannedServer, SkippedServer};
    use ptui_tui::app::Page;
    let mut a = full();
    a.open_install(
        "echo-ok",
        vec!["web1".into(), "web2".into(), "new-box".into()],
    );
    key(&mut a, KeyCode::Tab);
    typ(&mut a, "s3cret-token");
    a.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    let planned = |name: &str, change: &str, changes: Vec<InputChange>| PlannedServer {
        name: name.into(),
        status: "ready".into(),
        batch: 0,
        change: change.into(),
        inputs: [("message".to_string(), "hello".to_string())].into(),
        changes,
    };
    let plan = ChangePlan {
        app: "echo-ok".into(),
        action: "install".into(),
        version: "1.0".into(),
        script: "install.sh".into(),
        script_sha256: "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8".into(),
        pin: "pinned".into(),
        concurrency: 2,
        max_fail: None,
        batches: vec![vec!["web1".into(), "web2".into()]],
        servers: vec![
            planned("web1", "new", vec![]),
            planned(
                "web2",
                "changed",
                vec![InputChange {
                    input: "token".into(),
                    from: Some("***".into()),
                    to: Some("***".into()),
                }],
            ),
        ],
        skipped: vec![SkippedServer {
            name: "new-box".into(),
            kind: "host_key".into(),
            reason: "no trusted host key for 192.168.1.50:22".into(),
        }],
    };
    if let Some(Page::Form(f)) = a.page_mut() {
        f.plan = Some(Ok(plan));
    }
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(
        text.contains("install.sh sha256 5e884898da28… (pinned)"),
        "{text}"
    );
    assert!(text.contains("1: web1, web2"), "{text}");
    assert!(
        text.contains("skipped (host_key): no trusted host key"),
        "{text}"
    );
    assert!(!text.contains("s3cret-token"), "{text}");
    insta::assert_snapshot!("review_plan_120x40", render(&mut a, 120, 40).backend());
    // An upgrade's inputs are each server's own (filled from its deployment): listed per server.
    if let Some(Page::Form(f)) = a.page_mut() {
        f.action = JobAction::Upgrade;
    }
    let text = render(&mut a, 120, 40).backend().to_string();
    assert_eq!(
        text.matches("inputs: message=hello").count(),
        2,
        "one line per planned server: {text}"
    );
    if let Some(Page::Form(f)) = a.page_mut() {
        f.plan = Some(Err("server web9 is in maintenance".into()));
    }
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(
        text.contains("refused: server web9 is in maintenance"),
        "{text}"
    );
}

#[test]
fn the_palette_opens_a_named_servers_edit_form() {
    let mut a = full();
    key(&mut a, KeyCode::Char(':'));
    typ(&mut a, "server edit web2");
    key(&mut a, KeyCode::Enter);
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(text.contains("Edit server web2"), "{text}");
    assert!(
        text.contains("10.0.0.12"),
        "prefilled with web2's host: {text}"
    );
    let mut b = full();
    key(&mut b, KeyCode::Char(':'));
    typ(&mut b, "server edit nosuch");
    key(&mut b, KeyCode::Enter);
    assert_eq!(
        b.flash,
        Some(("no server named \"nosuch\"".into(), true)),
        "an unknown name is said"
    );
}
