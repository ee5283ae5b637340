//! Jobs whose process died: at every open, the engine sorts them out (a job that was sent to
//! its server is `detached`, one that never got there is `interrupted`); front ends that stay
//! open adopt the detached ones and follow them to their end.

use super::durable;
use crate::engine::Engine;
use crate::events::Event;
use color_eyre::eyre::Result;
use ptui_types::identity;
use ptui_types::job::{JobStatus, LogStream};
use ptui_types::time::now_ms;
use std::time::Duration;

/// How often a long-running front end looks for jobs to adopt.
const ADOPT_EVERY: Duration = Duration::from_secs(3);

/// What `sweep_orphans` did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sweep {
    /// Sent to their server before their process died: they go on there.
    pub detached: Vec<i64>,
    /// Never sent: nothing runs, they are over.
    pub interrupted: Vec<i64>,
}

impl Engine {
    fn stale_before(&self) -> i64 {
        now_ms() - 2 * self.config().jobs.lease_ttl.as_millis() as i64
    }

    /// Finds the jobs whose process died (by the same lease and heartbeat rules as leases):
    /// a job already sent to its server becomes `detached`, one that was not becomes
    /// `interrupted`.
    pub fn sweep_orphans(&self) -> Result<Sweep> {
        // Looking only: no background writes (the next writable process sorts them out).
        if !self.access().housekeeping() {
            return Ok(Sweep::default());
        }
        let store = self.store();
        let mut sweep = Sweep::default();
        for id in store.orphaned_jobs(self.stale_before(), identity::owner_alive)? {
            let Some(job) = store.job(id)? else { continue };
            match job.status {
                JobStatus::Detached => {}
                JobStatus::Running => {
                    let why = "the provision-tui process following this job stopped; the job goes on on its server and is collected by the next dashboard, `watch`, `logs --follow` or `jobs reattach`";
                    match store.detach_job(id, why)? {
                        Some(job) => {
                            sweep.detached.push(id);
                            self.emit(Event::JobDetached { job });
                        }
                        // Not detached: another process sweeping at the same moment may
                        // have detached it first; else it was never sent.
                        None if !store
                            .job(id)?
                            .is_some_and(|j| j.status == JobStatus::Running) => {}
                        None if self.requeued(&job)? => {}
                        None => {
                            self.mark_interrupted(id)?;
                            sweep.interrupted.push(id);
                        }
                    }
                }
                _ if self.requeued(&job)? => {}
                _ => {
                    self.mark_interrupted(id)?;
                    sweep.interrupted.push(id);
                }
            }
        }
        Ok(sweep)
    }

    /// A job queued for a site whose claimer died before sending it goes back to the queue
    /// (another process of the site claims it) instead of ending. Only when the claimer is
    /// surely dead (a process of this host that is gone): one that merely stopped
    /// heartbeating could still send it, and a requeued job would then run twice; such a job
    /// ends interrupted, as a local one does.
    fn requeued(&self, job: &ptui_types::job::Job) -> Result<bool> {
        let gone = job.owner.as_deref().is_some_and(|o| {
            o.split_once('@')
                .is_some_and(|(_, h)| h == identity::hostname())
                && !identity::owner_alive(o)
        });
        if job.site.is_none() || !gone {
            return Ok(false);
        }
        let why = "the process that claimed this job stopped before sending it to its server: queued again for its site";
        self.store().requeue_site_job(job.id, why)
    }

    /// Whether this process reaches the job's server (its site is one this process serves).
    fn reaches(&self, job: &ptui_types::job::Job) -> bool {
        job.server_id
            .and_then(|id| self.store().server_by_id(id).ok().flatten())
            .is_none_or(|s| self.serves(&s.site))
    }

    /// Marks a job that never reached its server as interrupted; its server, if left
    /// provisioning, goes to error.
    fn mark_interrupted(&self, id: i64) -> Result<()> {
        let store = self.store();
        let job = store.mark_job_interrupted(
            id,
            "the provision-tui process running this job stopped before the job was sent to its server; run the install again (installers are idempotent)",
        )?;
        store.append_logs(
            id,
            &[(
                LogStream::System,
                now_ms(),
                "interrupted: the process running this job stopped before the job was sent".into(),
            )],
        )?;
        self.emit(Event::JobFinished { job });
        Ok(())
    }

    /// Adopts the detached jobs (only those on `servers`, if given) and follows each to its
    /// end in this process. Exactly one process adopts a job. Needs a tokio runtime.
    pub fn adopt_detached(&self, servers: Option<&[String]>) -> Result<Vec<i64>> {
        if !self.access().housekeeping() {
            return Ok(Vec::new());
        }
        self.sweep_orphans()?;
        let ctx = self.job_context();
        let mut adopted = Vec::new();
        for job in self.store().detached_jobs()? {
            if servers.is_some_and(|s| !s.contains(&job.server_name)) || !self.reaches(&job) {
                continue;
            }
            if let Some(job) = self.store().try_adopt_job(
                job.id,
                &ctx.owner,
                self.stale_before(),
                identity::owner_alive,
            )? {
                adopted.push(job.id);
                durable::spawn_adopted(ctx.clone(), job);
            }
        }
        Ok(adopted)
    }

    /// Adopts one job (`jobs reattach N`): detached, or running under a dead process.
    pub fn adopt_job(&self, id: i64) -> Result<bool> {
        if !self.access().housekeeping() {
            return Ok(false);
        }
        self.sweep_orphans()?;
        // Another site's job is adopted by a process of that site.
        if !self.store().job(id)?.is_some_and(|j| self.reaches(&j)) {
            return Ok(false);
        }
        let ctx = self.job_context();
        match self.store().try_adopt_job(
            id,
            &ctx.owner,
            self.stale_before(),
            identity::owner_alive,
        )? {
            Some(job) => {
                durable::spawn_adopted(ctx, job);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Keeps adopting, every few seconds, for front ends that stay open (the dashboard,
    /// `watch`): a job whose process dies meanwhile is collected here. Holds no strong
    /// reference to the engine.
    pub fn spawn_adopter(&self) {
        if !self.access().housekeeping() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = self.downgrade();
        rt.spawn(async move {
            let mut tick = tokio::time::interval(ADOPT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(engine) = Engine::upgrade(&weak) else {
                    break;
                };
                // The database may be busy or full for a moment: try again at the next tick.
                if let Err(e) = engine.adopt_detached(None) {
                    tracing::warn!("adopting detached jobs failed: {e:#}");
                }
            }
        });
    }

    /// Leaves this process's jobs running on their servers when it quits: those already sent
    /// become `detached` (any process adopts them later), those not sent yet are over.
    /// Returns (detached, not started).
    pub fn detach_running(&self) -> Result<(usize, usize)> {
        let (mut detached, mut dropped) = (0, 0);
        let who = self.operator().to_string();
        for id in self.running_here() {
            let why = format!(
                "left running on its server by {who}: the job goes on there and is collected by the next dashboard, `watch`, `logs --follow` or `jobs reattach`"
            );
            match self.store().detach_job(id, &why)? {
                Some(job) => {
                    detached += 1;
                    self.emit(Event::JobDetached { job });
                }
                None => {
                    if self
                        .store()
                        .job(id)?
                        .is_some_and(|j| !j.status.is_terminal())
                    {
                        self.mark_interrupted(id)?;
                        dropped += 1;
                    }
                }
            }
        }
        Ok((detached, dropped))
    }
}
