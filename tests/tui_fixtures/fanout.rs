//! Issue 14's fan-out progress view: a row per server from the engine's events.

use crate::tui_fixtures::*;
use crossterm::event::KeyCode;
use ptui_engine::Event;
use ptui_engine::jobs::fanout::FanoutEvent;
use ptui_tui::app::Screen;
use ptui_types::job::{LogLine, LogStream};

#[test]
fn the_fanout_view_shows_each_server_and_opens_its_log() {
    let mut a = full();
    a.screen = Screen::Jobs;
    key(&mut a, KeyCode::Char('F'));
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|(m, e)| *e && m.contains("no fan-out"))
    );
    // The first job can launch before the start's answer reaches the loop: kept, replayed.
    a.on_event(Event::Fanout {
        fanout: FanoutEvent::JobLaunched {
            fanout_id: 7,
            server: "web1".into(),
            job_id: 3,
        },
    });
    a.track_fanout(
        7,
        "echo-ok",
        &["web1".into(), "web2".into(), "db-01".into()],
    );
    a.on_event(Event::Fanout {
        fanout: FanoutEvent::JobLaunched {
            fanout_id: 7,
            server: "web2".into(),
            job_id: 2,
        },
    });
    a.on_event(Event::Fanout {
        fanout: FanoutEvent::Skipped {
            fanout_id: 7,
            servers: vec!["db-01".into()],
            reason: "failure budget spent".into(),
        },
    });
    a.on_event(Event::JobLog {
        job_id: 2,
        lines: vec![LogLine {
            job_id: 2,
            seq: 9,
            stream: LogStream::Stderr,
            ts: NOW,
            text: "E: unable to locate package\r\n".into(),
        }],
    });
    key(&mut a, KeyCode::Char('F'));
    for (w, h) in [(80, 24), (120, 40)] {
        let text = render(&mut a, w, h).backend().to_string();
        assert!(
            text.contains("Fan-out #7 echo-ok · 2/3 done"),
            "{w}: {text}"
        );
        let row = |n: &str| {
            text.lines()
                .find(|l| l.contains(n))
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            row("web1").contains("running") && row("web1").contains("2m00s"),
            "{w}: {text}"
        );
        assert!(
            row("web2").contains("failed") && row("web2").contains("installation"),
            "{w}"
        );
        assert!(
            row("web2").contains("E: unable to locate"),
            "{w}: {}",
            row("web2")
        );
        assert!(row("db-01").contains("skipped"), "{w}: {text}");
    }
    insta::assert_snapshot!("fanout_progress_80x24", render(&mut a, 80, 24).backend());
    // Enter on web2 opens its job's log.
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Enter);
    assert!(a.jobs.focus_log);
    assert_eq!(a.jobs.selected().map(|j| j.id), Some(2));
}
