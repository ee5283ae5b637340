//! `provision-tui secrets status|rotate-key` and `audit verify|export`.

use super::exit;
use super::out::{self, outln};
use clap::Subcommand;
use color_eyre::eyre::Result;
use ptui_engine::Engine;

#[derive(Debug, Subcommand)]
pub enum SecretsCmd {
    /// How many deployments hold sealed secrets, and those whose secrets this key cannot open.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// A new secrets key; every stored secret re-sealed with it in one transaction.
    RotateKey {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Checks the audit log's HMAC chain: the first edited, inserted, deleted or moved row,
    /// or "intact, N rows, head HASH". Exit 1 when it is broken.
    Verify {
        /// A head hash kept elsewhere (from an earlier verify): detects a removed tail.
        #[arg(long, value_name = "HASH")]
        head: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Every audit row with its chain hashes, oldest first, as JSON lines (to ship elsewhere).
    Export,
}

pub fn secrets(engine: &Engine, cmd: SecretsCmd) -> Result<i32> {
    match cmd {
        SecretsCmd::Status { json } => {
            let needed = engine.secrets_needed()?;
            let total = engine.sealed_deployment_count()?;
            if json {
                out::json_pretty(&serde_json::json!({"sealed": total, "need_secrets": needed}))?;
            } else {
                outln!("{total} deployment(s) with sealed secrets");
                for n in &needed {
                    outln!(
                        "needs its secrets again: {} on {}: {} (provision-tui install {} --on {} --set-env NAME=VAR)",
                        n.app,
                        n.server,
                        n.reason,
                        n.app,
                        n.server
                    );
                }
            }
            Ok(if needed.is_empty() {
                exit::OK
            } else {
                exit::ERROR
            })
        }
        SecretsCmd::RotateKey { json } => {
            let r = engine.rotate_secrets_key()?;
            if json {
                out::json_pretty(&r)?;
            } else {
                outln!(
                    "rotated {}: key {} -> {}, {} secret blob(s) re-sealed, {} left as they were (another key)",
                    r.key_file,
                    r.old_key_id,
                    r.new_key_id,
                    r.resealed,
                    r.left
                );
            }
            Ok(exit::OK)
        }
    }
}

pub fn audit(engine: &Engine, cmd: AuditCmd) -> Result<i32> {
    match cmd {
        AuditCmd::Verify { head, json } => {
            let v = engine.verify_audit(head.as_deref())?;
            if json {
                out::json_pretty(&v)?;
            } else if let Some(p) = &v.problem {
                outln!("broken: {}", p.message);
            } else {
                outln!(
                    "intact, {} rows, head {}",
                    v.rows,
                    v.head.as_deref().unwrap_or("-")
                );
            }
            Ok(if v.intact() { exit::OK } else { exit::ERROR })
        }
        AuditCmd::Export => {
            for r in engine.audit_rows()? {
                out::json(&r)?;
            }
            Ok(exit::OK)
        }
    }
}
