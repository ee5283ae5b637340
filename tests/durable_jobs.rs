//! Durable jobs against a real sshd: the installer runs on, detached, when the client dies or
//! the connection breaks, and any later process adopts it, stores what it missed from the
//! stored position, and records the real outcome.

mod common;

use common::{Sshd, TestEnv, processes_with, unique, wait_no_processes};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn durable_fixtures() -> PathBuf {
    common::repo_root().join("tests/fixtures/durable")
}

fn cmd(env: &TestEnv) -> Command {
    let mut c = env.cmd();
    c.arg("--installers").arg(durable_fixtures());
    c
}

fn run(env: &TestEnv, args: &[&str]) -> std::process::Output {
    cmd(env).args(args).output().expect("run provision-tui")
}

fn job(env: &TestEnv, id: i64) -> serde_json::Value {
    env.jobs_json()
        .as_array()
        .and_then(|a| a.iter().find(|j| j["id"] == id).cloned())
        .unwrap_or(serde_json::Value::Null)
}

/// (stream, text) of every stored line of a job, in order.
fn log(env: &TestEnv, id: i64) -> Vec<(String, String)> {
    let out = run(env, &["logs", &id.to_string(), "--json"]);
    common::parse_log_json(&out.stdout)
}

/// Asserts the job's output is `line 1..=n` then `done` on stdout, each exactly once, in
/// order, and `warn 3, 6, …` on stderr likewise.
fn assert_complete_output(env: &TestEnv, id: i64, n: u32) {
    let lines = log(env, id);
    let out: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, t)| t.as_str())
        .collect();
    let mut want: Vec<String> = (1..=n).map(|i| format!("line {i}")).collect();
    want.push("done".into());
    assert_eq!(
        out, want,
        "stdout lines, once each, in order; whole log: {lines:#?}"
    );
    // A login shell's own noise (e.g. pyenv's) may come first: only the installer's lines.
    let err: Vec<&str> = lines
        .iter()
        .filter(|(s, t)| s == "stderr" && t.starts_with("warn "))
        .map(|(_, t)| t.as_str())
        .collect();
    let want_err: Vec<String> = (1..=n)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("warn {i}"))
        .collect();
    assert_eq!(err, want_err, "stderr lines; whole log: {lines:#?}");
}

/// Starts `install counter` in the background and waits until `min_lines` of its output are
/// stored. Returns the CLI process, the job id and the marker its sleeps carry.
// The caller waits for (or kills) the child; a failed assert ends the test process anyway.
#[allow(clippy::zombie_processes)]
fn start_counter(
    env: &TestEnv,
    lines: u32,
    extra: &[&str],
    min_lines: usize,
) -> (Child, i64, String) {
    let marker = unique("ptui-durable");
    let child = cmd(env)
        .args(["install", "counter", "--on", "s"])
        .args(["--set", &format!("count={lines}")])
        .args(["--set", &format!("marker={marker}")])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn install");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "the job never printed {min_lines} lines"
        );
        if let Some(j) = env.jobs_json().as_array().and_then(|a| a.first().cloned())
            && let Some(id) = j["id"].as_i64()
        {
            let n = log(env, id).iter().filter(|(s, _)| s == "stdout").count();
            if n >= min_lines {
                return (child, id, marker);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The installer's marked sleeps come and go between its lines: seen within 3 s.
fn still_running(marker: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if !processes_with(marker).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn kill9(mut child: Child) {
    child.kill().expect("kill -9");
    let _ = child.wait();
}

/// The spool directory on the (local) server.
fn spool_base() -> PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    PathBuf::from(home).join(".local/state/provision-tui/jobs")
}

/// A job's spool on the server: `KEY.out`, `KEY.err`, ... in the spool directory.
struct Spool(PathBuf);

impl Spool {
    fn file(&self, ext: &str) -> PathBuf {
        self.0.with_extension(ext)
    }
    /// Any of the job's spool files left.
    fn exists(&self) -> bool {
        ["out", "err", "rc", "pid", "sup", "boot", "ended"]
            .iter()
            .any(|e| self.file(e).exists())
    }
    fn remove(&self) {
        for e in ["out", "err", "rc", "pid", "sup", "boot", "ended"] {
            let _ = std::fs::remove_file(self.file(e));
        }
    }
}

fn spool_dir(env: &TestEnv, id: i64) -> Spool {
    let key = job(env, id)["spool"]
        .as_str()
        .expect("the job has a spool")
        .to_string();
    Spool(spool_base().join(key))
}

fn mode(p: &std::path::Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).expect("metadata").permissions())
        & 0o777
}

fn wait_status(env: &TestEnv, id: i64, want: &str, secs: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let j = job(env, id);
        if j["status"] == want || Instant::now() > deadline {
            return j;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn setup() -> (Sshd, TestEnv) {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    (sshd, env)
}

/// The agent is shell code run on every server: it must pass shellcheck like the installers.
#[test]
fn the_agent_passes_shellcheck() {
    common::assert_shellcheck_clean("crates/ssh/src/agent.sh");
}

#[test]
fn kill_9_of_the_client_leaves_the_job_running_and_reattach_collects_every_line_once() {
    let (_sshd, env) = setup();
    let (child, id, marker) = start_counter(&env, 12, &[], 3);
    kill9(child);
    // The next process to open the database sees the dead owner: detached, not failed.
    let j = job(&env, id);
    assert_eq!(j["status"], "detached", "{j}");
    assert!(still_running(&marker), "the installer died with its client");
    let spool = spool_dir(&env, id);
    assert_eq!(mode(&spool_base()), 0o700, "the spool directory is private");
    assert_eq!(mode(&spool.file("out")), 0o600, "spool files are private");
    let out = run(&env, &["jobs", "reattach", &id.to_string()]);
    assert!(
        out.status.success(),
        "reattach: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("line 12") && stdout.contains("done"),
        "{stdout}"
    );
    let j = job(&env, id);
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["exit_code"], 0);
    assert_complete_output(&env, id, 12);
    assert!(
        !spool.exists(),
        "the spool is removed once the output is stored"
    );
    assert_eq!(env.server_json("s")["server"]["status"], "in_use");
}

#[test]
fn sighup_of_the_client_then_the_dashboard_collects_the_job() {
    let (_sshd, env) = setup();
    let (mut child, id, _marker) = start_counter(&env, 10, &[], 2);
    // A closed terminal: SIGHUP, whose default action ends the process.
    let _ = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert_eq!(job(&env, id)["status"], "detached");
    // Reopen the dashboard (in tmux, as an operator would): it adopts the job.
    let session = unique("ptui-durable-tmux");
    let mut dash = cmd(&env);
    let program = format!(
        "{} {}",
        dash.get_program().to_string_lossy(),
        dash.get_args()
            .map(|a| format!("'{}'", a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let envs: Vec<String> = dash
        .get_envs()
        .filter_map(|(k, v)| {
            v.map(|v| format!("{}='{}'", k.to_string_lossy(), v.to_string_lossy()))
        })
        .collect();
    let _ = &mut dash;
    let status = Command::new("tmux")
        .args(["new-session", "-d", "-x", "120", "-y", "40", "-s", &session])
        .arg(format!("env -u SSH_AUTH_SOCK {} {program}", envs.join(" ")))
        .status()
        .expect("tmux");
    assert!(status.success(), "tmux started");
    let j = wait_status(&env, id, "succeeded", 40);
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_complete_output(&env, id, 10);
}

#[test]
fn a_cut_connection_and_a_restarted_sshd_do_not_stop_the_job() {
    let (mut sshd, env) = setup();
    let (mut child, id, _marker) = start_counter(&env, 14, &[], 3);
    // Cut the TCP connection (its sshd process dies) and restart the listener.
    sshd.kill_connections();
    sshd.restart(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "install never ended");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "install ended {status:?}; job {}",
        job(&env, id)
    );
    assert_eq!(job(&env, id)["status"], "succeeded");
    assert_complete_output(&env, id, 14);
    let text: Vec<String> = log(&env, id).into_iter().map(|(_, t)| t).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("the job goes on on the server")),
        "the reconnect is told: {text:#?}"
    );
}

#[test]
fn a_job_that_ends_with_no_client_attached_is_collected_at_the_next_start() {
    let (_sshd, env) = setup();
    let (child, id, marker) = start_counter(&env, 6, &["--set", "interval=0.2"], 1);
    kill9(child);
    assert!(
        wait_no_processes(&marker, 30).is_empty(),
        "the job ended on the server"
    );
    // `logs --follow` is such a start: it adopts the job and collects its end.
    let out = run(&env, &["logs", &id.to_string(), "--follow"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(job(&env, id)["status"], "succeeded");
    assert_complete_output(&env, id, 6);
}

#[test]
fn cancel_of_a_detached_job_kills_it_on_the_server_and_removes_its_spool() {
    let (_sshd, env) = setup();
    let (child, id, marker) = start_counter(&env, 100, &[], 2);
    kill9(child);
    let spool = spool_dir(&env, id);
    let out = run(&env, &["cancel", &id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = job(&env, id);
    assert_eq!(j["status"], "cancelled", "{j}");
    let left = wait_no_processes(&marker, 10);
    assert!(
        left.is_empty(),
        "installer processes survived the cancel: {left:?}"
    );
    assert!(!spool.exists(), "spool removed");
}

#[test]
fn the_remote_timeout_ends_a_detached_job_and_the_adopter_records_it() {
    let (_sshd, env) = setup();
    let marker = unique("ptui-durable-to");
    // The same script as `counter`, with timeout_seconds: 3.
    let child = cmd(&env)
        .args([
            "install",
            "counter-timeout",
            "--on",
            "s",
            "--set",
            "count=100",
        ])
        .args(["--set", &format!("marker={marker}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_with(&marker).is_empty() {
        assert!(Instant::now() < deadline, "the installer never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    kill9(child);
    let id = env.jobs_json()[0]["id"].as_i64().expect("job id");
    let spool = spool_dir(&env, id);
    // The server enforces the timeout itself, with no client attached.
    let left = wait_no_processes(&marker, 15);
    assert!(
        left.is_empty(),
        "the remote timeout left processes: {left:?}"
    );
    let out = run(&env, &["jobs", "reattach", &id.to_string()]);
    assert!(!out.status.success());
    let j = job(&env, id);
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_kind"], "timeout", "{j}");
    assert!(!spool.exists(), "spool removed");
}

#[test]
fn two_processes_adopting_one_job_at_once_exactly_one_does() {
    let (_sshd, env) = setup();
    let (child, id, _marker) = start_counter(&env, 12, &[], 2);
    kill9(child);
    let a = cmd(&env)
        .args(["jobs", "reattach", &id.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("a");
    let b = cmd(&env)
        .args(["jobs", "reattach", &id.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("b");
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    let won = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(
        won,
        1,
        "exactly one adopts:\nA {:?} {}\nB {:?} {}",
        a.status,
        String::from_utf8_lossy(&a.stderr),
        b.status,
        String::from_utf8_lossy(&b.stderr)
    );
    let lost = if a.status.success() { &b } else { &a };
    assert!(
        String::from_utf8_lossy(&lost.stderr).contains("followed by a live process"),
        "{}",
        String::from_utf8_lossy(&lost.stderr)
    );
    assert_eq!(job(&env, id)["status"], "succeeded");
    assert_complete_output(&env, id, 12);
}

#[test]
fn a_spool_removed_by_hand_makes_the_job_interrupted_with_that_reason() {
    let (_sshd, env) = setup();
    let (child, id, marker) = start_counter(&env, 100, &[], 1);
    kill9(child);
    let spool = spool_dir(&env, id);
    assert!(spool.exists());
    spool.remove();
    let out = run(&env, &["jobs", "reattach", &id.to_string()]);
    assert!(!out.status.success(), "an interrupted job is a failure");
    let j = job(&env, id);
    assert_eq!(j["status"], "interrupted", "{j}");
    assert!(
        j["error_message"].as_str().unwrap_or("").contains("spool"),
        "the reason is stored: {j}"
    );
    // Its processes are not ours to find any more; stop them so nothing outlives the test.
    let _ = Command::new("pkill").args(["-f", &marker]).status();
}

#[test]
fn secrets_stay_out_of_ps_the_spool_the_database_and_the_log() {
    let (_sshd, env) = setup();
    let secret = "s3cr3t-durable-value";
    let (child, id, _marker) = start_counter(&env, 6, &["--set", &format!("token={secret}")], 2);
    // The test's own CLI carries it in argv (`--set`); no process on the server may.
    let ps = Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("ps");
    let leaked: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains(secret) && !l.starts_with(env!("CARGO_BIN_EXE_provision-tui")))
        .map(str::to_string)
        .collect();
    assert!(leaked.is_empty(), "secret in ps: {leaked:?}");
    let spool = spool_dir(&env, id);
    let spooled = std::fs::read_to_string(spool.file("out")).expect("spool out");
    assert!(
        spooled.contains("the token is ***"),
        "masked before the spool: {spooled}"
    );
    assert!(!spooled.contains(secret));
    kill9(child);
    let out = run(&env, &["jobs", "reattach", &id.to_string()]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    assert!(log(&env, id).iter().all(|(_, t)| !t.contains(secret)));
    for f in ["state.db", "state.db-wal"] {
        let p = env.db().with_file_name(f);
        if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "secret in {}",
                p.display()
            );
        }
    }
}

#[test]
fn a_jobs_stored_output_is_capped_keeping_the_head_a_marker_and_the_tail() {
    let (_sshd, env) = setup();
    let out = cmd(&env)
        .env("PROVISION_TUI_MAX_JOB_OUTPUT_MB", "1")
        .args(["install", "chatty", "--on", "s", "--set", "count=60000"])
        .output()
        .expect("install");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = env.jobs_json()[0]["id"].as_i64().expect("id");
    let lines = log(&env, id);
    let stdout: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, t)| t.as_str())
        .collect();
    let bytes: usize = stdout.iter().map(|t| t.len() + 1).sum();
    assert!(
        bytes <= 1024 * 1024 + 300 * 1024,
        "stored output is bounded: {bytes} bytes"
    );
    assert!(
        stdout.first().is_some_and(|t| t.starts_with("line 1 ")),
        "the head is kept"
    );
    assert_eq!(stdout.last().copied(), Some("done"), "the tail is kept");
    assert!(stdout.iter().any(|t| t.starts_with("line 60000 ")));
    let marker = lines
        .iter()
        .position(|(s, t)| s == "system" && t.contains("bytes dropped"))
        .expect("a marker says what was dropped");
    let done = lines.iter().position(|(_, t)| t == "done").expect("done");
    assert!(marker < done, "the marker comes before the kept tail");
    assert!(
        stdout.len() < 60001,
        "lines were dropped: {} stored",
        stdout.len()
    );
}
