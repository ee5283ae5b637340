//! Runs one job: wait for the server's lease, connect (retrying connection failures),
//! run the installer, stream masked log lines to the database and to subscribers, and
//! record the outcome, the deployment and the server's status in one transaction.

use crate::context::JobContext;
use crate::events::Event;
use color_eyre::eyre::Result;
use ptui_catalog::{Installer, ResolvedInputs, Role, ScriptKind};
use ptui_ssh::RunSpec;
use ptui_store::job_end::JobEnd;
use ptui_store::now_ms;
use ptui_types::error::{ErrorKind, KindError};
use ptui_types::job::{Job, JobAction, JobStatus, LogStream};
use ptui_types::secret::{Masker, Secret};
use rand::Rng;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Log lines are written in batches: at most this many per transaction...
const LOG_BATCH_LINES: usize = 500;
/// ...or whatever arrived within this window.
const LOG_BATCH_WINDOW: Duration = Duration::from_millis(100);

type RawLine = (LogStream, i64, String);

/// Collects masked lines and writes them in batches; emits one event per batch.
fn spawn_log_writer(
    ctx: JobContext,
    job_id: i64,
    mut rx: mpsc::UnboundedReceiver<RawLine>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch: Vec<RawLine> = Vec::new();
        loop {
            let first = match rx.recv().await {
                Some(l) => l,
                None => break,
            };
            batch.push(first);
            let deadline = tokio::time::Instant::now() + LOG_BATCH_WINDOW;
            while batch.len() < LOG_BATCH_LINES {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(l)) => batch.push(l),
                    _ => break,
                }
            }
            flush(&ctx, job_id, &mut batch);
        }
        flush(&ctx, job_id, &mut batch);
    })
}

fn flush(ctx: &JobContext, job_id: i64, batch: &mut Vec<RawLine>) {
    if batch.is_empty() {
        return;
    }
    match ctx.store.append_logs(job_id, batch) {
        Ok(lines) => ctx.emit(Event::JobLog { job_id, lines }),
        Err(e) => tracing::error!(
            "job #{job_id}: cannot store {} log lines: {e:#}",
            batch.len()
        ),
    }
    batch.clear();
}

/// Sends masked lines to the writer.
#[derive(Clone)]
struct LogSink {
    tx: mpsc::UnboundedSender<RawLine>,
    masker: Masker,
}

impl LogSink {
    fn line(&self, stream: LogStream, text: &str) {
        // The writer only stops after the job ended: a line sent then has nowhere to go.
        let _ = self.tx.send((stream, now_ms(), self.masker.mask(text)));
    }
    fn system(&self, text: &str) {
        self.line(LogStream::System, text);
    }
}

/// Entry point of the tokio task behind every job.
pub async fn run_job(
    ctx: JobContext,
    job: Job,
    installer: Installer,
    inputs: ResolvedInputs,
    cancel: CancellationToken,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = spawn_log_writer(ctx.clone(), job.id, rx);
    // A sudo password (sent on stdin only) is masked like a sensitive input, just in case.
    let mut secrets = inputs.secrets();
    if let Some(sid) = job.server_id
        && let Ok(sudo) = ctx.store.server_sudo(sid)
        && let Some(var) = sudo.password_env
        && let Ok(pw) = std::env::var(var)
        && !pw.is_empty()
    {
        secrets.push(Secret::new(pw));
    }
    // So is one typed at a prompt (held in the ctx's memory).
    if let Some(pw) = job.server_id.and_then(|sid| ctx.sudo.get(sid)) {
        secrets.push(pw);
    }
    let sink = LogSink {
        tx,
        masker: Masker::new(secrets),
    };
    let result = execute(&ctx, &job, &installer, &inputs, &cancel, &sink).await;
    let (status, kind, message, exit_code) = match result {
        Ok(code) => (JobStatus::Succeeded, None, None, Some(code as i64)),
        Err(Failure { error, exit_code }) => {
            let status = if error.kind == ErrorKind::Cancelled {
                JobStatus::Cancelled
            } else {
                JobStatus::Failed
            };
            // A wrong typed sudo password would fail every later job too: forget it, so the
            // next install asks again (after a login failure too: asking again costs little).
            if error.kind == ErrorKind::Auth
                && let Some(sid) = job.server_id
                && ctx.sudo.get(sid).is_some()
            {
                ctx.sudo.forget(sid);
            }
            sink.system(&format!("{} ({}): {}", status, error.kind, error.message));
            (
                status,
                Some(error.kind),
                Some(sink.masker.mask(&error.message)),
                exit_code,
            )
        }
    };
    if status == JobStatus::Succeeded {
        sink.system("succeeded");
    }
    drop(sink);
    if let Err(e) = writer.await {
        tracing::warn!("job #{}: the log writer stopped: {e}", job.id);
    }
    let base_installers: Vec<String> = ctx
        .catalog
        .installers()
        .filter(|i| i.manifest.role != Role::App)
        .map(|i| i.manifest.id.clone())
        .collect();
    let end = JobEnd {
        status,
        kind,
        message: message.as_deref(),
        exit_code,
        installs_app: installer.manifest.role == Role::App,
        base_installers: &base_installers,
    };
    match ctx.store.record_job_end(&job, &end) {
        Ok((job, server)) => {
            ctx.emit(Event::JobFinished { job });
            if let Some(server) = server {
                ctx.emit(Event::ServerChanged { server });
            }
        }
        Err(e) => tracing::error!("job #{}: cannot record its end: {e:#}", job.id),
    }
    if let Some(sid) = job.server_id
        && let Err(e) = ctx.store.release_lease(sid, job.id)
    {
        // The lease goes stale without heartbeats, so the server is only blocked for its TTL.
        tracing::warn!("job #{}: cannot release the server's lease: {e:#}", job.id);
    }
    ctx.running.remove(job.id);
}

struct Failure {
    error: KindError,
    exit_code: Option<i64>,
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
fn spawn_heartbeat(
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

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
    let base = settings.retry_base_delay.as_millis() as f64 * 2f64.powi(attempt as i32 - 1);
    let jitter: f64 = rand::rng().random_range(0.5..1.5);
    let delay = Duration::from_millis((base * jitter) as u64);
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

async fn execute(
    ctx: &JobContext,
    job: &Job,
    installer: &Installer,
    inputs: &ResolvedInputs,
    cancel: &CancellationToken,
    sink: &LogSink,
) -> Result<u32, Failure> {
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

    let kind = match job.action {
        JobAction::Install => ScriptKind::Install,
        JobAction::Uninstall => ScriptKind::Uninstall,
        JobAction::Upgrade => ScriptKind::Upgrade,
    };
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
    let timeout = Duration::from_secs(installer.manifest.timeout_seconds);
    let name = format!(
        "{}/{}",
        installer.id(),
        installer.script_path(kind).unwrap_or("script")
    );
    let spec = RunSpec {
        script,
        name: &name,
        env,
        timeout,
        timeout_slack: ctx.settings.timeout_slack,
        kill_grace: ctx.kill_grace,
    };
    let mut attempt = 0u32;
    let outcome = loop {
        let session = connect_with_retries(ctx, job, &mut attempt, cancel, sink).await?;
        sink.system(&format!(
            "running {} {} v{} (timeout {}s)",
            installer.id(),
            job.action.as_str(),
            installer.manifest.version,
            timeout.as_secs()
        ));
        let res = ptui_ssh::run_installer(&session, &spec, cancel, |stream, line| {
            sink.line(stream, &line)
        })
        .await;
        drop(session);
        match res {
            Ok(o) => break o,
            Err(e) => {
                if e.error.kind == ErrorKind::SshConnect {
                    // The connection broke under us: the next lease dials a fresh one.
                    ctx.pool.invalidate(&job.server_name);
                }
                // A pooled connection that died while idle fails here, before the script was
                // sent: re-dial rather than fail the job.
                if !e.nothing_ran
                    || !backoff(ctx, job, attempt, &e.error, "re-dialling", cancel, sink).await?
                {
                    return Err(e.error.into());
                }
            }
        }
    };
    let exit = outcome.exit_code.map(i64::from);
    match outcome.error_kind() {
        None => Ok(outcome.exit_code.unwrap_or(0)),
        Some(kind) => {
            let message = match (kind, outcome.exit_code, &outcome.signal) {
                (ErrorKind::Cancelled, _, _) => {
                    "cancelled by the operator; the remote process group was killed".to_string()
                }
                (ErrorKind::Timeout, _, _) => format!(
                    "timed out after {}s; the remote process group was killed",
                    timeout.as_secs()
                ),
                (_, Some(c), _) => format!("installer exited with {c} ({})", describe_exit(c)),
                (_, None, Some(sig)) => format!("installer was killed by signal {sig}"),
                (_, None, None) => {
                    "the connection closed before the installer reported an exit status".to_string()
                }
            };
            Err(Failure {
                error: KindError::new(kind, message),
                exit_code: exit,
            })
        }
    }
}

fn describe_exit(code: u32) -> &'static str {
    match code {
        1 => "the installer rejected its inputs",
        2 => "installation failed",
        3 => "configuration failed",
        124 => "timeout",
        _ => "installation failed",
    }
}
