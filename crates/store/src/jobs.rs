//! jobs and job_logs.

use super::{SqlContext, Store, now_ms};
use crate::sql::{Connection, OptionalExtension, Row, Value, params};
use color_eyre::eyre::{Result, bail, eyre};
use ptui_types::error::ErrorKind;
use ptui_types::job::{Job, JobAction, JobFilter, JobStatus, LogLine, LogStream};

pub(crate) const JOB_COLS: &str = "id, server_id, server_name, app_id, app_version, action, status, error_kind, error_message, exit_code, inputs, attempts, created_at, started_at, finished_at, spool, owner, site";

pub(crate) fn job_from_row(r: &Row) -> crate::sql::Result<Job> {
    let action: String = r.get(5)?;
    let status: String = r.get(6)?;
    let kind: Option<String> = r.get(7)?;
    let inputs: String = r.get(10)?;
    Ok(Job {
        id: r.get(0)?,
        server_id: r.get(1)?,
        server_name: r.get(2)?,
        app_id: r.get(3)?,
        app_version: r.get(4)?,
        action: JobAction::parse(&action).unwrap_or(JobAction::Install),
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        error_kind: kind.and_then(|k| ErrorKind::parse(&k)),
        error_message: r.get(8)?,
        exit_code: r.get(9)?,
        inputs: serde_json::from_str(&inputs).unwrap_or(serde_json::Value::Null),
        attempts: r.get(11)?,
        created_at: r.get(12)?,
        started_at: r.get(13)?,
        finished_at: r.get(14)?,
        spool: r.get(15)?,
        owner: r.get(16)?,
        site: r.get(17)?,
    })
}

pub(crate) fn get_job(c: &Connection, id: i64) -> Result<Option<Job>> {
    c.query_row(
        &format!("SELECT {JOB_COLS} FROM jobs WHERE id=?1"),
        [id],
        job_from_row,
    )
    .optional()
    .sql()
}

/// Appends lines after the job's last one, inside the caller's transaction.
pub(crate) fn append_logs_in(
    tx: &Connection,
    job_id: i64,
    lines: &[(LogStream, i64, String)],
) -> Result<Vec<LogLine>> {
    let last: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM job_logs WHERE job_id=?1",
            [job_id],
            |r| r.get(0),
        )
        .sql()?;
    let out: Vec<LogLine> = (last + 1..)
        .zip(lines)
        .map(|(seq, (stream, ts, text))| LogLine {
            job_id,
            seq,
            stream: *stream,
            ts: *ts,
            text: text.clone(),
        })
        .collect();
    if tx.is_postgres() {
        // One statement per 100 lines: each statement is a round trip to the server.
        for chunk in out.chunks(100) {
            let marks = (0..chunk.len())
                .map(|i| {
                    let b = i * 5;
                    format!("(?{},?{},?{},?{},?{})", b + 1, b + 2, b + 3, b + 4, b + 5)
                })
                .collect::<Vec<_>>()
                .join(",");
            let mut values = Vec::with_capacity(chunk.len() * 5);
            for l in chunk {
                values.push(Value::Integer(l.job_id));
                values.push(Value::Integer(l.seq));
                values.push(Value::Text(l.stream.as_str().to_string()));
                values.push(Value::Integer(l.ts));
                values.push(Value::Text(l.text.clone()));
            }
            tx.execute(
                &format!("INSERT INTO job_logs(job_id, seq, stream, ts, text) VALUES {marks}"),
                values,
            )
            .sql()?;
        }
        return Ok(out);
    }
    let mut st = tx
        .prepare_cached(
            "INSERT INTO job_logs(job_id, seq, stream, ts, text) VALUES(?1,?2,?3,?4,?5)",
        )
        .sql()?;
    for l in &out {
        st.execute(params![job_id, l.seq, l.stream.as_str(), l.ts, &l.text])
            .sql()?;
    }
    Ok(out)
}

/// A fresh job row.
pub struct NewJob<'a> {
    pub server_id: i64,
    pub server_name: &'a str,
    pub app_id: &'a str,
    pub app_version: &'a str,
    pub action: JobAction,
    pub masked_inputs: &'a serde_json::Value,
    pub owner: &'a str,
}

impl Store {
    pub fn create_job(&self, j: &NewJob<'_>) -> Result<Job> {
        self.write(|tx| {
            let id = tx.insert(
                "INSERT INTO jobs(server_id, server_name, app_id, app_version, action, status, inputs, owner, heartbeat_at, created_at)
                 VALUES(?1,?2,?3,?4,?5,'queued',?6,?7,?8,?8)",
                params![
                    j.server_id,
                    j.server_name,
                    j.app_id,
                    j.app_version,
                    j.action.as_str(),
                    serde_json::to_string(j.masked_inputs)?,
                    j.owner,
                    now_ms()
                ],
            )
            .sql()?;
            get_job(tx, id)?.ok_or_else(|| eyre!("job vanished after insert"))
        })
    }

    pub fn job(&self, id: i64) -> Result<Option<Job>> {
        self.read(|c| get_job(c, id))
    }

    pub fn require_job(&self, id: i64) -> Result<Job> {
        self.job(id)?
            .ok_or_else(|| eyre!("no job #{id}; `provision-tui jobs` lists them"))
    }

    pub fn mark_job_running(&self, id: i64, attempts: i64) -> Result<Job> {
        self.write(|tx| {
            let job = get_job(tx, id)?.ok_or_else(|| eyre!("job #{id} vanished"))?;
            if job.status != JobStatus::Running && !job.status.can_transition_to(JobStatus::Running) {
                bail!("job #{id} is {} and cannot start", job.status);
            }
            let now = now_ms();
            tx.execute(
                "UPDATE jobs SET status='running', attempts=?2, started_at=COALESCE(started_at, ?3), heartbeat_at=?3 WHERE id=?1",
                params![id, attempts, now],
            )
            .sql()?;
            get_job(tx, id)?.ok_or_else(|| eyre!("job #{id} vanished"))
        })
    }

    /// Ends a job. Runs inside the caller's transaction so that deployment and server
    /// status updates commit together with the job's final status.
    pub(crate) fn finish_job_in(
        tx: &Connection,
        id: i64,
        status: JobStatus,
        kind: Option<ErrorKind>,
        message: Option<&str>,
        exit_code: Option<i64>,
    ) -> Result<Job> {
        let job = get_job(tx, id)?.ok_or_else(|| eyre!("job #{id} vanished"))?;
        if !job.status.can_transition_to(status) {
            bail!("job #{id} is already {}", job.status);
        }
        tx.execute(
            "UPDATE jobs SET status=?2, error_kind=?3, error_message=?4, exit_code=?5, finished_at=?6 WHERE id=?1",
            params![id, status.as_str(), kind.map(|k| k.as_str()), message, exit_code, now_ms()],
        )
        .sql()?;
        get_job(tx, id)?.ok_or_else(|| eyre!("job #{id} vanished"))
    }

    pub fn heartbeat_job(&self, id: i64) -> Result<bool> {
        self.write(|tx| {
            tx.execute(
                "UPDATE jobs SET heartbeat_at=?2 WHERE id=?1",
                params![id, now_ms()],
            )
            .sql()?;
            let cancel: i64 = tx
                .query_row("SELECT cancel_requested FROM jobs WHERE id=?1", [id], |r| {
                    r.get(0)
                })
                .sql()?;
            Ok(cancel != 0)
        })
    }

    /// Asks the process running a job to cancel it (works across processes).
    pub fn request_cancel(&self, id: i64) -> Result<Job> {
        self.write(|tx| {
            let job = get_job(tx, id)?.ok_or_else(|| eyre!("no job #{id}"))?;
            if job.status.is_terminal() {
                bail!("job #{id} already ended ({})", job.status);
            }
            tx.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?1", [id])
                .sql()?;
            Ok(job)
        })
    }

    pub fn cancel_requested(&self, id: i64) -> Result<bool> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT cancel_requested FROM jobs WHERE id=?1", [id], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?
                .unwrap_or(0)
                    != 0,
            )
        })
    }

    pub fn list_jobs(&self, f: &JobFilter) -> Result<Vec<Job>> {
        self.read(|c| {
            let mut sql = format!("SELECT {JOB_COLS} FROM jobs WHERE 1=1");
            let mut args: Vec<crate::sql::Value> = Vec::new();
            if let Some(s) = f.status {
                sql.push_str(" AND status=?");
                args.push(s.as_str().to_string().into());
            }
            if let Some(s) = &f.server {
                sql.push_str(" AND server_name=?");
                args.push(s.clone().into());
            }
            if let Some(a) = &f.app {
                sql.push_str(" AND app_id=?");
                args.push(a.clone().into());
            }
            if let Some(after) = f.after_id {
                sql.push_str(" AND id>?");
                args.push(after.into());
            }
            sql.push_str(" ORDER BY id DESC");
            if let Some(l) = f.limit {
                sql.push_str(&format!(" LIMIT {l}"));
            }
            let mut st = c.prepare(&sql)?;
            let rows = st
                .query_map(crate::sql::params_from_iter(args), job_from_row)?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    pub fn job_status_counts(&self) -> Result<Vec<(JobStatus, i64)>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status")?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(s, n)| JobStatus::parse(&s).map(|s| (s, n)))
                .collect())
        })
    }

    /// Appends a batch of already-masked lines in one transaction; returns them with seq numbers.
    pub fn append_logs(
        &self,
        job_id: i64,
        lines: &[(LogStream, i64, String)],
    ) -> Result<Vec<LogLine>> {
        self.append_logs_at(job_id, lines, None)
    }

    /// `append_logs`, also recording how far into the job's spool the stored lines reach
    /// (out, err byte offsets), in the same transaction: a reader resuming from the offsets
    /// neither loses nor repeats a line.
    pub fn append_logs_at(
        &self,
        job_id: i64,
        lines: &[(LogStream, i64, String)],
        spool_pos: Option<(u64, u64)>,
    ) -> Result<Vec<LogLine>> {
        if lines.is_empty() && spool_pos.is_none() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            if let Some((out, err)) = spool_pos {
                tx.execute(
                    "UPDATE jobs SET out_offset=?2, err_offset=?3 WHERE id=?1",
                    params![job_id, out as i64, err as i64],
                )
                .sql()?;
            }
            append_logs_in(tx, job_id, lines)
        })
    }

    /// Log lines with `from_seq <= seq < from_seq + limit`, oldest first.
    pub fn job_logs(&self, job_id: i64, from_seq: i64, limit: usize) -> Result<Vec<LogLine>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, stream, ts, text FROM job_logs WHERE job_id=?1 AND seq>=?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![job_id, from_seq, limit as i64], |r| {
                    Ok(LogLine {
                        job_id,
                        seq: r.get(0)?,
                        stream: LogStream::parse(&r.get::<_, String>(1)?),
                        ts: r.get(2)?,
                        text: r.get(3)?,
                    })
                })?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    pub fn job_log_count(&self, job_id: i64) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM job_logs WHERE job_id=?1",
                [job_id],
                |r| r.get(0),
            )?)
        })
    }

    /// Jobs left queued, running or detached by a process that is gone. `alive` decides whether an owner
    /// string belongs to a live process; a stale heartbeat also counts as dead.
    pub fn orphaned_jobs(
        &self,
        stale_before_ms: i64,
        alive: impl Fn(&str) -> bool,
    ) -> Result<Vec<i64>> {
        self.read(|c| {
            let mut st = c.prepare(
                // A job queued for its site's processes has no owner until one claims it: it
                // waits in the database, orphaned by no one.
                "SELECT id, owner, heartbeat_at FROM jobs WHERE status IN ('queued','running','detached')
                 AND NOT (status='queued' AND owner IS NULL AND site IS NOT NULL)",
            )?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                    ))
                })?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .filter(|(_, owner, hb)| {
                    let stale = hb.is_none_or(|h| h < stale_before_ms);
                    let dead = owner.as_deref().is_none_or(|o| !alive(o));
                    stale || dead
                })
                .map(|(id, _, _)| id)
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptui_types::server::ServerStatus;

    fn setup() -> (tempfile::TempDir, Store, Job) {
        let (d, s) = crate::test_store();
        let srv = crate::test_server(&s, "a", ServerStatus::Ready);
        let inputs = serde_json::json!({"x": "1"});
        let job = s
            .create_job(&NewJob {
                server_id: srv.id,
                server_name: "a",
                app_id: "demo",
                app_version: "1",
                action: JobAction::Install,
                masked_inputs: &inputs,
                owner: "1@h",
            })
            .unwrap();
        (d, s, job)
    }

    #[test]
    fn logs_append_in_order_and_page() {
        let (_d, s, job) = setup();
        let lines: Vec<_> = (0..10)
            .map(|i| (LogStream::Stdout, i, format!("line {i}")))
            .collect();
        s.append_logs(job.id, &lines[..4]).unwrap();
        let second = s.append_logs(job.id, &lines[4..]).unwrap();
        assert_eq!(second[0].seq, 5);
        let page = s.job_logs(job.id, 3, 3).unwrap();
        assert_eq!(
            page.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["line 2", "line 3", "line 4"]
        );
        assert_eq!(s.job_log_count(job.id).unwrap(), 10);
    }

    #[test]
    fn finished_jobs_cannot_change_or_cancel() {
        let (_d, s, job) = setup();
        s.mark_job_running(job.id, 1).unwrap();
        s.write(|tx| Store::finish_job_in(tx, job.id, JobStatus::Succeeded, None, None, Some(0)))
            .unwrap();
        assert!(
            s.write(|tx| Store::finish_job_in(tx, job.id, JobStatus::Failed, None, None, None))
                .is_err()
        );
        assert!(s.request_cancel(job.id).is_err());
    }

    #[test]
    fn orphans_are_found_by_dead_owner_or_stale_heartbeat() {
        let (_d, s, job) = setup();
        s.mark_job_running(job.id, 1).unwrap();
        assert!(s.orphaned_jobs(0, |_| true).unwrap().is_empty());
        assert_eq!(s.orphaned_jobs(0, |_| false).unwrap(), vec![job.id]);
        assert_eq!(s.orphaned_jobs(i64::MAX, |_| true).unwrap(), vec![job.id]);
    }
}
