//! `provision-tui jobs|logs|cancel|audit`

use super::out::{self, errln, outln};
use super::{exit, fmt_ts};
use clap::Args;
use color_eyre::eyre::{Result, bail};
use ptui_engine::Engine;
use ptui_types::job::JobFilter;
use ptui_types::job::{Job, JobStatus, LogStream};
use ptui_types::sanitize::terminal_text;
use ptui_types::time::human_ms;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub server: Option<String>,
    #[arg(long)]
    pub app: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub job: i64,
    /// Keep printing new lines until the job ends (works across processes).
    #[arg(long, short)]
    pub follow: bool,
    /// Prefix each line with its timestamp and stream.
    #[arg(long, short)]
    pub timestamps: bool,
    /// One JSON object per line (`install --json`'s log events).
    #[arg(long, conflicts_with = "timestamps")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    pub job: i64,
}

#[derive(Debug, clap::Subcommand)]
pub enum JobsCmd {
    /// Follow detached jobs (left running on their servers by a process that stopped) to
    /// their end here: their missed output, the rest live, and the real outcome.
    Reattach(ReattachArgs),
}

#[derive(Debug, Args)]
pub struct ReattachArgs {
    /// The job to follow; without it, every detached job.
    pub job: Option<i64>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries whose operator, action, target or details contain this text.
    pub filter: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

pub fn list(engine: &Engine, a: JobsArgs) -> Result<i32> {
    let status = match a.status.as_deref() {
        Some(s) => match JobStatus::parse(s) {
            Some(s) => Some(s),
            None => bail!(
                "unknown job status {s:?}; one of: queued, running, detached, succeeded, failed, cancelled, interrupted"
            ),
        },
        None => None,
    };
    let jobs = engine.jobs(&JobFilter {
        status,
        server: a.server,
        app: a.app,
        limit: Some(a.limit),
        after_id: None,
    })?;
    if a.json {
        out::json_pretty(&jobs)?;
        return Ok(exit::OK);
    }
    if jobs.is_empty() {
        outln!("no jobs");
        return Ok(exit::OK);
    }
    let now = ptui_types::time::now_ms();
    outln!(
        "{:>5}  {:<11} {:<10} {:<14} {:<16} {:<19} {:>8}  ERROR",
        "ID",
        "STATUS",
        "ACTION",
        "APP",
        "SERVER",
        "CREATED",
        "TOOK"
    );
    for j in jobs {
        outln!(
            "{:>5}  {:<11} {:<10} {:<14} {:<16} {:<19} {:>8}  {}",
            j.id,
            j.status.as_str(),
            j.action.as_str(),
            j.app_id,
            j.server_name,
            fmt_ts(j.created_at),
            j.duration_ms(now)
                .map(human_ms)
                .unwrap_or_else(|| "-".into()),
            j.error_kind.map(|k| k.as_str()).unwrap_or("")
        );
    }
    Ok(exit::OK)
}

pub async fn logs(engine: &Engine, a: LogsArgs) -> Result<i32> {
    if a.follow {
        // A job whose process died is followed (and so collected) by this one.
        if let Err(e) = engine.adopt_job(a.job) {
            errln!("warning: cannot adopt job #{}: {e:#}", a.job);
        }
    }
    let mut next = 1;
    let code = loop {
        let job = engine.job(a.job)?;
        next = print_new_lines(engine, a.job, next, &a, None)?;
        if !a.follow || job.status.is_terminal() {
            break match job.status {
                JobStatus::Succeeded | JobStatus::Queued | JobStatus::Running => exit::OK,
                _ => job
                    .error_kind
                    .map(|k| k.cli_exit_code())
                    .unwrap_or(exit::ERROR),
            };
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    if a.follow {
        engine.settle(a.job).await;
    }
    Ok(code)
}

/// Prints a job's lines from `next` on; returns the next seq to print.
fn print_new_lines(
    engine: &Engine,
    job_id: i64,
    mut next: i64,
    a: &LogsArgs,
    prefix: Option<&str>,
) -> Result<i64> {
    loop {
        let lines = engine.job_logs(job_id, next, 5000)?;
        if lines.is_empty() {
            return Ok(next);
        }
        for l in &lines {
            next = l.seq + 1;
            if a.json {
                out::json_log_line(l)?;
                continue;
            }
            // Sanitised before the prefix, so a `\r` in the text cannot hide the prefix.
            let mut text = if a.timestamps {
                let shown = terminal_text(&l.text);
                format!("{} {:<6} {shown}", fmt_ts(l.ts), l.stream.as_str())
            } else {
                terminal_text(&l.text).into_owned()
            };
            if let Some(p) = prefix {
                text = format!("{p}{text}");
            }
            match l.stream {
                LogStream::Stderr => errln!("{text}"),
                _ => outln!("{text}"),
            }
        }
    }
}

/// `jobs reattach [JOB]`: adopts detached jobs (or jobs whose process died), follows them to
/// their end here, printing their output, and exits with the worst outcome.
pub async fn reattach(engine: &Engine, a: ReattachArgs) -> Result<i32> {
    let ids = match a.job {
        Some(id) => {
            if !engine.adopt_job(id)? {
                let job = engine.job(id)?;
                if job.status.is_terminal() {
                    bail!(
                        "job #{id} already ended ({}); `provision-tui logs {id}` shows it",
                        job.status
                    );
                }
                if let Ok(server) = engine.server(&job.server_name)
                    && !engine.serves(&server.site)
                {
                    bail!(
                        "job #{id} runs on {} of site {site}, which this process does not serve: a process of site {site} adopts it (`provision-tui --site {site} jobs reattach {id}` on its bastion); `provision-tui logs {id} --follow` shows it here",
                        server.name,
                        site = server.site
                    );
                }
                bail!(
                    "job #{id} is {} and followed by a live process; `provision-tui logs {id} --follow` shows it",
                    job.status
                );
            }
            vec![id]
        }
        None => engine.adopt_detached(None)?,
    };
    if ids.is_empty() {
        outln!("no detached job to follow");
        return Ok(exit::OK);
    }
    let print = LogsArgs {
        job: 0,
        follow: true,
        timestamps: false,
        json: false,
    };
    let multi = ids.len() > 1;
    let mut next: Vec<i64> = ids.iter().map(|_| 1).collect();
    let mut code = exit::OK;
    let mut open: Vec<bool> = ids.iter().map(|_| true).collect();
    while open.iter().any(|o| *o) {
        for (i, id) in ids.iter().enumerate() {
            if !open[i] {
                continue;
            }
            // Over once this process stopped following it (its spool removed, or it was
            // left detached). Asked before printing: its last lines are then all stored.
            let over = !engine.running_here().contains(id);
            let prefix = format!("[#{id}] ");
            next[i] = print_new_lines(
                engine,
                *id,
                next[i],
                &print,
                multi.then_some(prefix.as_str()),
            )?;
            if over {
                open[i] = false;
                let job = engine.job(*id)?;
                errln!(
                    "==> job #{id} on {}: {}{}",
                    job.server_name,
                    job.status,
                    job.error_message
                        .as_deref()
                        .map(|m| format!(": {}", terminal_text(m)))
                        .unwrap_or_default()
                );
                if job.status != JobStatus::Succeeded && code == exit::OK {
                    code = job
                        .error_kind
                        .map(|k| k.cli_exit_code())
                        .unwrap_or(exit::ERROR);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(code)
}

pub async fn cancel(engine: &Engine, a: CancelArgs) -> Result<i32> {
    let job = engine.cancel_job(a.job)?;
    warn_package_managers(engine, &job).await;
    // Nobody follows a detached job: this process adopts it, kills it on its server and
    // records the end.
    if engine.adopt_job(a.job)? {
        outln!(
            "cancelling job #{} ({} on {}) on its server",
            job.id,
            job.app_id,
            job.server_name
        );
        let done = engine.wait_job(a.job).await?;
        outln!("job #{}: {}", done.id, done.status);
        return Ok(if done.status == JobStatus::Cancelled {
            exit::OK
        } else {
            exit::ERROR
        });
    }
    outln!(
        "cancel requested for job #{} ({} on {}); the process running it stops it within seconds",
        job.id,
        job.app_id,
        job.server_name
    );
    Ok(exit::OK)
}

/// Says when apt or dpkg runs on the job's server: the cancel may interrupt a package step
/// (the grace lets it finish; after it, the installer's next run repairs dpkg).
async fn warn_package_managers(engine: &Engine, job: &Job) {
    if job.status.is_terminal() {
        return;
    }
    match engine
        .package_manager_note(&job.server_name, &job.app_id)
        .await
    {
        Ok(Some(note)) => outln!("note: {note}"),
        Ok(None) => {}
        Err(e) => outln!(
            "note: could not check for a package manager on {}: {e:#}",
            job.server_name
        ),
    }
}

pub fn audit(engine: &Engine, a: AuditArgs) -> Result<i32> {
    let rows = engine.audit_entries(a.filter.as_deref(), a.limit)?;
    if a.json {
        out::json_pretty(&rows)?;
        return Ok(exit::OK);
    }
    for r in rows {
        outln!(
            "{}  {:<24} {:<18} {:<16} {}",
            fmt_ts(r.ts),
            r.operator,
            r.action,
            r.target,
            r.details
        );
    }
    Ok(exit::OK)
}
