//! `provision-tui sites`: each site's servers, the live processes serving it (runners), the
//! jobs queued for it, and which site has no live process at all.

use super::out::{self, outln};
use super::{exit, fmt_ts};
use clap::Args;
use color_eyre::eyre::Result;
use ptui_engine::Engine;

#[derive(Debug, Args)]
pub struct SitesArgs {
    #[arg(long)]
    pub json: bool,
}

pub fn run(engine: &Engine, a: SitesArgs) -> Result<i32> {
    let sites = engine.site_reports()?;
    if a.json {
        let v: Vec<serde_json::Value> = sites
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["unserved"] = serde_json::Value::Bool(s.unserved());
                v
            })
            .collect();
        out::json_pretty(&v)?;
        return Ok(exit::OK);
    }
    outln!("this process serves: {}", engine.sites().join(", "));
    outln!("{:<16} {:>7} {:>7}  SERVED BY", "SITE", "SERVERS", "QUEUED");
    for s in &sites {
        let by = if s.runners.is_empty() {
            "NO LIVE PROCESS: its jobs wait and its servers are not checked".to_string()
        } else {
            s.runners
                .iter()
                .map(|r| format!("{} {} (since {})", r.role, r.id, fmt_ts(r.started_at)))
                .collect::<Vec<_>>()
                .join("; ")
        };
        outln!(
            "{:<16} {:>7} {:>7}  {by}",
            s.site,
            s.servers,
            s.waiting_jobs
        );
        if let Some(c) = &s.checker {
            outln!("{:<16} health checks run by {c}", "");
        }
    }
    Ok(exit::OK)
}
