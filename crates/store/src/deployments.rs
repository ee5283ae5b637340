//! deployments: which app, with which inputs, is on which server.

use super::{SqlContext, Store, now_ms};
use crate::sql::{Connection, OptionalExtension, params};
use color_eyre::eyre::Result;

pub use ptui_types::records::Deployment;

pub(crate) fn upsert_deployment_in(
    c: &Connection,
    server_id: i64,
    app_id: &str,
    app_version: &str,
    masked_inputs: &serde_json::Value,
    job_id: i64,
) -> Result<()> {
    let now = now_ms();
    c.execute(
        "INSERT INTO deployments(server_id, app_id, app_version, inputs, job_id, installed_at, updated_at)
         VALUES(?1,?2,?3,?4,?5,?6,?6)
         ON CONFLICT(server_id, app_id) DO UPDATE SET app_version=excluded.app_version,
           inputs=excluded.inputs, job_id=excluded.job_id, updated_at=excluded.updated_at",
        params![server_id, app_id, app_version, serde_json::to_string(masked_inputs)?, job_id, now],
    )
    .sql()?;
    Ok(())
}

/// After an upgrade: the recorded inputs stay, overlaid with those the upgrade was given
/// (an upgrade may leave required inputs out; recovery must still redeploy with all of them).
pub(crate) fn upgrade_deployment_in(
    c: &Connection,
    server_id: i64,
    app_id: &str,
    app_version: &str,
    masked_inputs: &serde_json::Value,
    job_id: i64,
) -> Result<()> {
    let old: Option<String> = c
        .query_row(
            "SELECT inputs FROM deployments WHERE server_id=?1 AND app_id=?2",
            params![server_id, app_id],
            |r| r.get(0),
        )
        .optional()
        .sql()?;
    let mut merged = old
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    if let (Some(m), Some(new)) = (merged.as_object_mut(), masked_inputs.as_object()) {
        for (k, v) in new {
            m.insert(k.clone(), v.clone());
        }
    }
    upsert_deployment_in(c, server_id, app_id, app_version, &merged, job_id)
}

pub(crate) fn delete_deployment_in(c: &Connection, server_id: i64, app_id: &str) -> Result<usize> {
    c.execute(
        "DELETE FROM deployments WHERE server_id=?1 AND app_id=?2",
        params![server_id, app_id],
    )
    .sql()
}

pub(crate) fn deployed_apps_in(c: &Connection, server_id: i64) -> Result<Vec<String>> {
    let mut st = c
        .prepare("SELECT app_id FROM deployments WHERE server_id=?1")
        .sql()?;
    let ids = st
        .query_map([server_id], |r| r.get(0))
        .sql()?
        .collect::<crate::sql::Result<Vec<String>>>()
        .sql()?;
    Ok(ids)
}

impl Store {
    /// Records that `app_id` is on a server, as a successful install by `job_id` would.
    pub fn record_deployment(
        &self,
        server_id: i64,
        app_id: &str,
        app_version: &str,
        masked_inputs: &serde_json::Value,
        job_id: i64,
    ) -> Result<()> {
        self.write(|tx| {
            upsert_deployment_in(tx, server_id, app_id, app_version, masked_inputs, job_id)
        })
    }

    pub fn deployments(&self, server_id: Option<i64>) -> Result<Vec<Deployment>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, server_id, app_id, app_version, inputs, job_id, installed_at, updated_at
                 FROM deployments WHERE ?1 IS NULL OR server_id=?1 ORDER BY server_id, app_id",
            )?;
            let rows = st
                .query_map([server_id], |r| {
                    let inputs: String = r.get(4)?;
                    Ok(Deployment {
                        id: r.get(0)?,
                        server_id: r.get(1)?,
                        app_id: r.get(2)?,
                        app_version: r.get(3)?,
                        inputs: serde_json::from_str(&inputs).unwrap_or(serde_json::Value::Null),
                        job_id: r.get(5)?,
                        installed_at: r.get(6)?,
                        updated_at: r.get(7)?,
                    })
                })?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}

/// At a job's end: a successful install/upgrade moves the job's sealed secrets (if it had
/// any) to its deployment; the job's copy is dropped either way.
pub(crate) fn move_job_secrets_in(
    c: &Connection,
    job_id: i64,
    server_id: i64,
    app_id: &str,
    to_deployment: bool,
) -> Result<()> {
    if to_deployment {
        c.execute(
            "UPDATE deployments SET sealed_secrets =
               COALESCE((SELECT sealed_secrets FROM jobs WHERE id=?1), sealed_secrets)
             WHERE server_id=?2 AND app_id=?3",
            params![job_id, server_id, app_id],
        )
        .sql()?;
    }
    c.execute(
        "UPDATE jobs SET sealed_secrets=NULL WHERE id=?1",
        params![job_id],
    )
    .sql()?;
    Ok(())
}

/// A deployment's sealed secrets: where it is and the sealed bytes.
#[derive(Debug, Clone)]
pub struct SealedSecrets {
    pub server_id: i64,
    pub server: String,
    pub app_id: String,
    pub sealed: Vec<u8>,
}

impl Store {
    /// Keeps a queued job's sealed sensitive inputs until its end moves them to the deployment.
    pub fn set_job_sealed_secrets(&self, job_id: i64, sealed: &[u8]) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE jobs SET sealed_secrets=?1 WHERE id=?2",
                params![sealed, job_id],
            )
            .sql()?;
            Ok(())
        })
    }

    /// The sealed secrets of `app_id` on a server, if any were recorded.
    pub fn deployment_sealed_secrets(
        &self,
        server_id: i64,
        app_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        self.read(|c| {
            let v: Option<Option<Vec<u8>>> = c
                .query_row(
                    "SELECT sealed_secrets FROM deployments WHERE server_id=?1 AND app_id=?2",
                    params![server_id, app_id],
                    |r| r.get(0),
                )
                .optional()
                .sql()?;
            Ok(v.flatten())
        })
    }

    /// Every deployment that holds sealed secrets.
    pub fn sealed_deployments(&self) -> Result<Vec<SealedSecrets>> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT d.server_id, s.name, d.app_id, d.sealed_secrets FROM deployments d
                     JOIN servers s ON s.id = d.server_id
                     WHERE d.sealed_secrets IS NOT NULL ORDER BY s.name, d.app_id",
                )
                .sql()?;
            let rows = st
                .query_map([], |r| {
                    Ok(SealedSecrets {
                        server_id: r.get(0)?,
                        server: r.get(1)?,
                        app_id: r.get(2)?,
                        sealed: r.get(3)?,
                    })
                })
                .sql()?
                .collect::<crate::sql::Result<Vec<_>>>()
                .sql()?;
            Ok(rows)
        })
    }

    /// Re-seals every sealed blob (deployments, the deployments `rollback` can return to, and
    /// queued/running jobs) in one transaction.
    /// `reseal(server_id, app_id, blob)` returns the new bytes, or None to leave a blob as it
    /// is (sealed with another key). Returns (resealed, left as they were).
    pub fn reseal_secrets(
        &self,
        mut reseal: impl FnMut(i64, &str, &[u8]) -> Option<Vec<u8>>,
    ) -> Result<(usize, usize)> {
        self.write(|tx| {
            let (mut done, mut left) = (0, 0);
            for table in ["deployments", "deployment_history", "jobs"] {
                let rows: Vec<(i64, Option<i64>, String, Vec<u8>)> = {
                    let mut st = tx
                        .prepare(&format!(
                            "SELECT id, server_id, app_id, sealed_secrets FROM {table} WHERE sealed_secrets IS NOT NULL"
                        ))
                        .sql()?;
                    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .sql()?
                        .collect::<crate::sql::Result<Vec<_>>>()
                        .sql()?
                };
                for (id, server_id, app_id, blob) in rows {
                    let Some(server_id) = server_id else {
                        left += 1;
                        continue;
                    };
                    match reseal(server_id, &app_id, &blob) {
                        Some(new) => {
                            tx.execute(
                                &format!("UPDATE {table} SET sealed_secrets=?1 WHERE id=?2"),
                                params![new, id],
                            )
                            .sql()?;
                            done += 1;
                        }
                        None => left += 1,
                    }
                }
            }
            Ok((done, left))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::job_end::JobEnd;
    use crate::jobs::NewJob;
    use ptui_types::job::{JobAction, JobStatus};
    use ptui_types::server::ServerStatus;

    #[test]
    fn a_jobs_sealed_secrets_move_to_its_deployment_and_are_resealed_with_their_row() {
        let (_d, s) = crate::test_store();
        let srv = crate::test_server(&s, "a", ServerStatus::Ready);
        let job = s
            .create_job(&NewJob {
                server_id: srv.id,
                server_name: &srv.name,
                app_id: "app",
                app_version: "1",
                action: JobAction::Install,
                masked_inputs: &serde_json::json!({"pw": "***"}),
                owner: "1@h",
            })
            .unwrap();
        s.set_job_sealed_secrets(job.id, b"blob-1").unwrap();
        let (done, left) = s
            .reseal_secrets(|sid, app, blob| {
                assert_eq!((sid, app, blob), (srv.id, "app", &b"blob-1"[..]));
                Some(b"blob-2".to_vec())
            })
            .unwrap();
        assert_eq!(
            (done, left),
            (1, 0),
            "the queued job's copy is re-sealed too"
        );
        let job = s.mark_job_running(job.id, 1).unwrap();
        let end = JobEnd {
            status: JobStatus::Succeeded,
            kind: None,
            message: None,
            exit_code: Some(0),
            installs_app: true,
            base_installers: &[],
        };
        s.record_job_end(&job, &end).unwrap();
        assert_eq!(
            s.deployment_sealed_secrets(srv.id, "app")
                .unwrap()
                .as_deref(),
            Some(&b"blob-2"[..])
        );
        let (done, _) = s.reseal_secrets(|_, _, _| None).unwrap();
        assert_eq!(done, 0);
        let jobs_left: i64 = s
            .read(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM jobs WHERE sealed_secrets IS NOT NULL",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(jobs_left, 0, "the job's copy is dropped at its end");
    }
}
