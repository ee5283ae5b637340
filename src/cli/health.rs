//! `provision-tui check|watch|incidents|policy|bench health`

use super::out::{self, errln, outln};
use super::{exit, fmt_ts};
use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, bail, eyre};
use ptui_engine::health::config::{HealthConfig, default_path, parse_duration};
use ptui_engine::health::{RecoveryPolicy, Sample};
use ptui_engine::{Engine, Event};

/// Exit code of `check` when a server is not healthy.
pub const UNHEALTHY: i32 = 20;

pub fn load_config() -> Result<HealthConfig> {
    HealthConfig::load(&default_path()).map_err(|e| eyre!("config: {e}"))
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Servers to check (default: every server not in maintenance, reserved or decommissioned).
    pub servers: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Print every event as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IncidentsArgs {
    /// Only open incidents.
    #[arg(long)]
    pub open: bool,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Also print each incident's timeline (always included with --json).
    #[arg(long)]
    pub timeline: bool,
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<IncidentAction>,
}

#[derive(Debug, Subcommand)]
pub enum IncidentAction {
    /// Acknowledge an open incident: its reminders stop and the timeline records who.
    Ack {
        id: i64,
        /// A note for the timeline.
        #[arg(long)]
        note: Option<String>,
    },
    /// Add a note to an incident's timeline.
    Note { id: i64, text: String },
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    pub server: String,
    /// notify (default) or auto.
    #[arg(long)]
    pub recovery: Option<String>,
    /// Base installer that recovery re-runs first.
    #[arg(long, conflicts_with = "no_base")]
    pub base_installer: Option<String>,
    #[arg(long)]
    pub no_base: bool,
    /// Check interval of this server (e.g. 30s); `default` for the global one.
    #[arg(long)]
    pub interval: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Start N local sshd and sweep them cold and warm with the real checker.
    Health {
        #[arg(long, default_value_t = 100)]
        hosts: usize,
        #[arg(long, default_value_t = 3)]
        sweeps: usize,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        #[arg(long, default_value = "30s")]
        timeout: String,
        /// Login user on the bench hosts (default: you). Remote rc files run on every exec.
        #[arg(long)]
        user: Option<String>,
    },
}

fn line(s: &Sample) -> String {
    let state = if s.maintenance {
        "maint"
    } else if s.ok {
        "ok"
    } else {
        "FAIL"
    };
    let pct = |v: Option<f64>| v.map(|v| format!("{v:.0}%")).unwrap_or_else(|| "-".into());
    let mut problems: Vec<String> = Vec::new();
    if let Some(e) = &s.error {
        problems.push(e.clone());
    }
    problems.extend(
        s.mounts_over
            .iter()
            .map(|m| format!("{} {:.0}%", m.mount, m.pct)),
    );
    if let Some(d) = s.docker.as_deref().filter(|d| *d != "active") {
        problems.push(format!("docker {d}"));
    }
    problems.extend(
        s.apps
            .iter()
            .filter(|a| !a.ok)
            .map(|a| format!("{}: {}", a.app_id, a.detail)),
    );
    for c in &s.states {
        let app = c
            .app_id
            .as_deref()
            .map(|a| format!("({a})"))
            .unwrap_or_default();
        problems.push(format!("{}{app} {:?}", c.kind, c.level).to_lowercase());
    }
    format!(
        "{:<20} {:<5} {:>7} {:>8} {:>5} {:>5} {:>5}  {}",
        s.server,
        state,
        format!("{}ms", s.latency_ms),
        s.connect_ms
            .map(|c| format!("{c}ms"))
            .unwrap_or_else(|| "warm".into()),
        s.load
            .map(|l| format!("{:.2}", l[0]))
            .unwrap_or_else(|| "-".into()),
        pct(s.mem_pct),
        pct(s.disk_pct),
        problems.join("; ")
    )
}

const HEADER: &str = "SERVER               STATE  LATENCY  CONNECT  LOAD   MEM  DISK  PROBLEMS";

pub async fn check(engine: &Engine, a: CheckArgs) -> Result<i32> {
    let cfg = load_config()?;
    let samples = engine.check_now(cfg, &a.servers).await?;
    if a.json {
        out::json_pretty(&samples)?;
    } else {
        outln!("{HEADER}");
        for s in &samples {
            outln!("{}", line(s));
        }
    }
    Ok(if samples.iter().all(|s| s.ok) {
        exit::OK
    } else {
        UNHEALTHY
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub async fn watch(engine: &Engine, a: WatchArgs) -> Result<i32> {
    let cfg = load_config()?;
    let mut rx = engine.subscribe();
    let (interval, channels) = (cfg.health.interval.0, cfg.notifications.channels.len());
    let stop = engine.start_health(cfg)?;
    // Jobs whose process died are collected here too, now and while it runs.
    let adopted = engine.adopt_detached(None)?;
    engine.spawn_adopter();
    // Registered as a runner of its sites: jobs queued for them from other bastions run here.
    let _serving = engine.serve_sites("watch")?;
    if !a.json {
        errln!(
            "watching every {interval:?} ({channels} channels), serving site(s) {}; Ctrl-C stops",
            engine.sites().join(", ")
        );
        if !adopted.is_empty() {
            errln!("following {} detached job(s) to their end", adopted.len());
        }
    }
    let sig = shutdown_signal();
    tokio::pin!(sig);
    loop {
        tokio::select! {
            _ = &mut sig => break,
            ev = rx.recv() => match ev {
                Ok(ev) => print_event(&ev, a.json),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    errln!("(skipped {n} events)");
                }
                Err(_) => break,
            }
        }
    }
    stop.cancel();
    // Give the loop a moment to release its lease.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    Ok(exit::OK)
}

fn print_event(ev: &Event, json: bool) {
    if json {
        let _ = out::json(ev);
        return;
    }
    let text = match ev {
        Event::HealthSample { sample } => line(sample),
        Event::IncidentChanged { incident: i } => format!(
            "incident #{} {}{} on {}: {} — {}",
            i.id,
            i.kind,
            i.app_id
                .as_deref()
                .map(|a| format!("({a})"))
                .unwrap_or_default(),
            i.server,
            i.state,
            i.details
        ),
        Event::Notification {
            channel,
            topic,
            outcome,
            detail,
        } => format!(
            "notification {topic} via {channel}: {outcome}{}",
            detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ),
        Event::ServerChanged { server } => {
            format!("server {} is now {}", server.name, server.status)
        }
        Event::JobFinished { job } => format!(
            "job #{} {} {} on {}: {}",
            job.id,
            job.action.as_str(),
            job.app_id,
            job.server_name,
            job.status
        ),
        _ => return,
    };
    outln!("{text}");
}

pub fn incidents(engine: &Engine, a: IncidentsArgs) -> Result<i32> {
    match &a.action {
        Some(IncidentAction::Ack { id, note }) => {
            engine.ack_incident(*id, note.as_deref())?;
            outln!("incident #{id} acknowledged; its reminders stop");
            return Ok(exit::OK);
        }
        Some(IncidentAction::Note { id, text }) => {
            engine.note_incident(*id, text)?;
            outln!("note added to incident #{id}");
            return Ok(exit::OK);
        }
        None => {}
    }
    let list = engine.incident_history(a.open, a.limit)?;
    if a.json {
        let mut out = Vec::new();
        for i in &list {
            let mut v = serde_json::to_value(i)?;
            v["timeline"] = serde_json::to_value(engine.incident_timeline(i.id)?)?;
            out.push(v);
        }
        out::json_pretty(&out)?;
        return Ok(exit::OK);
    }
    if list.is_empty() {
        outln!("no incidents");
        return Ok(exit::OK);
    }
    outln!(
        "{:>5}  {:<11} {:<20} {:<24} {:<19} DETAILS",
        "ID",
        "STATE",
        "SERVER",
        "KIND",
        "OPENED"
    );
    for i in &list {
        let kind = match &i.app_id {
            Some(a) => format!("{}({a})", i.kind),
            None => i.kind.to_string(),
        };
        outln!(
            "{:>5}  {:<11} {:<20} {:<24} {:<19} {}",
            i.id,
            i.state.as_str(),
            i.server,
            kind,
            fmt_ts(i.opened_at),
            i.details
        );
        if a.timeline {
            for t in engine.incident_timeline(i.id)? {
                let job = t.job_id.map(|j| format!(" [job #{j}]")).unwrap_or_default();
                outln!("         {}  {}{job}", fmt_ts(t.ts), t.message);
            }
        }
    }
    Ok(exit::OK)
}

pub fn policy(engine: &Engine, a: PolicyArgs) -> Result<i32> {
    let server = engine.server(&a.server)?;
    let mut p = engine.health_policy(server.id)?;
    let before = p.clone();
    if let Some(r) = &a.recovery {
        p.recovery = RecoveryPolicy::parse(r)
            .ok_or_else(|| eyre!("--recovery is notify or auto, not {r:?}"))?;
    }
    if let Some(b) = &a.base_installer {
        engine.catalog().require(b).map_err(|e| eyre!(e))?;
        p.base_installer = Some(b.clone());
    }
    if a.no_base {
        p.base_installer = None;
    }
    if let Some(i) = &a.interval {
        p.interval_ms = if i == "default" {
            None
        } else {
            let d = parse_duration(i).map_err(|e| eyre!(e))?;
            if d.as_millis() < 100 {
                bail!("--interval must be at least 100ms");
            }
            Some(d.as_millis() as i64)
        };
    }
    if p != before {
        engine.set_health_policy(&server.name, &p)?;
    }
    if a.json {
        out::json_pretty(&p)?;
    } else {
        outln!(
            "{}: recovery {}, base installer {}, interval {}",
            server.name,
            p.recovery.as_str(),
            p.base_installer.as_deref().unwrap_or("(config default)"),
            p.interval_ms
                .map(|ms| format!("{ms}ms"))
                .unwrap_or_else(|| "(global)".into())
        );
    }
    Ok(exit::OK)
}

pub async fn bench(cmd: BenchCmd) -> Result<i32> {
    match cmd {
        BenchCmd::Health {
            hosts,
            sweeps,
            concurrency,
            timeout,
            user,
        } => {
            let timeout = parse_duration(&timeout).map_err(|e| eyre!(e))?;
            ptui_bench::health::run(ptui_bench::health::BenchArgs {
                hosts,
                warm_sweeps: sweeps,
                concurrency,
                timeout,
                user,
            })
            .await?;
            Ok(exit::OK)
        }
    }
}
