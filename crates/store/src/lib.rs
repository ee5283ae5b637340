//! The store: SQLite (one writer connection per process, WAL, `BEGIN IMMEDIATE` for every
//! write) or PostgreSQL (a small pool; writers take turns through an advisory lock). Every
//! query is written once, against `sql::Connection`.

pub mod audit;
pub mod audit_chain;
pub mod copy;
pub mod deployment_history;
pub mod deployments;
pub mod durable;
pub mod health;
pub mod health_reads;
pub mod incident_reads;
pub mod incidents;
pub mod job_end;
pub mod jobs;
pub mod leases;
pub mod log_search;
mod metrics;
mod migrations;
mod plan_reads;
mod readonly;
pub mod servers;
pub mod sites;
pub mod sql;
pub mod sudo;
pub mod testing;

use color_eyre::eyre::{Result, WrapErr};
use ptui_types::private_files;
use rusqlite::TransactionBehavior;
use sql::{Connection, Transaction};
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
    backend: Backend,
    /// The SQLite file, or the PostgreSQL URL without its password: what messages name.
    location: String,
    /// The audit chain's HMAC key (`audit_chain.rs`); rows written before it is set are unchained.
    audit_key: std::sync::RwLock<Option<audit_chain::AuditKey>>,
}

enum Backend {
    Sqlite(Mutex<rusqlite::Connection>),
    /// The mutex: this process's writers take turns before borrowing a client (writers of
    /// all processes take turns again on the server's advisory lock), so waiting writers never
    /// hold the clients that reads need.
    Postgres(Box<sql::pg::PgPool>, Mutex<()>),
}

pub use ptui_types::time::now_ms;

/// Why the database's directory cannot be written, as advice for an error message (empty
/// when it can be): SQLite's own "unable to open database file" does not say.
pub fn unwritable(path: &Path) -> String {
    let Some(dir) = path.parent() else {
        return String::new();
    };
    let probe = dir.join(format!(".ptui-write-probe-{}", std::process::id()));
    // A page's worth of data: an empty file can still be created on a full filesystem.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&probe)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(&[0u8; 4096])?;
            f.sync_all()
        });
    let _ = std::fs::remove_file(&probe);
    match written {
        Ok(()) => String::new(),
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => format!(
            " ({} is on a read-only filesystem: remount it read-write, or point --db / PROVISION_TUI_DB at a writable place)",
            dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::StorageFull => format!(
            " (no space left on the filesystem of {}: free some, then run the command again)",
            dir.display()
        ),
        Err(e) => format!(" ({} cannot be written: {e})", dir.display()),
    }
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    /// A new database is created 0600 (in a 0700 directory); SQLite gives its -wal and -shm
    /// the database's mode. Files found readable by others are set to 0600.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            private_files::create_dir(dir).wrap_err_with(|| {
                format!("cannot create the database directory {}", dir.display())
            })?;
        }
        if !path.exists() {
            private_files::ensure_file(path)
                .wrap_err_with(|| format!("cannot create the database {}", path.display()))?;
        }
        let conn = rusqlite::Connection::open(path).wrap_err_with(|| {
            format!(
                "cannot open the database {}{}",
                path.display(),
                unwritable(path)
            )
        })?;
        configure(&conn)
            .wrap_err_with(|| format!("cannot configure {}{}", path.display(), unwritable(path)))?;
        tighten_database_files(path);
        let store = Self {
            inner: Arc::new(Inner {
                backend: Backend::Sqlite(Mutex::new(conn)),
                location: path.display().to_string(),
                audit_key: std::sync::RwLock::new(None),
            }),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens a PostgreSQL database (`postgres://…`, with libpq's `PG*` environment and
    /// pgpass) and brings its schema up to date.
    pub fn open_postgres(url: &str) -> Result<Self> {
        Self::open_postgres_with(url, None)
    }

    /// As [`open_postgres`](Self::open_postgres), with the password from this pgpass file.
    pub fn open_postgres_with(url: &str, pgpass: Option<&Path>) -> Result<Self> {
        let target =
            sql::pg_config::resolve_with(url, pgpass).map_err(|e| color_eyre::eyre::eyre!(e))?;
        let store = Self::connect_postgres(target)?;
        store.migrate()?;
        Ok(store)
    }

    /// PostgreSQL for looking only (`--readonly`): every session is read-only on the server
    /// (`default_transaction_read_only`), nothing is migrated, and an older schema is refused.
    pub fn open_postgres_read_only(url: &str, pgpass: Option<&Path>) -> Result<Self> {
        let mut target =
            sql::pg_config::resolve_with(url, pgpass).map_err(|e| color_eyre::eyre::eyre!(e))?;
        let options = match target.config.get_options() {
            Some(o) => format!("{o} -c default_transaction_read_only=on"),
            None => "-c default_transaction_read_only=on".to_string(),
        };
        target.config.options(&options);
        let store = Self::connect_postgres(target)?;
        let version = store.schema_version().unwrap_or(0);
        if version != LATEST_VERSION {
            color_eyre::eyre::bail!(
                "read-only: the database {} has schema version {version} and this provision-tui needs {LATEST_VERSION}; \
                 it is not upgraded when looking only, since that writes. Run provision-tui once without --readonly \
                 (for example `provision-tui db info`) with a role that may write it, then look again",
                store.location()
            );
        }
        Ok(store)
    }

    fn connect_postgres(target: sql::pg::Target) -> Result<Self> {
        let location = target.shown.clone();
        let pool = sql::pg::PgPool::connect(target)
            .map_err(|e| color_eyre::eyre::eyre!("{e} ({})", e.hint()))?;
        let store = Self {
            inner: Arc::new(Inner {
                backend: Backend::Postgres(Box::new(pool), Mutex::new(())),
                location,
                audit_key: std::sync::RwLock::new(None),
            }),
        };
        Ok(store)
    }

    /// `--db`: a PostgreSQL URL, or the path of a SQLite file.
    pub fn open_location(db: &str) -> Result<Self> {
        if sql::pg_config::is_postgres_url(db) {
            Self::open_postgres(db)
        } else {
            Self::open(Path::new(db))
        }
    }

    /// The SQLite file, or the PostgreSQL URL without its password.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.inner.backend, Backend::Postgres(..))
    }

    /// Runs `f` inside a write transaction; commits on Ok, rolls back on Err. SQLite:
    /// `BEGIN IMMEDIATE`. PostgreSQL: `BEGIN` plus an advisory lock, so writers of every
    /// process take turns as they do on SQLite, and a `NOTIFY` that reaches the other
    /// bastions when the transaction commits.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let loc = &self.inner.location;
        match &self.inner.backend {
            Backend::Sqlite(m) => {
                let mut conn = lock(m);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|e| db_error(e.into(), loc))?;
                let out = f(&Connection::Sqlite(&tx))?;
                tx.commit().map_err(|e| db_error(e.into(), loc))?;
                Ok(out)
            }
            Backend::Postgres(pool, writer) => {
                let _turn = writer.lock().unwrap_or_else(|e| e.into_inner());
                let mut c = pool.acquire().map_err(|e| db_error(e, loc))?;
                c.begin_write().map_err(|e| db_error(e, loc))?;
                match f(&Connection::Postgres(c.client())) {
                    Ok(out) => {
                        c.commit().map_err(|e| db_error(e, loc))?;
                        Ok(out)
                    }
                    Err(e) => {
                        // A failed rollback leaves the client in its transaction; it is then
                        // closed instead of reused (PooledClient's drop).
                        let _ = c.rollback();
                        Err(e)
                    }
                }
            }
        }
    }

    /// Runs a read-only closure on a connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection<'_>) -> Result<T>) -> Result<T> {
        match &self.inner.backend {
            Backend::Sqlite(m) => {
                let conn = lock(m);
                f(&Connection::Sqlite(&conn))
            }
            Backend::Postgres(pool, _) => {
                let c = pool
                    .acquire()
                    .map_err(|e| db_error(e, &self.inner.location))?;
                f(&Connection::Postgres(c.client()))
            }
        }
    }

    /// A number that changes whenever another process commits: SQLite's `PRAGMA
    /// data_version`; on PostgreSQL, the count of other backends' `NOTIFY`s (see `sql::pg`).
    /// Front ends poll it to notice work done by other processes without re-reading tables.
    pub fn data_version(&self) -> Result<i64> {
        match &self.inner.backend {
            Backend::Sqlite(_) => {
                self.read(|c| Ok(c.query_row("PRAGMA data_version", [], |r| r.get(0))?))
            }
            Backend::Postgres(pool, _) => Ok(pool.data_version()),
        }
    }

    pub fn schema_version(&self) -> Result<i64> {
        match &self.inner.backend {
            Backend::Sqlite(_) => {
                self.read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            }
            Backend::Postgres(..) => {
                self.read(|c| Ok(c.query_row("SELECT version FROM ptui_schema", [], |r| r.get(0))?))
            }
        }
    }

    fn migrate(&self) -> Result<()> {
        let loc = &self.inner.location;
        match &self.inner.backend {
            Backend::Sqlite(m) => migrations::migrate(&mut lock(m))
                .wrap_err_with(|| format!("cannot migrate the database {loc}")),
            Backend::Postgres(pool, _) => migrations::migrate_postgres(pool)
                .wrap_err_with(|| format!("cannot migrate the database {loc}")),
        }
    }
}

fn lock(m: &Mutex<rusqlite::Connection>) -> MutexGuard<'_, rusqlite::Connection> {
    // A panic while holding the lock leaves SQLite consistent (transactions roll back), so a
    // poisoned mutex is safe to reuse.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets the database, -wal and -shm to 0600 if an older version (or a umask) left them
/// readable by others. Not fatal: a file owned by someone else stays as it is, with a warning.
fn tighten_database_files(db: &Path) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    for file in [db.to_path_buf(), PathBuf::from(wal), PathBuf::from(shm)] {
        match private_files::tighten(&file) {
            Ok(true) => tracing::warn!("{} was readable by others; set it to 0600", file.display()),
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot set {} to 0600: {e}", file.display()),
        }
    }
}

fn configure(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Adds what to do to the raw database error.
fn db_error(e: sql::Error, location: &str) -> color_eyre::eyre::Report {
    color_eyre::eyre::eyre!("database {location}: {e} ({})", e.hint())
}

/// Converts SQLite errors inside write closures into reports that name the database.
pub(crate) trait SqlContext<T> {
    fn sql(self) -> Result<T>;
}

impl<T> SqlContext<T> for sql::Result<T> {
    fn sql(self) -> Result<T> {
        self.map_err(|e| {
            let hint = match e.hint() {
                "the change was rolled back" => String::new(),
                h => format!(" ({h})"),
            };
            color_eyre::eyre::eyre!("database error: {e}{hint}")
        })
    }
}

#[cfg(test)]
pub fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    if testing::postgres_requested() {
        return (
            dir,
            testing::fresh_postgres_store().expect("PostgreSQL test store"),
        );
    }
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

#[cfg(test)]
mod private_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_database_and_its_wal_and_shm_are_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("new/state.db");
        let store = Store::open(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&tmp.path().join("new")), 0o700);
        // Open connection in WAL mode: both side files exist now.
        assert_eq!(mode(&tmp.path().join("new/state.db-wal")), 0o600);
        assert_eq!(mode(&tmp.path().join("new/state.db-shm")), 0o600);
        drop(store);

        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _store = Store::open(&db).unwrap();
        assert_eq!(
            mode(&db),
            0o600,
            "a loose database is tightened when opened"
        );
    }
}
