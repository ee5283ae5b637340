//! A real OpenSSH sshd on 127.0.0.1 at a free port, with its own config, host key and
//! authorized key (the library's recipe, crates/bench/src/sshd.rs). Killed by PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Sshd {
    pub port: u16,
    pub dir: PathBuf,
    /// Private key the tests authenticate with.
    pub client_key: PathBuf,
    pub user: String,
    /// sshd_config lines placed before the recipe's (sshd keeps the first value it reads).
    extra_config: String,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

use ptui_bench::sshd as recipe;

fn keygen(path: &Path) {
    recipe::keygen(path).unwrap_or_else(|e| panic!("{e:#}"));
}

fn keygen_type(path: &Path, key_type: &str) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", key_type, "-N", "", "-C", "test-host", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(st.success(), "ssh-keygen -t {key_type} failed");
}

pub fn free_port() -> u16 {
    recipe::free_port().expect("a free port")
}

pub fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            let out = Command::new("id").arg("-un").output().expect("id -un");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
}

impl Sshd {
    /// Starts a fresh sshd with new keys.
    pub fn start() -> Sshd {
        Self::start_with("")
    }

    /// Like `start`, with sshd_config lines that override the recipe's.
    pub fn start_with(extra_config: &str) -> Sshd {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        let user = current_user();
        std::fs::copy(
            dir.join("client_key.pub"),
            dir.join(format!("authorized_keys.{user}")),
        )
        .expect("authorized key");
        let mut s = Sshd {
            port: 0,
            dir: dir.clone(),
            client_key: dir.join("client_key"),
            user,
            extra_config: extra_config.to_string(),
            child: None,
            _tmp: Some(tmp),
        };
        s.port = free_port();
        s.spawn();
        s
    }

    /// The library's recipe (crates/bench/src/sshd.rs), logging to `sshd.log` for failed tests.
    fn spawn(&mut self) {
        let cfg = self.dir.join("sshd_config");
        let text = format!(
            "{}{}",
            self.extra_config,
            recipe::config(&self.dir, self.port, "sshd")
        );
        std::fs::write(&cfg, text).expect("sshd_config");
        let log = std::fs::File::create(self.dir.join("sshd.log")).expect("log file");
        let child = recipe::spawn(&cfg, Stdio::from(log)).unwrap_or_else(|e| {
            panic!("{e:#} (the README's test command installs openssh-server)")
        });
        self.child = Some(child);
        if recipe::wait_listening(&[self.port], Duration::from_secs(10)).is_err() {
            let log = std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default();
            panic!("sshd did not listen on {} within 10 s: {log}", self.port);
        }
    }

    /// The listening sshd's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Kills the processes serving this sshd's open connections (not the listener).
    pub fn kill_connections(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("pkill")
                .args(["-KILL", "-P", &pid.to_string()])
                .status();
        }
    }

    /// Sends a signal (e.g. "STOP", "CONT") to sshd and every process it forked (its
    /// per-connection children), by pid: the host hangs without closing anything.
    pub fn signal_tree(&self, sig: &str) {
        let Some(root) = self.pid() else { return };
        let mut pids = vec![root];
        let mut i = 0;
        while i < pids.len() {
            let parent = pids[i];
            if let Ok(rd) = std::fs::read_dir("/proc") {
                for e in rd.flatten() {
                    let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                        continue;
                    };
                    let stat =
                        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    // Fields after the ")" that ends the command name: state, ppid, ...
                    let ppid = stat
                        .rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                        .and_then(|p| p.parse::<u32>().ok());
                    if ppid == Some(parent) && !pids.contains(&pid) {
                        pids.push(pid);
                    }
                }
            }
            i += 1;
        }
        for p in pids {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(p.to_string())
                .status();
        }
    }

    /// Kills sshd and every connection it serves, like a host going down (`stop` alone leaves
    /// the per-connection processes, and so pooled connections, alive).
    pub fn crash(&mut self) {
        self.signal_tree("KILL");
        self.stop();
    }

    /// Stops sshd (the port stays reserved for `restart`).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts on the same port with only a new host key of `key_type` (`rsa`, `ecdsa`,
    /// `ed25519`) and the keys `add_host_key` added: a server whose key type changed.
    pub fn restart_with_host_key_type(&mut self, key_type: &str) {
        self.stop();
        let _ = std::fs::remove_file(self.dir.join("host_key"));
        let _ = std::fs::remove_file(self.dir.join("host_key.pub"));
        keygen_type(&self.dir.join("host_key"), key_type);
        self.spawn();
    }

    /// Restarts offering one more host key, of `key_type`, besides the current ones.
    pub fn add_host_key(&mut self, key_type: &str) {
        self.stop();
        let path = self.dir.join(format!("host_key_{key_type}"));
        let _ = std::fs::remove_file(&path);
        keygen_type(&path, key_type);
        self.extra_config
            .push_str(&format!("HostKey {}\n", path.display()));
        self.spawn();
    }

    /// The public half of the host key sshd reads first (`host_key.pub`), OpenSSH format.
    pub fn host_public_key(&self) -> String {
        std::fs::read_to_string(self.dir.join("host_key.pub")).expect("host_key.pub")
    }

    /// Restarts on the same port, optionally with a brand new host key.
    pub fn restart(&mut self, new_host_key: bool) {
        self.stop();
        if new_host_key {
            let _ = std::fs::remove_file(self.dir.join("host_key"));
            let _ = std::fs::remove_file(self.dir.join("host_key.pub"));
            keygen(&self.dir.join("host_key"));
        }
        self.spawn();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
