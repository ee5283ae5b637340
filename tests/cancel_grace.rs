//! Cancel with a grace (issue 15): TERM to the job's process group, then KILL after the
//! manifest's `cancel_grace_seconds`; `cancel` says when a package manager runs on the server.
//! Against a real sshd, through the real binary.

mod common;

use common::{Sshd, TestEnv};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cmd(env: &TestEnv) -> Command {
    let mut c = env.cmd();
    // The manifest's grace, not the suite's short override.
    c.env_remove("PROVISION_TUI_KILL_GRACE")
        .arg("--installers")
        .arg(common::repo_root().join("tests/fixtures/grace"));
    c
}

fn log_text(env: &TestEnv, id: i64) -> String {
    let out = cmd(env)
        .args(["logs", &id.to_string()])
        .output()
        .expect("logs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_cancel_lets_the_package_step_finish_within_the_grace_and_names_the_package_manager() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let mut child = cmd(&env)
        .args(["install", "package-step", "--on", "s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn install");
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        assert!(Instant::now() < deadline, "the step never started");
        if let Some(id) = env
            .jobs_json()
            .as_array()
            .and_then(|a| a.first().cloned())
            .and_then(|j| j["id"].as_i64())
            && log_text(&env, id).contains("step started")
        {
            break id;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let t0 = Instant::now();
    let out = cmd(&env)
        .args(["cancel", &id.to_string()])
        .output()
        .expect("cancel");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("a package manager is running on s") && said.contains("/ptui-grace-"),
        "cancel names the dpkg process: {said}"
    );
    assert!(said.contains("up to 8s"), "the manifest's grace: {said}");
    let status = child.wait().expect("install ends");
    assert_eq!(status.code(), Some(14), "cancelled exit code");
    let job = env.jobs_json()[0].clone();
    assert_eq!(job["status"], "cancelled", "{job}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let t = log_text(&env, id);
        if t.contains("stopping after") || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // The TERM did not cut the step short (a KILL at once, or after the old fixed 2 s, would
    // have), and the script stopped right after it instead of going on.
    assert!(text.contains("package step done"), "{text}");
    assert!(
        text.contains("cancelled: stopping after the running step"),
        "{text}"
    );
    assert!(!text.contains("after the step"), "{text}");
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "the job ended when its step did, not at the end of the grace: {:?}",
        t0.elapsed()
    );
}
