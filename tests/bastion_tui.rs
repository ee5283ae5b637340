//! The dashboard on a bastion, in tmux (its own tmux server, so `set-clipboard` touches no
//! other test): read-only keys explain instead of acting, and `y` copies a log line with
//! OSC 52 into tmux's buffer.

mod common;

use common::{Sshd, TestEnv};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux")
    }

    /// The binary in a 120x40 pane with `env`'s environment and `extra` arguments.
    fn start(env: &TestEnv, extra: &[&str]) -> Tmux {
        let t = Tmux {
            socket: common::unique("ptui-bastion"),
        };
        let cmd = env.cmd();
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
                    sh(&v.to_string_lossy())
                ));
            }
        }
        line.push_str(&format!(" {}", sh(&cmd.get_program().to_string_lossy())));
        for a in cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .chain(extra.iter().map(|s| s.to_string()))
        {
            line.push_str(&format!(" {}", sh(&a)));
        }
        // Hold the pane open first so the server option is set before the dashboard starts.
        let out = t.tmux(&[
            "-f",
            "/dev/null",
            "new",
            "-d",
            "-s",
            "t",
            "-x",
            "120",
            "-y",
            "40",
            "sleep 600",
        ]);
        assert!(
            out.status.success(),
            "tmux new: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            t.tmux(&["set", "-s", "set-clipboard", "on"])
                .status
                .success()
        );
        assert!(
            t.tmux(&["respawn-pane", "-k", "-t", "t", &line])
                .status
                .success()
        );
        t
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            assert!(self.tmux(&["send-keys", "-t", "t", k]).status.success());
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn text(&self, s: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "t", "-l", s])
                .status
                .success()
        );
        std::thread::sleep(Duration::from_millis(150));
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn have_tmux() -> bool {
    Command::new("tmux").arg("-V").output().is_ok()
}

fn dump(env: &TestEnv) -> String {
    let out = Command::new("sqlite3")
        .arg(env.db())
        .arg(".dump")
        .output()
        .expect("sqlite3");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn readonly_dashboard_keys_explain_and_change_nothing() {
    if !have_tmux() {
        eprintln!("tmux not installed; skipping");
        return;
    }
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("web1", &sshd);
    let before = dump(&env);
    let t = Tmux::start(&env, &["--readonly"]);
    t.wait_for("the fleet", 20, |s| s.contains("web1"));
    t.keys(&["D"]);
    let s = t.wait_for("the explanation", 10, |s| {
        s.contains("read-only: removing a server")
    });
    assert!(!s.contains("Remove web1"), "a confirm dialog opened:\n{s}");
    t.keys(&["i"]);
    t.wait_for("install explained", 10, |s| {
        s.contains("read-only: running an installer")
    });
    t.keys(&["a"]);
    t.wait_for("add explained", 10, |s| {
        s.contains("read-only: adding a server")
    });
    // Looking still works: the jobs screen opens.
    t.keys(&["3"]);
    t.wait_for("jobs screen", 10, |s| s.contains("Jobs"));
    t.keys(&["q"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        dump(&env),
        before,
        "the read-only dashboard wrote to the database"
    );
}

#[test]
fn y_copies_the_log_line_into_tmux_buffer_with_osc52() {
    if !have_tmux() {
        eprintln!("tmux not installed; skipping");
        return;
    }
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("web1", &sshd);
    env.ok(&[
        "install",
        "echo-ok",
        "--on",
        "web1",
        "--set",
        "token=abcdefgh",
        "--set",
        "message=copy-me-please",
    ]);
    let t = Tmux::start(&env, &[]);
    t.wait_for("the fleet", 20, |s| s.contains("web1"));
    t.keys(&["3"]);
    t.wait_for("the job", 10, |s| s.contains("echo-ok"));
    t.keys(&["Enter", "/"]);
    t.text("copy-me");
    t.keys(&["Enter"]);
    t.keys(&["y"]);
    t.wait_for("the copy", 10, |s| s.contains("copied the log line"));
    let deadline = Instant::now() + Duration::from_secs(5);
    let buf = loop {
        let out = t.tmux(&["show-buffer"]);
        if out.status.success() || Instant::now() > deadline {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(buf, "message: copy-me-please", "tmux buffer");

    // Turned off in config.yml: `y` says so and copies nothing new.
    let cfg = env.path().join("config/provision-tui");
    std::fs::create_dir_all(&cfg).expect("config dir");
    std::fs::write(cfg.join("config.yml"), "clipboard: false\n").expect("config");
    drop(t);
    let t = Tmux::start(&env, &[]);
    t.wait_for("the fleet", 20, |s| s.contains("web1"));
    t.keys(&["y"]);
    t.wait_for("off", 10, |s| s.contains("copying is off"));
    assert!(
        !t.tmux(&["show-buffer"]).status.success(),
        "a buffer was set"
    );
}
