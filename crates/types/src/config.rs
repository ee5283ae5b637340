//! Settings and paths. Everything has a default; env vars and flags override.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Paths and tunables shared by every front end.
#[derive(Debug, Clone)]
pub struct Config {
    /// SQLite database file; with PostgreSQL, where it would be (the directory of
    /// known_hosts and the keys).
    pub db_path: PathBuf,
    /// `--db postgres://…`: the shared PostgreSQL database instead of the SQLite file.
    pub database_url: Option<String>,
    /// provision-tui's own known_hosts; lives beside the database.
    pub known_hosts_path: PathBuf,
    /// The key that seals deployments' sensitive inputs: `secrets.key` beside the database,
    /// or `PROVISION_TUI_SECRETS_KEY_FILE` (a shared database's key kept elsewhere).
    pub secrets_key_path: PathBuf,
    /// The key of the audit log's HMAC chain: `audit.key` beside the database, or
    /// `PROVISION_TUI_AUDIT_KEY_FILE`.
    pub audit_key_path: PathBuf,
    /// The user's OpenSSH known_hosts, read but never written.
    pub user_known_hosts_path: Option<PathBuf>,
    /// Extra installer directories, later ones override earlier ones.
    pub installer_dirs: Vec<PathBuf>,
    /// Directory for the tracing log file.
    pub log_dir: PathBuf,
    pub ssh: SshSettings,
    pub jobs: JobSettings,
    pub access: AccessSettings,
    /// The sites this process serves (`--site`, `sites:` in config.yml; default `default`):
    /// it runs jobs and health checks only for their servers (docs/MULTI-BASTION.md).
    pub sites: Vec<String>,
}

/// Looking only, and the dashboard's clipboard; set by the front end from its flags and
/// config.yml. Roles come from the system config (`system_config_path`), read by the engine.
#[derive(Debug, Clone)]
pub struct AccessSettings {
    /// Why this process may change nothing (`--readonly`, `PROVISION_TUI_READONLY=1`,
    /// `readonly: true` in config.yml); None: it may, as far as its role allows.
    pub readonly: Option<String>,
    /// The dashboard's `y` copies through the terminal with OSC 52 (`clipboard: false` in
    /// config.yml turns it off).
    pub osc52: bool,
}

impl Default for AccessSettings {
    fn default() -> Self {
        AccessSettings {
            readonly: None,
            osc52: true,
        }
    }
}

/// The bastion-wide config that holds `roles:`. `PROVISION_TUI_SYSTEM_CONFIG` is honoured
/// only while /etc/provision-tui/config.yml does not exist, so a user cannot point an
/// installed bastion at a roles file of their own.
pub fn system_config_path() -> PathBuf {
    let system = PathBuf::from("/etc/provision-tui/config.yml");
    match std::env::var_os("PROVISION_TUI_SYSTEM_CONFIG") {
        Some(p) if !p.is_empty() && !system.exists() => PathBuf::from(p),
        _ => system,
    }
}

#[derive(Debug, Clone)]
pub struct SshSettings {
    pub connect_timeout: Duration,
    pub auth_timeout: Duration,
    pub keepalive_interval: Duration,
    pub inactivity_timeout: Duration,
    /// Grace between TERM and KILL when killing a remote process group; when set
    /// (`PROVISION_TUI_KILL_GRACE`, seconds) it replaces every manifest's `cancel_grace_seconds`.
    pub kill_grace: Option<Duration>,
    /// Pooled connections with no lease close after this long.
    pub idle_timeout: Duration,
    /// Pooled connections are replaced (not torn down under a running job) after this long.
    pub max_age: Duration,
    /// Key exchange algorithms in order of preference (`PROVISION_TUI_KEX`, comma separated).
    /// Empty: curve25519 first, then russh's defaults (see docs/FLEET.md for the trade-off).
    pub kex: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct JobSettings {
    /// A lease not heartbeated for this long belongs to a dead holder.
    pub lease_ttl: Duration,
    pub heartbeat_interval: Duration,
    /// Connection-level failures are retried this many times.
    pub connect_retries: u32,
    pub retry_base_delay: Duration,
    /// Extra client-side time after the installer's own timeout before we kill.
    pub timeout_slack: Duration,
    /// Jobs this process runs at once (fan-out bound).
    pub max_concurrent: usize,
    /// How long past a job's timeout a follower keeps trying an unreachable server before the
    /// job counts as interrupted.
    pub reattach_margin: Duration,
    /// Spools left on servers (their client never came back) are removed after this.
    pub spool_max_age: Duration,
    /// Output bytes one job stores; past it the head is kept, then a marker saying how much
    /// was dropped, then the last lines.
    pub max_job_output: u64,
}

impl Default for SshSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(env_secs("PROVISION_TUI_CONNECT_TIMEOUT", 10)),
            auth_timeout: Duration::from_secs(15),
            keepalive_interval: Duration::from_secs(15),
            inactivity_timeout: Duration::from_secs(3600),
            kill_grace: std::env::var("PROVISION_TUI_KILL_GRACE")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_secs),
            idle_timeout: Duration::from_secs(env_secs("PROVISION_TUI_IDLE_TIMEOUT", 300)),
            max_age: Duration::from_secs(env_secs("PROVISION_TUI_POOL_MAX_AGE", 3600)),
            kex: std::env::var("PROVISION_TUI_KEX")
                .map(|v| {
                    v.split(',')
                        .map(|k| k.trim().to_string())
                        .filter(|k| !k.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(2),
            connect_retries: 3,
            retry_base_delay: Duration::from_millis(env_ms("PROVISION_TUI_RETRY_BASE_MS", 1000)),
            timeout_slack: Duration::from_secs(10),
            max_concurrent: env_secs("PROVISION_TUI_MAX_CONCURRENT", 50) as usize,
            reattach_margin: Duration::from_secs(env_secs("PROVISION_TUI_REATTACH_MARGIN", 120)),
            spool_max_age: Duration::from_secs(
                env_secs("PROVISION_TUI_SPOOL_MAX_AGE_HOURS", 24 * 7) * 3600,
            ),
            max_job_output: env_secs("PROVISION_TUI_MAX_JOB_OUTPUT_MB", 100) * 1024 * 1024,
        }
    }
}

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_ms(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// XDG base directories, with the usual fallbacks under $HOME.
pub fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => home_dir().join(fallback),
    }
}

pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// A key file path as given by the operator or an inventory: a leading `~` or `~/` means
/// $HOME (imports and `server add` store paths verbatim, and no shell expanded them).
/// `~user/...` is left alone.
pub fn key_path(path: &str) -> PathBuf {
    expand_home(path, &home_dir())
}

fn expand_home(path: &str, home: &std::path::Path) -> PathBuf {
    match path.strip_prefix('~') {
        Some("") => home.to_path_buf(),
        Some(rest) if rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(path),
    }
}

pub fn data_dir() -> PathBuf {
    xdg_dir("XDG_DATA_HOME", ".local/share").join("provision-tui")
}

pub fn config_dir() -> PathBuf {
    xdg_dir("XDG_CONFIG_HOME", ".config").join("provision-tui")
}

pub fn state_dir() -> PathBuf {
    xdg_dir("XDG_STATE_HOME", ".local/state").join("provision-tui")
}

impl Config {
    /// Build the configuration from an optional `--db` and extra `--installers` dirs.
    /// `PROVISION_TUI_DB` is read by clap before this.
    pub fn new(db: Option<PathBuf>, extra_installers: Vec<PathBuf>) -> Self {
        let database_url = db
            .as_ref()
            .and_then(|p| p.to_str())
            .filter(|s| is_postgres_url(s))
            .map(str::to_string);
        let db_path = match (&database_url, db) {
            (None, Some(p)) => p,
            _ => data_dir().join("state.db"),
        };
        let known_hosts_path = known_hosts_beside(&db_path);
        let key_path = |var: &str, name: &str| match std::env::var_os(var) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => known_hosts_path.with_file_name(name),
        };
        let secrets_key_path = key_path("PROVISION_TUI_SECRETS_KEY_FILE", "secrets.key");
        let audit_key_path = key_path("PROVISION_TUI_AUDIT_KEY_FILE", "audit.key");
        let user_known_hosts_path = match std::env::var_os("PROVISION_TUI_USER_KNOWN_HOSTS") {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(PathBuf::from(v)),
            None => Some(home_dir().join(".ssh/known_hosts")),
        };
        let mut installer_dirs = vec![config_dir().join("installers")];
        installer_dirs.extend(extra_installers);
        Self {
            db_path,
            database_url,
            known_hosts_path,
            secrets_key_path,
            audit_key_path,
            user_known_hosts_path,
            installer_dirs,
            log_dir: state_dir(),
            ssh: SshSettings::default(),
            jobs: JobSettings::default(),
            access: AccessSettings::default(),
            sites: vec![crate::server::DEFAULT_SITE.to_string()],
        }
    }
}

/// `postgres://…` or `postgresql://…`, as libpq spells a connection URI.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

impl Config {
    /// What `--db` names: the PostgreSQL URL or the SQLite file.
    pub fn database(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => self.db_path.display().to_string(),
        }
    }
}

fn known_hosts_beside(db: &Path) -> PathBuf {
    db.parent()
        .map(|p| p.join("known_hosts"))
        .unwrap_or_else(|| PathBuf::from("known_hosts"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn key_paths_expand_a_leading_tilde_only() {
        let home = Path::new("/home/op");
        assert_eq!(
            expand_home("~/.ssh/id_ed25519", home),
            Path::new("/home/op/.ssh/id_ed25519")
        );
        assert_eq!(expand_home("~", home), home);
        assert_eq!(expand_home("/etc/keys/k", home), Path::new("/etc/keys/k"));
        assert_eq!(expand_home("keys/k", home), Path::new("keys/k"));
        // Another user's home is not guessed; a tilde elsewhere is a plain character.
        assert_eq!(expand_home("~bob/.ssh/k", home), Path::new("~bob/.ssh/k"));
        assert_eq!(expand_home("/a/~/k", home), Path::new("/a/~/k"));
    }
}
