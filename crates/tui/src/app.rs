//! Dashboard state. `update` (in update.rs) takes an Action and changes this state, queueing
//! engine commands in `cmds`; the event loop runs them and feeds results back.

pub use super::fleet::{FLEET_SORTS, FleetState, Health, LastCheck};
use super::keymap::Ctx;
pub use super::lists::{CatalogState, JobsState, ListState};
use super::logview::LogView;
pub use super::overlays::{Confirmed, Detail, Modal, Page, Prompt, SudoAsk};
use super::theme::Theme;
use ptui_engine::{Engine, Event, HostKeyScan};
use ptui_types::job::Job;
use ptui_types::records::{AuditEntry, IncidentRow};
use std::collections::{HashMap, VecDeque};

/// How many recent jobs and audit rows the lists hold.
pub const JOB_LIMIT: usize = 500;
pub const AUDIT_LIMIT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Fleet,
    Catalog,
    Jobs,
    Incidents,
    Audit,
}

impl Screen {
    pub const ALL: [Screen; 5] = [
        Screen::Fleet,
        Screen::Catalog,
        Screen::Jobs,
        Screen::Incidents,
        Screen::Audit,
    ];
    pub fn title(self) -> &'static str {
        match self {
            Screen::Fleet => "Fleet",
            Screen::Catalog => "Catalog",
            Screen::Jobs => "Jobs",
            Screen::Incidents => "Incidents",
            Screen::Audit => "Audit",
        }
    }
}

pub use super::work::Cmd;
use super::work::{Reload, Reloads};
pub use ptui_types::records::Summary;

pub struct App {
    pub(crate) eng: Option<Engine>,
    pub(crate) theme: Theme,
    pub screen: Screen,
    pub(crate) page: Option<Page>,
    pub modal: Option<Modal>,
    pub(crate) prompt: Option<Prompt>,
    pub fleet: FleetState,
    pub catalog: CatalogState,
    pub jobs: JobsState,
    pub incidents: ListState<IncidentRow>,
    pub audit: ListState<AuditEntry>,
    /// The audit chain's last verification (None until the first audit read).
    pub audit_chain: Option<super::lists::AuditChain>,
    pub summary: Summary,
    pub db_path: String,
    pub now_ms: i64,
    /// A message in the footer until the next key; `true` means an error.
    pub flash: Option<(String, bool)>,
    /// Ring the terminal bell at the next render (an incident opened; `PROVISION_TUI_BELL=0` mutes).
    pub(crate) bell: bool,
    pub(crate) mouse: bool,
    /// A fan-out the operator just started: its first job's log is opened when it launches.
    pub(crate) follow_fanout: Option<u64>,
    /// Show times in UTC instead of local time (snapshots use it).
    pub utc: bool,
    /// When a failed job last made us read a server's host key (by server name).
    pub(crate) rescanned: HashMap<String, i64>,
    /// Host-key results that arrived while another dialog was open; shown when it closes.
    pub(crate) pending_keys: VecDeque<HostKeyScan>,
    pub(crate) quit: bool,
    /// What quitting does with the jobs this process follows.
    pub(crate) on_quit: crate::overlays::OnQuit,
    pub(crate) dirty: bool,
    pub cmds: Vec<Cmd>,
    /// The help's last scroll position as last drawn (None until drawn).
    pub(crate) help_max_scroll: std::cell::Cell<Option<usize>>,
    /// Reloads running off the loop (coalesced per kind).
    pub(crate) reloads: Reloads,
    /// The servers were read once (the first read may offer the ssh config import).
    pub(crate) loaded_servers: bool,
    /// Text `y` copied, written as OSC 52 after the next frame (bastion.rs).
    pub(crate) copy: Option<String>,
    /// Servers with a check-now in flight.
    pub checking: std::collections::BTreeSet<String>,
    /// The last fan-out started here, for its progress view.
    pub fanout: Option<crate::fanview::FanoutView>,
    /// A shell to run with the dashboard suspended (the loop takes it).
    pub shell: Option<Vec<String>>,
    /// Fan-out events that came before their fan-out was tracked (replayed then).
    pub(crate) fanout_early: Vec<ptui_engine::jobs::fanout::FanoutEvent>,
}

impl App {
    /// An empty dashboard (tests fill it directly).
    pub fn new(theme: Theme) -> Self {
        App {
            eng: None,
            theme,
            screen: Screen::Fleet,
            page: None,
            modal: None,
            prompt: None,
            fleet: FleetState::default(),
            catalog: CatalogState::default(),
            jobs: JobsState {
                log: LogView::new(),
                ..Default::default()
            },
            incidents: ListState::default(),
            audit: ListState::default(),
            audit_chain: None,
            summary: Summary::default(),
            db_path: String::new(),
            now_ms: 0,
            flash: None,
            bell: false,
            mouse: false,
            follow_fanout: None,
            utc: false,
            rescanned: HashMap::new(),
            pending_keys: VecDeque::new(),
            quit: false,
            on_quit: Default::default(),
            dirty: true,
            cmds: Vec::new(),
            help_max_scroll: Default::default(),
            reloads: Reloads::default(),
            loaded_servers: false,
            copy: None,
            checking: Default::default(),
            fanout: None,
            fanout_early: Vec::new(),
            shell: None,
        }
    }

    pub fn with_engine(theme: Theme, eng: Engine) -> Self {
        let mut app = App::new(theme);
        app.db_path = super::views::tilde(
            &eng.database_location(),
            &ptui_types::config::home_dir().display().to_string(),
        );
        app.eng = Some(eng);
        // The first read runs here, before the loop and its first frame.
        app.reload();
        app.settle();
        app
    }

    /// Asks before importing ~/.ssh/config. On first start only when the file exists.
    pub fn offer_ssh_config_import(&mut self, first_start: bool) {
        let path = ptui_types::config::home_dir().join(".ssh/config");
        if !path.exists() {
            if !first_start {
                self.error(format!("{} does not exist", path.display()));
            }
            return;
        }
        let text = if first_start {
            format!(
                "The fleet is empty. Import the hosts of {} as pending_setup servers?",
                path.display()
            )
        } else {
            format!(
                "Import the hosts of {}? Existing servers are updated, never removed.",
                path.display()
            )
        };
        self.modal = Some(Modal::Confirm {
            title: "Import from ssh config".into(),
            text,
            then: Box::new(Confirmed::Cmd(Cmd::ImportSshConfig)),
        });
    }

    /// Whether an engine backs this dashboard (tests and snapshots run without one).
    pub fn has_engine(&self) -> bool {
        self.eng.is_some()
    }

    /// The page over the screen (tests fill a detail page's data directly).
    pub fn page_mut(&mut self) -> Option<&mut Page> {
        self.page.as_mut()
    }

    pub fn open_help(&mut self) {
        self.help_max_scroll.set(None);
        self.modal = Some(Modal::Help { scroll: 0 });
    }

    /// Which keymap is in force.
    pub fn ctx(&self) -> Ctx {
        match &self.modal {
            Some(Modal::Help { .. }) => return Ctx::Help,
            Some(Modal::Palette(_)) => return Ctx::Palette,
            Some(Modal::Confirm { .. }) => return Ctx::Confirm,
            Some(Modal::QuitJobs { .. }) => return Ctx::QuitJobs,
            Some(Modal::HostKey(_)) => return Ctx::HostKey,
            Some(Modal::HostKeyChanged(_)) => return Ctx::HostKeyChanged,
            Some(Modal::Picker { .. }) => return Ctx::Picker,
            Some(Modal::SudoPassword(_)) => return Ctx::SudoPassword,
            None => {}
        }
        self.base_ctx()
    }

    /// The context under any dialog (what `?` describes).
    pub fn base_ctx(&self) -> Ctx {
        if self.prompt.is_some() {
            return Ctx::Prompt;
        }
        match &self.page {
            Some(Page::Form(f)) if f.review => return Ctx::Review,
            Some(Page::Form(_)) => return Ctx::Form,
            Some(Page::Detail(_)) => return Ctx::Detail,
            Some(Page::Incident(_)) => return Ctx::IncidentDetail,
            Some(Page::Fanout) => return Ctx::Fanout,
            None => {}
        }
        match self.screen {
            Screen::Fleet => Ctx::Fleet,
            Screen::Catalog => Ctx::Catalog,
            Screen::Jobs if self.jobs.focus_log => Ctx::Log,
            Screen::Jobs => Ctx::Jobs,
            Screen::Incidents => Ctx::Incidents,
            Screen::Audit => Ctx::Audit,
        }
    }

    pub fn error(&mut self, msg: impl Into<String>) {
        self.flash = Some((msg.into(), true));
    }

    pub fn info(&mut self, msg: impl Into<String>) {
        self.flash = Some((msg.into(), false));
    }

    /// Whether anything on screen changes with time alone: running jobs' elapsed time, the
    /// ages of health samples (Fleet), of incidents, of a detail page's jobs. Idle otherwise.
    pub fn ticking(&self) -> bool {
        if self.summary.running + self.summary.queued > 0
            || self.jobs.jobs.iter().any(|j| j.status.is_running())
        {
            return true;
        }
        match (&self.page, self.screen) {
            (Some(Page::Detail(_)) | Some(Page::Incident(_)), _) => true,
            (Some(Page::Fanout), _) => self.fanout.as_ref().is_some_and(|f| !f.done),
            (Some(Page::Form(_)), _) => false,
            (None, Screen::Fleet) => self.fleet.health.values().any(|h| h.last.is_some()),
            (None, Screen::Incidents) => !self.incidents.items.is_empty(),
            (None, _) => false,
        }
    }

    /// Servers whose check-now is running (the header counts them, the Fleet marks them).
    pub fn pending_checks(&self) -> usize {
        self.checking.len()
    }

    // ---- loading through the engine (reads only, off the loop: see work.rs) ----

    /// Re-reads everything shown. Used at start, after lost events and on Ctrl-r.
    pub fn reload(&mut self) {
        self.reload_servers();
        self.reload_catalog();
        self.reload_jobs();
        self.reload_audit();
        self.reload_incidents();
        self.reload_summary();
        self.request(Reload::Health);
        self.dirty = true;
    }

    pub fn reload_servers(&mut self) {
        self.request(Reload::Servers);
    }

    pub fn reload_catalog(&mut self) {
        self.request(Reload::Catalog);
    }

    pub fn reload_jobs(&mut self) {
        self.request(Reload::Jobs);
    }

    pub fn reload_audit(&mut self) {
        self.request(Reload::Audit);
    }

    pub fn reload_incidents(&mut self) {
        self.request(Reload::Incidents);
    }

    pub fn reload_summary(&mut self) {
        self.request(Reload::Summary);
    }

    /// Keeps the same job selected when the list changes (by id), else the first.
    pub fn select_job(&mut self, id: Option<i64>) {
        let shown = self.jobs.shown();
        let pos = id.and_then(|id| shown.iter().position(|j| j.id == id));
        let len = shown.len();
        self.jobs.sel = pos.unwrap_or(self.jobs.sel).min(len.saturating_sub(1));
        self.open_selected_log();
    }

    /// Points the log pane at the selected job (unless it already is).
    pub fn open_selected_log(&mut self) {
        let id = self.jobs.selected().map(|j| j.id);
        if id == self.jobs.log.job_id {
            return;
        }
        match (id, &self.eng) {
            (Some(id), Some(_)) => self.jobs.log.open(id),
            (None, _) => {
                let mut v = LogView::new();
                v.wrap = self.jobs.log.wrap;
                v.timestamps = self.jobs.log.timestamps;
                self.jobs.log = v;
            }
            _ => {}
        }
    }

    // ---- engine events ----

    pub fn on_event(&mut self, ev: Event) {
        let was_dirty = self.dirty;
        self.dirty = true;
        match ev {
            Event::JobFinished { job } => {
                let host_key = job.status == ptui_types::job::JobStatus::Failed
                    && job.error_kind == Some(ptui_types::error::ErrorKind::HostKey);
                let (id, server) = (job.id, job.server_name.clone());
                // "cancelling job #N…" is no longer true once the job has ended.
                if self
                    .flash
                    .as_ref()
                    .is_some_and(|(m, _)| *m == format!("cancelling job #{id}…"))
                {
                    self.info(format!("job #{id} {}", job.status));
                }
                self.upsert_job(job);
                self.reload_summary();
                if self.screen == Screen::Audit {
                    self.reload_audit();
                }
                if host_key {
                    self.rescan_host_key(id, server);
                }
            }
            Event::JobDetached { job } => {
                // Output that could not be stored here (disk full, read-only database) is said
                // to be missing, not dropped silently.
                self.error(format!(
                    "job #{} on {}: {}",
                    job.id,
                    job.server_name,
                    job.error_message
                        .as_deref()
                        .unwrap_or("left running on its server; collected later")
                ));
                self.upsert_job(job);
                self.reload_summary();
            }
            Event::JobQueued { job } | Event::JobStarted { job } => {
                self.upsert_job(job);
                self.reload_summary();
                if self.screen == Screen::Audit {
                    self.reload_audit();
                }
            }
            Event::JobLog { job_id, lines } => {
                let tracked = self.fanout_log(job_id, lines.last().map(|l| l.text.as_str()));
                if self.jobs.log.job_id == Some(job_id) {
                    self.jobs.log.push(&lines);
                } else if !(tracked && matches!(self.page, Some(Page::Fanout))) {
                    self.dirty = was_dirty;
                }
            }
            Event::ServerChanged { server } => {
                match self.fleet.servers.iter_mut().find(|s| s.id == server.id) {
                    Some(s) => *s = server,
                    None => self.fleet.servers.push(server),
                }
                self.fleet.reorder();
            }
            // Fan-out progress shows through the job events it causes, plus its start and end.
            Event::Fanout { fanout } => {
                self.fanout_progress(&fanout);
                self.on_fanout(fanout, was_dirty)
            }
            Event::ServerRemoved { name } => {
                self.fleet.servers.retain(|s| s.name != name);
                self.fleet.marks.remove(&name);
                self.fleet.reorder();
            }
            Event::IncidentChanged { incident } => {
                if incident.state == ptui_engine::health::IncidentState::Detected
                    && incident.resolved_at.is_none()
                {
                    let msg = format!(
                        "incident: {} on {}{}",
                        incident.kind.as_str(),
                        incident.server,
                        incident
                            .app_id
                            .map(|a| format!(" ({a})"))
                            .unwrap_or_default()
                    );
                    // A fan-out's summary just shown stays in view beside it.
                    match self.flash.take() {
                        Some((f, _)) if f.starts_with("fan-out done:") => {
                            self.error(format!("{f} · {msg}"))
                        }
                        _ => self.error(msg),
                    }
                    self.bell = true;
                } else if incident.resolved_at.is_some() {
                    self.info(format!(
                        "resolved: {} on {}{}",
                        incident.kind.as_str(),
                        incident.server,
                        incident
                            .app_id
                            .map(|a| format!(" ({a})"))
                            .unwrap_or_default()
                    ));
                }
                self.reload_incidents();
                self.reload_summary();
            }
            Event::HealthSample { sample } => self.apply_health(LastCheck::from_sample(sample)),
            // Successes stay quiet; a failed delivery means an alert nobody received.
            Event::Notification {
                channel,
                topic,
                outcome,
                detail,
            } if outcome == "failed" => self.error(format!(
                "notification {topic} via {channel} failed{}",
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            )),
            Event::Notification { .. } => {
                self.dirty = was_dirty;
            }
            Event::ExternalChange => {
                self.reload_servers();
                self.reload_jobs();
                self.reload_summary();
                self.reload_incidents();
                if self.screen == Screen::Audit {
                    self.reload_audit();
                }
            }
        }
    }

    /// A job failed on an unknown or changed host key: read the key so the accept dialog or
    /// the red alert opens, instead of only a failed job. At most once per server per
    /// `RESCAN_MS` (a fan-out can fail many jobs on one server at once).
    fn rescan_host_key(&mut self, job_id: i64, server: String) {
        const RESCAN_MS: i64 = 10_000;
        let now = ptui_types::time::now_ms();
        if self
            .rescanned
            .get(&server)
            .is_some_and(|at| now - at < RESCAN_MS)
        {
            return;
        }
        self.rescanned.insert(server.clone(), now);
        self.error(format!(
            "job #{job_id} on {server} failed on its host key; reading the key…"
        ));
        self.cmds.push(Cmd::Scan(server));
    }

    fn upsert_job(&mut self, job: Job) {
        let keep = self.jobs.selected().map(|j| j.id);
        match self.jobs.jobs.iter_mut().find(|j| j.id == job.id) {
            Some(j) => *j = job,
            None => {
                let pos = self
                    .jobs
                    .jobs
                    .iter()
                    .position(|j| j.id < job.id)
                    .unwrap_or(self.jobs.jobs.len());
                self.jobs.jobs.insert(pos, job);
                self.jobs.jobs.truncate(JOB_LIMIT);
            }
        }
        self.select_job(keep);
    }

    pub fn apply_health(&mut self, c: LastCheck) {
        self.fleet.apply_check(c);
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptui_types::server::{Server, ServerStatus};

    fn server(id: i64, name: &str) -> Server {
        Server {
            id,
            name: name.into(),
            host: format!("10.0.0.{id}"),
            port: 22,
            user: "root".into(),
            identity: None,
            jump: None,
            tags: Vec::new(),
            password_env: None,
            status: ServerStatus::Ready,
            created_at: 0,
            updated_at: 0,
            site: ptui_types::server::default_site(),
        }
    }

    fn sample(server: &str, at_ms: i64, latency: u32, disk: Option<u8>) -> LastCheck {
        LastCheck {
            server: server.into(),
            at_ms,
            latency_ms: Some(latency),
            load: Some(latency as f32 / 100.0),
            mem_pct: Some(50),
            disk_pct: disk,
            failure: None,
        }
    }

    fn names(f: &FleetState) -> Vec<&str> {
        f.order
            .iter()
            .map(|i| f.servers[*i].name.as_str())
            .collect()
    }

    fn sort_by(f: &mut FleetState, col: &str, rev: bool) {
        f.sort = FLEET_SORTS.iter().position(|c| *c == col).expect("column");
        f.rev = rev;
        f.reorder();
    }

    #[test]
    fn health_columns_sort_with_missing_figures_last() {
        let mut app = App::new(super::super::theme::dark());
        app.fleet.servers = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, n)| server(i as i64 + 1, n))
            .collect();
        app.apply_health(sample("a", 1_000, 30, Some(90)));
        app.apply_health(sample("b", 3_000, 10, None));
        app.apply_health(sample("c", 2_000, 20, Some(40)));
        let f = &mut app.fleet;
        sort_by(f, "latency", false);
        assert_eq!(names(f), ["b", "c", "a", "d"]);
        sort_by(f, "latency", true);
        assert_eq!(
            names(f),
            ["a", "c", "b", "d"],
            "reversed, d (no sample) still last"
        );
        sort_by(f, "load", true);
        assert_eq!(names(f), ["a", "c", "b", "d"]);
        sort_by(f, "disk%", false);
        assert_eq!(names(f), ["c", "a", "b", "d"], "b has no disk figure");
        sort_by(f, "age", false);
        assert_eq!(names(f), ["b", "c", "a", "d"], "youngest sample first");
        sort_by(f, "mem%", false);
        assert_eq!(names(f), ["a", "b", "c", "d"], "ties by name");
    }

    #[test]
    fn a_failed_check_has_no_latency_and_keeps_the_sparkline() {
        let mut app = App::new(super::super::theme::dark());
        app.fleet.servers = vec![server(1, "a")];
        app.apply_health(sample("a", 1_000, 30, Some(10)));
        app.on_event(Event::HealthSample {
            sample: ptui_engine::health::Sample::unreachable(
                1,
                "a",
                ptui_engine::health::IncidentKind::ServerUnreachable,
                "connection refused".into(),
            ),
        });
        let h = &app.fleet.health["a"];
        let last = h.last.as_ref().expect("last sample");
        assert_eq!(last.latency_ms, None, "time-to-fail is not a latency");
        assert_eq!(last.failure.as_deref(), Some("server_unreachable"));
        assert_eq!(h.history, [30], "the sparkline keeps real latencies only");
    }

    #[test]
    fn failed_notifications_show_as_errors() {
        let mut app = App::new(super::super::theme::dark());
        let note = |outcome: &str, detail: Option<&str>| Event::Notification {
            channel: "ops-slack".into(),
            topic: "incident_opened".into(),
            outcome: outcome.into(),
            detail: detail.map(str::to_string),
        };
        app.dirty = false;
        app.on_event(note("sent", None));
        assert!(app.flash.is_none() && !app.dirty, "success is quiet");
        app.on_event(note("failed", Some("HTTP 500 after 3 attempts")));
        assert_eq!(
            app.flash,
            Some((
                "notification incident_opened via ops-slack failed: HTTP 500 after 3 attempts"
                    .into(),
                true
            ))
        );
        assert!(app.dirty);
    }

    #[test]
    fn a_sample_marks_a_health_sorted_fleet_for_reorder() {
        let mut app = App::new(super::super::theme::dark());
        app.fleet.servers = vec![server(1, "a"), server(2, "b")];
        app.fleet.reorder();
        app.apply_health(sample("a", 1, 50, None));
        assert!(!app.fleet.stale, "a name sort does not move on samples");
        sort_by(&mut app.fleet, "latency", false);
        app.apply_health(sample("b", 2, 5, None));
        assert!(app.fleet.stale);
        app.fleet.reorder();
        assert_eq!(names(&app.fleet), ["b", "a"]);
        assert!(!app.fleet.stale);
    }

    #[test]
    fn quitting_with_jobs_running_leaves_them_by_default_or_cancels_them() {
        use crate::keymap::{Action, Ctx};
        use crate::overlays::OnQuit;
        let mut app = App::new(super::super::theme::dark());
        app.modal = Some(Modal::QuitJobs { running: 2 });
        assert_eq!(app.ctx(), Ctx::QuitJobs);
        app.update(Action::No);
        assert!(app.modal.is_none() && !app.quit, "Esc stays");
        app.modal = Some(Modal::QuitJobs { running: 2 });
        app.update(Action::Yes);
        assert!(app.quit);
        assert_eq!(
            app.on_quit,
            OnQuit::LeaveRunning,
            "Enter leaves them running"
        );
        let mut app = App::new(super::super::theme::dark());
        app.modal = Some(Modal::QuitJobs { running: 1 });
        app.update(Action::Cancel);
        assert!(app.quit);
        assert_eq!(app.on_quit, OnQuit::Cancel);
    }
}
