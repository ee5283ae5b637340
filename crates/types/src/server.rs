//! Servers and the lifecycle status machine.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Lifecycle status of a server. Stored by name; every change goes through
/// `store::servers::transition`, which checks `can_transition_to` and writes an event row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ServerStatus {
    Discovered,
    PendingSetup,
    Provisioning,
    ForceRebuild,
    Ready,
    InUse,
    Error,
    Maintenance,
    Reserved,
    Decommissioned,
}

impl ServerStatus {
    pub const ALL: [ServerStatus; 10] = [
        ServerStatus::Discovered,
        ServerStatus::PendingSetup,
        ServerStatus::Provisioning,
        ServerStatus::ForceRebuild,
        ServerStatus::Ready,
        ServerStatus::InUse,
        ServerStatus::Error,
        ServerStatus::Maintenance,
        ServerStatus::Reserved,
        ServerStatus::Decommissioned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServerStatus::Discovered => "discovered",
            ServerStatus::PendingSetup => "pending_setup",
            ServerStatus::Provisioning => "provisioning",
            ServerStatus::ForceRebuild => "force_rebuild",
            ServerStatus::Ready => "ready",
            ServerStatus::InUse => "in_use",
            ServerStatus::Error => "error",
            ServerStatus::Maintenance => "maintenance",
            ServerStatus::Reserved => "reserved",
            ServerStatus::Decommissioned => "decommissioned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Statuses only an operator sets (never a job).
    pub fn is_operator_hold(self) -> bool {
        matches!(
            self,
            ServerStatus::Maintenance | ServerStatus::Reserved | ServerStatus::Decommissioned
        )
    }

    /// The lifecycle rules. A transition to the same status is not a transition.
    pub fn can_transition_to(self, to: ServerStatus) -> bool {
        use ServerStatus::*;
        if self == to {
            return false;
        }
        // Any status may be forced to rebuild, or put on an operator hold.
        if matches!(to, ForceRebuild | Maintenance | Reserved | Decommissioned) {
            return true;
        }
        match self {
            Discovered => matches!(to, PendingSetup),
            PendingSetup => matches!(to, Provisioning | Discovered),
            Provisioning => matches!(to, Ready | Error),
            Ready => matches!(to, InUse | Error),
            InUse => matches!(to, Error | Ready),
            // error → provisioning to repair; → ready/in_use when an incident resolves.
            Error => matches!(to, Provisioning | Ready | InUse),
            ForceRebuild => matches!(to, Provisioning),
            // Leaving an operator hold: back into the normal flow.
            Maintenance | Reserved => {
                matches!(to, Discovered | PendingSetup | Ready | InUse | Error)
            }
            Decommissioned => matches!(to, Discovered | PendingSetup),
        }
    }

    pub fn allowed_targets(self) -> Vec<ServerStatus> {
        Self::ALL
            .into_iter()
            .filter(|t| self.can_transition_to(*t))
            .collect()
    }

    /// Whether a job may start on a server in this status.
    pub fn accepts_jobs(self) -> bool {
        !self.is_operator_hold()
    }
}

impl fmt::Display for ServerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operator gives to register a server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerSpec {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity: Option<String>,
    /// Name of another server used as a jump host.
    pub jump: Option<String>,
    pub tags: Vec<String>,
    /// Name of an environment variable holding the SSH password, if password auth is used.
    pub password_env: Option<String>,
}

/// A registered server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Server {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity: Option<String>,
    pub jump: Option<String>,
    pub tags: Vec<String>,
    pub password_env: Option<String>,
    pub status: ServerStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Server {
    pub fn address(&self) -> String {
        if self.port == 22 {
            format!("{}@{}", self.user, self.host)
        } else {
            format!("{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

/// Server names are identifiers used on the command line and in tags.
pub fn validate_server_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid server name {name:?}: use 1-64 letters, digits, '-', '_' or '.', not starting with '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::ServerStatus::*;
    use super::*;

    #[test]
    fn happy_path_is_allowed() {
        assert!(Discovered.can_transition_to(PendingSetup));
        assert!(PendingSetup.can_transition_to(Provisioning));
        assert!(Provisioning.can_transition_to(Ready));
        assert!(Ready.can_transition_to(InUse));
        assert!(InUse.can_transition_to(Error));
        assert!(Error.can_transition_to(Provisioning));
    }

    #[test]
    fn shortcuts_are_refused() {
        assert!(!Discovered.can_transition_to(Ready));
        assert!(!Discovered.can_transition_to(Provisioning));
        assert!(!PendingSetup.can_transition_to(InUse));
        assert!(!Provisioning.can_transition_to(InUse));
        assert!(!Decommissioned.can_transition_to(Ready));
        assert!(!ForceRebuild.can_transition_to(Ready));
        assert!(!Ready.can_transition_to(Ready));
    }

    #[test]
    fn any_status_can_be_forced_or_held() {
        for s in ServerStatus::ALL {
            for t in [ForceRebuild, Maintenance, Reserved, Decommissioned] {
                assert_eq!(s.can_transition_to(t), s != t, "{s} -> {t}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ServerStatus::ALL {
            assert_eq!(ServerStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ServerStatus::parse("force-rebuild"), Some(ForceRebuild));
        assert_eq!(ServerStatus::parse("bogus"), None);
    }

    #[test]
    fn server_names() {
        assert!(validate_server_name("web-01.prod").is_ok());
        assert!(validate_server_name("").is_err());
        assert!(validate_server_name("a b").is_err());
        assert!(validate_server_name("-x").is_err());
    }
}
