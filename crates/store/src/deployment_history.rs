//! deployment_history: the deployments later jobs replaced, for `rollback` (issue 12 part 3).
//! A replaced deployment is kept with its sealed secrets and the job whose configuration copy
//! on the server holds its configuration; a rollback takes the newest one back off the list.

use super::{SqlContext, Store, now_ms};
use crate::sql::{Connection, OptionalExtension, params};
use color_eyre::eyre::Result;

/// Replaced deployments kept per app and server.
pub const HISTORY_KEPT: i64 = 10;

/// A deployment a later job replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct PastDeployment {
    pub id: i64,
    pub server_id: i64,
    pub app_id: String,
    pub app_version: String,
    /// Masked inputs, as the deployment recorded them.
    pub inputs: serde_json::Value,
    pub sealed_secrets: Option<Vec<u8>>,
    /// The job that made this deployment.
    pub job_id: Option<i64>,
    /// The job that replaced it: its configuration copy holds this deployment's configuration.
    pub replaced_by_job: i64,
    pub replaced_at: i64,
}

/// Before `job_id` replaces the deployment of `app_id` on a server: keeps the current one (if
/// any) on the history, at most `HISTORY_KEPT` per app and server.
pub(crate) fn archive_deployment_in(
    c: &Connection,
    server_id: i64,
    app_id: &str,
    job_id: i64,
) -> Result<()> {
    c.execute(
        "INSERT INTO deployment_history(server_id, app_id, app_version, inputs, sealed_secrets,
           job_id, replaced_by_job, replaced_at)
         SELECT server_id, app_id, app_version, inputs, sealed_secrets, job_id, ?3, ?4
         FROM deployments WHERE server_id=?1 AND app_id=?2",
        params![server_id, app_id, job_id, now_ms()],
    )
    .sql()?;
    c.execute(
        "DELETE FROM deployment_history WHERE server_id=?1 AND app_id=?2 AND id NOT IN
           (SELECT id FROM deployment_history WHERE server_id=?1 AND app_id=?2
            ORDER BY id DESC LIMIT ?3)",
        params![server_id, app_id, HISTORY_KEPT],
    )
    .sql()?;
    Ok(())
}

/// After a successful rollback: the deployment it went back to is current again, so it
/// leaves the history (the next rollback goes one further back).
pub(crate) fn pop_history_in(c: &Connection, server_id: i64, app_id: &str) -> Result<()> {
    c.execute(
        "DELETE FROM deployment_history WHERE id =
           (SELECT MAX(id) FROM deployment_history WHERE server_id=?1 AND app_id=?2)",
        params![server_id, app_id],
    )
    .sql()?;
    Ok(())
}

/// A successful install, upgrade or rollback is about to replace the current deployment: an
/// install or upgrade keeps it on the history; a rollback went back to the newest kept one.
pub(crate) fn record_replacement_in(
    c: &Connection,
    server_id: i64,
    job: &ptui_types::job::Job,
) -> Result<()> {
    if job.action == ptui_types::job::JobAction::Rollback {
        pop_history_in(c, server_id, &job.app_id)
    } else {
        archive_deployment_in(c, server_id, &job.app_id, job.id)
    }
}

impl Store {
    /// The deployment of `app_id` on a server that the current one replaced, if recorded.
    pub fn previous_deployment(
        &self,
        server_id: i64,
        app_id: &str,
    ) -> Result<Option<PastDeployment>> {
        self.read(|c| {
            c.query_row(
                "SELECT id, server_id, app_id, app_version, inputs, sealed_secrets, job_id,
                   replaced_by_job, replaced_at
                 FROM deployment_history WHERE server_id=?1 AND app_id=?2
                 ORDER BY id DESC LIMIT 1",
                params![server_id, app_id],
                |r| {
                    let inputs: String = r.get(4)?;
                    Ok(PastDeployment {
                        id: r.get(0)?,
                        server_id: r.get(1)?,
                        app_id: r.get(2)?,
                        app_version: r.get(3)?,
                        inputs: serde_json::from_str(&inputs).unwrap_or(serde_json::Value::Null),
                        sealed_secrets: r.get(5)?,
                        job_id: r.get(6)?,
                        replaced_by_job: r.get(7)?,
                        replaced_at: r.get(8)?,
                    })
                },
            )
            .optional()
            .sql()
        })
    }

    /// Whether a stored stderr line of the job starts with `prefix` (how a job adopted from a
    /// dead process learns what the lines stored before it said).
    pub fn job_stderr_has_line_starting(&self, job_id: i64, prefix: &str) -> Result<bool> {
        self.read(|c| {
            let n: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM job_logs WHERE job_id=?1 AND stream='stderr'
                     AND substr(text, 1, length(?2)) = ?2",
                    params![job_id, prefix],
                    |r| r.get(0),
                )
                .sql()?;
            Ok(n > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job_end::JobEnd;
    use crate::jobs::NewJob;
    use ptui_types::job::{JobAction, JobStatus};

    fn end_job(s: &Store, server_id: i64, action: JobAction, inputs: serde_json::Value) -> i64 {
        let job = s
            .create_job(&NewJob {
                server_id,
                server_name: "a",
                app_id: "web",
                app_version: "1",
                action,
                masked_inputs: &inputs,
                owner: "1@h",
            })
            .unwrap();
        let job = s.mark_job_running(job.id, 1).unwrap();
        s.record_job_end(
            &job,
            &JobEnd {
                status: JobStatus::Succeeded,
                kind: None,
                message: None,
                exit_code: Some(0),
                installs_app: true,
                base_installers: &[],
            },
        )
        .unwrap();
        job.id
    }

    #[test]
    fn a_stored_stderr_line_is_found_by_its_start_only() {
        let (_d, s) = crate::test_store();
        let server = crate::test_server(&s, "a", ptui_types::server::ServerStatus::InUse);
        let id = end_job(&s, server.id, JobAction::Install, serde_json::json!({}));
        use ptui_types::job::LogStream;
        s.append_logs(
            id,
            &[
                (
                    LogStream::Stdout,
                    1,
                    "provision-tui: rolled back: from stdout".into(),
                ),
                (
                    LogStream::Stderr,
                    2,
                    "note provision-tui: rolled back: inside".into(),
                ),
            ],
        )
        .unwrap();
        let marker = "provision-tui: rolled back:";
        assert!(!s.job_stderr_has_line_starting(id, marker).unwrap());
        s.append_logs(id, &[(LogStream::Stderr, 3, format!("{marker} web runs"))])
            .unwrap();
        assert!(s.job_stderr_has_line_starting(id, marker).unwrap());
    }

    #[test]
    fn a_replaced_deployment_is_kept_and_a_rollback_takes_it_back_off() {
        let (_d, s) = crate::test_store();
        let server = crate::test_server(&s, "a", ptui_types::server::ServerStatus::InUse);
        assert_eq!(s.previous_deployment(server.id, "web").unwrap(), None);
        let j1 = end_job(
            &s,
            server.id,
            JobAction::Install,
            serde_json::json!({"v": 1}),
        );
        assert_eq!(
            s.previous_deployment(server.id, "web").unwrap(),
            None,
            "a first install replaces nothing"
        );
        let j2 = end_job(
            &s,
            server.id,
            JobAction::Install,
            serde_json::json!({"v": 2}),
        );
        let prev = s.previous_deployment(server.id, "web").unwrap().unwrap();
        assert_eq!(prev.inputs, serde_json::json!({"v": 1}));
        assert_eq!((prev.job_id, prev.replaced_by_job), (Some(j1), j2));
        let j3 = end_job(
            &s,
            server.id,
            JobAction::Install,
            serde_json::json!({"v": 3}),
        );
        assert_eq!(
            s.previous_deployment(server.id, "web")
                .unwrap()
                .unwrap()
                .replaced_by_job,
            j3
        );
        // Back to v2: that one leaves the history, v1 is the previous one again.
        end_job(
            &s,
            server.id,
            JobAction::Rollback,
            serde_json::json!({"v": 2}),
        );
        let prev = s.previous_deployment(server.id, "web").unwrap().unwrap();
        assert_eq!(prev.inputs, serde_json::json!({"v": 1}));
        let now = s.deployments(Some(server.id)).unwrap();
        assert_eq!(now[0].inputs, serde_json::json!({"v": 2}));
        for _ in 0..(HISTORY_KEPT + 5) {
            end_job(
                &s,
                server.id,
                JobAction::Install,
                serde_json::json!({"v": 9}),
            );
        }
        let kept: i64 = s
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM deployment_history", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(kept, HISTORY_KEPT, "the history is bounded");
    }

    #[test]
    fn rotating_the_key_reseals_the_kept_deployments_too() {
        let (_d, s) = crate::test_store();
        let server = crate::test_server(&s, "web-01", ptui_types::server::ServerStatus::Ready);
        s.write(|tx| {
            tx.execute(
                "INSERT INTO deployment_history(server_id, app_id, app_version, inputs, sealed_secrets, job_id, replaced_by_job, replaced_at)
                 VALUES(?1, 'web', '1', '{}', ?2, NULL, 1, 1)",
                params![server.id, b"old-seal".to_vec()],
            )
            .sql()?;
            Ok(())
        })
        .unwrap();
        let (done, left) = s
            .reseal_secrets(|_, app, blob| {
                assert_eq!(app, "web");
                assert_eq!(blob, b"old-seal");
                Some(b"new-seal".to_vec())
            })
            .unwrap();
        assert_eq!((done, left), (1, 0));
        let blob: Vec<u8> = s
            .read(|c| {
                Ok(
                    c.query_row("SELECT sealed_secrets FROM deployment_history", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .unwrap();
        assert_eq!(blob, b"new-seal");
    }
}
