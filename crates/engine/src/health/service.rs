//! The health service: the checker loop behind `watch` (and the dashboard). One process per
//! site runs a site's checks (a singleton lease per site, `health-checker:SITE`); other
//! processes of that site stand by and take over within the lease's TTL when it stops.
//!
//! Each tick: every server not on an operator hold whose interval has passed, and whose previous
//! check has finished, gets a check task (bounded by `concurrency`, each with its own timeout,
//! so there is no sweep barrier a hung host could hold). Samples feed the hysteresis tracker;
//! crossings open or resolve incidents. Failed jobs, recovery, reminders and retention run on
//! the same tick.

use super::checker::{self, CheckParams};
use super::config::HealthConfig;
use super::maintenance::{MaintenanceView, Window};
use super::notify::Notifier;
use super::tracker::Tracker;
use crate::engine::Engine;
use color_eyre::eyre::{Result, eyre};
use ptui_types::server::{Server, ServerStatus};
use ptui_types::time::now_ms;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub const CHECKER_LEASE: &str = "health-checker";
pub const LEASE_TTL_MS: i64 = 15_000;

/// The checker lease of one site.
pub fn site_lease(site: &str) -> String {
    format!("{CHECKER_LEASE}:{site}")
}

pub struct HealthService {
    pub engine: Engine,
    pub cfg: HealthConfig,
    pub(crate) windows: Vec<Window>,
    pub notifier: Notifier,
    pub(crate) tracker: Mutex<Tracker>,
    inflight: Mutex<HashSet<i64>>,
    pub(crate) recovering: Mutex<HashSet<i64>>,
    /// Jobs started by recovery: their failures are part of the incident, not new incidents.
    pub(crate) recovery_jobs: Mutex<HashSet<i64>>,
    sem: Arc<Semaphore>,
    holder: String,
    /// The servers of the sites whose checker lease this process holds: only their samples,
    /// failed jobs, recovery and reminders are handled here. None until the loop runs (a
    /// service driven tick by tick, as in unit tests, handles every server).
    pub(crate) mine: Mutex<Option<HashSet<i64>>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HealthService {
    pub fn new(engine: Engine, cfg: HealthConfig) -> Result<Arc<Self>> {
        let windows = cfg
            .maintenance
            .iter()
            .map(|w| w.compile())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| eyre!("maintenance window: {e}"))?;
        let notifier = Notifier::start(&engine, &cfg.notifications);
        let tracker = Tracker::new(cfg.health.failure_threshold, cfg.health.success_threshold);
        Ok(Arc::new(HealthService {
            sem: Arc::new(Semaphore::new(cfg.health.concurrency.max(1))),
            holder: format!(
                "{}:{}",
                ptui_types::identity::process_owner(),
                std::process::id()
            ),
            engine,
            cfg,
            windows,
            notifier,
            tracker: Mutex::new(tracker),
            inflight: Mutex::new(HashSet::new()),
            recovering: Mutex::new(HashSet::new()),
            recovery_jobs: Mutex::new(HashSet::new()),
            mine: Mutex::new(None),
        }))
    }

    pub fn params(&self) -> CheckParams {
        let h = &self.cfg.health;
        CheckParams {
            timeout: h.timeout.0,
            disk_threshold: h.disk_threshold,
            memory_threshold: h.memory_threshold,
            app_timeout_secs: h.app_timeout.0.as_secs().max(1),
        }
    }

    pub fn maintenance(&self) -> MaintenanceView {
        let manual = self.engine.store().active_maintenance().unwrap_or_default();
        MaintenanceView::new(&manual, &self.windows, chrono::Utc::now())
    }

    /// Servers the checker watches: everything not on an operator hold.
    pub fn watched(servers: Vec<Server>) -> Vec<Server> {
        servers
            .into_iter()
            .filter(|s| !s.status.is_operator_hold())
            .collect()
    }

    /// Whether this process handles a server's health now (it holds its site's lease).
    pub(crate) fn is_mine(&self, server_id: i64) -> bool {
        lock(&self.mine)
            .as_ref()
            .is_none_or(|m| m.contains(&server_id))
    }

    /// Takes or renews the checker lease of each site this process serves; returns the
    /// sites held now. A site whose lease is newly taken (a start, or a takeover from a
    /// process that stopped) re-reads its open incidents first.
    fn renew_site_leases(&self, held: &mut HashSet<String>) {
        let store = self.engine.store();
        for site in self.engine.sites() {
            match store.try_singleton(&site_lease(site), &self.holder, LEASE_TTL_MS) {
                Ok(true) => {
                    if held.insert(site.clone()) {
                        tracing::info!("running the health checks of site {site}");
                        self.seed_tracker();
                    }
                }
                Ok(false) => {
                    if held.remove(site) {
                        tracing::warn!(
                            "lost the health-checker lease of site {site} to another process"
                        );
                    }
                }
                Err(e) => tracing::warn!("health lease of site {site}: {e:#}"),
            }
        }
    }

    /// Runs the loop until `stop` is cancelled.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let store = self.engine.store().clone();
        // Wait for the lease of at least one site.
        let mut held: HashSet<String> = HashSet::new();
        let mut told = false;
        loop {
            self.renew_site_leases(&mut held);
            if !held.is_empty() {
                break;
            }
            if !told {
                tracing::info!(
                    "other provision-tui processes run the health checks of site(s) {}; standing by",
                    self.engine.sites().join(", ")
                );
                told = true;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
        let tick = (self.cfg.health.interval.0 / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut next_due: HashMap<i64, tokio::time::Instant> = HashMap::new();
        let mut job_mark = now_ms();
        let mut last_lease = tokio::time::Instant::now();
        let mut last_retention = None::<tokio::time::Instant>;
        let mut last_housekeeping = tokio::time::Instant::now();
        loop {
            if stop.is_cancelled() {
                break;
            }
            let now = tokio::time::Instant::now();
            // Renewed well inside the TTL; a site held by no one is taken within 2 s.
            let every = if held.len() == self.engine.sites().len() {
                5
            } else {
                2
            };
            if now.duration_since(last_lease) > Duration::from_secs(every) {
                last_lease = now;
                self.renew_site_leases(&mut held);
            }
            let servers: Vec<Server> = Self::watched(store.list_servers().unwrap_or_default())
                .into_iter()
                .filter(|s| held.contains(&s.site))
                .collect();
            *lock(&self.mine) = Some(servers.iter().map(|s| s.id).collect());
            let policies: HashMap<i64, i64> = store
                .all_health_policies()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| p.interval_ms.map(|i| (p.server_id, i)))
                .collect();
            let known: HashSet<i64> = servers.iter().map(|s| s.id).collect();
            next_due.retain(|id, _| known.contains(id));
            for s in servers {
                if s.status == ServerStatus::ForceRebuild {
                    self.clone().force_rebuild(&s);
                }
                let due = next_due.get(&s.id).is_none_or(|d| *d <= now);
                if !due || !lock(&self.inflight).insert(s.id) {
                    continue;
                }
                let every = policies
                    .get(&s.id)
                    .map(|ms| Duration::from_millis((*ms).max(100) as u64))
                    .unwrap_or(self.cfg.health.interval.0);
                next_due.insert(s.id, now + every);
                let svc = self.clone();
                tokio::spawn(async move {
                    let id = s.id;
                    let permit = svc.sem.clone().acquire_owned().await;
                    let sample = checker::check_server(&svc.engine, &s, &svc.params()).await;
                    drop(permit);
                    svc.handle_sample(sample);
                    lock(&svc.inflight).remove(&id);
                });
            }
            if now.duration_since(last_housekeeping) >= Duration::from_millis(500) {
                last_housekeeping = now;
                job_mark = self.on_finished_jobs(job_mark);
                self.clone().recovery_tick();
                self.reminder_tick();
            }
            if last_retention.is_none_or(|t| now.duration_since(t) > Duration::from_secs(3600)) {
                last_retention = Some(now);
                let h = &self.cfg.health;
                match store.apply_retention(
                    h.raw_retention.0.as_millis() as i64,
                    h.hourly_retention.0.as_millis() as i64,
                ) {
                    Ok(r) if r.rolled_up + r.hourly_pruned > 0 => {
                        tracing::info!(
                            "health retention: {} samples rolled up, {} hourly rows pruned",
                            r.rolled_up,
                            r.hourly_pruned
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("health retention failed: {e:#}"),
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(tick) => {}
            }
        }
        for site in &held {
            if let Err(e) = store.release_singleton(&site_lease(site), &self.holder) {
                // Another process takes over once the lease's TTL passes.
                tracing::warn!("cannot release the health-checker lease of site {site}: {e:#}");
            }
        }
    }

    /// Open incidents start DOWN, so a restart neither re-opens nor forgets them.
    fn seed_tracker(&self) {
        let mut t = lock(&self.tracker);
        for i in self.engine.store().open_incidents().unwrap_or_default() {
            if let Some(sid) = i.server_id
                && i.kind != super::IncidentKind::ProvisioningFailed
                && i.kind != super::IncidentKind::ForceRebuild
            {
                t.assume_down(sid, i.kind, i.app_id.clone());
            }
        }
    }

    /// Starts the loop in the background; cancel the token to stop it.
    pub fn spawn(self: &Arc<Self>) -> CancellationToken {
        let stop = CancellationToken::new();
        tokio::spawn(self.clone().run(stop.clone()));
        stop
    }
}
