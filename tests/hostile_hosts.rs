//! Hostile or careless surroundings, through the real binary: a server whose host key changed
//! TYPE (real OpenSSH sshd restarted with only an RSA key), entries in the user's
//! ~/.ssh/known_hosts and hashed ones, an `import command` that floods or leaves children
//! behind, and the files that describe the fleet being private (0600).

mod common;

use common::{Sshd, TestEnv, unique, wait_no_processes};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &[&str] = &["install", "exit-code", "--on", "s", "--set", "code=0"];

fn own_known_hosts(env: &TestEnv) -> PathBuf {
    env.path().join("data/known_hosts")
}

fn user_known_hosts(env: &TestEnv) -> PathBuf {
    env.path().join("home/.ssh/known_hosts")
}

/// Runs with the user's ~/.ssh/known_hosts consulted (TestEnv turns it off by default).
fn run_with_user_file(env: &TestEnv, args: &[&str]) -> Output {
    env.cmd()
        .env_remove("PROVISION_TUI_USER_KNOWN_HOSTS")
        .args(args)
        .output()
        .expect("run provision-tui")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn last_error(env: &TestEnv) -> String {
    env.jobs_json()[0]["error_message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_changed_key_type_is_refused_and_trust_needs_replace() {
    let mut sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let own = own_known_hosts(&env);
    let before = std::fs::read_to_string(&own).unwrap();
    assert!(before.contains("ssh-ed25519"), "{before}");

    // Same host:port, now only an RSA key: a change, not an unknown key.
    sshd.restart_with_host_key_type("rsa");
    let out = env.run(INSTALL);
    assert_eq!(out.status.code(), Some(17), "{}", text(&out));
    let msg = last_error(&env);
    assert!(msg.contains("HOST KEY CHANGED"), "{msg}");
    assert!(!msg.contains("not known"), "{msg}");
    assert!(
        msg.contains("ssh-rsa") && msg.contains("ssh-ed25519"),
        "both key types: {msg}"
    );
    assert!(
        msg.contains(&format!("{}:1", own.display())),
        "the old entry's file and line: {msg}"
    );

    let out = env.run(&["server", "trust", "s", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(17),
        "--yes alone must not replace: {}",
        text(&out)
    );
    assert!(text(&out).contains("--replace"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&own).unwrap(),
        before,
        "nothing written"
    );

    env.ok(&["server", "trust", "s", "--yes", "--replace"]);
    let after = std::fs::read_to_string(&own).unwrap();
    assert_eq!(after.lines().count(), 1, "the old entry is gone: {after}");
    assert!(after.contains("ssh-rsa"), "{after}");
    env.ok(INSTALL);
}

#[test]
fn a_server_that_adds_a_key_type_is_still_trusted() {
    let mut sshd = Sshd::start();
    sshd.restart_with_host_key_type("rsa");
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    // It now offers ed25519 too; we ask for the type we recorded first, as OpenSSH does.
    sshd.add_host_key("ed25519");
    env.ok(INSTALL);
}

#[test]
fn a_changed_key_in_the_users_known_hosts_is_refused_and_left_alone() {
    let mut sshd = Sshd::start();
    let env = TestEnv::new();
    let key = sshd.client_key.display().to_string();
    env.register("s", &sshd, &sshd.user, &["--identity", &key]);
    let user_file = user_known_hosts(&env);
    std::fs::create_dir_all(user_file.parent().unwrap()).unwrap();
    let user_text = format!(
        "# from ssh\n[127.0.0.1]:{} {}",
        sshd.port,
        sshd.host_public_key()
    );
    std::fs::write(&user_file, &user_text).unwrap();
    let out = run_with_user_file(&env, INSTALL);
    assert!(
        out.status.success(),
        "trusted through ~/.ssh/known_hosts: {}",
        text(&out)
    );

    sshd.restart_with_host_key_type("rsa");
    let out = run_with_user_file(&env, INSTALL);
    assert_eq!(out.status.code(), Some(17), "{}", text(&out));
    let msg = last_error(&env);
    assert!(msg.contains("HOST KEY CHANGED"), "{msg}");
    assert!(
        msg.contains(&format!("{}:2", user_file.display())),
        "the user's file and line (after its comment): {msg}"
    );
    assert!(msg.contains("never edits"), "{msg}");

    let out = run_with_user_file(&env, &["server", "trust", "s", "--yes"]);
    assert_eq!(out.status.code(), Some(17), "{}", text(&out));
    let out = run_with_user_file(&env, &["server", "trust", "s", "--yes", "--replace"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("never edits"),
        "says it cannot fix the user's file: {}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&user_file).unwrap(),
        user_text,
        "the user's file is untouched"
    );
    let out = run_with_user_file(&env, INSTALL);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_hashed_entry_is_matched_and_replaced() {
    let mut sshd = Sshd::start();
    let env = TestEnv::new();
    let key = sshd.client_key.display().to_string();
    env.register("s", &sshd, &sshd.user, &["--identity", &key]);
    let own = own_known_hosts(&env);
    std::fs::write(
        &own,
        format!("[127.0.0.1]:{} {}", sshd.port, sshd.host_public_key()),
    )
    .unwrap();
    // OpenSSH's own hashing: `|1|salt|hash` of "[127.0.0.1]:PORT".
    let st = Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&own)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let _ = std::fs::remove_file(own.with_extension("old"));
    let hashed = std::fs::read_to_string(&own).unwrap();
    assert!(
        hashed.starts_with("|1|") && !hashed.contains("127.0.0.1"),
        "{hashed}"
    );
    env.ok(INSTALL);

    sshd.restart_with_host_key_type("rsa");
    let out = env.run(INSTALL);
    assert_eq!(out.status.code(), Some(17), "{}", text(&out));
    let msg = last_error(&env);
    assert!(
        msg.contains("HOST KEY CHANGED") && msg.contains(&format!("{}:1", own.display())),
        "{msg}"
    );
    let out = env.run(&["server", "trust", "s", "--yes"]);
    assert_eq!(out.status.code(), Some(17), "{}", text(&out));
    env.ok(&["server", "trust", "s", "--yes", "--replace"]);
    let after = std::fs::read_to_string(&own).unwrap();
    assert!(
        !after.contains("|1|") && after.contains("ssh-rsa"),
        "the hashed entry was dropped: {after}"
    );
    env.ok(INSTALL);
}

/// Waits for `child` and returns its exit code and peak resident memory in KiB.
fn wait_with_max_rss(child: std::process::Child) -> (Option<i32>, i64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, usage.ru_maxrss)
}

#[test]
fn import_command_output_is_capped_in_time_and_memory() {
    let env = TestEnv::new();
    env.ok(&["server", "list"]);
    let started = Instant::now();
    let child = env
        .cmd()
        .args(["import", "command", "cat /dev/zero"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    let (code, max_rss_kib) = wait_with_max_rss(child);
    let took = started.elapsed();
    let err = std::fs::read_to_string(env.path().join("err")).unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("cat /dev/zero") && err.contains("16 MiB"),
        "names the command and the cap: {err}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        max_rss_kib < 200 * 1024,
        "peak memory {max_rss_kib} KiB (was 4.7 GB in 8 s)"
    );
    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["server", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "nothing imported");
}

#[test]
fn import_command_timeout_kills_its_children_too() {
    let env = TestEnv::new();
    let marker = unique("ptui-import-child");
    // A background child that ignores HUP and TERM, and a foreground one.
    let cmd = format!(
        "sh -c 'trap \"\" HUP TERM; while :; do sleep 1; done' {marker}-bg & \
         sh -c 'while :; do sleep 1; done' {marker}-fg"
    );
    let started = Instant::now();
    let out = env.run(&["import", "command", &cmd, "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("did not finish within"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    let left = wait_no_processes(&marker, 5);
    assert!(left.is_empty(), "children outlived the timeout: {left:?}");
}

#[test]
fn the_database_log_and_known_hosts_are_private() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let db = env.db();
    let log = env.path().join("state/provision-tui/provision-tui.log");
    let own = own_known_hosts(&env);
    for f in [&db, &log, &own] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    for d in [
        env.path().join("data"),
        env.path().join("state/provision-tui"),
    ] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }

    // While a process holds the database in WAL mode, its -wal and -shm are private too.
    let mut watch = env
        .cmd()
        .arg("watch")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let shm = PathBuf::from(format!("{}-shm", db.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(wal.exists() && shm.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let modes = (mode(&wal), mode(&shm));
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(modes, (0o600, 0o600));

    // Files an older version left readable by others are tightened on the next run.
    for f in [&db, &log, &own] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    env.ok(&["server", "list"]);
    for f in [&db, &log, &own] {
        assert_eq!(mode(f), 0o600, "tightened: {}", f.display());
    }
}
