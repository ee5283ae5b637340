//! `provision-tui jobs|logs|cancel|audit`

use super::out::{self, errln, outln};
use super::{exit, fmt_ts};
use clap::Args;
use color_eyre::eyre::{Result, bail};
use ptui_engine::Engine;
use ptui_types::job::JobFilter;
use ptui_types::job::{JobStatus, LogStream};
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
                "unknown job status {s:?}; one of: queued, running, succeeded, failed, cancelled, interrupted"
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
    let mut next = 1;
    loop {
        let job = engine.job(a.job)?;
        loop {
            let lines = engine.job_logs(a.job, next, 5000)?;
            if lines.is_empty() {
                break;
            }
            for l in &lines {
                next = l.seq + 1;
                if a.json {
                    out::json_log_line(l)?;
                    continue;
                }
                // Sanitised before the prefix, so a `\r` in the text cannot hide the prefix.
                let text = if a.timestamps {
                    let shown = terminal_text(&l.text);
                    format!("{} {:<6} {shown}", fmt_ts(l.ts), l.stream.as_str())
                } else {
                    l.text.clone()
                };
                match l.stream {
                    LogStream::Stderr => errln!("{text}"),
                    _ => outln!("{text}"),
                }
            }
        }
        if !a.follow || job.status.is_terminal() {
            return Ok(match job.status {
                JobStatus::Succeeded | JobStatus::Queued | JobStatus::Running => exit::OK,
                _ => job
                    .error_kind
                    .map(|k| k.cli_exit_code())
                    .unwrap_or(exit::ERROR),
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn cancel(engine: &Engine, a: CancelArgs) -> Result<i32> {
    let job = engine.cancel_job(a.job)?;
    outln!(
        "cancel requested for job #{} ({} on {}); the process running it stops it within seconds",
        job.id,
        job.app_id,
        job.server_name
    );
    Ok(exit::OK)
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
