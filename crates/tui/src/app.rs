//! Dashboard state. `update` (in update.rs) takes an Action and changes this state, queueing
//! engine commands in `cmds`; the event loop runs them and feeds results back.

use super::form::Form;
use super::keymap::Ctx;
use super::logview::LogView;
use super::palette::Palette;
use super::theme::Theme;
use ptui_catalog::Manifest;
use ptui_engine::{Engine, Event, HostKeyScan, InstallRequest};
use ptui_types::job::Job;
use ptui_types::records::AuditEntry;
use ptui_types::records::Deployment;
use ptui_types::records::IncidentRow;
use ptui_types::records::ServerEvent;
use ptui_types::server::{Server, ServerStatus};
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, VecDeque};
use tui_input::Input;

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

/// One health check result. The health checker will send these through an engine event;
/// until then no sample exists and the Fleet columns show `-`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSample {
    pub server: String,
    pub at_ms: i64,
    pub latency_ms: Option<u32>,
    pub load: Option<f32>,
    pub mem_pct: Option<u8>,
    pub disk_pct: Option<u8>,
    /// Why the check failed (`server_unreachable`, `auth_failed`, ...); None when it passed.
    pub failure: Option<String>,
}

/// The last health figures of a server and a short latency history for the sparkline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub last: Option<HealthSample>,
    pub history: VecDeque<u64>,
}

impl Health {
    pub const HISTORY: usize = 16;
    pub fn apply(&mut self, s: HealthSample) {
        if let Some(l) = s.latency_ms {
            self.history.push_back(l as u64);
            while self.history.len() > Self::HISTORY {
                self.history.pop_front();
            }
        }
        self.last = Some(s);
    }
}

#[derive(Debug, Default)]
pub struct FleetState {
    pub servers: Vec<Server>,
    pub health: HashMap<String, Health>,
    /// Indices into `servers` after filter and sort; recomputed on change, not per frame.
    pub order: Vec<usize>,
    pub sel: usize,
    /// The first row shown, as the view last scrolled it.
    pub offset: std::cell::Cell<usize>,
    pub sort: usize,
    pub rev: bool,
    pub filter: String,
    pub marks: BTreeSet<String>,
    /// A sample arrived under a health sort: reorder once before the next frame, not per sample.
    pub stale: bool,
}

/// Sort columns `o` cycles through; from `age` on they are health figures.
pub const FLEET_SORTS: [&str; 9] = [
    "name", "address", "status", "tags", "age", "latency", "load", "mem%", "disk%",
];
const FIRST_HEALTH_SORT: usize = 4;

impl FleetState {
    /// Whether the order depends on health samples (each sample may move a row).
    pub fn sorts_by_health(&self) -> bool {
        self.sort >= FIRST_HEALTH_SORT
    }

    /// The sort value of a server's last sample for a health column; None sorts last.
    fn health_key(&self, name: &str) -> Option<f64> {
        let last = self.health.get(name)?.last.as_ref()?;
        match self.sort {
            // Youngest sample first: the largest timestamp.
            4 => Some(-(last.at_ms as f64)),
            5 => last.latency_ms.map(f64::from),
            6 => last.load.map(f64::from),
            7 => last.mem_pct.map(f64::from),
            8 => last.disk_pct.map(f64::from),
            _ => None,
        }
    }

    /// Reorders once if samples arrived under a health sort (the loop calls it before a frame).
    pub fn reorder_if_stale(&mut self) {
        if self.stale {
            self.reorder();
        }
    }

    pub fn reorder(&mut self) {
        self.stale = false;
        let current = self.selected().map(|s| s.name.clone());
        let f = self.filter.to_lowercase();
        let mut order: Vec<usize> = (0..self.servers.len())
            .filter(|i| {
                let s = &self.servers[*i];
                f.is_empty()
                    || s.name.to_lowercase().contains(&f)
                    || s.host.to_lowercase().contains(&f)
                    || s.status.as_str().contains(&f)
                    || s.tags.iter().any(|t| t.to_lowercase().contains(&f))
            })
            .collect();
        let sv = &self.servers;
        match self.sort {
            1 => order.sort_by(|a, b| {
                sv[*a]
                    .host
                    .cmp(&sv[*b].host)
                    .then(sv[*a].port.cmp(&sv[*b].port))
            }),
            2 => order.sort_by(|a, b| {
                sv[*a]
                    .status
                    .as_str()
                    .cmp(sv[*b].status.as_str())
                    .then(sv[*a].name.cmp(&sv[*b].name))
            }),
            3 => order.sort_by(|a, b| {
                sv[*a]
                    .tags
                    .join(",")
                    .cmp(&sv[*b].tags.join(","))
                    .then(sv[*a].name.cmp(&sv[*b].name))
            }),
            n if n >= FIRST_HEALTH_SORT => {
                // Keys once per server, not per comparison (10,000 servers).
                let keys: Vec<Option<f64>> = sv.iter().map(|s| self.health_key(&s.name)).collect();
                let rev = self.rev;
                order.sort_by(|a, b| {
                    let by = match (keys[*a], keys[*b]) {
                        (Some(x), Some(y)) if rev => y.total_cmp(&x),
                        (Some(x), Some(y)) => x.total_cmp(&y),
                        // Servers without a figure stay last in both directions.
                        (Some(_), None) => Ordering::Less,
                        (None, Some(_)) => Ordering::Greater,
                        (None, None) => Ordering::Equal,
                    };
                    by.then(sv[*a].name.cmp(&sv[*b].name))
                });
            }
            _ => order.sort_by(|a, b| sv[*a].name.cmp(&sv[*b].name)),
        }
        if self.rev && !self.sorts_by_health() {
            order.reverse();
        }
        self.order = order;
        self.sel = current
            .and_then(|n| self.order.iter().position(|i| self.servers[*i].name == n))
            .unwrap_or(self.sel)
            .min(self.order.len().saturating_sub(1));
    }

    pub fn selected(&self) -> Option<&Server> {
        self.order.get(self.sel).and_then(|i| self.servers.get(*i))
    }

    /// Marked servers, or the selected one.
    pub fn targets(&self) -> Vec<String> {
        if self.marks.is_empty() {
            self.selected()
                .map(|s| vec![s.name.clone()])
                .unwrap_or_default()
        } else {
            self.marks.iter().cloned().collect()
        }
    }
}

#[derive(Debug, Default)]
pub struct CatalogState {
    pub items: Vec<Manifest>,
    pub problems: usize,
    pub sel: usize,
    pub filter: String,
}

impl CatalogState {
    pub fn shown(&self) -> Vec<&Manifest> {
        let f = self.filter.to_lowercase();
        self.items
            .iter()
            .filter(|m| {
                f.is_empty()
                    || m.id.to_lowercase().contains(&f)
                    || m.name.to_lowercase().contains(&f)
                    || m.category.to_lowercase().contains(&f)
            })
            .collect()
    }
}

#[derive(Debug, Default)]
pub struct JobsState {
    pub jobs: Vec<Job>,
    pub sel: usize,
    pub filter: String,
    pub focus_log: bool,
    pub log: LogView,
}

impl JobsState {
    /// Jobs matching the filter: `status:X`, `server:X`, `app:X` tokens or free words.
    pub fn shown(&self) -> Vec<&Job> {
        let words: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        self.jobs
            .iter()
            .filter(|j| {
                words.iter().all(|w| match w.split_once(':') {
                    Some(("status", v)) => j.status.as_str().starts_with(v),
                    Some(("server", v)) => j.server_name.to_lowercase().contains(v),
                    Some(("app", v)) => j.app_id.to_lowercase().contains(v),
                    _ => {
                        j.status.as_str().contains(w.as_str())
                            || j.server_name.to_lowercase().contains(w.as_str())
                            || j.app_id.to_lowercase().contains(w.as_str())
                    }
                })
            })
            .collect()
    }

    pub fn selected(&self) -> Option<&Job> {
        self.shown().get(self.sel).copied()
    }
}

#[derive(Debug)]
pub struct ListState<T> {
    pub items: Vec<T>,
    pub sel: usize,
    pub filter: String,
}

impl<T> Default for ListState<T> {
    fn default() -> Self {
        ListState {
            items: Vec::new(),
            sel: 0,
            filter: String::new(),
        }
    }
}

impl ListState<IncidentRow> {
    /// Incidents matching the filter: `server:X`, `kind:X`, `state:X` tokens or free words
    /// (server, kind, state, app); `open` (or `state:open`) means not resolved yet.
    pub fn shown(&self) -> Vec<&IncidentRow> {
        let words: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let has = |field: &str, w: &str| field.to_lowercase().contains(w);
        self.items
            .iter()
            .filter(|i| {
                let open = i.resolved_at.is_none();
                words.iter().all(|w| match w.split_once(':') {
                    Some(("server", v)) => has(&i.server, v),
                    Some(("kind", v)) => has(&i.kind, v),
                    Some(("state", "open")) => open,
                    Some(("state", v)) => i.state.to_lowercase().starts_with(v),
                    _ if w == "open" => open,
                    _ => {
                        has(&i.server, w)
                            || has(&i.kind, w)
                            || has(&i.state, w)
                            || i.app_id.as_deref().is_some_and(|a| has(a, w))
                    }
                })
            })
            .collect()
    }
}

/// A server's detail page.
#[derive(Debug, Clone)]
pub struct Detail {
    pub server: Server,
    pub events: Vec<ServerEvent>,
    pub deployments: Vec<Deployment>,
    pub jobs: Vec<Job>,
    pub incidents: Vec<IncidentRow>,
    pub scroll: u16,
}

impl Detail {
    pub fn empty(server: Server) -> Self {
        Detail {
            server,
            events: Vec::new(),
            deployments: Vec::new(),
            jobs: Vec::new(),
            incidents: Vec::new(),
            scroll: 0,
        }
    }

    pub fn from_page(d: ptui_types::records::ServerDetail) -> Self {
        Detail {
            server: d.server,
            events: d.events,
            deployments: d.deployments,
            jobs: d.jobs,
            incidents: d.incidents,
            scroll: 0,
        }
    }
}

#[derive(Debug)]
pub enum Page {
    Detail(Box<Detail>),
    Form(Box<Form>),
}

#[derive(Debug)]
pub enum Modal {
    Confirm {
        title: String,
        text: String,
        then: Box<Confirmed>,
    },
    HostKey(Box<HostKeyScan>),
    HostKeyChanged(Box<HostKeyScan>),
    Picker {
        targets: Vec<String>,
        items: Vec<ServerStatus>,
        sel: usize,
    },
    /// `scroll` is the first row shown when the bindings do not fit (clamped when drawn).
    Help {
        scroll: usize,
    },
    Palette(Palette),
    /// Asks for the sudo password of each `--prompt` target before an install starts.
    SudoPassword(Box<SudoAsk>),
}

/// The sudo password dialog: the server asked about now, those still to ask, and the install
/// that starts once every password is given.
#[derive(Debug)]
pub struct SudoAsk {
    /// The one-field password form of the server asked about now.
    pub form: Form,
    /// (server, `user@server`) still to ask after this one.
    pub rest: VecDeque<(String, String)>,
    pub install: InstallRequest,
}

/// What a confirmation leads to.
#[derive(Debug)]
pub enum Confirmed {
    Cmd(Cmd),
    Quit,
}

/// A one-line text prompt: a list filter or the log search.
#[derive(Debug)]
pub struct Prompt {
    pub input: Input,
    pub label: &'static str,
}

pub use ptui_types::records::Summary;

pub struct App {
    pub eng: Option<Engine>,
    pub theme: Theme,
    pub screen: Screen,
    pub page: Option<Page>,
    pub modal: Option<Modal>,
    pub prompt: Option<Prompt>,
    pub fleet: FleetState,
    pub catalog: CatalogState,
    pub jobs: JobsState,
    pub incidents: ListState<IncidentRow>,
    pub audit: ListState<AuditEntry>,
    pub summary: Summary,
    pub db_path: String,
    pub now_ms: i64,
    /// A message in the footer until the next key; `true` means an error.
    pub flash: Option<(String, bool)>,
    /// Ring the terminal bell at the next render (an incident opened; `PROVISION_TUI_BELL=0` mutes).
    pub bell: bool,
    pub mouse: bool,
    /// A fan-out the operator just started: its first job's log is opened when it launches.
    pub follow_fanout: Option<u64>,
    /// Show times in UTC instead of local time (snapshots use it).
    pub utc: bool,
    /// When a failed job last made us read a server's host key (by server name).
    pub rescanned: HashMap<String, i64>,
    /// Host-key results that arrived while another dialog was open; shown when it closes.
    pub pending_keys: VecDeque<HostKeyScan>,
    pub quit: bool,
    pub dirty: bool,
    pub cmds: Vec<Cmd>,
    /// The help's last scroll position as last drawn (None until drawn).
    pub help_max_scroll: std::cell::Cell<Option<usize>>,
    /// Reloads running off the loop (coalesced per kind).
    pub(crate) reloads: Reloads,
    /// The servers were read once (the first read may offer the ssh config import).
    pub(crate) loaded_servers: bool,
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
            dirty: true,
            cmds: Vec::new(),
            help_max_scroll: Default::default(),
            reloads: Reloads::default(),
            loaded_servers: false,
        }
    }

    pub fn with_engine(theme: Theme, eng: Engine) -> Self {
        let mut app = App::new(theme);
        app.db_path = super::views::tilde(
            &eng.config().db_path.display().to_string(),
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

    /// Whether anything changes with time alone (running jobs show a ticking elapsed time).
    pub fn ticking(&self) -> bool {
        self.summary.running + self.summary.queued > 0
            || self.jobs.jobs.iter().any(|j| j.status.is_running())
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
                self.upsert_job(job);
                self.reload_summary();
                if self.screen == Screen::Audit {
                    self.reload_audit();
                }
                if host_key {
                    self.rescan_host_key(id, server);
                }
            }
            Event::JobQueued { job } | Event::JobStarted { job } => {
                self.upsert_job(job);
                self.reload_summary();
                if self.screen == Screen::Audit {
                    self.reload_audit();
                }
            }
            Event::JobLog { job_id, lines } => {
                if self.jobs.log.job_id == Some(job_id) {
                    self.jobs.log.push(&lines);
                } else {
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
            Event::Fanout { fanout } => self.on_fanout(fanout, was_dirty),
            Event::ServerRemoved { name } => {
                self.fleet.servers.retain(|s| s.name != name);
                self.fleet.marks.remove(&name);
                self.fleet.reorder();
            }
            Event::IncidentChanged { incident } => {
                if incident.state == ptui_engine::health::IncidentState::Detected
                    && incident.resolved_at.is_none()
                {
                    self.error(format!(
                        "incident: {} on {}{}",
                        incident.kind.as_str(),
                        incident.server,
                        incident
                            .app_id
                            .map(|a| format!(" ({a})"))
                            .unwrap_or_default()
                    ));
                    self.bell = true;
                }
                self.reload_incidents();
                self.reload_summary();
            }
            Event::HealthSample { sample } => {
                // A failed check's "latency" is how long it took to fail: not a latency.
                let failure = sample.failure.map(|k| k.as_str().to_string());
                self.apply_health(HealthSample {
                    server: sample.server,
                    at_ms: sample.ts,
                    latency_ms: failure
                        .is_none()
                        .then(|| sample.latency_ms.min(u32::MAX as u64) as u32),
                    failure,
                    load: sample.load.map(|l| l[0] as f32),
                    mem_pct: sample.mem_pct.map(|m| m.round().clamp(0.0, 100.0) as u8),
                    disk_pct: sample.disk_pct.map(|d| d.round().clamp(0.0, 100.0) as u8),
                });
            }
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

    pub fn apply_health(&mut self, s: HealthSample) {
        self.fleet
            .health
            .entry(s.server.clone())
            .or_default()
            .apply(s);
        if self.fleet.sorts_by_health() {
            self.fleet.stale = true;
        }
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    fn sample(server: &str, at_ms: i64, latency: u32, disk: Option<u8>) -> HealthSample {
        HealthSample {
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
}
