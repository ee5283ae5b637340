//! health_samples (+ hourly rollup), server_health policies, manual maintenance windows and
//! singleton leases (one health checker per database).

use super::{SqlContext, Store, now_ms};
use crate::sql::{OptionalExtension, params};
use color_eyre::eyre::Result;
use ptui_types::health::{RecoveryPolicy, Sample, ServerHealthPolicy};
use serde::Serialize;

/// A manual maintenance window (`maintenance on`). `server` None means the whole fleet.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MaintenanceRow {
    pub id: i64,
    pub server: Option<String>,
    pub starts_at: i64,
    pub ends_at: Option<i64>,
    pub reason: String,
    pub created_by: String,
}

/// What retention did in one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RetentionReport {
    pub rolled_up: usize,
    pub hourly_pruned: usize,
}

const HOUR_MS: i64 = 3_600_000;

impl Store {
    /// Stores a batch of samples in one transaction.
    pub fn insert_samples(&self, samples: &[Sample]) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO health_samples(server_id, ts, ok, failure, connect_ms, latency_ms,
                        load1, mem_pct, disk_pct, details) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                )
                .sql()?;
            for s in samples {
                let details = serde_json::json!({
                    "error": s.error,
                    "load": s.load,
                    "mounts_over": s.mounts_over,
                    "docker": s.docker,
                    "apps": s.apps,
                });
                st.execute(params![
                    s.server_id,
                    s.ts,
                    s.ok,
                    s.failure.map(|k| k.as_str()),
                    s.connect_ms.map(|v| v as i64),
                    s.latency_ms as i64,
                    s.load.map(|l| l[0]),
                    s.mem_pct,
                    s.disk_pct,
                    details.to_string()
                ])
                .sql()?;
            }
            Ok(())
        })
    }

    /// Retention: raw samples older than `raw_keep_ms` are folded into `health_hourly` (one row
    /// per server and hour) and deleted; hourly rows older than `hourly_keep_ms` are deleted.
    pub fn apply_retention(
        &self,
        raw_keep_ms: i64,
        hourly_keep_ms: i64,
    ) -> Result<RetentionReport> {
        let now = now_ms();
        // Only whole hours are rolled up, so an hour is never split across two rollups.
        let cutoff = ((now - raw_keep_ms) / HOUR_MS) * HOUR_MS;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO health_hourly AS h (server_id, hour, checks, failures, latency_avg_ms,
                    latency_max_ms, load1_avg, mem_pct_max, disk_pct_max)
                 SELECT server_id, (ts / ?2) * ?2, COUNT(*), SUM(CASE WHEN ok = 0 THEN 1 ELSE 0 END), AVG(latency_ms),
                    MAX(latency_ms), AVG(load1), MAX(mem_pct), MAX(disk_pct)
                 FROM health_samples WHERE ts < ?1 GROUP BY server_id, (ts / ?2)
                 ON CONFLICT(server_id, hour) DO UPDATE SET
                    latency_avg_ms = (h.latency_avg_ms * h.checks + excluded.latency_avg_ms * excluded.checks)
                                     / (h.checks + excluded.checks),
                    -- A late sample landing in an hour already rolled up: merge, weighted by
                    -- checks (the count of samples with a load is not kept); NULL = no load seen.
                    load1_avg = CASE
                        WHEN h.load1_avg IS NULL THEN excluded.load1_avg
                        WHEN excluded.load1_avg IS NULL THEN h.load1_avg
                        ELSE (h.load1_avg * h.checks + excluded.load1_avg * excluded.checks)
                             / (h.checks + excluded.checks) END,
                    checks = h.checks + excluded.checks,
                    failures = h.failures + excluded.failures,
                    latency_max_ms = MAX(h.latency_max_ms, excluded.latency_max_ms),
                    mem_pct_max = MAX(h.mem_pct_max, excluded.mem_pct_max),
                    disk_pct_max = MAX(h.disk_pct_max, excluded.disk_pct_max)",
                params![cutoff, HOUR_MS],
            )
            .sql()?;
            let rolled_up = tx
                .execute("DELETE FROM health_samples WHERE ts < ?1", [cutoff])
                .sql()?;
            let hourly_pruned = tx
                .execute(
                    "DELETE FROM health_hourly WHERE hour < ?1",
                    [now - hourly_keep_ms],
                )
                .sql()?;
            Ok(RetentionReport {
                rolled_up,
                hourly_pruned,
            })
        })
    }

    /// Check latencies (ms) since `since`, sorted, for percentiles.
    pub fn check_latencies(&self, since: i64) -> Result<Vec<i64>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT latency_ms FROM health_samples WHERE ts >= ?1 AND ok = 1 AND latency_ms IS NOT NULL
                 ORDER BY latency_ms",
            )?;
            let v = st
                .query_map([since], |r| r.get(0))?
                .collect::<crate::sql::Result<Vec<i64>>>()?;
            Ok(v)
        })
    }

    /// The latest samples of a server, newest first (for sparklines and `server show`).
    pub fn recent_samples(
        &self,
        server_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, bool, Option<i64>)>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT ts, ok, latency_ms FROM health_samples WHERE server_id=?1 ORDER BY ts DESC LIMIT ?2",
            )?;
            let v = st
                .query_map(params![server_id, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(v)
        })
    }

    pub fn sample_counts(&self) -> Result<(i64, i64)> {
        self.read(|c| {
            Ok((
                c.query_row("SELECT COUNT(*) FROM health_samples", [], |r| r.get(0))?,
                c.query_row("SELECT COUNT(*) FROM health_hourly", [], |r| r.get(0))?,
            ))
        })
    }

    // ---- per-server policy ----

    pub fn health_policy(&self, server_id: i64) -> Result<ServerHealthPolicy> {
        self.read(|c| {
            let row = c
                .query_row(
                    "SELECT interval_ms, recovery, base_installer FROM server_health WHERE server_id=?1",
                    [server_id],
                    |r| {
                        Ok((
                            r.get::<_, Option<i64>>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                        ))
                    },
                )
                .optional()?;
            Ok(match row {
                Some((interval_ms, recovery, base_installer)) => ServerHealthPolicy {
                    server_id,
                    interval_ms,
                    recovery: RecoveryPolicy::parse(&recovery).unwrap_or_default(),
                    base_installer,
                },
                None => ServerHealthPolicy {
                    server_id,
                    ..Default::default()
                },
            })
        })
    }

    pub fn all_health_policies(&self) -> Result<Vec<ServerHealthPolicy>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT server_id, interval_ms, recovery, base_installer FROM server_health",
            )?;
            let v = st
                .query_map([], |r| {
                    let rec: String = r.get(2)?;
                    Ok(ServerHealthPolicy {
                        server_id: r.get(0)?,
                        interval_ms: r.get(1)?,
                        recovery: RecoveryPolicy::parse(&rec).unwrap_or_default(),
                        base_installer: r.get(3)?,
                    })
                })?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(v)
        })
    }

    pub fn set_health_policy(&self, p: &ServerHealthPolicy) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO server_health(server_id, interval_ms, recovery, base_installer) VALUES(?1,?2,?3,?4)
                 ON CONFLICT(server_id) DO UPDATE SET interval_ms=excluded.interval_ms,
                   recovery=excluded.recovery, base_installer=excluded.base_installer",
                params![p.server_id, p.interval_ms, p.recovery.as_str(), p.base_installer],
            )
            .sql()?;
            Ok(())
        })
    }

    // ---- manual maintenance ----

    pub fn maintenance_on(
        &self,
        server_id: Option<i64>,
        ends_at: Option<i64>,
        reason: &str,
        by: &str,
    ) -> Result<i64> {
        self.write(|tx| {
            tx.insert(
                "INSERT INTO maintenance(server_id, starts_at, ends_at, reason, created_by) VALUES(?1,?2,?3,?4,?5)",
                params![server_id, now_ms(), ends_at, reason, by],
            )
            .sql()
        })
    }

    /// Ends the active manual windows of a server (or the fleet-wide ones for None).
    pub fn maintenance_off(&self, server_id: Option<i64>) -> Result<usize> {
        self.write(|tx| {
            tx.execute(
                "UPDATE maintenance SET ended_at=?1 WHERE ended_at IS NULL AND server_id IS NOT DISTINCT FROM ?2
                   AND (ends_at IS NULL OR ends_at > ?1)",
                params![now_ms(), server_id],
            )
            .sql()
        })
    }

    /// Manual windows in force now.
    pub fn active_maintenance(&self) -> Result<Vec<MaintenanceRow>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT m.id, s.name, m.starts_at, m.ends_at, m.reason, m.created_by
                 FROM maintenance m LEFT JOIN servers s ON s.id = m.server_id
                 WHERE m.ended_at IS NULL AND m.starts_at <= ?1 AND (m.ends_at IS NULL OR m.ends_at > ?1)
                 ORDER BY m.id",
            )?;
            let v = st
                .query_map([now_ms()], |r| {
                    Ok(MaintenanceRow {
                        id: r.get(0)?,
                        server: r.get(1)?,
                        starts_at: r.get(2)?,
                        ends_at: r.get(3)?,
                        reason: r.get(4)?,
                        created_by: r.get(5)?,
                    })
                })?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(v)
        })
    }

    // ---- singleton leases ----

    /// Takes or renews a named lease; false while another live holder has it.
    pub fn try_singleton(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
        self.write(|tx| {
            let now = now_ms();
            let cur: Option<(String, i64)> = tx
                .query_row(
                    "SELECT holder, heartbeat_at FROM singleton_leases WHERE name=?1",
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .sql()?;
            if let Some((h, at)) = cur
                && h != holder
                && now - at < ttl_ms
            {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO singleton_leases(name, holder, heartbeat_at) VALUES(?1,?2,?3)
                 ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, heartbeat_at=excluded.heartbeat_at",
                params![name, holder, now],
            )
            .sql()?;
            Ok(true)
        })
    }

    pub fn release_singleton(&self, name: &str, holder: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM singleton_leases WHERE name=?1 AND holder=?2",
                params![name, holder],
            )
            .sql()?;
            Ok(())
        })
    }
}

impl Store {
    /// Jobs that reached a terminal status after `since` (ms), oldest first.
    pub fn jobs_finished_since(&self, since: i64) -> Result<Vec<ptui_types::job::Job>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {} FROM jobs WHERE finished_at > ?1 ORDER BY finished_at, id",
                super::jobs::JOB_COLS
            ))?;
            let v = st
                .query_map([since], super::jobs::job_from_row)?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptui_types::server::ServerStatus;

    fn sample(server_id: i64, ts: i64, ok: bool, latency: u64) -> Sample {
        let mut s = Sample::unreachable(
            server_id,
            "a",
            ptui_types::health::IncidentKind::ServerUnreachable,
            String::new(),
        );
        s.ts = ts;
        s.ok = ok;
        s.failure = None;
        s.latency_ms = latency;
        s
    }

    #[test]
    fn retention_rolls_old_samples_into_hours_and_prunes() {
        let (_d, st) = crate::test_store();
        let srv = crate::test_server(&st, "a", ServerStatus::Ready);
        let now = now_ms();
        let old = ((now - 3 * 86_400_000) / HOUR_MS) * HOUR_MS;
        let ancient = now - 400 * 86_400_000;
        st.insert_samples(&[
            sample(srv.id, old + 1, true, 10),
            sample(srv.id, old + 2, false, 30),
            sample(srv.id, ancient, true, 5),
            sample(srv.id, now, true, 7),
        ])
        .unwrap();
        let r = st.apply_retention(86_400_000, 90 * 86_400_000).unwrap();
        assert_eq!(r.rolled_up, 3);
        assert_eq!(r.hourly_pruned, 1, "the 400-day-old hour is pruned");
        let (raw, hourly) = st.sample_counts().unwrap();
        assert_eq!((raw, hourly), (1, 1));
        let (checks, failures, avg): (i64, i64, f64) = st
            .read(|c| {
                Ok(c.query_row(
                    "SELECT checks, failures, latency_avg_ms FROM health_hourly",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?)
            })
            .unwrap();
        assert_eq!((checks, failures), (2, 1));
        assert!((avg - 20.0).abs() < 0.01);
    }

    #[test]
    fn a_late_sample_merges_into_its_rolled_up_hour() {
        let (_d, st) = crate::test_store();
        let srv = crate::test_server(&st, "a", ServerStatus::Ready);
        let hour = ((now_ms() - 3 * 86_400_000) / HOUR_MS) * HOUR_MS;
        let with_load = |ts: i64, load: Option<f64>| {
            let mut s = sample(srv.id, ts, true, 10);
            s.load = load.map(|l| [l, 0.0, 0.0]);
            s
        };
        st.insert_samples(&[
            with_load(hour + 1, Some(1.0)),
            with_load(hour + 2, Some(1.0)),
            with_load(hour + 3, Some(1.0)),
        ])
        .unwrap();
        st.apply_retention(86_400_000, 90 * 86_400_000).unwrap();
        // Late: one sample of the same hour (e.g. from a checker whose clock lagged).
        st.insert_samples(&[with_load(hour + 4, Some(5.0))])
            .unwrap();
        st.apply_retention(86_400_000, 90 * 86_400_000).unwrap();
        let load = || -> (i64, f64) {
            st.read(|c| {
                Ok(
                    c.query_row("SELECT checks, load1_avg FROM health_hourly", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?,
                )
            })
            .unwrap()
        };
        let (checks, avg) = load();
        assert_eq!(checks, 4);
        assert!(
            (avg - 2.0).abs() < 1e-9,
            "(3 x 1.0 + 5.0) / 4, not 5.0: {avg}"
        );
        // A late sample without a load (unreachable) keeps the average.
        st.insert_samples(&[with_load(hour + 5, None)]).unwrap();
        st.apply_retention(86_400_000, 90 * 86_400_000).unwrap();
        let (checks, avg) = load();
        assert_eq!(checks, 5);
        assert!((avg - 2.0).abs() < 1e-9, "{avg}");
    }

    #[test]
    fn singleton_lease_excludes_a_second_holder() {
        let (_d, st) = crate::test_store();
        assert!(st.try_singleton("checker", "p1", 10_000).unwrap());
        assert!(!st.try_singleton("checker", "p2", 10_000).unwrap());
        assert!(st.try_singleton("checker", "p1", 10_000).unwrap());
        st.release_singleton("checker", "p1").unwrap();
        assert!(st.try_singleton("checker", "p2", 10_000).unwrap());
    }
}
