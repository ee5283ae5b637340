//! Two things a dashboard on a shared bastion needs: keys that would change something explain
//! why they cannot (read-only mode, a viewer or operator role: the engine refuses anyway), and
//! `y`, which copies the selected thing to the operator's own clipboard with OSC 52 (through
//! SSH and tmux, no X11 or clipboard daemon on the bastion).

use crate::app::{App, Modal, Page};
use crate::keymap::{Action, Ctx};
use ptui_engine::access::Change;

/// At most this much text is copied: terminals cap OSC 52 payloads (xterm and tmux accept
/// about 1 MB; some far less), and a bigger one is better fetched with `provision-tui logs`.
const MAX_COPY: usize = 512 * 1024;

/// The change a key would ask of the engine on this screen.
fn change_of(ctx: Ctx, a: Action) -> Option<Change> {
    Some(match a {
        Action::AddServer => Change::AddServer,
        Action::Import => Change::Import,
        Action::Trust => Change::TrustHostKey,
        Action::SetStatus => Change::ServerStatus,
        Action::Remove => Change::RemoveServer,
        Action::Install | Action::Rerun | Action::Uninstall | Action::Upgrade => Change::RunJob,
        Action::Cancel => Change::CancelJob,
        Action::Edit => Change::EditServer,
        Action::Maintenance => Change::Maintenance,
        Action::Policy => Change::Policy,
        Action::CheckNow => Change::HealthCheck,
        Action::Ack | Action::Note => Change::AcknowledgeIncident,
        // Enter on the catalog opens the install form.
        Action::Enter if ctx == Ctx::Catalog => Change::RunJob,
        _ => return None,
    })
}

/// Why this key does nothing here, for the status line; None when it may act.
pub(crate) fn refusal(app: &App, ctx: Ctx, a: Action) -> Option<String> {
    let change = change_of(ctx, a)?;
    let access = app.eng.as_ref()?.access();
    if access.may(change) {
        return None;
    }
    Some(match &access.readonly {
        Some(why) => format!("read-only: {} is not available ({why})", change.what()),
        None => format!(
            "{} needs the {} role; {} is {} ({})",
            change.what(),
            change.needs().as_str(),
            access.user,
            access.role.as_str(),
            access.source
        ),
    })
}

/// The help overlay's line under the keys marked ✗: why they are refused.
pub(crate) fn refused_line(app: &App) -> Option<String> {
    let access = app.eng.as_ref()?.access();
    Some(match &access.readonly {
        Some(why) => format!(" ✗ read-only: looking only ({why})"),
        None => format!(
            " ✗ not for the {} role ({}: {})",
            access.role.as_str(),
            access.user,
            access.source
        ),
    })
}

/// Whether the footer hint described `desc` is for a key that would be refused here (it is
/// drawn dimmed).
pub(crate) fn greyed(app: &App, ctx: Ctx, desc: &str) -> bool {
    crate::keymap::active(ctx)
        .iter()
        .any(|b| b.desc == desc && refusal(app, ctx, b.action).is_some())
}

/// What `y` copies in this context, and a name for it.
fn selected_text(app: &App, ctx: Ctx) -> Result<(String, &'static str), String> {
    match ctx {
        Ctx::Log => {
            let log = &app.jobs.log;
            // The search match, else the top line while scrolled, else the newest line.
            let seq = log
                .hit
                .or((!log.follow).then_some(log.top))
                .unwrap_or(log.end_seq().saturating_sub(1));
            log.get(seq)
                .map(|l| (l.text.clone(), "the log line"))
                .ok_or_else(|| "no log line to copy".to_string())
        }
        Ctx::Jobs => {
            let log = &app.jobs.log;
            if log.job_id.is_none() || log.lines.is_empty() {
                return Err("no job log to copy".into());
            }
            if log.first_seq() > 1 || log.end_seq() < log.last_seq {
                return Err(format!(
                    "the log is only partly loaded; `provision-tui logs {}` prints all of it",
                    log.job_id.unwrap_or_default()
                ));
            }
            let text: Vec<&str> = log.lines.iter().map(|l| l.text.as_str()).collect();
            Ok((text.join("\n"), "the job's log"))
        }
        Ctx::Fleet => app
            .fleet
            .selected()
            .map(|s| (s.address(), "the server's address"))
            .ok_or_else(|| "no server selected".to_string()),
        Ctx::Detail => match &app.page {
            Some(Page::Detail(d)) => Ok((d.server.address(), "the server's address")),
            _ => Err("no server shown".into()),
        },
        Ctx::HostKey => match &app.modal {
            Some(Modal::HostKey(scan)) => Ok((scan.fingerprint.clone(), "the fingerprint")),
            _ => Err("no host key shown".into()),
        },
        _ => Err("nothing to copy here".into()),
    }
}

/// `y`: queues the selected text for the terminal (written after the next frame).
pub(crate) fn copy_selected(app: &mut App, ctx: Ctx) {
    if app.eng.as_ref().is_some_and(|e| !e.config().access.osc52) {
        app.error("copying is off (clipboard: false in config.yml)");
        return;
    }
    match selected_text(app, ctx) {
        Ok((text, what)) if text.len() > MAX_COPY => app.error(format!(
            "{what} is {} KiB, more than a terminal takes in one copy ({} KiB)",
            text.len() / 1024,
            MAX_COPY / 1024
        )),
        Ok((text, what)) => {
            app.info(format!("copied {what} ({} bytes) with OSC 52", text.len()));
            app.copy = Some(text);
        }
        Err(e) => app.error(e),
    }
}

/// The OSC 52 sequence that puts `text` on the clipboard. The text is ours but came from
/// servers (log lines): its controls are made visible first, so what the operator pastes
/// into a shell later carries no escape sequences or carriage-return tricks.
pub fn osc52(text: &str) -> String {
    let clean: String = text
        .split('\n')
        .map(|l| ptui_types::sanitize::terminal_line(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    format!("\x1b]52;c;{}\x07", base64(clean.as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes a queued copy to the terminal (after a frame, like the bell).
pub(crate) fn flush_copy(app: &mut App) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(text) = app.copy.take() {
        let mut out = std::io::stdout();
        out.write_all(osc52(&text).as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dashboard over an existing database opened with `--readonly`.
    fn readonly_app(dir: &std::path::Path) -> App {
        let mut cfg = ptui_types::config::Config::new(Some(dir.join("state.db")), vec![]);
        drop(ptui_engine::Engine::open(cfg.clone()).expect("create db"));
        cfg.access.readonly = Some("--readonly".into());
        let mut app = App::new(crate::theme::dark());
        app.eng = Some(ptui_engine::Engine::open(cfg).expect("open"));
        app
    }

    #[test]
    fn read_only_greys_the_changing_hints_and_explains_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let app = readonly_app(tmp.path());
        assert!(greyed(&app, Ctx::Fleet, "add server"));
        assert!(greyed(&app, Ctx::Jobs, "cancel job"));
        assert!(!greyed(&app, Ctx::Fleet, "filter"));
        let why = refusal(&app, Ctx::Fleet, Action::Remove).expect("refused");
        assert!(why.starts_with("read-only: removing a server"), "{why}");
        assert_eq!(refusal(&app, Ctx::Fleet, Action::Filter), None);
    }

    #[test]
    fn read_only_marks_the_refused_keys_in_the_help_and_says_why() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut app = readonly_app(tmp.path());
        app.open_help();
        let mut term =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).expect("term");
        term.draw(|f| crate::views::draw(f, &app)).expect("draw");
        let buf = term.backend().buffer();
        let rows: Vec<String> = (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect()
            })
            .collect();
        let row = |words: &str| {
            rows.iter()
                .find(|r| r.contains(words))
                .cloned()
                .unwrap_or_else(|| panic!("no {words:?} in the help:\n{}", rows.join("\n")))
        };
        for refused in [
            "add server",
            "remove server",
            "edit server",
            "check now (marked)",
        ] {
            assert!(row(refused).contains(&format!("{refused} ✗")), "{refused}");
        }
        for allowed in ["filter", "details", "mark"] {
            assert!(!row(allowed).contains(&format!("{allowed} ✗")), "{allowed}");
        }
        assert!(row("✗ read-only: looking only (--readonly)").contains("--readonly"));
    }

    #[test]
    fn the_whole_log_is_copied_once_every_line_is_loaded() {
        use ptui_types::job::{LogLine, LogStream};
        let mut app = App::new(crate::theme::dark());
        app.jobs.log.job_id = Some(1);
        let lines: Vec<LogLine> = (1..=3)
            .map(|seq| LogLine {
                job_id: 1,
                seq,
                stream: LogStream::Stdout,
                ts: 0,
                text: format!("line {seq}"),
            })
            .collect();
        app.jobs.log.push(&lines);
        assert_eq!(
            selected_text(&app, Ctx::Jobs),
            Ok(("line 1\nline 2\nline 3".to_string(), "the job's log"))
        );
        // Two more lines stored than loaded: not the whole log.
        app.jobs.log.last_seq = 5;
        let err = selected_text(&app, Ctx::Jobs).expect_err("partial");
        assert!(err.contains("only partly loaded"), "{err}");
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn copied_text_carries_no_controls() {
        let seq = osc52("ok\x1b]0;pwned\x07\rfake\nline2");
        let b64 = seq
            .strip_prefix("\x1b]52;c;")
            .and_then(|s| s.strip_suffix('\x07'))
            .expect("frame");
        assert!(!b64.contains(['\x1b', '\x07', '\r']));
        // What a terminal decodes is the sanitised text: no ESC, BEL or CR in it.
        assert_eq!(base64("fake\nline2".as_bytes()), b64);
    }
}
