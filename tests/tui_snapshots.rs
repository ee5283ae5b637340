//! Snapshots of every dashboard screen at 80x24 and 120x40, from fixed state (no clock, no
//! database paths that vary). Colours are checked separately with buffer cells.

#[path = "tui_fixtures/fanout.rs"]
mod fanout;
#[path = "tui_fixtures/health.rs"]
mod health;
#[path = "tui_fixtures/incidents.rs"]
mod incidents;
#[path = "tui_fixtures/jobforms.rs"]
mod jobforms;
#[path = "tui_fixtures/ops.rs"]
mod ops;
#[path = "tui_fixtures/rendering.rs"]
mod rendering;
mod tui_fixtures;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ptui_tui::app::{App, Modal, Screen};
use ptui_tui::keymap::Action;
use ptui_tui::theme;
use ptui_types::hostkey::{HostKeyVerdict, RecordedKey};
use ptui_types::job::JobStatus;
use ptui_types::server::ServerStatus;
use tui_fixtures::*;

/// Snapshots a state at both sizes.
fn snap(name: &str, mut make: impl FnMut() -> App) {
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = make();
        let term = render(&mut app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), term.backend());
    }
}

#[test]
fn fleet() {
    snap("fleet_empty", empty);
    snap("fleet", || {
        let mut a = full();
        a.update(Action::Mark);
        a
    });
    // Servers in two sites: the fleet shows each one's site.
    snap("fleet_sites", || {
        let mut a = full();
        a.fleet.servers[0].site = "eu-west".into();
        a.fleet.servers[1].site = "us-east".into();
        a
    });
    snap("fleet_filtered", || {
        let mut a = full();
        key(&mut a, KeyCode::Char('/'));
        typ(&mut a, "web");
        a
    });
}

#[test]
fn server_detail() {
    snap("detail", || {
        let mut a = full();
        a.update(Action::Enter);
        a
    });
}

#[test]
fn catalog() {
    snap("catalog_empty", || {
        let mut a = empty();
        a.screen = Screen::Catalog;
        a
    });
    snap("catalog", || {
        let mut a = full();
        a.screen = Screen::Catalog;
        a
    });
}

fn install_form() -> App {
    let mut a = full();
    a.open_install("echo-ok", vec!["web1".into()]);
    a
}

#[test]
fn install_form_with_validation_error() {
    snap("form_error", || {
        let mut a = install_form();
        key(&mut a, KeyCode::Tab);
        typ(&mut a, "abc");
        key(&mut a, KeyCode::Tab);
        typ(&mut a, "x9"); // the port refuses the x
        a
    });
    snap("form_visible_if", || {
        let mut a = install_form();
        for _ in 0..3 {
            key(&mut a, KeyCode::Tab);
        }
        key(&mut a, KeyCode::Char(' '));
        a
    });
}

#[test]
fn review_masks_secrets() {
    snap("review", || {
        let mut a = install_form();
        key(&mut a, KeyCode::Tab);
        typ(&mut a, "s3cret-token");
        a.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
        a
    });
    let mut a = install_form();
    key(&mut a, KeyCode::Tab);
    typ(&mut a, "s3cret-token");
    for reveal in [false, true] {
        let term = render(&mut a, 120, 40);
        let text = term.backend().to_string();
        assert_eq!(text.contains("s3cret-token"), reveal, "reveal={reveal}");
        a.key(KeyEvent::new(KeyCode::Char('v'), KeyModifiers::CONTROL));
    }
    a.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    let term = render(&mut a, 120, 40);
    assert!(
        !term.backend().to_string().contains("s3cret-token"),
        "review shows ***"
    );
}

#[test]
fn add_server_form() {
    snap("add_server", || {
        let mut a = full();
        key(&mut a, KeyCode::Char('a'));
        typ(&mut a, "web3");
        a
    });
}

#[test]
fn jobs() {
    snap("jobs_empty", || {
        let mut a = empty();
        a.screen = Screen::Jobs;
        a
    });
    snap("jobs_log_follow", || {
        let mut a = full();
        a.screen = Screen::Jobs;
        a.jobs.focus_log = true;
        a
    });
    // A job run by another site's bastion, and a site no live process serves.
    snap("jobs_log_other_site", || {
        let mut a = full();
        a.screen = Screen::Jobs;
        a.jobs.focus_log = true;
        a.jobs.jobs[0].site = Some("eu-west".into());
        a.jobs.jobs[0].owner = Some("4242@bastion-eu".into());
        a.summary.unserved_sites = vec!["us-east".into()];
        a
    });
    snap("jobs_log_wrap_search", || {
        let mut a = full();
        a.screen = Screen::Jobs;
        a.jobs.focus_log = true;
        a.jobs.log.wrap = true;
        a.jobs.log.timestamps = true;
        a.jobs.log.search = Some("step 3".into());
        a.jobs.log.hit = Some(38);
        a
    });
    // Issue 12 part 3: a run the configuration guard rolled back shows its own status.
    snap("jobs_rolled_back", || {
        let mut a = full();
        a.screen = Screen::Jobs;
        let mut j = job(4, "web1", JobStatus::RolledBack);
        j.error_kind = Some(ptui_types::error::ErrorKind::Configuration);
        j.exit_code = Some(3);
        a.jobs.jobs.insert(0, j);
        a.jobs.log.job_id = Some(4);
        a.jobs.log.lines.clear();
        let lines = [
            "provision-tui: kept a copy of the configuration of echo-ok (2 of 2 declared paths exist) in /var/backups/provision-tui/config/echo-ok/j000000000004",
            "error: the new configuration fails its check",
            "provision-tui: the run ended with exit status 3: restoring the configuration kept before it",
            "provision-tui: restored the configuration of echo-ok from /var/backups/provision-tui/config/echo-ok/j000000000004",
            "provision-tui: rolled back: echo-ok runs with the configuration it had before this run (restarted: echo); its health check passes",
        ];
        for (i, text) in lines.iter().enumerate() {
            a.jobs.log.lines.push_back(ptui_types::job::LogLine {
                job_id: 4,
                seq: i as i64 + 1,
                stream: ptui_types::job::LogStream::Stderr,
                ts: NOW - 50_000 + i as i64 * 100,
                text: text.to_string(),
            });
        }
        a.jobs.log.last_seq = lines.len() as i64;
        a
    });
}

#[test]
fn incidents_and_audit() {
    snap("incidents_empty", || {
        let mut a = full();
        a.screen = Screen::Incidents;
        a
    });
    snap("incidents", || with_incidents(full()));
    snap("audit_empty", || {
        let mut a = empty();
        a.screen = Screen::Audit;
        a
    });
    snap("audit", || {
        let mut a = full();
        a.screen = Screen::Audit;
        a
    });
    snap("audit_chain_intact", || {
        let mut a = full();
        a.screen = Screen::Audit;
        a.audit_chain = Some(ptui_tui::lists::AuditChain::Intact {
            rows: 3,
            head: Some("9f2c4e1ab37d05c8e6f1a2b3c4d5e6f7".into()),
        });
        a
    });
    snap("audit_chain_broken", || {
        let mut a = full();
        a.screen = Screen::Audit;
        a.audit_chain = Some(ptui_tui::lists::AuditChain::Broken(
            "row 2 was edited (its hash does not match its content)".into(),
        ));
        a
    });
}

#[test]
fn incidents_filter_and_esc_clears_filters() {
    let mut a = with_incidents(full());
    key(&mut a, KeyCode::Char('/'));
    typ(&mut a, "open");
    let shown: Vec<i64> = a.incidents.shown().iter().map(|i| i.id).collect();
    assert_eq!(shown, [5, 4, 3], "open = not resolved");
    key(&mut a, KeyCode::Enter);
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(
        text.contains("Incidents (3 of 5, open first) filter: open"),
        "{text}"
    );
    for (filter, want) in [
        ("web2", vec![5, 1]),
        ("server:web kind:host", vec![1]),
        ("state:res", vec![2, 1]),
        ("state:open disk", vec![4]),
        ("echo", vec![3]),
        ("nothing-like-it", vec![]),
    ] {
        a.incidents.filter = filter.into();
        let got: Vec<i64> = a.incidents.shown().iter().map(|i| i.id).collect();
        assert_eq!(got, want, "{filter}");
    }
    let text = render(&mut a, 80, 24).backend().to_string();
    assert!(text.contains("No incident matches the filter (Esc clears it)"));
    // j on an empty match list, then Esc: the filter goes and the list is back.
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Esc);
    assert!(a.incidents.filter.is_empty());
    assert_eq!(a.incidents.shown().len(), 5);
    // A selection past a shrunken list still renders.
    a.incidents.sel = 30;
    a.incidents.filter = "open".into();
    render(&mut a, 80, 24);

    let mut a = full();
    a.screen = Screen::Audit;
    key(&mut a, KeyCode::Char('/'));
    typ(&mut a, "trust");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.audit.filter, "trust");
    key(&mut a, KeyCode::Esc);
    assert!(a.audit.filter.is_empty(), "Esc clears the audit filter");
}

/// A job failing on its host key reads the key (once per server for a while), and the
/// dialog waits for any open dialog instead of replacing it.
#[test]
fn host_key_failure_opens_the_key_dialog() {
    use ptui_engine::Event;
    use ptui_tui::app::Cmd;
    use ptui_types::error::ErrorKind;
    let failed = |id, server: &str, kind| {
        let mut j = job(id, server, JobStatus::Failed);
        j.error_kind = Some(kind);
        Event::JobFinished { job: j }
    };
    let scans = |a: &App| -> Vec<String> {
        a.cmds
            .iter()
            .filter_map(|c| match c {
                Cmd::Scan(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    };
    let mut a = full();
    a.on_event(failed(7, "new-box", ErrorKind::Installation));
    assert!(scans(&a).is_empty(), "other failures do not scan");
    a.on_event(failed(8, "new-box", ErrorKind::HostKey));
    a.on_event(failed(9, "new-box", ErrorKind::HostKey));
    a.on_event(failed(10, "web2", ErrorKind::HostKey));
    assert_eq!(scans(&a), ["new-box", "web2"], "once per server");
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|(m, err)| *err && m.contains("host key"))
    );

    // The palette is open when the scan answers: the dialog waits for it to close.
    key(&mut a, KeyCode::Char(':'));
    a.on_scanned(Ok(scan(HostKeyVerdict::Changed {
        fingerprint: String::new(),
        key_type: "ssh-rsa".into(),
        recorded: vec![RecordedKey {
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:old".into(),
            file: "/x/known_hosts".into(),
            line: 1,
            ours: true,
        }],
    })));
    assert!(
        matches!(a.modal, Some(Modal::Palette(_))),
        "palette keeps the keys"
    );
    key(&mut a, KeyCode::Esc);
    assert!(
        matches!(&a.modal, Some(Modal::HostKeyChanged(s)) if s.server == "new-box"),
        "the red alert opens when the palette closes"
    );
    let text = render(&mut a, 80, 24).backend().to_string();
    assert!(text.contains("HOST KEY OF new-box HAS CHANGED"), "{text}");
    key(&mut a, KeyCode::Esc);
    assert!(a.modal.is_none());

    // Replacing takes R and then an explicit y; n records nothing.
    let trusts = |a: &App| -> Vec<bool> {
        a.cmds
            .iter()
            .filter_map(|c| match c {
                Cmd::Trust(_, replace) => Some(*replace),
                _ => None,
            })
            .collect()
    };
    let changed = || {
        scan(HostKeyVerdict::Changed {
            fingerprint: String::new(),
            key_type: "ssh-rsa".into(),
            recorded: vec![RecordedKey {
                key_type: "ssh-ed25519".into(),
                fingerprint: "SHA256:old".into(),
                file: "/home/op/.ssh/known_hosts".into(),
                line: 7,
                ours: false,
            }],
        })
    };
    a.on_scanned(Ok(changed()));
    key(&mut a, KeyCode::Char('R'));
    assert!(
        matches!(a.modal, Some(Modal::Confirm { .. })),
        "R asks first"
    );
    let text = render(&mut a, 80, 24).backend().to_string();
    assert!(
        text.contains("/home/op/.ssh/known_hosts (line 7)"),
        "the user's file is named: {text}"
    );
    key(&mut a, KeyCode::Char('n'));
    assert!(
        a.modal.is_none() && trusts(&a).is_empty(),
        "n records nothing"
    );
    a.on_scanned(Ok(changed()));
    key(&mut a, KeyCode::Char('R'));
    key(&mut a, KeyCode::Char('y'));
    assert_eq!(trusts(&a), [true], "y replaces");

    // With no dialog open the unknown-key dialog opens at once.
    a.on_scanned(Ok(scan(HostKeyVerdict::Unknown {
        fingerprint: String::new(),
        key_type: "ssh-ed25519".into(),
    })));
    assert!(matches!(a.modal, Some(Modal::HostKey(_))));
}

#[test]
fn dialogs() {
    snap("help_fleet", || {
        let mut a = full();
        key(&mut a, KeyCode::Char('?'));
        a
    });
    snap("help_log", || {
        let mut a = full();
        a.screen = Screen::Jobs;
        a.jobs.focus_log = true;
        key(&mut a, KeyCode::Char('?'));
        a
    });
    snap("hostkey_unknown", || {
        let mut a = full();
        let s = scan(HostKeyVerdict::Unknown {
            fingerprint: String::new(),
            key_type: "ssh-ed25519".into(),
        });
        a.on_scanned(Ok(s));
        a
    });
    snap("hostkey_changed", || {
        let mut a = full();
        let s = scan(HostKeyVerdict::Changed {
            fingerprint: String::new(),
            key_type: "ssh-rsa".into(),
            recorded: vec![RecordedKey {
                key_type: "ssh-ed25519".into(),
                fingerprint: "SHA256:oldoldoldoldoldoldoldoldoldoldoldoldoldold0".into(),
                file: "/var/lib/provision-tui/known_hosts".into(),
                line: 3,
                ours: true,
            }],
        });
        a.on_scanned(Ok(s));
        a
    });
    snap("confirm_status", || {
        let mut a = full();
        key(&mut a, KeyCode::Char('S'));
        while !matches!(&a.modal, Some(Modal::Picker { items, sel, .. }) if items[*sel] == ServerStatus::Decommissioned)
        {
            key(&mut a, KeyCode::Char('j'));
        }
        key(&mut a, KeyCode::Enter);
        a
    });
    snap("palette", || {
        let mut a = full();
        key(&mut a, KeyCode::Char(':'));
        typ(&mut a, "install ");
        a
    });
}

/// A crowded header (every status, queued jobs, open incidents, a long path) keeps running
/// jobs and open incidents in view at 80 columns; the path is cut in the middle or left out.
#[test]
fn header_degrades_by_priority() {
    let crowded = || {
        let mut a = full();
        a.fleet.servers = ServerStatus::ALL
            .iter()
            .enumerate()
            .map(|(i, st)| server(i as i64 + 1, &format!("s{i}"), "10.0.0.1", *st, &[]))
            .collect();
        a.fleet.reorder();
        a.summary.queued = 4;
        a.summary.incidents_open = 2;
        a.db_path = "~/.local/share/provision-tui/fleets/production-eu-west/state.db".into();
        a
    };
    snap("header_crowded", crowded);
    for (w, h) in [(60, 15), (80, 24), (120, 40)] {
        let text = render(&mut crowded(), w, h).backend().to_string();
        let head: Vec<&str> = text.lines().take(2).collect();
        let head = head.join("\n");
        assert!(head.contains("jobs 1 running"), "{w}: {head}");
        assert!(head.contains("incidents 2 open"), "{w}: {head}");
        assert!(head.contains("state.db") || w < 80, "{w}: {head}");
    }
    // The fixture's header fits whole at 120 columns, path included.
    let text = render(&mut full(), 120, 40).backend().to_string();
    assert!(
        text.contains("db /var/lib/provision-tui/state.db"),
        "{text}"
    );
    assert!(text.contains("1 pending_setup · 1 ready"), "{text}");
}

/// Every screen's `?` shows all of its bindings at 80x24 (two columns when one does not fit).
#[test]
fn help_shows_every_binding_at_80x24() {
    use ptui_tui::keymap::{self, Ctx};
    let screens: Vec<(Ctx, App)> = vec![
        (Ctx::Fleet, full()),
        (Ctx::Detail, {
            let mut a = full();
            a.update(Action::Enter);
            a
        }),
        (Ctx::Catalog, {
            let mut a = full();
            a.screen = Screen::Catalog;
            a
        }),
        (Ctx::Form, install_form()),
        (Ctx::Review, {
            let mut a = install_form();
            key(&mut a, KeyCode::Tab);
            typ(&mut a, "s3cret-token");
            a.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
            a
        }),
        (Ctx::Jobs, {
            let mut a = full();
            a.screen = Screen::Jobs;
            a
        }),
        (Ctx::Log, {
            let mut a = full();
            a.screen = Screen::Jobs;
            a.jobs.focus_log = true;
            a
        }),
        (Ctx::Incidents, {
            let mut a = full();
            a.screen = Screen::Incidents;
            a
        }),
        (Ctx::Audit, {
            let mut a = full();
            a.screen = Screen::Audit;
            a
        }),
    ];
    for (ctx, mut a) in screens {
        assert_eq!(a.ctx(), ctx);
        // Set directly: in the form `?` types (the overlay still describes it).
        a.modal = Some(Modal::Help { scroll: 0 });
        let text = render(&mut a, 80, 24).backend().to_string();
        for b in keymap::active(ctx) {
            let want = format!("{:<3}", keymap::keys_text(&b));
            assert!(
                text.contains(want.trim_end()),
                "{ctx:?}: keys {want} missing"
            );
            assert!(text.contains(b.desc), "{ctx:?}: {:?} missing", b.desc);
        }
        assert!(
            !text.contains("scroll ·"),
            "{ctx:?}: no scrolling needed at 80x24"
        );
    }
}

/// Where two columns do not fit either, j/PgDn scroll to the last binding and back.
#[test]
fn help_scrolls_when_it_cannot_fit() {
    let mut a = full();
    a.update(Action::Help);
    let text = render(&mut a, 60, 15).backend().to_string();
    assert!(text.contains("j/k PgUp/PgDn scroll"), "{text}");
    assert!(text.contains("↓"), "an arrow says more is below");
    assert!(!text.contains("quit"), "the last binding is below the fold");
    for _ in 0..3 {
        key(&mut a, KeyCode::PageDown);
    }
    let text = render(&mut a, 60, 15).backend().to_string();
    assert!(text.contains("quit"), "scrolled to the end: {text}");
    assert!(!text.contains(" down "), "the first binding scrolled away");
    // Overshooting was clamped to the last page: one k shows one earlier row.
    key(&mut a, KeyCode::Char('k'));
    let text = render(&mut a, 60, 15).backend().to_string();
    assert!(text.contains("↑↓"), "{text}");
    key(&mut a, KeyCode::Esc);
    assert!(a.modal.is_none(), "Esc closes help");
}

#[test]
fn too_small_never_panics() {
    for (w, h) in [(59, 24), (80, 14), (1, 1), (0, 0)] {
        let mut a = full();
        let term = render(&mut a, w, h);
        if w > 30 {
            assert!(term.backend().to_string().contains("terminal too small"));
        }
    }
    let mut a = full();
    insta::assert_snapshot!("too_small_40x12", render(&mut a, 40, 12).backend());
}

#[test]
fn statuses_are_coloured_by_meaning() {
    let mut a = full();
    let term = render(&mut a, 120, 40);
    let buf = term.backend().buffer();
    let find = |word: &str| {
        for y in 0..buf.area.height {
            let row: String = (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect();
            if let Some(i) = row.find(word) {
                let x = row[..i].chars().count() as u16;
                return buf[(x, y)].fg;
            }
        }
        panic!("{word} not on screen");
    };
    let t = theme::dark();
    assert_eq!(Some(find("ready")), t.ok.fg);
    assert_eq!(Some(find("error ")), t.error.fg);
    assert_eq!(Some(find("maintenance")), t.warn.fg);
}

#[test]
fn footer_hints_come_from_the_keymap() {
    let mut a = full();
    let term = render(&mut a, 120, 40);
    let text = term.backend().to_string();
    for (k, d) in ptui_tui::keymap::hints(a.ctx()).into_iter().take(4) {
        assert!(text.contains(&format!("{k} {d}")), "missing hint {k} {d}");
    }
}

#[test]
fn readme_and_docs_list_every_binding() {
    let table = ptui_tui::keymap::markdown();
    for file in ["README.md", "docs/TUI.md"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            text.contains(&table),
            "{file} is out of date with the keymap; run `cargo run -- keys-markdown` style regen: paste ptui_tui::keymap::markdown()"
        );
    }
}

/// Output the dashboard could not store (full disk, read-only database) leaves the job
/// detached: the status line says so and why, instead of the lines going missing silently.
#[test]
fn a_job_detached_for_unstored_output_is_reported_on_the_status_line() {
    use ptui_engine::Event;
    let mut a = full();
    let mut j = job(41, "web2", JobStatus::Detached);
    j.error_message =
        Some("12 log lines could not be stored here (no space left on device); the job goes on on its server".into());
    a.on_event(Event::JobDetached { job: j });
    let (msg, is_error) = a.flash.clone().expect("a status-line message");
    assert!(is_error, "{msg}");
    assert!(
        msg.contains("#41") && msg.contains("web2") && msg.contains("could not be stored"),
        "{msg}"
    );
}
