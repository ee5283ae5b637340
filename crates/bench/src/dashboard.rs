//! `provision-tui bench dashboard --hosts N`: the real dashboard loop on a TestBackend while a
//! fan-out to N local sshd streams log lines into the same database. Scripted keys move through
//! the fleet, open a detail page, switch tabs and scroll a live log. Reports frame time (render
//! and flush) and keypress-to-frame latency.

use crate::cgroup::ServerCgroup;
use crate::sshd::Fleet;
use color_eyre::eyre::Result;
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use futures::channel::mpsc;
use ptui_tui::app::App;
use ptui_tui::event::{FrameSink, run_loop_with};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The streaming installer: one numbered line every 20 ms for `secs` seconds (perl, so each
/// line is not a fork of `sleep`).
fn write_streaming_installer(dir: &Path, secs: u64) -> Result<()> {
    let inst = dir.join("installers/stream");
    std::fs::create_dir_all(&inst)?;
    std::fs::write(
        inst.join("manifest.yml"),
        "id: stream\nname: Stream\nversion: \"1\"\ndescription: Print a numbered line every 20 ms.\ninstall_script: install.sh\ntimeout_seconds: 300\n",
    )?;
    let lines = secs * 50;
    std::fs::write(
        inst.join("install.sh"),
        format!(
            "#!/bin/sh\nexec perl -e '$|=1; for my $i (1..{lines}) {{ print \"[$i] unpacking package $i of the build and running its triggers\\n\"; select(undef, undef, undef, 0.02) }}'\n"
        ),
    )?;
    Ok(())
}

/// The loop thread's scheduler counters (ns): time on a CPU, and time runnable but waiting
/// for one (`/proc/self/task/TID/schedstat`). What a wait is not made of these, the thread
/// spent blocked or asleep.
#[derive(Clone, Copy, Default)]
struct Sched {
    cpu: u64,
    queued: u64,
}

fn sched_of(tid: i64) -> Sched {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"));
    let mut it = text.as_deref().unwrap_or("").split_whitespace();
    let mut next = || it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    Sched {
        cpu: next(),
        queued: next(),
    }
}

/// One drawn frame: when it started and ended, how many keys were handled before it, and the
/// loop thread's counters at its end.
#[derive(Clone, Copy)]
struct Frame {
    start: Instant,
    end: Instant,
    keys: u64,
    sched: Sched,
}

#[derive(Default)]
struct Recorder {
    frames: Arc<Mutex<Vec<Frame>>>,
    /// The loop thread's id, once it drew a frame.
    tid: Arc<AtomicI64>,
}

impl FrameSink for Recorder {
    fn begin(&mut self) -> std::io::Result<()> {
        if self.tid.load(Ordering::Relaxed) == 0 {
            // SAFETY: gettid has no preconditions.
            self.tid
                .store(i64::from(unsafe { libc::gettid() }), Ordering::Relaxed);
        }
        Ok(())
    }
    fn end(&mut self, started: Instant, keys: u64) -> std::io::Result<()> {
        let sched = sched_of(self.tid.load(Ordering::Relaxed));
        if let Ok(mut f) = self.frames.lock() {
            f.push(Frame {
                start: started,
                end: Instant::now(),
                keys,
                sched,
            });
        }
        Ok(())
    }
    fn bell(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The scripted operator: fleet moves, a detail page, the Jobs tab and its live log.
fn script() -> Vec<KeyEvent> {
    use KeyCode::*;
    let c = Char;
    [
        c('j'),
        c('j'),
        c('j'),
        Enter,
        c('j'),
        Esc,
        c('j'),
        Tab,
        Tab,
        c('j'),
        c('j'),
        Enter,
        c('k'),
        c('k'),
        PageUp,
        PageUp,
        c('k'),
        c('G'),
        Esc,
        c('j'),
        c('4'),
        c('5'),
        c('1'),
        c('k'),
        c('k'),
    ]
    .into_iter()
    .map(|k| KeyEvent::new(k, KeyModifiers::NONE))
    .collect()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn line(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{name:<24} n {:>5}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        v.len(),
        pct(&v, 0.5),
        pct(&v, 0.99),
        v.last().copied().unwrap_or(0.0)
    );
}

/// Where keys' waits went, on the loop thread: on a CPU, runnable but waiting for one, and
/// the rest (not runnable: the key still in transit to the loop, a lock or I/O, or asleep until
/// a frame slot).
fn split(name: &str, parts: &[(f64, f64, f64)]) {
    let wall: f64 = parts.iter().map(|p| p.0).sum();
    if wall <= 0.0 {
        return;
    }
    let cpu: f64 = parts.iter().map(|p| p.1).sum();
    let queued: f64 = parts.iter().map(|p| p.2).sum();
    let rest = (wall - cpu - queued).max(0.0);
    println!(
        "  {name:<22} mean {:>6.2} ms: on CPU {:>4.1}%, waiting for a CPU {:>4.1}%, not runnable {:>4.1}% (the key in transit, or a lock or I/O)",
        wall / parts.len() as f64,
        100.0 * cpu / wall,
        100.0 * queued / wall,
        100.0 * rest / wall
    );
}

/// How the run is set up.
pub struct DashboardBench<'a> {
    pub hosts: usize,
    pub secs: u64,
    pub key_every_ms: u64,
    pub user: Option<&'a str>,
    /// Run the sshd fleet at the same CPU weight as the client instead of confining it.
    pub servers_share_cpu: bool,
}

pub async fn run(b: &DashboardBench<'_>) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("ptui-bench-dash-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let r = run_in(&dir, b).await;
    let _ = std::fs::remove_dir_all(&dir);
    r
}

async fn run_in(dir: &Path, b: &DashboardBench<'_>) -> Result<()> {
    let (hosts, secs, key_every_ms) = (b.hosts, b.secs, b.key_every_ms);
    eprintln!("starting {hosts} sshd on 127.0.0.1 ...");
    // Declared before the fleet, so it is removed after the fleet's sshd are gone.
    let cgroup = if b.servers_share_cpu {
        None
    } else {
        match ServerCgroup::create() {
            Ok(cg) => Some(cg),
            Err(why) => {
                eprintln!("note: the sshd fleet shares the CPU with the client ({why})");
                None
            }
        }
    };
    let fleet = Fleet::start(hosts, dir, b.user)?;
    let confined = match &cgroup {
        Some(cg) => match cg.confine(&fleet.pids()) {
            Ok(()) => true,
            Err(why) => {
                eprintln!("note: the sshd fleet shares the CPU with the client ({why})");
                false
            }
        },
        None => false,
    };
    // A little longer than the keys run, so the log is live until the end.
    write_streaming_installer(dir, secs + 5)?;
    let eng = crate::engine_for(&fleet, dir, &[])?;
    let handle = crate::start_on_all(&eng, "stream", hosts)?;

    let mut app = App::with_engine(ptui_tui::theme::dark(), eng.clone());
    let mut term = Terminal::new(TestBackend::new(160, 48))?;
    let (key_tx, key_rx) = mpsc::unbounded::<std::io::Result<TermEvent>>();
    let mut rec = Recorder::default();
    let frames = rec.frames.clone();
    let sent: Arc<Mutex<Vec<(Instant, Sched)>>> = Arc::default();
    let sent_by_driver = sent.clone();
    let loop_tid = rec.tid.clone();
    let driver = tokio::spawn(async move {
        let keys = script();
        let t0 = Instant::now();
        let mut i = 0usize;
        while t0.elapsed() < Duration::from_secs(secs) {
            tokio::time::sleep(Duration::from_millis(key_every_ms)).await;
            let sched = sched_of(loop_tid.load(Ordering::Relaxed));
            if let Ok(mut s) = sent_by_driver.lock() {
                s.push((Instant::now(), sched));
            }
            if key_tx
                .unbounded_send(Ok(TermEvent::Key(keys[i % keys.len()])))
                .is_err()
            {
                break;
            }
            i += 1;
        }
        // Let the last key's frame come out, then end the input: the loop returns.
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let t0 = Instant::now();
    run_loop_with(&mut term, &mut app, eng.clone(), key_rx, &mut rec).await?;
    let wall = t0.elapsed().as_secs_f64();
    driver.await?;
    handle.cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), handle.done).await;

    let frames = frames.lock().map(|f| f.clone()).unwrap_or_default();
    let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
    let frame_ms: Vec<f64> = frames
        .iter()
        .map(|f| (f.end - f.start).as_secs_f64() * 1000.0)
        .collect();
    // Key i is shown by the first frame drawn after more than i keys were handled.
    let mut latency = Vec::new();
    // (wall, on CPU, waiting for a CPU) of each key, in ms.
    let mut parts = Vec::new();
    let mut unanswered = 0;
    for (i, (at, s0)) in sent.iter().enumerate() {
        match frames.iter().find(|f| f.keys > i as u64) {
            Some(f) => {
                let wall = (f.end - *at).as_secs_f64() * 1000.0;
                latency.push(wall);
                let ms = |ns: u64| ns as f64 / 1e6;
                parts.push((
                    wall,
                    ms(f.sched.cpu.saturating_sub(s0.cpu)),
                    ms(f.sched.queued.saturating_sub(s0.queued)),
                ));
            }
            None => unanswered += 1,
        }
    }
    let lines: i64 = eng
        .jobs(&Default::default())?
        .iter()
        .map(|j| eng.job_log_count(j.id).unwrap_or(0))
        .sum();
    println!(
        "\n{hosts} hosts streaming, {wall:.1}s, {} frames, {} keys ({unanswered} without a frame), {lines} log lines written",
        frames.len(),
        sent.len()
    );
    println!(
        "sshd fleet: {}",
        if confined {
            "in a cgroup of the lowest CPU weight (the servers of real use run elsewhere)"
        } else {
            "at the client's CPU weight (it competes with the dashboard for the same CPUs)"
        }
    );
    line("frame (render+flush)", frame_ms);
    line("keypress to frame", latency);
    split("all keys", &parts);
    parts.sort_by(|a, b| b.0.total_cmp(&a.0));
    split("slowest 1% of keys", &parts[..parts.len().div_ceil(100)]);
    // The tails follow the machine's load more than the dashboard: say what it was.
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "load average at the end: {} ({} CPUs)",
            l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
    }
    Ok(())
}
