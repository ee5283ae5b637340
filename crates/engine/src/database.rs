//! The database itself: which backend this process uses, and `db copy` between backends.

use crate::engine::Engine;
use color_eyre::eyre::{Result, WrapErr};
use ptui_store::Store;

/// A finished copy: each table and its row count, equal in both databases.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyReport {
    pub from: String,
    pub to: String,
    pub tables: Vec<(String, i64)>,
}

/// What `db info` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatabaseInfo {
    pub backend: &'static str,
    pub location: String,
    pub schema_version: i64,
}

impl Engine {
    pub fn database_info(&self) -> Result<DatabaseInfo> {
        Ok(DatabaseInfo {
            backend: if self.uses_postgres() {
                "postgresql"
            } else {
                "sqlite"
            },
            location: self.database_location(),
            schema_version: self.store().schema_version()?,
        })
    }

    /// Copies every table into `to` (a PostgreSQL URL or a SQLite file, created and migrated
    /// if new). A non-empty target is refused unless `replace`.
    pub fn copy_database(&self, to: &str, replace: bool) -> Result<CopyReport> {
        self.permit(crate::access::Change::CopyDatabase, to)?;
        let target = Store::open_location(to).wrap_err("cannot open the target database")?;
        let report = self.store().copy_into(&target, replace)?;
        self.audit_or_warn(
            "db.copy",
            target.location(),
            &format!("{} tables", report.tables.len()),
        );
        Ok(CopyReport {
            from: self.database_location(),
            to: target.location().to_string(),
            tables: report.tables,
        })
    }
}
