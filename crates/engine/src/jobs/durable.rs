//! Durable jobs, the engine's side: follow a job on its server to its end (reconnecting while
//! the server is unreachable, until the job's deadline), record that end, remove the spool
//! once everything is stored, and adopt jobs whose process died.

use super::logsink::{LogSink, WriterReport};
use super::runner::{Failure, backoff_delay, spawn_heartbeat};
use crate::context::JobContext;
use crate::events::Event;
use ptui_catalog::Role;
use ptui_ssh::{Ended, RemoteEnd, SpoolPos, StreamError};
use ptui_store::job_end::JobEnd;
use ptui_store::now_ms;
use ptui_types::error::{ErrorKind, KindError};
use ptui_types::job::{Job, JobStatus, LogStream};
use ptui_types::secret::Secret;
use rand::Rng;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A fresh spool name for a job: its id, for people, and randomness, so two databases
/// provisioning the same server never share one.
pub(crate) fn spool_key(job_id: i64) -> String {
    format!("j{job_id}-{:016x}", rand::rng().random::<u64>())
}

/// Longest wait between two attempts to reach a server while following a job.
const MAX_FOLLOW_BACKOFF: Duration = Duration::from_secs(15);

/// Streams a job's output from `pos` until it ends on the server. While the server cannot
/// be reached, keeps trying until `deadline_at` (the job's own timeout, with slack) plus the
/// reattach margin; then the job is interrupted.
pub(crate) async fn follow_to_end(
    ctx: &JobContext,
    job: &Job,
    key: &str,
    pos: &mut SpoolPos,
    deadline_at: i64,
    cancel: &CancellationToken,
    sink: &LogSink,
) -> Result<Ended, Failure> {
    let give_up_at = deadline_at + ctx.settings.reattach_margin.as_millis() as i64;
    let kill_at =
        tokio::time::Instant::now() + Duration::from_millis((deadline_at - now_ms()).max(0) as u64);
    let mut attempt = 0u32;
    loop {
        let server = ctx
            .store
            .require_server(&job.server_name)
            .map_err(|e| Failure::from(KindError::new(ErrorKind::Validation, format!("{e:#}"))))?;
        let error = match ctx.pooled(&server).await {
            Ok(session) => {
                let from = *pos;
                let mut on_line = |stream: LogStream, text: String, at: SpoolPos| {
                    *pos = at;
                    sink.line(stream, &text, Some(at));
                };
                let res = ptui_ssh::detached::follow(
                    &session,
                    key,
                    from,
                    cancel,
                    kill_at,
                    ctx.kill_grace(&job.app_id),
                    sink.output(&mut on_line),
                )
                .await;
                drop(session);
                match res {
                    Ok(ended) => return Ok(ended),
                    Err(StreamError::Failed(e)) => return Err(e.into()),
                    Err(StreamError::NotSent(e) | StreamError::Disconnected(e)) => {
                        ctx.pool.invalidate(&job.server_name);
                        e
                    }
                }
            }
            // A changed host key or refused login will not heal by waiting.
            Err(e) if !e.kind.retry_possible() => {
                return Err(KindError::new(
                    e.kind,
                    format!("{}; the job may still be running on the server", e.message),
                )
                .into());
            }
            Err(e) => e,
        };
        if now_ms() > give_up_at {
            return Err(KindError::new(
                ErrorKind::Interrupted,
                format!(
                    "{} could not be reached until the job's timeout had passed ({}); its outcome is unknown: check the server",
                    job.server_name, error.message
                ),
            )
            .into());
        }
        attempt += 1;
        let delay = backoff_delay(ctx.settings.retry_base_delay, attempt).min(MAX_FOLLOW_BACKOFF);
        sink.system(&format!(
            "{}; the job goes on on the server; reconnecting in {:.1}s",
            error.message,
            delay.as_secs_f64()
        ));
        // A cancel while unreachable still has to reach the server: the next attempt kills.
        tokio::time::sleep(delay).await;
    }
}

/// What a remote end means for the job.
pub(crate) fn outcome_of(
    ended: &Ended,
    job: &Job,
    timeout: Option<Duration>,
) -> Result<u32, Failure> {
    match ended.end {
        RemoteEnd::Gone => Err(KindError::new(
            ErrorKind::Interrupted,
            format!(
                "the job's spool on {} is gone (removed by hand, or the job never started there); its outcome is unknown: check the server",
                job.server_name
            ),
        )
        .into()),
        RemoteEnd::Lost => Err(KindError::new(
            ErrorKind::Interrupted,
            format!(
                "the job on {} stopped without an exit status (the server rebooted, or its processes were killed): check the server, then run it again",
                job.server_name
            ),
        )
        .into()),
        RemoteEnd::Exited(_) => {
            let outcome = ended.outcome();
            let exit = outcome.exit_code.map(i64::from);
            match outcome.error_kind() {
                None => Ok(outcome.exit_code.unwrap_or(0)),
                Some(kind) => {
                    let message = match (kind, outcome.exit_code) {
                        (ErrorKind::Cancelled, _) => {
                            "cancelled by the operator; the remote process group was killed".to_string()
                        }
                        (ErrorKind::Timeout, _) => match timeout {
                            Some(t) => format!(
                                "timed out after {}s; the remote process group was killed",
                                t.as_secs()
                            ),
                            None => "timed out; the remote process group was killed".to_string(),
                        },
                        (_, Some(c)) => format!("installer exited with {c} ({})", describe_exit(c)),
                        (_, None) => "the installer ended without an exit status".to_string(),
                    };
                    Err(Failure {
                        error: KindError::new(kind, message),
                        exit_code: exit,
                    })
                }
            }
        }
    }
}

fn describe_exit(code: u32) -> &'static str {
    match code {
        1 => "the installer rejected its inputs",
        2 => "installation failed",
        3 => "configuration failed",
        124 => "timeout",
        137 | 143 => "killed",
        _ => "installation failed",
    }
}

/// Records a job's end: waits for its log to be stored, then the end with its consequences
/// (deployment, server status) in one transaction, then releases the lease. The spool on the
/// server is removed only when all of that is stored; otherwise the job is left detached, with
/// the stored position, so a later process collects the rest.
pub(crate) async fn finish(
    ctx: &JobContext,
    job: &Job,
    result: Result<u32, Failure>,
    sink: LogSink,
    writer: tokio::task::JoinHandle<WriterReport>,
    ended: Option<Ended>,
) {
    // Only a guarded job's line counts: any other script could print the same words.
    let guarded = job.action != ptui_types::job::JobAction::Uninstall
        && ctx
            .catalog
            .get(&job.app_id)
            .is_some_and(|i| i.manifest.configuration.is_some());
    let rolled_back = guarded && sink.rolled_back.load(std::sync::atomic::Ordering::Relaxed);
    let (status, kind, message, exit_code) = match result {
        Ok(code) => (JobStatus::Succeeded, None, None, Some(code as i64)),
        Err(Failure {
            mut error,
            exit_code,
        }) => {
            let status = match error.kind {
                ErrorKind::Interrupted => JobStatus::Interrupted,
                _ if rolled_back => {
                    error.message.push_str(
                        "; the configuration kept before the run was restored and the service restarted (see the job's log)",
                    );
                    JobStatus::RolledBack
                }
                ErrorKind::Cancelled => JobStatus::Cancelled,
                _ => JobStatus::Failed,
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
    let report = match writer.await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("job #{}: the log writer stopped: {e}", job.id);
            WriterReport { lost_lines: 1 }
        }
    };
    if report.lost_lines > 0 && ended.is_some() {
        leave_detached(ctx, job, report.lost_lines);
        ctx.running.remove(job.id);
        return;
    }
    let installs_app = ctx
        .catalog
        .get(&job.app_id)
        .is_none_or(|i| i.manifest.role == Role::App);
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
        installs_app,
        base_installers: &base_installers,
    };
    let release = || {
        if let Some(sid) = job.server_id
            && let Err(e) = ctx.store.release_lease(sid, job.id)
        {
            // The lease goes stale without heartbeats, so the server is only blocked for its TTL.
            tracing::warn!("job #{}: cannot release the server's lease: {e:#}", job.id);
        }
    };
    match ctx.store.record_job_end(job, &end) {
        Ok((done, server)) => {
            ctx.emit(Event::JobFinished { job: done });
            if let Some(server) = server {
                ctx.emit(Event::ServerChanged { server });
            }
            // The next job on this server need not wait for this one's spool removal.
            release();
            if let Some(ended) = ended {
                ended.remove_spool().await;
            }
        }
        Err(e) => {
            tracing::error!("job #{}: cannot record its end: {e:#}", job.id);
            if ended.is_some() {
                leave_detached(ctx, job, 0);
            }
            release();
        }
    }
    ctx.running.remove(job.id);
}

/// The output or the end could not be stored here: the spool stays on the server, and the
/// job is left for a process that can store it (from the last stored position).
fn leave_detached(ctx: &JobContext, job: &Job, lost_lines: usize) {
    let why = if lost_lines > 0 {
        format!(
            "{lost_lines} output lines could not be stored in the database; they stay in the job's spool on {} and are collected when a process can store them",
            job.server_name
        )
    } else {
        format!(
            "the job's end could not be stored in the database; its output stays in its spool on {} and is collected when a process can store it",
            job.server_name
        )
    };
    let detached = match ctx.store.detach_job(job.id, &why) {
        Ok(Some(j)) => j,
        Ok(None) => job.clone(),
        Err(e) => {
            // Still `running` with this process as owner: once it exits, the next process
            // to open the database finds the job orphaned and detaches it.
            tracing::error!(
                "job #{}: {why}; marking it detached failed too: {e:#}",
                job.id
            );
            let mut j = job.clone();
            j.status = JobStatus::Detached;
            j.error_message = Some(why.clone());
            j
        }
    };
    ctx.emit(Event::JobDetached { job: detached });
}

/// The server's sudo password, if this process knows it (from the environment or typed to
/// it): sent on stdin only, and masked like a sensitive input, just in case.
pub(crate) fn sudo_secrets(ctx: &JobContext, job: &Job) -> Vec<Secret> {
    let mut secrets = Vec::new();
    if let Some(sid) = job.server_id {
        if let Ok(sudo) = ctx.store.server_sudo(sid)
            && let Some(var) = sudo.password_env
            && let Ok(pw) = std::env::var(var)
            && !pw.is_empty()
        {
            secrets.push(Secret::new(pw));
        }
        if let Some(pw) = ctx.sudo.get(sid) {
            secrets.push(pw);
        }
    }
    secrets
}

/// Follows an adopted job (see `Store::try_adopt_job`) to its end, in a task of its own.
pub(crate) fn spawn_adopted(ctx: JobContext, job: Job) {
    let cancel = CancellationToken::new();
    ctx.running.insert(job.id, cancel.clone());
    ctx.emit(Event::JobStarted { job: job.clone() });
    tokio::spawn(follow_adopted(ctx, job, cancel));
}

async fn follow_adopted(ctx: JobContext, job: Job, cancel: CancellationToken) {
    // Sensitive inputs were masked on the server, before the spool; here what this process
    // knows is masked too.
    let (sink, writer) = LogSink::spawn(&ctx, job.id, sudo_secrets(&ctx, &job));
    // The guard's restore may have been stored by the process that died.
    if ctx
        .store
        .job_stderr_has_line_starting(job.id, super::config_guard::ROLLED_BACK)
        .unwrap_or(false)
    {
        sink.rolled_back
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let _hb = job
        .server_id
        .map(|sid| AbortOnDrop(spawn_heartbeat(ctx.clone(), job.id, sid, cancel.clone())));
    let spool = match ctx.store.job_spool(job.id) {
        Ok(Some(s)) => s,
        Ok(None) => {
            let r = Err(
                KindError::new(ErrorKind::Interrupted, "the job has no spool to follow").into(),
            );
            finish(&ctx, &job, r, sink, writer, None).await;
            return;
        }
        Err(e) => {
            tracing::error!("job #{}: cannot read its spool: {e:#}", job.id);
            ctx.running.remove(job.id);
            return;
        }
    };
    if ctx.store.cancel_requested(job.id).unwrap_or(false) {
        cancel.cancel();
    }
    let mut pos = SpoolPos {
        out: spool.out_offset,
        err: spool.err_offset,
    };
    sink.system(&format!(
        "following the job on {} from its stored position (out {}, err {})",
        job.server_name, pos.out, pos.err
    ));
    let deadline_at = spool.deadline_at.unwrap_or_else(now_ms);
    let timeout = ctx
        .catalog
        .get(&job.app_id)
        .map(|i| Duration::from_secs(i.manifest.timeout_seconds));
    match follow_to_end(
        &ctx,
        &job,
        &spool.key,
        &mut pos,
        deadline_at,
        &cancel,
        &sink,
    )
    .await
    {
        Ok(ended) => {
            let r = outcome_of(&ended, &job, timeout);
            finish(&ctx, &job, r, sink, writer, Some(ended)).await;
        }
        Err(f) => finish(&ctx, &job, Err(f), sink, writer, None).await,
    }
}

pub(crate) struct AbortOnDrop(pub tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
