//! Searching a job's stored log without loading it (the log pane's `/`, `n`, `N`).

use super::Store;
use crate::sql::{OptionalExtension, params};
use color_eyre::eyre::Result;

impl Store {
    /// The seq of the nearest line containing `needle` (case-sensitive), at or after `from_seq`
    /// when `forward`, else at or before it.
    pub fn find_log_line(
        &self,
        job_id: i64,
        needle: &str,
        from_seq: i64,
        forward: bool,
    ) -> Result<Option<i64>> {
        let sql = if forward {
            "SELECT seq FROM job_logs WHERE job_id=?1 AND seq>=?2 AND instr(text, ?3) > 0 ORDER BY seq LIMIT 1"
        } else {
            "SELECT seq FROM job_logs WHERE job_id=?1 AND seq<=?2 AND instr(text, ?3) > 0 ORDER BY seq DESC LIMIT 1"
        };
        self.read(|c| {
            Ok(
                c.query_row(sql, params![job_id, from_seq, needle], |r| r.get(0))
                    .optional()?,
            )
        })
    }
}
