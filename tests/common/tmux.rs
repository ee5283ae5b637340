//! The real dashboard in a detached tmux pane (its own tmux server per test, so
//! `set-clipboard` and buffers touch no other test): keys in, `capture-pane` text out.

use super::TestEnv;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux")
    }

    /// The binary in a 120x40 pane with `env`'s environment and `extra` arguments.
    pub fn start(env: &TestEnv, extra: &[&str]) -> Tmux {
        require_tmux();
        let t = Tmux {
            socket: super::unique("ptui-tmux"),
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

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            assert!(self.tmux(&["send-keys", "-t", "t", k]).status.success());
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    pub fn text(&self, s: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "t", "-l", s])
                .status
                .success()
        );
        std::thread::sleep(Duration::from_millis(150));
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    pub fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
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

/// tmux must be there: a test that skipped without it would pass with nothing checked.
fn require_tmux() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "tmux is not installed (scripts/test installs it: apt-get install -y tmux)"
    );
}
