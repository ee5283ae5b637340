//! What the engine tells its front ends (and its own fan-out coordinator) over the broadcast
//! channel. Plain data, shared by the engine core and the jobs module.

use ptui_types::job::{Job, LogLine};
use ptui_types::server::Server;
use serde::Serialize;

/// Everything the engine tells its front ends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    JobQueued {
        job: Job,
    },
    JobStarted {
        job: Job,
    },
    /// Log lines, already masked and stored.
    JobLog {
        job_id: i64,
        lines: Vec<LogLine>,
    },
    JobFinished {
        job: Job,
    },
    /// A job goes on on its server without a process following it (its process left it, or
    /// could not store its output); any process can adopt it.
    JobDetached {
        job: Job,
    },
    ServerChanged {
        server: Server,
    },
    ServerRemoved {
        name: String,
    },
    /// Progress of a fan-out (batches, skipped hosts, the end).
    Fanout {
        fanout: FanoutEvent,
    },
    /// Another process changed the database; re-read what you show.
    ExternalChange,
    /// One health check of one server (for sparklines); `states` lists pending/down conditions.
    HealthSample {
        sample: ptui_types::health::Sample,
    },
    /// An incident opened, changed state (recovering, failed) or resolved.
    IncidentChanged {
        incident: ptui_store::incidents::Incident,
    },
    /// A notification was sent, dropped by the rate limit, or failed after its retries.
    Notification {
        channel: String,
        topic: String,
        outcome: String,
        detail: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FanoutEvent {
    Started {
        fanout_id: u64,
        app: String,
        hosts: Vec<String>,
        batches: Vec<usize>,
        concurrency: usize,
        /// Failures tolerated before the remaining hosts are skipped.
        max_fail: Option<usize>,
    },
    BatchStarted {
        fanout_id: u64,
        batch: usize,
        hosts: Vec<String>,
    },
    /// A job was created for a host.
    JobLaunched {
        fanout_id: u64,
        server: String,
        job_id: i64,
    },
    /// Hosts never started, and why.
    Skipped {
        fanout_id: u64,
        servers: Vec<String>,
        reason: String,
    },
    Finished {
        fanout_id: u64,
        summary: FanoutSummary,
    },
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FanoutSummary {
    pub succeeded: Vec<String>,
    /// Failed, cancelled or interrupted jobs, and hosts whose job could not be created.
    pub failed: Vec<String>,
    pub skipped: Vec<String>,
    /// (server, job id) for every job created.
    pub jobs: Vec<(String, i64)>,
}
