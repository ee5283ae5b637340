//! The end of a job and its consequences (job row, deployment, server status), each in one
//! transaction, so a crash never leaves a finished job with a half-updated server.

use super::deployments::{
    delete_deployment_in, deployed_apps_in, move_job_secrets_in, upgrade_deployment_in,
    upsert_deployment_in,
};
use super::servers::{get_server, transition_in};
use super::{SqlContext, Store};
use crate::sql::{OptionalExtension, params};
use color_eyre::eyre::{Result, bail, eyre};
use ptui_types::error::ErrorKind;
use ptui_types::job::{Job, JobAction, JobStatus};
use ptui_types::server::{Server, ServerStatus};

/// How a job ended, and what the catalog says about its installer.
#[derive(Debug, Clone, Copy)]
pub struct JobEnd<'a> {
    pub status: JobStatus,
    pub kind: Option<ErrorKind>,
    pub message: Option<&'a str>,
    pub exit_code: Option<i64>,
    /// The installer is an app (not a base installer): installing it puts a ready server in use.
    pub installs_app: bool,
    /// Installers that are not apps: a server with only these left after an uninstall is ready.
    pub base_installers: &'a [String],
}

/// Puts a server this job moved into provisioning back to the status it came from
/// (pending_setup, error or force_rebuild). `None` when the job did not move it.
fn undo_provisioning_in(
    tx: &crate::sql::Connection<'_>,
    s: &Server,
    job_id: i64,
    reason: &str,
) -> Result<Option<Server>> {
    if s.status != ServerStatus::Provisioning {
        return Ok(None);
    }
    let from: Option<String> = tx
        .query_row(
            "SELECT from_status FROM server_events WHERE server_id=?1 AND job_id=?2
             AND to_status='provisioning' ORDER BY id DESC LIMIT 1",
            params![s.id, job_id],
            |r| r.get(0),
        )
        .optional()
        .sql()?
        .flatten();
    let Some(back) = from.as_deref().and_then(ServerStatus::parse).filter(|b| {
        matches!(
            b,
            ServerStatus::PendingSetup | ServerStatus::Error | ServerStatus::ForceRebuild
        )
    }) else {
        return Ok(None);
    };
    // Not a move of the lifecycle (provisioning -> pending_setup is no operator choice): the
    // job's own step undone, with an event like any other.
    let now = ptui_types::time::now_ms();
    tx.execute(
        "UPDATE servers SET status=?1, updated_at=?2 WHERE id=?3",
        params![back.as_str(), now, s.id],
    )
    .sql()?;
    tx.execute(
        "INSERT INTO server_events(server_id, ts, from_status, to_status, reason, job_id) VALUES(?1,?2,?3,?4,?5,?6)",
        params![s.id, now, s.status.as_str(), back.as_str(), format!("{reason} (installer refused its inputs)"), job_id],
    )
    .sql()?;
    Ok(Some(Server {
        status: back,
        updated_at: now,
        ..s.clone()
    }))
}

impl Store {
    /// Records the end of a job with its consequences, atomically: the job's status, the
    /// deployment row it changed, and the server's status. Returns the job and the server.
    pub fn record_job_end(&self, job: &Job, end: &JobEnd<'_>) -> Result<(Job, Option<Server>)> {
        self.write(|tx| {
            let done =
                Store::finish_job_in(tx, job.id, end.status, end.kind, end.message, end.exit_code)?;
            let Some(server_id) = job.server_id else {
                return Ok((done, None));
            };
            // The job's sealed secrets become the deployment's (after its row is written).
            let deployed = end.status == JobStatus::Succeeded && job.action != JobAction::Uninstall;
            if !deployed {
                move_job_secrets_in(tx, job.id, server_id, &job.app_id, false)?;
            }
            let Some(mut s) = get_server(tx, server_id)? else {
                return Ok((done, None));
            };
            let reason = format!("job #{} {} {}", job.id, job.app_id, end.status);
            let to = |s: &Server, from: ServerStatus, to: ServerStatus| -> Result<Option<Server>> {
                if s.status == from {
                    transition_in(tx, server_id, to, &reason, Some(job.id)).map(Some)
                } else {
                    Ok(None)
                }
            };
            if end.status != JobStatus::Succeeded {
                if end.kind == Some(ErrorKind::InstallerValidation)
                    || end.status == JobStatus::RolledBack
                {
                    // Exit 1: the installer refused its inputs and changed nothing (or the
                    // configuration guard put the old one back), so the server goes back to
                    // where this job found it, not to error.
                    let s = undo_provisioning_in(tx, &s, job.id, &reason)?.unwrap_or(s);
                    return Ok((done, Some(s)));
                }
                let s = to(&s, ServerStatus::Provisioning, ServerStatus::Error)?.unwrap_or(s);
                return Ok((done, Some(s)));
            }
            if job.action == JobAction::Uninstall {
                delete_deployment_in(tx, server_id, &job.app_id)?;
            } else {
                super::deployment_history::record_replacement_in(tx, server_id, job)?;
                let record = if job.action == JobAction::Upgrade {
                    upgrade_deployment_in
                } else {
                    upsert_deployment_in
                };
                record(
                    tx,
                    server_id,
                    &job.app_id,
                    &job.app_version,
                    &job.inputs,
                    job.id,
                )?;
                move_job_secrets_in(tx, job.id, server_id, &job.app_id, true)?;
            }
            if let Some(next) = to(&s, ServerStatus::Provisioning, ServerStatus::Ready)? {
                s = next;
            }
            let next = if job.action == JobAction::Uninstall {
                // The baseline is not an app: a server with only base installers left is ready.
                let apps_left = deployed_apps_in(tx, server_id)?
                    .iter()
                    .filter(|id| !end.base_installers.contains(id))
                    .count();
                if apps_left == 0 {
                    to(&s, ServerStatus::InUse, ServerStatus::Ready)?
                } else {
                    None
                }
            } else if end.installs_app {
                to(&s, ServerStatus::Ready, ServerStatus::InUse)?
            } else {
                None
            };
            Ok((done, Some(next.unwrap_or(s))))
        })
    }

    /// Moves a server into provisioning when a job starts on it, per the lifecycle rules;
    /// refuses when an operator put it on hold while the job waited.
    pub fn enter_provisioning(&self, job: &Job, server_id: i64) -> Result<Server> {
        self.write(|tx| {
            let s = get_server(tx, server_id)?
                .ok_or_else(|| eyre!("server #{server_id} was removed"))?;
            if s.status.is_operator_hold() {
                bail!(
                    "server {} was put in {} while this job waited",
                    s.name,
                    s.status
                );
            }
            let reason = format!("job #{} {} started", job.id, job.app_id);
            let s = if s.status == ServerStatus::Discovered {
                transition_in(
                    tx,
                    server_id,
                    ServerStatus::PendingSetup,
                    &reason,
                    Some(job.id),
                )?
            } else {
                s
            };
            if matches!(
                s.status,
                ServerStatus::PendingSetup | ServerStatus::Error | ServerStatus::ForceRebuild
            ) {
                transition_in(
                    tx,
                    server_id,
                    ServerStatus::Provisioning,
                    &reason,
                    Some(job.id),
                )
            } else {
                Ok(s)
            }
        })
    }

    /// Marks a job whose process died as interrupted, with `message`: its server, if left
    /// provisioning, goes to error, and its lease is released.
    pub fn mark_job_interrupted(&self, id: i64, message: &str) -> Result<Job> {
        self.write(|tx| {
            let job = Store::finish_job_in(
                tx,
                id,
                JobStatus::Interrupted,
                Some(ErrorKind::Interrupted),
                Some(message),
                None,
            )?;
            if let Some(sid) = job.server_id {
                move_job_secrets_in(tx, id, sid, &job.app_id, false)?;
                if let Some(s) = get_server(tx, sid)?
                    && s.status == ServerStatus::Provisioning
                {
                    transition_in(
                        tx,
                        sid,
                        ServerStatus::Error,
                        &format!("job #{id} interrupted"),
                        Some(id),
                    )?;
                }
                tx.execute(
                    "DELETE FROM server_leases WHERE server_id=?1 AND job_id=?2",
                    params![sid, id],
                )
                .sql()?;
            }
            Ok(job)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::NewJob;

    /// A running job of `app` on `server`.
    fn job(s: &Store, server: &Server, app: &str, action: JobAction) -> Job {
        let queued = s
            .create_job(&NewJob {
                server_id: server.id,
                server_name: &server.name,
                app_id: app,
                app_version: "1",
                action,
                masked_inputs: &serde_json::json!({}),
                owner: "1@h",
            })
            .unwrap();
        s.mark_job_running(queued.id, 1).unwrap()
    }

    fn succeeded<'a>(installs_app: bool, base_installers: &'a [String]) -> JobEnd<'a> {
        JobEnd {
            status: JobStatus::Succeeded,
            kind: None,
            message: None,
            exit_code: Some(0),
            installs_app,
            base_installers,
        }
    }

    #[test]
    fn an_app_install_puts_the_server_in_use_and_its_uninstall_back_to_ready() {
        let (_d, s) = crate::test_store();
        let srv = crate::test_server(&s, "a", ServerStatus::PendingSetup);
        let base = vec!["base".to_string()];
        let j = job(&s, &srv, "base", JobAction::Install);
        assert_eq!(
            s.enter_provisioning(&j, srv.id).unwrap().status,
            ServerStatus::Provisioning
        );
        let (_, after) = s.record_job_end(&j, &succeeded(false, &base)).unwrap();
        assert_eq!(after.map(|x| x.status), Some(ServerStatus::Ready));
        let j = job(&s, &srv, "app", JobAction::Install);
        let (done, after) = s.record_job_end(&j, &succeeded(true, &base)).unwrap();
        assert_eq!(done.status, JobStatus::Succeeded);
        assert_eq!(after.map(|x| x.status), Some(ServerStatus::InUse));
        // Only the base installer is left: the server is ready again.
        let j = job(&s, &srv, "app", JobAction::Uninstall);
        let (_, after) = s.record_job_end(&j, &succeeded(true, &base)).unwrap();
        assert_eq!(after.map(|x| x.status), Some(ServerStatus::Ready));
        assert_eq!(s.deployments(Some(srv.id)).unwrap().len(), 1);
    }

    #[test]
    fn a_failed_job_leaves_a_provisioning_server_in_error() {
        let (_d, s) = crate::test_store();
        let srv = crate::test_server(&s, "a", ServerStatus::PendingSetup);
        let j = job(&s, &srv, "app", JobAction::Install);
        s.enter_provisioning(&j, srv.id).unwrap();
        let end = JobEnd {
            status: JobStatus::Failed,
            kind: Some(ErrorKind::Installation),
            message: Some("exit 2"),
            exit_code: Some(2),
            installs_app: true,
            base_installers: &[],
        };
        let (done, after) = s.record_job_end(&j, &end).unwrap();
        assert_eq!(done.exit_code, Some(2));
        assert_eq!(after.map(|x| x.status), Some(ServerStatus::Error));
        assert!(s.deployments(Some(srv.id)).unwrap().is_empty());
    }

    #[test]
    fn an_installer_refusing_its_inputs_puts_the_server_back_not_in_error() {
        let (_d, s) = crate::test_store();
        let refused = JobEnd {
            status: JobStatus::Failed,
            kind: Some(ErrorKind::InstallerValidation),
            message: Some("exit 1"),
            exit_code: Some(1),
            installs_app: true,
            base_installers: &[],
        };
        for from in [
            ServerStatus::PendingSetup,
            ServerStatus::Error,
            ServerStatus::ForceRebuild,
        ] {
            let srv = crate::test_server(&s, &format!("s-{from}"), from);
            let j = job(&s, &srv, "app", JobAction::Install);
            s.enter_provisioning(&j, srv.id).unwrap();
            let (_, after) = s.record_job_end(&j, &refused).unwrap();
            assert_eq!(after.map(|x| x.status), Some(from), "{from}");
            let ev = s.server_events(srv.id, 1).unwrap();
            assert_eq!(ev[0].to_status, from);
            assert_eq!(ev[0].job_id, Some(j.id));
        }
        // A ready server stays ready.
        let srv = crate::test_server(&s, "r", ServerStatus::Ready);
        let j = job(&s, &srv, "app", JobAction::Install);
        s.enter_provisioning(&j, srv.id).unwrap();
        let (_, after) = s.record_job_end(&j, &refused).unwrap();
        assert_eq!(after.map(|x| x.status), Some(ServerStatus::Ready));
    }
}
