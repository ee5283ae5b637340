//! Escalation for a non-root login: password-less sudo (NOPASSWD) as is, and a sudo password
//! from an env var, sent on stdin only. Needs root (to create the test users) and sudo
//! installed (scripts/test installs it); otherwise it says so and passes.

mod common;

use common::{Sshd, TestEnv};
use std::process::Command;

const USER: &str = "ptui-sudo";
/// A login with a NOPASSWD sudoers rule.
const NOPW_USER: &str = "ptui-nopw";

/// Creates (or reuses) a login with this password and sudoers rule. False when not possible.
fn setup_user(user: &str, password: &str, sudoers_rule: &str) -> bool {
    // useradd/chpasswd lock /etc/passwd and fail when tests of this file run them concurrently.
    static USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = USERS.lock().unwrap_or_else(|p| p.into_inner());
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !root || !std::path::Path::new("/usr/bin/sudo").exists() {
        eprintln!("skipping: needs root and sudo (scripts/test installs it)");
        return false;
    }
    if !Command::new("id")
        .arg(user)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        let ok = Command::new("useradd")
            .args(["-m", "-s", "/bin/bash", user])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "useradd failed");
    }
    // A password also unlocks the account: sshd (UsePAM no) refuses locked ones even for keys.
    let mut chpw = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("chpasswd");
    use std::io::Write;
    chpw.stdin
        .take()
        .unwrap()
        .write_all(format!("{user}:{password}\n").as_bytes())
        .unwrap();
    assert!(chpw.wait().unwrap().success());
    std::fs::write(
        format!("/etc/sudoers.d/{user}"),
        format!("{user} {sudoers_rule}\n"),
    )
    .unwrap();
    true
}

/// Lets `user` log in to `sshd` with the test key, and registers it as server `s`.
fn add_server_as(sshd: &Sshd, user: &str) -> TestEnv {
    // The test user must read the sshd's authorized_keys file.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sshd.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ak = sshd.dir.join(format!("authorized_keys.{user}"));
    std::fs::copy(sshd.dir.join("client_key.pub"), &ak).unwrap();
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o644)).unwrap();
    let env = TestEnv::new();
    let port = sshd.port.to_string();
    let key = sshd.client_key.display().to_string();
    env.ok(&[
        "server",
        "add",
        "s",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        user,
        "--identity",
        &key,
    ]);
    env.ok(&["server", "trust", "s", "--yes"]);
    env
}

#[test]
fn nopasswd_sudo_needs_no_setting() {
    let password = format!("unused-{}", std::process::id());
    if !setup_user(NOPW_USER, &password, "ALL=(ALL) NOPASSWD: ALL") {
        return;
    }
    let sshd = Sshd::start();
    let env = add_server_as(&sshd, NOPW_USER);
    // The default escalation (`sudo -n`) works as is for a NOPASSWD login; the login is not
    // root, so uid 0 comes from sudo.
    let out = env.run(&["install", "whoami", "--on", "s"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("uid=0"), "ran as root: {stdout}");
    assert!(
        stdout.contains("stdin=/dev/null"),
        "the installer's stdin is empty: {stdout}"
    );
}

#[test]
fn sudo_password_travels_on_stdin_only() {
    let password = format!("pw-{}-x y$z", std::process::id());
    if !setup_user(USER, &password, "ALL=(ALL) ALL") {
        return;
    }
    let sshd = Sshd::start();
    let env = add_server_as(&sshd, USER);

    // Default `sudo -n`: refused fast, with the way out in the message.
    let out = env.run(&["install", "whoami", "--on", "s"]);
    assert_eq!(
        out.status.code(),
        Some(16),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-env"));

    env.ok(&["server", "sudo", "s", "--password-env", "PTUI_SUDO_PW"]);
    let out = env
        .cmd()
        .env("PTUI_SUDO_PW", &password)
        .args(["install", "whoami", "--on", "s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("uid=0"), "ran as root: {stdout}");
    assert!(
        stdout.contains("stdin=/dev/null"),
        "the installer's stdin is empty: {stdout}"
    );
    let all = format!(
        "{stdout}{}{}",
        String::from_utf8_lossy(&out.stderr),
        env.ok(&["audit", "--json"])
    );
    assert!(!all.contains(&password));
    for suffix in ["", "-wal"] {
        if let Ok(b) = std::fs::read(format!("{}{suffix}", env.db().display())) {
            assert!(
                !b.windows(password.len()).any(|w| w == password.as_bytes()),
                "password in the DB"
            );
        }
    }

    // A wrong password fails as an auth problem, and is not echoed either.
    let out = env
        .cmd()
        .env("PTUI_SUDO_PW", "wrong-one")
        .args(["install", "whoami", "--on", "s"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("wrong-one"));
    // No variable set: refused before anything runs remotely.
    let out = env
        .cmd()
        .env_remove("PTUI_SUDO_PW")
        .args(["install", "whoami", "--on", "s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(16));
}
