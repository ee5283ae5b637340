//! Sites: a server is in one site, a process serves one or more (`--site`, `sites:` in
//! config.yml). A process runs jobs and health checks only for servers of its sites; a job
//! started for another site's server is queued in the database and claimed by a live process
//! of that site (`serve_sites`: the dashboard and `watch` register as runners and claim).
//! See docs/MULTI-BASTION.md.

use crate::access::Change;
use crate::engine::Engine;
use crate::events::Event;
use crate::jobs::runner;
use color_eyre::eyre::{Result, bail, eyre};
use ptui_catalog::ResolvedInputs;
use ptui_catalog::validate::ResolvedInput;
use ptui_store::sites::Runner;
use ptui_types::error::ErrorKind;
use ptui_types::identity;
use ptui_types::job::Job;
use ptui_types::secret::Secret;
use ptui_types::server::Server;
use ptui_types::time::now_ms;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A runner not heartbeated for this long is dead (the heartbeat comes every 5 s).
pub const RUNNER_TTL_MS: i64 = 20_000;
const RUNNER_HEARTBEAT: Duration = Duration::from_secs(5);
/// How often a serving process looks for queued jobs of its sites.
const CLAIM_EVERY: Duration = Duration::from_millis(500);

/// One site as the front ends show it: its servers and the live processes serving it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SiteReport {
    pub site: String,
    pub servers: usize,
    /// Jobs queued for the site that no process has claimed yet.
    pub waiting_jobs: usize,
    pub runners: Vec<Runner>,
    /// The process running the site's health checks (its lease holder), if it is live.
    pub checker: Option<String>,
    /// Whether this process serves the site.
    pub served_here: bool,
}

impl SiteReport {
    /// No live process serves the site: its jobs wait and its servers go unchecked.
    pub fn unserved(&self) -> bool {
        self.runners.is_empty()
    }
}

/// Stops serving when dropped: the runner row is removed, the loops end.
pub struct SiteService {
    stop: CancellationToken,
    engine: Engine,
}

impl Drop for SiteService {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Err(e) = self.engine.store().remove_runner(self.engine.owner()) {
            tracing::warn!("cannot remove this process's runner row: {e:#}");
        }
    }
}

impl Engine {
    /// The sites this process serves.
    pub fn sites(&self) -> &[String] {
        &self.config().sites
    }

    pub fn serves(&self, site: &str) -> bool {
        self.sites().iter().any(|s| s == site)
    }

    /// Refuses to reach a server of a site this process does not serve.
    pub fn require_site(&self, server: &Server) -> Result<()> {
        if self.serves(&server.site) {
            return Ok(());
        }
        bail!(
            "server {} is in site {}, and this process serves {}: only a provision-tui process of site {} reaches it (run it on that site's bastion, or pass --site {})",
            server.name,
            server.site,
            self.sites().join(", "),
            server.site,
            server.site
        )
    }

    /// Moves a server to another site (`server site`, the dashboard's server form).
    pub fn set_server_site(&self, name: &str, site: &str) -> Result<Server> {
        self.permit(Change::EditServer, name)?;
        ptui_types::server::validate_site(site).map_err(|e| eyre!(e))?;
        let old = self.store().require_server(name)?;
        let server = self.store().set_server_site(old.id, site)?;
        self.audit("server.site", name, &format!("{} -> {site}", old.site))?;
        self.emit(Event::ServerChanged {
            server: server.clone(),
        });
        Ok(server)
    }

    /// The runners whose heartbeat is fresh (and, on this host, whose process exists).
    pub fn live_runners(&self) -> Result<Vec<Runner>> {
        let since = now_ms() - RUNNER_TTL_MS;
        Ok(self
            .store()
            .runners()?
            .into_iter()
            .filter(|r| r.heartbeat_at >= since && identity::owner_alive(&r.id))
            .collect())
    }

    /// Sites that have servers and no live process serving them.
    pub fn unserved_sites(&self) -> Result<Vec<String>> {
        let live = self.live_runners()?;
        Ok(self
            .store()
            .server_sites()?
            .into_iter()
            .filter(|site| !live.iter().any(|r| r.sites.contains(site)))
            .collect())
    }

    /// Every site that has servers or a live process, with who serves it (a short-lived
    /// command serves no one: only runners count).
    pub fn site_reports(&self) -> Result<Vec<SiteReport>> {
        let runners = self.live_runners()?;
        let servers = self.store().list_servers()?;
        let waiting = self.store().unclaimed_jobs()?;
        let mut sites: BTreeMap<String, SiteReport> = BTreeMap::new();
        let mut entry = |site: &str| {
            sites
                .entry(site.to_string())
                .or_insert_with(|| SiteReport {
                    site: site.to_string(),
                    servers: 0,
                    waiting_jobs: 0,
                    runners: Vec::new(),
                    checker: None,
                    served_here: self.serves(site),
                })
                .clone()
        };
        for s in &servers {
            entry(&s.site);
        }
        for r in &runners {
            for site in &r.sites {
                entry(site);
            }
        }
        let fresh = now_ms() - crate::health::service::LEASE_TTL_MS;
        for rep in sites.values_mut() {
            rep.checker = self
                .store()
                .singleton_holder(&crate::health::service::site_lease(&rep.site))?
                .filter(|(_, at)| *at >= fresh)
                .map(|(holder, _)| holder);
            rep.servers = servers.iter().filter(|s| s.site == rep.site).count();
            rep.runners = runners
                .iter()
                .filter(|r| r.sites.contains(&rep.site))
                .cloned()
                .collect();
            rep.waiting_jobs = waiting
                .iter()
                .filter(|j| {
                    j.server_id
                        .and_then(|id| servers.iter().find(|s| s.id == id))
                        .is_some_and(|s| s.site == rep.site)
                })
                .count();
        }
        Ok(sites.into_values().collect())
    }

    /// Registers this process as a runner of its sites and, while the returned service lives,
    /// heartbeats it and claims the jobs queued for its sites. For front ends that stay open
    /// (the dashboard, `watch`). Needs a tokio runtime; None when looking only.
    pub fn serve_sites(&self, role: &str) -> Result<Option<SiteService>> {
        if !self.access().housekeeping() {
            return Ok(None);
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return Ok(None);
        };
        let now = now_ms();
        let row = Runner {
            id: self.owner().to_string(),
            hostname: identity::hostname(),
            pid: std::process::id() as i64,
            sites: self.sites().to_vec(),
            role: role.to_string(),
            started_at: now,
            heartbeat_at: now,
        };
        self.store().register_runner(&row)?;
        let stop = CancellationToken::new();
        let weak = self.downgrade();
        let token = stop.clone();
        rt.spawn(async move {
            let mut last_beat = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(CLAIM_EVERY) => {}
                }
                let Some(engine) = Engine::upgrade(&weak) else {
                    break;
                };
                if last_beat.elapsed() >= RUNNER_HEARTBEAT {
                    last_beat = tokio::time::Instant::now();
                    let mut beat = row.clone();
                    beat.heartbeat_at = now_ms();
                    // A row removed by hand (or a database restored) is written again.
                    if let Err(e) = engine.store().register_runner(&beat) {
                        tracing::warn!("runner heartbeat failed: {e:#}");
                    }
                }
                engine.claim_queued();
            }
        });
        Ok(Some(SiteService {
            stop,
            engine: self.clone(),
        }))
    }

    /// Claims and starts every job queued for this process's sites.
    fn claim_queued(&self) {
        loop {
            match self.store().claim_queued_job(self.sites(), self.owner()) {
                Ok(Some(job)) => self.start_claimed(job),
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("claiming queued jobs failed: {e:#}");
                    return;
                }
            }
        }
    }

    /// Runs a job this process claimed: its installer from this process's catalog (the same
    /// version the operator chose), its inputs from the job row, its secrets unsealed.
    fn start_claimed(&self, job: Job) {
        // A rollback's configuration copy is chosen where it is started; not carried in the row.
        let inputs = if job.action == ptui_types::job::JobAction::Rollback {
            Err((
                ptui_types::error::ErrorKind::Validation,
                "a rollback is not queued across sites: run `provision-tui rollback` on a bastion of the server's site".to_string(),
            ))
        } else {
            self.claimed_inputs(&job)
        };
        let inputs = match inputs {
            Ok(x) => x,
            Err((kind, why)) => {
                match self.store().fail_claimed_job(job.id, kind, &why) {
                    Ok(done) => self.emit(Event::JobFinished { job: done }),
                    Err(e) => tracing::warn!("job #{}: cannot record {why}: {e:#}", job.id),
                }
                return;
            }
        };
        let (installer, inputs) = inputs;
        let ctx = self.job_context();
        let token = CancellationToken::new();
        ctx.running.insert(job.id, token.clone());
        self.emit(Event::JobQueued { job: job.clone() });
        tokio::spawn(runner::run_job(ctx, job, installer, inputs, token, None));
    }

    fn claimed_inputs(
        &self,
        job: &Job,
    ) -> Result<(ptui_catalog::Installer, ResolvedInputs), (ErrorKind, String)> {
        let here = self.owner();
        let catalog = self.catalog();
        let installer = catalog
            .get(&job.app_id)
            .ok_or_else(|| {
                (
                    ErrorKind::Validation,
                    format!("installer {} is not in the catalog of {here}, which claimed the job: install the same catalog on every bastion", job.app_id),
                )
            })?
            .clone();
        if installer.manifest.version != job.app_version {
            return Err((
                ErrorKind::Validation,
                format!(
                    "{here} has {} v{}, not v{} which the job was started with: nothing was run; bring the bastions' catalogs to one version",
                    job.app_id, installer.manifest.version, job.app_version
                ),
            ));
        }
        crate::jobs::launch::pin_check(&installer)
            .map_err(|e| (ErrorKind::Validation, format!("on {here}: {e}")))?;
        let secrets = self
            .job_secrets(job)
            .map_err(|why| (ErrorKind::Configuration, why))?;
        let given = job.inputs.as_object().cloned().unwrap_or_default();
        let mut out = ResolvedInputs::default();
        for spec in &installer.manifest.inputs {
            let value = if spec.is_sensitive() {
                secrets.get(&spec.name).cloned()
            } else {
                given
                    .get(&spec.name)
                    .and_then(|v| v.as_str().map(str::to_string))
            };
            if let Some(value) = value {
                out.inputs.push(ResolvedInput {
                    name: spec.name.clone(),
                    env: spec.env_name(),
                    value: Secret::new(value),
                    sensitive: spec.is_sensitive(),
                });
            }
        }
        Ok((installer, out))
    }

    /// The job's sealed sensitive inputs, opened with this bastion's secrets key.
    fn job_secrets(&self, job: &Job) -> Result<BTreeMap<String, String>, String> {
        let (Some(sid), Ok(Some(blob))) = (job.server_id, self.store().job_sealed_secrets(job.id))
        else {
            return Ok(BTreeMap::new());
        };
        let key = match self.secrets_key(false) {
            Ok(Some(k)) => k,
            _ => {
                return Err(format!(
                    "{} has no secrets key to open the job's secrets: give every bastion the same key (PROVISION_TUI_SECRETS_KEY_FILE)",
                    self.owner()
                ));
            }
        };
        crate::secrets::unseal(&key, sid, &job.app_id, &blob).map_err(|why| {
            format!(
                "the job's secrets cannot be opened on {}: {why}",
                self.owner()
            )
        })
    }

    /// A system line on a job queued for another site: who will run it, or that no one can yet.
    pub(crate) fn queued_for_site_line(&self, server: &Server) -> String {
        let serving: Vec<String> = self
            .live_runners()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.sites.contains(&server.site))
            .map(|r| format!("{} on {}", r.role, r.id))
            .collect();
        if serving.is_empty() {
            format!(
                "queued for site {}: no live provision-tui process serves it, so the job waits until one starts there (`provision-tui watch --site {}` on its bastion)",
                server.site, server.site
            )
        } else {
            format!(
                "queued for site {}, served by {}",
                server.site,
                serving.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptui_store::jobs::NewJob;
    use ptui_types::config::Config;
    use ptui_types::job::{JobAction, JobStatus};
    use ptui_types::server::ServerSpec;

    #[test]
    fn a_job_whose_claimer_died_before_sending_it_is_queued_again_once() {
        let tmp = tempfile::tempdir().expect("tmp");
        let config = Config::new(Some(tmp.path().join("state.db")), vec![]);
        let eng = Engine::open(config.clone()).expect("open");
        let srv = eng
            .add_server(&ServerSpec {
                name: "b1".into(),
                host: "10.0.0.1".into(),
                port: 22,
                user: "root".into(),
                site: Some("b".into()),
                ..Default::default()
            })
            .expect("add");
        let queue = |eng: &Engine| {
            eng.store()
                .create_site_job(
                    &NewJob {
                        server_id: srv.id,
                        server_name: "b1",
                        app_id: "demo",
                        app_version: "1",
                        action: JobAction::Install,
                        masked_inputs: &serde_json::json!({}),
                        owner: "",
                    },
                    "b",
                )
                .expect("queue")
        };
        let (dead, elsewhere) = (queue(&eng), queue(&eng));
        let sites = vec!["b".to_string()];
        // A process of this host that is gone, and one on another host (alive as far as
        // anyone here can tell).
        let gone = format!("99999999@{}", identity::hostname());
        let claim = |owner: &str| eng.store().claim_queued_job(&sites, owner).expect("claim");
        assert_eq!(claim(&gone).map(|j| j.id), Some(dead.id));
        assert_eq!(claim("1@elsewhere").map(|j| j.id), Some(elsewhere.id));
        drop(eng);
        // The next open sweeps: the dead claimer's job is queued again, unowned; the other
        // stays with its claimer.
        let eng = Engine::open(config).expect("reopen");
        let again = eng.job(dead.id).expect("job");
        assert_eq!((again.status, again.owner), (JobStatus::Queued, None));
        let lines = eng.job_logs(dead.id, 1, 100).expect("log");
        assert!(
            lines
                .iter()
                .any(|l| l.text.contains("queued again for its site")),
            "{lines:?}"
        );
        let kept = eng.job(elsewhere.id).expect("job");
        assert_eq!(kept.owner.as_deref(), Some("1@elsewhere"));
        assert_eq!(kept.status, JobStatus::Queued);
        // Exactly one process of the site claims it now.
        let sites = vec!["b".to_string()];
        assert_eq!(
            eng.store()
                .claim_queued_job(&sites, "2@b")
                .expect("claim")
                .map(|j| j.id),
            Some(dead.id)
        );
        assert!(
            eng.store()
                .claim_queued_job(&sites, "3@b")
                .expect("claim")
                .is_none()
        );
    }
}
