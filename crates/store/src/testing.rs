//! Databases for tests on both backends. `PROVISION_TUI_TEST_BACKEND=postgres` makes the
//! test helpers (`test_store`, the engine's and the binary's) use PostgreSQL; the server is
//! `PROVISION_TUI_TEST_POSTGRES` (with `PGPASSFILE`), as `scripts/test` starts it, or else one
//! this process starts with `scripts/pg-test-server` and that stops when the process exits.
//! Each call of [`fresh_postgres_url`] creates a database of its own.

use crate::Store;
use color_eyre::eyre::{Result, WrapErr, eyre};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct PgServer {
    /// The admin URL (database `postgres`), without a password.
    pub url: String,
    /// The pgpass file holding the password.
    pub pgpass: PathBuf,
}

pub fn postgres_requested() -> bool {
    std::env::var("PROVISION_TUI_TEST_BACKEND").is_ok_and(|v| v == "postgres")
}

/// The test server: the one in the environment, or one started for this process.
pub fn pg_server() -> Result<&'static PgServer> {
    static SERVER: OnceLock<std::result::Result<PgServer, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| start_or_find().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| eyre!("{e}"))
}

fn start_or_find() -> Result<PgServer> {
    if let (Ok(url), Ok(pgpass)) = (
        std::env::var("PROVISION_TUI_TEST_POSTGRES"),
        std::env::var("PGPASSFILE"),
    ) {
        return Ok(PgServer {
            url,
            pgpass: pgpass.into(),
        });
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-server");
    let out = std::process::Command::new(&script)
        .args(["start", "--watch", &std::process::id().to_string()])
        .output()
        .wrap_err_with(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        return Err(eyre!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
            .ok_or_else(|| eyre!("pg-test-server printed no {k}: {text}"))
    };
    Ok(PgServer {
        url: field("PROVISION_TUI_TEST_POSTGRES")?,
        pgpass: field("PGPASSFILE")?.into(),
    })
}

/// A new, empty database on the test server; its URL (no password: see `pg_server().pgpass`).
pub fn fresh_postgres_url() -> Result<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let server = pg_server()?;
    let name = format!(
        "t_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        crate::now_ms() % 100_000
    );
    let target = crate::sql::pg_config::resolve_with(&server.url, Some(&server.pgpass))
        .map_err(|e| eyre!(e))?;
    let pool = crate::sql::pg::PgPool::connect(target).map_err(|e| eyre!("{e}"))?;
    pool.acquire()
        .and_then(|c| c.client().batch(&format!("CREATE DATABASE {name}")))
        .map_err(|e| eyre!("CREATE DATABASE {name}: {e}"))?;
    let base = server
        .url
        .rsplit_once('/')
        .map_or(server.url.as_str(), |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// A store on a fresh PostgreSQL database of the test server.
pub fn fresh_postgres_store() -> Result<Store> {
    let url = fresh_postgres_url()?;
    let server = pg_server()?;
    Store::open_postgres_with(&url, Some(&server.pgpass))
}
