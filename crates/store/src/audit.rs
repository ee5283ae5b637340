//! audit_log: who did what.

use super::{SqlContext, Store, now_ms};
use color_eyre::eyre::Result;
use rusqlite::{Connection, params};

pub use ptui_types::records::AuditEntry;

pub(crate) fn audit_in(
    c: &Connection,
    operator: &str,
    action: &str,
    target: &str,
    details: &str,
) -> Result<()> {
    c.execute(
        "INSERT INTO audit_log(ts, operator, action, target, details) VALUES(?1,?2,?3,?4,?5)",
        params![now_ms(), operator, action, target, details],
    )
    .sql()?;
    Ok(())
}

impl Store {
    /// Records an action. `details` must already be free of secrets.
    pub fn audit(&self, operator: &str, action: &str, target: &str, details: &str) -> Result<()> {
        self.write(|tx| audit_in(tx, operator, action, target, details))
    }

    /// Newest first; `filter` matches operator, action, target or details (substring).
    pub fn audit_entries(&self, filter: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|c| {
            let pattern = format!("%{}%", filter.unwrap_or(""));
            let mut st = c.prepare(
                "SELECT id, ts, operator, action, target, details FROM audit_log
                 WHERE operator LIKE ?1 OR action LIKE ?1 OR target LIKE ?1 OR details LIKE ?1
                 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![pattern, limit as i64], |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        ts: r.get(1)?,
                        operator: r.get(2)?,
                        action: r.get(3)?,
                        target: r.get(4)?,
                        details: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}
