//! `provision-tui bench health --hosts N`: starts N local OpenSSH sshd instances on 127.0.0.1
//! (each its own process and port, MaxStartups raised), registers them in a scratch database,
//! then sweeps them through the real checker: once cold (every check dials, key exchange and
//! auth included) and then warm (pooled connections). Reports wall time per sweep, client CPU
//! seconds (getrusage) and RSS. Not a test: numbers depend on the machine.

use super::checker::{self, CheckParams};
use crate::config::Config;
use crate::engine::Engine;
use crate::fleet::{ServerSpec, ServerStatus};
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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

struct Sshds(Vec<Child>);

impl Drop for Sshds {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn rss_mb(field: &str) -> f64 {
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

/// Raises the soft open-files limit to the hard one; returns (soft, hard) after.
fn raise_nofile() -> (u64, u64) {
    // SAFETY: plain libc calls on a struct we own.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            let _ = libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
            return (r.rlim_cur as u64, r.rlim_max as u64);
        }
    }
    (0, 0)
}

fn keygen(path: &Path) -> Result<()> {
    let st = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "provision-tui-bench",
            "-f",
        ])
        .arg(path)
        .status()
        .wrap_err("cannot run ssh-keygen (install openssh-client)")?;
    if !st.success() {
        bail!("ssh-keygen failed");
    }
    Ok(())
}

fn sshd_binary() -> Result<&'static str> {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| eyre!("OpenSSH sshd not found (apt-get install openssh-server)"))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_sshds(dir: &Path, n: usize, user: &str) -> Result<(Sshds, Vec<u16>)> {
    let bin = sshd_binary()?;
    let _ = std::fs::create_dir_all("/run/sshd");
    std::fs::copy(
        dir.join("client_key.pub"),
        dir.join(format!("authorized_keys.{user}")),
    )?;
    let d = dir.display();
    let mut children = Sshds(Vec::with_capacity(n));
    let mut ports = Vec::with_capacity(n);
    for i in 0..n {
        let port = free_port()?;
        let cfg = dir.join(format!("sshd_{i}.conf"));
        std::fs::write(
            &cfg,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd_{i}.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys.%u\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 MaxStartups 300:30:600\nMaxSessions 100\nLogLevel ERROR\nPrintMotd no\nSetEnv PYENV_REHASH_TIMEOUT=0\n"
            ),
        )?;
        let child = Command::new(bin)
            .args(["-D", "-e", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .wrap_err_with(|| format!("cannot start sshd #{i} (process or file limits?)"))?;
        children.0.push(child);
        ports.push(port);
    }
    let deadline = Instant::now() + Duration::from_secs(30 + n as u64 / 10);
    for p in &ports {
        while TcpStream::connect(("127.0.0.1", *p)).is_err() {
            if Instant::now() > deadline {
                bail!("sshd on port {p} did not listen in time");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok((children, ports))
}

pub async fn run(a: BenchArgs) -> Result<()> {
    let (soft, hard) = raise_nofile();
    let tmp = std::env::temp_dir().join(format!("provision-tui-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let _cleanup = scopeguard(tmp.clone());
    keygen(&tmp.join("host_key"))?;
    keygen(&tmp.join("client_key"))?;
    let user = a.user.clone().unwrap_or_else(whoami::username);
    println!(
        "bench health: {} hosts, open-files limit {soft}/{hard}, concurrency {}",
        a.hosts, a.concurrency
    );
    let t = Instant::now();
    let (_sshds, ports) = start_sshds(&tmp, a.hosts, &user)?;
    println!(
        "started {} sshd in {:.1}s",
        ports.len(),
        t.elapsed().as_secs_f64()
    );

    let mut config = Config::new(Some(tmp.join("bench.db")), Vec::new());
    config.user_known_hosts_path = None;
    let host_pub = std::fs::read_to_string(tmp.join("host_key.pub"))?;
    let key: String = host_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let kh: String = ports
        .iter()
        .map(|p| format!("[127.0.0.1]:{p} {key}\n"))
        .collect();
    std::fs::write(&config.known_hosts_path, kh)?;
    let engine = Engine::open(config)?;
    let client_key = tmp.join("client_key").display().to_string();
    let mut servers = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        servers.push(engine.store().add_server(
            &ServerSpec {
                name: format!("bench-{i:04}"),
                host: "127.0.0.1".into(),
                port: *p,
                user: user.clone(),
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
        "{:<6} {:>8} {:>6} {:>6} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "sweep", "wall_s", "ok", "fail", "cpu_s", "p50_ms", "p95_ms", "rss_mb", "store_ms"
    );
    for round in 0..=a.warm_sweeps {
        let label = if round == 0 {
            engine.pool().clear_idle();
            "cold".to_string()
        } else {
            format!("warm{round}")
        };
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let samples = checker::sweep(&engine, &servers, &params, a.concurrency).await;
        let wall = t0.elapsed();
        let ts = Instant::now();
        engine.store().insert_samples(&samples)?;
        let store_ms = ts.elapsed().as_millis();
        let cpu = cpu_seconds() - cpu0;
        let ok = samples.iter().filter(|s| s.failure.is_none()).count();
        let mut lat: Vec<i64> = samples
            .iter()
            .filter(|s| s.failure.is_none())
            .map(|s| s.latency_ms as i64)
            .collect();
        lat.sort_unstable();
        let p = |q| {
            super::metrics::percentile(&lat, q)
                .map(|v| v.to_string())
                .unwrap_or("-".into())
        };
        println!(
            "{label:<6} {:>8.2} {ok:>6} {:>6} {cpu:>9.2} {:>9} {:>9} {:>8.0} {store_ms:>8}",
            wall.as_secs_f64(),
            samples.len() - ok,
            p(50.0),
            p(95.0),
            rss_mb("VmRSS:")
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
        rss_mb("VmHWM:"),
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
