//! Shared test helpers: a real sshd, and a sandboxed environment for the provision-tui binary.
#![allow(dead_code)]

pub mod health;
pub mod sshd;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use sshd::Sshd;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/installers")
}

/// An isolated home for one test: its own DB, known_hosts, XDG dirs, no agent.
pub struct TestEnv {
    pub tmp: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.tmp.path().join("data/state.db")
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// A command for the real binary with this environment and the fixture installers.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_provision-tui"));
        let home = self.tmp.path().join("home");
        let _ = std::fs::create_dir_all(&home);
        c.env("PROVISION_TUI_DB", self.db())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", self.tmp.path().join("config"))
            .env("XDG_STATE_HOME", self.tmp.path().join("state"))
            .env("XDG_DATA_HOME", self.tmp.path().join("data"))
            .env("PROVISION_TUI_USER_KNOWN_HOSTS", "")
            .env("PROVISION_TUI_RETRY_BASE_MS", "100")
            .env("PROVISION_TUI_KILL_GRACE", "2")
            .env_remove("SSH_AUTH_SOCK")
            .arg("--installers")
            .arg(fixtures());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run provision-tui")
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "provision-tui {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Registers the sshd as a server and trusts its host key.
    pub fn add_server(&self, name: &str, sshd: &Sshd) {
        let key = sshd.client_key.display().to_string();
        self.register(name, sshd, &sshd.user, &["--identity", &key]);
        self.ok(&["server", "trust", name, "--yes"]);
    }

    /// `server add NAME` for this sshd as `user`, plus `extra` flags; the key is not trusted.
    pub fn register(&self, name: &str, sshd: &Sshd, user: &str, extra: &[&str]) {
        let port = sshd.port.to_string();
        let mut args = vec![
            "server",
            "add",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            user,
        ];
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    /// Installs the `echo-ok` fixture on `server` (token given), plus `sets` (`key=value`).
    pub fn install_echo_ok(&self, server: &str, sets: &[&str]) -> String {
        let mut args = vec![
            "install",
            "echo-ok",
            "--on",
            server,
            "--set",
            "token=abcdefgh",
        ];
        for s in sets {
            args.extend(["--set", s]);
        }
        self.ok(&args)
    }

    pub fn jobs_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["jobs", "--json", "--limit", "1000"])).expect("jobs json")
    }

    pub fn server_json(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["server", "show", name, "--json"])).expect("server json")
    }
}

/// Lines of `ps` matching a marker: the installer's own processes, not provision-tui's
/// (whose argv carries the marker as an input value) nor ps itself.
pub fn processes_with(marker: &str) -> Vec<String> {
    let out = Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(marker) && !l.contains("ps -eo") && !l.contains("provision-tui"))
        .map(str::to_string)
        .collect()
}

/// Waits up to `secs` for no process to carry `marker`.
pub fn wait_no_processes(marker: &str, secs: u64) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let p = processes_with(marker);
        if p.is_empty() || std::time::Instant::now() > deadline {
            return p;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}
