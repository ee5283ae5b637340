//! Read models for the front ends: each page is assembled here once, so the dashboard and the
//! CLI show the same thing.

use crate::engine::Engine;
use color_eyre::eyre::Result;
use ptui_types::job::{JobFilter, JobStatus};
use ptui_types::records::{AuditEntry, IncidentRow, ServerDetail, ServerEvent, Summary};
use ptui_types::server::Server;

pub use ptui_store::health_reads::Uptime;
pub use ptui_store::incidents::{Incident, TimelineEntry};

/// A server's health on its detail page: the last sample and uptime over 24 h and 7 d, for
/// the server and each app with a health check.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HealthPage {
    pub last: Option<ptui_types::health::Sample>,
    pub uptime_24h: Uptime,
    pub uptime_7d: Uptime,
    /// (app, 24 h, 7 d).
    pub apps: Vec<(String, Uptime, Uptime)>,
}

/// What the incident detail page shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IncidentDetail {
    pub incident: ptui_store::incidents::Incident,
    pub acked_by: Option<String>,
    pub timeline: Vec<ptui_store::incidents::TimelineEntry>,
}

impl Engine {
    /// The server detail page: the server, its sudo settings and, newest first, up to `limit`
    /// status changes, jobs and incidents, plus its deployments.
    pub fn server_detail(&self, name: &str, limit: usize) -> Result<ServerDetail> {
        let st = self.store();
        let server = st.require_server(name)?;
        Ok(ServerDetail {
            sudo: st.server_sudo(server.id)?,
            events: st.server_events(server.id, limit)?,
            deployments: st.deployments(Some(server.id))?,
            jobs: st.list_jobs(&JobFilter {
                server: Some(server.name.clone()),
                limit: Some(limit),
                ..Default::default()
            })?,
            incidents: st.incidents(Some(server.id), limit)?,
            server,
        })
    }

    /// The header's counts: running and queued jobs, open incidents.
    pub fn summary(&self) -> Result<Summary> {
        let st = self.store();
        let counts = st.job_status_counts()?;
        let get = |s| {
            counts
                .iter()
                .find(|(k, _)| *k == s)
                .map(|x| x.1)
                .unwrap_or(0)
        };
        Ok(Summary {
            running: get(JobStatus::Running),
            queued: get(JobStatus::Queued),
            incidents_open: st.open_incident_count()?,
            unserved_sites: self.unserved_sites()?,
        })
    }

    /// Open incidents first, then the most recent; optionally of one server.
    pub fn incident_list(&self, server_id: Option<i64>, limit: usize) -> Result<Vec<IncidentRow>> {
        self.store().incidents(server_id, limit)
    }

    /// Newest first; `filter` matches operator, action, target or details (substring).
    pub fn audit_entries(&self, filter: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>> {
        self.store().audit_entries(filter, limit)
    }

    /// The highest stored log sequence number of a job (0 when it has no lines).
    pub fn job_log_count(&self, job: i64) -> Result<i64> {
        self.store().job_log_count(job)
    }

    /// A server by name, or an error that says it is unknown.
    pub fn server(&self, name: &str) -> Result<Server> {
        self.store().require_server(name)
    }

    /// Newest first.
    pub fn server_events(&self, server_id: i64, limit: usize) -> Result<Vec<ServerEvent>> {
        self.store().server_events(server_id, limit)
    }

    /// Incidents, newest first (only open ones with `open_only`), for the incident list.
    pub fn incident_history(
        &self,
        open_only: bool,
        limit: usize,
    ) -> Result<Vec<ptui_store::incidents::Incident>> {
        self.store().list_incidents(open_only, limit)
    }

    /// What happened to an incident, oldest first.
    pub fn incident_timeline(&self, id: i64) -> Result<Vec<ptui_store::incidents::TimelineEntry>> {
        self.store().incident_timeline(id)
    }

    /// An incident's detail page: the incident (affected deployments, attempts), who
    /// acknowledged it and its timeline, oldest first.
    pub fn incident_detail(&self, id: i64) -> Result<IncidentDetail> {
        let st = self.store();
        Ok(IncidentDetail {
            incident: st.incident(id)?,
            acked_by: st.incident_acked_by(id)?,
            timeline: st.incident_timeline(id)?,
        })
    }

    /// The last `per_server` samples of every server, oldest first (the dashboard's figures and
    /// sparklines before the next check).
    pub fn recent_health(&self, per_server: usize) -> Result<Vec<ptui_types::health::Sample>> {
        self.store().latest_samples(per_server)
    }

    /// The detail page's health: last sample, uptime 24 h and 7 d, per app too.
    pub fn health_page(&self, server: &str) -> Result<HealthPage> {
        const DAY: i64 = 86_400_000;
        let st = self.store();
        let s = st.require_server(server)?;
        let now = ptui_types::time::now_ms();
        let day = st.app_uptime(s.id, now - DAY)?;
        let week = st.app_uptime(s.id, now - 7 * DAY)?;
        let apps = week
            .into_iter()
            .map(|(app, w)| {
                let d = day
                    .iter()
                    .find(|(a, _)| *a == app)
                    .map(|x| x.1.clone())
                    .unwrap_or_default();
                (app, d, w)
            })
            .collect();
        Ok(HealthPage {
            last: st.last_sample(s.id)?,
            uptime_24h: st.server_uptime(s.id, now - DAY)?,
            uptime_7d: st.server_uptime(s.id, now - 7 * DAY)?,
            apps,
        })
    }

    /// A server's health policy (defaults when none was set).
    pub fn health_policy(&self, server_id: i64) -> Result<ptui_types::health::ServerHealthPolicy> {
        self.store().health_policy(server_id)
    }

    /// Manual maintenance windows in force now.
    pub fn active_maintenance(&self) -> Result<Vec<ptui_store::health::MaintenanceRow>> {
        self.store().active_maintenance()
    }

    /// Fleet metrics: servers and jobs by status, failure rates, incidents, check latency.
    pub fn metrics(&self) -> Result<crate::health::metrics::Metrics> {
        crate::health::metrics::collect(self.store())
    }
}
