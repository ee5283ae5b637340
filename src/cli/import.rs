//! `provision-tui import ssh-config|ansible|command`: bring in existing inventories.

use super::exit;
use super::out::{self, errln, outln};
use clap::Subcommand;
use color_eyre::eyre::Result;
use ptui_engine::Engine;
use ptui_engine::inventory::{self, ImportReport};
use ptui_types::server::ServerStatus;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// Import the Host entries of an OpenSSH client config (default ~/.ssh/config).
    SshConfig {
        path: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Import an Ansible inventory (INI or YAML): groups become tags.
    Ansible {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run a command that prints servers as JSON (docs/INVENTORY.md), or Ansible's
    /// `ansible-inventory --list` JSON (so any inventory plugin); they come in as `discovered`.
    Command {
        /// The command, run with `sh -c`.
        cmd: String,
        /// Seconds the command may take.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(engine: &Engine, cmd: ImportCmd) -> Result<i32> {
    let (result, json) = match cmd {
        ImportCmd::SshConfig { path, json } => {
            let path = path.unwrap_or_else(|| ptui_types::config::home_dir().join(".ssh/config"));
            let r = inventory::ssh_config::plan(&path).map(|(label, entries, report)| {
                (label, entries, report, ServerStatus::PendingSetup)
            });
            (r, json)
        }
        ImportCmd::Ansible { file, json } => {
            let r = inventory::ansible::entries(&file).map(|entries| {
                (
                    format!("ansible {}", file.display()),
                    entries,
                    ImportReport::default(),
                    ServerStatus::PendingSetup,
                )
            });
            (r, json)
        }
        ImportCmd::Command { cmd, timeout, json } => {
            let r = inventory::command::run(&cmd, Duration::from_secs(timeout))
                .await
                .map(|entries| {
                    (
                        format!("command {cmd}"),
                        entries,
                        ImportReport::default(),
                        ServerStatus::Discovered,
                    )
                });
            (r, json)
        }
    };
    let (source, entries, report, status) = match result {
        Ok(x) => x,
        Err(e) => {
            out::error(&e);
            if let Err(audit) = engine.record_import_failure(&e) {
                tracing::warn!("the failed import is not in the audit log: {audit:#}");
            }
            return Ok(exit::ERROR);
        }
    };
    let report = engine.import_entries(&source, entries, status, report)?;
    if json {
        out::json_pretty(&report)?;
    } else {
        let w = report
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        outln!("{:<w$}  OUTCOME", "NAME");
        for r in &report.rows {
            outln!("{:<w$}  {}  [{}]", r.name, r.outcome, r.origin);
        }
        errln!("{}: {}", report.source, report.summary());
    }
    Ok(exit::OK)
}
