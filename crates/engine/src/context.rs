//! The pieces of the engine a running job needs, and nothing more: the runner and the launch
//! step get a `JobContext` instead of the engine itself.

use crate::events::Event;
use crate::ssh_targets::{self, SudoPasswords};
use color_eyre::eyre::Result;
use ptui_catalog::Catalog;
use ptui_ssh::{Pool, SshTarget};
use ptui_store::Store;
use ptui_types::config::JobSettings;
use ptui_types::error::{ErrorKind, KindError};
use ptui_types::server::Server;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

/// Cancel tokens of the jobs this process runs, by job id.
#[derive(Clone, Default)]
pub(crate) struct RunningJobs(Arc<Mutex<HashMap<i64, CancellationToken>>>);

impl RunningJobs {
    pub fn insert(&self, job_id: i64, token: CancellationToken) {
        if let Ok(mut r) = self.0.lock() {
            r.insert(job_id, token);
        }
    }

    pub fn remove(&self, job_id: i64) {
        if let Ok(mut r) = self.0.lock() {
            r.remove(&job_id);
        }
    }

    pub fn cancel(&self, job_id: i64) {
        if let Ok(r) = self.0.lock()
            && let Some(t) = r.get(&job_id)
        {
            t.cancel();
        }
    }

    pub fn ids(&self) -> Vec<i64> {
        self.0
            .lock()
            .map(|r| r.keys().copied().collect())
            .unwrap_or_default()
    }
}

/// What one job needs from the engine.
#[derive(Clone)]
pub(crate) struct JobContext {
    pub store: Store,
    pub pool: Arc<Pool>,
    pub events: broadcast::Sender<Event>,
    /// Process-wide job slots (fan-out concurrency bound).
    pub slots: Arc<Semaphore>,
    pub running: RunningJobs,
    pub sudo: SudoPasswords,
    pub catalog: Arc<Catalog>,
    pub settings: JobSettings,
    /// Replaces the manifests' grace between TERM and KILL (`PROVISION_TUI_KILL_GRACE`).
    pub kill_grace_override: Option<Duration>,
    /// This process, as recorded on jobs and leases.
    pub owner: String,
}

impl JobContext {
    pub fn emit(&self, e: Event) {
        // No subscriber is not an error: events are for whoever listens.
        let _ = self.events.send(e);
    }

    /// Grace between TERM and KILL of a job's remote process group: the installer's
    /// `cancel_grace_seconds` (30 s when it is no longer in the catalog), unless overridden.
    pub fn kill_grace(&self, app_id: &str) -> Duration {
        self.kill_grace_override.unwrap_or_else(|| {
            Duration::from_secs(
                self.catalog
                    .get(app_id)
                    .map_or(30, |i| i.manifest.cancel_grace_seconds),
            )
        })
    }

    pub fn ssh_target(&self, server: &Server) -> Result<SshTarget> {
        ssh_targets::ssh_target(&self.store, &self.sudo, server)
    }

    pub fn needs_sudo_password(&self, server: &Server) -> Result<bool> {
        ssh_targets::needs_sudo_password(&self.store, &self.sudo, server)
    }

    /// A lease on the server's pooled connection.
    pub async fn pooled(&self, server: &Server) -> Result<ptui_ssh::Lease, KindError> {
        let target = self
            .ssh_target(server)
            .map_err(|e| KindError::new(ErrorKind::Validation, e.to_string()))?;
        self.pool.get(&server.name, &target).await
    }
}
