//! The dashboard: a full-screen, keyboard-driven front end over the engine. It sends commands
//! and renders events; it never opens SSH connections or SQL statements itself.

pub mod app;
mod bastion;
mod cancel;
mod dialogs;
pub mod event;
pub mod fanview;
pub mod fleet;
mod fleetkeys;
pub mod form;
pub mod incidents;
pub mod jobforms;
mod jobkeys;
pub mod keymap;
mod keymap_text;
pub mod lists;
pub mod logview;
pub mod ops;
pub mod overlays;
pub mod palette;
pub mod review;
pub mod shell;
pub mod theme;
mod update;
pub mod views;
pub mod work;

use ptui_engine::Engine;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Opens the dashboard and runs it until the user quits. The terminal is restored on return,
/// on error and on panic (ratatui's hook, chained to color-eyre's).
pub async fn run(engine: Engine, theme: Option<String>) -> color_eyre::Result<Option<String>> {
    let wanted = theme.or_else(theme::configured);
    let (theme, warning) = theme::load(wanted.as_deref());
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }
    // Another process's commits show up within about a second.
    engine.spawn_external_watch(Duration::from_millis(1000));
    let mut app = app::App::with_engine(theme, engine.clone());
    if let Some(w) = warning {
        app.error(w.to_string());
    }
    let mut term = ratatui::init();
    // A paste arrives whole (a PEM into a form field), not as keys that would press Enter.
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableBracketedPaste);
    // ratatui's hook restores the screen on panic; mouse capture (`M`) is ours to undo first.
    let restore_screen = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        release_mouse();
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableBracketedPaste);
        restore_screen(info);
    }));
    // Jobs whose process died are followed (and collected) here, now and while it runs.
    if let Err(e) = engine.adopt_detached(None) {
        app.error(format!("cannot adopt detached jobs: {e:#}"));
    }
    engine.spawn_adopter();
    let r = event::run_loop(&mut term, &mut app, engine.clone()).await;
    release_mouse();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableBracketedPaste);
    ratatui::restore();
    r?;
    Ok(after_quit(&engine, app.on_quit).await)
}

/// What quitting did with the jobs this dashboard followed, for the terminal it returns to.
async fn after_quit(engine: &Engine, on_quit: overlays::OnQuit) -> Option<String> {
    let running = engine.running_here();
    if running.is_empty() {
        return None;
    }
    match on_quit {
        overlays::OnQuit::LeaveRunning => Some(match engine.detach_running() {
            Ok((detached, dropped)) => format!(
                "{detached} job(s) left running on their servers{}; `provision-tui jobs` shows them, `provision-tui jobs reattach` follows them",
                if dropped > 0 {
                    format!(" ({dropped} not started yet, now over)")
                } else {
                    String::new()
                }
            ),
            Err(e) => format!(
                "cannot mark the running jobs detached ({e:#}); the next start of provision-tui does"
            ),
        }),
        overlays::OnQuit::Cancel => {
            for id in &running {
                // Fails only for a job that ended meanwhile.
                let _ = engine.cancel_job(*id);
            }
            let all = async {
                for id in &running {
                    let _ = engine.wait_job(*id).await;
                }
            };
            match tokio::time::timeout(Duration::from_secs(60), all).await {
                Ok(_) => Some(format!("{} job(s) cancelled", running.len())),
                Err(_) => Some("some jobs did not confirm their cancel within 60 s; `provision-tui jobs` shows them".into()),
            }
        }
    }
}

/// Whether the terminal's mouse capture is on (set where `M` switches it).
static MOUSE_CAPTURED: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_mouse_capture(on: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    if on {
        crossterm::execute!(out, crossterm::event::EnableMouseCapture)?;
    } else {
        crossterm::execute!(out, crossterm::event::DisableMouseCapture)?;
    }
    MOUSE_CAPTURED.store(on, Ordering::SeqCst);
    Ok(())
}

/// Turns mouse capture off if it is on; idempotent, so the panic hook and the normal exit can
/// both call it.
fn release_mouse() {
    if MOUSE_CAPTURED.swap(false, Ordering::SeqCst) {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
}
