//! Jobs and forms: re-running a job, forms prefilled from the recorded deployment, Esc on a
//! filled form, maintenance refused at the form's start, a job's log exported to a file.

use super::app::{App, Cmd, Confirmed, Modal, Page};
use super::form::FormKind;
use ptui_engine::Engine;

impl App {
    /// `r` on Jobs: the same app, server and action in a form filled with the job's inputs;
    /// secrets (stored masked) are asked again.
    pub fn rerun_selected(&mut self) {
        let Some(j) = self.jobs.selected().cloned() else {
            return self.error("no job selected");
        };
        self.open_action(j.action, &j.app_id, vec![j.server_name.clone()]);
        if let Some(Page::Form(f)) = &mut self.page {
            f.prefill(&j.inputs);
            self.info(format!(
                "re-run of job #{}: inputs from the job; secrets are asked again",
                j.id
            ));
        }
    }

    /// Servers of an install that take no jobs now (maintenance, reserved, decommissioned),
    /// refused before the form opens, with the key that changes it.
    pub(super) fn refuse_held(&mut self, servers: &[String]) -> bool {
        let held: Vec<String> = servers
            .iter()
            .filter_map(|n| self.fleet.servers.iter().find(|s| &s.name == n))
            .filter(|s| !s.status.accepts_jobs())
            .map(|s| format!("{} is {}", s.name, s.status))
            .collect();
        if held.is_empty() {
            return false;
        }
        self.error(format!(
            "{}: no jobs start there; on Fleet, S sets another status",
            held.join(", ")
        ));
        true
    }

    /// After the install form opens for one server: ask for that server's deployment of the
    /// app, to prefill the form (off the loop).
    pub(super) fn ask_prefill(&mut self) {
        if self.eng.is_none() {
            return;
        }
        if let Some(Page::Form(f)) = &self.page
            && let FormKind::Install { app, servers } = &f.kind
            && let [server] = servers.as_slice()
        {
            self.cmds.push(Cmd::Prefill {
                server: server.clone(),
                app: app.clone(),
            });
        }
    }

    /// A form with a public-key field: the operator's keys are looked up (off the loop).
    pub(super) fn ask_pubkeys(&mut self) {
        if self.eng.is_some()
            && matches!(&self.page, Some(Page::Form(f)) if f.pubkey_field().is_some())
        {
            self.cmds.push(Cmd::PubKeys);
        }
    }

    /// The operator's public keys arrived: offered in the form, the first one filled in if
    /// the field is empty.
    pub fn on_pubkeys(&mut self, keys: Vec<(String, String)>) {
        let Some(Page::Form(f)) = &mut self.page else {
            return;
        };
        let Some(i) = f.pubkey_field() else { return };
        let n = keys.len();
        f.pubkeys = keys;
        f.pubkey_at = 0;
        if n == 0 {
            return;
        }
        if f.fields[i].value().is_empty()
            && let Some(label) = f.next_pubkey()
        {
            self.info(format!(
                "public key from {label}{}",
                if n > 1 {
                    format!("; Ctrl-o picks another ({n} found)")
                } else {
                    String::new()
                }
            ));
        }
    }

    /// Ctrl-o in a form: the next of the operator's public keys.
    pub(super) fn cycle_pubkey(&mut self) {
        let Some(Page::Form(f)) = &mut self.page else {
            return;
        };
        match f.next_pubkey() {
            Some(label) => self.info(format!("public key from {label}")),
            None => self.error("no public key found in ~/.ssh/*.pub or the SSH agent"),
        }
    }

    /// The deployment's inputs arrived: used unless the operator already typed.
    pub fn on_prefill(&mut self, server: &str, app: &str, inputs: Option<serde_json::Value>) {
        let Some(inputs) = inputs else { return };
        if let Some(Page::Form(f)) = &mut self.page
            && matches!(&f.kind, FormKind::Install { app: a, servers } if a == app && servers == &[server.to_string()])
            && !f.changed()
        {
            f.prefill(&inputs);
            self.info(format!(
                "filled from the deployment of {app} on {server}; secrets are asked again"
            ));
        }
    }

    /// Esc on a form: a filled one asks first.
    pub(super) fn leave_form(&mut self) {
        let changed = matches!(&self.page, Some(Page::Form(f)) if f.changed());
        if !changed {
            self.page = None;
            return;
        }
        self.modal = Some(Modal::Confirm {
            title: "Discard the form?".into(),
            text: "What you typed is lost. y discards it, n goes back to the form.".into(),
            then: Box::new(Confirmed::DiscardForm),
        });
    }

    /// Bracketed paste: into the focused form field whole (multi-line values such as a PEM),
    /// into a prompt or the palette as one line.
    pub fn paste(&mut self, text: &str) {
        self.dirty = true;
        if let Some(Modal::SudoPassword(ask)) = &mut self.modal {
            return ask.form.paste(text.trim_end_matches(['\r', '\n']));
        }
        if self.modal.is_none()
            && self.prompt.is_none()
            && let Some(Page::Form(f)) = &mut self.page
            && !f.review
        {
            return f.paste(text);
        }
        let line: String = text.lines().collect::<Vec<_>>().join(" ");
        if let Some(p) = &mut self.prompt {
            for c in line.chars() {
                p.input.handle(tui_input::InputRequest::InsertChar(c));
            }
        } else if let Some(Modal::Palette(p)) = &mut self.modal {
            for c in line.chars() {
                p.input.handle(tui_input::InputRequest::InsertChar(c));
            }
        }
    }

    /// `x` on a job's log: every stored line written to a file (off the loop).
    pub fn export_selected_log(&mut self) {
        let Some(j) = self.jobs.selected() else {
            return self.error("no job selected");
        };
        self.cmds.push(Cmd::ExportLog(j.id));
    }
}

/// The operator's public keys: `~/.ssh/*.pub` (first line each), then the agent's
/// (`ssh-add -L`, when an agent is running). Labels say where each came from.
pub fn operator_pubkeys() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = ptui_types::config::home_dir().join(".ssh");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pub"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for p in files {
        // A public key is one short line; anything big is not one.
        if std::fs::metadata(&p).is_ok_and(|m| m.len() <= 16_384)
            && let Ok(text) = std::fs::read_to_string(&p)
            && let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty())
        {
            out.push((
                format!(
                    "~/.ssh/{}",
                    p.file_name()
                        .map(|f| f.to_string_lossy())
                        .unwrap_or_default()
                ),
                line.to_string(),
            ));
        }
    }
    if std::env::var_os("SSH_AUTH_SOCK").is_some()
        && let Ok(o) = std::process::Command::new("ssh-add")
            .arg("-L")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
        && o.status.success()
    {
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let line = line.trim();
            if !line.is_empty() && !out.iter().any(|(_, k)| k == line) {
                out.push(("the SSH agent".into(), line.to_string()));
            }
        }
    }
    out
}

/// The deployment's recorded inputs of `app` on `server`, if it has one.
pub fn deployment_inputs(eng: &Engine, server: &str, app: &str) -> Option<serde_json::Value> {
    eng.server_detail(server, 1)
        .ok()?
        .deployments
        .into_iter()
        .find(|d| d.app_id == app)
        .map(|d| d.inputs)
}

/// Writes a job's whole stored log to `provision-tui-job-ID.log` in the data directory
/// beside the database (private, 0600): `[ts] stream text` per line. Returns the path.
pub fn export_log(eng: &Engine, job: i64) -> Result<String, String> {
    let dir = eng
        .config()
        .db_path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let path = dir.join(format!("provision-tui-job-{job}.log"));
    let mut out = String::new();
    let mut from = 0;
    loop {
        let lines = eng
            .job_logs(job, from, 5_000)
            .map_err(|e| format!("{e:#}"))?;
        let Some(last) = lines.last().map(|l| l.seq) else {
            break;
        };
        for l in &lines {
            let ts = chrono::DateTime::from_timestamp_millis(l.ts)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
                .unwrap_or_default();
            out.push_str(&format!("[{ts}] {} {}\n", l.stream.as_str(), l.text));
        }
        from = last + 1;
    }
    // 0600 first: a log may hold what its installer printed about the server.
    ptui_types::private_files::ensure_file(&path)
        .and_then(|_| std::fs::write(&path, out.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.display().to_string())
}
