//! The headless CLI: one file per subcommand group, all over the same engine as the TUI.

pub mod bench;
pub mod catalog;
pub mod db;
pub mod generate;
pub mod health;
pub mod import;
pub mod install;
pub mod jobs;
pub mod maintenance;
pub mod out;
pub mod plan;
pub mod progress;
pub mod rollback;
pub mod server;
pub mod sites;
pub mod trust;

use clap::{Parser, Subcommand};
use out::{errln, out};
use ptui_engine::Engine;
use ptui_types::config::Config;
use std::path::PathBuf;

/// Process exit codes (documented in the README).
pub mod exit {
    pub const OK: i32 = 0;
    /// A command failed (not found, refused, bad arguments).
    pub const ERROR: i32 = 1;
    /// clap's own code for usage errors.
    pub const USAGE: i32 = 2;
    /// Output went to a pipe that closed (`| head`): 128 + SIGPIPE, as the shell reports a tool
    /// SIGPIPE ended.
    pub const BROKEN_PIPE: i32 = 141;
}

#[derive(Debug, Parser)]
#[command(
    name = "provision-tui",
    version,
    about = "Provision and watch a fleet of Linux servers over SSH. Without a subcommand, opens the dashboard."
)]
pub struct Cli {
    /// Database: a SQLite file (default: $XDG_DATA_HOME/provision-tui/state.db), or a shared
    /// PostgreSQL database, postgres://USER@HOST:PORT/DB?sslmode=… (the password from
    /// PGPASSFILE/~/.pgpass or PGPASSWORD, not the command line, where `ps` shows it).
    #[arg(long, global = true, env = "PROVISION_TUI_DB", value_name = "PATH|URL")]
    pub db: Option<PathBuf>,
    /// Extra installer directory; adds to and overrides the bundled catalog. Repeatable.
    #[arg(long = "installers", global = true, value_name = "DIR")]
    pub installers: Vec<PathBuf>,
    /// Dashboard theme (dark, light, high-contrast, or a file name under the user theme dir).
    #[arg(long, global = true, env = "PROVISION_TUI_THEME")]
    pub theme: Option<String>,
    /// Look only: every command that changes something is refused before it runs, and the
    /// dashboard's changing keys explain instead of acting. Also `readonly: true` in config.yml.
    #[arg(long, global = true, env = "PROVISION_TUI_READONLY", value_parser = clap::builder::BoolishValueParser::new())]
    pub readonly: bool,
    /// A site this process serves (repeatable; also `sites:` in config.yml; default
    /// `default`): it runs jobs and health checks only for servers of its sites, and jobs for
    /// other sites' servers are queued for their processes. With `server add`: the server's site.
    #[arg(long = "site", global = true, value_name = "SITE")]
    pub sites: Vec<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the server inventory.
    #[command(subcommand)]
    Server(server::ServerCmd),
    /// Sites: their servers, the live provision-tui processes serving each, and queued jobs;
    /// a site with no live process is flagged.
    Sites(sites::SitesArgs),
    /// Browse and lint installers.
    #[command(subcommand)]
    Catalog(catalog::CatalogCmd),
    /// Install an app on servers, streaming the log.
    Install(install::InstallArgs),
    /// Run an installer's uninstall script on servers.
    Uninstall(install::InstallArgs),
    /// Run an installer's upgrade script on servers. Required inputs may be left out; the
    /// recorded ones stay, overlaid with those given.
    Upgrade(install::InstallArgs),
    /// Return an app on a server to its previous recorded deployment: that deployment's inputs
    /// (secrets from the sealed store) and the configuration copy kept on the server.
    Rollback(rollback::RollbackArgs),
    /// List jobs; `jobs reattach [JOB]` follows detached jobs to their end.
    #[command(args_conflicts_with_subcommands = true)]
    Jobs {
        #[command(subcommand)]
        cmd: Option<jobs::JobsCmd>,
        #[command(flatten)]
        args: jobs::JobsArgs,
    },
    /// Print a job's log.
    Logs(jobs::LogsArgs),
    /// Cancel a queued or running job (in this or another provision-tui process).
    Cancel(jobs::CancelArgs),
    /// Show the audit log, newest first.
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        cmd: Option<trust::AuditCmd>,
        #[command(flatten)]
        args: jobs::AuditArgs,
    },
    #[command(subcommand)]
    Secrets(trust::SecretsCmd),
    /// The database: `db info`, `db copy --to postgres://…` (or back to a SQLite file).
    #[command(subcommand)]
    Db(db::DbCmd),
    /// Run one health check sweep now (all watched servers, or the named ones).
    Check(health::CheckArgs),
    /// Run the health checker headless (checks, incidents, recovery, notifications) until stopped.
    Watch(health::WatchArgs),
    /// Fleet metrics: servers, jobs, failure rates, incidents, check latency (JSON or Prometheus).
    Metrics(maintenance::MetricsArgs),
    /// List incidents, open ones first.
    Incidents(health::IncidentsArgs),
    /// Manual maintenance windows (no incidents, no notifications).
    #[command(subcommand)]
    Maintenance(maintenance::MaintenanceCmd),
    /// A server's health policy: recovery (notify|auto), base installer, check interval.
    Policy(health::PolicyArgs),
    /// Import servers from an ssh config, an Ansible inventory or a dynamic-inventory command.
    #[command(subcommand)]
    Import(import::ImportCmd),
    /// Benchmarks, not tests (fan-out against pyinfra/Ansible/OpenSSH; health checks).
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Benchmark dashboard rendering (10k servers, a 1M-line log) and print frame times.
    #[command(hide = true)]
    BenchRender {
        #[arg(long, default_value_t = 1_000_000)]
        lines: i64,
    },
    /// Print the dashboard key bindings as a Markdown table (for the README and docs).
    #[command(hide = true)]
    KeysMarkdown,
    /// Print a shell completion script (bash, zsh or fish), generated from this CLI.
    Completions(generate::CompletionsArgs),
    /// Print the man page, or write all of them (one per subcommand) with --out DIR.
    Man(generate::ManArgs),
}

impl Cli {
    /// Paths from the flags; read-only and the clipboard from the flags and config.yml (a
    /// config.yml that does not parse is an error: it may be what makes this user read-only).
    pub fn config(&self) -> color_eyre::eyre::Result<Config> {
        let mut config = Config::new(self.db.clone(), self.installers.clone());
        let file = health::load_config()?;
        config.access.readonly = if self.readonly {
            Some("started with --readonly or PROVISION_TUI_READONLY".into())
        } else if file.readonly {
            Some(format!(
                "readonly: true in {}",
                ptui_engine::health::config::default_path().display()
            ))
        } else {
            None
        };
        config.access.osc52 = file.clipboard.unwrap_or(true);
        let sites = if self.sites.is_empty() {
            file.sites.clone()
        } else {
            self.sites.clone()
        };
        for site in &sites {
            ptui_types::server::validate_site(site).map_err(|e| {
                color_eyre::eyre::eyre!(
                    "{e} (from {})",
                    if self.sites.is_empty() {
                        "sites: in config.yml"
                    } else {
                        "--site"
                    }
                )
            })?;
        }
        if !sites.is_empty() {
            config.sites = sites;
        }
        Ok(config)
    }
}

/// Runs a subcommand and returns the process exit code.
pub async fn run(cli: Cli, command: Command) -> i32 {
    match &command {
        Command::BenchRender { lines } => {
            return match ptui_bench::render::run(*lines).await {
                Ok(()) => exit::OK,
                Err(e) => {
                    out::error(&e);
                    exit::ERROR
                }
            };
        }
        Command::KeysMarkdown => {
            out!("{}", ptui_tui::keymap::markdown());
            return exit::OK;
        }
        _ => {}
    }
    // Generated from the clap definitions; no database.
    let command = match command {
        Command::Completions(a) => return code_of(generate::completions(a)),
        Command::Man(a) => return code_of(generate::man(a)),
        other => other,
    };
    // The bench opens its own throwaway databases.
    let command = match command {
        Command::Bench(c) => {
            return match bench::run(c).await {
                Ok(code) => code,
                Err(e) => {
                    out::error(&e);
                    exit::ERROR
                }
            };
        }
        other => other,
    };
    // `catalog validate DIR` needs no database.
    if let Command::Catalog(catalog::CatalogCmd::Validate { dir: Some(dir) }) = &command {
        return catalog::validate_dir(dir);
    }
    if let Command::Catalog(catalog::CatalogCmd::Pin { dir }) = &command {
        // It writes no database, but it is a change: looking only refuses it too.
        match cli.config() {
            Ok(c) => {
                if let Some(why) = c.access.readonly {
                    out::error(format!(
                        "read-only: pinning installers is refused, {} was not changed ({why}); run provision-tui without it to pin",
                        dir.join("catalog.lock").display()
                    ));
                    return exit::ERROR;
                }
            }
            Err(e) => {
                out::error(&e);
                return exit::ERROR;
            }
        }
        return catalog::pin_dir(dir).unwrap_or_else(|e| {
            out::error(&e);
            exit::ERROR
        });
    }
    let engine = match cli.config().and_then(Engine::open) {
        Ok(e) => e,
        Err(e) => {
            out::error(&e);
            return exit::ERROR;
        }
    };
    let result = match command {
        Command::Server(c) => server::run(&engine, c, &cli.sites).await,
        Command::Sites(a) => sites::run(&engine, a),
        Command::Catalog(c) => catalog::run(&engine, c),
        Command::Install(a) => install::run(&engine, a, ptui_types::job::JobAction::Install).await,
        Command::Uninstall(a) => {
            install::run(&engine, a, ptui_types::job::JobAction::Uninstall).await
        }
        Command::Upgrade(a) => install::run(&engine, a, ptui_types::job::JobAction::Upgrade).await,
        Command::Rollback(a) => rollback::run(&engine, a).await,
        Command::Jobs {
            cmd: Some(jobs::JobsCmd::Reattach(a)),
            ..
        } => jobs::reattach(&engine, a).await,
        Command::Jobs { cmd: None, args } => jobs::list(&engine, args),
        Command::Logs(a) => jobs::logs(&engine, a).await,
        Command::Cancel(a) => jobs::cancel(&engine, a).await,
        Command::Audit { cmd: None, args } => jobs::audit(&engine, args),
        Command::Audit { cmd: Some(c), .. } => trust::audit(&engine, c),
        Command::Secrets(c) => trust::secrets(&engine, c),
        Command::Db(c) => db::run(&engine, c),
        Command::Import(c) => import::run(&engine, c).await,
        Command::Check(a) => health::check(&engine, a).await,
        Command::Watch(a) => health::watch(&engine, a).await,
        Command::Metrics(a) => maintenance::metrics_cmd(&engine, a).await,
        Command::Incidents(a) => health::incidents(&engine, a),
        Command::Maintenance(c) => maintenance::run(&engine, c),
        Command::Policy(a) => health::policy(&engine, a),
        Command::BenchRender { .. }
        | Command::KeysMarkdown
        | Command::Bench(_)
        | Command::Completions(_)
        | Command::Man(_) => Ok(exit::OK),
    };
    code_of(result)
}

/// The exit code of a command's result; an error is printed first.
fn code_of(result: color_eyre::eyre::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            out::error(&e);
            exit::ERROR
        }
    }
}

/// Formats a millisecond timestamp in local time for tables.
pub fn fmt_ts(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

/// Whether stdin and stdout are terminals (prompts are allowed only then).
pub fn interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// No subcommand: the dashboard.
pub async fn run_dashboard(cli: Cli) -> i32 {
    let engine = match cli.config().and_then(Engine::open) {
        Ok(e) => e,
        Err(e) => {
            out::error(&e);
            return exit::ERROR;
        }
    };
    // The dashboard watches the fleet too; with another checker on this database (say
    // `provision-tui watch`) the singleton lease keeps this one on standby.
    let _checker = match health::load_config().and_then(|cfg| engine.start_health(cfg)) {
        Ok(stop) => Some(stop),
        // Looking only: no checker here (it stores samples); another process's show up.
        Err(_)
            if !engine
                .access()
                .may(ptui_engine::access::Change::HealthCheck) =>
        {
            None
        }
        Err(e) => {
            tracing::error!("health checks disabled: {e:#}");
            None
        }
    };
    // Jobs queued for this process's sites from other bastions run here while it is open.
    let _serving = match engine.serve_sites("dashboard") {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("not serving site(s) {}: {e:#}", engine.sites().join(", "));
            None
        }
    };
    match ptui_tui::run(engine, cli.theme.clone()).await {
        Ok(said) => {
            if let Some(said) = said {
                errln!("==> {said}");
            }
            exit::OK
        }
        Err(e) => {
            out::error(&e);
            exit::ERROR
        }
    }
}
