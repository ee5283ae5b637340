//! End to end through tmux: the real binary in a 120x40 pane against a real sshd. Adds and
//! trusts the server, fills a fixture installer's form (with a password), confirms, and sees
//! the job succeed with its log. The password must never appear in any captured pane.

mod common;

use common::{Sshd, TestEnv};
use std::process::Command;
use std::time::{Duration, Instant};

const PASSWORD: &str = "Sup3r-Secret-Pw";

struct Tmux {
    name: String,
    captures: Vec<String>,
}

impl Tmux {
    fn start(env: &TestEnv) -> Tmux {
        let name = common::unique("ptui-e2e");
        let cmd = env.cmd();
        // `env -u` options must come before the assignments.
        let mut line = String::from("env");
        for (k, v) in cmd.get_envs() {
            if v.is_none() {
                line.push_str(&format!(" -u {}", k.to_string_lossy()));
            }
        }
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                line.push_str(&format!(
                    " {}={}",
                    k.to_string_lossy(),
                    shell(&v.to_string_lossy())
                ));
            }
        }
        line.push_str(&format!(" {}", shell(&cmd.get_program().to_string_lossy())));
        for a in cmd.get_args() {
            line.push_str(&format!(" {}", shell(&a.to_string_lossy())));
        }
        let ok = Command::new("tmux")
            .args(["new", "-d", "-s", &name, "-x", "120", "-y", "40", &line])
            .status()
            .expect("tmux");
        assert!(ok.success(), "tmux new failed");
        Tmux {
            name,
            captures: Vec::new(),
        }
    }

    fn keys(&mut self, keys: &[&str]) {
        for k in keys {
            let ok = Command::new("tmux")
                .args(["send-keys", "-t", &self.name, k])
                .status()
                .expect("tmux send-keys");
            assert!(ok.success());
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    /// Types text literally.
    fn text(&mut self, s: &str) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "-l", s])
            .status()
            .expect("tmux send-keys");
        assert!(ok.success());
        std::thread::sleep(Duration::from_millis(100));
    }

    fn capture(&mut self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .expect("capture-pane");
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            !s.contains(PASSWORD),
            "the password appeared on screen:\n{s}"
        );
        self.captures.push(s.clone());
        s
    }

    fn wait_for(&mut self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.capture();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn shell(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn dashboard_installs_through_a_real_sshd() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux not installed; skipping");
        return;
    }
    let sshd = Sshd::start();
    let env = TestEnv::new();
    let mut t = Tmux::start(&env);
    t.wait_for("the fleet screen", 20, |s| s.contains("No servers yet"));

    // Add the server through the form; its host key dialog follows.
    t.keys(&["a"]);
    t.wait_for("the add-server form", 5, |s| s.contains("Add server"));
    t.text("e2e");
    t.keys(&["Tab"]);
    t.text("127.0.0.1");
    t.keys(&["Tab", "BSpace", "BSpace"]);
    t.text(&sshd.port.to_string());
    t.keys(&[
        "Tab", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace",
    ]);
    t.text(&sshd.user);
    t.keys(&["Tab"]);
    t.text(&sshd.client_key.display().to_string());
    t.keys(&["C-s"]);
    let s = t.wait_for("the host key dialog", 20, |s| {
        s.contains("Unknown host key")
    });
    assert!(s.contains("SHA256:"), "fingerprint shown:\n{s}");
    t.keys(&["a"]);
    t.wait_for("trust confirmation", 10, |s| s.contains("trusted e2e"));
    // Issue 14: a check follows the trust; its figures fill the row and the detail page.
    t.wait_for("the check after the trust", 30, |s| s.contains("checked 1"));
    t.keys(&["Enter"]);
    let s = t.wait_for("the detail page's health", 10, |s| {
        s.contains("last check") && s.contains("uptime 24h")
    });
    assert!(s.contains("latency") || s.contains("auth_failed"), "{s}");
    // Maintenance from the dashboard: m, a reason, Enter; then listed and ended.
    t.keys(&["m"]);
    t.wait_for("the prefilled palette", 5, |s| {
        s.contains("maintenance on e2e for 1h reason")
    });
    t.text("e2e window");
    t.keys(&["Enter"]);
    t.wait_for("maintenance on", 10, |s| {
        s.contains("maintenance on for e2e until")
    });
    t.keys(&[":"]);
    t.text("maintenance list");
    t.keys(&["Enter"]);
    t.wait_for("the window listed", 10, |s| s.contains("(e2e window)"));
    t.keys(&[":"]);
    t.text("maintenance off e2e");
    t.keys(&["Enter"]);
    t.wait_for("maintenance off", 10, |s| s.contains("1 window ended"));
    t.keys(&["Escape"]);
    // s: a real ssh shell on the server, the dashboard suspended, back when it exits.
    t.keys(&["s"]);
    std::thread::sleep(Duration::from_millis(1500));
    t.text("echo shell-$((40+2)) on $(hostname)");
    t.keys(&["Enter"]);
    t.wait_for("the remote shell's answer", 20, |s| {
        s.contains("shell-42 on")
    });
    t.text("exit");
    t.keys(&["Enter"]);
    t.wait_for("the dashboard back", 20, |s| {
        s.contains("shell closed") && s.contains("Fleet")
    });

    // Catalog → echo-ok → form.
    t.keys(&["2", "/"]);
    t.text("echo-ok");
    t.keys(&["Enter"]);
    t.wait_for("the catalog details", 5, |s| {
        s.contains("Echo OK") && s.contains("install on e2e")
    });
    t.keys(&["Enter"]);
    t.wait_for("the install form", 5, |s| s.contains("Install Echo OK"));
    t.keys(&["Tab"]);
    t.text("short");
    let s = t.wait_for("an inline validation error", 5, |s| {
        s.contains("at least 6")
    });
    assert!(s.contains("*****"), "the password is masked:\n{s}");
    t.keys(&["BSpace", "BSpace", "BSpace", "BSpace", "BSpace"]);
    t.text(PASSWORD);
    t.keys(&["C-s"]);
    let s = t.wait_for("the review step", 5, |s| s.contains("review"));
    assert!(s.contains("***"), "review masks the secret:\n{s}");
    t.keys(&["y"]);

    // The job runs; the Jobs screen follows its log until it succeeds.
    let s = t.wait_for("the job to succeed", 60, |s| {
        s.contains("succeeded") && s.contains("done") && s.contains("line 3")
    });
    assert!(s.contains("Log #"), "log pane shown:\n{s}");
    assert!(s.contains("this goes to stderr"), "stderr shown:\n{s}");
    assert!(
        s.contains("using token *** now"),
        "the token is masked in the log:\n{s}"
    );

    // x writes the whole log to a file beside the database.
    t.keys(&["x"]);
    t.wait_for("the export", 10, |s| s.contains("log written to"));
    let exported: Vec<_> = std::fs::read_dir(env.db().parent().expect("data dir"))
        .expect("data dir")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("provision-tui-job-")
        })
        .collect();
    assert_eq!(exported.len(), 1, "one exported log");
    let text = std::fs::read_to_string(exported[0].path()).expect("read export");
    assert!(
        text.contains("line 3") && text.contains("stderr this goes to stderr"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "the export is masked too");
    let audit = env.run(&["audit", "--json"]);
    let audit = String::from_utf8_lossy(&audit.stdout);
    for action in ["maintenance.on", "maintenance.off"] {
        assert!(audit.contains(action), "{action} audited: {audit}");
    }

    // A second process's job shows up here within about 2 s.
    let out = env.run(&["install", "exit-code", "--on", "e2e", "--set", "code=0"]);
    assert!(
        out.status.success(),
        "cli install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.keys(&["Escape", "g"]);
    t.wait_for("the other process's job", 4, |s| {
        s.contains("install exit-code")
    });

    t.keys(&["q"]);
    std::thread::sleep(Duration::from_millis(500));
    for c in &t.captures {
        assert!(!c.contains(PASSWORD));
    }
    // The README's dashboard capture comes from this run when PTUI_E2E_CAPTURE is set.
    if let Ok(path) = std::env::var("PTUI_E2E_CAPTURE")
        && let Some(c) = t
            .captures
            .iter()
            .rev()
            .find(|c| c.contains("using token *** now"))
    {
        let _ = std::fs::write(path, c);
    }
}

#[test]
fn marked_servers_install_as_one_fanout() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux not installed; skipping");
        return;
    }
    let hosts: Vec<Sshd> = (0..3).map(|_| Sshd::start()).collect();
    let env = TestEnv::new();
    for (i, h) in hosts.iter().enumerate() {
        env.add_server(&format!("f{i}"), h);
    }
    let mut t = Tmux::start(&env);
    t.wait_for("the fleet", 20, |s| s.contains("f0") && s.contains("f2"));
    // Space marks and moves down: all three marked.
    t.keys(&["Space", "Space", "Space", "2", "/"]);
    t.text("fanout");
    t.keys(&["Enter"]);
    t.wait_for("the catalog details", 5, |s| s.contains("Fan-out"));
    t.keys(&["Enter"]);
    t.wait_for("the install form", 5, |s| s.contains("Install Fan-out"));
    t.keys(&["BSpace", "BSpace", "BSpace", "BSpace"]);
    t.text("f1");
    t.keys(&["C-s"]);
    let s = t.wait_for("the review step", 5, |s| s.contains("review"));
    assert!(
        s.contains("f0") && s.contains("f1") && s.contains("f2"),
        "review lists the marked servers:\n{s}"
    );
    // The review's fan-out options: one job at a time.
    assert!(
        s.contains("3 at once · batch all · failure budget none"),
        "{s}"
    );
    t.keys(&["c"]);
    t.text("1");
    t.keys(&["Enter"]);
    t.wait_for("concurrency 1", 5, |s| s.contains("1 at once"));
    t.keys(&["y"]);
    let s = t.wait_for("the fan-out to finish", 60, |s| {
        s.contains("fan-out done: 2 succeeded, 1 failed, 0 skipped (failed: f1)")
    });
    assert!(s.contains("Log #"), "a job's log is open:\n{s}");
    assert!(
        s.contains("line 5 from f"),
        "the log shows the script's lines:\n{s}"
    );
    // F: one row per server, with its state and last line.
    t.keys(&["Escape", "F"]);
    let s = t.wait_for("the fan-out view", 5, |s| s.contains("3/3 done"));
    let row = |n: &str| {
        s.lines()
            .find(|l| l.contains(n))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("f1 ").contains("failed"), "{s}");
    assert!(
        row("f0 ").contains("succeeded") && row("f0 ").contains("exit 0"),
        "{s}"
    );
    assert!(
        row("f1 ").contains("installer exited with 2"),
        "the last line: {s}"
    );
    let jobs = env.jobs_json();
    let jobs = jobs.as_array().expect("jobs");
    assert_eq!(jobs.len(), 3, "one job per marked server: {jobs:?}");
    for j in jobs {
        let want = if j["server_name"] == "f1" {
            "failed"
        } else {
            "succeeded"
        };
        assert_eq!(j["status"], want, "{j}");
    }
    t.keys(&["q"]);
}
