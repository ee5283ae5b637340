//! Escalation for a non-root login: password-less sudo (NOPASSWD) as is, and a sudo password
//! from an env var or given to the engine (`--prompt`), sent on stdin only. Needs root (to
//! create the test users) and sudo installed (scripts/test installs it); otherwise it says so
//! and passes. The fail-fast of a `--prompt` server without a password needs neither.

mod common;

use common::{Sshd, TestEnv, fixtures};
use ptui_engine::{Engine, InstallRequest};
use ptui_types::config::Config;
use ptui_types::error::ErrorKind;
use ptui_types::job::{JobAction, JobStatus};
use ptui_types::records::SudoSettings;
use ptui_types::secret::Secret;
use ptui_types::server::ServerSpec;
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

/// The password of `USER`: one per test process, as the tests of this file run concurrently
/// and share the login.
fn user_password() -> String {
    format!("pw-{}-x y$z", std::process::id())
}

/// Lets `user` log in to `sshd` with the test key.
fn allow_login(sshd: &Sshd, user: &str) {
    // The test user must read the sshd's authorized_keys file.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sshd.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ak = sshd.dir.join(format!("authorized_keys.{user}"));
    std::fs::copy(sshd.dir.join("client_key.pub"), &ak).unwrap();
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Lets `user` log in to `sshd` with the test key, and registers it as server `s`.
fn add_server_as(sshd: &Sshd, user: &str) -> TestEnv {
    allow_login(sshd, user);
    let env = TestEnv::new();
    let key = sshd.client_key.display().to_string();
    env.register("s", sshd, user, &["--identity", &key]);
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
    let password = user_password();
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

/// Whether `needle` occurs in the database file or its WAL.
fn in_db(db: &std::path::Path, needle: &str) -> bool {
    ["", "-wal"].iter().any(|suffix| {
        std::fs::read(format!("{}{suffix}", db.display()))
            .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap_or(false)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompted_password_lives_in_the_engine_only() {
    let password = user_password();
    if !setup_user(USER, &password, "ALL=(ALL) ALL") {
        return;
    }
    let sshd = Sshd::start();
    allow_login(&sshd, USER);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("state.db");
    let mut cfg = Config::new(Some(db.clone()), vec![fixtures()]);
    cfg.user_known_hosts_path = None;
    let e = Engine::open(cfg).expect("engine");
    e.add_server(&ServerSpec {
        name: "s".into(),
        host: "127.0.0.1".into(),
        port: sshd.port,
        user: USER.into(),
        identity: Some(sshd.client_key.display().to_string()),
        ..Default::default()
    })
    .expect("add");
    let scan = e.scan_host_key("s").await.expect("scan");
    e.trust_host_key(&scan, false).expect("trust");
    e.set_server_sudo(
        "s",
        &SudoSettings {
            escalate: Some(true),
            password_env: None,
            prompt: true,
        },
    )
    .expect("sudo --prompt");
    assert_eq!(
        e.servers_needing_sudo_password(&["s".into()]).unwrap(),
        vec![("s".to_string(), format!("{USER}@s"))]
    );
    e.set_sudo_password("s", Secret::new(password.clone()))
        .expect("set password");
    assert!(
        e.servers_needing_sudo_password(&["s".into()])
            .unwrap()
            .is_empty()
    );

    let install = || InstallRequest {
        app: "whoami".into(),
        servers: vec!["s".into()],
        inputs: Default::default(),
        action: JobAction::Install,
    };
    let jobs = e.start_install(&install()).expect("start");
    let job = e.wait_job(jobs[0].id).await.unwrap();
    let logs: String = e
        .job_logs(job.id, 0, 1000)
        .unwrap()
        .iter()
        .map(|l| format!("{}\n", l.text))
        .collect();
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}\n{logs}");
    assert!(logs.contains("uid=0"), "ran as root: {logs}");
    assert!(
        logs.contains("stdin=/dev/null"),
        "the installer's stdin is empty: {logs}"
    );
    assert!(!logs.contains(&password), "password in the log");
    drop(e);
    assert!(!in_db(&db, &password), "password in the DB");

    // A new process knows no password: the job fails before connecting, saying how to give it.
    let mut cfg = Config::new(Some(db.clone()), vec![fixtures()]);
    cfg.user_known_hosts_path = None;
    let e = Engine::open(cfg).expect("engine");
    let jobs = e.start_install(&install()).expect("start");
    let job = e.wait_job(jobs[0].id).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error_kind, Some(ErrorKind::Auth), "{job:?}");

    // A wrong password fails as an auth problem, is not echoed, and is forgotten so that the
    // dashboard asks again.
    e.set_sudo_password("s", Secret::new("wrong-one-zz"))
        .expect("set");
    let jobs = e.start_install(&install()).expect("start");
    let job = e.wait_job(jobs[0].id).await.unwrap();
    assert_eq!(job.error_kind, Some(ErrorKind::Auth), "{job:?}");
    let logs: String = e
        .job_logs(job.id, 0, 1000)
        .unwrap()
        .iter()
        .map(|l| l.text.clone())
        .collect();
    assert!(!logs.contains("wrong-one-zz"), "{logs}");
    assert_eq!(
        e.servers_needing_sudo_password(&["s".into()])
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn prompt_without_a_password_fails_fast_off_a_terminal() {
    // No sshd and no such login: the job must fail before it would connect.
    let env = TestEnv::new();
    env.ok(&[
        "server",
        "add",
        "p",
        "--host",
        "127.0.0.1",
        "--port",
        "1",
        "--user",
        "deploy",
    ]);
    env.ok(&["server", "sudo", "p", "--prompt"]);
    assert!(env.ok(&["server", "show", "p"]).contains("asked for"));
    let show = env.server_json("p");
    assert_eq!(show["sudo"]["prompt"], true, "{show}");
    // --prompt goes with neither --password-env nor --never.
    assert!(
        !env.run(&["server", "sudo", "p", "--prompt", "--password-env", "X"])
            .status
            .success()
    );

    let out = env.run(&["install", "whoami", "--on", "p"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(16), "{stdout}{stderr}");
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("dashboard"), "{all}");
    assert!(all.contains("--password-env"), "{all}");
    assert!(!all.contains("connecting to"), "tried to connect: {all}");
    let jobs = env.jobs_json();
    assert_eq!(jobs[0]["error_kind"], "auth", "{jobs}");
}
