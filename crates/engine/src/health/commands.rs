//! What front ends ask of the health side: start the checker, check now, record samples,
//! change a server's health policy, manual maintenance windows. Reads are in queries.rs.

use super::config::HealthConfig;
use super::service::HealthService;
use super::{Sample, ServerHealthPolicy, checker};
use crate::engine::Engine;
use color_eyre::eyre::{Result, bail};
use tokio_util::sync::CancellationToken;

impl Engine {
    /// Starts the health checker (checks, incidents, recovery, notifications) in the background;
    /// cancel the token to stop it. With another checker on this database, the singleton lease
    /// keeps this one on standby.
    pub fn start_health(&self, cfg: HealthConfig) -> Result<CancellationToken> {
        Ok(HealthService::new(self.clone(), cfg)?.spawn())
    }

    /// One check of these servers now (every watched server when `names` is empty), stored
    /// like the checker's samples; a sample taken in a maintenance window says so.
    pub async fn check_now(&self, cfg: HealthConfig, names: &[String]) -> Result<Vec<Sample>> {
        let servers = if names.is_empty() {
            HealthService::watched(self.servers()?)
        } else {
            names
                .iter()
                .map(|n| self.server(n))
                .collect::<Result<Vec<_>>>()?
        };
        if servers.is_empty() {
            bail!("no servers to check; add one with `provision-tui server add`");
        }
        let svc = HealthService::new(self.clone(), cfg)?;
        let maint = svc.maintenance();
        let mut samples =
            checker::sweep(self, &servers, &svc.params(), svc.cfg.health.concurrency).await;
        for s in &mut samples {
            s.maintenance = maint.reason(&s.server).is_some();
        }
        self.record_samples(&samples)?;
        Ok(samples)
    }

    /// Stores health samples taken outside the checker (a sweep, a benchmark).
    pub fn record_samples(&self, samples: &[Sample]) -> Result<()> {
        self.store().insert_samples(samples)
    }

    /// Replaces a server's health policy and audits the change.
    pub fn set_health_policy(&self, server: &str, p: &ServerHealthPolicy) -> Result<()> {
        self.store().set_health_policy(p)?;
        self.audit(
            "server.policy",
            server,
            &format!(
                "recovery={} base={} interval={}",
                p.recovery.as_str(),
                p.base_installer.as_deref().unwrap_or("-"),
                // Plain words in the audit log, not Rust's `Some(15000)`.
                p.interval_ms
                    .map(ptui_types::time::human_ms)
                    .unwrap_or_else(|| "default".into())
            ),
        )
    }

    /// Starts a manual maintenance window on a server (None: the whole fleet) until `ends_at`
    /// (None: until turned off), and audits it under `label`.
    pub fn maintenance_on(
        &self,
        server_id: Option<i64>,
        label: &str,
        ends_at: Option<i64>,
        reason: &str,
    ) -> Result<()> {
        self.store()
            .maintenance_on(server_id, ends_at, reason, self.operator())?;
        self.audit("maintenance.on", label, reason)
    }

    /// Ends the manual windows of a server (None: the fleet-wide ones), audited under `label`;
    /// returns how many ended.
    pub fn maintenance_off(&self, server_id: Option<i64>, label: &str) -> Result<usize> {
        let n = self.store().maintenance_off(server_id)?;
        self.audit("maintenance.off", label, "")?;
        Ok(n)
    }
}
