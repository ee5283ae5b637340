//! Sites against real sshds and real processes on one database: a job started by a process
//! of site A for a server of site B is run by B's process and followed live by A; when the
//! process serving a site dies, another of that site takes over its checks and its job; a
//! site with no live process is reported.

mod common;

use common::{Sshd, TestEnv};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn cmd(env: &TestEnv) -> Command {
    let mut c = env.cmd();
    c.arg("--installers")
        .arg(common::repo_root().join("tests/fixtures/durable"));
    c
}

fn json(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    let out = cmd(env).args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn job(env: &TestEnv, id: i64) -> serde_json::Value {
    env.jobs_json()
        .as_array()
        .and_then(|a| a.iter().find(|j| j["id"] == id).cloned())
        .unwrap_or(serde_json::Value::Null)
}

fn log_texts(env: &TestEnv, id: i64) -> Vec<(String, String)> {
    let out = cmd(env)
        .args(["logs", &id.to_string(), "--json"])
        .output()
        .expect("logs");
    common::parse_log_json(&out.stdout)
}

fn stdout_lines(env: &TestEnv, id: i64) -> Vec<String> {
    log_texts(env, id)
        .into_iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, t)| t)
        .collect()
}

fn counted(n: u32) -> Vec<String> {
    let mut want: Vec<String> = (1..=n).map(|i| format!("line {i}")).collect();
    want.push("done".into());
    want
}

fn site<'a>(sites: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    sites
        .as_array()
        .and_then(|a| a.iter().find(|s| s["site"] == name))
        .unwrap_or_else(|| panic!("site {name} missing: {sites:#}"))
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    t0.elapsed()
}

/// A `watch` process serving `site`, with 1 s health checks.
fn watch(env: &TestEnv, site: &str) -> Child {
    cmd(env)
        .args(["--site", site, "watch"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watch")
}

/// Runner ids (`pid@host`) serving `site`.
fn runners(env: &TestEnv, site_name: &str) -> Vec<String> {
    site(&json(env, &["sites", "--json"]), site_name)["runners"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn owner_of(pid: u32) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    format!("{pid}@{}", host.trim())
}

fn env_with_sites() -> (TestEnv, Sshd, Sshd) {
    let env = TestEnv::new();
    let config = env.path().join("config/provision-tui");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("config.yml"),
        "health:\n  interval: 1s\n  timeout: 5s\n",
    )
    .expect("config.yml");
    let (a, b) = (Sshd::start(), Sshd::start());
    env.add_server("a1", &a);
    env.add_server("b1", &b);
    env.ok(&["server", "site", "a1", "site-a"]);
    env.ok(&["server", "site", "b1", "site-b"]);
    (env, a, b)
}

/// Health checks stored in the last 24 h (all servers), through `metrics --json`.
fn checks(env: &TestEnv) -> i64 {
    json(env, &["metrics", "--json"])["checks_24h"]
        .as_i64()
        .unwrap_or(0)
}

#[test]
fn a_job_started_in_site_a_for_a_site_b_server_runs_in_b_and_a_follows_it_live() {
    let (env, _a, _b) = env_with_sites();
    let mut b = watch(&env, "site-b");
    let b_owner = owner_of(b.id());
    wait_for("B registers as a runner of site-b", 20, || {
        runners(&env, "site-b").contains(&b_owner)
    });
    // A process of site A refuses to check B's server itself.
    let refused = cmd(&env)
        .args(["--site", "site-a", "check", "b1"])
        .output()
        .expect("check");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is in site site-b"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A starts the job and follows its log: each line is printed while the job still runs.
    let mut a = cmd(&env)
        .args(["--site", "site-a", "install", "counter", "--on", "b1"])
        .args(["--set", "count=8", "--set", "interval=0.4"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn install");
    let a_owner = owner_of(a.id());
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = a.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    let mut status_at_line1 = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains("line 1") && status_at_line1.is_none() {
            let jobs = env.jobs_json();
            status_at_line1 = Some(jobs[0]["status"].as_str().unwrap_or("").to_string());
        }
        printed.push(line);
    }
    let status = a.wait().expect("wait install");
    let _ = reader.join();
    let stderr = {
        let mut s = String::new();
        if let Some(mut e) = a.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut s);
        }
        s
    };
    assert_eq!(
        status.code(),
        Some(0),
        "A exits with the job's status; stdout {printed:#?}\nstderr {stderr}"
    );
    assert_eq!(
        status_at_line1.as_deref(),
        Some("running"),
        "A printed `line 1` while the job was running (live, not at the end)"
    );
    let id = env.jobs_json()[0]["id"].as_i64().expect("job id");
    let j = job(&env, id);
    assert_eq!(j["status"], "succeeded");
    assert_eq!(j["site"], "site-b");
    assert_eq!(j["owner"], b_owner.as_str(), "run by B's process, not A");
    assert_ne!(j["owner"], a_owner.as_str());
    let log = log_texts(&env, id);
    assert!(
        log.iter()
            .any(|(s, t)| s == "system" && t == &format!("claimed by {b_owner}")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|(_, t)| t.starts_with("queued for site site-b, served by watch on")),
        "{log:#?}"
    );
    assert_eq!(
        stdout_lines(&env, id),
        counted(8),
        "every line once, in order"
    );
    // What A printed is the job's output, each line once.
    for want in counted(8) {
        assert_eq!(
            printed
                .iter()
                .filter(|l| l.ends_with(want.as_str()))
                .count(),
            1,
            "{want:?} printed once by A: {printed:#?}"
        );
    }
    b.kill().expect("kill B");
    let _ = b.wait();
}

#[test]
fn when_a_sites_process_dies_another_of_that_site_takes_its_checks_and_adopts_its_job() {
    let (env, _a, _b) = env_with_sites();
    let mut b1 = watch(&env, "site-b");
    let b1_owner = owner_of(b1.id());
    wait_for("B1 runs site-b's checks", 30, || {
        site(&json(&env, &["sites", "--json"]), "site-b")["checker"]
            .as_str()
            .is_some_and(|c| c.starts_with(&b1_owner))
    });
    // Started from site A, claimed by B1 (the only process of site-b so far).
    let mut a = cmd(&env)
        .args(["--site", "site-a", "install", "counter", "--on", "b1"])
        .args(["--set", "count=20", "--set", "interval=0.4"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn install");
    let mut id = 0;
    wait_for("B1 runs the job and stored 3 lines", 30, || {
        let jobs = env.jobs_json();
        id = jobs[0]["id"].as_i64().unwrap_or(0);
        jobs[0]["owner"] == b1_owner.as_str() && stdout_lines(&env, id).len() >= 3
    });
    // A process of site A never adopts it: it cannot reach the server.
    let refused = cmd(&env)
        .args(["--site", "site-a", "jobs", "reattach", &id.to_string()])
        .output()
        .expect("reattach");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("runs on b1 of site site-b"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let mut b2 = watch(&env, "site-b");
    let b2_owner = owner_of(b2.id());
    wait_for("B2 registers", 20, || {
        runners(&env, "site-b").contains(&b2_owner)
    });

    b1.kill().expect("kill -9 B1");
    let _ = b1.wait();
    let took = wait_for("B2 takes over site-b's checks", 30, || {
        site(&json(&env, &["sites", "--json"]), "site-b")["checker"]
            .as_str()
            .is_some_and(|c| c.starts_with(&b2_owner))
    });
    eprintln!("checks taken over {took:?} after the kill");
    // B2 checks b1 (the only server of site-b; site-a has no process to check a1).
    let before = checks(&env);
    wait_for("B2 stores new checks", 30, || checks(&env) > before);
    let status = a.wait().expect("wait install");
    assert_eq!(status.code(), Some(0), "A follows the job to its real end");
    let j = job(&env, id);
    assert_eq!(j["status"], "succeeded");
    assert_eq!(j["owner"], b2_owner.as_str(), "adopted by B2: {j:#}");
    // No job ran twice: one job row, every line once, adopted once.
    assert_eq!(env.jobs_json().as_array().map(Vec::len), Some(1));
    assert_eq!(stdout_lines(&env, id), counted(20));
    let adoptions = log_texts(&env, id)
        .into_iter()
        .filter(|(_, t)| t.starts_with("adopted by "))
        .count();
    assert_eq!(adoptions, 1);
    // B1's row is gone from the live runners; site-a has no live process at all.
    let sites = json(&env, &["sites", "--json"]);
    assert_eq!(runners(&env, "site-b"), vec![b2_owner.clone()], "{sites:#}");
    assert_eq!(site(&sites, "site-a")["unserved"], true);
    b2.kill().expect("kill B2");
    let _ = b2.wait();
}

#[test]
fn a_site_with_no_live_process_is_reported_and_its_queued_job_can_be_cancelled() {
    let env = TestEnv::new();
    env.ok(&[
        "--site",
        "site-c",
        "server",
        "add",
        "c1",
        "--host",
        "127.0.0.1",
        "--port",
        "1",
    ]);
    assert_eq!(env.server_json("c1")["server"]["site"], "site-c");
    let sites = json(&env, &["sites", "--json"]);
    assert_eq!(site(&sites, "site-c")["unserved"], true, "{sites:#}");
    let text = env.ok(&["sites"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("site-c") && l.contains("NO LIVE PROCESS")),
        "{text}"
    );
    // Started from the default site: queued, and the log says nobody can run it yet.
    let mut install = cmd(&env)
        .args([
            "install",
            "echo-ok",
            "--on",
            "c1",
            "--set-env",
            "token=TOKEN",
        ])
        .env("TOKEN", "a-long-enough-token")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("install");
    let stdout = install.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let said = rx
        .iter()
        .find(|l| l.contains("no live provision-tui process serves it"));
    assert!(said.is_some(), "install says no process serves site-c");
    assert_eq!(
        site(&json(&env, &["sites", "--json"]), "site-c")["waiting_jobs"],
        1
    );
    let id = env.jobs_json()[0]["id"].as_i64().expect("id");
    env.ok(&["cancel", &id.to_string()]);
    let status = install.wait().expect("wait");
    assert_ne!(status.code(), Some(0));
    let j = job(&env, id);
    assert_eq!(j["status"], "cancelled");
    assert!(j["owner"].is_null(), "no process ever ran it: {j:#}");
}

#[test]
fn imports_set_the_site_and_a_bad_label_is_skipped_with_the_rule() {
    let env = TestEnv::new();
    let ini = env.path().join("hosts.ini");
    std::fs::write(
        &ini,
        "[eu]\nweb1 ansible_host=10.0.0.1\nweb2 ansible_host=10.0.0.2 provision_tui_site=eu-north\n\n[eu:vars]\nprovision_tui_site=eu-west\n",
    )
    .expect("ini");
    env.ok(&["import", "ansible", &ini.display().to_string()]);
    assert_eq!(env.server_json("web1")["server"]["site"], "eu-west");
    assert_eq!(
        env.server_json("web2")["server"]["site"],
        "eu-north",
        "host var over group var"
    );
    // The command JSON's `site`; a re-import moves a known server, a bad label is refused.
    let out = env.ok(&[
        "import",
        "command",
        r#"echo '{"servers": [{"name": "web1", "host": "10.0.0.1", "site": "us-east"}, {"name": "odd", "host": "10.0.0.3", "site": "no spaces"}]}'"#,
        "--json",
    ]);
    let rep: serde_json::Value = serde_json::from_str(&out).expect("report");
    let rows = rep["rows"].as_array().expect("rows");
    let row = |n: &str| {
        rows.iter()
            .find(|r| r["name"] == n)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(row("web1")["outcome"], "changed", "{rep:#}");
    assert_eq!(
        row("web1")["detail"],
        serde_json::json!(["site eu-west -> us-east"])
    );
    assert_eq!(row("odd")["outcome"], "skipped", "{rep:#}");
    assert!(
        row("odd")["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("site \"no spaces\": a site label")),
        "{rep:#}"
    );
    assert_eq!(env.server_json("web1")["server"]["site"], "us-east");
    // server site: a label with a space is refused, naming the rule.
    let bad = env.run(&["server", "site", "web2", "a b"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid site"));
    assert_eq!(env.server_json("web2")["server"]["site"], "eu-north");
}
