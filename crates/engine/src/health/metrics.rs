//! Fleet metrics from the database, as JSON or Prometheus text (node_exporter textfile format).

use color_eyre::eyre::Result;
use ptui_store::{Store, now_ms};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metrics {
    pub servers_by_status: BTreeMap<String, i64>,
    pub jobs_by_status: BTreeMap<String, i64>,
    /// Mean duration of successful install jobs, in seconds.
    pub avg_provisioning_seconds: Option<f64>,
    /// Failed / (succeeded + failed + interrupted) jobs finished in the window.
    pub failure_rate_24h: Option<f64>,
    pub failure_rate_7d: Option<f64>,
    pub open_incidents: i64,
    pub open_incidents_by_kind: BTreeMap<String, i64>,
    /// Latency of successful checks over the last 24 h, in milliseconds.
    pub check_latency_p50_ms: Option<i64>,
    pub check_latency_p95_ms: Option<i64>,
    pub checks_24h: i64,
}

/// Nearest-rank percentile of a sorted slice.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

pub(crate) fn collect(store: &Store) -> Result<Metrics> {
    let now = now_ms();
    let servers_by_status = store
        .server_status_counts()?
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), n))
        .collect();
    let jobs_by_status = store
        .job_status_counts()?
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), n))
        .collect();
    let avg_provisioning_seconds = store.avg_install_seconds()?;
    let open = store.open_incidents()?;
    let mut by_kind = BTreeMap::new();
    for i in &open {
        *by_kind.entry(i.kind.as_str().to_string()).or_insert(0) += 1;
    }
    let lat = store.check_latencies(now - 86_400_000)?;
    let checks_24h = store.sample_count_since(now - 86_400_000)?;
    Ok(Metrics {
        servers_by_status,
        jobs_by_status,
        avg_provisioning_seconds,
        failure_rate_24h: store.job_failure_rate(now - 86_400_000)?,
        failure_rate_7d: store.job_failure_rate(now - 7 * 86_400_000)?,
        open_incidents: open.len() as i64,
        open_incidents_by_kind: by_kind,
        check_latency_p50_ms: percentile(&lat, 50.0),
        check_latency_p95_ms: percentile(&lat, 95.0),
        checks_24h,
    })
}

/// Prometheus text exposition format.
pub fn prometheus(m: &Metrics) -> String {
    let mut o = String::new();
    let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in rows {
            let _ = writeln!(o, "{name}{labels} {v}");
        }
    };
    let lab = |k: &str, v: &str| {
        format!(
            "{{{k}=\"{}\"}}",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        )
    };
    gauge(
        "provision_tui_servers",
        "Servers by lifecycle status.",
        m.servers_by_status
            .iter()
            .map(|(s, n)| (lab("status", s), *n as f64))
            .collect(),
    );
    gauge(
        "provision_tui_jobs",
        "Jobs by status.",
        m.jobs_by_status
            .iter()
            .map(|(s, n)| (lab("status", s), *n as f64))
            .collect(),
    );
    let opt = |v: Option<f64>| v.map(|v| vec![(String::new(), v)]).unwrap_or_default();
    gauge(
        "provision_tui_provisioning_duration_seconds_avg",
        "Mean duration of successful install jobs.",
        opt(m.avg_provisioning_seconds),
    );
    gauge(
        "provision_tui_job_failure_ratio",
        "Failed share of finished jobs over a window.",
        [("24h", m.failure_rate_24h), ("7d", m.failure_rate_7d)]
            .into_iter()
            .filter_map(|(w, v)| v.map(|v| (lab("window", w), v)))
            .collect(),
    );
    let mut inc = vec![(String::new(), m.open_incidents as f64)];
    inc.extend(
        m.open_incidents_by_kind
            .iter()
            .map(|(k, n)| (lab("kind", k), *n as f64)),
    );
    gauge(
        "provision_tui_open_incidents",
        "Open incidents (total, and by kind).",
        inc,
    );
    gauge(
        "provision_tui_check_latency_ms",
        "Health check latency over 24 h.",
        [
            ("0.5", m.check_latency_p50_ms),
            ("0.95", m.check_latency_p95_ms),
        ]
        .into_iter()
        .filter_map(|(q, v)| v.map(|v| (lab("quantile", q), v as f64)))
        .collect(),
    );
    gauge(
        "provision_tui_checks_24h",
        "Health checks run over 24 h.",
        vec![(String::new(), m.checks_24h as f64)],
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn empty_database_metrics_and_prometheus_text() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::open(&dir.path().join("state.db")).unwrap();
        let m = collect(&st).unwrap();
        assert_eq!(m.open_incidents, 0);
        let text = prometheus(&m);
        assert!(text.contains("# TYPE provision_tui_open_incidents gauge"));
        assert!(text.contains("provision_tui_open_incidents 0"));
    }
}
