//! Writing an inventory import: the parsers (`inventory`) read sources into entries; this
//! applies them. Imports are idempotent: a server found again is updated (tags merged),
//! nothing is deleted, and every entry is reported.

use crate::engine::{Engine, Event};
use crate::inventory::{self, ImportEntry, ImportReport, Outcome, ParseError, ReportRow};
use color_eyre::eyre::Result;
use ptui_types::records::SudoSettings;
use ptui_types::server::ServerStatus;
use std::path::Path;

impl Engine {
    /// Writes the entries (jump hosts first), one audit row for the whole import.
    /// New servers get `status`; existing ones keep theirs.
    pub fn import_entries(
        &self,
        source: &str,
        entries: Vec<ImportEntry>,
        status: ServerStatus,
        mut report: ImportReport,
    ) -> Result<ImportReport> {
        self.permit(crate::access::Change::Import, source)?;
        report.source = source.to_string();
        let mut pending = inventory::screen(entries, &mut report);
        // Jump hosts before the servers behind them: repeat passes until nothing moves.
        loop {
            let before = pending.len();
            let mut rest = Vec::new();
            for e in pending {
                let jump_ready = match &e.spec.jump {
                    None => true,
                    Some(j) => self.store().server_by_name(j)?.is_some(),
                };
                if !jump_ready {
                    rest.push(e);
                    continue;
                }
                let outcome = self.import_one(&e, status)?;
                report.rows.push(ReportRow {
                    name: e.spec.name.clone(),
                    origin: e.origin.clone(),
                    outcome,
                });
            }
            pending = rest;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        for e in pending {
            let why = format!(
                "jump host {} is neither registered nor importable",
                e.spec.jump.as_deref().unwrap_or("?")
            );
            report.skip(&e.spec.name, &e.origin, why);
        }
        self.audit("inventory.import", source, &report.summary())?;
        Ok(report)
    }

    /// Imports the hosts of an OpenSSH client config as `pending_setup` servers (idempotent).
    pub fn import_ssh_config(&self, path: &Path) -> Result<ImportReport> {
        let (label, entries, report) =
            inventory::ssh_config::plan(path).map_err(|e| color_eyre::eyre::eyre!("{e}"))?;
        self.import_entries(&label, entries, ServerStatus::PendingSetup, report)
    }

    /// Audits a source that could not be read.
    pub fn record_import_failure(&self, e: &ParseError) -> Result<()> {
        // Its audit row is about an import this process may not make.
        if !self.access().may(crate::access::Change::Import) {
            return Ok(());
        }
        self.audit(
            "inventory.import_failed",
            &e.file.display().to_string(),
            &e.to_string(),
        )
    }

    fn import_one(&self, e: &ImportEntry, status: ServerStatus) -> Result<Outcome> {
        let store = self.store();
        let (server, mut outcome) = match store.server_by_name(&e.spec.name)? {
            None => (store.add_server(&e.spec, status)?, Outcome::Added),
            Some(old) => {
                let (merged, changed) = inventory::diff(&old, &e.spec);
                if changed.is_empty() {
                    (old, Outcome::Unchanged)
                } else {
                    (
                        store.update_server_spec(old.id, &merged)?,
                        Outcome::Changed(changed),
                    )
                }
            }
        };
        if let Some(b) = e.escalate {
            let old = store.server_sudo(server.id)?;
            if old.escalate != Some(b) {
                store.set_server_sudo(
                    server.id,
                    &SudoSettings {
                        escalate: Some(b),
                        ..old
                    },
                )?;
                outcome = match outcome {
                    Outcome::Unchanged => Outcome::Changed(vec![format!("escalate {b}")]),
                    Outcome::Changed(mut v) => {
                        v.push(format!("escalate {b}"));
                        Outcome::Changed(v)
                    }
                    o => o,
                };
            }
        }
        if outcome != Outcome::Unchanged {
            self.emit(Event::ServerChanged { server });
        }
        Ok(outcome)
    }
}
