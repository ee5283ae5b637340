//! The dashboard: a full-screen, keyboard-driven front end over the engine. It sends commands
//! and renders events; it never opens SSH connections or SQL statements itself.

pub mod app;
pub mod bench;
mod dialogs;
pub mod event;
pub mod form;
pub mod keymap;
pub mod logview;
pub mod palette;
pub mod theme;
mod update;
pub mod views;

use crate::engine::Engine;
use std::time::Duration;

/// Opens the dashboard and runs it until the user quits. The terminal is restored on return,
/// on error and on panic (ratatui's hook, chained to color-eyre's).
pub async fn run(engine: Engine, theme: Option<String>) -> color_eyre::Result<()> {
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
    let r = event::run_loop(&mut term, &mut app, engine).await;
    if app.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    Ok(r?)
}
