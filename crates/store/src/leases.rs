//! server_leases: one job per server at a time, across every process on this database.

use super::{SqlContext, Store, now_ms};
use crate::sql::{OptionalExtension, params};
use color_eyre::eyre::Result;

/// Who holds a server's lease when we could not take it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseHolder {
    pub job_id: Option<i64>,
    pub holder: String,
}

impl Store {
    /// Takes the lease if it is free or its holder stopped heartbeating for `ttl_ms`, unless
    /// the holder's job may still run on the server (it was sent, and has not ended): such a
    /// job is adopted by a live process, never run over.
    pub fn try_acquire_lease(
        &self,
        server_id: i64,
        job_id: i64,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Result<(), LeaseHolder>> {
        self.write(|tx| {
            let now = now_ms();
            let current: Option<(Option<i64>, String, i64)> = tx
                .query_row(
                    "SELECT job_id, holder, heartbeat_at FROM server_leases WHERE server_id=?1",
                    [server_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .sql()?;
            if let Some((held_job, held_by, hb)) = current
                && held_job != Some(job_id)
            {
                let busy = hb > now - ttl_ms || match held_job {
                    Some(j) => tx
                        .query_row(
                            "SELECT 1 FROM jobs WHERE id=?1 AND spool IS NOT NULL AND status IN ('running','detached')",
                            [j],
                            |_| Ok(()),
                        )
                        .optional()
                        .sql()?
                        .is_some(),
                    None => false,
                };
                if busy {
                    return Ok(Err(LeaseHolder { job_id: held_job, holder: held_by }));
                }
            }
            tx.execute(
                "INSERT INTO server_leases(server_id, job_id, holder, acquired_at, heartbeat_at) VALUES(?1,?2,?3,?4,?4)
                 ON CONFLICT(server_id) DO UPDATE SET job_id=excluded.job_id, holder=excluded.holder,
                   acquired_at=excluded.acquired_at, heartbeat_at=excluded.heartbeat_at",
                params![server_id, job_id, holder, now],
            )
            .sql()?;
            Ok(Ok(()))
        })
    }

    pub fn heartbeat_lease(&self, server_id: i64, job_id: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE server_leases SET heartbeat_at=?3 WHERE server_id=?1 AND job_id=?2",
                params![server_id, job_id, now_ms()],
            )
            .sql()?;
            Ok(())
        })
    }

    pub fn release_lease(&self, server_id: i64, job_id: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM server_leases WHERE server_id=?1 AND job_id=?2",
                params![server_id, job_id],
            )
            .sql()?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use ptui_types::server::ServerStatus;

    #[test]
    fn lease_is_exclusive_until_released_or_stale() {
        let (_d, s) = crate::test_store();
        let srv = crate::test_server(&s, "a", ServerStatus::Ready);
        assert!(
            s.try_acquire_lease(srv.id, 1, "p1", 30_000)
                .unwrap()
                .is_ok()
        );
        let held = s
            .try_acquire_lease(srv.id, 2, "p2", 30_000)
            .unwrap()
            .unwrap_err();
        assert_eq!(held.job_id, Some(1));
        // A holder that stopped heartbeating loses the lease.
        assert!(s.try_acquire_lease(srv.id, 2, "p2", -1).unwrap().is_ok());
        s.release_lease(srv.id, 2).unwrap();
        assert!(
            s.try_acquire_lease(srv.id, 3, "p3", 30_000)
                .unwrap()
                .is_ok()
        );
    }
}
