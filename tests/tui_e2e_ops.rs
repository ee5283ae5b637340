//! The dashboard in tmux against real sshds, for what the snapshots cannot show: ages that
//! tick with no new data, the cancel dialog asking the server whether dpkg runs, and the
//! review's plan computed by the engine (`--plan`'s `ChangePlan`).

mod common;

use common::tmux::Tmux;
use common::{Sshd, TestEnv};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The `Ns ago` of the detail page's job line.
fn job_age(screen: &str) -> Option<u64> {
    screen
        .lines()
        .find(|l| l.contains("install echo-ok") && l.contains(" ago"))?
        .split_whitespace()
        .find_map(|w| w.strip_suffix('s')?.parse().ok())
}

#[test]
fn the_detail_page_ages_tick_with_no_new_data() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("web1", &sshd);
    env.install_echo_ok("web1", &[]);
    let t = Tmux::start(&env, &[]);
    t.wait_for("the fleet", 20, |s| s.contains("web1"));
    t.keys(&["Enter"]);
    let s = t.wait_for("the detail's job", 20, |s| job_age(s).is_some());
    let first = job_age(&s).expect("age");
    // No key, no job, no event: only the clock moves.
    let s = t.wait_for("the age to move", 10, |s| {
        job_age(s).is_some_and(|a| a >= first + 3)
    });
    assert!(s.contains("Server web1"), "still the detail page:\n{s}");
}

#[test]
fn the_cancel_dialog_says_when_dpkg_runs_on_the_server() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let grace = common::repo_root().join("tests/fixtures/grace");
    let mut install = env
        .cmd()
        .arg("--installers")
        .arg(&grace)
        .args(["install", "package-step", "--on", "s"])
        .args(["--set", "step_seconds=60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("install");
    let t = Tmux::start(&env, &["--installers", grace.to_str().expect("utf-8")]);
    t.wait_for("the fleet", 20, |s| s.contains(" s "));
    t.keys(&["3"]);
    t.wait_for("the running job", 30, |s| {
        s.contains("package-step") && s.contains("step started")
    });
    t.keys(&["c"]);
    let s = t.wait_for("the dialog's note", 20, |s| {
        s.contains("a package manager is running on s")
    });
    assert!(s.contains("Cancel job #1 (package-step on s)?"), "{s}");
    assert!(s.contains("/ptui-grace-"), "names the dpkg process:\n{s}");
    // Confirmed: the job is cancelled (the fixture's dpkg ignores TERM: KILL after the grace).
    t.keys(&["y"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = install.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "the install did not end");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status.code(), Some(14), "cancelled");
    assert_eq!(env.jobs_json()[0]["status"], "cancelled");
}

#[test]
fn the_review_shows_the_engines_plan() {
    let (a, b) = (Sshd::start(), Sshd::start());
    let env = TestEnv::new();
    env.add_server("web1", &a);
    // Registered, its host key not trusted: the plan skips it and says why.
    env.register("web2", &b, &b.user, &[]);
    let before = env.jobs_json();
    let t = Tmux::start(&env, &[]);
    t.wait_for("the fleet", 20, |s| {
        s.contains("web1") && s.contains("web2")
    });
    // Both marked, then echo-ok's form on them.
    t.keys(&["Space", "Space", "2"]);
    t.wait_for("the catalog", 10, |s| s.contains("echo-ok"));
    t.text("/echo-ok");
    t.keys(&["Enter", "Enter"]);
    t.wait_for("the form", 10, |s| s.contains("API token"));
    t.keys(&["Tab"]);
    t.text("abcdefgh");
    t.keys(&["C-s"]);
    let s = t.wait_for("the plan", 20, |s| s.contains("sha256"));
    assert!(s.contains("install.sh sha256"), "{s}");
    assert!(
        s.contains("1: web1"),
        "the batch holds the runnable server:\n{s}"
    );
    assert!(
        s.contains("skipped (host_key)") && s.contains("server trust web2"),
        "{s}"
    );
    assert!(!s.contains("abcdefgh"), "the token is masked:\n{s}");
    t.keys(&["Escape", "Escape"]);
    assert_eq!(env.jobs_json(), before, "a plan ran nothing");
}

#[test]
fn the_audit_screen_shows_the_chain_verified_and_then_broken() {
    let env = TestEnv::new();
    env.ok(&["server", "add", "web1", "--host", "10.0.0.5"]);
    env.ok(&["server", "add", "web2", "--host", "10.0.0.6"]);
    let t = Tmux::start(&env, &[]);
    t.wait_for("the fleet", 20, |s| s.contains("web2"));
    t.keys(&["5"]);
    t.wait_for("the chain verified", 20, |s| {
        s.contains("chain intact: 2 rows, head")
    });
    // Someone edits a row behind the log's back; the next read says where.
    let edit = std::process::Command::new("sqlite3")
        .arg(env.db())
        .arg("UPDATE audit_log SET details = 'nothing happened' WHERE id = 1")
        .output()
        .expect("sqlite3");
    assert!(edit.status.success());
    t.keys(&["C-r"]);
    let s = t.wait_for("the chain broken", 20, |s| s.contains("chain BROKEN"));
    assert!(
        s.contains("nothing happened"),
        "the edited row is listed:\n{s}"
    );
}
