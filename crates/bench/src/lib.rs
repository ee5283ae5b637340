//! `provision-tui bench fanout --hosts N`: provision-tui against pyinfra, Ansible and plain
//! OpenSSH on N local sshd, cold and warm. Not a timed test; see docs/FLEET.md for the figures.

pub mod cgroup;
pub mod dashboard;
pub mod health;
pub mod peers;
pub mod render;
pub mod sshd;
pub mod store;

use color_eyre::eyre::{Result, eyre};
use ptui_engine::Engine;
use ptui_engine::jobs::fanout::{FanoutHandle, FanoutRequest, Targets};
use ptui_types::config::Config;
use ptui_types::job::JobAction;
use ptui_types::server::ServerSpec;
use std::path::Path;
use std::time::Instant;

/// The trivial task every tool runs: write a file, sleep 0.2 s, echo.
pub const TASK: &str = "echo ok > $HOME/.ptui-bench-$PPID; sleep 0.2; echo done";

#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub wall: f64,
    pub cpu: f64,
    /// Peak RSS in MiB (ours: VmHWM of this process; peers: the largest child process).
    pub rss: f64,
    pub failed: usize,
    /// CPU seconds the local fleet's sshd and everything they ran used during the run (0 when
    /// not measured: no cgroup).
    pub server_cpu: f64,
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// (user+system CPU seconds, max RSS KiB) of this process or of its reaped children.
pub fn rusage(children: bool) -> (f64, f64) {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let who = if children {
        libc::RUSAGE_CHILDREN
    } else {
        libc::RUSAGE_SELF
    };
    unsafe { libc::getrusage(who, &mut u) };
    (tv(u.ru_utime) + tv(u.ru_stime), u.ru_maxrss as f64)
}

/// CPU seconds (user + system, the reaped children's included) of the processes under
/// `roots` and the roots themselves, from /proc: the server side of a local fleet. A process
/// that ended between two readings is counted in its parent's children's time, so the
/// difference of two readings is the CPU the trees used in between.
pub fn tree_cpu_seconds(roots: &[u32]) -> f64 {
    use std::collections::{HashMap, HashSet};
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut ticks: HashMap<u32, u64> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold spaces: fields follow the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
        if f.len() < 15 {
            continue;
        }
        let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
        parent.insert(pid, f[1].parse().unwrap_or(0));
        ticks.insert(pid, n(11) + n(12) + n(13) + n(14));
    }
    let roots: HashSet<u32> = roots.iter().copied().collect();
    let in_tree = |mut pid: u32| {
        for _ in 0..64 {
            if roots.contains(&pid) {
                return true;
            }
            match parent.get(&pid) {
                Some(&p) if p > 1 => pid = p,
                _ => return false,
            }
        }
        false
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks
        .iter()
        .filter(|(pid, _)| in_tree(**pid))
        .map(|(_, t)| *t as f64)
        .sum::<f64>()
        / hz
}

/// A `/proc/self/status` memory field (`VmRSS:`, `VmHWM:`) in MiB; 0 when unreadable.
pub fn proc_status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// VmHWM (peak RSS) of this process in MiB.
pub fn peak_rss_mib() -> f64 {
    proc_status_mib("VmHWM:")
}

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Registers the fleet in a fresh database and returns an engine whose pool is empty (cold).
pub fn engine_for(fleet: &sshd::Fleet, dir: &Path, kex: &[String]) -> Result<Engine> {
    let inst = dir.join("installers/bench");
    std::fs::create_dir_all(&inst)?;
    std::fs::write(
        inst.join("manifest.yml"),
        "id: bench\nname: Bench\nversion: \"1\"\ndescription: Write a file, sleep 0.2 s, echo.\ninstall_script: install.sh\ntimeout_seconds: 60\n",
    )?;
    std::fs::write(
        inst.join("install.sh"),
        "#!/bin/sh\necho ok > $HOME/.ptui-bench-$PROVISION_TUI_SERVER\nsleep 0.2\necho done\n",
    )?;
    let db_dir = dir.join(format!("db-{}", rand::random::<u32>()));
    let mut cfg = Config::new(Some(db_dir.join("state.db")), vec![dir.join("installers")]);
    cfg.user_known_hosts_path = None;
    cfg.ssh.kex = kex.to_vec();
    std::fs::create_dir_all(&db_dir)?;
    std::fs::write(&cfg.known_hosts_path, fleet.known_hosts())?;
    let engine = Engine::open(cfg)?;
    for (i, p) in fleet.ports.iter().enumerate() {
        let server = engine.add_server(&ServerSpec {
            name: format!("h{i:03}"),
            host: "127.0.0.1".into(),
            port: *p,
            user: fleet.user.clone(),
            identity: Some(fleet.client_key.display().to_string()),
            tags: vec!["bench".into()],
            ..Default::default()
        })?;
        // The task needs no root, and the peers do not escalate either.
        engine.set_server_sudo(
            &server.name,
            &ptui_types::records::SudoSettings {
                escalate: Some(false),
                ..Default::default()
            },
        )?;
    }
    Ok(engine)
}

/// With PROVISION_TUI_BENCH_TRACE set: when the jobs connected, and when they ended, as
/// quantiles over the jobs (ms from the earliest job's creation).
fn trace_phases(engine: &Engine, jobs: &[(String, i64)]) -> Result<()> {
    let mut created = Vec::new();
    let mut connected = Vec::new();
    let mut finished = Vec::new();
    for (_, id) in jobs {
        let job = engine.job(*id)?;
        created.push(job.created_at);
        if let Some(l) = engine
            .job_logs(*id, 0, 100)?
            .into_iter()
            .find(|l| l.text.starts_with("running "))
        {
            connected.push(l.ts);
        }
        if let Some(f) = job.finished_at {
            finished.push(f);
        }
    }
    let t0 = created.iter().copied().min().unwrap_or(0);
    let q = |mut v: Vec<i64>| -> String {
        v.sort_unstable();
        if v.is_empty() {
            return "-".into();
        }
        let at = |p: usize| v[(v.len() - 1) * p / 100] - t0;
        format!(
            "min {} p50 {} p90 {} max {}",
            at(0),
            at(50),
            at(90),
            at(100)
        )
    };
    eprintln!("  created   ms: {}", q(created.clone()));
    eprintln!("  connected ms: {}", q(connected));
    eprintln!("  finished  ms: {}", q(finished));
    Ok(())
}

/// Starts installer `app` on every server, all at once.
pub fn start_on_all(engine: &Engine, app: &str, hosts: usize) -> Result<FanoutHandle> {
    engine
        .start_fanout(&FanoutRequest {
            app: app.into(),
            targets: Targets::All,
            inputs: Default::default(),
            action: JobAction::Install,
            concurrency: Some(hosts),
            batch: None,
            max_fail: None,
        })
        .map_err(|e| eyre!("{e}"))
}

/// One fan-out over every host; CPU is this process's own (the sshd are not reaped yet).
pub async fn run_ours(engine: &Engine, hosts: usize) -> Result<Sample> {
    let (cpu0, _) = rusage(false);
    let srv0 = cgroup::fleet_cpu_seconds();
    let t0 = Instant::now();
    let h = start_on_all(engine, "bench", hosts)?;
    let sum = h.done.await?;
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, _) = rusage(false);
    // Untimed: the jobs' spool removal (after their end is recorded) finishes before the next
    // run, as a peer's processes have all exited when its wall time is taken.
    for (_, job) in &sum.jobs {
        engine.settle(*job).await;
    }
    // Includes the spool removals: work the jobs made the servers do.
    let server_cpu = cgroup::fleet_cpu_seconds() - srv0;
    if std::env::var_os("PROVISION_TUI_BENCH_TRACE").is_some() {
        trace_phases(engine, &sum.jobs)?;
    }
    Ok(Sample {
        wall,
        cpu: cpu1 - cpu0,
        rss: peak_rss_mib(),
        failed: sum.failed.len(),
        server_cpu,
    })
}
