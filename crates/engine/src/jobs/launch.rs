//! Starting jobs: validate an install request (installer, script, inputs, servers), then create
//! one job per server and spawn its runner. Fan-outs (jobs/fanout.rs) call the same two steps.

use crate::engine::{Engine, Event, InstallRequest, RequestError};
use crate::events::FanoutEvent;
use crate::jobs::runner;
use ptui_catalog::{Installer, ResolvedInputs, resolve_inputs};
use ptui_store::jobs::NewJob;
use ptui_types::job::{Job, JobAction};
use ptui_types::server::Server;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tokio_util::sync::CancellationToken;

/// Everything checked before any job exists.
pub struct Prepared {
    pub(crate) installer: Installer,
    inputs: ResolvedInputs,
    masked: serde_json::Value,
    pub(crate) action: JobAction,
    pub servers: Vec<Server>,
    /// Input names the request gave: a stored secret never overrides one of these.
    given: BTreeSet<String>,
    /// Each server's recorded secrets for this app (unsealed, in memory only).
    stored: HashMap<i64, BTreeMap<String, String>>,
    /// Upgrades: each server's own inputs (given ones over its recorded deployment).
    per_server: super::upgrade_inputs::PerServer,
    /// A rollback: the job whose configuration copy the job goes back to (jobs/rollback.rs).
    pub(crate) restore_from: Option<i64>,
}

impl Engine {
    /// Validates the request and starts one job per server. Nothing starts if anything is invalid.
    /// (Fan-outs with batches and a failure budget: `start_fanout` in jobs/fanout.rs.)
    pub fn start_install(&self, req: &InstallRequest) -> Result<Vec<Job>, RequestError> {
        let prepared = self.prepare_install(req, true)?;
        prepared
            .servers
            .iter()
            .map(|s| self.launch_one(&prepared, s, None))
            .collect()
    }

    /// Validates an install request without creating any job. With `strict`, a server on an
    /// operator hold refuses the whole request; otherwise it is left out (and listed).
    pub(crate) fn prepare_install(
        &self,
        req: &InstallRequest,
        strict: bool,
    ) -> Result<Prepared, RequestError> {
        self.prepare_inner(req, strict).map(|(p, _)| p)
    }

    pub(crate) fn prepare_inner(
        &self,
        req: &InstallRequest,
        strict: bool,
    ) -> Result<(Prepared, Vec<(String, String)>), RequestError> {
        self.permit(crate::access::Change::RunJob, &req.servers.join(","))
            .map_err(|e| RequestError::Invalid(e.to_string()))?;
        let catalog = self.catalog();
        let installer: Installer = catalog
            .require(&req.app)
            .map_err(RequestError::Invalid)?
            .clone();
        pin_check(&installer)?;
        let kind = ptui_catalog::ScriptKind::of(req.action);
        if installer.script(kind).is_none() {
            return Err(RequestError::Invalid(format!(
                "installer {} has no {} script",
                req.app,
                req.action.as_str()
            )));
        }
        if req.servers.is_empty() {
            return Err(RequestError::Invalid(
                "no servers given; use --on SERVER, --tag TAG or --all".into(),
            ));
        }
        let mut servers: Vec<Server> = Vec::new();
        let mut excluded = Vec::new();
        for name in &req.servers {
            let s = self
                .store()
                .require_server(name)
                .map_err(|e| RequestError::Invalid(e.to_string()))?;
            if !s.status.accepts_jobs() {
                let why = format!(
                    "server {name} is {}; nothing runs on it until an operator changes its status (`server set-status`)",
                    s.status
                );
                if strict {
                    return Err(RequestError::Invalid(why));
                }
                excluded.push((name.clone(), why));
                continue;
            }
            if !servers.iter().any(|x| x.id == s.id) {
                servers.push(s);
            }
        }
        // Recorded secrets (sealed at rest) stand in for sensitive inputs the request leaves out.
        let mut stored = HashMap::new();
        for s in &servers {
            match self.stored_secrets(s.id, &req.app) {
                Ok(v) => {
                    stored.insert(s.id, v);
                }
                Err(why) => tracing::warn!("{} on {}: {why}", req.app, s.name),
            }
        }
        let covered = |name: &str| {
            !req.inputs.contains_key(name)
                && !servers.is_empty()
                && servers
                    .iter()
                    .all(|s| stored.get(&s.id).is_some_and(|v| v.contains_key(name)))
        };
        // An upgrade that reads a secret needs it given or recorded for every server.
        let missing = match req.action {
            JobAction::Upgrade => installer.missing_secrets(kind, &req.inputs),
            _ => Vec::new(),
        };
        let missing: Vec<_> = missing.into_iter().filter(|i| !covered(&i.name)).collect();
        if !missing.is_empty() {
            let script = installer.script_path(kind).unwrap_or("the upgrade script");
            return Err(RequestError::Inputs {
                app: req.app.clone(),
                errors: missing
                    .iter()
                    .map(|i| ptui_catalog::InputError {
                        input: i.name.clone(),
                        message: format!(
                            "is a required secret {script} reads, and none is recorded for \
                             every server: pass it with --set-env {n}=VAR or --set-file {n}=PATH \
                             (on a terminal you are asked for it)",
                            n = i.name
                        ),
                    })
                    .collect(),
            });
        }
        let inputs = match resolve_inputs(&installer.manifest, &req.inputs) {
            Ok(i) => i,
            Err(errors) => {
                // Uninstall and upgrade reuse what they are given; only install demands every required input.
                let errors: Vec<_> = if req.action == JobAction::Install {
                    errors
                        .into_iter()
                        .filter(|e| !(e.message == "is required" && covered(&e.input)))
                        .collect()
                } else {
                    errors
                        .into_iter()
                        .filter(|e| e.message != "is required")
                        .collect()
                };
                if !errors.is_empty() {
                    return Err(RequestError::Inputs {
                        app: req.app.clone(),
                        errors,
                    });
                }
                relaxed_inputs(&installer, &req.inputs)
            }
        };
        let per_server = if req.action == JobAction::Upgrade {
            self.upgrade_inputs(&installer, &req.inputs, &servers)?
        } else {
            Default::default()
        };
        let masked = inputs.masked_json();
        Ok((
            Prepared {
                installer,
                inputs,
                masked,
                action: req.action,
                servers,
                given: req.inputs.keys().cloned().collect(),
                stored,
                per_server,
                restore_from: None,
            },
            excluded,
        ))
    }

    /// Creates one job and spawns its task. A fan-out's `JobLaunched` is emitted before the task
    /// exists, so subscribers learn the job's fan-out before any of its other events.
    pub(crate) fn launch_one(
        &self,
        p: &Prepared,
        server: &Server,
        fanout_id: Option<u64>,
    ) -> Result<Job, RequestError> {
        let ctx = self.job_context();
        let inputs = p.inputs_for(server);
        let secrets: BTreeMap<String, String> = inputs
            .inputs
            .iter()
            .filter(|i| i.sensitive)
            .map(|i| (i.name.clone(), i.value.expose().to_string()))
            .collect();
        let sealed = self
            .seal_secrets(server.id, &p.installer.manifest.id, &secrets)
            .map_err(|e| {
                RequestError::Invalid(format!(
                    "cannot keep the secrets of {}: {e:#}",
                    p.installer.manifest.id
                ))
            })?;
        let new = NewJob {
            server_id: server.id,
            server_name: &server.name,
            app_id: &p.installer.manifest.id,
            app_version: &p.installer.manifest.version,
            action: p.action,
            masked_inputs: p.masked_for(server),
            owner: &ctx.owner,
        };
        // Another site's server: queued for a process of that site (jobs/remote.rs).
        let remote = !self.serves(&server.site);
        let job = if remote {
            ctx.store.create_site_job(&new, &server.site)
        } else {
            ctx.store.create_job(&new)
        }
        .map_err(|e| RequestError::Invalid(e.to_string()))?;
        if let Some(sealed) = &sealed {
            ctx.store
                .set_job_sealed_secrets(job.id, sealed)
                .map_err(|e| RequestError::Invalid(e.to_string()))?;
        }
        self.audit(
            &format!("job.{}", p.action.as_str()),
            &server.name,
            &format!(
                "job #{} app={} inputs={}",
                job.id,
                p.installer.manifest.id,
                p.masked_for(server)
            ),
        )
        .map_err(|e| RequestError::Invalid(e.to_string()))?;
        if remote {
            self.emit(Event::JobQueued { job: job.clone() });
            self.emit_launched(fanout_id, server, job.id);
            self.queue_note(&job, server);
            self.spawn_remote_follower(job.id);
            return Ok(job);
        }
        let token = CancellationToken::new();
        ctx.running.insert(job.id, token.clone());
        self.emit(Event::JobQueued { job: job.clone() });
        self.emit_launched(fanout_id, server, job.id);
        tokio::spawn(runner::run_job(
            ctx,
            job.clone(),
            p.installer.clone(),
            inputs,
            token,
            p.restore_from,
        ));
        Ok(job)
    }
}

impl Engine {
    fn emit_launched(&self, fanout_id: Option<u64>, server: &Server, job_id: i64) {
        if let Some(fanout_id) = fanout_id {
            self.emit(Event::Fanout {
                fanout: FanoutEvent::JobLaunched {
                    fanout_id,
                    server: server.name.clone(),
                    job_id,
                },
            });
        }
    }

    /// Says in the job's log which site's processes run it, or that none is live.
    fn queue_note(&self, job: &Job, server: &Server) {
        let line = self.queued_for_site_line(server);
        let at = ptui_types::time::now_ms();
        if let Err(e) = self
            .store()
            .append_logs(job.id, &[(ptui_types::job::LogStream::System, at, line)])
        {
            tracing::warn!("job #{}: {e:#}", job.id);
        }
    }
}

impl Prepared {
    /// The masked inputs recorded for one server's job.
    pub(crate) fn masked_for(&self, server: &Server) -> &serde_json::Value {
        self.per_server
            .get(&server.id)
            .map_or(&self.masked, |(_, m)| m)
    }

    /// The inputs for one server: the request's, plus that server's recorded secrets for
    /// the sensitive inputs the request left out.
    pub(crate) fn inputs_for(&self, server: &Server) -> ResolvedInputs {
        let mut out = self
            .per_server
            .get(&server.id)
            .map_or(&self.inputs, |(i, _)| i)
            .clone();
        let Some(stored) = self.stored.get(&server.id) else {
            return out;
        };
        for spec in self
            .installer
            .manifest
            .inputs
            .iter()
            .filter(|i| i.is_sensitive())
        {
            let Some(v) = stored.get(&spec.name) else {
                continue;
            };
            if self.given.contains(&spec.name) {
                continue;
            }
            out.inputs.retain(|i| i.name != spec.name);
            out.inputs.push(ptui_catalog::validate::ResolvedInput {
                name: spec.name.clone(),
                env: spec.env_name(),
                value: ptui_types::secret::Secret::new(v.clone()),
                sensitive: true,
            });
        }
        out
    }
}

/// Refuses an installer whose files differ from their pins (`catalog.lock`); with
/// `PROVISION_TUI_REQUIRE_PINS=1`, also one from an unpinned directory.
pub(crate) fn pin_check(installer: &Installer) -> Result<(), RequestError> {
    use ptui_catalog::pins::PinStatus;
    match &installer.pin {
        PinStatus::Pinned => Ok(()),
        PinStatus::Mismatch(m) => Err(RequestError::Invalid(format!(
            "installer {} does not match its pins, nothing was run:\n{}\nreview the change, then run `provision-tui catalog pin DIR`",
            installer.id(),
            m.iter()
                .map(|x| format!("  - {x}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))),
        PinStatus::Unpinned
            if std::env::var("PROVISION_TUI_REQUIRE_PINS").is_ok_and(|v| v == "1") =>
        {
            Err(RequestError::Invalid(format!(
                "installer {} ({}) is not pinned and PROVISION_TUI_REQUIRE_PINS=1: run `provision-tui catalog pin DIR` after reviewing it",
                installer.id(),
                installer.source
            )))
        }
        PinStatus::Unpinned => Ok(()),
    }
}

/// For uninstall/upgrade: accept the given values that validate, without demanding required ones.
pub(crate) fn relaxed_inputs(
    installer: &Installer,
    given: &BTreeMap<String, String>,
) -> ptui_catalog::ResolvedInputs {
    let mut out = ptui_catalog::ResolvedInputs::default();
    for spec in &installer.manifest.inputs {
        let Some(v) = given
            .get(&spec.name)
            .cloned()
            .or_else(|| spec.default.as_ref().map(|d| d.as_text()))
        else {
            continue;
        };
        if ptui_catalog::check_value(spec, &v).is_ok() {
            out.inputs.push(ptui_catalog::validate::ResolvedInput {
                name: spec.name.clone(),
                env: spec.env_name(),
                value: ptui_types::secret::Secret::new(v),
                sensitive: spec.is_sensitive(),
            });
        }
    }
    out
}
