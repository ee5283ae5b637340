//! Engine work off the event loop. `update` queues a `Cmd`; the loop runs it on a blocking
//! thread (`perform`) or a task (host-key scans); its `Msg` comes back and `App::apply` takes
//! it. Reloads are coalesced: at most one per kind in flight, re-run once if asked meanwhile.

use super::app::{AUDIT_LIMIT, App, Detail, JOB_LIMIT, Page};
use super::logview::{self, LogGot, LogWant};
use ptui_catalog::Manifest;
use ptui_engine::jobs::fanout::{FanoutHandle, FanoutRequest};
use ptui_engine::{Engine, Event, HostKeyScan, InstallRequest};
use ptui_types::job::{Job, JobFilter};
use ptui_types::records::{AuditEntry, IncidentRow, ServerDetail, ServerEvent, Summary};
use ptui_types::server::{Server, ServerSpec, ServerStatus};

/// Engine work the loop performs for `update`.
#[derive(Debug)]
pub enum Cmd {
    AddServer(Box<ServerSpec>),
    /// Change a server's connection fields and tags (by its name).
    EditServer(String, Box<ServerSpec>),
    RemoveServer(String),
    SetStatus(Vec<String>, ServerStatus),
    Scan(String),
    /// Record the scanned key; `true` replaces the entries of a changed one.
    Trust(Box<HostKeyScan>, bool),
    /// Checks the sudo passwords the install needs, then starts it (a fan-out with these
    /// options when there are several servers).
    Install(InstallRequest, FanOpts),
    /// Hand a typed sudo password to the engine (memory only).
    SudoPassword {
        server: String,
        password: ptui_types::secret::Secret,
    },
    Cancel(i64),
    Mouse(bool),
    /// Import the hosts of ~/.ssh/config.
    ImportSshConfig,
    /// Re-read one list.
    Reload(Reload),
    /// Remember the theme in config.yaml.
    SaveTheme(String),
    /// Maintenance, policy: the CLI's operations (ops.rs).
    Op(crate::ops::OpCmd),
    /// Read an incident's detail page.
    IncidentDetail(i64),
    /// Acknowledge an incident, with an optional note.
    AckIncident(i64, Option<String>),
    NoteIncident(i64, String),
    /// Read a server's detail page.
    Detail(String),
    /// The recorded deployment of `app` on `server`, to prefill its install form.
    Prefill {
        server: String,
        app: String,
    },
    /// Write a job's stored log to a file.
    ExportLog(i64),
    /// The operator's public keys for a form's public-key field.
    PubKeys,
    /// The `ssh` command line of a shell on this server.
    Shell(String),
    /// Check these servers now (async, like a scan).
    CheckNow(Vec<String>),
    /// A read of the log pane.
    Log {
        job: i64,
        want: LogWant,
    },
    /// The review's plan of an install.
    Plan(Box<FanoutRequest>),
    /// Whether apt or dpkg runs on a job's server, for its cancel dialog (async, like a scan).
    PackageManagers {
        job: i64,
        server: String,
        app: String,
    },
}

impl Cmd {
    /// Network work the loop runs on a task (`event::dispatch`), not on a blocking thread.
    pub fn is_async(&self) -> bool {
        matches!(
            self,
            Cmd::Scan(_) | Cmd::Mouse(_) | Cmd::CheckNow(_) | Cmd::PackageManagers { .. }
        )
    }
}

/// The lists the dashboard re-reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    Servers,
    Catalog,
    Jobs,
    Audit,
    Incidents,
    Summary,
    /// The last samples of every server (figures and sparklines before the next check).
    Health,
}

impl Reload {
    fn slot(self) -> usize {
        match self {
            Reload::Servers => 0,
            Reload::Catalog => 1,
            Reload::Jobs => 2,
            Reload::Audit => 3,
            Reload::Incidents => 4,
            Reload::Summary => 5,
            Reload::Health => 6,
        }
    }
}

/// Which reloads run, and which were asked for again while running.
#[derive(Debug, Default)]
pub struct Reloads {
    running: [bool; 7],
    again: [bool; 7],
}

/// A re-read list.
#[derive(Debug)]
pub enum Reloaded {
    Servers(Result<Vec<Server>, String>),
    Catalog {
        items: Vec<Manifest>,
        problems: usize,
    },
    Jobs(Result<Vec<Job>, String>),
    /// The rows, and the chain's verification (the whole log, not the filtered rows).
    Audit(Result<Vec<AuditEntry>, String>, crate::lists::AuditChain),
    Incidents(Option<Vec<IncidentRow>>),
    Summary(Option<Summary>),
    Health(Option<Vec<ptui_types::health::Sample>>),
}

impl Reloaded {
    fn kind(&self) -> Reload {
        match self {
            Reloaded::Servers(_) => Reload::Servers,
            Reloaded::Catalog { .. } => Reload::Catalog,
            Reloaded::Jobs(_) => Reload::Jobs,
            Reloaded::Audit(..) => Reload::Audit,
            Reloaded::Incidents(_) => Reload::Incidents,
            Reloaded::Summary(_) => Reload::Summary,
            Reloaded::Health(_) => Reload::Health,
        }
    }
}

/// An install or fan-out the engine started.
pub enum Started {
    Jobs(Vec<Job>),
    /// The handle and the installer's id.
    Fanout(FanoutHandle, String),
}

// By hand: the fan-out handle holds a future.
impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Started::Jobs(j) => f.debug_tuple("Jobs").field(j).finish(),
            Started::Fanout(h, app) => write!(f, "Fanout(#{}, {app})", h.id),
        }
    }
}

/// Results of engine work done off the loop.
#[derive(Debug)]
pub enum Msg {
    Scanned(Result<HostKeyScan, String>),
    Added(Result<Server, String>),
    Edited(Result<Server, String>),
    Removed(String, Result<(), String>),
    StatusSet {
        names: Vec<String>,
        to: ServerStatus,
        errors: Vec<String>,
        /// The detail page's server re-read, with its events, when one was open.
        detail: Option<(Server, Vec<ServerEvent>)>,
    },
    Trusted(Box<HostKeyScan>, Result<(), String>),
    /// These `--prompt` servers need a sudo password before the install starts.
    SudoNeeded(InstallRequest, FanOpts, Vec<(String, String)>),
    Started(Result<Started, String>),
    SudoPasswordSet(Result<(), String>),
    Imported(Result<String, String>),
    Cancelled(i64, Result<(), String>),
    ThemeSaved(String, Result<std::path::PathBuf, String>),
    IncidentDetail(i64, Result<ptui_engine::queries::IncidentDetail, String>),
    /// An operation's status-line message, or its error.
    OpDone(Result<String, String>),
    /// An acknowledgement or a note: the incident, what was done, the outcome.
    IncidentUpdated(i64, &'static str, Result<(), String>),
    Reloaded(Reloaded),
    Detail(
        String,
        Option<ServerDetail>,
        Option<Box<ptui_engine::queries::HealthPage>>,
    ),
    Prefill {
        server: String,
        app: String,
        inputs: Option<serde_json::Value>,
    },
    PubKeys(Vec<(String, String)>),
    /// A shell's argv is ready: the loop suspends the dashboard and runs it.
    ShellReady(Result<Vec<String>, String>),
    /// A job's log written to this file, or why not.
    Exported(i64, Result<String, String>),
    /// A check-now answered: the servers asked about and the samples, or the error.
    Checked(Vec<String>, Result<Vec<ptui_types::health::Sample>, String>),
    Log {
        job: i64,
        got: LogGot,
    },
    /// The plan of the review of this app.
    Planned(
        String,
        Result<Box<ptui_engine::change_plan::ChangePlan>, String>,
    ),
    /// What the cancel dialog of this job says about package managers.
    PackageNote(i64, Result<Option<String>, String>),
}

fn text<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("{e:#}"))
}

/// Runs a command's engine calls; blocking (SQLite), so the loop runs it on a blocking thread.
/// Host-key scans are async and not handled here (None); nor is the terminal's mouse mode.
pub fn perform(eng: &Engine, cmd: Cmd, detail_of: Option<String>) -> Option<Msg> {
    Some(match cmd {
        Cmd::AddServer(spec) => Msg::Added(text(eng.add_server(&spec))),
        Cmd::EditServer(name, spec) => Msg::Edited(text(eng.edit_server(&name, &spec))),
        Cmd::RemoveServer(name) => {
            let r = text(eng.remove_server(&name).map(|_| ()));
            Msg::Removed(name, r)
        }
        Cmd::SetStatus(names, to) => {
            let errors = names
                .iter()
                .filter_map(|n| eng.set_server_status(n, to).err())
                .map(|e| format!("{e:#}"))
                .collect();
            let detail = detail_of.and_then(|n| {
                let s = eng.server(&n).ok()?;
                let events = eng.server_events(s.id, 50).unwrap_or_default();
                Some((s, events))
            });
            Msg::StatusSet {
                names,
                to,
                errors,
                detail,
            }
        }
        Cmd::Trust(scan, replace) => {
            let r = text(eng.trust_host_key(&scan, replace));
            Msg::Trusted(scan, r)
        }
        Cmd::Install(req, fan) => {
            // A failed check lets the install go on; its jobs then fail fast with the reason.
            let needing = eng
                .servers_needing_sudo_password(&req.servers)
                .unwrap_or_default();
            if needing.is_empty() {
                Msg::Started(start_install(eng, &req, &fan))
            } else {
                Msg::SudoNeeded(req, fan, needing)
            }
        }
        Cmd::SudoPassword { server, password } => {
            Msg::SudoPasswordSet(text(eng.set_sudo_password(&server, password)))
        }
        Cmd::ImportSshConfig => {
            let path = ptui_types::config::home_dir().join(".ssh/config");
            Msg::Imported(text(
                eng.import_ssh_config(&path)
                    .map(|r| format!("{}: {}", path.display(), r.summary())),
            ))
        }
        Cmd::Cancel(id) => Msg::Cancelled(id, text(eng.cancel_job(id).map(|_| ()))),
        Cmd::Reload(r) => Msg::Reloaded(reload(eng, r, detail_of)),
        Cmd::Op(op) => Msg::OpDone(crate::ops::perform(eng, op)),
        Cmd::Prefill { server, app } => {
            let inputs = crate::jobforms::deployment_inputs(eng, &server, &app);
            Msg::Prefill {
                server,
                app,
                inputs,
            }
        }
        Cmd::Plan(req) => Msg::Planned(req.app.clone(), text(eng.plan_fanout(&req).map(Box::new))),
        Cmd::ExportLog(id) => Msg::Exported(id, crate::jobforms::export_log(eng, id)),
        Cmd::PubKeys => Msg::PubKeys(crate::jobforms::operator_pubkeys()),
        Cmd::Shell(name) => Msg::ShellReady(text(eng.shell_command(&name))),
        Cmd::IncidentDetail(id) => Msg::IncidentDetail(id, text(eng.incident_detail(id))),
        Cmd::AckIncident(id, note) => Msg::IncidentUpdated(
            id,
            "acknowledged; its reminders stop",
            text(eng.ack_incident(id, note.as_deref())),
        ),
        Cmd::NoteIncident(id, note) => {
            Msg::IncidentUpdated(id, "note added", text(eng.note_incident(id, &note)))
        }
        Cmd::SaveTheme(name) => {
            let r = crate::theme::save_configured(&name);
            Msg::ThemeSaved(name, r)
        }
        Cmd::Detail(name) => {
            let d = eng.server_detail(&name, 50).ok();
            let h = eng.health_page(&name).ok().map(Box::new);
            Msg::Detail(name, d, h)
        }
        Cmd::Log { job, want } => Msg::Log {
            job,
            got: logview::perform(eng, job, want),
        },
        Cmd::Scan(_) | Cmd::Mouse(_) | Cmd::CheckNow(_) | Cmd::PackageManagers { .. } => {
            return None;
        }
    })
}

/// `audit_filter` carries the audit filter for `Reload::Audit`.
fn reload(eng: &Engine, r: Reload, audit_filter: Option<String>) -> Reloaded {
    match r {
        Reload::Servers => Reloaded::Servers(text(eng.servers())),
        Reload::Catalog => {
            let cat = eng.catalog();
            Reloaded::Catalog {
                items: cat.installers().map(|i| i.manifest.clone()).collect(),
                problems: cat.problems.len(),
            }
        }
        Reload::Jobs => Reloaded::Jobs(text(eng.jobs(&JobFilter {
            limit: Some(JOB_LIMIT),
            ..Default::default()
        }))),
        Reload::Audit => {
            let f = audit_filter.unwrap_or_default();
            let f = f.trim();
            Reloaded::Audit(
                text(eng.audit_entries((!f.is_empty()).then_some(f), AUDIT_LIMIT)),
                crate::lists::AuditChain::from_verdict(eng.verify_audit(None)),
            )
        }
        Reload::Incidents => Reloaded::Incidents(eng.incident_list(None, 500).ok()),
        Reload::Summary => Reloaded::Summary(eng.summary().ok()),
        Reload::Health => Reloaded::Health(eng.recent_health(crate::fleet::Health::HISTORY).ok()),
    }
}

/// The review step's fan-out options (None: the engine's defaults, like the CLI's).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FanOpts {
    pub concurrency: Option<usize>,
    pub batch: Option<ptui_engine::jobs::fanout::Amount>,
    pub max_fail: Option<ptui_engine::jobs::fanout::Amount>,
}

fn start_install(eng: &Engine, req: &InstallRequest, fan: &FanOpts) -> Result<Started, String> {
    if req.servers.len() > 1 {
        let fan = crate::review::fanout_request(req, fan);
        eng.start_fanout(&fan)
            .map(|h| Started::Fanout(h, req.app.clone()))
            .map_err(|e| e.to_string())
    } else {
        eng.start_install(req)
            .map(Started::Jobs)
            .map_err(|e| e.to_string())
    }
}

impl App {
    /// What `perform` needs from the state besides the command: the detail page's server
    /// (after a status change) or the audit filter (for its reload).
    pub fn context_for(&self, cmd: &Cmd) -> Option<String> {
        match cmd {
            Cmd::SetStatus(..) => match &self.page {
                Some(Page::Detail(d)) => Some(d.server.name.clone()),
                _ => None,
            },
            Cmd::Reload(Reload::Audit) => Some(self.audit.filter.clone()),
            _ => None,
        }
    }

    /// Asks for a list to be re-read: queued unless one is running, then once after it.
    pub fn request(&mut self, r: Reload) {
        if self.eng.is_none() {
            return;
        }
        let i = r.slot();
        if self.reloads.running[i] {
            self.reloads.again[i] = true;
        } else {
            self.reloads.running[i] = true;
            self.cmds.push(Cmd::Reload(r));
        }
    }

    /// Queues the log pane's wanted read, if any and none is running.
    pub fn queue_log_read(&mut self) {
        if self.eng.is_some()
            && let Some((job, want)) = self.jobs.log.take_want()
        {
            self.cmds.push(Cmd::Log { job, want });
        }
    }

    /// Runs every queued command here and applies its result, until none is left; host-key
    /// scans stay queued (they need the runtime). For tests and benches without the loop, and
    /// the first load before the first frame.
    pub fn settle(&mut self) {
        let Some(eng) = self.eng.clone() else { return };
        for _ in 0..64 {
            self.queue_log_read();
            let cmds = std::mem::take(&mut self.cmds);
            let (waiting, run): (Vec<Cmd>, Vec<Cmd>) = cmds.into_iter().partition(Cmd::is_async);
            if run.is_empty() {
                self.cmds = waiting;
                return;
            }
            for cmd in run {
                let ctx = self.context_for(&cmd);
                if let Some(m) = perform(&eng, cmd, ctx) {
                    self.apply(m);
                }
            }
            self.cmds.splice(0..0, waiting);
        }
    }

    /// Takes the result of engine work.
    pub fn apply(&mut self, m: Msg) {
        self.dirty = true;
        match m {
            Msg::Scanned(r) => self.on_scanned(r),
            Msg::Added(Ok(s)) => {
                self.page = None;
                self.info(format!("added {}; reading its host key…", s.name));
                self.on_event(Event::ServerChanged { server: s.clone() });
                if let Some(i) = self
                    .fleet
                    .order
                    .iter()
                    .position(|i| self.fleet.servers[*i].name == s.name)
                {
                    self.fleet.sel = i;
                }
                self.cmds.push(Cmd::Scan(s.name));
            }
            Msg::Edited(Ok(s)) => {
                self.page = None;
                self.info(format!(
                    "{} now {} (tags {})",
                    s.name,
                    s.address(),
                    s.tags.join(",")
                ));
                self.on_event(Event::ServerChanged { server: s });
            }
            Msg::Edited(Err(e)) | Msg::Added(Err(e)) => {
                if let Some(Page::Form(f)) = &mut self.page {
                    f.message = Some(e.clone());
                }
                self.error(e);
            }
            Msg::Removed(name, Ok(())) => self.info(format!("removed {name}")),
            Msg::StatusSet {
                names,
                to,
                errors,
                detail,
            } => {
                if errors.is_empty() {
                    self.info(format!("{} → {to}", names.join(", ")));
                    self.fleet.marks.clear();
                } else {
                    self.error(errors.join("; "));
                }
                if let (Some(Page::Detail(d)), Some((server, events))) = (&mut self.page, detail)
                    && d.server.name == server.name
                {
                    d.events = events;
                    d.server = server;
                }
            }
            Msg::Trusted(scan, Ok(())) => {
                // A check right away: the Fleet shows the server's figures, not the old
                // host-key failure, without waiting for the checker.
                self.checking.insert(scan.server.clone());
                self.cmds.push(Cmd::CheckNow(vec![scan.server.clone()]));
                self.info(format!(
                    "trusted {} ({}); checking it…",
                    scan.server, scan.fingerprint
                ))
            }
            Msg::SudoNeeded(req, fan, needing) => self.ask_sudo_passwords(req, fan, needing),
            Msg::Started(Ok(Started::Jobs(jobs))) => self.on_started(jobs),
            Msg::Started(Ok(Started::Fanout(h, app))) => self.on_fanout_started(&h, &app),
            Msg::Started(Err(e)) => self.on_install_refused(e),
            Msg::SudoPasswordSet(Ok(())) => {}
            Msg::Imported(Ok(summary)) => {
                self.info(summary);
                self.reload();
            }
            Msg::Cancelled(id, Ok(())) => self.info(format!("cancelling job #{id}…")),
            Msg::ThemeSaved(name, Ok(path)) => {
                self.info(format!("theme {name} (saved in {})", path.display()))
            }
            Msg::ThemeSaved(_, Err(e)) => self.error(e),
            Msg::IncidentDetail(id, r) => self.on_incident_detail(id, r),
            Msg::OpDone(Ok(m)) => {
                self.info(m);
                if self.screen == super::app::Screen::Audit {
                    self.reload_audit();
                }
            }
            Msg::OpDone(Err(e)) => self.error(e),
            Msg::IncidentUpdated(id, what, r) => self.on_incident_updated(id, what, r),
            Msg::Removed(_, Err(e))
            | Msg::Trusted(_, Err(e))
            | Msg::SudoPasswordSet(Err(e))
            | Msg::Imported(Err(e))
            | Msg::Cancelled(_, Err(e)) => self.error(e),
            Msg::Reloaded(r) => {
                let kind = r.kind();
                self.reloads.running[kind.slot()] = false;
                self.on_reloaded(r);
                if std::mem::take(&mut self.reloads.again[kind.slot()]) {
                    self.request(kind);
                }
            }
            Msg::Checked(names, r) => self.on_checked(names, r),
            Msg::Prefill {
                server,
                app,
                inputs,
            } => self.on_prefill(&server, &app, inputs),
            Msg::Exported(id, Ok(path)) => self.info(format!("job #{id}'s log written to {path}")),
            Msg::Exported(_, Err(e)) => self.error(e),
            Msg::PubKeys(keys) => self.on_pubkeys(keys),
            Msg::ShellReady(Ok(argv)) => self.shell = Some(argv),
            Msg::ShellReady(Err(e)) => self.error(e),
            Msg::Detail(name, d, h) => {
                if let Some(Page::Detail(cur)) = &mut self.page
                    && cur.server.name == name
                    && let Some(d) = d
                {
                    let scroll = cur.scroll;
                    **cur = Detail::from_page(d);
                    cur.scroll = scroll;
                    cur.health = h.map(|h| *h);
                }
            }
            Msg::Planned(app, r) => self.on_planned(&app, r.map(|p| *p)),
            Msg::PackageNote(job, r) => self.on_package_note(job, r),
            Msg::Log { job, got } => {
                if let Some(miss) = self.jobs.log.apply(job, got) {
                    self.error(miss);
                }
            }
        }
    }

    fn on_reloaded(&mut self, r: Reloaded) {
        match r {
            Reloaded::Servers(Ok(s)) => {
                let first = !self.loaded_servers;
                self.loaded_servers = true;
                self.fleet.servers = s;
                self.fleet
                    .marks
                    .retain(|m| self.fleet.servers.iter().any(|s| &s.name == m));
                self.fleet.reorder();
                // First start: an empty fleet is offered the hosts the operator already has.
                if first && self.fleet.servers.is_empty() {
                    self.offer_ssh_config_import(true);
                }
            }
            Reloaded::Servers(Err(e)) => self.error(format!("reading servers: {e}")),
            Reloaded::Catalog { items, problems } => {
                self.catalog.items = items;
                self.catalog.problems = problems;
            }
            Reloaded::Jobs(Ok(j)) => {
                let keep = self.jobs.selected().map(|j| j.id);
                self.jobs.jobs = j;
                self.select_job(keep);
                self.jobs.log.catch_up();
            }
            Reloaded::Jobs(Err(e)) => self.error(format!("reading jobs: {e}")),
            Reloaded::Audit(Ok(a), chain) => {
                self.audit_chain = Some(chain);
                self.audit.items = a;
                self.audit.sel = self.audit.sel.min(self.audit.items.len().saturating_sub(1));
            }
            Reloaded::Audit(Err(e), _) => self.error(format!("reading audit log: {e}")),
            Reloaded::Incidents(i) => {
                if let Some(i) = i {
                    self.incidents.items = i;
                }
            }
            Reloaded::Health(Some(samples)) => {
                self.fleet.health.clear();
                for s in samples {
                    self.fleet
                        .apply_check(super::app::LastCheck::from_sample(s));
                }
            }
            Reloaded::Health(None) => {}
            Reloaded::Summary(s) => {
                if let Some(s) = s {
                    self.summary = s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_with_engine(dir: &std::path::Path) -> App {
        let eng = Engine::open(ptui_types::config::Config::new(
            Some(dir.join("state.db")),
            Vec::new(),
        ))
        .expect("engine");
        App::with_engine(crate::theme::dark(), eng)
    }

    fn reloads(app: &App) -> usize {
        app.cmds
            .iter()
            .filter(|c| matches!(c, Cmd::Reload(Reload::Servers)))
            .count()
    }

    #[test]
    fn a_reload_asked_while_one_runs_runs_once_after_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut app = app_with_engine(tmp.path());
        app.cmds.clear();
        app.reload_servers();
        app.reload_servers();
        app.reload_servers();
        assert_eq!(reloads(&app), 1, "one in flight");
        app.cmds.clear();
        app.apply(Msg::Reloaded(Reloaded::Servers(Ok(Vec::new()))));
        assert_eq!(
            reloads(&app),
            1,
            "re-run once for the requests made meanwhile"
        );
        app.cmds.clear();
        app.apply(Msg::Reloaded(Reloaded::Servers(Ok(Vec::new()))));
        assert_eq!(reloads(&app), 0, "nothing more was asked");
    }
}
