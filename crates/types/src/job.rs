//! Jobs: one installer run on one server.

use crate::error::ErrorKind;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    /// Its process died while it ran on the server; it goes on there until a process adopts it.
    Detached,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
    /// The run failed (or the app's health check right after it did), and the configuration
    /// kept before it was restored and the service restarted.
    RolledBack,
}

impl JobStatus {
    pub const ALL: [JobStatus; 8] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Detached,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Interrupted,
        JobStatus::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Detached => "detached",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Interrupted => "interrupted",
            JobStatus::RolledBack => "rolled_back",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }

    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            JobStatus::Queued | JobStatus::Running | JobStatus::Detached
        )
    }

    pub fn can_transition_to(self, to: JobStatus) -> bool {
        use JobStatus::*;
        match self {
            Queued => matches!(to, Running | Failed | Cancelled | Interrupted),
            Running => matches!(
                to,
                Detached | Succeeded | Failed | Cancelled | Interrupted | RolledBack
            ),
            Detached => matches!(to, Running | Interrupted),
            _ => false,
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job does with its installer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    Install,
    Uninstall,
    Upgrade,
    /// Back to the previous recorded deployment: its inputs and its configuration copy, then
    /// the install script.
    Rollback,
}

impl JobAction {
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Install => "install",
            JobAction::Uninstall => "uninstall",
            JobAction::Upgrade => "upgrade",
            JobAction::Rollback => "rollback",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "install" => Some(JobAction::Install),
            "uninstall" => Some(JobAction::Uninstall),
            "upgrade" => Some(JobAction::Upgrade),
            "rollback" => Some(JobAction::Rollback),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub id: i64,
    pub server_id: Option<i64>,
    pub server_name: String,
    pub app_id: String,
    pub app_version: String,
    pub action: JobAction,
    pub status: JobStatus,
    pub error_kind: Option<ErrorKind>,
    pub error_message: Option<String>,
    pub exit_code: Option<i64>,
    /// Inputs as given, with sensitive values replaced by `***`.
    pub inputs: serde_json::Value,
    pub attempts: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The job's spool directory on its server (`~/.local/state/provision-tui/jobs/KEY`), once
    /// the job was sent there.
    #[serde(default)]
    pub spool: Option<String>,
    /// The process following the job (`pid@host`); None while a queued job waits for a
    /// process of its site to claim it.
    #[serde(default)]
    pub owner: Option<String>,
    /// Set when the job was queued for the processes of its server's site (started by a
    /// process that does not serve it); None: run by the process that started it.
    #[serde(default)]
    pub site: Option<String>,
}

impl Job {
    /// Elapsed milliseconds: until now while running, until the end once finished.
    pub fn duration_ms(&self, now_ms: i64) -> Option<i64> {
        let start = self.started_at?;
        Some(self.finished_at.unwrap_or(now_ms) - start)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Lines written by provision-tui itself (connecting, retrying, exit status).
    System,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::System => "system",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "stdout" => LogStream::Stdout,
            "stderr" => LogStream::Stderr,
            _ => LogStream::System,
        }
    }
}

/// One stored log line: `(job_id, seq, stream, ts, text)`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogLine {
    pub job_id: i64,
    pub seq: i64,
    pub stream: LogStream,
    pub ts: i64,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses_do_not_move() {
        for s in JobStatus::ALL {
            if s.is_terminal() {
                assert!(JobStatus::ALL.iter().all(|t| !s.can_transition_to(*t)));
            }
        }
        assert!(JobStatus::Queued.can_transition_to(JobStatus::Running));
        assert!(!JobStatus::Queued.can_transition_to(JobStatus::Succeeded));
    }
}

/// Filters for `jobs` listings.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub server: Option<String>,
    pub app: Option<String>,
    pub limit: Option<usize>,
    /// Only jobs with an id above this (for incremental refresh).
    pub after_id: Option<i64>,
}

impl JobStatus {
    /// Queued, running or detached: not finished yet.
    pub fn is_running(self) -> bool {
        !self.is_terminal()
    }
}
