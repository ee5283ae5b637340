//! audit_log: who did what. Each row is chained (`audit_chain.rs`) when the store has the key.

use super::audit_chain::{AuditKey, chain_hash, last_hash_in};
use super::{SqlContext, Store, now_ms};
use crate::sql::{Connection, params};
use color_eyre::eyre::Result;

pub use ptui_types::records::AuditEntry;

pub(crate) fn audit_in(
    c: &Connection,
    key: Option<&AuditKey>,
    operator: &str,
    action: &str,
    target: &str,
    details: &str,
) -> Result<()> {
    let ts = now_ms();
    // Inside the write transaction: the previous row cannot change before this one is in.
    let (prev, hash) = match key {
        Some(k) => {
            let prev = last_hash_in(c)?;
            let hash = chain_hash(k, &prev, ts, operator, action, target, details);
            (Some(prev), Some(hash))
        }
        None => (None, None),
    };
    c.execute(
        "INSERT INTO audit_log(ts, operator, action, target, details, prev_hash, hash)
         VALUES(?1,?2,?3,?4,?5,?6,?7)",
        params![ts, operator, action, target, details, prev, hash],
    )
    .sql()?;
    Ok(())
}

impl Store {
    /// Records an action. `details` must already be free of secrets.
    pub fn audit(&self, operator: &str, action: &str, target: &str, details: &str) -> Result<()> {
        let key = self.audit_key();
        self.write(|tx| audit_in(tx, key.as_ref(), operator, action, target, details))
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
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}
