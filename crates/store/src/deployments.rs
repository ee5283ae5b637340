//! deployments: which app, with which inputs, is on which server.

use super::{SqlContext, Store, now_ms};
use color_eyre::eyre::Result;
use rusqlite::{Connection, OptionalExtension, params};

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
        .collect::<rusqlite::Result<Vec<String>>>()
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
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}
