//! `provision-tui bench-render`: frame times of the fleet screen with 10,000 servers and of the
//! log pane of a 1,000,000-line job, at 200x60 on a TestBackend, plus peak RSS.

use color_eyre::eyre::Result;
use ptui_engine::Engine;
use ptui_store::jobs::NewJob;
use ptui_tui::app::{App, Screen};
use ptui_tui::keymap::Action;
use ptui_tui::theme;
use ptui_types::job::{JobAction, LogStream};
use ptui_types::server::{Server, ServerSpec, ServerStatus};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Instant;

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Frame times in ms, sorted: the render alone, and the key's update (paging included) plus
/// the render.
struct Times {
    render: Vec<f64>,
    total: Vec<f64>,
}

/// Renders `frames` frames after applying `step` each time.
fn measure(app: &mut App, frames: usize, mut step: impl FnMut(&mut App, usize)) -> Result<Times> {
    let mut term = Terminal::new(TestBackend::new(200, 60))?;
    let mut render = Vec::with_capacity(frames);
    let mut total = Vec::with_capacity(frames);
    for i in 0..frames {
        let t0 = Instant::now();
        step(app, i);
        // The loop would read the missing log window off the loop; here it is read inline.
        app.settle();
        let t1 = Instant::now();
        term.draw(|f| ptui_tui::views::draw(f, app))?;
        render.push(t1.elapsed().as_secs_f64() * 1000.0);
        total.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    render.sort_by(|a, b| a.total_cmp(b));
    total.sort_by(|a, b| a.total_cmp(b));
    Ok(Times { render, total })
}

fn report(name: &str, t: &Times) {
    println!(
        "{name:<34} frames {:>5}  render p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>6.3} ms  | with update p99 {:>6.3} ms  max {:>6.3} ms",
        t.render.len(),
        pct(&t.render, 0.5),
        pct(&t.render, 0.99),
        t.render.last().copied().unwrap_or(0.0),
        pct(&t.total, 0.99),
        t.total.last().copied().unwrap_or(0.0),
    );
}

pub async fn run(lines: i64) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("ptui-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = ptui_types::config::Config::new(Some(dir.join("bench.db")), Vec::new());
    let eng = Engine::open(config)?;
    // The log lives in SQLite, as a real job's would.
    let t = Instant::now();
    let server = eng.add_server(&ServerSpec {
        name: "bench".into(),
        host: "127.0.0.1".into(),
        port: 22,
        user: "root".into(),
        ..Default::default()
    })?;
    // A second connection to the same database (the engine keeps its store to itself).
    let store = ptui_store::Store::open_location(&eng.config().database())?;
    let job = store.create_job(&NewJob {
        server_id: server.id,
        server_name: &server.name,
        app_id: "bench",
        app_version: "1",
        action: JobAction::Install,
        masked_inputs: &serde_json::json!({}),
        owner: "bench",
    })?;
    let mut seq = 0i64;
    while seq < lines {
        let n = (lines - seq).min(20_000);
        let batch: Vec<(LogStream, i64, String)> = (0..n)
            .map(|i| {
                let s = seq + i + 1;
                let stream = if s % 13 == 0 { LogStream::Stderr } else { LogStream::Stdout };
                (stream, 1_700_000_000_000 + s, format!("[{s:>7}] unpacking package {s} of the build, writing files to /usr/lib/x86_64-linux-gnu and running triggers"))
            })
            .collect();
        store.append_logs(job.id, &batch)?;
        seq += n;
    }
    println!(
        "setup: {lines} log lines written in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let rss_setup = peak_rss_kb();

    let mut app = App::with_engine(theme::dark(), eng.clone());
    app.fleet.servers = (0..10_000)
        .map(|i| Server {
            id: i + 10,
            name: format!("srv-{i:05}"),
            host: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
            port: 22,
            user: "root".into(),
            identity: None,
            jump: None,
            tags: vec!["bench".into(), format!("rack{}", i % 40)],
            password_env: None,
            status: ServerStatus::ALL[(i % 10) as usize],
            created_at: 0,
            updated_at: 0,
            site: ptui_types::server::default_site(),
        })
        .collect();
    app.fleet.reorder();
    app.now_ms = ptui_types::time::now_ms();

    let fleet = measure(&mut app, 600, |a, i| {
        a.update(if i % 100 < 50 {
            Action::PageDown
        } else {
            Action::Up
        });
    })?;
    report("fleet 10k servers (scrolling)", &fleet);
    let t = Instant::now();
    app.update(Action::Sort);
    app.update(Action::Sort);
    println!(
        "fleet re-sort by status: {:.2} ms (on change, not per frame)",
        t.elapsed().as_secs_f64() * 1000.0
    );

    app.screen = Screen::Jobs;
    app.reload_jobs();
    app.settle();
    app.jobs.focus_log = true;
    let follow = measure(&mut app, 300, |_, _| {})?;
    report("log 1M lines, follow (tail)", &follow);
    let scroll = measure(&mut app, 600, |a, i| {
        a.update(if i % 3 == 0 {
            Action::PageUp
        } else {
            Action::Up
        });
    })?;
    report("log 1M lines, scrolling back", &scroll);
    app.update(Action::Wrap);
    let wrap = measure(&mut app, 300, |a, _| a.update(Action::PageUp))?;
    report("log 1M lines, wrapped, paging", &wrap);
    let jump = measure(&mut app, 100, |a, i| {
        a.update(if i % 2 == 0 {
            Action::Top
        } else {
            Action::Bottom
        });
    })?;
    report("log 1M lines, after g/G jumps", &jump);

    let mut all = Times {
        render: Vec::new(),
        total: Vec::new(),
    };
    for t in [fleet, follow, scroll, wrap, jump] {
        all.render.extend(t.render);
        all.total.extend(t.total);
    }
    all.render.sort_by(|a, b| a.total_cmp(b));
    all.total.sort_by(|a, b| a.total_cmp(b));
    report("all frames", &all);
    println!(
        "log lines in memory: {} (window), total in SQLite: {lines}",
        app.jobs.log.lines.len()
    );
    println!(
        "peak RSS (VmHWM): {:.1} MB (after setup {:.1} MB)",
        peak_rss_kb() as f64 / 1024.0,
        rss_setup as f64 / 1024.0
    );
    drop(app);
    drop(eng);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
