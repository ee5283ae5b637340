//! Health samples, incident kinds and per-server health policies: data shared by the store,
//! the engine and the front ends.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What an incident is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    ServerUnreachable,
    AuthFailed,
    HostKeyChanged,
    /// The server's host key is not recorded: to be accepted (`server trust`, `t`), not a
    /// credential to fix.
    HostKeyUnknown,
    DiskFull,
    MemoryPressure,
    DockerDown,
    ServiceDown,
    ProvisioningFailed,
    /// An operator set the server to `force_rebuild`: the recovery procedure runs at once.
    ForceRebuild,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 10] = [
        IncidentKind::ServerUnreachable,
        IncidentKind::AuthFailed,
        IncidentKind::HostKeyChanged,
        IncidentKind::HostKeyUnknown,
        IncidentKind::DiskFull,
        IncidentKind::MemoryPressure,
        IncidentKind::DockerDown,
        IncidentKind::ServiceDown,
        IncidentKind::ProvisioningFailed,
        IncidentKind::ForceRebuild,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::ServerUnreachable => "server_unreachable",
            IncidentKind::AuthFailed => "auth_failed",
            IncidentKind::HostKeyChanged => "host_key_changed",
            IncidentKind::HostKeyUnknown => "host_key_unknown",
            IncidentKind::DiskFull => "disk_full",
            IncidentKind::MemoryPressure => "memory_pressure",
            IncidentKind::DockerDown => "docker_down",
            IncidentKind::ServiceDown => "service_down",
            IncidentKind::ProvisioningFailed => "provisioning_failed",
            IncidentKind::ForceRebuild => "force_rebuild",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Kinds that re-provisioning can plausibly fix; the others only notify.
    pub fn recoverable(self) -> bool {
        matches!(
            self,
            IncidentKind::ServerUnreachable
                | IncidentKind::DockerDown
                | IncidentKind::ServiceDown
                | IncidentKind::ForceRebuild
        )
    }
}

impl fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle of an incident. `detected`, `recovering` and `failed` are open (the problem is
/// still there); `failed` means automatic recovery gave up and a person must act. Only
/// `resolved` closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Detected,
    Recovering,
    Resolved,
    Failed,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Detected => "detected",
            IncidentState::Recovering => "recovering",
            IncidentState::Resolved => "resolved",
            IncidentState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            IncidentState::Detected,
            IncidentState::Recovering,
            IncidentState::Resolved,
            IncidentState::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A filesystem over the disk threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountUse {
    pub mount: String,
    pub pct: f64,
}

/// The result of one app's manifest health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppHealth {
    pub app_id: String,
    pub ok: bool,
    pub detail: String,
}

/// Hysteresis state of one condition on one server (only non-`up` ones are listed in samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Up,
    /// Failing, but fewer than `failure_threshold` times in a row (or recovering, fewer than
    /// `success_threshold` successes): visible, silent.
    Pending,
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionState {
    pub kind: IncidentKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    pub level: Level,
    pub failures: u32,
    pub successes: u32,
}

/// One health check of one server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub server_id: i64,
    pub server: String,
    pub ts: i64,
    /// Reachable and every probe within its threshold.
    pub ok: bool,
    /// Set when the server could not be checked at all.
    pub failure: Option<IncidentKind>,
    pub error: Option<String>,
    /// Connect + auth time when this check had to dial; None on a warm pooled connection.
    pub connect_ms: Option<u64>,
    /// Time of the check itself (the exec round trip, plus the dial when there was one).
    pub latency_ms: u64,
    pub load: Option<[f64; 3]>,
    pub mem_pct: Option<f64>,
    /// Use of `/`.
    pub disk_pct: Option<f64>,
    /// Every filesystem at or over the disk threshold.
    pub mounts_over: Vec<MountUse>,
    /// `active`, `inactive`, ... when docker is installed; None when it is not.
    pub docker: Option<String>,
    pub apps: Vec<AppHealth>,
    /// Conditions that are not `up` after this sample (filled by the tracker).
    #[serde(default)]
    pub states: Vec<ConditionState>,
    /// The server (or the whole fleet) is in a maintenance window: nothing opens, nothing is sent.
    #[serde(default)]
    pub maintenance: bool,
}

impl Sample {
    pub fn unreachable(server_id: i64, server: &str, kind: IncidentKind, error: String) -> Self {
        Sample {
            server_id,
            server: server.to_string(),
            ts: crate::time::now_ms(),
            ok: false,
            failure: Some(kind),
            error: Some(error),
            connect_ms: None,
            latency_ms: 0,
            load: None,
            mem_pct: None,
            disk_pct: None,
            mounts_over: Vec::new(),
            docker: None,
            apps: Vec::new(),
            states: Vec::new(),
            maintenance: false,
        }
    }
}

/// Recovery policy of a server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryPolicy {
    #[default]
    Notify,
    Auto,
}

impl RecoveryPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryPolicy::Notify => "notify",
            RecoveryPolicy::Auto => "auto",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "notify" => Some(RecoveryPolicy::Notify),
            "auto" => Some(RecoveryPolicy::Auto),
            _ => None,
        }
    }
}

/// Per-server health settings (stored in `server_health`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerHealthPolicy {
    pub server_id: i64,
    /// Overrides the global interval.
    pub interval_ms: Option<i64>,
    pub recovery: RecoveryPolicy,
    /// Base installer re-run first by recovery (overrides the config's default).
    pub base_installer: Option<String>,
}
