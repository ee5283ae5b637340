//! What front ends ask of the health side: start the checker, check now, record samples,
//! change a server's health policy, manual maintenance windows. Reads are in queries.rs.

use super::config::HealthConfig;
use super::service::HealthService;
use super::{Sample, ServerHealthPolicy, checker};
use crate::access::Change;
use crate::engine::Engine;
use color_eyre::eyre::{Result, bail};
use ptui_types::server::Server;
use tokio_util::sync::CancellationToken;

impl Engine {
    /// Starts the health checker (checks, incidents, recovery, notifications) in the background;
    /// cancel the token to stop it. With another checker on this database, the singleton lease
    /// keeps this one on standby.
    pub fn start_health(&self, cfg: HealthConfig) -> Result<CancellationToken> {
        self.permit(Change::HealthCheck, "health checker")?;
        Ok(HealthService::new(self.clone(), cfg)?.spawn())
    }

    /// One check of these servers now (every watched server when `names` is empty), stored
    /// like the checker's samples; a sample taken in a maintenance window says so.
    pub async fn check_now(&self, cfg: HealthConfig, names: &[String]) -> Result<Vec<Sample>> {
        self.permit(Change::HealthCheck, &names.join(","))?;
        let servers = if names.is_empty() {
            let all = HealthService::watched(self.servers()?);
            let total = all.len();
            let here: Vec<Server> = all.into_iter().filter(|s| self.serves(&s.site)).collect();
            if here.is_empty() && total > 0 {
                bail!(
                    "none of the {total} server(s) is in a site this process serves ({}); pass --site SITE, or check from a bastion of their site",
                    self.sites().join(", ")
                );
            }
            here
        } else {
            let named = names
                .iter()
                .map(|n| self.server(n))
                .collect::<Result<Vec<_>>>()?;
            for s in &named {
                self.require_site(s)?;
            }
            named
        };
        if servers.is_empty() {
            bail!("no servers to check; add one with `provision-tui server add`");
        }
        let svc = HealthService::new(self.clone(), cfg)?;
        let maint = svc.maintenance();
        let mut samples =
            checker::sweep(self, &servers, &svc.params(), svc.cfg.health.concurrency).await;
        for s in &mut samples {
            s.maintenance = maint.reason(&s.server).is_some();
        }
        self.record_samples(&samples)?;
        Ok(samples)
    }

    /// Stores health samples taken outside the checker (a sweep, a benchmark).
    pub fn record_samples(&self, samples: &[Sample]) -> Result<()> {
        self.permit(Change::HealthCheck, "samples")?;
        self.store().insert_samples(samples)
    }

    /// Replaces a server's health policy and audits the change.
    pub fn set_health_policy(&self, server: &str, p: &ServerHealthPolicy) -> Result<()> {
        self.permit(Change::Policy, server)?;
        self.store().set_health_policy(p)?;
        self.audit(
            "server.policy",
            server,
            &format!(
                "recovery={} base={} interval={}",
                p.recovery.as_str(),
                p.base_installer.as_deref().unwrap_or("-"),
                // Plain words in the audit log, not Rust's `Some(15000)`.
                p.interval_ms
                    .map(ptui_types::time::human_ms)
                    .unwrap_or_else(|| "default".into())
            ),
        )
    }

    /// Starts a manual maintenance window on a server (None: the whole fleet) until `ends_at`
    /// (None: until turned off), and audits it under `label`.
    pub fn maintenance_on(
        &self,
        server_id: Option<i64>,
        label: &str,
        ends_at: Option<i64>,
        reason: &str,
    ) -> Result<()> {
        self.permit(Change::Maintenance, label)?;
        self.store()
            .maintenance_on(server_id, ends_at, reason, self.operator())?;
        self.audit("maintenance.on", label, reason)
    }

    /// Ends the manual windows of a server (None: the fleet-wide ones), audited under `label`;
    /// returns how many ended.
    pub fn maintenance_off(&self, server_id: Option<i64>, label: &str) -> Result<usize> {
        self.permit(Change::Maintenance, label)?;
        let n = self.store().maintenance_off(server_id)?;
        self.audit("maintenance.off", label, "")?;
        Ok(n)
    }

    /// Acknowledges an open incident (its reminders stop), with an optional note; audited as
    /// `incident.ack`. The dashboard and `incidents ack` both call this.
    pub fn ack_incident(&self, id: i64, note: Option<&str>) -> Result<()> {
        self.permit(Change::AcknowledgeIncident, &format!("#{id}"))?;
        self.store().ack_incident(id, self.operator(), note)?;
        // No IncidentChanged event: front ends would take it for a state change (a new
        // incident rings the bell); the caller re-reads, other processes see the commit.
        self.audit("incident.ack", &format!("#{id}"), note.unwrap_or(""))
    }

    /// Adds a note to an incident's timeline; audited as `incident.note`.
    pub fn note_incident(&self, id: i64, note: &str) -> Result<()> {
        self.permit(Change::AcknowledgeIncident, &format!("#{id}"))?;
        if note.trim().is_empty() {
            color_eyre::eyre::bail!("the note is empty: type what you want to record");
        }
        self.store().note_incident(id, self.operator(), note)?;
        self.audit("incident.note", &format!("#{id}"), note.trim())
    }
}

#[cfg(test)]
mod tests {
    use crate::Engine;
    use ptui_types::config::Config;
    use ptui_types::health::IncidentKind;
    use ptui_types::server::ServerSpec;

    #[test]
    fn acknowledging_records_who_stops_reminders_and_is_audited() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let e = Engine::open(Config::new(Some(tmp.path().join("state.db")), vec![])).expect("open");
        let s = e
            .add_server(&ServerSpec {
                name: "web1".into(),
                host: "127.0.0.1".into(),
                port: 22,
                user: "root".into(),
                ..Default::default()
            })
            .expect("add");
        let inc = e
            .store()
            .open_incident(s.id, IncidentKind::ServiceDown, Some("nginx"), "inactive")
            .expect("open")
            .expect("new")
            .incident;
        assert!(e.store().acked_incidents().expect("acks").is_empty());
        e.ack_incident(inc.id, Some("looking at it")).expect("ack");
        assert_eq!(e.store().acked_incidents().expect("acks"), [inc.id]);
        e.note_incident(inc.id, "nginx.conf typo").expect("note");
        assert!(
            e.note_incident(inc.id, "  ").is_err(),
            "an empty note is refused"
        );
        assert!(
            e.ack_incident(9999, None).is_err(),
            "an unknown id is refused"
        );
        let d = e.incident_detail(inc.id).expect("detail");
        assert_eq!(d.acked_by.as_deref(), Some(e.operator()));
        let msgs: Vec<&str> = d.timeline.iter().map(|t| t.message.as_str()).collect();
        let who = e.operator().to_string();
        assert!(
            msgs.contains(&format!("acknowledged by {who}: looking at it").as_str()),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&format!("note by {who}: nginx.conf typo").as_str()),
            "{msgs:?}"
        );
        let row = &e.incident_list(None, 10).expect("list")[0];
        assert_eq!(row.acked_by.as_deref(), Some(who.as_str()));
        let audit = e.audit_entries(None, 10).expect("audit");
        let actions: Vec<(&str, &str)> = audit
            .iter()
            .map(|a| (a.action.as_str(), a.details.as_str()))
            .collect();
        assert!(
            actions.contains(&("incident.ack", "looking at it")),
            "{actions:?}"
        );
        assert!(
            actions.contains(&("incident.note", "nginx.conf typo")),
            "{actions:?}"
        );
        // A resolved incident takes notes, not acknowledgements.
        e.store().resolve_incident(inc.id, "back").expect("resolve");
        assert!(e.ack_incident(inc.id, None).is_err());
        e.note_incident(inc.id, "post-mortem filed")
            .expect("note after");
    }
}
