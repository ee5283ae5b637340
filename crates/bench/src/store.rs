//! `provision-tui bench store`: the database under the load of a busy bastion, on SQLite and
//! on PostgreSQL in the same run. N servers; J jobs streaming log batches as fast as the store
//! takes them; a health checker writing a sample per server per sweep; a dashboard reloading
//! what it shows (servers, jobs, summary, health history, incidents, audit) in a loop. All at
//! once for `secs` seconds: log lines and samples written per second, reload times.

use color_eyre::eyre::{Result, eyre};
use ptui_engine::Engine;
use ptui_store::Store;
use ptui_store::jobs::NewJob;
use ptui_types::config::Config;
use ptui_types::health::Sample;
use ptui_types::job::{JobAction, JobFilter, LogStream};
use ptui_types::server::{ServerSpec, ServerStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct StoreBench {
    pub servers: usize,
    pub jobs: usize,
    pub secs: u64,
    /// Lines per stored batch (the engine's log sink stores a batch per flush).
    pub batch: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreFigures {
    pub backend: String,
    pub log_lines_per_s: f64,
    pub samples_per_s: f64,
    pub reload_ms_median: f64,
    pub reload_ms_p95: f64,
    pub reloads: usize,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Runs the load on the database `db` (a SQLite path or a PostgreSQL URL, empty).
pub fn run(db: &str, backend: &str, b: &StoreBench) -> Result<StoreFigures> {
    let dir = tempfile::tempdir()?;
    let mut cfg = Config::new(Some(db.into()), Vec::new());
    if cfg.database_url.is_some() {
        // Keys of this run only, not the operator's.
        cfg.secrets_key_path = dir.path().join("secrets.key");
        cfg.audit_key_path = dir.path().join("audit.key");
    }
    cfg.user_known_hosts_path = None;
    let engine = Engine::open(cfg)?;
    let store = Store::open_location(db)?;
    let mut servers = Vec::with_capacity(b.servers);
    for i in 0..b.servers {
        servers.push(store.add_server(
            &ServerSpec {
                name: format!("s{i:05}"),
                host: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
                port: 22,
                user: "root".into(),
                ..Default::default()
            },
            ServerStatus::Ready,
        )?);
    }
    let mut jobs = Vec::with_capacity(b.jobs);
    for s in servers.iter().take(b.jobs) {
        let j = store.create_job(&NewJob {
            server_id: s.id,
            server_name: &s.name,
            app_id: "bench",
            app_version: "1",
            action: JobAction::Install,
            masked_inputs: &serde_json::json!({}),
            owner: "bench",
        })?;
        store.mark_job_running(j.id, 1)?;
        jobs.push(j.id);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let lines = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut reload_ms = Vec::new();
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for &job in &jobs {
            let (store, stop, lines) = (store.clone(), stop.clone(), lines.clone());
            let batch = b.batch;
            handles.push(scope.spawn(move || -> Result<()> {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let ts = ptui_store::now_ms();
                    let batch: Vec<(LogStream, i64, String)> = (0..batch)
                        .map(|k| {
                            n += 1;
                            (
                                LogStream::Stdout,
                                ts,
                                format!("Unpacking package-{n} ({k}) over the bench line ..."),
                            )
                        })
                        .collect();
                    store.append_logs(job, &batch)?;
                    lines.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Ok(())
            }));
        }
        {
            let (store, stop, samples) = (store.clone(), stop.clone(), samples.clone());
            let servers = servers.clone();
            handles.push(scope.spawn(move || -> Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    let ts = ptui_store::now_ms();
                    let sweep: Vec<Sample> = servers
                        .iter()
                        .map(|s| Sample {
                            server_id: s.id,
                            server: s.name.clone(),
                            ts,
                            ok: true,
                            latency_ms: 12,
                            load: Some([0.1, 0.2, 0.3]),
                            mem_pct: Some(41.0),
                            disk_pct: Some(63.0),
                            ..Default::default()
                        })
                        .collect();
                    store.insert_samples(&sweep)?;
                    samples.fetch_add(sweep.len() as u64, Ordering::Relaxed);
                }
                Ok(())
            }));
        }
        // Whatever ends the reload loop (its end, or an error) stops the load threads.
        struct StopOnDrop(Arc<AtomicBool>);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let stopper = StopOnDrop(stop.clone());
        let end = t0 + Duration::from_secs(b.secs);
        while Instant::now() < end {
            let r0 = Instant::now();
            engine.servers()?;
            engine.jobs(&JobFilter {
                limit: Some(500),
                ..Default::default()
            })?;
            engine.summary()?;
            engine.recent_health(16)?;
            engine.incident_list(None, 500)?;
            engine.audit_entries(None, 1000)?;
            reload_ms.push(r0.elapsed().as_secs_f64() * 1000.0);
        }
        drop(stopper);
        for h in handles {
            h.join().map_err(|_| eyre!("a load thread panicked"))??;
        }
        Ok(())
    })?;
    let took = t0.elapsed().as_secs_f64();
    reload_ms.sort_by(f64::total_cmp);
    Ok(StoreFigures {
        backend: backend.to_string(),
        log_lines_per_s: lines.load(Ordering::Relaxed) as f64 / took,
        samples_per_s: samples.load(Ordering::Relaxed) as f64 / took,
        reload_ms_median: quantile(&reload_ms, 0.5),
        reload_ms_p95: quantile(&reload_ms, 0.95),
        reloads: reload_ms.len(),
    })
}

/// A fresh database on a throwaway server (`scripts/pg-test-server`, stopped when this
/// process exits). The URL carries the server's one-off password: it stays in this process
/// (messages show the URL with `***`).
pub fn throwaway_postgres() -> Result<String> {
    let url = ptui_store::testing::fresh_postgres_url()?;
    let server = ptui_store::testing::pg_server()?;
    let line = std::fs::read_to_string(&server.pgpass)?;
    let password = line
        .trim()
        .rsplit(':')
        .next()
        .ok_or_else(|| eyre!("{} holds no password", server.pgpass.display()))?
        .to_string();
    Ok(url.replacen(
        "postgres://ptui@",
        &format!("postgres://ptui:{password}@"),
        1,
    ))
}
