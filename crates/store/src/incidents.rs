//! Write side of incidents (the health checker) and their timeline. At most one open incident
//! per server, kind and app; opening `server_unreachable` on a ready/in_use server moves it to
//! `error`, and resolving it moves the server back to the status it had.

use super::servers::{get_server, transition_in};
use super::{SqlContext, Store, now_ms};
use crate::sql::{Connection, OptionalExtension, Row, params};
use color_eyre::eyre::{Result, eyre};
use ptui_types::health::{IncidentKind, IncidentState};
use ptui_types::server::{Server, ServerStatus};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Incident {
    pub id: i64,
    pub server_id: Option<i64>,
    pub server: String,
    pub kind: IncidentKind,
    pub state: IncidentState,
    pub app_id: Option<String>,
    pub opened_at: i64,
    pub updated_at: i64,
    pub resolved_at: Option<i64>,
    pub details: String,
    /// The server status before `server_unreachable` moved it to error.
    pub previous_status: Option<ServerStatus>,
    /// Deployments on the server when the incident opened: `[{app_id, app_version}]`.
    pub affected: serde_json::Value,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_notified_at: Option<i64>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelineEntry {
    pub ts: i64,
    pub message: String,
    pub job_id: Option<i64>,
}

const COLS: &str =
    "i.id, i.server_id, COALESCE(s.name, '?'), i.kind, i.state, i.app_id, i.opened_at,
    i.updated_at, i.resolved_at, i.details, i.previous_status, i.affected, i.attempts,
    i.next_attempt_at, i.last_notified_at";

fn from_row(r: &Row) -> crate::sql::Result<Incident> {
    let kind: String = r.get(3)?;
    let state: String = r.get(4)?;
    let prev: Option<String> = r.get(10)?;
    let affected: String = r.get(11)?;
    Ok(Incident {
        id: r.get(0)?,
        server_id: r.get(1)?,
        server: r.get(2)?,
        kind: IncidentKind::parse(&kind).unwrap_or(IncidentKind::ServerUnreachable),
        state: IncidentState::parse(&state).unwrap_or(IncidentState::Detected),
        app_id: r.get(5)?,
        opened_at: r.get(6)?,
        updated_at: r.get(7)?,
        resolved_at: r.get(8)?,
        details: r.get(9)?,
        previous_status: prev.and_then(|p| ServerStatus::parse(&p)),
        affected: serde_json::from_str(&affected).unwrap_or(serde_json::Value::Null),
        attempts: r.get(12)?,
        next_attempt_at: r.get(13)?,
        last_notified_at: r.get(14)?,
    })
}

fn get_in(c: &Connection, id: i64) -> Result<Incident> {
    c.query_row(
        &format!(
            "SELECT {COLS} FROM incidents i LEFT JOIN servers s ON s.id = i.server_id WHERE i.id=?1"
        ),
        [id],
        from_row,
    )
    .optional()
    .sql()?
    .ok_or_else(|| eyre!("no incident #{id}"))
}

pub(crate) fn event_in(c: &Connection, id: i64, message: &str, job_id: Option<i64>) -> Result<()> {
    c.execute(
        "INSERT INTO incident_events(incident_id, ts, message, job_id) VALUES(?1,?2,?3,?4)",
        params![id, now_ms(), message, job_id],
    )
    .sql()?;
    Ok(())
}

/// What opening an incident did.
pub struct Opened {
    pub incident: Incident,
    /// Set when the server's status changed (server_unreachable on a ready/in_use server).
    pub server: Option<Server>,
}

/// What resolving an incident did.
pub struct Resolved {
    pub incident: Incident,
    pub server: Option<Server>,
}

impl Store {
    /// Opens an incident unless one is already open for this server, kind and app.
    pub fn open_incident(
        &self,
        server_id: i64,
        kind: IncidentKind,
        app_id: Option<&str>,
        details: &str,
    ) -> Result<Option<Opened>> {
        self.write(|tx| {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT id FROM incidents WHERE server_id=?1 AND kind=?2 AND app_id IS NOT DISTINCT FROM ?3 AND resolved_at IS NULL",
                    params![server_id, kind.as_str(), app_id],
                    |r| r.get(0),
                )
                .optional()
                .sql()?;
            if exists.is_some() {
                return Ok(None);
            }
            let server = get_server(tx, server_id)?.ok_or_else(|| eyre!("server #{server_id} was removed"))?;
            let affected: Vec<serde_json::Value> = {
                let mut st = tx
                    .prepare("SELECT app_id, app_version FROM deployments WHERE server_id=?1 ORDER BY app_id")
                    .sql()?;
                st.query_map([server_id], |r| {
                    Ok(serde_json::json!({"app_id": r.get::<_, String>(0)?, "app_version": r.get::<_, String>(1)?}))
                })
                .sql()?
                .collect::<crate::sql::Result<_>>()
                .sql()?
            };
            let now = now_ms();
            let id = tx.insert(
                "INSERT INTO incidents(server_id, kind, state, app_id, opened_at, updated_at, details, affected)
                 VALUES(?1,?2,'detected',?3,?4,?4,?5,?6)",
                params![server_id, kind.as_str(), app_id, now, details, serde_json::Value::from(affected).to_string()],
            )
            .sql()?;
            event_in(tx, id, &format!("detected: {details}"), None)?;
            let mut changed = None;
            if kind == IncidentKind::ServerUnreachable
                && matches!(server.status, ServerStatus::Ready | ServerStatus::InUse)
            {
                tx.execute(
                    "UPDATE incidents SET previous_status=?1 WHERE id=?2",
                    params![server.status.as_str(), id],
                )
                .sql()?;
                let s = transition_in(
                    tx,
                    server_id,
                    ServerStatus::Error,
                    &format!("incident #{id} server_unreachable"),
                    None,
                )?;
                event_in(tx, id, &format!("server {} {} -> error", s.name, server.status), None)?;
                changed = Some(s);
            }
            Ok(Some(Opened {
                incident: get_in(tx, id)?,
                server: changed,
            }))
        })
    }

    /// Closes an open incident; a server moved to error by it goes back to its previous status.
    pub fn resolve_incident(&self, id: i64, message: &str) -> Result<Resolved> {
        self.write(|tx| {
            let inc = get_in(tx, id)?;
            if !inc.is_open() {
                return Ok(Resolved { incident: inc, server: None });
            }
            let now = now_ms();
            tx.execute(
                "UPDATE incidents SET state='resolved', resolved_at=?1, updated_at=?1, next_attempt_at=NULL WHERE id=?2",
                params![now, id],
            )
            .sql()?;
            event_in(tx, id, &format!("resolved: {message}"), None)?;
            let mut changed = None;
            if let (Some(prev), Some(sid)) = (inc.previous_status, inc.server_id)
                && let Some(s) = get_server(tx, sid)?
                && s.status == ServerStatus::Error
                && s.status.can_transition_to(prev)
            {
                let s = transition_in(tx, sid, prev, &format!("incident #{id} resolved"), None)?;
                event_in(tx, id, &format!("server {} error -> {prev}", s.name), None)?;
                changed = Some(s);
            }
            Ok(Resolved {
                incident: get_in(tx, id)?,
                server: changed,
            })
        })
    }

    /// Moves an open incident to `state`, with a timeline entry and recovery bookkeeping.
    pub fn update_incident(
        &self,
        id: i64,
        state: IncidentState,
        message: &str,
        attempts: Option<i64>,
        next_attempt_at: Option<i64>,
    ) -> Result<Incident> {
        self.write(|tx| {
            tx.execute(
                "UPDATE incidents SET state=?1, updated_at=?2, attempts=COALESCE(?3, attempts),
                   next_attempt_at=?4 WHERE id=?5 AND resolved_at IS NULL",
                params![state.as_str(), now_ms(), attempts, next_attempt_at, id],
            )
            .sql()?;
            event_in(tx, id, message, None)?;
            get_in(tx, id)
        })
    }

    /// Recovery cannot run now (maintenance, host key): back to `detected` until
    /// `next_attempt_at`. The timeline gets `message` only when its last entry is not already
    /// that message, so a long window leaves one row rather than one per retry. Returns the
    /// incident and whether anything an observer sees (state or timeline) changed.
    pub fn postpone_incident(
        &self,
        id: i64,
        message: &str,
        next_attempt_at: i64,
    ) -> Result<(Incident, bool)> {
        self.write(|tx| {
            let before = get_in(tx, id)?;
            let last: Option<String> = tx
                .query_row(
                    "SELECT message FROM incident_events WHERE incident_id=?1 ORDER BY id DESC LIMIT 1",
                    [id],
                    |r| r.get(0),
                )
                .optional()
                .sql()?;
            let new_row = last.as_deref() != Some(message);
            let changed = new_row || before.state != IncidentState::Detected;
            // updated_at orders the incident list: only a visible change moves it.
            tx.execute(
                "UPDATE incidents SET state='detected', next_attempt_at=?1,
                   updated_at=CASE WHEN ?2 = 1 THEN ?3 ELSE updated_at END
                 WHERE id=?4 AND resolved_at IS NULL",
                params![next_attempt_at, changed, now_ms(), id],
            )
            .sql()?;
            if new_row {
                event_in(tx, id, message, None)?;
            }
            Ok((get_in(tx, id)?, changed))
        })
    }

    pub fn incident_event(&self, id: i64, message: &str, job_id: Option<i64>) -> Result<()> {
        self.write(|tx| event_in(tx, id, message, job_id))
    }

    pub fn mark_incident_notified(&self, id: i64, ts: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE incidents SET last_notified_at=?1 WHERE id=?2",
                params![ts, id],
            )
            .sql()?;
            Ok(())
        })
    }

    pub fn incident(&self, id: i64) -> Result<Incident> {
        self.read(|c| get_in(c, id))
    }

    pub fn open_incidents(&self) -> Result<Vec<Incident>> {
        self.list_incidents(true, 100_000)
    }

    /// Open incidents first, then the most recently updated.
    pub fn list_incidents(&self, open_only: bool, limit: usize) -> Result<Vec<Incident>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLS} FROM incidents i LEFT JOIN servers s ON s.id = i.server_id
                 WHERE (?1 = 0 OR i.resolved_at IS NULL)
                 ORDER BY (i.resolved_at IS NULL) DESC, i.updated_at DESC, i.id DESC LIMIT ?2"
            ))?;
            let v = st
                .query_map(params![open_only, limit as i64], from_row)?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(v)
        })
    }

    pub fn incident_timeline(&self, id: i64) -> Result<Vec<TimelineEntry>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT ts, message, job_id FROM incident_events WHERE incident_id=?1 ORDER BY id",
            )?;
            let v = st
                .query_map([id], |r| {
                    Ok(TimelineEntry {
                        ts: r.get(0)?,
                        message: r.get(1)?,
                        job_id: r.get(2)?,
                    })
                })?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_moves_server_to_error_and_back_once() {
        let (_d, st) = crate::test_store();
        let s = crate::test_server(&st, "a", ServerStatus::PendingSetup);
        st.transition_server(s.id, ServerStatus::Provisioning, "t", None)
            .unwrap();
        st.transition_server(s.id, ServerStatus::Ready, "t", None)
            .unwrap();
        st.transition_server(s.id, ServerStatus::InUse, "t", None)
            .unwrap();
        let o = st
            .open_incident(s.id, IncidentKind::ServerUnreachable, None, "timeout")
            .unwrap()
            .expect("opened");
        assert_eq!(o.server.unwrap().status, ServerStatus::Error);
        assert_eq!(o.incident.previous_status, Some(ServerStatus::InUse));
        assert!(
            st.open_incident(s.id, IncidentKind::ServerUnreachable, None, "again")
                .unwrap()
                .is_none(),
            "one open incident per server and kind"
        );
        // A different app is a different incident.
        assert!(
            st.open_incident(s.id, IncidentKind::ServiceDown, Some("x"), "d")
                .unwrap()
                .is_some()
        );
        assert!(
            st.open_incident(s.id, IncidentKind::ServiceDown, Some("y"), "d")
                .unwrap()
                .is_some()
        );
        let r = st.resolve_incident(o.incident.id, "reachable").unwrap();
        assert_eq!(r.server.unwrap().status, ServerStatus::InUse);
        assert_eq!(r.incident.state, IncidentState::Resolved);
        let tl = st.incident_timeline(o.incident.id).unwrap();
        assert_eq!(tl.len(), 4, "{tl:?}");
        assert_eq!(st.open_incidents().unwrap().len(), 2);
    }

    #[test]
    fn postponing_twice_with_the_same_reason_writes_one_row() {
        let (_d, st) = crate::test_store();
        let s = crate::test_server(&st, "p", ServerStatus::Ready);
        let o = st
            .open_incident(s.id, IncidentKind::ServiceDown, Some("x"), "d")
            .unwrap()
            .expect("opened");
        let id = o.incident.id;
        st.update_incident(id, IncidentState::Recovering, "attempt 1", Some(1), None)
            .unwrap();
        let (i, changed) = st
            .postpone_incident(id, "recovery postponed: m", 10)
            .unwrap();
        assert!(changed);
        assert_eq!(
            (i.state, i.next_attempt_at, i.attempts),
            (IncidentState::Detected, Some(10), 1)
        );
        let (i, changed) = st
            .postpone_incident(id, "recovery postponed: m", 20)
            .unwrap();
        assert!(!changed, "same state, same reason: nothing visible changed");
        assert_eq!(i.next_attempt_at, Some(20), "the next attempt still moves");
        let (_, changed) = st
            .postpone_incident(id, "recovery postponed: other", 30)
            .unwrap();
        assert!(changed, "a new reason is a new row");
        let msgs: Vec<String> = st
            .incident_timeline(id)
            .unwrap()
            .into_iter()
            .map(|t| t.message)
            .collect();
        assert_eq!(
            msgs,
            [
                "detected: d",
                "attempt 1",
                "recovery postponed: m",
                "recovery postponed: other"
            ]
        );
    }
}
