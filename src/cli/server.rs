//! `provision-tui server ...`

use super::out::{self, err, errln, outln};
use super::{exit, fmt_ts, interactive};
use clap::Subcommand;
use color_eyre::eyre::{Result, bail};
use ptui_engine::Engine;
use ptui_types::hostkey::HostKeyVerdict;
use ptui_types::records::ServerDetail;
use ptui_types::sanitize::terminal_text;
use ptui_types::server::{ServerSpec, ServerStatus};

#[derive(Debug, Subcommand)]
pub enum ServerCmd {
    /// Register a server (status pending_setup). `--site SITE` puts it in that site (default
    /// `default`): only provision-tui processes serving the site run its jobs and checks.
    Add {
        name: String,
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 22)]
        port: u16,
        #[arg(long, default_value = "root")]
        user: String,
        /// Private key file for this server.
        #[arg(long)]
        identity: Option<String>,
        /// Name of a registered server to jump through.
        #[arg(long)]
        jump: Option<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Environment variable that holds the SSH password (never pass it in argv).
        #[arg(long)]
        password_env: Option<String>,
    },
    /// How jobs escalate on a server: `sudo -n` (default), a sudo password from an env var or
    /// asked for (sent on stdin only), or never.
    Sudo {
        name: String,
        /// Environment variable holding the sudo password; the value never leaves stdin.
        #[arg(long, value_name = "VAR", conflicts_with = "never")]
        password_env: Option<String>,
        /// Ask for the sudo password: the dashboard's dialog, or a prompt when install runs on a
        /// terminal. Kept in memory only, never stored.
        #[arg(long, conflicts_with_all = ["never", "password_env"])]
        prompt: bool,
        /// Never use sudo on this server (Ansible `become: false`).
        #[arg(long)]
        never: bool,
        /// Back to the default (password-less `sudo -n` for non-root logins).
        #[arg(long, conflicts_with_all = ["never", "password_env", "prompt"])]
        default: bool,
    },
    /// Change a server's connection fields or tags, as the dashboard's `e` does; what is
    /// left out keeps its value. Audited as `server.edit`.
    Edit {
        name: String,
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        #[arg(long)]
        user: Option<String>,
        /// Private key file for this server.
        #[arg(long, conflicts_with = "no_identity")]
        identity: Option<String>,
        /// Forget the key file (the agent's keys and the defaults are tried).
        #[arg(long)]
        no_identity: bool,
        /// Name of a registered server to jump through.
        #[arg(long, conflicts_with = "no_jump")]
        jump: Option<String>,
        /// Connect directly, not through a jump host.
        #[arg(long)]
        no_jump: bool,
        /// The server's tags, replacing the old ones (repeatable).
        #[arg(long = "tag", conflicts_with = "no_tags")]
        tags: Vec<String>,
        /// Remove every tag.
        #[arg(long)]
        no_tags: bool,
    },
    /// List servers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one server with its history, deployments and recent jobs.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a server from the inventory (its jobs stay in the history).
    Rm { name: String },
    /// Move a server to another site: the processes serving that site run its jobs and checks.
    Site { name: String, site: String },
    /// Change a server's status (checked against the lifecycle rules).
    SetStatus { name: String, status: String },
    /// Fetch the server's host key, show its SHA256 fingerprint and record it.
    Trust {
        name: String,
        /// Record without asking.
        #[arg(long)]
        yes: bool,
        /// Replace a recorded key that changed, of any key type (after checking the new one
        /// out of band): drops this host's entries in provision-tui's own known_hosts.
        #[arg(long)]
        replace: bool,
    },
}

/// `sites`: the global `--site` flags as given (for `server add`, the new server's site).
pub async fn run(engine: &Engine, cmd: ServerCmd, sites: &[String]) -> Result<i32> {
    match cmd {
        ServerCmd::Add {
            name,
            host,
            port,
            user,
            identity,
            jump,
            tags,
            password_env,
        } => {
            if sites.len() > 1 {
                bail!(
                    "a server is in one site; give --site once (got {})",
                    sites.join(", ")
                );
            }
            let s = engine.add_server(&ServerSpec {
                name,
                host,
                port,
                user,
                identity,
                jump,
                tags,
                password_env,
                site: sites.first().cloned(),
            })?;
            outln!(
                "added {} ({}) as {} in site {}",
                s.name,
                s.address(),
                s.status,
                s.site
            );
            outln!("next: provision-tui server trust {}", s.name);
            Ok(exit::OK)
        }
        ServerCmd::List { json } => {
            let servers = engine.servers()?;
            if json {
                out::json_pretty(&servers)?;
            } else if servers.is_empty() {
                outln!("no servers yet; add one with `provision-tui server add NAME --host HOST`");
            } else {
                outln!(
                    "{:<20} {:<28} {:<15} {:<12} TAGS",
                    "NAME",
                    "ADDRESS",
                    "STATUS",
                    "SITE"
                );
                for s in servers {
                    outln!(
                        "{:<20} {:<28} {:<15} {:<12} {}",
                        s.name,
                        s.address(),
                        s.status.as_str(),
                        s.site,
                        s.tags.join(",")
                    );
                }
            }
            Ok(exit::OK)
        }
        ServerCmd::Show { name, json } => show(engine, &name, json),
        ServerCmd::Edit {
            name,
            host,
            port,
            user,
            identity,
            no_identity,
            jump,
            no_jump,
            tags,
            no_tags,
        } => {
            let given = host.is_some()
                || port.is_some()
                || user.is_some()
                || identity.is_some()
                || jump.is_some()
                || !tags.is_empty()
                || no_identity
                || no_jump
                || no_tags;
            if !given {
                bail!(
                    "nothing to change for {name}: give --host, --port, --user, --identity, --jump or --tag (or --no-identity, --no-jump, --no-tags)"
                );
            }
            let old = engine.server(&name)?;
            let spec = ServerSpec {
                name: old.name.clone(),
                host: host.unwrap_or(old.host),
                port: port.unwrap_or(old.port),
                user: user.unwrap_or(old.user),
                identity: if no_identity {
                    None
                } else {
                    identity.or(old.identity)
                },
                jump: if no_jump { None } else { jump.or(old.jump) },
                tags: match (no_tags, tags.is_empty()) {
                    (true, _) => Vec::new(),
                    (false, true) => old.tags,
                    (false, false) => tags,
                },
                // Its site stays (`server site` changes it).
                site: None,
                password_env: None,
            };
            let s = engine.edit_server(&name, &spec)?;
            outln!(
                "{} now {} (tags {})",
                s.name,
                s.address(),
                if s.tags.is_empty() {
                    "none".to_string()
                } else {
                    s.tags.join(",")
                }
            );
            Ok(exit::OK)
        }
        ServerCmd::Sudo {
            name,
            password_env,
            prompt,
            never,
            default,
        } => {
            let settings = if default {
                ptui_types::records::SudoSettings::default()
            } else {
                ptui_types::records::SudoSettings {
                    escalate: if never { Some(false) } else { Some(true) },
                    password_env,
                    prompt,
                }
            };
            engine.set_server_sudo(&name, &settings)?;
            outln!("{name}: sudo settings saved");
            Ok(exit::OK)
        }
        ServerCmd::Site { name, site } => {
            let s = engine.set_server_site(&name, &site)?;
            outln!("{} is now in site {}", s.name, s.site);
            Ok(exit::OK)
        }
        ServerCmd::Rm { name } => {
            let s = engine.remove_server(&name)?;
            outln!("removed {} ({})", s.name, s.address());
            Ok(exit::OK)
        }
        ServerCmd::SetStatus { name, status } => {
            let Some(to) = ServerStatus::parse(&status) else {
                let all: Vec<&str> = ServerStatus::ALL.iter().map(|s| s.as_str()).collect();
                bail!("unknown status {status:?}; one of: {}", all.join(", "));
            };
            let s = engine.set_server_status(&name, to)?;
            outln!("{} is now {}", s.name, s.status);
            Ok(exit::OK)
        }
        ServerCmd::Trust { name, yes, replace } => trust(engine, &name, yes, replace).await,
    }
}

fn show(engine: &Engine, name: &str, json: bool) -> Result<i32> {
    let mut page = engine.server_detail(name, 20)?;
    page.jobs.truncate(10);
    if json {
        let v = serde_json::json!({"server": page.server, "sudo": page.sudo, "events": page.events, "deployments": page.deployments, "jobs": page.jobs, "incidents": page.incidents});
        out::json_pretty(&v)?;
        return Ok(exit::OK);
    }
    let ServerDetail {
        server: s,
        sudo,
        events,
        deployments,
        jobs,
        ..
    } = page;
    outln!(
        "{}  {}  [{}]  site {}",
        s.name,
        s.address(),
        s.status,
        s.site
    );
    if let Some(j) = &s.jump {
        outln!("jump host: {j}");
    }
    if !s.tags.is_empty() {
        outln!("tags: {}", s.tags.join(", "));
    }
    match (sudo.escalate, &sudo.password_env) {
        (Some(false), _) => outln!("sudo: never"),
        (_, Some(var)) => outln!("sudo: with the password from ${var} (sent on stdin)"),
        _ if sudo.prompt => {
            outln!("sudo: with a password asked for (kept in memory, sent on stdin)")
        }
        _ => {}
    }
    outln!("\nstatus history:");
    for e in events.iter().rev() {
        let from = e.from_status.map(|f| f.as_str()).unwrap_or("-");
        outln!(
            "  {}  {from} -> {}  ({})",
            fmt_ts(e.ts),
            e.to_status,
            e.reason
        );
    }
    outln!("\ndeployments:");
    if deployments.is_empty() {
        outln!("  none");
    }
    for d in deployments {
        outln!(
            "  {} v{}  installed {}  inputs {}",
            d.app_id,
            d.app_version,
            fmt_ts(d.updated_at),
            d.inputs
        );
    }
    outln!("\nrecent jobs:");
    if jobs.is_empty() {
        outln!("  none");
    }
    for j in jobs {
        outln!(
            "  #{} {} {} {} {}",
            j.id,
            j.action.as_str(),
            j.app_id,
            j.status,
            j.error_kind.map(|k| k.as_str()).unwrap_or("")
        );
    }
    Ok(exit::OK)
}

async fn trust(engine: &Engine, name: &str, yes: bool, replace: bool) -> Result<i32> {
    // Refused before connecting to the server.
    let change = match replace {
        true => ptui_engine::access::Change::ReplaceHostKey,
        false => ptui_engine::access::Change::TrustHostKey,
    };
    engine.require(change, name)?;
    let scan = match engine.scan_host_key(name).await {
        Ok(s) => s,
        Err(e) => {
            errln!("error ({}): {}", e.kind, terminal_text(&e.message));
            return Ok(e.kind.cli_exit_code());
        }
    };
    match &scan.verdict {
        HostKeyVerdict::Trusted => {
            outln!("{name}: host key {} is already trusted", scan.fingerprint);
            return Ok(exit::OK);
        }
        HostKeyVerdict::Changed {
            recorded, key_type, ..
        } => {
            errln!("WARNING: the host key of {name} CHANGED.");
            for r in recorded {
                errln!("  recorded: {}", r.describe());
            }
            errln!("  offered now: {key_type} {}", scan.fingerprint);
            if !replace {
                errln!(
                    "Nothing recorded. If the server was rebuilt and you verified the new key out of band, \
                     re-run with --replace (it drops the old entries for this host in {}).",
                    engine.config().known_hosts_path.display()
                );
                return Ok(ptui_types::error::ErrorKind::HostKey.cli_exit_code());
            }
            if let Some(note) = ptui_types::hostkey::user_file_note(&scan.verdict) {
                errln!("Note: {note}.");
            }
        }
        HostKeyVerdict::Unknown { key_type, .. } => {
            outln!(
                "{name}: host key fingerprint {key_type} {}",
                scan.fingerprint
            );
        }
    }
    if !yes {
        if !interactive() {
            errln!("not a terminal: verify the fingerprint, then re-run with --yes to record it");
            return Ok(exit::ERROR);
        }
        err!("Trust this key? Type 'yes' to record it: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            errln!("not recorded");
            return Ok(exit::ERROR);
        }
    }
    engine.trust_host_key(&scan, replace)?;
    outln!(
        "recorded {} for {name} in {}",
        scan.fingerprint,
        engine.config().known_hosts_path.display()
    );
    Ok(exit::OK)
}
