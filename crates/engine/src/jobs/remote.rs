//! Jobs this process started for a server of a site it does not serve: a process of that
//! site claims and runs them; here they are followed through the database, and their log
//! lines, start and end go out as the same events a local job sends, so front ends (the
//! dashboard, `install`'s live log and exit status, fan-outs) need no second path.

use crate::engine::Engine;
use crate::events::Event;
use ptui_types::job::JobStatus;
use std::time::Duration;

/// How often the database is looked at for a remote job's new lines and status: read when
/// another process committed since (`data_version`), and at least every `REREAD` (in case
/// change notifications do not arrive, e.g. behind a PostgreSQL transaction pooler).
const POLL: Duration = Duration::from_millis(200);
const REREAD: Duration = Duration::from_secs(2);

impl Engine {
    /// Follows a job queued for another site until it ends. Holds no strong reference to the
    /// engine between polls.
    pub(crate) fn spawn_remote_follower(&self, job_id: i64) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = self.downgrade();
        rt.spawn(async move {
            let mut next_seq = 1;
            let mut status = JobStatus::Queued;
            let mut seen: Option<i64> = None;
            let mut last_read = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(POLL).await;
                let Some(engine) = Engine::upgrade(&weak) else {
                    return;
                };
                let version = engine.store().data_version().ok();
                if version.is_some() && version == seen && last_read.elapsed() < REREAD {
                    continue;
                }
                seen = version;
                last_read = tokio::time::Instant::now();
                // The status first: a job seen ended has stored all its lines before.
                let Ok(job) = engine.store().require_job(job_id) else {
                    return;
                };
                loop {
                    match engine.store().job_logs(job_id, next_seq, 1000) {
                        Ok(lines) if !lines.is_empty() => {
                            next_seq = lines.last().map_or(next_seq, |l| l.seq + 1);
                            engine.emit(Event::JobLog { job_id, lines });
                        }
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!("job #{job_id}: cannot read its log: {e:#}");
                            break;
                        }
                    }
                }
                if job.status.is_terminal() {
                    engine.emit(Event::JobFinished { job });
                    return;
                }
                // Detached means its process stopped: another of its site adopts it, so
                // here it is still running.
                if job.status != status && job.status == JobStatus::Running {
                    engine.emit(Event::JobStarted { job: job.clone() });
                }
                status = job.status;
            }
        });
    }
}
