//! The connection pool against real sshd (re-dial after a kill, a job re-dialling a pooled
//! connection that died while idle, idle connections closed by the reaper, recycling under a
//! running job), a two-hop ProxyJump chain with the host key checked at every hop, and a
//! fan-out behind one bastion sharing a single connection to it.

mod common;

use common::{Sshd, TestEnv, fixtures};
use ptui_engine::{Engine, InstallRequest};
use ptui_types::config::Config;
use ptui_types::job::{JobAction, JobStatus};
use ptui_types::server::ServerSpec;
use std::collections::BTreeMap;
use std::time::Duration;

fn engine(dir: &std::path::Path, max_age: Duration) -> Engine {
    let mut cfg = Config::new(Some(dir.join("state.db")), vec![fixtures()]);
    cfg.user_known_hosts_path = None;
    cfg.ssh.max_age = max_age;
    cfg.ssh.idle_timeout = Duration::from_secs(300);
    Engine::open(cfg).expect("engine")
}

/// Leases `server` until the pool hands out a freshly dialled connection (within 10 s): the
/// moment russh has noticed that the old one died.
async fn wait_redialled(e: &Engine, server: &ptui_types::server::Server, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let l = e.pooled(server).await.expect("re-dial");
        if l.fresh {
            return;
        }
        drop(l);
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn add(e: &Engine, name: &str, sshd: &Sshd) {
    e.add_server(&ServerSpec {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: sshd.port,
        user: sshd.user.clone(),
        identity: Some(sshd.client_key.display().to_string()),
        ..Default::default()
    })
    .expect("add");
    let scan = e.scan_host_key(name).await.expect("scan");
    e.trust_host_key(&scan, false).expect("trust");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connection_is_redialled() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let e = engine(tmp.path(), Duration::from_secs(3600));
    add(&e, "s", &sshd).await;
    let server = e.server("s").unwrap();
    let first = e.pooled(&server).await.expect("dial");
    assert!(first.fresh);
    drop(first);
    let again = e.pooled(&server).await.expect("reuse");
    assert!(!again.fresh, "an idle live connection is reused");
    drop(again);
    assert_eq!(e.pool().stats().open, 1);

    sshd.kill_connections();
    // Wait until russh notices the peer is gone.
    wait_redialled(&e, &server, "dead connection never re-dialled").await;
    // And a job runs over the new connection.
    let jobs = e
        .start_install(&InstallRequest {
            app: "exit-code".into(),
            servers: vec!["s".into()],
            inputs: BTreeMap::from([("code".into(), "0".into())]),
            action: JobAction::Install,
        })
        .expect("start");
    let done = e.wait_job(jobs[0].id).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
}

/// A TCP relay in front of sshd that can doom the connections it carries so far: the next
/// bytes a doomed connection sends make the relay hang up. The client learns that the pooled
/// connection is dead only when it uses it, like a peer that vanished while it sat idle.
/// Returns the relay's port and the switch (`doom()`).
async fn relay(target: u16) -> (u16, impl Fn()) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("relay bind");
    let port = listener.local_addr().expect("relay addr").port();
    let accepted = Arc::new(AtomicU64::new(0));
    let doomed_upto = Arc::new(AtomicU64::new(0));
    let (acc, doomed) = (accepted.clone(), doomed_upto.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let id = acc.fetch_add(1, SeqCst) + 1;
            let doomed = doomed.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async {
                    let mut buf = [0u8; 16384];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if id <= doomed.load(SeqCst) || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                // Whichever side ends first, both sockets close when this task returns.
                tokio::select! {
                    _ = up => {}
                    _ = tokio::io::copy(&mut sr, &mut cw) => {}
                }
            });
        }
    });
    (port, move || {
        doomed_upto.store(accepted.load(SeqCst), SeqCst)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_pooled_connection_is_redialled_by_the_job() {
    let sshd = Sshd::start();
    let (port, doom) = relay(sshd.port).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = Config::new(Some(tmp.path().join("state.db")), vec![fixtures()]);
    cfg.user_known_hosts_path = None;
    // No keepalive during the test: it would reveal the dead connection before the job does.
    cfg.ssh.keepalive_interval = Duration::from_secs(3600);
    cfg.jobs.retry_base_delay = Duration::from_millis(50);
    let e = Engine::open(cfg).expect("engine");
    e.add_server(&ServerSpec {
        name: "s".into(),
        host: "127.0.0.1".into(),
        port,
        user: sshd.user.clone(),
        identity: Some(sshd.client_key.display().to_string()),
        ..Default::default()
    })
    .expect("add");
    let scan = e.scan_host_key("s").await.expect("scan");
    e.trust_host_key(&scan, false).expect("trust");
    let run = || async {
        let jobs = e
            .start_install(&InstallRequest {
                app: "exit-code".into(),
                servers: vec!["s".into()],
                inputs: BTreeMap::from([("code".into(), "0".into())]),
                action: JobAction::Install,
            })
            .expect("start");
        e.wait_job(jobs[0].id).await.unwrap()
    };
    // Warm the pool.
    let first = run().await;
    assert_eq!(first.status, JobStatus::Succeeded, "{first:?}");
    assert_eq!(first.attempts, 1);
    assert_eq!(e.pool().stats().open, 1);

    doom();
    let server = e.server("s").unwrap();
    let lease = e.pooled(&server).await.expect("lease");
    assert!(
        !lease.fresh,
        "the doomed connection still looks alive to the pool"
    );
    drop(lease);

    let done = run().await;
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    assert_eq!(done.attempts, 2, "{done:?}");
    let logs = e.job_logs(done.id, 0, 1000).unwrap();
    assert!(
        logs.iter().any(|l| l.text.contains("re-dialling")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.text.contains("(attempt 2)")),
        "{logs:?}"
    );
}

/// Whether sshd still serves a connection (it forks one process per connection).
fn sshd_has_connections(sshd: &Sshd) -> bool {
    let pid = sshd.pid().expect("sshd runs").to_string();
    std::process::Command::new("pgrep")
        .args(["-P", &pid])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_closes_without_another_lease() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = Config::new(Some(tmp.path().join("state.db")), vec![fixtures()]);
    cfg.user_known_hosts_path = None;
    cfg.ssh.idle_timeout = Duration::from_secs(1);
    let e = Engine::open(cfg).expect("engine");
    add(&e, "s", &sshd).await;
    let server = e.server("s").unwrap();
    let lease = e.pooled(&server).await.expect("dial");
    assert!(sshd_has_connections(&sshd));
    drop(lease);
    assert_eq!(
        e.pool().stats().open,
        1,
        "kept while younger than the idle timeout"
    );
    // Nobody calls the pool again: the engine's reaper must close it on its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while e.pool().stats().open > 0 || sshd_has_connections(&sshd) {
        assert!(
            std::time::Instant::now() < deadline,
            "idle connection still open: {:?}",
            e.pool().stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_job_survives_recycling() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    // Every connection is "too old" after 300 ms.
    let e = engine(tmp.path(), Duration::from_millis(300));
    add(&e, "s", &sshd).await;
    let jobs = e
        .start_install(&InstallRequest {
            app: "slow".into(),
            servers: vec!["s".into()],
            inputs: BTreeMap::from([("duration".into(), "2".into())]),
            action: JobAction::Install,
        })
        .expect("start");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let server = e.server("s").unwrap();
    // Recycle: the old connection is past max_age, so this dials a new one and replaces it in
    // the map, and idle ones are cleared; the job's lease keeps the old one alive.
    let lease = e.pooled(&server).await.expect("dial");
    assert!(lease.fresh, "an aged connection is replaced");
    drop(lease);
    e.pool().clear_idle();
    e.pool().reap();
    let done = e.wait_job(jobs[0].id).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    let logs = e.job_logs(jobs[0].id, 0, 1000).unwrap();
    assert!(logs.iter().any(|l| l.text == "after sleep"), "{logs:?}");
}

/// Registers `sshd` as server `name` reached through jump host `jump`, and trusts its key.
fn add_behind(env: &TestEnv, name: &str, sshd: &Sshd, jump: &str) {
    let port = sshd.port.to_string();
    let key = sshd.client_key.display().to_string();
    env.ok(&[
        "server",
        "add",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        &sshd.user,
        "--identity",
        &key,
        "--jump",
        jump,
    ]);
    env.ok(&["server", "trust", name, "--yes"]);
}

/// sshd_config for a hop whose log shows its logins and the tunnels it opens.
const HOP_LOG: &str = "LogLevel DEBUG1\n";

fn sshd_log(sshd: &Sshd) -> String {
    std::fs::read_to_string(sshd.dir.join("sshd.log")).unwrap_or_default()
}

/// Connections sshd authenticated (needs `HOP_LOG`).
fn logins(sshd: &Sshd) -> usize {
    sshd_log(sshd).matches("Accepted publickey").count()
}

/// Tunnels (direct-tcpip channels) sshd opened to `port` on 127.0.0.1 (needs `HOP_LOG`).
fn tunnels_to(sshd: &Sshd, port: u16) -> usize {
    let want = format!("target 127.0.0.1 port {port}");
    sshd_log(sshd)
        .lines()
        .filter(|l| l.contains("server_request_direct_tcpip") && l.ends_with(&want))
        .count()
}

#[test]
fn two_hop_jump_chain_checks_every_host_key() {
    let (a, mut b, c) = (
        Sshd::start_with(HOP_LOG),
        Sshd::start_with(HOP_LOG),
        Sshd::start(),
    );
    let env = TestEnv::new();
    env.add_server("hop1", &a);
    add_behind(&env, "hop2", &b, "hop1");
    add_behind(&env, "target", &c, "hop2");
    let (via1, via2) = (tunnels_to(&a, b.port), tunnels_to(&b, c.port));
    let out = env.run(&["install", "fanout", "--on", "target"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("done on target"));
    // The job really went hop1 -> hop2 -> target (all listen on 127.0.0.1, so a direct
    // connection would also have worked; the hops' logs show the tunnels).
    assert_eq!(tunnels_to(&a, b.port), via1 + 1, "{}", sshd_log(&a));
    assert_eq!(tunnels_to(&b, c.port), via2 + 1, "{}", sshd_log(&b));

    // The middle hop's host key changes: the chain is refused at that hop.
    b.restart(true);
    let out = env.run(&["install", "fanout", "--on", "target"]);
    assert_eq!(
        out.status.code(),
        Some(17),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = &env.jobs_json()[0];
    assert_eq!(job["error_kind"], "host_key", "{job}");
    let msg = job["error_message"].as_str().unwrap();
    assert!(
        msg.contains("hop2") && msg.contains("HOST KEY CHANGED"),
        "{msg}"
    );
}

#[test]
fn fanout_behind_one_bastion_dials_it_once() {
    let bastion = Sshd::start_with(HOP_LOG);
    let targets: Vec<Sshd> = (0..5).map(|_| Sshd::start()).collect();
    let env = TestEnv::new();
    env.add_server("bastion", &bastion);
    let names: Vec<String> = (0..targets.len()).map(|i| format!("t{i}")).collect();
    for (name, t) in names.iter().zip(&targets) {
        add_behind(&env, name, t, "bastion");
    }
    // `server trust` logged in to the bastion too; count only the fan-out's logins.
    let before = logins(&bastion);
    assert!(before >= targets.len(), "{}", sshd_log(&bastion));
    let tunnels: Vec<usize> = targets
        .iter()
        .map(|t| tunnels_to(&bastion, t.port))
        .collect();
    let out = env.run(&["install", "fanout", "--on", &names.join(",")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in &names {
        assert!(stdout.contains(&format!("done on {n}")), "{n}: {stdout}");
    }
    assert_eq!(
        logins(&bastion) - before,
        1,
        "the fan-out should share one connection to the bastion:\n{}",
        sshd_log(&bastion)
    );
    // And each target was reached through it, once.
    for (t, was) in targets.iter().zip(tunnels) {
        assert_eq!(
            tunnels_to(&bastion, t.port),
            was + 1,
            "{}",
            sshd_log(&bastion)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_hop_lives_with_its_tunnels_and_is_redialled_when_dead() {
    let bastion = Sshd::start_with(HOP_LOG);
    let (a, b) = (Sshd::start(), Sshd::start());
    let tmp = tempfile::tempdir().unwrap();
    let e = engine(tmp.path(), Duration::from_secs(3600));
    add(&e, "bastion", &bastion).await;
    for (name, sshd) in [("a", &a), ("b", &b)] {
        e.add_server(&ServerSpec {
            name: name.into(),
            host: "127.0.0.1".into(),
            port: sshd.port,
            user: sshd.user.clone(),
            identity: Some(sshd.client_key.display().to_string()),
            jump: Some("bastion".into()),
            ..Default::default()
        })
        .expect("add");
        let scan = e.scan_host_key(name).await.expect("scan");
        e.trust_host_key(&scan, false).expect("trust");
    }
    let (sa, sb) = (e.server("a").unwrap(), e.server("b").unwrap());
    let before = logins(&bastion);
    let (la, lb) = (
        e.pooled(&sa).await.expect("a"),
        e.pooled(&sb).await.expect("b"),
    );
    assert!(la.fresh && lb.fresh);
    assert_eq!(logins(&bastion) - before, 1, "one shared hop connection");
    assert_eq!(e.pool().stats().hops, 1);

    // b's connection closes; a's (leased) still tunnels through the hop, which must stay.
    drop(lb);
    e.pool().clear_idle();
    let st = e.pool().stats();
    assert_eq!((st.open, st.hops), (1, 1), "{st:?}");
    assert!(!la.handle.is_closed());
    // Nothing tunnels through the hop any more: it closes with the last target.
    drop(la);
    e.pool().clear_idle();
    let st = e.pool().stats();
    assert_eq!((st.open, st.hops), (0, 0), "{st:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sshd_has_connections(&bastion) {
        assert!(
            std::time::Instant::now() < deadline,
            "hop connection still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The hop dies under a pooled target: both are re-dialled, and a job runs.
    drop(e.pooled(&sa).await.expect("a again"));
    let before = logins(&bastion);
    bastion.kill_connections();
    wait_redialled(&e, &sa, "target behind a dead hop never re-dialled").await;
    assert_eq!(
        logins(&bastion) - before,
        1,
        "the dead hop is re-dialled once"
    );
    let jobs = e
        .start_install(&InstallRequest {
            app: "exit-code".into(),
            servers: vec!["a".into()],
            inputs: BTreeMap::from([("code".into(), "0".into())]),
            action: JobAction::Install,
        })
        .expect("start");
    let done = e.wait_job(jobs[0].id).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
}
