//! Aggregates behind the fleet metrics (the engine assembles them into `Metrics`).

use super::Store;
use color_eyre::eyre::Result;

impl Store {
    /// Failed (or interrupted) jobs out of those that ended since `since`; None when none did.
    pub fn job_failure_rate(&self, since: i64) -> Result<Option<f64>> {
        self.read(|c| {
            let (failed, total): (i64, i64) = c.query_row(
                "SELECT COALESCE(SUM(CASE WHEN status IN ('failed','interrupted') THEN 1 ELSE 0 END),0), COUNT(*) FROM jobs
                 WHERE finished_at >= ?1 AND status IN ('succeeded','failed','interrupted')",
                [since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok((total > 0).then(|| failed as f64 / total as f64))
        })
    }

    /// Mean duration of successful install jobs, in seconds.
    pub fn avg_install_seconds(&self) -> Result<Option<f64>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT AVG(finished_at - started_at) / 1000.0 FROM jobs
                 WHERE status='succeeded' AND action='install' AND started_at IS NOT NULL",
                [],
                |r| r.get::<_, Option<f64>>(0),
            )?)
        })
    }

    /// Health samples taken since `since`.
    pub fn sample_count_since(&self, since: i64) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM health_samples WHERE ts >= ?1",
                [since],
                |r| r.get(0),
            )?)
        })
    }
}
