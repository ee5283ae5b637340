//! Durable jobs: the spool a job runs in on its server, how far its output is stored, and
//! which process follows it (detach and adopt).

use super::jobs::{JOB_COLS, append_logs_in, get_job, job_from_row};
use super::{SqlContext, Store, now_ms};
use crate::sql::{OptionalExtension, params};
use color_eyre::eyre::{Result, eyre};
use ptui_types::job::{Job, JobStatus, LogStream};

/// Where a job's output is on its server, and how much of it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpool {
    pub key: String,
    pub out_offset: u64,
    pub err_offset: u64,
    /// Past this (ms), an unreachable server means the job is lost.
    pub deadline_at: Option<i64>,
}

/// status, owner, heartbeat_at, spool
type AdoptRow = (String, Option<String>, Option<i64>, Option<String>);

impl Store {
    /// Records the job's spool before the job is sent, so that whoever adopts it knows where
    /// to look even if this process dies right after sending.
    pub fn set_job_spool(&self, id: i64, key: &str, deadline_at: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE jobs SET spool=?2, deadline_at=?3, out_offset=0, err_offset=0 WHERE id=?1",
                params![id, key, deadline_at],
            )
            .sql()?;
            Ok(())
        })
    }

    pub fn job_spool(&self, id: i64) -> Result<Option<JobSpool>> {
        self.read(|c| {
            let row: Option<(Option<String>, i64, i64, Option<i64>)> = c
                .query_row(
                    "SELECT spool, out_offset, err_offset, deadline_at FROM jobs WHERE id=?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            Ok(row.and_then(|(key, out, err, deadline_at)| {
                key.map(|key| JobSpool {
                    key,
                    out_offset: out.max(0) as u64,
                    err_offset: err.max(0) as u64,
                    deadline_at,
                })
            }))
        })
    }

    /// A running job whose process died: it goes on on its server. Keeps its owner and lease
    /// (the lease is not taken by another job while the job is detached).
    pub fn detach_job(&self, id: i64, why: &str) -> Result<Option<Job>> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE jobs SET status='detached', error_message=?2 WHERE id=?1 AND status='running' AND spool IS NOT NULL",
                    params![id, why],
                )
                .sql()?;
            if n == 0 {
                return Ok(None);
            }
            append_system_line(tx, id, why)?;
            get_job(tx, id)
        })
    }

    pub fn detached_jobs(&self) -> Result<Vec<Job>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {JOB_COLS} FROM jobs WHERE status='detached' ORDER BY id"
            ))?;
            let rows = st
                .query_map([], job_from_row)?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Makes `owner` the process that follows a job, if the job is detached, or running with
    /// a dead owner (`alive` says) or a heartbeat older than `stale_before_ms`. One
    /// transaction, so of several processes trying at once exactly one gets it. The server's
    /// lease moves with the job.
    pub fn try_adopt_job(
        &self,
        id: i64,
        owner: &str,
        stale_before_ms: i64,
        alive: impl Fn(&str) -> bool,
    ) -> Result<Option<Job>> {
        self.write(|tx| {
            let row: Option<AdoptRow> = tx
                .query_row(
                    "SELECT status, owner, heartbeat_at, spool FROM jobs WHERE id=?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .sql()?;
            let Some((status, current, hb, spool)) = row else {
                return Ok(None);
            };
            let status = JobStatus::parse(&status);
            let orphaned = current.as_deref().is_none_or(|o| !alive(o))
                || hb.is_none_or(|h| h < stale_before_ms);
            let adoptable = spool.is_some()
                && match status {
                    Some(JobStatus::Detached) => current.as_deref() != Some(owner) || orphaned,
                    Some(JobStatus::Running) => orphaned && current.as_deref() != Some(owner),
                    _ => false,
                };
            if !adoptable {
                return Ok(None);
            }
            let now = now_ms();
            tx.execute(
                "UPDATE jobs SET status='running', owner=?2, heartbeat_at=?3, error_message=NULL WHERE id=?1",
                params![id, owner, now],
            )
            .sql()?;
            let job = get_job(tx, id)?.ok_or_else(|| eyre!("job #{id} vanished"))?;
            if let Some(sid) = job.server_id {
                // The job keeps its server: take its lease over, unless another job holds it.
                tx.execute(
                    "INSERT INTO server_leases(server_id, job_id, holder, acquired_at, heartbeat_at) VALUES(?1,?2,?3,?4,?4)
                     ON CONFLICT(server_id) DO UPDATE SET holder=excluded.holder, heartbeat_at=excluded.heartbeat_at
                     WHERE server_leases.job_id=excluded.job_id",
                    params![sid, id, owner, now],
                )
                .sql()?;
            }
            append_system_line(
                tx,
                id,
                &format!("adopted by {owner}: following the job on its server"),
            )?;
            Ok(Some(job))
        })
    }
}

fn append_system_line(tx: &crate::sql::Connection<'_>, id: i64, text: &str) -> Result<()> {
    append_logs_in(tx, id, &[(LogStream::System, now_ms(), text.to_string())]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use crate::jobs::NewJob;
    use ptui_types::job::{JobAction, JobStatus};
    use ptui_types::server::ServerStatus;

    #[test]
    fn a_detached_job_is_adopted_once_and_keeps_its_offsets() {
        let (_d, s) = crate::test_store();
        let srv = crate::test_server(&s, "a", ServerStatus::Ready);
        let job = s
            .create_job(&NewJob {
                server_id: srv.id,
                server_name: "a",
                app_id: "demo",
                app_version: "1",
                action: JobAction::Install,
                masked_inputs: &serde_json::json!({}),
                owner: "1@h",
            })
            .unwrap();
        assert!(
            s.try_acquire_lease(srv.id, job.id, "1@h", 30_000)
                .unwrap()
                .is_ok()
        );
        s.mark_job_running(job.id, 1).unwrap();
        // Without a spool there is nothing to follow: not detachable.
        assert!(s.detach_job(job.id, "x").unwrap().is_none());
        s.set_job_spool(job.id, "j1-ab", 10).unwrap();
        s.append_logs_at(
            job.id,
            &[(ptui_types::job::LogStream::Stdout, 1, "l1".into())],
            Some((3, 0)),
        )
        .unwrap();
        let d = s.detach_job(job.id, "owner died").unwrap().unwrap();
        assert_eq!(d.status, JobStatus::Detached);
        // A stale lease of a detached job is not taken by another job.
        assert!(s.try_acquire_lease(srv.id, 99, "2@h", -1).unwrap().is_err());
        let first = s.try_adopt_job(job.id, "2@h", 0, |o| o != "1@h").unwrap();
        assert_eq!(first.map(|j| j.status), Some(JobStatus::Running));
        // The second process finds it owned by a live owner.
        assert!(
            s.try_adopt_job(job.id, "3@h", 0, |_| true)
                .unwrap()
                .is_none()
        );
        let spool = s.job_spool(job.id).unwrap().unwrap();
        assert_eq!((spool.key.as_str(), spool.out_offset), ("j1-ab", 3));
        let lease_holder: String = s
            .read(|c| {
                Ok(c.query_row(
                    "SELECT holder FROM server_leases WHERE server_id=?1",
                    [srv.id],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(lease_holder, "2@h");
    }
}
