//! `App::update` for dialogs, the command palette, and the results of engine commands.

use super::app::{App, Cmd, Confirmed, Modal, Page, Screen, SudoAsk};
use super::form::sudo_password_form;
use super::keymap::Action;
use super::overlays::OnQuit;
use super::palette::{self, Command, Palette};
use super::update::{PAGE, destructive, nav, step};
use crossterm::event::Event as TermEvent;
use ptui_engine::HostKeyScan;
use ptui_engine::InstallRequest;
use ptui_types::hostkey::HostKeyVerdict;
use ptui_types::server::ServerStatus;
use std::collections::VecDeque;
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

impl App {
    pub(super) fn confirm(&mut self, a: Action) {
        match a {
            Action::Yes => {
                if let Some(Modal::Confirm { then, .. }) = self.modal.take() {
                    match *then {
                        Confirmed::Cmd(c) => self.cmds.push(c),
                        Confirmed::DiscardForm => self.page = None,
                    }
                }
            }
            Action::No => self.modal = None,
            _ => {}
        }
    }

    pub(super) fn quit_jobs(&mut self, a: Action) {
        let on_quit = match a {
            Action::Yes => OnQuit::LeaveRunning,
            Action::Cancel => OnQuit::Cancel,
            Action::No => {
                self.modal = None;
                return;
            }
            _ => return,
        };
        self.modal = None;
        self.on_quit = on_quit;
        self.quit = true;
    }

    pub(super) fn hostkey(&mut self, a: Action) {
        match a {
            Action::Yes => {
                if let Some(Modal::HostKey(scan)) = self.modal.take() {
                    self.cmds.push(Cmd::Trust(scan, false));
                }
            }
            Action::No => {
                self.modal = None;
                self.info("host key rejected; nothing recorded");
            }
            _ => {}
        }
    }

    /// The changed-key alert: replacing the recorded key takes a second, explicit yes.
    pub(super) fn hostkey_changed(&mut self, a: Action) {
        match a {
            Action::Yes => {
                if let Some(Modal::HostKeyChanged(scan)) = self.modal.take() {
                    let note = ptui_types::hostkey::user_file_note(&scan.verdict)
                        .map(|n| format!(" Note: {n}."))
                        .unwrap_or_default();
                    self.modal = Some(Modal::Confirm {
                        title: format!("Replace the host key of {}?", scan.server),
                        text: format!(
                            "Only if you checked {} on the server itself: the old key is dropped \
                             from provision-tui's known_hosts and this one trusted.{note}",
                            scan.fingerprint
                        ),
                        then: Box::new(Confirmed::Cmd(Cmd::Trust(scan, true))),
                    });
                }
            }
            Action::No => self.modal = None,
            _ => {}
        }
    }

    pub(super) fn picker(&mut self, a: Action) {
        let Some(Modal::Picker {
            targets,
            items,
            sel,
        }) = &mut self.modal
        else {
            return;
        };
        let len = items.len();
        if nav(sel, len, a, PAGE) {
            return;
        }
        match a {
            Action::Yes => {
                let to = items[*sel];
                let targets = std::mem::take(targets);
                if destructive(to) {
                    self.modal = Some(Modal::Confirm {
                        title: format!("Set {to}?"),
                        text: format!(
                            "Set {} to {to}? {}",
                            targets.join(", "),
                            match to {
                                ServerStatus::Decommissioned =>
                                    "Nothing will run on it until an operator brings it back.",
                                ServerStatus::ForceRebuild =>
                                    "Its next install rebuilds it from scratch.",
                                _ => "No jobs start on it while on hold.",
                            }
                        ),
                        then: Box::new(Confirmed::Cmd(Cmd::SetStatus(targets, to))),
                    });
                } else {
                    self.modal = None;
                    self.cmds.push(Cmd::SetStatus(targets, to));
                }
            }
            Action::No => self.modal = None,
            _ => {}
        }
    }

    pub(super) fn open_palette(&mut self) {
        let p = Palette {
            suggestions: palette::suggest("", &self.words()),
            ..Default::default()
        };
        self.modal = Some(Modal::Palette(p));
    }

    pub(super) fn words(&self) -> palette::Words<'_> {
        palette::Words {
            apps: self.catalog.items.iter().map(|m| m.id.as_str()).collect(),
            servers: self.fleet.servers.iter().map(|s| s.name.as_str()).collect(),
        }
    }

    pub(super) fn palette(&mut self, a: Action) {
        let Some(Modal::Palette(mut p)) = self.modal.take() else {
            return;
        };
        match a {
            Action::Back => return,
            Action::Input(ev) => {
                p.input.handle_event(&TermEvent::Key(ev));
                p.sel = 0;
            }
            Action::Down => step(&mut p.sel, p.suggestions.len(), 1),
            Action::Up => step(&mut p.sel, p.suggestions.len(), -1),
            Action::Complete => {
                if let Some(c) = p.suggestions.get(p.sel) {
                    p.input = Input::new(palette::complete(p.input.value(), c));
                    p.sel = 0;
                }
            }
            Action::Submit => {
                let line = p.input.value().to_string();
                match palette::parse(&line) {
                    Ok(c) => return self.run_command(c),
                    Err(e) => self.error(e),
                }
            }
            _ => {}
        }
        p.suggestions = palette::suggest(p.input.value(), &self.words());
        self.modal = Some(Modal::Palette(p));
    }

    pub(super) fn run_command(&mut self, c: Command) {
        match c {
            Command::Screen(n) => self.goto(n),
            Command::Install { app, servers } => {
                let servers = if servers.is_empty() {
                    self.fleet.targets()
                } else {
                    servers
                };
                self.open_install(&app, servers);
            }
            Command::ServerAdd => self.open_server_form(),
            Command::ServerEdit(name) => {
                match self
                    .fleet
                    .order
                    .iter()
                    .position(|i| self.fleet.servers[*i].name == name)
                {
                    Some(pos) => {
                        self.fleet.sel = pos;
                        self.page = None;
                        self.open_edit_server();
                    }
                    None => self.error(format!("no server named {name:?}")),
                }
            }
            Command::Import => self.offer_ssh_config_import(false),
            Command::Trust(name) => {
                self.info(format!("connecting to {name} to read its host key…"));
                self.cmds.push(Cmd::Scan(name));
            }
            Command::Cancel(id) => {
                if let Some(pos) = self.jobs.shown().iter().position(|j| j.id == id) {
                    self.jobs.sel = pos;
                    self.ask_cancel();
                } else {
                    self.error(format!("no job #{id} in the list"));
                }
            }
            Command::Theme(name) => {
                let (t, err) = super::theme::load(Some(&name));
                self.theme = t;
                match err {
                    Some(e) => self.error(e.to_string()),
                    None => {
                        self.info(format!("theme {name}"));
                        self.cmds.push(Cmd::SaveTheme(name));
                    }
                }
            }
            Command::Mouse => {
                self.global(Action::Mouse);
            }
            Command::Help => self.open_help(),
            Command::Fanout => self.open_fanout(),
            Command::Quit => self.ask_quit(),
            c @ (Command::Action { .. }
            | Command::MaintenanceOn { .. }
            | Command::MaintenanceOff { .. }
            | Command::MaintenanceList
            | Command::Rollback { .. }
            | Command::Policy { .. }) => self.run_op(c),
        }
    }

    // ---- results of engine commands ----

    pub fn on_scanned(&mut self, r: Result<HostKeyScan, String>) {
        self.dirty = true;
        match r {
            Ok(scan) => match &scan.verdict {
                HostKeyVerdict::Trusted => self.info(format!(
                    "{}: host key already trusted ({})",
                    scan.server, scan.fingerprint
                )),
                // Never over another dialog (it could be taking keys), unless it shows the
                // same server's key.
                _ if self.modal.is_some() && !self.shows_key_of(&scan.server) => {
                    let server = scan.server.clone();
                    self.pending_keys.retain(|p| p.server != server);
                    self.pending_keys.push_back(scan);
                    self.error(format!(
                        "host key of {server} needs you: it opens when this dialog closes"
                    ));
                }
                _ => self.show_scan(scan),
            },
            Err(e) => self.error(e),
        }
    }

    fn shows_key_of(&self, server: &str) -> bool {
        matches!(&self.modal, Some(Modal::HostKey(s) | Modal::HostKeyChanged(s)) if s.server == server)
    }

    fn show_scan(&mut self, scan: HostKeyScan) {
        self.modal = Some(match scan.verdict {
            HostKeyVerdict::Changed { .. } => Modal::HostKeyChanged(Box::new(scan)),
            _ => Modal::HostKey(Box::new(scan)),
        });
    }

    /// Opens the next waiting host-key dialog once no dialog is open.
    pub(super) fn next_pending_key(&mut self) {
        if self.modal.is_none()
            && let Some(scan) = self.pending_keys.pop_front()
        {
            self.show_scan(scan);
        }
    }

    /// Jobs started: jump to the live log of the first one.
    pub fn on_started(&mut self, jobs: Vec<ptui_types::job::Job>) {
        self.page = None;
        self.fleet.marks.clear();
        self.screen = Screen::Jobs;
        self.jobs.filter.clear();
        let first = jobs.first().map(|j| j.id);
        for j in jobs.into_iter().rev() {
            if !self.jobs.jobs.iter().any(|x| x.id == j.id) {
                self.jobs.jobs.insert(0, j);
            }
        }
        self.jobs.jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
        self.select_job(first);
        self.jobs.focus_log = true;
        self.jobs.log.follow = true;
        self.reload_summary();
    }

    /// Several servers: a fan-out (min(50, hosts) at a time). Its jobs arrive as events.
    pub fn on_fanout_started(&mut self, h: &ptui_engine::jobs::fanout::FanoutHandle, app: &str) {
        self.on_started(Vec::new());
        self.follow_fanout = Some(h.id);
        self.track_fanout(h.id, app, &h.hosts);
        let mut msg = format!(
            "{app} on {} servers, {} at a time",
            h.hosts.len(),
            h.concurrency
        );
        if !h.excluded.is_empty() {
            let names: Vec<&str> = h.excluded.iter().map(|(n, _)| n.as_str()).collect();
            msg.push_str(&format!("; left out (on hold): {}", names.join(", ")));
        }
        self.info(msg);
    }

    pub fn on_fanout(&mut self, ev: ptui_engine::jobs::fanout::FanoutEvent, was_dirty: bool) {
        use ptui_engine::jobs::fanout::FanoutEvent as F;
        match ev {
            F::JobLaunched {
                fanout_id, job_id, ..
            } if self.follow_fanout == Some(fanout_id) => {
                self.follow_fanout = None;
                if self.screen == Screen::Jobs {
                    self.select_job(Some(job_id));
                    self.jobs.focus_log = true;
                    self.jobs.log.follow = true;
                }
            }
            F::Skipped {
                servers, reason, ..
            } => self.error(format!("skipped {}: {reason}", servers.join(", "))),
            F::Finished { summary, .. } => {
                let msg = format!(
                    "fan-out done: {} succeeded, {} failed, {} skipped",
                    summary.succeeded.len(),
                    summary.failed.len(),
                    summary.skipped.len()
                );
                // The failed jobs' incidents may have opened first: keep both in view.
                let incident = self
                    .flash
                    .as_ref()
                    .filter(|(m, _)| m.starts_with("incident: "))
                    .map(|(m, _)| format!(" · {m}"))
                    .unwrap_or_default();
                if summary.failed.is_empty() && summary.skipped.is_empty() {
                    self.info(format!("{msg}{incident}"));
                } else {
                    self.error(format!(
                        "{msg} (failed: {}){incident}",
                        summary.failed.join(", ")
                    ));
                }
            }
            _ => self.dirty = was_dirty,
        }
    }

    /// The install waits for the sudo passwords of these `--prompt` servers, as
    /// (server, `user@server`): one masked dialog each, over the review.
    pub fn ask_sudo_passwords(
        &mut self,
        install: InstallRequest,
        fan: super::work::FanOpts,
        needing: Vec<(String, String)>,
    ) {
        let mut rest: VecDeque<(String, String)> = needing.into();
        let Some((server, login)) = rest.pop_front() else {
            self.cmds.push(Cmd::Install(install, fan));
            return;
        };
        self.modal = Some(Modal::SudoPassword(Box::new(SudoAsk {
            form: sudo_password_form(&server, &login),
            rest,
            install,
            fan,
        })));
    }

    pub(super) fn sudo_password_key(&mut self, a: Action) {
        let Some(Modal::SudoPassword(ask)) = &mut self.modal else {
            return;
        };
        match a {
            Action::Input(ev) => ask.form.key(ev),
            Action::Reveal => ask.form.reveal = !ask.form.reveal,
            // Back to the review: nothing starts, the passwords given so far stay known.
            Action::Back => self.modal = None,
            Action::Submit if ask.form.submit() => {
                let Some(Modal::SudoPassword(ask)) = self.modal.take() else {
                    return;
                };
                let SudoAsk {
                    form,
                    rest,
                    install,
                    fan,
                } = *ask;
                if let super::form::FormKind::SudoPassword { server } = &form.kind {
                    let password = form.values().remove("password").unwrap_or_default();
                    self.cmds.push(Cmd::SudoPassword {
                        server: server.clone(),
                        password: ptui_types::secret::Secret::new(password),
                    });
                }
                // The install goes through the same check again, so a password the engine
                // refused is asked for once more.
                self.ask_sudo_passwords(install, fan, rest.into());
            }
            _ => {}
        }
    }

    pub fn on_install_refused(&mut self, msg: String) {
        if let Some(Page::Form(f)) = &mut self.page {
            f.review = false;
            f.message = Some(msg.clone());
        }
        self.error(msg);
    }
}
