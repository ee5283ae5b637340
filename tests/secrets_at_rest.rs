//! Secrets at rest: a deployment's password is sealed in the database (never plaintext),
//! reused by automatic recovery and re-installs, re-sealed by `secrets rotate-key`, and a
//! database without its key says which deployments need their secrets again. Real sshd.

mod common;

use common::{Sshd, TestEnv};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const PASSWORD: &str = "Sealed-Pa55word-7f3c9e";

fn install_with_password(env: &TestEnv, server: &str) {
    let out = env
        .cmd()
        .args([
            "install",
            "secret-app",
            "--on",
            server,
            "--set-env",
            "db_password=PTUI_PW",
        ])
        .env("PTUI_PW", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_password("install output", &out.stdout);
    assert_no_password("install stderr", &out.stderr);
}

fn assert_no_password(what: &str, bytes: &[u8]) {
    let needle = PASSWORD.as_bytes();
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle),
        "the password is in plaintext in {what}"
    );
}

/// Every file under `dir` (database, -wal, logs, config, key files...), bytes scanned.
fn assert_in_no_file(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                assert_no_password(&p.display().to_string(), &bytes);
                n += 1;
            }
        }
    }
    n
}

fn remote_dir(sshd: &Sshd) -> PathBuf {
    PathBuf::from(format!("/tmp/ptui-secret-{}", sshd.port))
}

fn write_config(env: &TestEnv) {
    let dir = env.path().join("config/provision-tui");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.yml"),
        "health:\n  interval: 300ms\n  timeout: 5s\n  failure_threshold: 2\n  success_threshold: 1\n\
         recovery:\n  grace: 0s\n  max_attempts: 2\n  backoff: 1s\n",
    )
    .unwrap();
}

fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {secs}s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn recovery_redeploys_with_the_sealed_password_and_it_is_in_no_file_row_or_output() {
    let env = TestEnv::new();
    let sshd = Sshd::start();
    let dir = remote_dir(&sshd);
    let _ = std::fs::remove_dir_all(&dir);
    env.add_server("s", &sshd);
    install_with_password(&env, "s");
    assert_eq!(
        std::fs::read_to_string(dir.join("password")).unwrap(),
        PASSWORD
    );
    env.ok(&["policy", "s", "--recovery", "auto"]);
    write_config(&env);
    // watch's output goes to a file under the test home, so the scan below covers it too.
    let watch_log = env.path().join("watch.jsonl");
    let mut watch = env
        .cmd()
        .args(["watch", "--json"])
        .env("PROVISION_TUI_LOG", "debug")
        .stdout(std::fs::File::create(&watch_log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let events = || -> Vec<Value> {
        let f = std::fs::File::open(&watch_log).unwrap();
        BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    };
    wait_for(20, "a healthy sample", || {
        events()
            .iter()
            .any(|e| e["event"] == "health_sample" && e["sample"]["ok"] == true)
    });
    // The server is reset: the app and its configuration are gone.
    std::fs::remove_dir_all(&dir).unwrap();
    wait_for(60, "the incident resolved by recovery", || {
        events().iter().any(|e| {
            e["event"] == "incident_changed"
                && e["incident"]["kind"] == "service_down"
                && e["incident"]["state"] == "resolved"
        })
    });
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(
        std::fs::read_to_string(dir.join("password")).unwrap(),
        PASSWORD,
        "the app came back with the same password"
    );
    let jobs = env.jobs_json();
    let jobs = jobs.as_array().unwrap();
    assert!(jobs.len() >= 2, "a recovery job ran: {jobs:#?}");
    assert!(jobs.iter().all(|j| j["status"] != "failed"), "{jobs:#?}");
    // Every view shows the mask, never the value.
    let show = env.ok(&["server", "show", "s", "--json"]);
    assert!(show.contains("***"), "{show}");
    for out in [
        show,
        env.ok(&["server", "show", "s"]),
        serde_json::to_string(&jobs).unwrap(),
        env.ok(&["audit", "--json", "--limit", "1000"]),
        env.ok(&["audit", "export"]),
        env.ok(&["logs", &jobs[0]["id"].to_string()]),
        env.ok(&["incidents", "--json"]),
    ] {
        assert_no_password("a command's output", out.as_bytes());
    }
    // The database (sqlite file, -wal), the log, the watch output, the key files: none holds it.
    assert!(env.db().exists());
    let scanned = assert_in_no_file(env.path());
    assert!(scanned >= 4, "scanned {scanned} files");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reinstall_reuses_the_secret_after_rotation_and_a_copy_without_its_key_says_so() {
    let env = TestEnv::new();
    let sshd = Sshd::start();
    let dir = remote_dir(&sshd);
    let _ = std::fs::remove_dir_all(&dir);
    env.add_server("s", &sshd);
    install_with_password(&env, "s");
    let key_file = env.db().with_file_name("secrets.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the key file is the owner's alone");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let rotated = env.ok(&["secrets", "rotate-key"]);
    assert!(rotated.contains("1 secret blob(s) re-sealed"), "{rotated}");
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), old_key);
    // A re-install without the password: the sealed one is used.
    std::fs::remove_dir_all(&dir).unwrap();
    env.ok(&["install", "secret-app", "--on", "s"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("password")).unwrap(),
        PASSWORD
    );
    assert!(
        env.ok(&["secrets", "status"])
            .starts_with("1 deployment(s) with sealed secrets")
    );
    // The database copied without its key: it opens, and names what needs its secrets again.
    std::fs::remove_file(&key_file).unwrap();
    let out = env.run(&["secrets", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("needs its secrets again: secret-app on s")
            && text.contains("secrets.key is missing"),
        "{text}"
    );
    env.ok(&["server", "list"]);
    let out = env.run(&["install", "secret-app", "--on", "s"]);
    assert!(!out.status.success(), "no password, no usable sealed one");
    assert!(String::from_utf8_lossy(&out.stderr).contains("db_password"));
    let _ = std::fs::remove_dir_all(&dir);
}
