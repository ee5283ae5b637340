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
    env.register("s", sshd, &sshd.user, &[]);
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

const PW_USER: &str = "ptui-pwauth";
/// The tests that log in as PW_USER share its home (and its ~/.bashrc): one at a time.
static PW_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A local user with this password (needs root); false when not root.
fn password_user(password: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !root {
        eprintln!("skipping: creating a password user needs root");
        return false;
    }
    let exists = Command::new("id")
        .arg(PW_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !exists {
        let ok = Command::new("useradd")
            .args(["-m", "-s", "/bin/bash", PW_USER])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "useradd {PW_USER} failed");
    }
    let mut chpw = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .expect("chpasswd");
    use std::io::Write;
    chpw.stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PW_USER}:{password}\n").as_bytes())
        .expect("write");
    assert!(chpw.wait().expect("chpasswd").success());
    true
}

#[test]
fn password_from_an_env_var_authenticates_and_is_never_stored() {
    let _one = PW_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let password = format!("pw {}-$x'y", std::process::id());
    if !password_user(&password) {
        return;
    }
    let sshd = Sshd::start_with("PasswordAuthentication yes\n");
    let env = TestEnv::new();
    env.register("s", &sshd, PW_USER, &["--password-env", "PTUI_TEST_SSH_PW"]);
    env.ok(&["server", "trust", "s", "--yes"]);
    env.ok(&["server", "sudo", "s", "--never"]);

    // Not set: the error says which variable was missing.
    let out = env.run(&["install", "whoami", "--on", "s"]);
    assert_eq!(
        out.status.code(),
        Some(16),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = env.jobs_json()[0].clone();
    let msg = job["error_message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("$PTUI_TEST_SSH_PW is not set"), "{msg}");

    // Wrong: an auth error, not retried.
    let out = env
        .cmd()
        .env("PTUI_TEST_SSH_PW", "wrong-password")
        .args(["install", "whoami", "--on", "s"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(16),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = env.jobs_json()[0].clone();
    assert_eq!(job["error_kind"], "auth", "{job}");
    assert_eq!(job["attempts"], 1, "auth failures are not retried");

    // Right: the job runs as that user.
    let out = env
        .cmd()
        .env("PTUI_TEST_SSH_PW", &password)
        .args(["install", "whoami", "--on", "s"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uid = Command::new("id")
        .args(["-u", PW_USER])
        .output()
        .expect("id");
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_string();
    assert!(text.contains(&format!("uid={uid}")), "{text}");

    // The password is in no file the tool wrote (database, WAL, logs).
    for entry in walk(env.path()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "the password was written to {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Under sshd every bash at shell level 1 sources ~/.bashrc, and an exec chain resets the
/// level: the login shell runs it (as `ssh host cmd` does), but neither the wrapper nor the
/// script's bash may run it again (a heavy rc file, e.g. `pyenv init`, would be paid 3 times).
#[test]
fn the_users_bashrc_runs_once_per_job() {
    let _one = PW_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !password_user("unused-here") {
        return;
    }
    let sshd = Sshd::start();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sshd.dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ak = sshd.dir.join(format!("authorized_keys.{PW_USER}"));
    std::fs::copy(sshd.dir.join("client_key.pub"), &ak).expect("authorized key");
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let home = format!("/home/{PW_USER}");
    let count = format!("{home}/rc-count");
    let _ = std::fs::remove_file(&count);
    let bashrc = format!("{home}/.bashrc");
    let saved = std::fs::read(&bashrc).ok();
    std::fs::write(
        &bashrc,
        "echo \"sourced $$ $SHLVL ${BASH_EXECUTION_STRING:0:60}\" >> \"$HOME/rc-count\"\n",
    )
    .expect("bashrc");
    let _ = Command::new("chown")
        .args([&format!("{PW_USER}:{PW_USER}"), &bashrc, &home])
        .status();
    let env = TestEnv::new();
    let key = sshd.client_key.display().to_string();
    env.register("s", &sshd, PW_USER, &["--identity", &key]);
    env.ok(&["server", "trust", "s", "--yes"]);
    env.ok(&["server", "sudo", "s", "--never"]);
    env.ok(&["install", "whoami", "--on", "s"]);
    let n = std::fs::read_to_string(&count)
        .unwrap_or_default()
        .lines()
        .count();
    match saved {
        Some(b) => std::fs::write(&bashrc, b).expect("restore bashrc"),
        None => {
            let _ = std::fs::remove_file(&bashrc);
        }
    }
    let log = std::fs::read_to_string(&count).unwrap_or_default();
    assert_eq!(n, 1, "~/.bashrc ran {n} times for one job: {log}");
}
