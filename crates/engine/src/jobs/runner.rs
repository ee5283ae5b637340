//! Runs one job: wait for the server's lease, connect (retrying connection failures), start
//! the installer detached on the server and stream its masked output to the database and to
//! subscribers; `durable.rs` follows it again after a broken connection and records the end.

use super::config_guard::{self, Guard};
use super::durable::{self, AbortOnDrop};
use super::logsink::LogSink;
use crate::context::JobContext;
use crate::events::Event;
use color_eyre::eyre::Result;
use ptui_catalog::{Installer, ResolvedInputs, ScriptKind};
use ptui_ssh::{DetachedSpec, Ended, SpoolPos, StreamError};
use ptui_store::now_ms;
use ptui_types::error::{ErrorKind, KindError};
use ptui_types::job::{Job, LogStream};
use ptui_types::secret::Secret;
use rand::Rng;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Entry point of the tokio task behind every job.
pub async fn run_job(
    ctx: JobContext,
    job: Job,
    installer: Installer,
    inputs: ResolvedInputs,
    cancel: CancellationToken,
    restore_from: Option<i64>,
) {
    let mut secrets = inputs.secrets();
    secrets.extend(durable::sudo_secrets(&ctx, &job));
    let (sink, writer) = LogSink::spawn(&ctx, job.id, secrets);
    let run = Run {
        installer: &installer,
        inputs: &inputs,
        restore_from,
    };
    match execute(&ctx, &job, &run, &cancel, &sink).await {
        Ok((ended, timeout)) => {
            let result = durable::outcome_of(&ended, &job, Some(timeout));
            durable::finish(&ctx, &job, result, sink, writer, Some(ended)).await;
        }
        Err(f) => durable::finish(&ctx, &job, Err(f), sink, writer, None).await,
    }
}

/// What one job runs: the installer, its inputs, and for a rollback the job whose
/// configuration copy to go back to.
struct Run<'a> {
    installer: &'a Installer,
    inputs: &'a ResolvedInputs,
    restore_from: Option<i64>,
}

pub(crate) struct Failure {
    pub error: KindError,
    pub exit_code: Option<i64>,
}

impl From<KindError> for Failure {
    fn from(error: KindError) -> Self {
        Failure {
            error,
            exit_code: None,
        }
    }
}

fn internal(e: color_eyre::Report) -> Failure {
    Failure {
        error: KindError::new(ErrorKind::Configuration, format!("{e:#}")),
        exit_code: None,
    }
}

fn cancelled() -> Failure {
    KindError::new(ErrorKind::Cancelled, "cancelled by the operator").into()
}

/// Sleeps, waking early on cancel. Returns false when cancelled.
async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}

/// Heartbeats the job and its lease; turns a cancel request from another process into a cancel here.
pub(crate) fn spawn_heartbeat(
    ctx: JobContext,
    job_id: i64,
    server_id: i64,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let every = ctx.settings.heartbeat_interval;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match ctx.store.heartbeat_job(job_id) {
                Ok(true) => cancel.cancel(),
                Ok(false) => {}
                Err(e) => tracing::warn!("job #{job_id}: heartbeat failed: {e:#}"),
            }
            if let Err(e) = ctx.store.heartbeat_lease(server_id, job_id) {
                tracing::warn!("job #{job_id}: lease heartbeat failed: {e:#}");
            }
        }
    })
}

async fn wait_for_lease(
    ctx: &JobContext,
    job: &Job,
    server_id: i64,
    cancel: &CancellationToken,
    sink: &LogSink,
) -> Result<(), Failure> {
    let ttl = ctx.settings.lease_ttl.as_millis() as i64;
    let mut told = false;
    loop {
        if cancel.is_cancelled() || ctx.store.cancel_requested(job.id).unwrap_or(false) {
            return Err(cancelled());
        }
        match ctx
            .store
            .try_acquire_lease(server_id, job.id, &ctx.owner, ttl)
            .map_err(internal)?
        {
            Ok(()) => return Ok(()),
            Err(holder) => {
                // The holder's process died while its job still runs on the server: follow
                // that job here (exactly one process adopts it), then take the lease.
                if let Some(held) = holder.job_id
                    && let Ok(Some(adopted)) = ctx.store.try_adopt_job(
                        held,
                        &ctx.owner,
                        now_ms() - 2 * ttl,
                        ptui_types::identity::owner_alive,
                    )
                {
                    sink.system(&format!(
                        "server {} is busy with job #{held}, whose process stopped while it ran there; following it here until it ends",
                        job.server_name
                    ));
                    durable::spawn_adopted(ctx.clone(), adopted);
                    told = true;
                }
                if !told {
                    let by = holder
                        .job_id
                        .map(|j| format!("job #{j}"))
                        .unwrap_or_else(|| "another job".into());
                    sink.system(&format!(
                        "server {} is busy with {by} ({}); waiting for it to finish",
                        job.server_name, holder.holder
                    ));
                    told = true;
                }
                if let Err(e) = ctx.store.heartbeat_job(job.id) {
                    tracing::warn!("job #{}: heartbeat while waiting failed: {e:#}", job.id);
                }
                if !sleep_or_cancel(Duration::from_millis(300), cancel).await {
                    return Err(cancelled());
                }
            }
        }
    }
}

/// Moves a server into provisioning when a job starts on it, per the lifecycle rules.
fn enter_provisioning(ctx: &JobContext, job: &Job, server_id: i64) -> Result<(), Failure> {
    let server = ctx
        .store
        .enter_provisioning(job, server_id)
        .map_err(|e| Failure::from(KindError::new(ErrorKind::Validation, format!("{e:#}"))))?;
    ctx.emit(Event::ServerChanged { server });
    Ok(())
}

/// Exponential backoff with jitter: about `base * 2^(attempt-1)`, from half to one and a half
/// of it (the exponent stops growing at 8).
pub(crate) fn backoff_delay(base: Duration, attempt: u32) -> Duration {
    let exp = base.as_millis() as f64 * 2f64.powi(attempt.clamp(1, 8) as i32 - 1);
    let jitter: f64 = rand::rng().random_range(0.5..1.5);
    Duration::from_millis((exp * jitter) as u64)
}

/// Waits before connection attempt `attempt + 1` (exponential backoff with jitter).
/// Returns false when retries are used up (the caller fails the job with `e`).
async fn backoff(
    ctx: &JobContext,
    job: &Job,
    attempt: u32,
    e: &KindError,
    what: &str,
    cancel: &CancellationToken,
    sink: &LogSink,
) -> Result<bool, Failure> {
    let settings = &ctx.settings;
    if !e.kind.retry_possible() || attempt > settings.connect_retries {
        return Ok(false);
    }
    let delay = backoff_delay(settings.retry_base_delay, attempt);
    sink.system(&format!(
        "{}; {what} in {:.1}s ({attempt}/{})",
        e.message,
        delay.as_secs_f64(),
        settings.connect_retries
    ));
    if let Err(e) = ctx.store.mark_job_running(job.id, attempt as i64 + 1) {
        // Only the attempt counter shown to operators is stale; the retry goes on.
        tracing::warn!(
            "job #{}: cannot record attempt {}: {e:#}",
            job.id,
            attempt + 1
        );
    }
    if !sleep_or_cancel(delay, cancel).await {
        return Err(cancelled());
    }
    Ok(true)
}

/// Leases a connection; `attempt` counts every connection attempt of the job (dials and
/// re-dials after a dead pooled connection share the `connect_retries` budget).
async fn connect_with_retries(
    ctx: &JobContext,
    job: &Job,
    attempt: &mut u32,
    cancel: &CancellationToken,
    sink: &LogSink,
) -> Result<ptui_ssh::Lease, Failure> {
    let server = ctx
        .store
        .require_server(&job.server_name)
        .map_err(internal)?;
    loop {
        *attempt += 1;
        sink.system(&format!(
            "connecting to {} (attempt {attempt})",
            server.address()
        ));
        let res = tokio::select! {
            r = ctx.pooled(&server) => r,
            _ = cancel.cancelled() => return Err(cancelled()),
        };
        match res {
            Ok(s) => return Ok(s),
            Err(e) => {
                if !backoff(ctx, job, *attempt, &e, "retrying", cancel, sink).await? {
                    return Err(e.into());
                }
            }
        }
    }
}

/// A `--prompt` server with no password given to this process fails at once: nothing would
/// run without it, so waiting for the lease or connecting is wasted time.
fn sudo_password_known(ctx: &JobContext, job: &Job) -> Result<(), Failure> {
    let server = ctx
        .store
        .require_server(&job.server_name)
        .map_err(internal)?;
    if ctx.needs_sudo_password(&server).map_err(internal)? {
        let target = ctx.ssh_target(&server).map_err(internal)?;
        return Err(ptui_ssh::exec::missing_prompted_password(&target).into());
    }
    Ok(())
}

/// The installer's script inside the configuration guard, when its manifest declares a
/// configuration and the job changes the app (not an uninstall).
fn guard_script(
    ctx: &JobContext,
    job: &Job,
    run: &Run<'_>,
    server_id: i64,
    script: &str,
    name: &str,
    sink: &LogSink,
) -> Result<Option<String>, Failure> {
    let Some(conf) = &run.installer.manifest.configuration else {
        return Ok(None);
    };
    if job.action == ptui_types::job::JobAction::Uninstall {
        return Ok(None);
    }
    let deployed = ctx
        .store
        .deployments(Some(server_id))
        .map_err(internal)?
        .iter()
        .any(|d| d.app_id == job.app_id);
    let guard = Guard {
        snapshot: deployed,
        restore_from: run.restore_from,
    };
    let plain = |input: &str| {
        run.inputs
            .inputs
            .iter()
            .find(|i| i.name == input && !i.sensitive)
            .map(|i| i.value.expose().to_string())
    };
    let Some(wrapped) = config_guard::wrap(run.installer, script, name, job.id, guard, &plain)
    else {
        return Ok(None);
    };
    let wrapped = wrapped.map_err(|m| Failure::from(KindError::new(ErrorKind::Validation, m)))?;
    if deployed {
        sink.system(&format!(
            "{} is deployed on {}: its configuration ({} paths) is copied to {}/{} on the server before the run, and restored if the run or the health check after it fails",
            job.app_id,
            job.server_name,
            conf.paths.len(),
            config_guard::COPIES_DIR,
            job.app_id
        ));
    }
    Ok(Some(wrapped))
}

async fn execute(
    ctx: &JobContext,
    job: &Job,
    run: &Run<'_>,
    cancel: &CancellationToken,
    sink: &LogSink,
) -> Result<(Ended, Duration), Failure> {
    let (installer, inputs) = (run.installer, run.inputs);
    let server_id = job.server_id.ok_or_else(|| {
        Failure::from(KindError::new(
            ErrorKind::Validation,
            "the job's server was removed",
        ))
    })?;
    sudo_password_known(ctx, job)?;
    wait_for_lease(ctx, job, server_id, cancel, sink).await?;
    let _hb = AbortOnDrop(spawn_heartbeat(
        ctx.clone(),
        job.id,
        server_id,
        cancel.clone(),
    ));
    let _permit = tokio::select! {
        p = ctx.slots.clone().acquire_owned() => p.map_err(|e| internal(e.into()))?,
        _ = cancel.cancelled() => return Err(cancelled()),
    };
    let started = ctx.store.mark_job_running(job.id, 1).map_err(internal)?;
    ctx.emit(Event::JobStarted { job: started });
    enter_provisioning(ctx, job, server_id)?;

    let kind = ScriptKind::of(job.action);
    let script = installer.script(kind).ok_or_else(|| {
        Failure::from(KindError::new(
            ErrorKind::Validation,
            format!("{} has no {} script", installer.id(), job.action.as_str()),
        ))
    })?;
    let mut env: Vec<(String, Secret)> = inputs
        .inputs
        .iter()
        .map(|i| (i.env.clone(), i.value.clone()))
        .collect();
    env.push((
        "PROVISION_TUI_JOB_ID".into(),
        Secret::new(job.id.to_string()),
    ));
    env.push((
        "PROVISION_TUI_SERVER".into(),
        Secret::new(job.server_name.clone()),
    ));
    env.push((
        "PROVISION_TUI_ACTION".into(),
        Secret::new(job.action.as_str()),
    ));
    let mut timeout = Duration::from_secs(installer.manifest.timeout_seconds);
    let name = format!(
        "{}/{}",
        installer.id(),
        installer.script_path(kind).unwrap_or("script")
    );
    let guarded = guard_script(ctx, job, run, server_id, script, &name, sink)?;
    let script = match &guarded {
        Some(g) => {
            let settle = installer
                .manifest
                .configuration
                .as_ref()
                .map_or(30, |c| c.settle_seconds);
            timeout += config_guard::reserve(settle);
            g.as_str()
        }
        None => script,
    };
    let masked: Vec<String> = inputs
        .inputs
        .iter()
        .filter(|i| i.sensitive)
        .map(|i| i.env.clone())
        .collect();
    let key = durable::spool_key(job.id);
    let spec = DetachedSpec {
        key: &key,
        script,
        name: &name,
        env,
        masked,
        timeout,
        timeout_slack: ctx.settings.timeout_slack,
        kill_grace: ctx.kill_grace(installer.id()),
        spool_max_age: ctx.settings.spool_max_age,
    };
    // Recorded before the job is sent: if this process dies right after, an adopter knows
    // where to look (and finds no spool if the job never got there).
    let deadline_at = now_ms() + (timeout + ctx.settings.timeout_slack).as_millis() as i64;
    ctx.store
        .set_job_spool(job.id, &key, deadline_at)
        .map_err(internal)?;
    let mut pos = SpoolPos::default();
    let mut attempt = 0u32;
    loop {
        let session = connect_with_retries(ctx, job, &mut attempt, cancel, sink).await?;
        sink.system(&format!(
            "running {} {} v{} (timeout {}s)",
            installer.id(),
            job.action.as_str(),
            installer.manifest.version,
            timeout.as_secs()
        ));
        let mut on_line = |stream: LogStream, text: String, at: SpoolPos| {
            pos = at;
            sink.line(stream, &text, Some(at));
        };
        let res =
            ptui_ssh::detached::start(&session, &spec, cancel, sink.output(&mut on_line)).await;
        drop(session);
        match res {
            Ok(ended) => return Ok((ended, timeout)),
            Err(StreamError::Failed(e)) => return Err(e.into()),
            // A pooled connection that died while idle fails here, before anything was sent:
            // re-dial rather than fail the job.
            Err(StreamError::NotSent(e)) => {
                ctx.pool.invalidate(&job.server_name);
                if !backoff(ctx, job, attempt, &e, "re-dialling", cancel, sink).await? {
                    return Err(e.into());
                }
            }
            // The job was sent and goes on on the server: follow it again.
            Err(StreamError::Disconnected(e)) => {
                ctx.pool.invalidate(&job.server_name);
                sink.system(&format!("{}; the job goes on on the server", e.message));
                let ended =
                    durable::follow_to_end(ctx, job, &key, &mut pos, deadline_at, cancel, sink)
                        .await?;
                return Ok((ended, timeout));
            }
        }
    }
}
