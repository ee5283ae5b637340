//! Runs one job: wait for the server's lease, connect (retrying connection failures),
//! run the installer, stream masked log lines to the database and to subscribers, and
//! record the outcome, the deployment and the server's status in one transaction.

use crate::engine::{Engine, Event};
use color_eyre::eyre::Result;
use ptui_catalog::{Installer, ResolvedInputs, Role, ScriptKind};
use ptui_ssh::RunSpec;
use ptui_store::servers::transition_in;
use ptui_store::{Store, deployments, now_ms};
use ptui_types::error::{ErrorKind, KindError};
use ptui_types::job::{Job, JobAction, JobStatus, LogStream};
use ptui_types::secret::{Masker, Secret};
use ptui_types::server::ServerStatus;
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
    engine: Engine,
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
            flush(&engine, job_id, &mut batch);
        }
        flush(&engine, job_id, &mut batch);
    })
}

fn flush(engine: &Engine, job_id: i64, batch: &mut Vec<RawLine>) {
    if batch.is_empty() {
        return;
    }
    match engine.store().append_logs(job_id, batch) {
        Ok(lines) => engine.emit(Event::JobLog { job_id, lines }),
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
        let _ = self.tx.send((stream, now_ms(), self.masker.mask(text)));
    }
    fn system(&self, text: &str) {
        self.line(LogStream::System, text);
    }
}

/// Entry point of the tokio task behind every job.
pub async fn run_job(
    engine: Engine,
    job: Job,
    installer: Installer,
    inputs: ResolvedInputs,
    cancel: CancellationToken,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = spawn_log_writer(engine.clone(), job.id, rx);
    // A sudo password (sent on stdin only) is masked like a sensitive input, just in case.
    let mut secrets = inputs.secrets();
    if let Some(sid) = job.server_id
        && let Ok(sudo) = engine.store().server_sudo(sid)
        && let Some(var) = sudo.password_env
        && let Ok(pw) = std::env::var(var)
        && !pw.is_empty()
    {
        secrets.push(Secret::new(pw));
    }
    // So is one typed at a prompt (held in the engine's memory).
    if let Some(pw) = job.server_id.and_then(|sid| engine.sudo_password(sid)) {
        secrets.push(pw);
    }
    let sink = LogSink {
        tx,
        masker: Masker::new(secrets),
    };
    let result = execute(&engine, &job, &installer, &inputs, &cancel, &sink).await;
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
                && engine.sudo_password(sid).is_some()
            {
                engine.forget_sudo_password(sid);
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
    let _ = writer.await;
    match finish(
        &engine,
        &job,
        &installer,
        status,
        kind,
        message.as_deref(),
        exit_code,
    ) {
        Ok((job, server)) => {
            engine.emit(Event::JobFinished { job });
            if let Some(server) = server {
                engine.emit(Event::ServerChanged { server });
            }
        }
        Err(e) => tracing::error!("job #{}: cannot record its end: {e:#}", job.id),
    }
    if let Some(sid) = job.server_id {
        let _ = engine.store().release_lease(sid, job.id);
    }
    if let Ok(mut r) = engine.inner.running.lock() {
        r.remove(&job.id);
    }
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
    engine: Engine,
    job_id: i64,
    server_id: i64,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let every = engine.config().jobs.heartbeat_interval;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match engine.store().heartbeat_job(job_id) {
                Ok(true) => cancel.cancel(),
                Ok(false) => {}
                Err(e) => tracing::warn!("job #{job_id}: heartbeat failed: {e:#}"),
            }
            if let Err(e) = engine.store().heartbeat_lease(server_id, job_id) {
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
    engine: &Engine,
    job: &Job,
    server_id: i64,
    cancel: &CancellationToken,
    sink: &LogSink,
) -> Result<(), Failure> {
    let ttl = engine.config().jobs.lease_ttl.as_millis() as i64;
    let mut told = false;
    loop {
        if cancel.is_cancelled() || engine.store().cancel_requested(job.id).unwrap_or(false) {
            return Err(cancelled());
        }
        match engine
            .store()
            .try_acquire_lease(server_id, job.id, &engine.inner.owner, ttl)
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
                let _ = engine.store().heartbeat_job(job.id);
                if !sleep_or_cancel(Duration::from_millis(300), cancel).await {
                    return Err(cancelled());
                }
            }
        }
    }
}

/// Moves a server into provisioning when a job starts on it, per the lifecycle rules.
fn enter_provisioning(engine: &Engine, job: &Job, server_id: i64) -> Result<(), Failure> {
    let store = engine.store();
    let server = store
        .write(|tx| {
            let s = ptui_store::servers::get_server(tx, server_id)?
                .ok_or_else(|| color_eyre::eyre::eyre!("server #{server_id} was removed"))?;
            if s.status.is_operator_hold() {
                color_eyre::eyre::bail!(
                    "server {} was put in {} while this job waited",
                    s.name,
                    s.status
                );
            }
            let reason = format!("job #{} {} started", job.id, job.app_id);
            let s = if s.status == ServerStatus::Discovered {
                transition_in(
                    tx,
                    server_id,
                    ServerStatus::PendingSetup,
                    &reason,
                    Some(job.id),
                )?
            } else {
                s
            };
            if matches!(
                s.status,
                ServerStatus::PendingSetup | ServerStatus::Error | ServerStatus::ForceRebuild
            ) {
                transition_in(
                    tx,
                    server_id,
                    ServerStatus::Provisioning,
                    &reason,
                    Some(job.id),
                )
            } else {
                Ok(s)
            }
        })
        .map_err(|e| Failure::from(KindError::new(ErrorKind::Validation, format!("{e:#}"))))?;
    engine.emit(Event::ServerChanged { server });
    Ok(())
}

/// Waits before connection attempt `attempt + 1` (exponential backoff with jitter).
/// Returns false when retries are used up (the caller fails the job with `e`).
async fn backoff(
    engine: &Engine,
    job: &Job,
    attempt: u32,
    e: &KindError,
    what: &str,
    cancel: &CancellationToken,
    sink: &LogSink,
) -> Result<bool, Failure> {
    let settings = &engine.config().jobs;
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
    let _ = engine.store().mark_job_running(job.id, attempt as i64 + 1);
    if !sleep_or_cancel(delay, cancel).await {
        return Err(cancelled());
    }
    Ok(true)
}

/// Leases a connection; `attempt` counts every connection attempt of the job (dials and
/// re-dials after a dead pooled connection share the `connect_retries` budget).
async fn connect_with_retries(
    engine: &Engine,
    job: &Job,
    attempt: &mut u32,
    cancel: &CancellationToken,
    sink: &LogSink,
) -> Result<ptui_ssh::Lease, Failure> {
    let server = engine
        .store()
        .require_server(&job.server_name)
        .map_err(internal)?;
    loop {
        *attempt += 1;
        sink.system(&format!(
            "connecting to {} (attempt {attempt})",
            server.address()
        ));
        let res = tokio::select! {
            r = engine.pooled(&server) => r,
            _ = cancel.cancelled() => return Err(cancelled()),
        };
        match res {
            Ok(s) => return Ok(s),
            Err(e) => {
                if !backoff(engine, job, *attempt, &e, "retrying", cancel, sink).await? {
                    return Err(e.into());
                }
            }
        }
    }
}

/// A `--prompt` server with no password given to this process fails at once: nothing would
/// run without it, so waiting for the lease or connecting is wasted time.
fn sudo_password_known(engine: &Engine, job: &Job) -> Result<(), Failure> {
    let server = engine
        .store()
        .require_server(&job.server_name)
        .map_err(internal)?;
    if engine.needs_sudo_password(&server).map_err(internal)? {
        let target = engine.ssh_target(&server).map_err(internal)?;
        return Err(ptui_ssh::exec::missing_prompted_password(&target).into());
    }
    Ok(())
}

async fn execute(
    engine: &Engine,
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
    sudo_password_known(engine, job)?;
    wait_for_lease(engine, job, server_id, cancel, sink).await?;
    let _hb = AbortOnDrop(spawn_heartbeat(
        engine.clone(),
        job.id,
        server_id,
        cancel.clone(),
    ));
    let _permit = tokio::select! {
        p = engine.inner.slots.clone().acquire_owned() => p.map_err(|e| internal(e.into()))?,
        _ = cancel.cancelled() => return Err(cancelled()),
    };
    let started = engine
        .store()
        .mark_job_running(job.id, 1)
        .map_err(internal)?;
    engine.emit(Event::JobStarted { job: started });
    enter_provisioning(engine, job, server_id)?;

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
        timeout_slack: engine.config().jobs.timeout_slack,
        kill_grace: engine.config().ssh.kill_grace,
    };
    let mut attempt = 0u32;
    let outcome = loop {
        let session = connect_with_retries(engine, job, &mut attempt, cancel, sink).await?;
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
                    engine.pool().invalidate(&job.server_name);
                }
                // A pooled connection that died while idle fails here, before the script was
                // sent: re-dial rather than fail the job.
                if !e.nothing_ran
                    || !backoff(engine, job, attempt, &e.error, "re-dialling", cancel, sink).await?
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

/// Records the end of a job with its consequences, atomically.
fn finish(
    engine: &Engine,
    job: &Job,
    installer: &Installer,
    status: JobStatus,
    kind: Option<ErrorKind>,
    message: Option<&str>,
    exit_code: Option<i64>,
) -> Result<(Job, Option<ptui_types::server::Server>)> {
    engine.store().write(|tx| {
        let done = Store::finish_job_in(tx, job.id, status, kind, message, exit_code)?;
        let Some(server_id) = job.server_id else {
            return Ok((done, None));
        };
        let Some(server) = ptui_store::servers::get_server(tx, server_id)? else {
            return Ok((done, None));
        };
        let reason = format!("job #{} {} {}", job.id, job.app_id, status);
        let mut s = server;
        if status == JobStatus::Succeeded {
            match job.action {
                JobAction::Install | JobAction::Upgrade => {
                    let record = if job.action == JobAction::Upgrade {
                        deployments::upgrade_deployment_in
                    } else {
                        deployments::upsert_deployment_in
                    };
                    record(
                        tx,
                        server_id,
                        &job.app_id,
                        &job.app_version,
                        &job.inputs,
                        job.id,
                    )?;
                    if s.status == ServerStatus::Provisioning {
                        s = transition_in(
                            tx,
                            server_id,
                            ServerStatus::Ready,
                            &reason,
                            Some(job.id),
                        )?;
                    }
                    if installer.manifest.role == Role::App && s.status == ServerStatus::Ready {
                        s = transition_in(
                            tx,
                            server_id,
                            ServerStatus::InUse,
                            &reason,
                            Some(job.id),
                        )?;
                    }
                }
                JobAction::Uninstall => {
                    deployments::delete_deployment_in(tx, server_id, &job.app_id)?;
                    if s.status == ServerStatus::Provisioning {
                        s = transition_in(
                            tx,
                            server_id,
                            ServerStatus::Ready,
                            &reason,
                            Some(job.id),
                        )?;
                    }
                    // The baseline is not an app: a server with only base installers left is ready.
                    let catalog = engine.catalog();
                    let apps_left = deployments::deployed_apps_in(tx, server_id)?
                        .iter()
                        .filter(|id| catalog.get(id).is_none_or(|i| i.manifest.role == Role::App))
                        .count();
                    if s.status == ServerStatus::InUse && apps_left == 0 {
                        s = transition_in(
                            tx,
                            server_id,
                            ServerStatus::Ready,
                            &reason,
                            Some(job.id),
                        )?;
                    }
                }
            }
        } else if s.status == ServerStatus::Provisioning {
            s = transition_in(tx, server_id, ServerStatus::Error, &reason, Some(job.id))?;
        }
        Ok((done, Some(s)))
    })
}

/// Marks a job whose process died as interrupted; its server, if left provisioning, goes to error.
pub fn mark_interrupted(engine: &Engine, id: i64) -> Result<()> {
    let job = engine.store().write(|tx| {
        let job = Store::finish_job_in(
            tx,
            id,
            JobStatus::Interrupted,
            Some(ErrorKind::Interrupted),
            Some("the provision-tui process running this job stopped before it finished; check the server, then run the install again (installers are idempotent)"),
            None,
        )?;
        if let Some(sid) = job.server_id {
            if let Some(s) = ptui_store::servers::get_server(tx, sid)?
                && s.status == ServerStatus::Provisioning
            {
                transition_in(tx, sid, ServerStatus::Error, &format!("job #{id} interrupted"), Some(id))?;
            }
            tx.execute("DELETE FROM server_leases WHERE server_id=?1 AND job_id=?2", rusqlite::params![sid, id])?;
        }
        Ok(job)
    })?;
    engine.store().append_logs(
        id,
        &[(
            LogStream::System,
            now_ms(),
            "interrupted: the process running this job stopped".into(),
        )],
    )?;
    engine.emit(Event::JobFinished { job });
    Ok(())
}
