//! Reads a change plan needs (nothing here writes).

use super::leases::LeaseHolder;
use super::{SqlContext, Store, now_ms};
use crate::sql::{OptionalExtension, params};
use color_eyre::eyre::Result;

impl Store {
    /// The live lease on a server (heartbeat within `ttl_ms`), if another job holds one.
    pub fn active_lease(&self, server_id: i64, ttl_ms: i64) -> Result<Option<LeaseHolder>> {
        self.read(|c| {
            c.query_row(
                "SELECT job_id, holder FROM server_leases WHERE server_id=?1 AND heartbeat_at > ?2",
                params![server_id, now_ms() - ttl_ms],
                |r| {
                    Ok(LeaseHolder {
                        job_id: r.get(0)?,
                        holder: r.get(1)?,
                    })
                },
            )
            .optional()
            .sql()
        })
    }
}
