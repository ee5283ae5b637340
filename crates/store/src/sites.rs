//! Sites: which site a server is in, the processes (runners) that serve sites, and jobs
//! queued for a site's processes (claimed by exactly one of them).
//!
//! The SQL here is meant to run on PostgreSQL too: no SQLite-only functions, `RETURNING id`,
//! `ON CONFLICT ... DO ...`.

use super::deployments::move_job_secrets_in;
use super::jobs::{JOB_COLS, NewJob, append_logs_in, get_job, job_from_row};
use super::servers::get_server;
use super::{SqlContext, Store, now_ms};
use crate::sql::{Connection, OptionalExtension, params};
use color_eyre::eyre::{Result, eyre};
use ptui_types::error::ErrorKind;
use ptui_types::job::{Job, JobStatus, LogStream};
use ptui_types::server::Server;

/// A provision-tui process that serves sites, as registered in `runners`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Runner {
    /// `pid@hostname`, the same string the process records as the owner of its jobs.
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub sites: Vec<String>,
    /// What the process is: `watch` or `dashboard`.
    pub role: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

/// The one query that picks the next queued job of the given sites (placeholders `?1..`).
/// On PostgreSQL it ends in `FOR UPDATE OF j SKIP LOCKED`, so concurrent claimers skip a row
/// another transaction is claiming instead of waiting for it; on SQLite the enclosing
/// `BEGIN IMMEDIATE` already makes the select-and-update one writer's.
fn next_queued_sql(sites: usize, postgres: bool) -> String {
    let marks: Vec<String> = (0..sites).map(|i| format!("?{}", i + 1)).collect();
    format!(
        "SELECT j.id FROM jobs j JOIN servers s ON s.id = j.server_id
         WHERE j.status = 'queued' AND j.owner IS NULL AND j.site IS NOT NULL
           AND j.cancel_requested = 0 AND s.site IN ({})
         ORDER BY j.id LIMIT 1{}",
        marks.join(","),
        if postgres {
            " FOR UPDATE OF j SKIP LOCKED"
        } else {
            ""
        }
    )
}

impl Store {
    /// Creates a job queued for the processes of `site`: no owner until one claims it.
    pub fn create_site_job(&self, j: &NewJob<'_>, site: &str) -> Result<Job> {
        self.write(|tx| {
            let id = tx
                .insert(
                    "INSERT INTO jobs(server_id, server_name, app_id, app_version, action, status, inputs, owner, heartbeat_at, created_at, site)
                     VALUES(?1,?2,?3,?4,?5,'queued',?6,NULL,NULL,?7,?8)",
                    params![
                        j.server_id,
                        j.server_name,
                        j.app_id,
                        j.app_version,
                        j.action.as_str(),
                        serde_json::to_string(j.masked_inputs)?,
                        now_ms(),
                        site
                    ],
                )
                .sql()?;
            get_job(tx, id)?.ok_or_else(|| eyre!("job vanished after insert"))
        })
    }

    /// Claims the oldest queued job of a server in one of `sites` for `owner`. Exactly one
    /// claimer gets a given job: the select and the update are one write transaction, and the
    /// update checks again that nobody owns it.
    pub fn claim_queued_job(&self, sites: &[String], owner: &str) -> Result<Option<Job>> {
        if sites.is_empty() {
            return Ok(None);
        }
        self.write(|tx| {
            let sql = next_queued_sql(sites.len(), tx.is_postgres());
            let mut claimed = None;
            // Another claimer may take the row between the select and the update (where rows
            // are not locked by the select): then try the next one.
            for _ in 0..8 {
                let id: Option<i64> = tx
                    .query_row(&sql, crate::sql::params_from_iter(sites.iter()), |r| {
                        r.get(0)
                    })
                    .optional()
                    .sql()?;
                let Some(id) = id else { return Ok(None) };
                let n = tx
                    .execute(
                        "UPDATE jobs SET owner=?2, heartbeat_at=?3 WHERE id=?1 AND owner IS NULL AND status='queued'",
                        params![id, owner, now_ms()],
                    )
                    .sql()?;
                if n == 1 {
                    claimed = Some(id);
                    break;
                }
            }
            let Some(id) = claimed else { return Ok(None) };
            append_logs_in(
                tx,
                id,
                &[(LogStream::System, now_ms(), format!("claimed by {owner}"))],
            )?;
            get_job(tx, id)
        })
    }

    /// Cancels a queued site job nobody claimed yet (None if it was claimed or ended).
    pub fn cancel_unclaimed_job(&self, id: i64) -> Result<Option<Job>> {
        self.write(|tx| {
            let unclaimed = tx
                .query_row(
                    "SELECT 1 FROM jobs WHERE id=?1 AND status='queued' AND owner IS NULL",
                    [id],
                    |_| Ok(()),
                )
                .optional()
                .sql()?
                .is_some();
            if !unclaimed {
                return Ok(None);
            }
            end_before_start_in(
                tx,
                id,
                JobStatus::Cancelled,
                ErrorKind::Cancelled,
                "cancelled by the operator before a process of its site claimed it",
            )
            .map(Some)
        })
    }

    /// Ends a claimed job that cannot start here (its installer is not in this process's
    /// catalog, its secrets do not open...), with the reason.
    pub fn fail_claimed_job(&self, id: i64, kind: ErrorKind, message: &str) -> Result<Job> {
        self.write(|tx| end_before_start_in(tx, id, JobStatus::Failed, kind, message))
    }

    /// A site job whose claimer died before sending it to its server goes back to the queue
    /// for another process of the site. False when it was sent (it has a spool) or is over.
    pub fn requeue_site_job(&self, id: i64, why: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE jobs SET status='queued', owner=NULL, heartbeat_at=NULL
                     WHERE id=?1 AND site IS NOT NULL AND spool IS NULL AND status IN ('queued','running')",
                    [id],
                )
                .sql()?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM server_leases WHERE job_id=?1", [id])
                .sql()?;
            append_logs_in(tx, id, &[(LogStream::System, now_ms(), why.to_string())])?;
            Ok(true)
        })
    }

    /// The job's sealed sensitive inputs, kept until its end.
    pub fn job_sealed_secrets(&self, id: i64) -> Result<Option<Vec<u8>>> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT sealed_secrets FROM jobs WHERE id=?1", [id], |r| {
                    r.get::<_, Option<Vec<u8>>>(0)
                })
                .optional()?
                .flatten(),
            )
        })
    }

    /// Queued site jobs nobody claimed yet, oldest first.
    pub fn unclaimed_jobs(&self) -> Result<Vec<Job>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {JOB_COLS} FROM jobs WHERE status='queued' AND owner IS NULL AND site IS NOT NULL ORDER BY id"
            ))?;
            let rows = st
                .query_map([], job_from_row)?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    pub fn set_server_site(&self, id: i64, site: &str) -> Result<Server> {
        self.write(|tx| {
            tx.execute(
                "UPDATE servers SET site=?2, updated_at=?3 WHERE id=?1",
                params![id, site, now_ms()],
            )
            .sql()?;
            get_server(tx, id)?.ok_or_else(|| eyre!("server #{id} no longer exists"))
        })
    }

    /// Who holds a singleton lease (the health checker of a site), and its last heartbeat.
    pub fn singleton_holder(&self, name: &str) -> Result<Option<(String, i64)>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT holder, heartbeat_at FROM singleton_leases WHERE name=?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
    }

    /// The sites that have servers, by name.
    pub fn server_sites(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT DISTINCT site FROM servers ORDER BY site")?;
            let rows = st
                .query_map([], |r| r.get(0))?
                .collect::<crate::sql::Result<Vec<String>>>()?;
            Ok(rows)
        })
    }

    // ---- runners ----

    /// Registers this process as serving `sites`, or refreshes its row (the heartbeat).
    pub fn register_runner(&self, r: &Runner) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO runners(id, hostname, pid, sites, role, started_at, heartbeat_at) VALUES(?1,?2,?3,?4,?5,?6,?7)
                 ON CONFLICT(id) DO UPDATE SET sites=excluded.sites, role=excluded.role, heartbeat_at=excluded.heartbeat_at",
                params![r.id, r.hostname, r.pid, serde_json::to_string(&r.sites)?, r.role, r.started_at, r.heartbeat_at],
            )
            .sql()?;
            Ok(())
        })
    }

    pub fn heartbeat_runner(&self, id: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE runners SET heartbeat_at=?2 WHERE id=?1",
                    params![id, now_ms()],
                )
                .sql()?;
            Ok(n > 0)
        })
    }

    pub fn remove_runner(&self, id: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM runners WHERE id=?1", [id]).sql()?;
            Ok(())
        })
    }

    /// Every registered runner, live or not (the caller judges by heartbeat), by id.
    pub fn runners(&self) -> Result<Vec<Runner>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, hostname, pid, sites, role, started_at, heartbeat_at FROM runners ORDER BY id",
            )?;
            let rows = st
                .query_map([], |r| {
                    let sites: String = r.get(3)?;
                    Ok(Runner {
                        id: r.get(0)?,
                        hostname: r.get(1)?,
                        pid: r.get(2)?,
                        sites: serde_json::from_str(&sites).unwrap_or_default(),
                        role: r.get(4)?,
                        started_at: r.get(5)?,
                        heartbeat_at: r.get(6)?,
                    })
                })?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}

/// Ends a job that never ran, inside the caller's transaction: its sealed secrets are
/// dropped and it holds no lease any more.
fn end_before_start_in(
    tx: &Connection<'_>,
    id: i64,
    status: JobStatus,
    kind: ErrorKind,
    message: &str,
) -> Result<Job> {
    let job = Store::finish_job_in(tx, id, status, Some(kind), Some(message), None)?;
    if let Some(sid) = job.server_id {
        move_job_secrets_in(tx, id, sid, &job.app_id, false)?;
    }
    tx.execute("DELETE FROM server_leases WHERE job_id=?1", [id])
        .sql()?;
    append_logs_in(
        tx,
        id,
        &[(LogStream::System, now_ms(), message.to_string())],
    )?;
    get_job(tx, id)?.ok_or_else(|| eyre!("job #{id} vanished"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptui_types::job::JobAction;
    use ptui_types::server::ServerStatus;

    fn queued(s: &Store, server: &Server) -> Job {
        s.create_site_job(
            &NewJob {
                server_id: server.id,
                server_name: &server.name,
                app_id: "demo",
                app_version: "1",
                action: JobAction::Install,
                masked_inputs: &serde_json::json!({}),
                owner: "ignored",
            },
            &server.site,
        )
        .unwrap()
    }

    #[test]
    fn a_queued_site_job_is_claimed_once_and_only_by_its_site() {
        let (_d, s) = crate::test_store();
        let srv = crate::test_server(&s, "b1", ServerStatus::Ready);
        let srv = s.set_server_site(srv.id, "site-b").unwrap();
        let job = queued(&s, &srv);
        assert_eq!(job.owner, None);
        assert_eq!(job.site.as_deref(), Some("site-b"));
        // Waiting in the database is not being orphaned.
        assert!(s.orphaned_jobs(i64::MAX, |_| false).unwrap().is_empty());
        let other = vec!["site-a".to_string()];
        assert!(s.claim_queued_job(&other, "1@a").unwrap().is_none());
        let mine = vec!["default".to_string(), "site-b".to_string()];
        let claimed = s.claim_queued_job(&mine, "2@b").unwrap().unwrap();
        assert_eq!(claimed.id, job.id);
        assert_eq!(claimed.owner.as_deref(), Some("2@b"));
        assert!(s.claim_queued_job(&mine, "3@b").unwrap().is_none());
        // Claimed: no longer cancellable as unclaimed (the claimer's heartbeat sees the request).
        assert!(s.cancel_unclaimed_job(job.id).unwrap().is_none());
        // Its claimer died before sending it: back in the queue, claimed by another.
        assert!(s.requeue_site_job(job.id, "requeued").unwrap());
        let again = s.claim_queued_job(&mine, "3@b").unwrap().unwrap();
        assert_eq!(again.owner.as_deref(), Some("3@b"));
        // Once sent (a spool), it is never requeued: it may be running on its server.
        s.set_job_spool(job.id, "k", 1).unwrap();
        assert!(!s.requeue_site_job(job.id, "requeued").unwrap());
    }

    #[test]
    fn an_unclaimed_job_cancels_at_once_and_concurrent_claims_have_one_winner() {
        let (d, s) = crate::test_store();
        let srv = crate::test_server(&s, "b1", ServerStatus::Ready);
        let srv = s.set_server_site(srv.id, "b").unwrap();
        let first = queued(&s, &srv);
        let done = s.cancel_unclaimed_job(first.id).unwrap().unwrap();
        assert_eq!(done.status, JobStatus::Cancelled);
        let jobs: Vec<i64> = (0..20).map(|_| queued(&s, &srv).id).collect();
        // Four connections (as four processes would have) claim at once.
        let path = d.path().join("state.db");
        let pg = s.is_postgres();
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let path = path.clone();
                let shared = s.clone();
                std::thread::spawn(move || {
                    // Separate connections, as separate processes would have.
                    let store = if pg {
                        shared.clone()
                    } else {
                        Store::open(&path).unwrap()
                    };
                    let sites = vec!["b".to_string()];
                    let mut got = Vec::new();
                    while let Some(j) = store.claim_queued_job(&sites, &format!("{n}@h")).unwrap() {
                        got.push(j.id);
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<i64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort();
        assert_eq!(all, jobs, "every job claimed exactly once");
    }

    #[test]
    fn runners_register_heartbeat_and_leave() {
        let (_d, s) = crate::test_store();
        let r = Runner {
            id: "7@bastion-b".into(),
            hostname: "bastion-b".into(),
            pid: 7,
            sites: vec!["b".into()],
            role: "watch".into(),
            started_at: 1,
            heartbeat_at: 1,
        };
        s.register_runner(&r).unwrap();
        assert!(s.heartbeat_runner(&r.id).unwrap());
        let got = s.runners().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].sites, vec!["b".to_string()]);
        assert!(got[0].heartbeat_at > 1);
        s.remove_runner(&r.id).unwrap();
        assert!(!s.heartbeat_runner(&r.id).unwrap());
        assert!(s.runners().unwrap().is_empty());
    }
}
