//! Inventory import: ssh_config, Ansible (INI and YAML) and dynamic (a command printing JSON).
//!
//! Each parser turns its source into `ImportEntry`s; the engine writes them
//! (`Engine::import_entries` in `import.rs`). Imports are
//! idempotent: a server found again is updated (tags are merged), nothing is ever deleted, and
//! every entry is reported as added, changed, unchanged or skipped with the reason.

pub mod ansible;
pub mod command;
pub mod ssh_config;

use ptui_types::server::{Server, ServerSpec};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// One server read from an inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportEntry {
    pub spec: ServerSpec,
    /// `Some` when the source says whether to escalate (ansible_become).
    pub escalate: Option<bool>,
    /// Where it came from, for the report (`file:line`).
    pub origin: String,
}

/// A source that could not be read, with the place of the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ParseError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl ParseError {
    pub fn new(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        ParseError {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    Added,
    /// The fields that changed.
    Changed(Vec<String>),
    Unchanged,
    /// Why it was not imported.
    Skipped(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Added => f.write_str("added"),
            Outcome::Changed(fields) => write!(f, "changed ({})", fields.join(", ")),
            Outcome::Unchanged => f.write_str("unchanged"),
            Outcome::Skipped(why) => write!(f, "skipped: {why}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub name: String,
    pub origin: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub source: String,
    pub rows: Vec<ReportRow>,
}

impl ImportReport {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.rows.iter().filter(|r| f(&r.outcome)).count()
    }
    pub fn summary(&self) -> String {
        format!(
            "{} added, {} changed, {} unchanged, {} skipped",
            self.count(|o| *o == Outcome::Added),
            self.count(|o| matches!(o, Outcome::Changed(_))),
            self.count(|o| *o == Outcome::Unchanged),
            self.count(|o| matches!(o, Outcome::Skipped(_))),
        )
    }
    pub fn skip(&mut self, name: &str, origin: &str, why: impl Into<String>) {
        self.rows.push(ReportRow {
            name: name.to_string(),
            origin: origin.to_string(),
            outcome: Outcome::Skipped(why.into()),
        });
    }
}

/// What changes between a registered server and an imported spec. Tags are merged, never dropped.
pub fn diff(old: &Server, new: &ServerSpec) -> (ServerSpec, Vec<String>) {
    let mut merged = new.clone();
    let mut tags = old.tags.clone();
    for t in &new.tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    merged.tags = tags;
    // An import that does not say which key to use keeps the one already set.
    if merged.identity.is_none() {
        merged.identity = old.identity.clone();
    }
    if merged.password_env.is_none() {
        merged.password_env = old.password_env.clone();
    }
    let mut changed = Vec::new();
    if old.host != merged.host {
        changed.push(format!("host {} -> {}", old.host, merged.host));
    }
    if old.port != merged.port {
        changed.push(format!("port {} -> {}", old.port, merged.port));
    }
    if old.user != merged.user {
        changed.push(format!("user {} -> {}", old.user, merged.user));
    }
    if old.identity != merged.identity {
        changed.push("identity".into());
    }
    if old.jump != merged.jump {
        changed.push(format!(
            "jump {} -> {}",
            old.jump.as_deref().unwrap_or("none"),
            merged.jump.as_deref().unwrap_or("none")
        ));
    }
    if let Some(site) = &merged.site
        && *site != old.site
    {
        changed.push(format!("site {} -> {site}", old.site));
    }
    if old.tags != merged.tags {
        changed.push(format!("tags +{}", {
            let added: Vec<&str> = merged
                .tags
                .iter()
                .filter(|t| !old.tags.contains(t))
                .map(String::as_str)
                .collect();
            added.join(",")
        }));
    }
    (merged, changed)
}

/// Drops the entries that cannot be imported as they are (bad name, no host, a name listed
/// twice: the first wins), reporting each; returns the rest in order.
pub fn screen(entries: Vec<ImportEntry>, report: &mut ImportReport) -> Vec<ImportEntry> {
    let mut seen: Vec<String> = Vec::new();
    let mut kept: Vec<ImportEntry> = Vec::new();
    for e in entries {
        if let Err(msg) = ptui_types::server::validate_server_name(&e.spec.name) {
            report.skip(&e.spec.name, &e.origin, msg);
        } else if e.spec.host.trim().is_empty() {
            report.skip(&e.spec.name, &e.origin, "no host address");
        } else if let Some(p) = e.spec.problem() {
            report.skip(&e.spec.name, &e.origin, p.to_string());
        } else if seen.contains(&e.spec.name) {
            report.skip(
                &e.spec.name,
                &e.origin,
                "listed more than once; the first entry was used",
            );
        } else {
            seen.push(e.spec.name.clone());
            kept.push(e);
        }
    }
    kept
}

/// The local user name, OpenSSH's default login user.
pub fn local_user() -> String {
    whoami::username()
}

/// Makes a server name out of a host alias: keeps `[A-Za-z0-9._-]`, replaces the rest with `-`.
pub fn name_from(alias: &str) -> String {
    let s: String = alias
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_start_matches('-').chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, f: impl FnOnce(&mut ServerSpec)) -> ImportEntry {
        let mut spec = ServerSpec {
            name: name.into(),
            host: "10.0.0.1".into(),
            port: 22,
            user: "deploy".into(),
            ..Default::default()
        };
        f(&mut spec);
        ImportEntry {
            spec,
            escalate: None,
            origin: format!("inv:{name}"),
        }
    }

    #[test]
    fn screen_skips_hosts_ports_users_and_tags_server_add_refuses() {
        let mut report = ImportReport::default();
        let kept = screen(
            vec![
                entry("ok", |_| {}),
                entry("spaced", |s| s.host = "a b".into()),
                entry("escaped", |s| s.host = "h\x1b]0;x\x07".into()),
                entry("port0", |s| s.port = 0),
                entry("user", |s| s.user = "u\u{9b}".into()),
                entry("tag", |s| s.tags = vec!["a,b".into()]),
            ],
            &mut report,
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].spec.name, "ok");
        let why = |name: &str| {
            report
                .rows
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.outcome.to_string())
                .unwrap_or_default()
        };
        assert!(
            why("spaced").starts_with("skipped: host \"a b\""),
            "{}",
            why("spaced")
        );
        assert!(why("escaped").starts_with("skipped: host"));
        assert!(why("port0").starts_with("skipped: port"));
        assert!(why("user").starts_with("skipped: user"));
        assert!(why("tag").starts_with("skipped: tag \"a,b\""));
    }
}
