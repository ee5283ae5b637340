//! Health: agentless checks over the pooled SSH connections, incidents with hysteresis,
//! automatic recovery, notifications, maintenance windows and metrics.
//! See docs/HEALTH.md. Nothing here knows about the terminal.

pub mod checker;
mod commands;
pub mod config;
pub mod incidents;
pub mod maintenance;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod recovery;
pub mod service;
pub mod tracker;

pub use config::HealthConfig;
pub use service::HealthService;

pub use ptui_types::health::*;

/// An engine on a scratch database with only the bundled installers and `installers`.
#[cfg(test)]
pub(crate) fn test_engine(
    installers: Vec<std::path::PathBuf>,
) -> (tempfile::TempDir, crate::engine::Engine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ptui_types::config::Config::new(Some(dir.path().join("state.db")), Vec::new());
    // Nothing from the developer's own config or known_hosts.
    config.installer_dirs = installers;
    config.user_known_hosts_path = None;
    if ptui_store::testing::postgres_requested() {
        config.database_url =
            Some(ptui_store::testing::fresh_postgres_url().expect("PostgreSQL test database"));
    }
    let engine = crate::engine::Engine::open(config).expect("engine");
    (dir, engine)
}
