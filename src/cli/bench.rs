//! `provision-tui bench fanout --hosts N`: see crates/bench and docs/FLEET.md.

use super::exit;
use super::out::{self, errln, outln};
use clap::Subcommand;
use color_eyre::eyre::Result;
use ptui_bench::{self as bench, Sample, median, peers, sshd::Fleet};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// N local sshd; provision-tui cold and warm, and the peers when installed.
    Fanout {
        #[arg(long, default_value_t = 100)]
        hosts: usize,
        /// Runs per tool; medians are reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Virtualenv holding ansible-core and pyinfra.
        #[arg(
            long,
            default_value = "/var/tmp/ptui-peers",
            env = "PROVISION_TUI_PEERS_VENV"
        )]
        venv: PathBuf,
        /// Skip the peers.
        #[arg(long)]
        no_peers: bool,
        /// Log in as this user (default: the current one). Remote rc files run on every
        /// login: root's `.bashrc` with `pyenv init` dominates everything, so a plain user
        /// measures the tools rather than the shell.
        #[arg(long)]
        user: Option<String>,
    },
    /// The dashboard loop on a test terminal while N hosts stream logs: frame time and
    /// keypress-to-frame latency.
    Dashboard {
        #[arg(long, default_value_t = 100)]
        hosts: usize,
        /// How long the scripted keys run, in seconds.
        #[arg(long, default_value_t = 25)]
        secs: u64,
        /// Milliseconds between scripted keys.
        #[arg(long, default_value_t = 75)]
        key_every_ms: u64,
        /// Log in as this user (default: the current one); see `bench fanout --user`.
        #[arg(long)]
        user: Option<String>,
        /// Leave the local sshd fleet at the client's CPU weight (by default it runs in a
        /// cgroup of the lowest weight, as servers elsewhere would take none of the client's CPU).
        #[arg(long)]
        servers_share_cpu: bool,
    },
    /// The health checker's bench (crates/bench/src/health.rs).
    #[command(flatten)]
    Health(super::health::BenchCmd),
    /// The database under a busy bastion's load, SQLite and PostgreSQL side by side: log lines
    /// and health samples written per second, the dashboard's reload time.
    Store {
        #[arg(long, default_value_t = 1000)]
        servers: usize,
        /// Jobs streaming logs at once.
        #[arg(long, default_value_t = 100)]
        jobs: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Lines per stored log batch.
        #[arg(long, default_value_t = 20)]
        batch: usize,
        /// An empty PostgreSQL database to use (password from PGPASSFILE/PGPASSWORD); by
        /// default a throwaway server started with scripts/pg-test-server.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn med(v: &[Sample]) -> Sample {
    Sample {
        wall: median(v.iter().map(|s| s.wall).collect()),
        cpu: median(v.iter().map(|s| s.cpu).collect()),
        rss: v.iter().map(|s| s.rss).fold(0.0, f64::max),
        failed: v.iter().map(|s| s.failed).sum(),
        server_cpu: median(v.iter().map(|s| s.server_cpu).collect()),
    }
}

fn store_bench(b: &bench::store::StoreBench, postgres: Option<String>, json: bool) -> Result<i32> {
    let tmp = tempfile_dir()?;
    let sqlite = tmp.path().join("bench.db").display().to_string();
    let pg = match postgres {
        Some(u) => u,
        None => {
            errln!("starting a throwaway PostgreSQL server (scripts/pg-test-server) ...");
            bench::store::throwaway_postgres()?
        }
    };
    let mut rows = Vec::new();
    for (db, name) in [(sqlite.as_str(), "sqlite"), (pg.as_str(), "postgresql")] {
        errln!(
            "{name}: {} servers, {} jobs streaming, {} s ...",
            b.servers,
            b.jobs,
            b.secs
        );
        rows.push(bench::store::run(db, name, b)?);
    }
    if json {
        out::json_pretty(&rows)?;
        return Ok(exit::OK);
    }
    outln!(
        "{:<12} {:>16} {:>14} {:>18} {:>15}",
        "backend",
        "log lines/s",
        "samples/s",
        "reload median ms",
        "reload p95 ms"
    );
    for r in &rows {
        outln!(
            "{:<12} {:>16.0} {:>14.0} {:>18.1} {:>15.1}",
            r.backend,
            r.log_lines_per_s,
            r.samples_per_s,
            r.reload_ms_median,
            r.reload_ms_p95
        );
    }
    if let [s, p] = rows.as_slice() {
        outln!(
            "postgresql / sqlite: log lines {:.2}x, samples {:.2}x, reload {:.2}x",
            p.log_lines_per_s / s.log_lines_per_s.max(1e-9),
            p.samples_per_s / s.samples_per_s.max(1e-9),
            p.reload_ms_median / s.reload_ms_median.max(1e-9)
        );
    }
    Ok(exit::OK)
}

pub async fn run(cmd: BenchCmd) -> Result<i32> {
    let cmd = match cmd {
        BenchCmd::Health(h) => return super::health::bench(h).await,
        BenchCmd::Store {
            servers,
            jobs,
            secs,
            batch,
            postgres,
            json,
        } => {
            if jobs > servers || servers == 0 || batch == 0 {
                errln!("error: need 1 <= --jobs <= --servers and --batch >= 1");
                return Ok(exit::USAGE);
            }
            let b = bench::store::StoreBench {
                servers,
                jobs,
                secs,
                batch,
            };
            return tokio::task::spawn_blocking(move || store_bench(&b, postgres, json)).await?;
        }
        BenchCmd::Dashboard {
            hosts,
            secs,
            key_every_ms,
            user,
            servers_share_cpu,
        } => {
            if hosts == 0 || hosts > 500 {
                errln!("error: --hosts must be 1..=500");
                return Ok(exit::USAGE);
            }
            bench::dashboard::run(&bench::dashboard::DashboardBench {
                hosts,
                secs,
                key_every_ms,
                user: user.as_deref(),
                servers_share_cpu,
            })
            .await?;
            return Ok(exit::OK);
        }
        f => f,
    };
    let BenchCmd::Fanout {
        hosts,
        runs,
        venv,
        no_peers,
        user,
    } = cmd
    else {
        return Ok(exit::ERROR);
    };
    if hosts == 0 || hosts > 500 {
        errln!("error: --hosts must be 1..=500");
        return Ok(exit::USAGE);
    }
    let bound = ptui_engine::jobs::fanout::fd_bound();
    if bound < hosts {
        errln!("warning: the open-file limit allows about {bound} hosts at once");
    }
    let tmp = tempfile_dir()?;
    let dir = tmp.path();
    errln!("starting {hosts} sshd on 127.0.0.1 ...");
    // Made before the fleet starts, so that every sshd is in it; dropped first, it ends them.
    let meter = bench::cgroup::CpuMeter::create();
    let fleet = Fleet::start(hosts, dir, user.as_deref())?;
    let _meter = match meter.and_then(|m| m.confine(&fleet.pids()).map(|()| m)) {
        Ok(m) => Some(m),
        Err(why) => {
            errln!("note: server CPU is not measured ({why})");
            None
        }
    };
    let mut rows: Vec<(String, Sample)> = Vec::new();
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for r in 0..runs {
        let engine = bench::engine_for(&fleet, dir, &[])?;
        cold.push(bench::run_ours(&engine, hosts).await?);
        warm.push(bench::run_ours(&engine, hosts).await?);
        errln!(
            "run {}: provision-tui cold {:.2}s / warm {:.2}s",
            r + 1,
            cold[r].wall,
            warm[r].wall
        );
    }
    let ours_cold = med(&cold);
    let ours_warm = med(&warm);
    rows.push(("provision-tui, cold (curve25519)".into(), ours_cold));
    rows.push(("provision-tui, warm pooled connections".into(), ours_warm));

    let mut measure =
        |label: &str, f: &mut dyn FnMut() -> Result<Option<Sample>>| -> Result<Option<Sample>> {
            let mut v = Vec::new();
            for _ in 0..runs {
                match f()? {
                    Some(s) => v.push(s),
                    None => return Ok(None),
                }
            }
            let m = med(&v);
            errln!("{label}: {:.2}s wall, {:.2}s CPU", m.wall, m.cpu);
            rows.push((label.to_string(), m));
            Ok(Some(m))
        };
    let ssh_cold = measure("ssh curve25519 via xargs -P, cold", &mut || {
        peers::ssh_xargs(&fleet, "curve25519-sha256").map(Some)
    })?;
    let ssh_pq = measure(
        "ssh sntrup761x25519 (OpenSSH 9.2 default) via xargs -P",
        &mut || peers::ssh_xargs(&fleet, "sntrup761x25519-sha512@openssh.com").map(Some),
    )?;
    let ssh_cm = measure("ssh over warm ControlMasters", &mut || {
        peers::ssh_controlmaster(&fleet, dir).map(Some)
    })?;
    let floor = measure(
        "the task alone: N local `bash -c` at once, no SSH (the floor)",
        &mut || peers::local_floor(&fleet, dir).map(Some),
    )?;
    let (mut pyinfra, mut ansible) = (None, None);
    if !no_peers {
        pyinfra = measure("pyinfra exec --parallel N", &mut || {
            peers::pyinfra(&fleet, &venv, dir)
        })?;
        ansible = measure(
            "ansible -m shell, forks=N, pipelining, ControlPersist",
            &mut || peers::ansible(&fleet, &venv, dir),
        )?;
        if pyinfra.is_none() || ansible.is_none() {
            errln!(
                "note: install the peers with `python3 -m venv {v} && {v}/bin/pip install ansible-core pyinfra`",
                v = venv.display()
            );
        }
    }
    outln!(
        "\n{hosts} hosts, task `{}`, medians of {runs} run(s)\n",
        bench::TASK
    );
    outln!("| tool | wall s | client CPU s | server CPU s | peak RSS MiB | failed |");
    outln!("|---|---:|---:|---:|---:|---:|");
    for (l, s) in &rows {
        // No server CPU (the floor, or no cgroup) is a dash, not a measured zero.
        let server = if s.server_cpu > 0.0 {
            format!("{:.2}", s.server_cpu)
        } else {
            "–".to_string()
        };
        outln!(
            "| {l} | {:.2} | {:.2} | {server} | {:.0} | {} |",
            s.wall,
            s.cpu,
            s.rss,
            s.failed
        );
    }
    if rows.iter().any(|(_, s)| s.failed > 0) {
        outln!("\nwarning: some runs failed (see the `failed` column); their ratios mean little");
    }
    outln!("\n| target | ratio | goal | met |");
    outln!("|---|---:|---:|---|");
    let target = |name: &str, ours: f64, theirs: Option<f64>, goal: f64| {
        if let Some(t) = theirs.filter(|t| *t > 0.0) {
            let r = ours / t;
            outln!(
                "| {name} | {r:.2} | ≤ {goal} | {} |",
                if r <= goal { "yes" } else { "no" }
            );
        }
    };
    target(
        "cold wall / pyinfra wall",
        ours_cold.wall,
        pyinfra.map(|s| s.wall),
        0.8,
    );
    target(
        "cold CPU / pyinfra CPU",
        ours_cold.cpu,
        pyinfra.map(|s| s.cpu),
        0.25,
    );
    target(
        "cold wall / Ansible wall",
        ours_cold.wall,
        ansible.map(|s| s.wall),
        0.1,
    );
    target(
        "warm wall / ssh ControlMaster wall",
        ours_warm.wall,
        ssh_cm.map(|s| s.wall),
        1.0,
    );
    target(
        "warm wall / ssh ControlMaster wall (remote session)",
        ours_warm.wall,
        ssh_cm.map(|s| s.wall),
        0.5,
    );
    target(
        "warm CPU / ssh ControlMaster CPU",
        ours_warm.cpu,
        ssh_cm.map(|s| s.cpu),
        0.5,
    );
    target(
        "cold wall / ssh xargs wall",
        ours_cold.wall,
        ssh_cold.map(|s| s.wall),
        1.0,
    );
    if let (Some(fl), Some(cm)) = (floor, ssh_cm) {
        outln!(
            "\nThe floor (the task alone, no SSH) is {:.2}x ControlMaster's wall; provision-tui warm is {:.2}x the floor",
            fl.wall / cm.wall,
            ours_warm.wall / fl.wall
        );
    }
    if let Some(cm) = ssh_cm.filter(|s| s.server_cpu > 0.0) {
        outln!(
            "\nServer CPU per warm job: provision-tui {:.2} ms, ssh over ControlMaster {:.2} ms ({:.2}x)",
            ours_warm.server_cpu * 1000.0 / hosts as f64,
            cm.server_cpu * 1000.0 / hosts as f64,
            ours_warm.server_cpu / cm.server_cpu
        );
    }
    if let (Some(a), Some(b)) = (ssh_cold, ssh_pq) {
        outln!(
            "\nKEX: OpenSSH sntrup761x25519 vs curve25519, {hosts} cold connections: wall {:.2}x, client CPU {:.2}x",
            b.wall / a.wall,
            b.cpu / a.cpu
        );
    }
    Ok(exit::OK)
}

fn tempfile_dir() -> Result<TempDir> {
    let p = std::env::temp_dir().join(format!("ptui-bench-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(TempDir(p))
}

struct TempDir(PathBuf);
impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
