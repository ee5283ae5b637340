//! Who may change what: read-only mode and roles, checked by the engine at the start of every
//! method that changes something, so every front end is covered. See docs/BASTION.md.
//!
//! The role comes from the process's real Unix user and groups (`/proc/self/status`, not
//! `$USER`, which anyone can set) and the `roles:` section of the system config. Without that
//! section everyone is admin, as before roles existed.

use crate::engine::Engine;
use color_eyre::eyre::{Result, bail, eyre};
use ptui_types::config::system_config_path;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Looks only.
    Viewer,
    /// Installs, upgrades, uninstalls, cancels, checks, maintenance windows, first host-key trust.
    Operator,
    /// Also the inventory (add, remove, import), host-key replacement, policies, sudo settings.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Each kind of change an engine method makes, with the role it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    AddServer,
    RemoveServer,
    ServerStatus,
    SudoSettings,
    SudoPassword,
    TrustHostKey,
    ReplaceHostKey,
    /// Install, upgrade, uninstall, fan-outs.
    RunJob,
    CancelJob,
    /// Follow a detached job to its end, mark this process's jobs detached.
    AdoptJobs,
    /// Health checks whose samples are stored (`check`, `watch`, the dashboard's checker).
    HealthCheck,
    Policy,
    Maintenance,
    Import,
    /// Change a server's connection fields and tags.
    EditServer,
    /// Acknowledge an incident or add a note to it.
    AcknowledgeIncident,
    /// Re-seal the stored secrets with a new key.
    RotateKeys,
    /// `db copy`: every row, sealed secrets and audit log included, to another database.
    CopyDatabase,
}

impl Change {
    pub fn needs(self) -> Role {
        use Change::*;
        match self {
            RunJob | CancelJob | AdoptJobs | HealthCheck | Maintenance | ServerStatus
            | SudoPassword | TrustHostKey | AcknowledgeIncident => Role::Operator,
            AddServer | RemoveServer | ReplaceHostKey | Policy | SudoSettings | Import
            | EditServer | RotateKeys | CopyDatabase => Role::Admin,
        }
    }

    pub fn what(self) -> &'static str {
        use Change::*;
        match self {
            AddServer => "adding a server",
            RemoveServer => "removing a server",
            ServerStatus => "setting a server's status",
            SudoSettings => "changing sudo settings",
            SudoPassword => "giving a sudo password",
            TrustHostKey => "trusting a host key",
            ReplaceHostKey => "replacing a host key",
            RunJob => "running an installer",
            CancelJob => "cancelling a job",
            AdoptJobs => "following detached jobs",
            HealthCheck => "running health checks",
            Policy => "changing a health policy",
            Maintenance => "changing maintenance windows",
            Import => "importing servers",
            EditServer => "editing a server",
            AcknowledgeIncident => "acknowledging or annotating an incident",
            RotateKeys => "rotating the secrets key",
            CopyDatabase => "copying the database",
        }
    }
}

/// What this process may do, fixed when the engine opens.
#[derive(Debug, Clone)]
pub struct Access {
    /// Why nothing may be changed (`--readonly` and the like); refusals are not audited
    /// (nothing at all is written).
    pub readonly: Option<String>,
    pub role: Role,
    /// The real Unix user the role was found for.
    pub user: String,
    /// Where the role came from, for messages (`user alice in /etc/...`, `no roles section`).
    pub source: String,
}

impl Access {
    /// Reads the system config's `roles:` for the real Unix user. A roles file that cannot be
    /// read or parsed is an error (not "admin for everyone").
    pub fn load(readonly: Option<String>) -> Result<Access> {
        let (user, groups) = unix_identity();
        // Operators share the watcher's database through `sudo -u provision-tui`: then the
        // role is the sudo caller's. Only for that account, which can write the database
        // anyway, so believing its SUDO_USER gives nobody more than they have.
        let (user, groups) = match std::env::var("SUDO_USER") {
            Ok(caller) if user == SERVICE_USER && !caller.is_empty() => {
                let groups = groups_of(&caller);
                (caller, groups)
            }
            _ => (user, groups),
        };
        let path = system_config_path();
        let roles = read_roles(&path)?;
        let (role, source) = match &roles {
            None => (
                Role::Admin,
                "no roles section: everyone is admin".to_string(),
            ),
            Some(r) => r.role_of(&user, &groups, &path),
        };
        Ok(Access {
            readonly,
            role,
            user,
            source,
        })
    }

    /// Read-only never creates a database (opening a missing one would).
    pub fn check_open(&self, db: &Path) -> Result<()> {
        if let Some(why) = &self.readonly
            && !db.exists()
        {
            bail!(
                "read-only: there is no database at {} to look at ({why}); check --db or PROVISION_TUI_DB",
                db.display()
            );
        }
        Ok(())
    }

    /// Whether a change is allowed (front ends grey out what is not; the engine still checks).
    pub fn may(&self, c: Change) -> bool {
        self.readonly.is_none() && self.role >= c.needs()
    }

    /// Background writes nobody asked for (the orphan sweep at open, adopting detached jobs):
    /// off when looking only.
    pub fn housekeeping(&self) -> bool {
        self.may(Change::AdoptJobs)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesSection {
    #[serde(default)]
    users: BTreeMap<String, Role>,
    #[serde(default)]
    groups: BTreeMap<String, Role>,
    /// For users neither listed nor in a listed group (viewer when left out).
    #[serde(default)]
    default: Option<Role>,
}

/// The system config; other sections belong to others and are not looked at here.
#[derive(Debug, Deserialize)]
struct SystemFile {
    #[serde(default)]
    roles: Option<RolesSection>,
}

impl RolesSection {
    /// The user's own entry wins; else the highest role of their groups; else `default`.
    fn role_of(&self, user: &str, groups: &[String], path: &Path) -> (Role, String) {
        let file = path.display();
        if let Some(r) = self.users.get(user) {
            return (*r, format!("user {user} in {file}"));
        }
        if let Some((g, r)) = groups
            .iter()
            .filter_map(|g| self.groups.get(g).map(|r| (g, *r)))
            .max_by_key(|(_, r)| *r)
        {
            return (r, format!("group {g} in {file}"));
        }
        let r = self.default.unwrap_or(Role::Viewer);
        (r, format!("roles.default in {file}"))
    }
}

fn read_roles(path: &Path) -> Result<Option<RolesSection>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!(
            "{}: {e}; roles cannot be checked without it (make it readable by provision-tui's users)",
            path.display()
        ),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let f: SystemFile = yaml_serde::from_str(&text).map_err(|e| match e.location() {
        Some(l) => eyre!("{}:{}:{}: {e}", path.display(), l.line(), l.column()),
        None => eyre!("{}: {e}", path.display()),
    })?;
    Ok(f.roles)
}

/// The real user's name and every group name (primary and supplementary), from
/// `/proc/self/status`, `/etc/passwd` and `/etc/group`. Unknown ids stay numeric.
fn unix_identity() -> (String, Vec<String>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Vec<String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let uid = field("Uid:").into_iter().next().unwrap_or_default();
    let mut gids = field("Gid:").into_iter().take(1).collect::<Vec<_>>();
    gids.extend(field("Groups:"));
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let user = name_of(&passwd, &uid).unwrap_or(uid);
    let mut groups: Vec<String> = gids
        .iter()
        .map(|g| name_of(&group, g).unwrap_or_else(|| g.clone()))
        .collect();
    groups.sort();
    groups.dedup();
    (user, groups)
}

/// The system user of the packaged watcher (packaging/debian/postinst).
const SERVICE_USER: &str = "provision-tui";

/// A user's group names from /etc/passwd (primary) and /etc/group (member lists).
fn groups_of(user: &str) -> Vec<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let primary = passwd
        .lines()
        .find(|l| l.split(':').next() == Some(user))
        .and_then(|l| l.split(':').nth(3).map(str::to_string));
    let mut out: Vec<String> = group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let member = f.get(3).is_some_and(|m| m.split(',').any(|m| m == user));
            let is_primary = primary.as_deref().is_some_and(|g| f.get(2) == Some(&g));
            (member || is_primary).then(|| f[0].to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The name on the line of an `/etc/passwd` or `/etc/group` text whose third field is `id`.
fn name_of(text: &str, id: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _ = f.next();
        (f.next()? == id).then(|| name.to_string())
    })
}

impl Engine {
    /// What this process may do (the dashboard greys out the rest).
    pub fn access(&self) -> &Access {
        self.access_ref()
    }

    /// The same check, for a front end that would otherwise prompt or connect before it calls
    /// the changing method (the method checks again).
    pub fn require(&self, c: Change, target: &str) -> Result<()> {
        self.permit(c, target)
    }

    /// The check at the start of every changing method. Read-only: refused, nothing written.
    /// A role too low: refused, and the refusal is an audit row.
    pub(crate) fn permit(&self, c: Change, target: &str) -> Result<()> {
        let a = self.access_ref();
        if let Some(why) = &a.readonly {
            bail!(
                "read-only: {} is refused, nothing was changed ({why}); run provision-tui without it to change things",
                c.what()
            );
        }
        if a.role < c.needs() {
            let detail = format!(
                "{}: {} is {} ({}), needs {}",
                c.what(),
                a.user,
                a.role.as_str(),
                a.source,
                c.needs().as_str()
            );
            self.audit_or_warn("access.denied", target, &detail);
            bail!(
                "refused: {} needs the {} role; {} is {} ({}). Ask an admin to change roles: in {}",
                c.what(),
                c.needs().as_str(),
                a.user,
                a.role.as_str(),
                a.source,
                system_config_path().display()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(yaml: &str) -> RolesSection {
        let f: SystemFile = yaml_serde::from_str(yaml).expect("yaml");
        f.roles.expect("roles")
    }

    #[test]
    fn a_user_entry_wins_then_the_highest_group_then_the_default() {
        let r = section(
            "other: kept\nroles:\n  users: {alice: viewer}\n  groups: {ops: operator, wheel: admin, staff: viewer}\n",
        );
        let p = Path::new("/etc/x.yml");
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(r.role_of("alice", &g(&["wheel"]), p).0, Role::Viewer);
        assert_eq!(r.role_of("bob", &g(&["staff", "ops"]), p).0, Role::Operator);
        assert_eq!(r.role_of("carol", &g(&["wheel", "ops"]), p).0, Role::Admin);
        assert_eq!(r.role_of("dave", &g(&["users"]), p).0, Role::Viewer);
    }

    #[test]
    fn roles_with_an_unknown_key_or_role_are_refused() {
        assert!(yaml_serde::from_str::<SystemFile>("roles:\n  user: {a: admin}\n").is_err());
        assert!(yaml_serde::from_str::<SystemFile>("roles:\n  users: {a: root}\n").is_err());
    }

    #[test]
    fn ids_map_to_names() {
        let passwd = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/a:/bin/sh\n";
        assert_eq!(name_of(passwd, "1000").as_deref(), Some("alice"));
        assert_eq!(name_of(passwd, "7"), None);
    }

    #[test]
    fn viewers_may_change_nothing_and_read_only_beats_admin() {
        let mut a = Access {
            readonly: None,
            role: Role::Viewer,
            user: "v".into(),
            source: "test".into(),
        };
        assert!(!a.may(Change::RunJob) && !a.housekeeping());
        a.role = Role::Operator;
        assert!(a.may(Change::CancelJob) && !a.may(Change::RemoveServer));
        a.role = Role::Admin;
        a.readonly = Some("--readonly".into());
        assert!(!a.may(Change::RunJob) && !a.housekeeping());
    }
}
