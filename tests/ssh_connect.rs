//! Connecting to a server before any job runs: host keys are checked and unreachable or
//! blackholed servers fail as `ssh_connect` within the connect timeout. Real OpenSSH sshd on
//! loopback, through the provision-tui binary.

mod common;

use common::{Sshd, TestEnv};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn last_job(env: &TestEnv) -> serde_json::Value {
    env.jobs_json()[0].clone()
}

/// Runs an install on `server` with a connect timeout of `timeout_secs`, checks that it
/// exits with the ssh_connect code (15), and returns how long it took.
fn install_fails_to_connect(env: &TestEnv, server: &str, timeout_secs: &str) -> Duration {
    let started = Instant::now();
    let out = env
        .cmd()
        .env("PROVISION_TUI_CONNECT_TIMEOUT", timeout_secs)
        .args(["install", "exit-code", "--on", server, "--set", "code=0"])
        .output()
        .expect("run");
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(15),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

#[test]
fn unknown_and_changed_host_keys_are_refused() {
    let mut sshd = Sshd::start();
    let env = TestEnv::new();
    let key = sshd.client_key.display().to_string();
    env.register("s", &sshd, &sshd.user, &["--identity", &key]);

    // Unknown: refused, pointing to `server trust`, and nothing waits on a prompt.
    let out = env
        .cmd()
        .args(["install", "exit-code", "--on", "s", "--set", "code=0"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(17),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("server trust s"));
    let out = env
        .cmd()
        .args(["server", "trust", "s"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(
        !out.status.success(),
        "trust without --yes off a terminal must not record"
    );
    let fp = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(fp.contains("SHA256:"), "fingerprint shown: {fp}");

    env.ok(&["server", "trust", "s", "--yes"]);
    env.ok(&["install", "exit-code", "--on", "s", "--set", "code=0"]);

    // Changed: a hard error naming both fingerprints.
    sshd.restart(true);
    let out = env.run(&["install", "exit-code", "--on", "s", "--set", "code=0"]);
    assert_eq!(out.status.code(), Some(17));
    let job = last_job(&env);
    assert_eq!(job["error_kind"], "host_key");
    let msg = job["error_message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("HOST KEY CHANGED") && msg.matches("SHA256:").count() == 2,
        "{msg}"
    );
    let out = env.run(&["server", "trust", "s", "--yes"]);
    assert_eq!(out.status.code(), Some(17), "a changed key needs --replace");
    env.ok(&["server", "trust", "s", "--yes", "--replace"]);
    env.ok(&["install", "exit-code", "--on", "s", "--set", "code=0"]);
}

#[test]
fn unreachable_port_is_ssh_connect_within_the_timeout() {
    let env = TestEnv::new();
    let port = common::sshd::free_port().to_string();
    env.ok(&[
        "server",
        "add",
        "gone",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
    ]);
    let took = install_fails_to_connect(&env, "gone", "2");
    let job = last_job(&env);
    assert_eq!(job["error_kind"], "ssh_connect");
    assert_eq!(job["attempts"], 4, "connection errors are retried 3 times");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let out = env.run(&["logs", &job["id"].to_string()]);
    assert_eq!(
        out.status.code(),
        Some(15),
        "`logs` exits with the job's kind"
    );
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(logs.contains("retrying"), "{logs}");
}

#[test]
fn blackholed_host_times_out_at_the_connect_timeout() {
    let env = TestEnv::new();
    // TEST-NET-1: no route answers, so only the connect timeout ends the attempt.
    env.ok(&[
        "server",
        "add",
        "void",
        "--host",
        "192.0.2.1",
        "--port",
        "22",
    ]);
    let took = install_fails_to_connect(&env, "void", "1");
    // 4 attempts of ~1 s plus short backoff.
    assert!(took < Duration::from_secs(12), "took {took:?}");
}
