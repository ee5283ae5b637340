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
/// With `PROVISION_TUI_TEST_BACKEND=postgres` (the second pass of `scripts/test`), its
/// database is a fresh one on the test PostgreSQL server instead of the SQLite file.
pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    pub pg_url: Option<String>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let pg_url = ptui_store::testing::postgres_requested().then(|| {
            ptui_store::testing::fresh_postgres_url().expect("a PostgreSQL test database")
        });
        TestEnv {
            tmp: tempfile::tempdir().expect("tempdir"),
            pg_url,
        }
    }

    /// `--db` as the binary gets it: the PostgreSQL URL, or the SQLite file.
    pub fn database(&self) -> String {
        match &self.pg_url {
            Some(u) => u.clone(),
            None => self.db().display().to_string(),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.tmp.path().join("data/state.db")
    }

    /// One query's rows through the real command-line client of the backend (sqlite3, or
    /// psql on PostgreSQL), `|`-separated, as that client prints them.
    pub fn sql(&self, query: &str) -> String {
        let out = match &self.pg_url {
            Some(url) => {
                let server = ptui_store::testing::pg_server().expect("PostgreSQL test server");
                Command::new("psql")
                    .env("PGPASSFILE", &server.pgpass)
                    .args([url.as_str(), "-At", "-c", query])
                    .output()
                    .expect("psql")
            }
            None => Command::new("sqlite3")
                .arg(self.db())
                .arg(query)
                .output()
                .expect("sqlite3"),
        };
        assert!(
            out.status.success(),
            "{query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// A command for the real binary with this environment and the fixture installers.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_provision-tui"));
        let home = self.tmp.path().join("home");
        let _ = std::fs::create_dir_all(&home);
        c.env("PROVISION_TUI_DB", self.database())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", self.tmp.path().join("config"))
            .env("XDG_STATE_HOME", self.tmp.path().join("state"))
            .env("XDG_DATA_HOME", self.tmp.path().join("data"))
            .env("PROVISION_TUI_USER_KNOWN_HOSTS", "")
            .env("PROVISION_TUI_RETRY_BASE_MS", "100")
            .env("PROVISION_TUI_KILL_GRACE", "2")
            .env_remove("SSH_AUTH_SOCK");
        if self.pg_url.is_some()
            && let Ok(server) = ptui_store::testing::pg_server()
        {
            // The keys where the tests look for them: beside `db()`, as with SQLite.
            c.env("PGPASSFILE", &server.pgpass)
                .env(
                    "PROVISION_TUI_SECRETS_KEY_FILE",
                    self.db().with_file_name("secrets.key"),
                )
                .env(
                    "PROVISION_TUI_AUDIT_KEY_FILE",
                    self.db().with_file_name("audit.key"),
                );
        }
        c.arg("--installers").arg(fixtures());
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

/// (stream, text) of each line of `logs JOB --json` output, in order.
pub fn parse_log_json(stdout: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["stream"].as_str().unwrap_or("").to_string(),
                v["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
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

/// Shell code run on servers must pass shellcheck like the installers (scripts/test installs it).
pub fn assert_shellcheck_clean(relative: &str) {
    let out = Command::new("shellcheck")
        .args(["-s", "bash"])
        .arg(repo_root().join(relative))
        .output()
        .expect("shellcheck (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{relative}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
