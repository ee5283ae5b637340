//! `s`: an interactive `ssh` shell on the selected server, k9s-style. The dashboard is
//! suspended (terminal restored, the input thread parked so it reads no key meant for ssh),
//! `ssh` runs in the foreground with provision-tui's own known_hosts pinned, and the
//! dashboard comes back when the shell exits.

use super::app::{App, Cmd, Page};
use crossterm::event::Event as TermEvent;
use futures::Stream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set while a shell runs: the input thread stops reading the terminal.
static PAUSED: AtomicBool = AtomicBool::new(false);
/// The input thread's answer: it is not reading.
static PARKED: AtomicBool = AtomicBool::new(false);

/// Terminal events from a thread that can be paused (crossterm's poll/read; EventStream
/// cannot be stopped without losing the next key to it).
pub fn pausable_input() -> impl Stream<Item = std::io::Result<TermEvent>> + Send + Unpin {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let spawned = std::thread::Builder::new()
        .name("ptui-tty".into())
        .spawn(move || {
            loop {
                if PAUSED.load(Ordering::SeqCst) {
                    PARKED.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                PARKED.store(false, Ordering::SeqCst);
                // A short poll so a pause is seen quickly; input itself returns at once.
                match crossterm::event::poll(Duration::from_millis(100)) {
                    Ok(true) => {
                        if tx.unbounded_send(crossterm::event::read()).is_err() {
                            return;
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        let _ = tx.unbounded_send(Err(e));
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the terminal input thread: {e}");
    }
    rx
}

impl App {
    /// `s`: the shell's command line is built by the engine (off the loop; audited).
    pub fn ask_shell(&mut self) {
        let name = match &self.page {
            Some(Page::Detail(d)) => Some(d.server.name.clone()),
            _ => self.fleet.selected().map(|s| s.name.clone()),
        };
        match name {
            Some(n) => self.cmds.push(Cmd::Shell(n)),
            None => self.error("no server selected"),
        }
    }
}

/// Suspends the dashboard, runs `argv` on the terminal, and takes it back. Returns how the
/// shell ended, for the status line.
pub fn run_suspended(argv: &[String], mouse: bool) -> std::io::Result<String> {
    PAUSED.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(1);
    while !PARKED.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut out = std::io::stdout();
    let _ = crossterm::execute!(
        out,
        crossterm::event::DisableBracketedPaste,
        crossterm::event::DisableMouseCapture
    );
    ratatui::restore();
    let status = match argv.split_first() {
        Some((prog, args)) => std::process::Command::new(prog).args(args).status(),
        None => Err(std::io::Error::other("no command")),
    };
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(
        out,
        crossterm::terminal::EnterAlternateScreen,
        crossterm::event::EnableBracketedPaste
    )?;
    if mouse {
        crossterm::execute!(out, crossterm::event::EnableMouseCapture)?;
    }
    PAUSED.store(false, Ordering::SeqCst);
    Ok(match status {
        Ok(s) if s.success() => "shell closed".to_string(),
        Ok(s) => format!(
            "ssh ended with {}",
            s.code()
                .map_or("a signal".to_string(), |c| format!("exit {c}"))
        ),
        Err(e) => format!("cannot run ssh: {e} (is OpenSSH's ssh installed?)"),
    })
}
