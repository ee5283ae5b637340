//! Opening a database for looking only (`--readonly`): nothing is created, chmodded or
//! migrated, so the files stay exactly as they were.

use crate::migrations::LATEST_VERSION;
use crate::{Backend, Inner, Store};
use color_eyre::eyre::{Result, WrapErr, bail};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

impl Store {
    /// Opens an existing database with SQLite's read-only flag. A schema older than this
    /// binary's is refused (migrating it would write; reading it with newer queries could fail
    /// halfway), with what to do; a newer one is refused as `open` refuses it.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .wrap_err_with(|| format!("read-only: cannot open the database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let version = schema_version(&conn)
            .wrap_err_with(|| format!("read-only: cannot read the database {}", path.display()))?;
        if version < LATEST_VERSION {
            bail!(
                "read-only: the database {} has schema version {version} and this provision-tui needs {LATEST_VERSION}; \
                 it is not upgraded when looking only, since that writes. Run provision-tui once without --readonly \
                 (for example `provision-tui server list`) as a user who may write it, then look again",
                path.display()
            );
        }
        if version > LATEST_VERSION {
            bail!(
                "the database {} has schema version {version}, newer than this binary knows ({LATEST_VERSION}); upgrade provision-tui",
                path.display()
            );
        }
        Ok(Store {
            inner: Arc::new(Inner {
                backend: Backend::Sqlite(Mutex::new(conn)),
                location: path.display().to_string(),
                audit_key: std::sync::RwLock::new(None),
            }),
        })
    }
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_schema_is_refused_and_left_as_it_was() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = tmp.path().join("state.db");
        {
            let mut conn = Connection::open(&db).expect("open");
            crate::migrations::migrate_to(&mut conn, 3).expect("v3");
        }
        let before = std::fs::read(&db).expect("read");
        let err = Store::open_read_only(&db).err().expect("refused");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("schema version 3") && msg.contains("without --readonly"),
            "{msg}"
        );
        assert_eq!(
            std::fs::read(&db).expect("read"),
            before,
            "the file changed"
        );
        let conn = Connection::open(&db).expect("open");
        assert_eq!(schema_version(&conn).expect("version"), 3);
    }

    #[test]
    fn a_current_database_opens_and_refuses_writes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = tmp.path().join("state.db");
        drop(Store::open(&db).expect("create"));
        let store = Store::open_read_only(&db).expect("open read-only");
        assert_eq!(store.schema_version().expect("version"), LATEST_VERSION);
        let w = store.write(|tx| Ok(tx.execute("CREATE TABLE x (a)", [])?));
        assert!(w.is_err(), "a read-only connection wrote");
    }
}
