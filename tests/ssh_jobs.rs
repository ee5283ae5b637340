//! Jobs against a real OpenSSH sshd on loopback, through the provision-tui binary.

mod common;

use common::{Sshd, TestEnv, processes_with, unique, wait_no_processes};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn last_job(env: &TestEnv) -> serde_json::Value {
    env.jobs_json()[0].clone()
}

/// Starts `install slow` on server `s` in the background and waits until the installer's
/// remote processes exist. Returns the CLI process and the marker its processes carry.
fn start_slow_install(env: &TestEnv, duration: u32, prefix: &str) -> (std::process::Child, String) {
    let marker = unique(prefix);
    let child = env
        .cmd()
        .args([
            "install",
            "slow",
            "--on",
            "s",
            "--set",
            &format!("duration={duration}"),
        ])
        .args(["--set", &format!("marker={marker}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_with(&marker).is_empty() {
        assert!(Instant::now() < deadline, "installer never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, marker)
}

#[test]
fn install_streams_live_and_records_everything() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("web1", &sshd);
    let mut child = env
        .cmd()
        .args([
            "install",
            "slow",
            "--on",
            "web1",
            "--set",
            "duration=2",
            "--set",
            &format!("marker={}", unique("stream")),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let start = Instant::now();
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        seen.push((start.elapsed(), line));
    }
    let status = child.wait().expect("wait");
    let err = err_reader.join().unwrap_or_default();
    assert!(status.success(), "install failed: {seen:?}\n{err}");
    let before = seen
        .iter()
        .find(|(_, l)| l == "before sleep")
        .expect("before line")
        .0;
    let after = seen
        .iter()
        .find(|(_, l)| l == "after sleep")
        .expect("after line")
        .0;
    assert!(
        after - before >= Duration::from_millis(1500),
        "lines were not streamed live: before at {before:?}, after at {after:?}"
    );

    let job = last_job(&env);
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["exit_code"], 0);
    let logs = env.ok(&["logs", &job["id"].to_string()]);
    assert!(
        logs.contains("before sleep") && logs.contains("after sleep"),
        "{logs}"
    );
    let show = env.server_json("web1");
    assert_eq!(
        show["server"]["status"], "in_use",
        "app install on a provisioned server: {show}"
    );
    assert_eq!(show["deployments"][0]["app_id"], "slow");
}

#[test]
fn exit_codes_map_to_kinds() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    for (code, kind, cli) in [
        (1, "installer_validation", 10),
        (2, "installation", 11),
        (3, "configuration", 12),
        (7, "installation", 11),
        (0, "", 0),
    ] {
        let out = env.run(&[
            "install",
            "exit-code",
            "--on",
            "s",
            "--set",
            &format!("code={code}"),
        ]);
        assert_eq!(
            out.status.code(),
            Some(cli),
            "code {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let job = last_job(&env);
        assert_eq!(job["exit_code"], code, "raw code kept");
        if code == 0 {
            assert_eq!(job["status"], "succeeded");
            assert!(job["error_kind"].is_null());
        } else {
            assert_eq!(job["status"], "failed");
            assert_eq!(job["error_kind"], kind);
        }
    }
}

#[test]
fn timeout_kills_the_remote_process_group() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let marker = unique("ptui-timeout");
    // The fixture's timeout_seconds is 8 (room for a loaded CI machine); it would sleep 600 s.
    let started = Instant::now();
    let out = env.run(&[
        "install",
        "slow",
        "--on",
        "s",
        "--set",
        "duration=600",
        "--set",
        &format!("marker={marker}"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(13),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "timeout took {:?}",
        started.elapsed()
    );
    let job = last_job(&env);
    assert_eq!(job["error_kind"], "timeout");
    assert_eq!(job["exit_code"], 124);
    let left = wait_no_processes(&marker, 10);
    assert!(
        left.is_empty(),
        "installer processes survived the timeout: {left:?}"
    );
    assert_eq!(
        env.server_json("s")["server"]["status"],
        "error",
        "failed provisioning moves the server to error"
    );
}

/// The client-side deadline (timeout + slack) fires first when the installer shrugs off the
/// remote `timeout`'s TERM (its KILL comes only 30 s later): the kill then runs from a second
/// channel, TERM then KILL to the whole group after the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_deadline_kills_from_a_second_channel() {
    use ptui_engine::{Engine, InstallRequest};
    use ptui_types::config::Config;
    use ptui_types::job::{JobAction, JobStatus};
    use ptui_types::server::ServerSpec;

    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let marker = unique("ptui-stubborn");
    // Written here rather than as a fixture: the fixture set is shown in TUI snapshots.
    let dir = tmp.path().join("installers/stubborn");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.yml"),
        "id: stubborn\nname: Stubborn\nversion: \"1\"\ndescription: Ignores TERM.\n\
         install_script: install.sh\ntimeout_seconds: 2\n",
    )
    .unwrap();
    // An ignored TERM stays ignored in every child: only KILL ends this group.
    std::fs::write(
        dir.join("install.sh"),
        format!(
            "#!/usr/bin/env bash\nset -euo pipefail\ntrap '' TERM\necho started\n\
             bash -c \"sleep 600; : {marker}\"\necho after\n"
        ),
    )
    .unwrap();
    let mut cfg = Config::new(
        Some(tmp.path().join("state.db")),
        vec![tmp.path().join("installers")],
    );
    cfg.user_known_hosts_path = None;
    cfg.jobs.timeout_slack = Duration::from_secs(1);
    cfg.ssh.kill_grace = Some(Duration::from_secs(1));
    let e = Engine::open(cfg).expect("engine");
    assert!(e.catalog().get("stubborn").is_some(), "installer loaded");
    e.add_server(&ServerSpec {
        name: "s".into(),
        host: "127.0.0.1".into(),
        port: sshd.port,
        user: sshd.user.clone(),
        identity: Some(sshd.client_key.display().to_string()),
        ..Default::default()
    })
    .expect("add");
    let scan = e.scan_host_key("s").await.expect("scan");
    e.trust_host_key(&scan, false).expect("trust");

    let started = Instant::now();
    let jobs = e
        .start_install(&InstallRequest {
            app: "stubborn".into(),
            servers: vec!["s".into()],
            inputs: Default::default(),
            action: JobAction::Install,
        })
        .expect("start");
    let done = e.wait_job(jobs[0].id).await.unwrap();
    let took = started.elapsed();
    assert_eq!(done.status, JobStatus::Failed, "{done:?}");
    assert_eq!(
        done.error_kind.map(|k| k.as_str()),
        Some("timeout"),
        "{done:?}"
    );
    // The remote path would end with 124 (TERM obeyed) or 137 after 32 s; ours is a KILL
    // of the group, `timeout` included, within the grace: the supervisor records 137 at once.
    assert_eq!(done.exit_code, Some(137), "{done:?}");
    assert!(took < Duration::from_secs(20), "kill took {took:?}");
    let left = wait_no_processes(&marker, 10);
    assert!(left.is_empty(), "installer processes survived: {left:?}");
    let logs = e.job_logs(done.id, 0, 1000).unwrap();
    assert!(logs.iter().any(|l| l.text == "started"), "{logs:?}");
    assert!(!logs.iter().any(|l| l.text == "after"), "{logs:?}");
}

#[test]
fn cancel_from_another_process_kills_the_remote_process_group() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let (mut child, marker) = start_slow_install(&env, 600, "ptui-cancel");
    let id = last_job(&env)["id"].to_string();
    env.ok(&["cancel", &id]);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(14), "cancelled exit code");
    let job = last_job(&env);
    assert_eq!(job["status"], "cancelled");
    assert_eq!(job["error_kind"], "cancelled");
    let left = wait_no_processes(&marker, 10);
    assert!(
        left.is_empty(),
        "installer processes survived the cancel: {left:?}"
    );
}

#[test]
fn injection_payloads_arrive_verbatim_and_execute_nothing() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let canary = format!("/tmp/{}", unique("ptui-canary"));
    let payloads = [
        format!("$(touch {canary})"),
        format!("`touch {canary}`"),
        format!("'; touch {canary}; '"),
        format!("\"; touch {canary}; \""),
        format!("line1\nline2\n$(touch {canary})"),
        "*".to_string(),
        "héllo wörld ✓ 你好 🚀".to_string(),
        "  leading and trailing  ".to_string(),
        "back\\slash and $HOME and %s".to_string(),
    ];
    for p in &payloads {
        let out_file = format!("/tmp/{}", unique("ptui-out"));
        let set = format!("message={p}");
        let out = env.run(&[
            "install",
            "echo-ok",
            "--on",
            "s",
            "--set",
            &set,
            "--set",
            "token=abcdefgh",
            "--set",
            &format!("out_file={out_file}"),
        ]);
        assert!(
            out.status.success(),
            "payload {p:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = std::fs::read(&out_file).expect("out file written");
        let _ = std::fs::remove_file(&out_file);
        assert_eq!(
            String::from_utf8_lossy(&got),
            *p,
            "payload changed in transit"
        );
        assert!(
            !std::path::Path::new(&canary).exists(),
            "payload {p:?} executed code"
        );
    }
}

#[test]
fn secrets_never_reach_db_logs_output_or_ps() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let secret = format!("S3cr3t-{}", unique("tok"));
    let ps_file = format!("/tmp/{}", unique("ptui-ps"));
    let out = env
        .cmd()
        .env("MY_TOKEN", &secret)
        .args([
            "install",
            "echo-ok",
            "--on",
            "s",
            "--set-env",
            "token=MY_TOKEN",
            "--set",
            &format!("ps_file={ps_file}"),
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("using token *** now"),
        "masked line printed: {printed}"
    );
    assert!(!printed.contains(&secret), "secret printed");

    let ps = std::fs::read_to_string(&ps_file).expect("ps output captured during the run");
    let _ = std::fs::remove_file(&ps_file);
    assert!(
        ps.contains("echo-ok/install.sh"),
        "ps was taken while the installer ran: {ps}"
    );
    assert!(!ps.contains(&secret), "secret visible in remote ps");

    let id = last_job(&env)["id"].to_string();
    let logs = env.ok(&["logs", &id]);
    assert!(
        logs.contains("using token *** now") && !logs.contains(&secret),
        "{logs}"
    );
    let show = env.ok(&["server", "show", "s", "--json"]);
    assert!(!show.contains(&secret));
    assert!(!env.ok(&["audit", "--json"]).contains(&secret));
    // The raw database files (main + WAL) never hold the plaintext.
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", env.db().display());
        if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "secret found in {p}"
            );
        }
    }
}

#[test]
fn concurrent_installs_on_one_server_are_serialised_by_the_lease() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let spawn = || {
        env.cmd()
            .args([
                "install",
                "slow",
                "--on",
                "s",
                "--set",
                "duration=1",
                "--set",
                &format!("marker={}", unique("lease")),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let a = spawn();
    let b = spawn();
    let (oa, ob) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    assert!(oa.status.success() && ob.status.success());
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&oa.stderr),
        String::from_utf8_lossy(&ob.stderr)
    );
    assert!(
        err.contains("is busy with job"),
        "the waiting install says so: {err}"
    );
    let jobs = env.jobs_json();
    let spans: Vec<(i64, i64)> = jobs
        .as_array()
        .expect("array")
        .iter()
        .map(|j| {
            (
                j["started_at"].as_i64().expect("started"),
                j["finished_at"].as_i64().expect("finished"),
            )
        })
        .collect();
    assert_eq!(spans.len(), 2);
    let (x, y) = (spans[0], spans[1]);
    assert!(x.1 <= y.0 || y.1 <= x.0, "jobs overlapped: {spans:?}");
}

/// A killed client leaves its job running on the server, detached; the lease follows the
/// job: a new install on that server follows the detached job to its end first, then runs.
#[test]
fn a_job_of_a_killed_process_is_detached_and_blocks_its_server_until_collected() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let (mut child, marker) = start_slow_install(&env, 3, "ptui-int");
    child.kill().expect("kill -9");
    let _ = child.wait();
    let job = last_job(&env);
    assert_eq!(job["status"], "detached", "{job}");
    assert!(!processes_with(&marker).is_empty(), "the installer goes on");
    assert_eq!(
        env.server_json("s")["server"]["status"],
        "provisioning",
        "the server is still being provisioned"
    );
    let out = env.ok(&["install", "exit-code", "--on", "s", "--set", "code=0"]);
    let _ = out;
    let jobs = env.jobs_json();
    let first = jobs
        .as_array()
        .and_then(|a| a.iter().find(|j| j["id"] == job["id"]).cloned())
        .expect("first job");
    assert_eq!(
        first["status"], "succeeded",
        "collected by the second install: {first}"
    );
    let (a, b) = (
        first["finished_at"].as_i64().unwrap_or(i64::MAX),
        jobs[0]["started_at"].as_i64().unwrap_or(0),
    );
    assert!(
        a <= b + 1000,
        "the second job ran only after the first ended ({a} vs {b})"
    );
}

#[test]
fn lifecycle_follows_jobs() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    assert_eq!(env.server_json("s")["server"]["status"], "pending_setup");
    env.ok(&["install", "base-fixture", "--on", "s"]);
    assert_eq!(
        env.server_json("s")["server"]["status"],
        "ready",
        "base installer success → ready"
    );
    env.ok(&["install", "echo-ok", "--on", "s", "--set", "token=abcdefgh"]);
    let show = env.server_json("s");
    assert_eq!(show["server"]["status"], "in_use", "app on ready → in_use");
    let echo = show["deployments"]
        .as_array()
        .expect("deployments")
        .iter()
        .find(|d| d["app_id"] == "echo-ok")
        .expect("echo-ok deployment")
        .clone();
    assert_eq!(
        echo["inputs"]["token"], "***",
        "sensitive inputs stored masked"
    );
    let history: Vec<String> = show["events"]
        .as_array()
        .expect("events")
        .iter()
        .rev()
        .map(|e| e["to_status"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        history,
        ["pending_setup", "provisioning", "ready", "in_use"]
    );
    env.ok(&["uninstall", "echo-ok", "--on", "s"]);
    assert_eq!(
        env.server_json("s")["server"]["status"],
        "ready",
        "last app removed → ready"
    );
    // Operator holds stop jobs.
    env.ok(&["server", "set-status", "s", "maintenance"]);
    let out = env.run(&["install", "exit-code", "--on", "s", "--set", "code=0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("maintenance"));
    let out = env.run(&["server", "set-status", "s", "in_use"]);
    assert!(
        out.status.success(),
        "maintenance → in_use is an operator choice"
    );
    let out = env.run(&["server", "set-status", "s", "pending_setup"]);
    assert!(!out.status.success(), "in_use → pending_setup is illegal");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot go from in_use to pending_setup")
    );
}

#[test]
fn invalid_inputs_are_refused_before_anything_runs() {
    let env = TestEnv::new();
    env.ok(&["server", "add", "s", "--host", "127.0.0.1", "--port", "1"]);
    let out = env.run(&[
        "install",
        "echo-ok",
        "--on",
        "s",
        "--set",
        "token=abc",
        "--set",
        "count=500",
        "--set",
        "bogus=1",
    ]);
    assert_eq!(out.status.code(), Some(18));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("input token: must be at least 6 characters"),
        "{err}"
    );
    assert!(err.contains("input count: must be at most 100"), "{err}");
    assert!(err.contains("input bogus: is not declared"), "{err}");
    assert!(
        env.jobs_json().as_array().expect("array").is_empty(),
        "no job was created"
    );
    let out = env.run(&["install", "no-such-app", "--on", "s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no installer \"no-such-app\""));
}

#[test]
fn upgrade_runs_its_script_under_its_shebang_and_keeps_recorded_inputs() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    env.ok(&[
        "install",
        "upgradable",
        "--on",
        "s",
        "--set",
        "site=alpha",
        "--set",
        "level=4",
    ]);
    // The required `site` is left out: the upgrade takes it from the recorded deployment.
    let out = env.ok(&["upgrade", "upgradable", "--on", "s", "--set", "level=5"]);
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    assert!(
        out.contains(&format!(
            "upgrade as upgradable/upgrade.sh action=upgrade bash=none level=5 site=alpha cwd={home}"
        )),
        "{out}"
    );
    let job = last_job(&env);
    assert_eq!(job["action"], "upgrade", "{job}");
    assert_eq!(job["status"], "succeeded", "{job}");
    let dep = env.server_json("s")["deployments"]
        .as_array()
        .expect("deployments")
        .iter()
        .find(|d| d["app_id"] == "upgradable")
        .expect("upgradable deployment")
        .clone();
    assert_eq!(dep["inputs"]["site"], "alpha", "recorded input kept: {dep}");
    assert_eq!(dep["inputs"]["level"], "5", "upgrade input recorded: {dep}");
    // A script the catalog would refuse never reaches the server.
    let out = env.run(&["upgrade", "echo-ok", "--on", "s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no upgrade script"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
