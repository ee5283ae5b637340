//! From samples and jobs to incidents: open on a DOWN crossing, resolve on an UP crossing,
//! `provisioning_failed` on a failed install job, reminders while open. Nothing opens and
//! nothing is sent during maintenance (an incident may still resolve, silently).

use super::notify::{Message, Topic};
use super::service::{HealthService, lock};
use super::tracker::Transition;
use super::{IncidentKind, Sample};
use crate::engine::Event;
use ptui_store::incidents::Incident;
use ptui_types::error::ErrorKind;
use ptui_types::job::{Job, JobAction, JobStatus};
use ptui_types::time::now_ms;

impl HealthService {
    /// Adds a line to an incident's timeline. A failed write loses only that line (the
    /// incident itself is stored), so it is logged rather than stopping the caller.
    pub(crate) fn note(&self, incident_id: i64, message: &str, job_id: Option<i64>) {
        if let Err(e) = self
            .engine
            .store()
            .incident_event(incident_id, message, job_id)
        {
            tracing::warn!("incident #{incident_id}: cannot record {message:?}: {e:#}");
        }
    }

    /// Records when people were last told about an incident; on failure a reminder may come
    /// early, which is logged.
    fn mark_notified(&self, incident_id: i64, at: i64) {
        if let Err(e) = self.engine.store().mark_incident_notified(incident_id, at) {
            tracing::warn!("incident #{incident_id}: cannot record its notification: {e:#}");
        }
    }

    /// Stores a sample, emits it, and acts on its threshold crossings.
    pub fn handle_sample(&self, mut sample: Sample) {
        let maintenance = self.maintenance().reason(&sample.server);
        sample.maintenance = maintenance.is_some();
        let h = &self.cfg.health;
        let crossings =
            lock(&self.tracker).evaluate(&mut sample, h.disk_threshold, h.memory_threshold);
        if let Err(e) = self
            .engine
            .store()
            .insert_samples(std::slice::from_ref(&sample))
        {
            tracing::warn!("cannot store the health sample of {}: {e:#}", sample.server);
        }
        self.engine.emit(Event::HealthSample {
            sample: sample.clone(),
        });
        for c in crossings {
            match c {
                Transition::Down {
                    kind,
                    app_id,
                    detail,
                } => {
                    self.open(sample.server_id, kind, app_id.as_deref(), &detail);
                }
                Transition::Up { kind, app_id } => self.resolve_matching(
                    sample.server_id,
                    kind,
                    app_id.as_deref(),
                    "checks pass again",
                    maintenance.is_some(),
                ),
            }
        }
    }

    /// Opens an incident (if none is open for this server, kind and app) and tells people,
    /// unless the server is in maintenance: then it is only recorded (checks never get here
    /// during a window; an operator's `force_rebuild` does). Returns the new incident.
    pub fn open(
        &self,
        server_id: i64,
        kind: IncidentKind,
        app_id: Option<&str>,
        detail: &str,
    ) -> Option<Incident> {
        match self
            .engine
            .store()
            .open_incident(server_id, kind, app_id, detail)
        {
            Ok(Some(o)) => {
                tracing::warn!(
                    "incident #{} opened: {} on {}: {detail}",
                    o.incident.id,
                    kind,
                    o.incident.server
                );
                if let Some(server) = o.server {
                    self.engine.emit(Event::ServerChanged { server });
                }
                if self.maintenance().reason(&o.incident.server).is_none() {
                    self.mark_notified(o.incident.id, now_ms());
                    self.notifier
                        .send(Message::incident(Topic::IncidentOpened, &o.incident, ""));
                }
                self.engine.emit(Event::IncidentChanged {
                    incident: o.incident.clone(),
                });
                Some(o.incident)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!("cannot open a {kind} incident: {e:#}");
                None
            }
        }
    }

    /// Resolves the open incident of this server, kind and app, if there is one.
    pub fn resolve_matching(
        &self,
        server_id: i64,
        kind: IncidentKind,
        app_id: Option<&str>,
        why: &str,
        silent: bool,
    ) {
        let open = self.engine.store().open_incidents().unwrap_or_default();
        for inc in open.into_iter().filter(|i| {
            i.server_id == Some(server_id) && i.kind == kind && i.app_id.as_deref() == app_id
        }) {
            match self.engine.store().resolve_incident(inc.id, why) {
                Ok(r) => {
                    tracing::info!("incident #{} resolved: {why}", inc.id);
                    if let Some(server) = r.server {
                        self.engine.emit(Event::ServerChanged { server });
                    }
                    if !silent {
                        self.notifier.send(Message::incident(
                            Topic::IncidentResolved,
                            &r.incident,
                            why,
                        ));
                    }
                    self.engine.emit(Event::IncidentChanged {
                        incident: r.incident,
                    });
                }
                Err(e) => tracing::error!("cannot resolve incident #{}: {e:#}", inc.id),
            }
        }
    }

    /// Jobs that ended since `since` (by any process): a failed install opens
    /// `provisioning_failed` and is notified; a later successful install resolves it.
    /// Returns the new watermark.
    pub fn on_finished_jobs(&self, since: i64) -> i64 {
        let jobs = match self.engine.store().jobs_finished_since(since) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!("cannot read finished jobs: {e:#}");
                return since;
            }
        };
        let mut mark = since;
        for job in jobs {
            mark = mark.max(job.finished_at.unwrap_or(since));
            self.on_job_finished(&job);
        }
        mark
    }

    fn on_job_finished(&self, job: &Job) {
        let Some(sid) = job.server_id else { return };
        // Another site's checker handles its own servers' jobs.
        if !self.is_mine(sid) {
            return;
        }
        let install = matches!(job.action, JobAction::Install | JobAction::Upgrade);
        let by_recovery = lock(&self.recovery_jobs).contains(&job.id);
        let maintenance = self.maintenance().reason(&job.server_name).is_some();
        match job.status {
            // The change failed, but the guard restored the configuration and the service
            // answers: worth a message, not an incident.
            JobStatus::RolledBack if !maintenance => {
                self.notifier.send(Message::job_failed(job));
            }
            JobStatus::Failed | JobStatus::Interrupted => {
                if !maintenance {
                    self.notifier.send(Message::job_failed(job));
                }
                // Exit 1 (installer_validation): the installer refused its inputs and changed
                // nothing, so nothing failed on the server.
                let refused = job.error_kind == Some(ErrorKind::InstallerValidation);
                if install && !by_recovery && !maintenance && !refused {
                    let detail = format!(
                        "job #{} {} {} failed: {}",
                        job.id,
                        job.action.as_str(),
                        job.app_id,
                        job.error_message.as_deref().unwrap_or("failed")
                    );
                    self.open(
                        sid,
                        IncidentKind::ProvisioningFailed,
                        Some(&job.app_id),
                        &detail,
                    );
                }
            }
            JobStatus::Succeeded if install => self.resolve_matching(
                sid,
                IncidentKind::ProvisioningFailed,
                Some(&job.app_id),
                &format!("job #{} installed {} successfully", job.id, job.app_id),
                maintenance,
            ),
            _ => {}
        }
    }

    /// Re-sends open incidents every `resend_interval` (0 = never).
    pub fn reminder_tick(&self) {
        let every = self.cfg.notifications.resend_interval.0.as_millis() as i64;
        if every == 0 || self.notifier.is_empty() {
            return;
        }
        let now = now_ms();
        let view = self.maintenance();
        // An acknowledged incident has someone on it: no more reminders.
        let acked = self.engine.store().acked_incidents().unwrap_or_default();
        for inc in self.engine.store().open_incidents().unwrap_or_default() {
            if inc.server_id.is_some_and(|sid| !self.is_mine(sid)) {
                continue;
            }
            let last = inc.last_notified_at.unwrap_or(inc.opened_at);
            if now - last < every || view.reason(&inc.server).is_some() || acked.contains(&inc.id) {
                continue;
            }
            self.mark_notified(inc.id, now);
            let open_for = ptui_types::time::human_ms(now - inc.opened_at);
            self.notifier.send(Message::incident(
                Topic::IncidentReminder,
                &inc,
                &format!("open for {open_for}, state {}", inc.state),
            ));
        }
    }
}
