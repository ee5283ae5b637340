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
    /// The site (network or region) whose provision-tui processes reach this server; None
    /// keeps the current one (`default` for a new server). See docs/MULTI-BASTION.md.
    #[serde(default)]
    pub site: Option<String>,
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
    /// Only processes serving this site run its jobs and health checks.
    #[serde(default = "default_site")]
    pub site: String,
}

/// The site of a server nobody placed, and the one a process serves when not told.
pub const DEFAULT_SITE: &str = "default";

pub fn default_site() -> String {
    DEFAULT_SITE.to_string()
}

/// Site labels name a network or region on the command line and in listings.
pub fn validate_site(site: &str) -> Result<(), String> {
    if is_label(site) {
        Ok(())
    } else {
        Err(format!(
            "invalid site {site:?}: use 1-64 letters, digits, '-', '_' or '.', not starting with '-'"
        ))
    }
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
/// 1-64 letters, digits, '-', '_' or '.', not starting with '-': server names and sites.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !s.starts_with('-')
}

pub fn validate_server_name(name: &str) -> Result<(), String> {
    if is_label(name) {
        Ok(())
    } else {
        Err(format!(
            "invalid server name {name:?}: use 1-64 letters, digits, '-', '_' or '.', not starting with '-'"
        ))
    }
}

/// A connection field `server add` or an import would store that the rules refuse.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecProblem {
    /// The field, named as its `server add` flag without the dashes (`host`, `port`, `tag`).
    pub field: &'static str,
    pub value: String,
    /// What the value must be, phrased so the operator knows what to change.
    pub rule: &'static str,
}

impl SpecProblem {
    /// The problem as the flag that sets the field: `--host "a ": ...`.
    pub fn as_flag(&self) -> String {
        format!("--{} {:?}: {}", self.field, self.value, self.rule)
    }
}

impl fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: {}", self.field, self.value, self.rule)
    }
}

/// Whitespace or a control character: never part of a host, a login or a tag, and a way to
/// smuggle terminal escapes or look-alike names into every listing.
fn has_space_or_control(s: &str) -> bool {
    s.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl ServerSpec {
    /// Checks the connection fields (the name has `validate_server_name`): the engine calls it
    /// before storing a server, from `server add`, the dashboard and imports alike.
    pub fn problem(&self) -> Option<SpecProblem> {
        let bad = |field, value: &str, rule| {
            Some(SpecProblem {
                field,
                value: value.to_string(),
                rule,
            })
        };
        if self.host.is_empty() {
            return bad("host", &self.host, "must not be empty");
        }
        if has_space_or_control(&self.host) {
            return bad(
                "host",
                &self.host,
                "a host name or address has no spaces or control characters",
            );
        }
        if self.port == 0 {
            return bad("port", "0", "must be 1-65535");
        }
        if self.user.is_empty() || has_space_or_control(&self.user) {
            return bad(
                "user",
                &self.user,
                "a login name is not empty and has no spaces or control characters",
            );
        }
        for tag in &self.tags {
            if tag.is_empty() || tag.contains(',') || has_space_or_control(tag) {
                return bad(
                    "tag",
                    tag,
                    "a tag is not empty and has no commas, spaces or control characters; repeat --tag for several",
                );
            }
        }
        if let Some(jump) = &self.jump
            && validate_server_name(jump).is_err()
        {
            return bad("jump", jump, "must be the name of a registered server");
        }
        if let Some(identity) = &self.identity
            && identity.chars().any(char::is_control)
        {
            return bad(
                "identity",
                identity,
                "a key file path has no control characters",
            );
        }
        if let Some(var) = &self.password_env
            && (var.is_empty() || has_space_or_control(var))
        {
            return bad(
                "password-env",
                var,
                "an environment variable name like SSH_PW, without spaces or control characters",
            );
        }
        if let Some(site) = &self.site
            && validate_site(site).is_err()
        {
            return bad(
                "site",
                site,
                "a site label like eu-west: 1-64 letters, digits, '-', '_' or '.'",
            );
        }
        None
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

    fn spec() -> ServerSpec {
        ServerSpec {
            name: "web".into(),
            host: "10.0.0.1".into(),
            port: 22,
            user: "root".into(),
            tags: vec!["prod".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_plain_spec_has_no_problem() {
        assert_eq!(spec().problem(), None);
    }

    #[test]
    fn hostile_connection_fields_are_refused_naming_the_flag() {
        let with = |f: fn(&mut ServerSpec)| {
            let mut s = spec();
            f(&mut s);
            s.problem().map(|p| p.as_flag()).unwrap_or_default()
        };
        assert!(with(|s| s.host = "a ".into()).starts_with("--host \"a \""));
        assert!(with(|s| s.host = "a\x1b]0;x\x07".into()).starts_with("--host"));
        assert!(with(|s| s.host.clear()).starts_with("--host"));
        assert!(with(|s| s.port = 0).starts_with("--port \"0\""));
        assert!(with(|s| s.user = "root\n".into()).starts_with("--user"));
        assert!(with(|s| s.user = "ro ot".into()).starts_with("--user"));
        assert!(with(|s| s.tags = vec!["a,b".into()]).starts_with("--tag \"a,b\""));
        assert!(with(|s| s.tags = vec!["a\u{9b}b".into()]).starts_with("--tag"));
        assert!(with(|s| s.tags = vec![String::new()]).starts_with("--tag"));
        assert!(with(|s| s.jump = Some("j\x1b".into())).starts_with("--jump"));
        assert!(with(|s| s.identity = Some("/k\x07".into())).starts_with("--identity"));
        assert!(with(|s| s.password_env = Some("A B".into())).starts_with("--password-env"));
        // Paths may hold spaces.
        assert_eq!(with(|s| s.identity = Some("/home/a b/key".into())), "");
    }
}
