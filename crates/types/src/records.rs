//! Rows the front ends read through the engine: audit entries, deployments, incidents,
//! server events and sudo settings. The store fills them; nothing here touches a database.

use crate::server::ServerStatus;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub ts: i64,
    pub operator: String,
    pub action: String,
    pub target: String,
    pub details: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Deployment {
    pub id: i64,
    pub server_id: i64,
    pub app_id: String,
    pub app_version: String,
    /// Inputs with sensitive values masked as `***` (their values are sealed apart: `ptui_engine::secrets`).
    pub inputs: serde_json::Value,
    pub job_id: Option<i64>,
    pub installed_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IncidentRow {
    pub id: i64,
    pub server: String,
    pub kind: String,
    pub state: String,
    pub app_id: Option<String>,
    pub opened_at: i64,
    pub updated_at: i64,
    pub resolved_at: Option<i64>,
    pub details: String,
    /// Recovery jobs started so far and when the next one may start.
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    /// Who acknowledged it (its reminders stopped), if anyone.
    pub acked_by: Option<String>,
}

/// One row of a server's status history.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerEvent {
    pub id: i64,
    pub server_id: i64,
    pub ts: i64,
    pub from_status: Option<ServerStatus>,
    pub to_status: ServerStatus,
    pub reason: String,
    pub job_id: Option<i64>,
}

/// How jobs escalate on one server. The default (no row) is `sudo -n` for non-root logins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SudoSettings {
    /// `Some(false)`: never sudo (Ansible `ansible_become: false`); `None`: the default.
    pub escalate: Option<bool>,
    /// Environment variable (of the provision-tui process) holding the sudo password.
    pub password_env: Option<String>,
    /// Ask for the sudo password (TUI dialog or CLI prompt); it is kept in memory only.
    pub prompt: bool,
}

/// Everything the server detail page shows (the dashboard's detail and `server show`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerDetail {
    pub server: crate::server::Server,
    pub sudo: SudoSettings,
    /// Newest first.
    pub events: Vec<ServerEvent>,
    pub deployments: Vec<Deployment>,
    /// Newest first.
    pub jobs: Vec<crate::job::Job>,
    pub incidents: Vec<IncidentRow>,
}

/// The counts in the dashboard's header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub running: i64,
    pub queued: i64,
    pub incidents_open: i64,
    /// Sites with servers and no live provision-tui process: their jobs wait, their servers
    /// go unchecked.
    pub unserved_sites: Vec<String>,
}
