//! A full or read-only database, on a real small filesystem (a tmpfs the test mounts as root):
//! every failure to record is an error the operator sees, nothing shown goes unstored, and
//! after space is freed the job is collected and the database is consistent.

mod common;

use common::{Sshd, TestEnv};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A tmpfs of `mb` MiB, unmounted on drop.
struct SmallFs {
    dir: PathBuf,
}

impl SmallFs {
    fn mount(mb: u32) -> Option<SmallFs> {
        let dir = std::env::temp_dir().join(common::unique("ptui-smallfs"));
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return None;
        }
        Some(SmallFs { dir })
    }

    fn remount(&self, opt: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(&self.dir)
            .status()
            .expect("mount");
        assert!(ok.success(), "remount {opt}");
    }

    /// Fills the filesystem, leaving about `keep_kb` KiB free.
    fn fill(&self, keep_kb: u64) {
        let free = free_kb(&self.dir);
        let n = free.saturating_sub(keep_kb);
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=1024", &format!("count={n}")])
            .arg(format!("of={}", self.filler().display()))
            .output();
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn free_kb(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-k", "--output=avail"])
        .arg(dir)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// The mount is required where the tests run as root (CI does); elsewhere the tests say why
/// they do nothing.
fn small_fs(mb: u32) -> Option<SmallFs> {
    let fs = SmallFs::mount(mb);
    if fs.is_none() {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        assert!(!root, "running as root, but a tmpfs could not be mounted");
        eprintln!("skipped: mounting a tmpfs needs root");
    }
    fs
}

fn run(env: &TestEnv, db: &Path, args: &[&str]) -> Output {
    env.cmd()
        .env("PROVISION_TUI_DB", db)
        .arg("--installers")
        .arg(common::repo_root().join("tests/fixtures/durable"))
        .args(args)
        .output()
        .expect("run")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn setup(fs: &SmallFs) -> (Sshd, TestEnv, PathBuf) {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    let db = fs.dir.join("state.db");
    let port = sshd.port.to_string();
    let key = sshd.client_key.display().to_string();
    for args in [
        vec![
            "server",
            "add",
            "s",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            &sshd.user,
            "--identity",
            &key,
        ],
        vec!["server", "trust", "s", "--yes"],
    ] {
        let o = run(&env, &db, &args);
        assert!(o.status.success(), "{}", text(&o));
    }
    (sshd, env, db)
}

fn integrity(db: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg("PRAGMA integrity_check;")
        .output()
        .expect("the sqlite3 command");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_read_only_database_is_an_error_that_says_so() {
    let Some(fs) = small_fs(8) else { return };
    let (_sshd, env, db) = setup(&fs);
    fs.remount("ro");
    let o = run(
        &env,
        &db,
        &["install", "chatty", "--on", "s", "--set", "count=3"],
    );
    fs.remount("rw");
    assert!(!o.status.success(), "exit status: {:?}", o.status);
    let t = text(&o);
    assert!(t.contains("read-only"), "the reason is named: {t}");
    assert!(
        t.contains(&db.display().to_string()),
        "the file is named: {t}"
    );
}

#[test]
fn a_job_that_cannot_be_created_on_a_full_disk_fails_with_the_reason() {
    let Some(fs) = small_fs(8) else { return };
    let (_sshd, env, db) = setup(&fs);
    fs.fill(0);
    let o = run(
        &env,
        &db,
        &["install", "chatty", "--on", "s", "--set", "count=3"],
    );
    assert!(
        !o.status.success(),
        "exit status {:?}: {}",
        o.status,
        text(&o)
    );
    let t = text(&o);
    assert!(
        t.contains("full") || t.contains("space"),
        "the reason is named: {t}"
    );
    let _ = std::fs::remove_file(fs.filler());
    assert_eq!(integrity(&db), "ok");
}

#[test]
fn lines_that_cannot_be_stored_are_reported_and_collected_once_space_is_freed() {
    let Some(fs) = small_fs(16) else { return };
    let (_sshd, env, db) = setup(&fs);
    // Room for the job's row and the first batches, not for 60 000 lines.
    fs.fill(400);
    let o = run(
        &env,
        &db,
        &["install", "chatty", "--on", "s", "--set", "count=60000"],
    );
    let t = text(&o);
    assert!(
        !o.status.success(),
        "a job whose output was not stored is not a success: {t}"
    );
    assert!(t.contains("could not be stored"), "said so: {t}");
    assert!(!t.contains("==> succeeded"), "{t}");
    // Space back: the job is collected from where its stored output ends.
    std::fs::remove_file(fs.filler()).expect("free space");
    let o = run(&env, &db, &["jobs", "reattach"]);
    let t = text(&o);
    if !o.status.success() {
        let logs = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tail -n 30 {}/state/provision-tui/*.log*",
                env.path().display()
            ))
            .output()
            .expect("log");
        std::thread::sleep(std::time::Duration::from_secs(2));
        let jobs = run(&env, &db, &["jobs", "--json"]);
        panic!(
            "reattach: …{}\nlog file:\n{}\njobs: {}",
            &t[t.len().saturating_sub(300)..],
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&jobs.stdout)
        );
    }
    let o = run(&env, &db, &["jobs", "--json"]);
    let jobs: serde_json::Value = serde_json::from_slice(&o.stdout).expect("jobs json");
    assert_eq!(jobs[0]["status"], "succeeded", "{jobs}");
    let o = run(&env, &db, &["logs", "1", "--json"]);
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["stream"] == "stdout")
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    let want: Vec<String> = (1..=60000)
        .map(|i| format!("line {i} of a chatty installer, padded to fill the disk sooner"))
        .chain(["done".to_string()])
        .collect();
    assert_eq!(lines.len(), want.len(), "every line once");
    assert!(lines == want, "in order, none twice");
    assert_eq!(integrity(&db), "ok");
}
