//! Read side of the incidents table for front ends. The health checker writes it.

use super::Store;
use color_eyre::eyre::Result;
use rusqlite::params;

pub use ptui_types::records::IncidentRow;

impl Store {
    /// Open incidents first, then the most recent; optionally for one server.
    pub fn incidents(&self, server_id: Option<i64>, limit: usize) -> Result<Vec<IncidentRow>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT i.id, COALESCE(s.name, '?'), i.kind, i.state, i.app_id, i.opened_at,
                        i.updated_at, i.resolved_at, i.details
                 FROM incidents i LEFT JOIN servers s ON s.id = i.server_id
                 WHERE ?1 IS NULL OR i.server_id = ?1
                 ORDER BY (i.resolved_at IS NULL) DESC, i.updated_at DESC LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![server_id, limit as i64], |r| {
                    Ok(IncidentRow {
                        id: r.get(0)?,
                        server: r.get(1)?,
                        kind: r.get(2)?,
                        state: r.get(3)?,
                        app_id: r.get(4)?,
                        opened_at: r.get(5)?,
                        updated_at: r.get(6)?,
                        resolved_at: r.get(7)?,
                        details: r.get(8)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    pub fn open_incident_count(&self) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM incidents WHERE resolved_at IS NULL",
                [],
                |r| r.get(0),
            )?)
        })
    }
}
