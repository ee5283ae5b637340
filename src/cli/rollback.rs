//! `provision-tui rollback APP --on SERVER`: back to the previous recorded deployment.

use super::out::{self, errln, outln};
use super::{exit, fmt_ts};
use clap::Args;
use color_eyre::eyre::Result;
use ptui_engine::Engine;

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The app (installer id).
    pub app: String,
    /// The server.
    #[arg(long)]
    pub on: String,
    /// Print the deployment it would return to, and change nothing.
    #[arg(long)]
    pub plan: bool,
    /// JSON: the target with --plan, else one object per log line (like `logs --json`).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(engine: &Engine, a: RollbackArgs) -> Result<i32> {
    let target = match engine.rollback_target(&a.app, &a.on) {
        Ok(t) => t,
        Err(e) => return Ok(out::request_error(&e)),
    };
    let what = format!(
        "the deployment of {} on {} made by {} (installer v{}), replaced by job #{} at {}; inputs {}",
        target.app,
        target.server,
        target
            .job_id
            .map_or_else(|| "an unknown job".to_string(), |j| format!("job #{j}")),
        target.app_version,
        target.replaced_by_job,
        fmt_ts(target.replaced_at),
        target.inputs
    );
    if a.plan {
        if a.json {
            out::json(&target)?;
        } else {
            outln!("rollback would return to {what}");
        }
        return Ok(exit::OK);
    }
    engine.require(ptui_engine::access::Change::RunJob, &a.on)?;
    let job = match engine.start_rollback(&a.app, &a.on) {
        Ok(j) => j,
        Err(e) => return Ok(out::request_error(&e)),
    };
    if !a.json {
        errln!("==> job #{} rollback: back to {what}", job.id);
    }
    let code = super::jobs::logs(
        engine,
        super::jobs::LogsArgs {
            job: job.id,
            follow: true,
            timestamps: false,
            json: a.json,
        },
    )
    .await?;
    if !a.json
        && let Ok(done) = engine.job(job.id)
    {
        errln!(
            "==> job #{} on {}: {}{}",
            done.id,
            done.server_name,
            done.status,
            done.error_message
                .map(|m| format!(": {}", ptui_types::sanitize::terminal_text(&m)))
                .unwrap_or_default()
        );
    }
    Ok(code)
}
