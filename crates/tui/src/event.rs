//! The event loop: terminal input, engine events and command results in; one render per batch.

use super::app::{App, Cmd};
use super::views;
use crossterm::event::{Event as TermEvent, MouseEventKind};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use futures::{Stream, StreamExt};
use ptui_engine::{Engine, Event};
use ratatui::backend::Backend;
use ratatui::{DefaultTerminal, Terminal};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};

pub use super::work::Msg;

/// At most ~30 frames a second for engine-driven changes (keys draw at once).
const FRAME: Duration = Duration::from_millis(33);

pub fn now_ms() -> i64 {
    ptui_types::time::now_ms()
}

fn on_term(app: &mut App, ev: TermEvent, keys: &mut u64) {
    match ev {
        TermEvent::Key(k) => {
            *keys += 1;
            app.key(k);
        }
        TermEvent::Resize(..) => app.dirty = true,
        TermEvent::Paste(text) => app.paste(&text),
        TermEvent::Mouse(m) if app.mouse => match m.kind {
            MouseEventKind::ScrollDown => app.update(super::keymap::Action::Down),
            MouseEventKind::ScrollUp => app.update(super::keymap::Action::Up),
            _ => {}
        },
        _ => {}
    }
}

fn on_engine(app: &mut App, r: Result<Event, broadcast::error::RecvError>) -> bool {
    match r {
        Ok(e) => app.on_event(e),
        // Missed events: re-read from the database.
        Err(broadcast::error::RecvError::Lagged(_)) => app.reload(),
        Err(broadcast::error::RecvError::Closed) => return false,
    }
    true
}

/// Sends the commands `update` queued off the loop: SQLite work on a blocking thread (one
/// thread per batch, so a batch keeps its order: a sudo password is set before the install
/// that needs it), host-key scans on a task. Results come back on `tx`.
fn dispatch(app: &mut App, eng: &Engine, tx: &mpsc::UnboundedSender<Msg>) {
    app.queue_log_read();
    let mut batch = Vec::new();
    for cmd in std::mem::take(&mut app.cmds) {
        app.dirty = true;
        match cmd {
            Cmd::Scan(name) => {
                let (eng, tx) = (eng.clone(), tx.clone());
                tokio::spawn(async move {
                    let r = eng
                        .scan_host_key(&name)
                        .await
                        .map_err(|e| format!("{name}: {e}"));
                    let _ = tx.send(Msg::Scanned(r));
                });
            }
            Cmd::CheckNow(names) => {
                let (eng, tx) = (eng.clone(), tx.clone());
                tokio::spawn(async move {
                    let r = async {
                        let cfg = ptui_engine::health::config::HealthConfig::load(
                            &ptui_engine::health::config::default_path(),
                        )
                        .map_err(|e| format!("health config: {e}"))?;
                        eng.check_now(cfg, &names)
                            .await
                            .map_err(|e| format!("{e:#}"))
                    }
                    .await;
                    let _ = tx.send(Msg::Checked(names, r));
                });
            }
            Cmd::PackageManagers { job, server, app } => {
                let (eng, tx) = (eng.clone(), tx.clone());
                tokio::spawn(async move {
                    let r = eng
                        .package_manager_note(&server, &app)
                        .await
                        .map_err(|e| format!("{e:#}"));
                    let _ = tx.send(Msg::PackageNote(job, r));
                });
            }
            // The terminal's own I/O, like drawing: it stays on the loop.
            Cmd::Mouse(on) => {
                if let Err(e) = super::set_mouse_capture(on) {
                    app.mouse = !on;
                    app.error(format!("mouse capture: {e}"));
                }
            }
            cmd => {
                let ctx = app.context_for(&cmd);
                batch.push((cmd, ctx));
            }
        }
    }
    if batch.is_empty() {
        return;
    }
    let (eng, tx) = (eng.clone(), tx.clone());
    tokio::task::spawn_blocking(move || {
        for (cmd, ctx) in batch {
            if let Some(m) = super::work::perform(&eng, cmd, ctx)
                && tx.send(m).is_err()
            {
                return;
            }
        }
    });
}

/// Where frames go: the real terminal (synchronized output, the bell) or a bench recorder.
pub trait FrameSink {
    /// Before a frame is drawn.
    fn begin(&mut self) -> std::io::Result<()>;
    /// After it is drawn (flushed); `keys` is how many key events the loop has handled so far.
    fn end(&mut self, started: Instant, keys: u64) -> std::io::Result<()>;
    /// Rings the terminal bell.
    fn bell(&mut self) -> std::io::Result<()>;
    /// Runs an interactive command with the dashboard suspended (the real terminal only);
    /// what to say when it ended.
    fn suspend_for(&mut self, _argv: &[String], _mouse: bool) -> std::io::Result<String> {
        Ok("no terminal to open a shell on".into())
    }
}

/// The real terminal on stdout.
pub struct Stdout;

impl FrameSink for Stdout {
    fn begin(&mut self) -> std::io::Result<()> {
        // Synchronized output: the terminal shows the frame at once, without tearing over SSH.
        crossterm::execute!(std::io::stdout(), BeginSynchronizedUpdate)
    }
    fn end(&mut self, _started: Instant, _keys: u64) -> std::io::Result<()> {
        crossterm::execute!(std::io::stdout(), EndSynchronizedUpdate)
    }
    fn bell(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout();
        out.write_all(b"\x07")?;
        out.flush()
    }
    fn suspend_for(&mut self, argv: &[String], mouse: bool) -> std::io::Result<String> {
        super::shell::run_suspended(argv, mouse)
    }
}

fn draw<B: Backend>(
    term: &mut Terminal<B>,
    app: &mut App,
    sink: &mut dyn FrameSink,
    keys: u64,
) -> std::io::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    // Update work, not drawing: the fleet order moves once per frame under a health sort.
    app.fleet.reorder_if_stale();
    let started = Instant::now();
    app.now_ms = now_ms();
    sink.begin()?;
    let r = term.draw(|f| views::draw(f, app)).map(|_| ());
    sink.end(started, keys)?;
    r.map_err(std::io::Error::other)?;
    if std::mem::take(&mut app.bell) && std::env::var("PROVISION_TUI_BELL").as_deref() != Ok("0") {
        sink.bell()?;
    }
    crate::bastion::flush_copy(app)?;
    app.dirty = false;
    Ok(())
}

/// Runs until the user quits, on the real terminal with crossterm's event stream.
pub async fn run_loop(
    term: &mut DefaultTerminal,
    app: &mut App,
    eng: Engine,
) -> std::io::Result<()> {
    run_loop_with(term, app, eng, super::shell::pausable_input(), &mut Stdout).await
}

/// Runs until the user quits or `input` ends. Sleeps in `select!` when nothing happens: an
/// idle loop does not wake (a 1 s tick runs only while jobs run, for their elapsed time). The
/// engine's watch for other processes reads `PRAGMA data_version` once a second in its own
/// task, and wakes this loop only when the database changed.
pub async fn run_loop_with<B, S>(
    term: &mut Terminal<B>,
    app: &mut App,
    eng: Engine,
    input: S,
    sink: &mut dyn FrameSink,
) -> std::io::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = std::io::Result<TermEvent>> + Send + Unpin + 'static,
{
    // A thread of its own owns the terminal stream: a key reaches the loop without waiting for
    // a runtime worker busy with SSH sessions. The loop drains its channel without polling
    // the stream directly (polling EventStream with a no-op waker would lose wake-ups).
    let (key_tx, mut rx_input) = mpsc::unbounded_channel::<std::io::Result<TermEvent>>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("ptui-input".into())
        .spawn(move || {
            futures::executor::block_on(async move {
                let mut stream = input;
                while let Some(ev) = stream.next().await {
                    if stopped.load(std::sync::atomic::Ordering::Relaxed)
                        || key_tx.send(ev).is_err()
                    {
                        break;
                    }
                }
            })
        })?;
    let r = pump(term, app, eng, &mut rx_input, sink).await;
    // The thread ends at its next event (or with the process): the channel is closed now.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(rx_input);
    r
}

async fn pump<B>(
    term: &mut Terminal<B>,
    app: &mut App,
    eng: Engine,
    input: &mut mpsc::UnboundedReceiver<std::io::Result<TermEvent>>,
    sink: &mut dyn FrameSink,
) -> std::io::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
{
    let mut events = eng.subscribe();
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut keys = 0u64;
    let mut last_draw = Instant::now() - FRAME;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    draw(term, app, sink, keys)?;
    last_draw = Instant::now().max(last_draw);
    loop {
        let keys_before = keys;
        let ticking = app.ticking();
        let wait_frame = app.dirty;
        let next_frame = last_draw + FRAME;
        tokio::select! {
            ev = input.recv() => match ev {
                Some(Ok(ev)) => on_term(app, ev, &mut keys),
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            r = events.recv() => if !on_engine(app, r) { return Ok(()) },
            Some(m) = rx.recv() => app.apply(m),
            _ = tick.tick(), if ticking => app.dirty = true,
            _ = tokio::time::sleep_until(next_frame.into()), if wait_frame => {},
        }
        // Drain everything already queued, then render once.
        loop {
            let mut any = false;
            while let Ok(ev) = input.try_recv() {
                on_term(app, ev?, &mut keys);
                any = true;
            }
            loop {
                match events.try_recv() {
                    Ok(e) => {
                        app.on_event(e);
                        any = true;
                    }
                    Err(broadcast::error::TryRecvError::Lagged(_)) => {
                        app.reload();
                        any = true;
                    }
                    Err(_) => break,
                }
            }
            while let Ok(m) = rx.try_recv() {
                app.apply(m);
                any = true;
            }
            dispatch(app, &eng, &tx);
            if !any {
                break;
            }
        }
        if app.quit {
            return Ok(());
        }
        if let Some(argv) = app.shell.take() {
            // The loop waits for the shell: the dashboard is suspended meanwhile.
            let said = sink.suspend_for(&argv, app.mouse)?;
            term.clear().map_err(std::io::Error::other)?;
            app.info(said);
            app.reload();
            app.dirty = true;
        }
        // A key is answered at once (people type slower than frames); the engine's changes
        // wait for the next frame slot.
        if app.dirty && (keys > keys_before || last_draw.elapsed() >= FRAME) {
            draw(term, app, sink, keys)?;
            last_draw = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Modal;
    use crate::keymap::Action;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn engine(dir: &std::path::Path) -> Engine {
        let installers =
            // The workspace's fixtures (this crate lives in crates/tui).
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/installers");
        let eng = Engine::open(ptui_types::config::Config::new(
            Some(dir.join("state.db")),
            vec![installers],
        ))
        .expect("engine");
        eng.add_server(&ptui_types::server::ServerSpec {
            name: "web1".into(),
            host: "10.0.0.9".into(),
            port: 22,
            user: "deploy".into(),
            ..Default::default()
        })
        .expect("add");
        eng.set_server_sudo(
            "web1",
            &ptui_types::records::SudoSettings {
                escalate: Some(true),
                password_env: None,
                prompt: true,
            },
        )
        .expect("sudo");
        eng
    }

    fn screen(app: &mut App) -> String {
        let mut term =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).expect("term");
        term.draw(|f| views::draw(f, app)).expect("draw");
        let buf = term.backend().buffer();
        buf.content().iter().map(|c| c.symbol()).collect()
    }

    #[test]
    fn confirming_a_review_asks_for_the_sudo_password_masked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let eng = engine(tmp.path());
        let mut app = App::with_engine(crate::theme::dark(), eng.clone());
        app.open_install("whoami", vec!["web1".into()]);
        app.update(Action::Submit);
        app.update(Action::Yes);
        app.settle();
        assert!(
            matches!(app.modal, Some(Modal::SudoPassword(_))),
            "no password dialog: {:?}",
            app.modal
        );
        assert!(app.cmds.is_empty(), "{:?}", app.cmds);
        assert!(
            eng.jobs(&Default::default()).expect("jobs").is_empty(),
            "nothing starts before the password"
        );

        let secret = "s3cret-Pw";
        for c in secret.chars() {
            app.key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
        let shown = screen(&mut app);
        assert!(shown.contains("sudo password for deploy@web1"), "{shown}");
        assert!(shown.contains(&"*".repeat(secret.len())), "{shown}");
        assert!(!shown.contains(secret), "the password shows: {shown}");
        // Ctrl-v reveals, like every other password field.
        app.key(KeyEvent::new(KeyCode::Char('v'), KeyModifiers::CONTROL));
        assert!(screen(&mut app).contains(secret));

        app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert!(app.modal.is_none());
        assert!(
            matches!(app.cmds.as_slice(), [Cmd::SudoPassword { server, .. }, Cmd::Install(..)] if server == "web1"),
            "{:?}",
            app.cmds
        );
        // The password reaches the engine (memory); the install is not run here (no runtime).
        app.cmds.truncate(1);
        app.settle();
        assert_eq!(
            eng.servers_needing_sudo_password(&["web1".into()])
                .expect("check"),
            vec![]
        );
    }

    #[test]
    fn an_empty_sudo_password_is_not_sent_and_esc_goes_back_to_the_review() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let eng = engine(tmp.path());
        let mut app = App::with_engine(crate::theme::dark(), eng.clone());
        app.ask_sudo_passwords(
            ptui_engine::InstallRequest {
                app: "whoami".into(),
                servers: vec!["web1".into()],
                inputs: Default::default(),
                action: ptui_types::job::JobAction::Install,
            },
            Default::default(),
            vec![("web1".into(), "deploy@web1".into())],
        );
        app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert!(app.cmds.is_empty(), "{:?}", app.cmds);
        assert!(screen(&mut app).contains("enter the password"));
        app.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert!(app.modal.is_none());
        assert!(app.cmds.is_empty());
    }
}
