//! `provision-tui bench health --hosts N`: starts N local OpenSSH sshd instances on 127.0.0.1
//! (each its own process and port, MaxStartups raised), registers them in a scratch database,
//! then sweeps them through the real checker: once cold (every check dials, key exchange and
//! auth included) and then warm (pooled connections). Reports wall time per sweep, client CPU
//! seconds (getrusage) and RSS. Not a test: numbers depend on the machine.

use color_eyre::eyre::Result;
use ptui_engine::Engine;
use ptui_engine::health::checker::{self, CheckParams};
use ptui_types::config::Config;
use ptui_types::server::{ServerSpec, ServerStatus};
use std::time::{Duration, Instant};

pub struct BenchArgs {
    pub hosts: usize,
    pub warm_sweeps: usize,
    pub concurrency: usize,
    pub timeout: Duration,
    /// Login user on the bench hosts (default: the current user). Its shell rc files run on
    /// every exec, so a user with a heavy ~/.bashrc measures that, not provision-tui.
    pub user: Option<String>,
}

pub async fn run(a: BenchArgs) -> Result<()> {
    let (soft, hard) = ptui_engine::jobs::fanout::raise_nofile().unwrap_or((0, 0));
    let tmp = std::env::temp_dir().join(format!("provision-tui-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let _cleanup = scopeguard(tmp.clone());
    let user = a.user.clone();
    println!(
        "bench health: {} hosts, open-files limit {soft}/{hard}, concurrency {}",
        a.hosts, a.concurrency
    );
    let t = Instant::now();
    // Made before the fleet starts, so that every sshd is in it; dropped first, it ends them.
    let meter = crate::cgroup::CpuMeter::create();
    let fleet = crate::sshd::Fleet::start(a.hosts, &tmp, user.as_deref())?;
    let meter = match meter.and_then(|m| m.confine(&fleet.pids()).map(|()| m)) {
        Ok(m) => Some(m),
        Err(why) => {
            eprintln!("note: server CPU is summed from /proc, to clock ticks ({why})");
            None
        }
    };
    let roots = fleet.pids();
    let server_cpu = || match &meter {
        Some(m) => m.seconds().unwrap_or(0.0),
        None => crate::tree_cpu_seconds(&roots),
    };
    println!(
        "started {} sshd in {:.1}s",
        fleet.ports.len(),
        t.elapsed().as_secs_f64()
    );

    let mut config = Config::new(Some(tmp.join("bench.db")), Vec::new());
    config.user_known_hosts_path = None;
    std::fs::write(&config.known_hosts_path, fleet.known_hosts())?;
    let engine = Engine::open(config)?;
    // Raw setup: servers registered straight as ready, as a provisioned fleet would be.
    let store = ptui_store::Store::open_location(&engine.config().database())?;
    let client_key = fleet.client_key.display().to_string();
    let mut servers = Vec::new();
    for (i, p) in fleet.ports.iter().enumerate() {
        servers.push(store.add_server(
            &ServerSpec {
                name: format!("bench-{i:04}"),
                host: "127.0.0.1".into(),
                port: *p,
                user: fleet.user.clone(),
                identity: Some(client_key.clone()),
                ..Default::default()
            },
            ServerStatus::Ready,
        )?);
    }
    let params = CheckParams {
        timeout: a.timeout,
        disk_threshold: 90.0,
        memory_threshold: 95.0,
        app_timeout_secs: 5,
    };
    println!(
        "{:<6} {:>8} {:>6} {:>6} {:>9} {:>9} {:>9} {:>8} {:>8} {:>11} {:>11}",
        "sweep",
        "wall_s",
        "ok",
        "fail",
        "cpu_s",
        "p50_ms",
        "p95_ms",
        "rss_mb",
        "store_ms",
        "cli_ms/chk",
        "srv_ms/chk"
    );
    for round in 0..=a.warm_sweeps {
        let label = if round == 0 {
            engine.pool().clear_idle();
            "cold".to_string()
        } else {
            format!("warm{round}")
        };
        let cpu0 = crate::rusage(false).0;
        let srv0 = server_cpu();
        let t0 = Instant::now();
        let samples = checker::sweep(&engine, &servers, &params, a.concurrency).await;
        let wall = t0.elapsed();
        let srv = server_cpu() - srv0;
        let ts = Instant::now();
        engine.record_samples(&samples)?;
        let store_ms = ts.elapsed().as_millis();
        let cpu = crate::rusage(false).0 - cpu0;
        let ok = samples.iter().filter(|s| s.failure.is_none()).count();
        let mut lat: Vec<i64> = samples
            .iter()
            .filter(|s| s.failure.is_none())
            .map(|s| s.latency_ms as i64)
            .collect();
        lat.sort_unstable();
        let p = |q| {
            ptui_engine::health::metrics::percentile(&lat, q)
                .map(|v| v.to_string())
                .unwrap_or("-".into())
        };
        println!(
            "{label:<6} {:>8.2} {ok:>6} {:>6} {cpu:>9.2} {:>9} {:>9} {:>8.0} {store_ms:>8} {:>11.2} {:>11.2}",
            wall.as_secs_f64(),
            samples.len() - ok,
            p(50.0),
            p(95.0),
            crate::proc_status_mib("VmRSS:"),
            cpu * 1000.0 / samples.len().max(1) as f64,
            srv * 1000.0 / samples.len().max(1) as f64,
        );
        if let Some(f) = samples.iter().find(|s| s.failure.is_some()) {
            println!(
                "       first failure: {}: {}",
                f.server,
                f.error.as_deref().unwrap_or("")
            );
        }
    }
    println!(
        "peak RSS {:.0} MB; pooled connections {}",
        crate::peak_rss_mib(),
        engine.pool().stats().open
    );
    Ok(())
}

struct Cleanup(std::path::PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn scopeguard(p: std::path::PathBuf) -> Cleanup {
    Cleanup(p)
}
