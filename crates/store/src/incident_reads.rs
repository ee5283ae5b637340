//! Read side of the incidents table for front ends. The health checker writes it.

use super::{SqlContext, Store, now_ms};
use crate::sql::{OptionalExtension, params};
use color_eyre::eyre::{Result, eyre};

pub use ptui_types::records::IncidentRow;

impl Store {
    /// Open incidents first, then the most recent; optionally for one server.
    pub fn incidents(&self, server_id: Option<i64>, limit: usize) -> Result<Vec<IncidentRow>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT i.id, COALESCE(s.name, '?'), i.kind, i.state, i.app_id, i.opened_at,
                        i.updated_at, i.resolved_at, i.details, i.attempts, i.next_attempt_at,
                        a.acked_by
                 FROM incidents i LEFT JOIN servers s ON s.id = i.server_id
                 LEFT JOIN incident_acks a ON a.incident_id = i.id
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
                        attempts: r.get(9)?,
                        next_attempt_at: r.get(10)?,
                        acked_by: r.get(11)?,
                    })
                })?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Acknowledges an open incident: its reminders stop and the timeline says who, with the
    /// note if one is given. Again on an acknowledged one only adds the note.
    pub fn ack_incident(&self, id: i64, by: &str, note: Option<&str>) -> Result<()> {
        self.write(|tx| {
            let resolved: Option<Option<i64>> = tx
                .query_row("SELECT resolved_at FROM incidents WHERE id=?1", [id], |r| {
                    r.get(0)
                })
                .optional()
                .sql()?;
            match resolved {
                None => return Err(eyre!("no incident #{id} (see `provision-tui incidents`)")),
                Some(Some(_)) => {
                    return Err(eyre!(
                        "incident #{id} is already resolved; add a note instead"
                    ));
                }
                Some(None) => {}
            }
            let n = tx
                .execute(
                    "INSERT INTO incident_acks(incident_id, acked_by, acked_at)
                     VALUES(?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    params![id, by, now_ms()],
                )
                .sql()?;
            let mut msg = if n == 1 {
                format!("acknowledged by {by}")
            } else {
                format!("note by {by}")
            };
            if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
                msg.push_str(&format!(": {}", note.trim()));
            }
            if n == 1 || note.is_some_and(|n| !n.trim().is_empty()) {
                super::incidents::event_in(tx, id, &msg, None)?;
            }
            Ok(())
        })
    }

    /// Adds an operator's note to an incident's timeline (open or resolved).
    pub fn note_incident(&self, id: i64, by: &str, note: &str) -> Result<()> {
        self.write(|tx| {
            let exists: Option<i64> = tx
                .query_row("SELECT id FROM incidents WHERE id=?1", [id], |r| r.get(0))
                .optional()
                .sql()?;
            if exists.is_none() {
                return Err(eyre!("no incident #{id} (see `provision-tui incidents`)"));
            }
            super::incidents::event_in(tx, id, &format!("note by {by}: {}", note.trim()), None)
        })
    }

    /// Who acknowledged an incident, if anyone.
    pub fn incident_acked_by(&self, id: i64) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT acked_by FROM incident_acks WHERE incident_id=?1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    /// The ids of acknowledged incidents (reminders skip them).
    pub fn acked_incidents(&self) -> Result<Vec<i64>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT incident_id FROM incident_acks")?;
            let v = st
                .query_map([], |r| r.get(0))?
                .collect::<crate::sql::Result<Vec<i64>>>()?;
            Ok(v)
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
