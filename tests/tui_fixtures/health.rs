//! Issue 14's health items on screen: ticking ages, check now (marked servers, the header's
//! pending count), a check after a trust, the detail page's last sample and uptime.

use crate::tui_fixtures::*;
use crossterm::event::KeyCode;
use ptui_engine::queries::{HealthPage, Uptime};
use ptui_tui::app::{App, Cmd, Screen};
use ptui_types::health::{AppHealth, MountUse, Sample};
use ptui_types::job::JobStatus;

fn idle() -> App {
    let mut a = full();
    a.summary.running = 0;
    for j in &mut a.jobs.jobs {
        j.status = JobStatus::Succeeded;
    }
    a
}

fn sample(server: &str) -> Sample {
    let mut s = Sample::unreachable(
        1,
        server,
        ptui_types::health::IncidentKind::AuthFailed,
        String::new(),
    );
    s.ok = true;
    s.failure = None;
    s.error = None;
    s.ts = NOW - 20_000;
    s.latency_ms = 9;
    s.load = Some([0.5, 0.25, 0.1]);
    s.mem_pct = Some(61.0);
    s.disk_pct = Some(93.0);
    s.mounts_over = vec![MountUse {
        mount: "/var".into(),
        pct: 93.0,
    }];
    s.docker = Some("active".into());
    s.apps = vec![AppHealth {
        app_id: "echo-ok".into(),
        ok: true,
        detail: "http 200".into(),
    }];
    s
}

#[test]
fn ages_tick_only_while_a_visible_value_depends_on_the_clock() {
    let mut a = idle();
    assert!(a.ticking(), "the Fleet shows sample ages");
    a.screen = Screen::Catalog;
    assert!(!a.ticking(), "nothing on the Catalog moves with time");
    let mut b = with_incidents(idle());
    assert!(b.ticking(), "incident ages");
    b.incidents.items.clear();
    assert!(!b.ticking());
    let mut c = empty();
    assert!(!c.ticking(), "an empty fleet is idle");
    c.summary.running = 1;
    assert!(c.ticking(), "a running job's elapsed time");
}

#[test]
fn check_now_counts_as_pending_until_its_samples_arrive() {
    let mut a = idle();
    // Mark two, then c checks the marked ones.
    key(&mut a, KeyCode::Char(' '));
    key(&mut a, KeyCode::Char(' '));
    key(&mut a, KeyCode::Char('c'));
    let asked: Vec<Vec<String>> = a
        .cmds
        .iter()
        .filter_map(|c| match c {
            Cmd::CheckNow(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, [vec!["db-01".to_string(), "new-box".to_string()]]);
    let text = render(&mut a, 80, 24).backend().to_string();
    assert!(text.contains("checks 2 pending"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains(" new-box "))
        .unwrap_or_default();
    assert!(row.contains('…'), "{row}");
    key(&mut a, KeyCode::Char('c'));
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|(m, e)| *e && m.contains("already running"))
    );
    a.on_checked(
        vec!["db-01".into(), "new-box".into()],
        Ok(vec![sample("new-box")]),
    );
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(!text.contains("checks 2 pending"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains(" new-box "))
        .unwrap_or_default();
    assert!(row.contains("9ms") && row.contains("20s"), "{row}");
    assert!(text.contains("checked 1: all healthy"), "{text}");
}

#[test]
fn a_trusted_key_is_followed_by_a_check() {
    use ptui_tui::work::Msg;
    use ptui_types::hostkey::HostKeyVerdict;
    let mut a = idle();
    let s = scan(HostKeyVerdict::Unknown {
        fingerprint: String::new(),
        key_type: "ssh-ed25519".into(),
    });
    a.apply(Msg::Trusted(Box::new(s), Ok(())));
    assert!(
        a.cmds
            .iter()
            .any(|c| matches!(c, Cmd::CheckNow(n) if n == &["new-box".to_string()])),
        "{:?}",
        a.cmds
    );
    assert_eq!(a.pending_checks(), 1);
}

#[test]
fn the_detail_page_shows_the_last_sample_and_uptime() {
    let mut a = idle();
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Enter);
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(
        text.contains("Health") && text.contains("loading…"),
        "{text}"
    );
    if let Some(ptui_tui::app::Page::Detail(d)) = a.page_mut() {
        d.health = Some(HealthPage {
            last: Some(sample("web1")),
            uptime_24h: Uptime { ok: 99, total: 100 },
            uptime_7d: Uptime {
                ok: 695,
                total: 700,
            },
            apps: vec![(
                "echo-ok".into(),
                Uptime {
                    ok: 100,
                    total: 100,
                },
                Uptime {
                    ok: 690,
                    total: 700,
                },
            )],
        });
    }
    for (w, h) in [(80, 24), (120, 40)] {
        let text = render(&mut a, w, h).backend().to_string();
        for want in [
            "uptime 24h 99.0%  7d 99.3%",
            "last check 20s ago: healthy",
            "load 0.50 0.25 0.10  memory 61%  disk / 93%",
            "filesystem /var at 93%",
            "app echo-ok ok",
        ] {
            assert!(text.contains(want), "{w}: {want}: {text}");
        }
    }
    insta::assert_snapshot!("detail_health_80x24", render(&mut a, 80, 24).backend());
}

#[test]
fn an_unknown_host_key_shows_as_hostkey_not_auth() {
    let mut a = idle();
    let mut s = Sample::unreachable(
        1,
        "new-box",
        ptui_types::health::IncidentKind::AuthFailed,
        "host key of new-box (root@192.168.1.50) is not known (ssh-ed25519 SHA256:x); verify it"
            .into(),
    );
    s.ts = NOW - 1_000;
    a.on_event(ptui_engine::Event::HealthSample { sample: s });
    let text = render(&mut a, 80, 24).backend().to_string();
    let row = text
        .lines()
        .find(|l| l.contains(" new-box "))
        .unwrap_or_default();
    assert!(row.contains("hostkey") && !row.contains("auth"), "{row}");
}
