//! `App::update`: an Action in, a state change and maybe engine commands out.

use super::app::{App, Cmd, Modal, Page, Prompt, Screen};
use super::form::{Form, FormKind, server_spec};
use super::keymap::{Action, Ctx};

use ptui_engine::InstallRequest;
use ptui_types::job::JobAction;
use ptui_types::server::ServerStatus;

use crossterm::event::{Event as TermEvent, KeyEvent};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

/// Statuses that take a server out of service or wipe it: they ask first.
pub(super) fn destructive(s: ServerStatus) -> bool {
    matches!(
        s,
        ServerStatus::Maintenance | ServerStatus::ForceRebuild | ServerStatus::Decommissioned
    )
}

/// The picker's order: the lifecycle a server goes through, the destructive ones last.
pub(super) const LIFECYCLE: [ServerStatus; 10] = [
    ServerStatus::Discovered,
    ServerStatus::PendingSetup,
    ServerStatus::Provisioning,
    ServerStatus::Ready,
    ServerStatus::InUse,
    ServerStatus::Reserved,
    ServerStatus::Maintenance,
    ServerStatus::Error,
    ServerStatus::ForceRebuild,
    ServerStatus::Decommissioned,
];

pub(super) fn step(sel: &mut usize, len: usize, delta: i64) {
    if len == 0 {
        *sel = 0;
        return;
    }
    *sel = (*sel as i64 + delta).clamp(0, len as i64 - 1) as usize;
}

/// Moves a list selection for the navigation actions; false if the action is not one.
pub(super) fn nav(sel: &mut usize, len: usize, a: Action, page: i64) -> bool {
    match a {
        Action::Down => step(sel, len, 1),
        Action::Up => step(sel, len, -1),
        Action::PageDown => step(sel, len, page),
        Action::PageUp => step(sel, len, -page),
        Action::Top => *sel = 0,
        Action::Bottom => *sel = len.saturating_sub(1),
        _ => return false,
    }
    true
}

pub(super) const PAGE: i64 = 10;

impl App {
    pub fn key(&mut self, ev: KeyEvent) {
        let ctx = self.ctx();
        let typing = match (&self.page, ctx) {
            (Some(Page::Form(f)), Ctx::Form) => f.focus_is_text(),
            _ => true,
        };
        if let Some(a) = super::keymap::lookup_in(ctx, &ev, typing) {
            self.flash = None;
            self.update(a);
        }
    }

    pub fn update(&mut self, a: Action) {
        self.dirty = true;
        let ctx = self.ctx();
        match ctx {
            Ctx::Help => self.help_key(a),
            Ctx::Palette => self.palette(a),
            Ctx::Confirm => self.confirm(a),
            Ctx::QuitJobs => self.quit_jobs(a),
            Ctx::HostKey if a == Action::Copy => super::bastion::copy_selected(self, ctx),
            Ctx::HostKey => self.hostkey(a),
            Ctx::HostKeyChanged => self.hostkey_changed(a),
            Ctx::Picker => self.picker(a),
            Ctx::Prompt => self.prompt_key(a),
            Ctx::SudoPassword => self.sudo_password_key(a),
            Ctx::Form | Ctx::Review => self.form_key(a),
            _ => {
                if let Some(why) = super::bastion::refusal(self, ctx, a) {
                    self.error(why);
                } else if a == Action::Copy {
                    super::bastion::copy_selected(self, ctx);
                } else if !self.global(a) {
                    self.screen_key(ctx, a);
                }
            }
        }
        self.next_pending_key();
    }

    fn help_key(&mut self, a: Action) {
        let Some(Modal::Help { scroll }) = &mut self.modal else {
            return;
        };
        // Clamped to the last page the view showed, so overshooting costs nothing.
        if let Some(max) = self.help_max_scroll.get() {
            *scroll = (*scroll).min(max);
        }
        match a {
            Action::Down => *scroll = scroll.saturating_add(1),
            Action::Up => *scroll = scroll.saturating_sub(1),
            Action::PageDown => *scroll = scroll.saturating_add(PAGE as usize),
            Action::PageUp => *scroll = scroll.saturating_sub(PAGE as usize),
            _ => self.modal = None,
        }
    }

    /// App-wide keys on screens; true if handled.
    pub(super) fn global(&mut self, a: Action) -> bool {
        match a {
            Action::Quit => self.ask_quit(),
            Action::Help => self.open_help(),
            Action::Palette => self.open_palette(),
            Action::Screen(n) => self.goto(n),
            Action::NextScreen | Action::PrevScreen => {
                let i = Screen::ALL
                    .iter()
                    .position(|s| *s == self.screen)
                    .unwrap_or(0);
                let n = if a == Action::NextScreen {
                    i + 1
                } else {
                    i + 4
                } % 5;
                self.goto(n as u8 + 1);
            }
            Action::Mouse => {
                self.mouse = !self.mouse;
                self.cmds.push(Cmd::Mouse(self.mouse));
                self.info(if self.mouse {
                    "mouse on"
                } else {
                    "mouse off (terminal selection works)"
                });
            }
            Action::Reload => {
                self.reload();
                self.info("reloaded");
            }
            _ => return false,
        }
        true
    }

    pub fn goto(&mut self, n: u8) {
        self.page = None;
        self.prompt = None;
        self.screen = match n {
            2 => Screen::Catalog,
            3 => Screen::Jobs,
            4 => Screen::Incidents,
            5 => Screen::Audit,
            _ => Screen::Fleet,
        };
        if self.screen == Screen::Audit {
            self.reload_audit();
        }
        if self.screen == Screen::Jobs {
            self.open_selected_log();
        }
    }

    pub fn ask_quit(&mut self) {
        let running = self
            .eng
            .as_ref()
            .map(|e| e.running_here().len())
            .unwrap_or(0);
        if running == 0 {
            self.quit = true;
        } else {
            self.modal = Some(Modal::QuitJobs { running });
        }
    }

    fn screen_key(&mut self, ctx: Ctx, a: Action) {
        match ctx {
            Ctx::Fleet => self.fleet_key(a),
            Ctx::Detail => self.detail_key(a),
            Ctx::Catalog => self.catalog_key(a),
            Ctx::Jobs => self.jobs_key(a),
            Ctx::Log => self.log_key(a),
            Ctx::Incidents => {
                let len = self.incidents.shown().len();
                if nav(&mut self.incidents.sel, len, a, PAGE) {
                    return;
                }
                match a {
                    Action::Filter => self.open_prompt(
                        "filter incidents (server:X kind:X state:X, open)",
                        self.incidents.filter.clone(),
                    ),
                    Action::Back => {
                        self.incidents.filter.clear();
                        self.incidents.sel = 0;
                    }
                    _ => self.incidents_key(a),
                }
            }
            Ctx::IncidentDetail => self.incident_detail_key(a),
            Ctx::Fanout => self.fanout_key(a),
            Ctx::Audit => {
                let len = self.audit.items.len();
                if nav(&mut self.audit.sel, len, a, PAGE) {
                    return;
                }
                match a {
                    Action::Filter => self.open_prompt("filter audit", self.audit.filter.clone()),
                    // The empty state promises this.
                    Action::Back if !self.audit.filter.is_empty() => {
                        self.audit.filter.clear();
                        self.audit.sel = 0;
                        self.reload_audit();
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    pub(super) fn open_prompt(&mut self, label: &'static str, value: String) {
        self.prompt = Some(Prompt {
            input: Input::new(value),
            label,
            then: super::overlays::PromptFor::Filter,
        });
    }

    fn catalog_key(&mut self, a: Action) {
        let len = self.catalog.shown().len();
        if nav(&mut self.catalog.sel, len, a, PAGE) {
            return;
        }
        match a {
            Action::Filter => self.open_prompt("filter installers", self.catalog.filter.clone()),
            Action::Uninstall | Action::Upgrade => {
                let Some(id) = self
                    .catalog
                    .shown()
                    .get(self.catalog.sel)
                    .map(|m| m.id.clone())
                else {
                    return;
                };
                let action = if a == Action::Uninstall {
                    JobAction::Uninstall
                } else {
                    JobAction::Upgrade
                };
                let targets = self.fleet.targets();
                self.open_action(action, &id, targets);
            }
            Action::Enter => {
                let Some(id) = self
                    .catalog
                    .shown()
                    .get(self.catalog.sel)
                    .map(|m| m.id.clone())
                else {
                    return;
                };
                let targets = self.fleet.targets();
                self.open_install(&id, targets);
            }
            Action::Back => {
                self.catalog.filter.clear();
            }
            _ => {}
        }
    }

    pub fn open_install(&mut self, app: &str, servers: Vec<String>) {
        let Some(m) = self.catalog.items.iter().find(|m| m.id == app).cloned() else {
            self.error(format!("no installer {app:?} in the catalog"));
            return;
        };
        if servers.is_empty() {
            self.error(
                "no target server: select or mark servers on Fleet (1), or use :install APP SERVER",
            );
            return;
        }
        if let Some(bad) = servers
            .iter()
            .find(|s| !self.fleet.servers.iter().any(|x| &x.name == *s))
        {
            self.error(format!("no server named {bad:?}"));
            return;
        }
        if self.refuse_held(&servers) {
            return;
        }
        let title = format!("Install {} {} on {}", m.name, m.version, servers.join(", "));
        self.page = Some(Page::Form(Box::new(Form::new(
            FormKind::Install {
                app: app.to_string(),
                servers,
            },
            title,
            m,
        ))));
        self.ask_prefill();
        self.ask_pubkeys();
    }

    fn form_key(&mut self, a: Action) {
        let Some(Page::Form(f)) = &mut self.page else {
            return;
        };
        if f.review {
            match a {
                Action::Yes => {
                    if let FormKind::Install { app, servers } = &f.kind {
                        self.cmds.push(Cmd::Install(
                            InstallRequest {
                                app: app.clone(),
                                servers: servers.clone(),
                                inputs: f.values(),
                                action: f.action,
                            },
                            f.fan,
                        ));
                    }
                }
                Action::Back => f.review = false,
                Action::FanConcurrency | Action::FanBatch | Action::FanBudget => {
                    self.ask_fan_option(a)
                }
                _ => {}
            }
            return;
        }
        let was_review = f.review;
        self.form_edit_key(a);
        // Into the review (`submit` passed): its plan is computed now.
        if !was_review && matches!(&self.page, Some(Page::Form(f)) if f.review) {
            self.request_plan();
        }
    }

    fn form_edit_key(&mut self, a: Action) {
        let Some(Page::Form(f)) = &mut self.page else {
            return;
        };
        match a {
            Action::NextField => f.next(),
            Action::PrevField => f.prev(),
            Action::Reveal => f.reveal = !f.reveal,
            Action::NextKey => self.cycle_pubkey(),
            Action::Enter if !f.is_last() => f.next(),
            Action::Enter | Action::Submit
                if matches!(f.kind, FormKind::EditServer(_)) && f.submit() =>
            {
                let spec = server_spec(&f.values());
                f.review = false;
                if let FormKind::EditServer(name) = &f.kind {
                    self.cmds
                        .push(Cmd::EditServer(name.clone(), Box::new(spec)));
                }
            }
            Action::Enter | Action::Submit if f.submit() && f.kind == FormKind::AddServer => {
                let spec = server_spec(&f.values());
                f.review = false;
                self.cmds.push(Cmd::AddServer(Box::new(spec)));
            }
            Action::Back => self.leave_form(),
            Action::Toggle => f.toggle(),
            Action::Left => f.left_right(false),
            Action::Right => f.left_right(true),
            Action::Input(ev) => f.key(ev),
            _ => {}
        }
    }

    fn prompt_key(&mut self, a: Action) {
        let Some(p) = &mut self.prompt else { return };
        if p.then != super::overlays::PromptFor::Filter {
            return self.action_prompt_key(a);
        }
        match a {
            Action::Input(ev) => {
                p.input.handle_event(&TermEvent::Key(ev));
                let v = p.input.value().to_string();
                self.apply_filter(&v, false);
            }
            Action::Submit => {
                let v = p.input.value().to_string();
                self.prompt = None;
                self.apply_filter(&v, true);
            }
            Action::Back => {
                self.prompt = None;
                self.apply_filter("", true);
            }
            _ => {}
        }
    }

    /// Filters apply live as you type; the log search jumps on Enter.
    fn apply_filter(&mut self, v: &str, done: bool) {
        match (self.screen, self.jobs.focus_log) {
            (Screen::Jobs, true) => {
                if !done {
                    return;
                }
                let log = &mut self.jobs.log;
                log.search = (!v.is_empty()).then(|| v.to_string());
                log.hit = None;
                if self.eng.is_some() && log.search.is_some() {
                    log.find(true, format!("{v:?} not found"));
                }
            }
            (Screen::Jobs, false) => {
                let keep = self.jobs.selected().map(|j| j.id);
                self.jobs.filter = v.to_string();
                self.select_job(keep);
            }
            (Screen::Fleet, _) => {
                self.fleet.filter = v.to_string();
                self.fleet.reorder();
            }
            (Screen::Catalog, _) => {
                self.catalog.filter = v.to_string();
                self.catalog.sel = 0;
            }
            (Screen::Audit, _) => {
                self.audit.filter = v.to_string();
                self.audit.sel = 0;
                self.reload_audit();
            }
            (Screen::Incidents, _) => {
                self.incidents.filter = v.to_string();
                self.incidents.sel = 0;
            }
        }
    }
}
