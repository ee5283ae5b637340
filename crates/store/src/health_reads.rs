//! Read side of the health samples for the dashboard: the last samples of every server (the
//! Fleet's figures and sparklines at start) and uptime over a period.

use super::Store;
use crate::sql::{Row, params};
use color_eyre::eyre::Result;
use ptui_types::health::{AppHealth, IncidentKind, MountUse, Sample};
use serde::Serialize;

/// Checks that passed out of all, for a server or one of its apps, over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Uptime {
    pub ok: i64,
    pub total: i64,
}

impl Uptime {
    /// The percentage, or None with no checks.
    pub fn pct(&self) -> Option<f64> {
        (self.total > 0).then(|| 100.0 * self.ok as f64 / self.total as f64)
    }
}

fn sample_from(r: &Row) -> crate::sql::Result<Sample> {
    let failure: Option<String> = r.get(4)?;
    let details: String = r.get(10)?;
    let d: serde_json::Value = serde_json::from_str(&details).unwrap_or_default();
    Ok(Sample {
        server_id: r.get(0)?,
        server: r.get(1)?,
        ts: r.get(2)?,
        ok: r.get(3)?,
        failure: failure.as_deref().and_then(IncidentKind::parse),
        error: d["error"].as_str().map(str::to_string),
        connect_ms: r.get::<_, Option<i64>>(5)?.map(|v| v.max(0) as u64),
        latency_ms: r.get::<_, Option<i64>>(6)?.unwrap_or(0).max(0) as u64,
        load: serde_json::from_value::<Option<[f64; 3]>>(d["load"].clone())
            .ok()
            .flatten()
            .or_else(|| {
                r.get::<_, Option<f64>>(7)
                    .ok()
                    .flatten()
                    .map(|l| [l, 0.0, 0.0])
            }),
        mem_pct: r.get(8)?,
        disk_pct: r.get(9)?,
        mounts_over: serde_json::from_value::<Vec<MountUse>>(d["mounts_over"].clone())
            .unwrap_or_default(),
        docker: d["docker"].as_str().map(str::to_string),
        apps: serde_json::from_value::<Vec<AppHealth>>(d["apps"].clone()).unwrap_or_default(),
        states: Vec::new(),
        maintenance: false,
    })
}

const SAMPLE_COLS: &str = "h.server_id, s.name, h.ts, h.ok, h.failure, h.connect_ms, h.latency_ms,
    h.load1, h.mem_pct, h.disk_pct, h.details";

impl Store {
    /// The last `per_server` samples of every server, oldest first.
    pub fn latest_samples(&self, per_server: usize) -> Result<Vec<Sample>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {SAMPLE_COLS} FROM (
                    SELECT *, ROW_NUMBER() OVER (PARTITION BY server_id ORDER BY ts DESC) AS rn
                    FROM health_samples) h
                 JOIN servers s ON s.id = h.server_id
                 WHERE h.rn <= ?1 ORDER BY h.ts, h.id"
            ))?;
            let v = st
                .query_map([per_server as i64], sample_from)?
                .collect::<crate::sql::Result<Vec<_>>>()?;
            Ok(v)
        })
    }

    /// A server's newest sample.
    pub fn last_sample(&self, server_id: i64) -> Result<Option<Sample>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {SAMPLE_COLS} FROM health_samples h JOIN servers s ON s.id = h.server_id
                 WHERE h.server_id = ?1 ORDER BY h.ts DESC, h.id DESC LIMIT 1"
            ))?;
            let mut rows = st.query_map([server_id], sample_from)?;
            Ok(rows.next().transpose()?)
        })
    }

    /// A server's uptime since `since_ms`: raw samples plus the hourly rollups of older ones.
    pub fn server_uptime(&self, server_id: i64, since_ms: i64) -> Result<Uptime> {
        self.read(|c| {
            let (ok, total): (i64, i64) = c.query_row(
                "SELECT COALESCE(SUM(ok), 0), COUNT(*) FROM health_samples
                 WHERE server_id = ?1 AND ts >= ?2",
                params![server_id, since_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let (h_ok, h_total): (i64, i64) = c.query_row(
                "SELECT COALESCE(SUM(checks - failures), 0), COALESCE(SUM(checks), 0)
                 FROM health_hourly WHERE server_id = ?1 AND hour >= ?2",
                params![server_id, since_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(Uptime {
                ok: ok + h_ok,
                total: total + h_total,
            })
        })
    }

    /// Each app's uptime on a server since `since_ms`, from the raw samples' app checks
    /// (hourly rollups keep no per-app figures).
    pub fn app_uptime(&self, server_id: i64, since_ms: i64) -> Result<Vec<(String, Uptime)>> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT details FROM health_samples WHERE server_id = ?1 AND ts >= ?2")?;
            let mut out: Vec<(String, Uptime)> = Vec::new();
            let rows = st.query_map(params![server_id, since_ms], |r| r.get::<_, String>(0))?;
            for details in rows {
                let d: serde_json::Value = serde_json::from_str(&details?).unwrap_or_default();
                let apps: Vec<AppHealth> =
                    serde_json::from_value(d["apps"].clone()).unwrap_or_default();
                for a in apps {
                    let pos = match out.iter().position(|(id, _)| *id == a.app_id) {
                        Some(p) => p,
                        None => {
                            out.push((a.app_id.clone(), Uptime::default()));
                            out.len() - 1
                        }
                    };
                    out[pos].1.total += 1;
                    out[pos].1.ok += a.ok as i64;
                }
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out)
        })
    }
}
