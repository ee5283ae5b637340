//! The list screens' state: catalog, jobs (with the log pane), incidents and audit, each with
//! its filter and selection.

use super::logview::LogView;
use ptui_catalog::Manifest;
use ptui_types::job::Job;
use ptui_types::records::IncidentRow;

#[derive(Debug, Default)]
pub struct CatalogState {
    pub items: Vec<Manifest>,
    pub problems: usize,
    pub sel: usize,
    pub filter: String,
}

impl CatalogState {
    pub fn shown(&self) -> Vec<&Manifest> {
        let f = self.filter.to_lowercase();
        self.items
            .iter()
            .filter(|m| {
                f.is_empty()
                    || m.id.to_lowercase().contains(&f)
                    || m.name.to_lowercase().contains(&f)
                    || m.category.to_lowercase().contains(&f)
            })
            .collect()
    }
}

#[derive(Debug, Default)]
pub struct JobsState {
    pub jobs: Vec<Job>,
    pub sel: usize,
    pub filter: String,
    pub focus_log: bool,
    pub log: LogView,
}

/// A filter's words, lower-cased (each must match).
fn filter_words(filter: &str) -> Vec<String> {
    filter.split_whitespace().map(str::to_lowercase).collect()
}

impl JobsState {
    /// Jobs matching the filter: `status:X`, `server:X`, `app:X` tokens or free words.
    pub fn shown(&self) -> Vec<&Job> {
        let words = filter_words(&self.filter);
        self.jobs
            .iter()
            .filter(|j| {
                words.iter().all(|w| match w.split_once(':') {
                    Some(("status", v)) => j.status.as_str().starts_with(v),
                    Some(("server", v)) => j.server_name.to_lowercase().contains(v),
                    Some(("app", v)) => j.app_id.to_lowercase().contains(v),
                    _ => {
                        j.status.as_str().contains(w.as_str())
                            || j.server_name.to_lowercase().contains(w.as_str())
                            || j.app_id.to_lowercase().contains(w.as_str())
                    }
                })
            })
            .collect()
    }

    pub fn selected(&self) -> Option<&Job> {
        self.shown().get(self.sel).copied()
    }
}

#[derive(Debug)]
pub struct ListState<T> {
    pub items: Vec<T>,
    pub sel: usize,
    pub filter: String,
}

impl<T> Default for ListState<T> {
    fn default() -> Self {
        ListState {
            items: Vec::new(),
            sel: 0,
            filter: String::new(),
        }
    }
}

impl ListState<IncidentRow> {
    /// Incidents matching the filter: `server:X`, `kind:X`, `state:X` tokens or free words
    /// (server, kind, state, app); `open` (or `state:open`) means not resolved yet.
    pub fn shown(&self) -> Vec<&IncidentRow> {
        let words = filter_words(&self.filter);
        let has = |field: &str, w: &str| field.to_lowercase().contains(w);
        self.items
            .iter()
            .filter(|i| {
                let open = i.resolved_at.is_none();
                words.iter().all(|w| match w.split_once(':') {
                    Some(("server", v)) => has(&i.server, v),
                    Some(("kind", v)) => has(&i.kind, v),
                    Some(("state", "open")) => open,
                    Some(("state", v)) => i.state.to_lowercase().starts_with(v),
                    _ if w == "open" => open,
                    _ => {
                        has(&i.server, w)
                            || has(&i.kind, w)
                            || has(&i.state, w)
                            || i.app_id.as_deref().is_some_and(|a| has(a, w))
                    }
                })
            })
            .collect()
    }
}

/// The Audit screen's verification of the log's HMAC chain (`Engine::verify_audit`, read off
/// the loop with each audit reload).
#[derive(Debug, Clone, PartialEq)]
pub enum AuditChain {
    Intact {
        rows: usize,
        head: Option<String>,
    },
    /// Where and how the chain breaks, in the engine's words.
    Broken(String),
    /// It could not be checked (a missing key, a database error).
    Unverified(String),
}

impl AuditChain {
    pub fn from_verdict<E: std::fmt::Display>(
        r: Result<ptui_engine::secrets::AuditVerdict, E>,
    ) -> AuditChain {
        match r {
            Ok(v) => match v.problem {
                Some(p) => AuditChain::Broken(p.message),
                None => AuditChain::Intact {
                    rows: v.rows,
                    head: v.head,
                },
            },
            Err(e) => AuditChain::Unverified(format!("{e:#}")),
        }
    }
}
