//! The engine: owns the store, the catalog and the running jobs. Front ends call its methods
//! (commands) and subscribe to its events; they never touch SSH or SQL themselves.

use crate::access::{Access, Change};
use crate::context::{JobContext, RunningJobs};
use crate::ssh_targets::{self, SudoPasswords};
use color_eyre::eyre::{Result, bail, eyre};
use ptui_catalog::{Catalog, InputError};
use ptui_ssh::{HostKeyVerdict, KnownHosts, SshTarget};
use ptui_store::Store;
use ptui_types::config::Config;
use ptui_types::error::{ErrorKind, KindError};
use ptui_types::identity;
use ptui_types::job::JobFilter;
use ptui_types::job::{Job, JobAction, JobStatus, LogLine};
use ptui_types::secret::Secret;
use ptui_types::server::{Server, ServerSpec, ServerStatus};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{Semaphore, broadcast};

pub use crate::events::Event;

/// An install (or uninstall) on one or more servers.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    pub app: String,
    pub servers: Vec<String>,
    /// Raw values by input name; validated against the manifest.
    pub inputs: BTreeMap<String, String>,
    pub action: JobAction,
}

/// Why an install request was refused before any job started.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    Invalid(String),
    #[error("invalid inputs for {app}:\n{}", .errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Inputs {
        app: String,
        errors: Vec<InputError>,
    },
}

/// The result of looking at a server's host key.
#[derive(Debug, Clone)]
pub struct HostKeyScan {
    pub server: String,
    pub fingerprint: String,
    pub verdict: HostKeyVerdict,
    key: russh::keys::ssh_key::PublicKey,
}

impl HostKeyScan {
    /// A scan result for a key obtained elsewhere (tests and previews); the verdict is given.
    pub fn from_key(
        server: &str,
        key: russh::keys::ssh_key::PublicKey,
        verdict: HostKeyVerdict,
    ) -> Self {
        HostKeyScan {
            server: server.to_string(),
            fingerprint: ptui_ssh::known_hosts::fingerprint(&key),
            verdict,
            key,
        }
    }
}

pub(crate) struct Inner {
    config: Config,
    store: Store,
    /// Loaded on first use: commands that never look at installers (`server list`, `jobs`...)
    /// never read or parse a manifest.
    catalog: OnceLock<Arc<Catalog>>,
    events: broadcast::Sender<Event>,
    running: RunningJobs,
    known_hosts: KnownHosts,
    operator: String,
    owner: String,
    slots: Arc<Semaphore>,
    /// Permits `slots` was created with plus those added for wide fan-outs.
    slots_total: AtomicUsize,
    pool: Arc<ptui_ssh::Pool>,
    sudo_passwords: SudoPasswords,
    access: Access,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Opens the database and sorts out jobs orphaned by a dead process (see
    /// `jobs/adopt.rs`). The catalog is loaded when first asked for (`catalog()`).
    pub fn open(config: Config) -> Result<Self> {
        let access = Access::load(config.access.readonly.clone())?;
        let readonly = access.readonly.is_some();
        let store = match &config.database_url {
            Some(url) if readonly => Store::open_postgres_read_only(url, None)?,
            Some(url) => Store::open_postgres(url)?,
            None => {
                access.check_open(&config.db_path)?;
                // Looking only: SQLite's read-only mode, no migration, no key file created.
                match readonly {
                    true => Store::open_read_only(&config.db_path)?,
                    false => Store::open(&config.db_path)?,
                }
            }
        };
        // Without its key (an unwritable directory) the log is still written, unchained, and
        // `audit verify` names those rows.
        if let Err(e) = crate::secrets::install_audit_key(&config, &store, !readonly) {
            tracing::warn!("audit rows will not be chained: {e:#}");
        }
        let (events, _) = broadcast::channel(8192);
        let known_hosts = KnownHosts::new(
            config.known_hosts_path.clone(),
            config.user_known_hosts_path.clone(),
        );
        let slots_total = config.jobs.max_concurrent.max(1);
        let slots = Arc::new(Semaphore::new(slots_total));
        let pool = Arc::new(ptui_ssh::Pool::new(
            config.ssh.clone(),
            known_hosts.clone(),
            config.ssh.idle_timeout,
            config.ssh.max_age,
        ));
        let engine = Engine {
            inner: Arc::new(Inner {
                config,
                store,
                catalog: OnceLock::new(),
                events,
                running: RunningJobs::default(),
                known_hosts,
                operator: identity::operator(),
                owner: identity::process_owner(),
                slots_total: AtomicUsize::new(slots_total),
                slots,
                pool,
                sudo_passwords: SudoPasswords::default(),
                access,
            }),
        };
        engine.sweep_orphans()?;
        engine.spawn_pool_reaper();
        Ok(engine)
    }

    /// Closes idle pooled connections on time even when nothing leases again (the pool reaps
    /// only inside `get` otherwise). Needs a tokio runtime; without one there is nothing to
    /// reap on time for. Holds a `Weak`, so it never keeps the engine alive.
    fn spawn_pool_reaper(&self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let idle = self.inner.config.ssh.idle_timeout;
        // interval() panics on zero; a 0 s idle timeout still gets a sane tick.
        let every = (idle / 2)
            .min(std::time::Duration::from_secs(30))
            .max(std::time::Duration::from_millis(100));
        let weak = Arc::downgrade(&self.inner);
        rt.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                inner.pool.reap();
            }
        });
    }

    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<Engine> {
        weak.upgrade().map(|inner| Engine { inner })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// This process as recorded on the jobs it follows and its runner row (`pid@host`).
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The database as the operator may see it: the SQLite file, or the PostgreSQL URL with
    /// its password replaced by `***`.
    pub fn database_location(&self) -> String {
        self.inner.store.location().to_string()
    }

    pub fn uses_postgres(&self) -> bool {
        self.inner.store.is_postgres()
    }

    pub(crate) fn access_ref(&self) -> &Access {
        &self.inner.access
    }

    pub(crate) fn known_hosts(&self) -> &KnownHosts {
        &self.inner.known_hosts
    }

    /// The database, for the engine's own modules; front ends go through engine methods.
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The bundled installers plus the `--installers` directories, loaded once per process.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner
            .catalog
            .get_or_init(|| Arc::new(Catalog::load(&self.inner.config.installer_dirs)))
            .clone()
    }

    /// What a job needs from the engine (see `context.rs`).
    pub(crate) fn job_context(&self) -> JobContext {
        let inner = &self.inner;
        JobContext {
            store: inner.store.clone(),
            pool: inner.pool.clone(),
            events: inner.events.clone(),
            slots: inner.slots.clone(),
            running: inner.running.clone(),
            sudo: inner.sudo_passwords.clone(),
            catalog: self.catalog(),
            settings: inner.config.jobs.clone(),
            kill_grace_override: inner.config.ssh.kill_grace,
            owner: inner.owner.clone(),
        }
    }

    /// Grows the process-wide job slots so a wide fan-out is not capped below its concurrency.
    pub(crate) fn ensure_job_slots(&self, n: usize) {
        let total = &self.inner.slots_total;
        let cur = total.load(Ordering::SeqCst);
        if n > cur
            && total
                .compare_exchange(cur, n, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.inner.slots.add_permits(n - cur);
        }
    }

    pub fn operator(&self) -> &str {
        &self.inner.operator
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    pub(crate) fn emit(&self, e: Event) {
        // No subscriber is not an error: events are for whoever listens.
        let _ = self.inner.events.send(e);
    }

    /// Records an action of this operator in the audit log.
    pub(crate) fn audit(&self, action: &str, target: &str, details: &str) -> Result<()> {
        self.inner
            .store
            .audit(&self.inner.operator, action, target, details)
    }

    /// Audits an action whose outcome does not depend on its audit row (a fan-out's progress):
    /// a failed write is logged, not returned.
    pub(crate) fn audit_or_warn(&self, action: &str, target: &str, details: &str) {
        if let Err(e) = self.audit(action, target, details) {
            tracing::warn!("audit of {action} {target} failed: {e:#}");
        }
    }

    // ---- servers ----

    pub fn add_server(&self, spec: &ServerSpec) -> Result<Server> {
        self.permit(Change::AddServer, &spec.name)?;
        ptui_types::server::validate_server_name(&spec.name).map_err(|e| eyre!(e))?;
        if let Some(p) = spec.problem() {
            bail!("server {}: {}", spec.name, p.as_flag());
        }
        let server = self
            .inner
            .store
            .add_server(spec, ServerStatus::PendingSetup)?;
        self.audit(
            "server.add",
            &server.name,
            &format!("{} tags={}", server.address(), server.tags.join(",")),
        )?;
        self.emit(Event::ServerChanged {
            server: server.clone(),
        });
        Ok(server)
    }

    /// Changes a server's connection fields and tags (not its name or status); audited as
    /// `server.edit`. Its pooled connection is dropped so the next job dials the new address.
    pub fn edit_server(&self, name: &str, spec: &ServerSpec) -> Result<Server> {
        self.permit(Change::EditServer, name)?;
        let old = self.inner.store.require_server(name)?;
        let mut spec = spec.clone();
        spec.name = old.name.clone();
        if spec.password_env.is_none() {
            spec.password_env = old.password_env.clone();
        }
        if let Some(p) = spec.problem() {
            bail!("server {}: {}", spec.name, p.as_flag());
        }
        let server = self.inner.store.update_server_spec(old.id, &spec)?;
        self.inner.pool.invalidate(name);
        self.audit(
            "server.edit",
            name,
            &format!("{} tags={}", server.address(), server.tags.join(",")),
        )?;
        self.emit(Event::ServerChanged {
            server: server.clone(),
        });
        Ok(server)
    }

    pub fn remove_server(&self, name: &str) -> Result<Server> {
        self.permit(Change::RemoveServer, name)?;
        let server = self.inner.store.remove_server(name)?;
        self.inner.pool.invalidate(name);
        self.forget_sudo_password(server.id);
        self.audit("server.rm", name, &server.address())?;
        self.emit(Event::ServerRemoved {
            name: name.to_string(),
        });
        Ok(server)
    }

    pub fn set_server_status(&self, name: &str, status: ServerStatus) -> Result<Server> {
        self.permit(Change::ServerStatus, name)?;
        let server = self.inner.store.require_server(name)?;
        if server.status == status {
            bail!("server {name} is already {status}");
        }
        let from = server.status;
        let server = self.inner.store.transition_server(
            server.id,
            status,
            &format!("set by {}", self.inner.operator),
            None,
        )?;
        self.audit("server.set_status", name, &format!("{from} -> {status}"))?;
        self.emit(Event::ServerChanged {
            server: server.clone(),
        });
        Ok(server)
    }

    /// Sets how jobs escalate on a server. Only the env var's name (or that the password is to
    /// be asked for) is stored, never a password.
    pub fn set_server_sudo(
        &self,
        name: &str,
        settings: &ptui_types::records::SudoSettings,
    ) -> Result<()> {
        self.permit(Change::SudoSettings, name)?;
        if let Some(var) = &settings.password_env
            && !ptui_ssh::exec::valid_env_name(var)
        {
            bail!("--password-env wants an environment variable name like SUDO_PW, got {var:?}");
        }
        if settings.prompt && (settings.password_env.is_some() || settings.escalate == Some(false))
        {
            bail!(
                "--prompt asks for the sudo password; it goes with neither --password-env nor --never"
            );
        }
        let server = self.inner.store.require_server(name)?;
        self.inner.store.set_server_sudo(server.id, settings)?;
        self.inner.pool.invalidate(name);
        if !settings.prompt {
            self.forget_sudo_password(server.id);
        }
        self.audit(
            "server.sudo",
            name,
            &format!(
                "escalate={:?} password_env={} prompt={}",
                settings.escalate,
                settings.password_env.as_deref().unwrap_or("-"),
                settings.prompt
            ),
        )?;
        Ok(())
    }

    /// Gives the sudo password of a `--prompt` server to this process (memory only).
    pub fn set_sudo_password(&self, name: &str, password: Secret) -> Result<()> {
        self.permit(Change::SudoPassword, name)?;
        let server = self.inner.store.require_server(name)?;
        if password.expose().is_empty() {
            bail!("the sudo password of {name} is empty");
        }
        // The password is the first line of stdin for `sudo -S`: a newline would end it early.
        if password.expose().contains(['\n', '\0']) {
            bail!("a sudo password cannot contain a newline or NUL");
        }
        self.inner.sudo_passwords.set(server.id, password);
        // A pooled connection carries the target it was dialled with (and its sudo mode).
        self.inner.pool.invalidate(name);
        Ok(())
    }

    fn forget_sudo_password(&self, server_id: i64) {
        self.inner.sudo_passwords.forget(server_id);
    }

    /// Whether a job on this server would need a prompted sudo password this process lacks
    /// (`--prompt` set, a non-root login, and no password given yet).
    pub fn needs_sudo_password(&self, server: &Server) -> Result<bool> {
        ssh_targets::needs_sudo_password(&self.inner.store, &self.inner.sudo_passwords, server)
    }

    /// Of these server names, those that need a sudo password before a job can run, as
    /// (name, `user@name` for the prompt). Unknown names are left to the install to report.
    pub fn servers_needing_sudo_password(&self, names: &[String]) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for n in names {
            let Some(s) = self.inner.store.server_by_name(n)? else {
                continue;
            };
            if self.needs_sudo_password(&s)? && !out.iter().any(|(x, _)| x == &s.name) {
                out.push((s.name.clone(), format!("{}@{}", s.user, s.name)));
            }
        }
        Ok(out)
    }

    pub fn servers(&self) -> Result<Vec<Server>> {
        self.inner.store.list_servers()
    }

    /// Builds the SSH target of a server, following its jump hosts (chains allowed, with a
    /// loop guard).
    pub fn ssh_target(&self, server: &Server) -> Result<SshTarget> {
        ssh_targets::ssh_target(&self.inner.store, &self.inner.sudo_passwords, server)
    }

    pub async fn connect(
        &self,
        server: &Server,
    ) -> std::result::Result<ptui_ssh::Session, KindError> {
        let target = self
            .ssh_target(server)
            .map_err(|e| KindError::new(ErrorKind::Validation, e.to_string()))?;
        ptui_ssh::connect(&target, &self.inner.config.ssh, &self.inner.known_hosts).await
    }

    /// A lease on the server's pooled connection (shared by jobs and health checks).
    pub async fn pooled(&self, server: &Server) -> std::result::Result<ptui_ssh::Lease, KindError> {
        let target = self
            .ssh_target(server)
            .map_err(|e| KindError::new(ErrorKind::Validation, e.to_string()))?;
        self.inner.pool.get(&server.name, &target).await
    }

    pub fn pool(&self) -> &ptui_ssh::Pool {
        &self.inner.pool
    }

    /// Connects far enough to see the server's host key; never records anything.
    pub async fn scan_host_key(&self, name: &str) -> std::result::Result<HostKeyScan, KindError> {
        let server = self
            .inner
            .store
            .require_server(name)
            .map_err(|e| KindError::new(ErrorKind::Validation, e.to_string()))?;
        let target = self
            .ssh_target(&server)
            .map_err(|e| KindError::new(ErrorKind::Validation, e.to_string()))?;
        let (key, fingerprint, verdict) =
            ptui_ssh::scan_host_key(&target, &self.inner.config.ssh, &self.inner.known_hosts)
                .await?;
        Ok(HostKeyScan {
            server: name.to_string(),
            fingerprint,
            verdict,
            key,
        })
    }

    /// Records a scanned key in provision-tui's known_hosts. A changed key needs `replace`.
    pub fn trust_host_key(&self, scan: &HostKeyScan, replace: bool) -> Result<()> {
        let change = match replace {
            true => Change::ReplaceHostKey,
            false => Change::TrustHostKey,
        };
        self.permit(change, &scan.server)?;
        let server = self.inner.store.require_server(&scan.server)?;
        if let HostKeyVerdict::Changed {
            recorded, key_type, ..
        } = &scan.verdict
            && !replace
        {
            bail!(
                "host key of {} changed (recorded {}, now {key_type} {}); refusing without --replace",
                server.name,
                ptui_types::hostkey::describe_all(recorded),
                scan.fingerprint
            );
        }
        self.inner
            .known_hosts
            .learn(&server.host, server.port, &scan.key, replace)?;
        let detail = match &scan.verdict {
            HostKeyVerdict::Changed { recorded, .. } => format!(
                "{} (replacing {})",
                scan.fingerprint,
                ptui_types::hostkey::describe_all(recorded)
            ),
            _ => scan.fingerprint.clone(),
        };
        self.audit("server.trust", &server.name, &detail)?;
        Ok(())
    }

    // ---- jobs (starting them: jobs/launch.rs) ----

    /// Cancels a job run by this process at once, or by another process within a heartbeat.
    pub fn cancel_job(&self, id: i64) -> Result<Job> {
        self.permit(Change::CancelJob, &format!("job #{id}"))?;
        let mut job = self.inner.store.request_cancel(id)?;
        self.inner.running.cancel(id);
        // Queued for another site and not claimed yet: over at once (the process following
        // it, `jobs/remote.rs`, sends its end).
        if let Some(done) = self.inner.store.cancel_unclaimed_job(id)? {
            job = done;
        }
        self.audit("job.cancel", &job.server_name, &format!("job #{id}"))?;
        Ok(job)
    }

    /// Jobs started by this process that have not finished.
    pub fn running_here(&self) -> Vec<i64> {
        self.inner.running.ids()
    }

    pub fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        self.inner.store.list_jobs(filter)
    }

    pub fn job(&self, id: i64) -> Result<Job> {
        self.inner.store.require_job(id)
    }

    pub fn job_logs(&self, id: i64, from_seq: i64, limit: usize) -> Result<Vec<LogLine>> {
        self.inner.store.job_logs(id, from_seq, limit)
    }

    /// The nearest log line containing `needle` from `from_seq` on (or back), found in the store.
    pub fn find_log_line(
        &self,
        id: i64,
        needle: &str,
        from_seq: i64,
        forward: bool,
    ) -> Result<Option<i64>> {
        self.inner
            .store
            .find_log_line(id, needle, from_seq, forward)
    }

    /// Waits for a job of this process to end.
    pub async fn wait_job(&self, id: i64) -> Result<Job> {
        let job = self.wait_job_status(id).await?;
        self.settle(id).await;
        Ok(job)
    }

    /// Waits until this process has finished with a job whose end is recorded (its spool is
    /// removed after the record): a front end that exits sooner leaves the spool behind.
    pub async fn settle(&self, id: i64) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
        while self.running_here().contains(&id) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn wait_job_status(&self, id: i64) -> Result<Job> {
        let mut rx = self.subscribe();
        loop {
            let job = self.inner.store.require_job(id)?;
            if job.status.is_terminal()
                || (job.status == JobStatus::Detached && !self.running_here().contains(&id))
            {
                return Ok(job);
            }
            match tokio::time::timeout(std::time::Duration::from_millis(500), rx.recv()).await {
                Ok(Ok(Event::JobFinished { job })) if job.id == id => return Ok(job),
                // Left running on its server, followed by no one here: waiting here is over.
                Ok(Ok(Event::JobDetached { job })) if job.id == id => return Ok(job),
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return Err(eyre!("engine stopped"));
                }
                _ => {}
            }
        }
    }

    /// Watches the database for commits by other processes and emits `ExternalChange`.
    pub fn spawn_external_watch(&self, every: std::time::Duration) {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut last = engine.inner.store.data_version().unwrap_or(0);
            loop {
                tokio::time::sleep(every).await;
                if let Ok(v) = engine.inner.store.data_version()
                    && v != last
                {
                    last = v;
                    engine.emit(Event::ExternalChange);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_target_expands_a_tilde_identity() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let e = Engine::open(Config::new(Some(tmp.path().join("state.db")), vec![])).expect("open");
        let server = e
            .add_server(&ServerSpec {
                name: "s".into(),
                host: "127.0.0.1".into(),
                port: 22,
                user: "root".into(),
                identity: Some("~/.ssh/from-import".into()),
                ..Default::default()
            })
            .expect("add");
        let t = e.ssh_target(&server).expect("target");
        assert_eq!(
            t.identity,
            Some(ptui_types::config::home_dir().join(".ssh/from-import"))
        );
    }
}
