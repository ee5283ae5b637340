//! SQLite store: one writer connection per process, WAL, `BEGIN IMMEDIATE` for every write.

pub mod audit;
pub mod deployments;
pub mod durable;
pub mod health;
pub mod incident_reads;
pub mod incidents;
pub mod job_end;
pub mod jobs;
pub mod leases;
pub mod log_search;
mod metrics;
mod migrations;
pub mod servers;
pub mod sudo;

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use migrations::{LATEST_VERSION, MIGRATIONS};

/// Shared handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    path: PathBuf,
}

pub use ptui_types::time::now_ms;

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).wrap_err_with(|| {
                format!("cannot create the database directory {}", dir.display())
            })?;
        }
        let conn = Connection::open(path)
            .wrap_err_with(|| format!("cannot open the database {}", path.display()))?;
        configure(&conn).wrap_err_with(|| format!("cannot configure {}", path.display()))?;
        let store = Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path: path.to_path_buf(),
            }),
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back),
        // so a poisoned mutex is safe to reuse.
        self.inner.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` inside `BEGIN IMMEDIATE`; commits on Ok, rolls back on Err.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_error(e, &self.inner.path))?;
        let out = f(&tx)?;
        tx.commit().map_err(|e| db_error(e, &self.inner.path))?;
        Ok(out)
    }

    /// Runs a read-only closure on the connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.lock();
        f(&conn)
    }

    /// A number that changes whenever another connection commits (`PRAGMA data_version`).
    /// Front ends poll it to notice work done by other processes without re-reading tables.
    pub fn data_version(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("PRAGMA data_version", [], |r| r.get(0))?))
    }

    pub fn schema_version(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.lock();
        migrations::migrate(&mut conn)
            .wrap_err_with(|| format!("cannot migrate the database {}", self.inner.path.display()))
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Adds what to do to the raw SQLite error.
fn db_error(e: rusqlite::Error, path: &Path) -> color_eyre::eyre::Report {
    let hint = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => {
            "free some disk space and retry; nothing was written"
        }
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            "another process holds the database for too long; retry"
        }
        Some(rusqlite::ErrorCode::ReadOnly) | Some(rusqlite::ErrorCode::CannotOpen) => {
            "check the permissions of the database file and its directory"
        }
        _ => "the change was rolled back",
    };
    color_eyre::eyre::eyre!("database {}: {e} ({hint})", path.display())
}

/// Converts SQLite errors inside write closures into reports that name the database.
pub(crate) trait SqlContext<T> {
    fn sql(self) -> Result<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn sql(self) -> Result<T> {
        self.map_err(|e| {
            let hint = match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DiskFull) => " (disk full: free space and retry)",
                _ => "",
            };
            color_eyre::eyre::eyre!("database error: {e}{hint}")
        })
    }
}

#[cfg(test)]
pub fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("state.db")).expect("open store");
    (dir, store)
}

/// A server `name` at `root@h:22` in `status`, for store unit tests.
#[cfg(test)]
pub fn test_server(
    store: &Store,
    name: &str,
    status: ptui_types::server::ServerStatus,
) -> ptui_types::server::Server {
    store
        .add_server(
            &ptui_types::server::ServerSpec {
                name: name.into(),
                host: "h".into(),
                port: 22,
                user: "root".into(),
                ..Default::default()
            },
            status,
        )
        .expect("add test server")
}
