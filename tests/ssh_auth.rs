//! Authentication order against a real sshd: ssh-agent, then the identity file; a clear
//! `auth` error when nothing works.

mod common;

use common::{Sshd, TestEnv};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Agent {
    child: Child,
    sock: std::path::PathBuf,
}

impl Agent {
    fn start(dir: &std::path::Path) -> Agent {
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { child, sock }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn add_without_identity(env: &TestEnv, sshd: &Sshd) {
    let port = sshd.port.to_string();
    env.ok(&[
        "server",
        "add",
        "s",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        &sshd.user,
    ]);
    env.ok(&["server", "trust", "s", "--yes"]);
}

#[test]
fn agent_keys_authenticate() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    add_without_identity(&env, &sshd);
    let agent = Agent::start(env.path());
    let st = Command::new("ssh-add")
        .arg(&sshd.client_key)
        .env("SSH_AUTH_SOCK", &agent.sock)
        .stderr(Stdio::null())
        .status()
        .expect("ssh-add");
    assert!(st.success());
    let out = env
        .cmd()
        .env("SSH_AUTH_SOCK", &agent.sock)
        .args(["install", "exit-code", "--on", "s", "--set", "code=0"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_usable_credential_is_an_auth_error_that_says_what_was_tried() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    add_without_identity(&env, &sshd);
    // An agent holding no keys, and no key files in $HOME.
    let agent = Agent::start(env.path());
    let out = env
        .cmd()
        .env("SSH_AUTH_SOCK", &agent.sock)
        .args(["install", "exit-code", "--on", "s", "--set", "code=0"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(16),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: serde_json::Value = env.jobs_json()[0].clone();
    assert_eq!(job["error_kind"], "auth");
    assert_eq!(job["attempts"], 1, "auth failures are not retried");
    let msg = job["error_message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("agent (0 keys)") && msg.contains("authorized_keys"),
        "{msg}"
    );
}
