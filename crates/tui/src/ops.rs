//! Operations that used to need the CLI: maintenance windows, the health policy, uninstall
//! and upgrade forms. Parsed by the palette (`palette.rs`), reached by keys that open the
//! palette prefilled; each runs the engine method the CLI runs (same audit rows), off the loop.

use super::app::{App, Cmd, Page};
use super::palette::Command;
use ptui_engine::Engine;
use ptui_engine::health::RecoveryPolicy;
use ptui_engine::health::config::parse_duration;
use ptui_types::job::JobAction;

/// Engine work of these operations.
#[derive(Debug, Clone, PartialEq)]
pub enum OpCmd {
    /// Servers by name (empty with `all`: the fleet-wide window).
    MaintenanceOn {
        servers: Vec<String>,
        ends_at: Option<i64>,
        reason: String,
    },
    MaintenanceOff {
        servers: Vec<String>,
    },
    MaintenanceList,
    Policy {
        server: String,
        recovery: Option<RecoveryPolicy>,
        /// `Some(None)`: back to the default interval.
        interval_ms: Option<Option<i64>>,
    },
    /// `rollback APP --on SERVER`.
    Rollback {
        app: String,
        server: String,
    },
}

impl App {
    /// Opens the palette with `line` typed, for the operator to finish (keys that need words).
    pub fn open_palette_with(&mut self, line: &str) {
        self.open_palette();
        let suggestions = super::palette::suggest(line, &self.words());
        if let Some(super::app::Modal::Palette(p)) = &mut self.modal {
            p.input = tui_input::Input::new(line.to_string());
            p.suggestions = suggestions;
        }
    }

    /// The servers a key acts on: the detail page's, else the marked or selected ones.
    pub(super) fn op_targets(&self) -> Vec<String> {
        match &self.page {
            Some(Page::Detail(d)) => vec![d.server.name.clone()],
            _ => self.fleet.targets(),
        }
    }

    /// `m`: maintenance on the targets, a duration and reason to type.
    pub fn ask_maintenance(&mut self) {
        let t = self.op_targets();
        if t.is_empty() {
            self.error("no server selected");
            return;
        }
        self.open_palette_with(&format!("maintenance on {} for 1h reason ", t.join(" ")));
    }

    /// `:rollback APP [SERVER]`: asks, then returns APP on one server (given, or the one
    /// selected) to its previous recorded deployment.
    fn ask_rollback(&mut self, app: String, server: Option<String>) {
        let server = match server {
            Some(s) => s,
            None => match self.op_targets().as_slice() {
                [one] => one.clone(),
                _ => {
                    return self.error(
                        "rollback acts on one server: name it (`rollback APP SERVER`) or select exactly one",
                    );
                }
            },
        };
        self.modal = Some(super::app::Modal::Confirm {
            title: "Roll back?".into(),
            text: format!(
                "Return {app} on {server} to its previous recorded deployment: its inputs and the configuration copy kept on the server, then the install script?"
            ),
            then: Box::new(super::app::Confirmed::Cmd(Cmd::Op(OpCmd::Rollback {
                app,
                server,
            }))),
        });
    }

    /// `P`: the health policy of the selected server.
    pub fn ask_policy(&mut self) {
        match self.op_targets().first() {
            Some(s) => self.open_palette_with(&format!("policy {s} ")),
            None => self.error("no server selected"),
        }
    }

    /// Runs a palette command of this module (the others are in dialogs.rs).
    pub(super) fn run_op(&mut self, c: Command) {
        match c {
            Command::Action {
                action,
                app,
                servers,
            } => {
                let servers = if servers.is_empty() {
                    self.op_targets()
                } else {
                    servers
                };
                self.open_action(action, &app, servers);
            }
            Command::MaintenanceOn {
                servers,
                all,
                duration,
                reason,
            } => {
                let servers = if all || !servers.is_empty() {
                    servers
                } else {
                    self.op_targets()
                };
                if servers.is_empty() && !all {
                    return self.error("maintenance on: name servers, or `all` for the fleet");
                }
                let ends_at = match duration.as_deref().map(parse_duration) {
                    None => None,
                    Some(Ok(d)) => Some(ptui_types::time::now_ms() + d.as_millis() as i64),
                    Some(Err(e)) => return self.error(format!("maintenance on: {e}")),
                };
                self.cmds.push(Cmd::Op(OpCmd::MaintenanceOn {
                    servers,
                    ends_at,
                    reason,
                }));
            }
            Command::MaintenanceOff { servers, all } => {
                let servers = if all || !servers.is_empty() {
                    servers
                } else {
                    self.op_targets()
                };
                self.cmds.push(Cmd::Op(OpCmd::MaintenanceOff { servers }));
            }
            Command::MaintenanceList => self.cmds.push(Cmd::Op(OpCmd::MaintenanceList)),
            Command::Rollback { app, server } => self.ask_rollback(app, server),
            Command::Policy {
                server,
                recovery,
                interval,
            } => {
                let recovery = match recovery.as_deref().map(RecoveryPolicy::parse) {
                    None => None,
                    Some(Some(r)) => Some(r),
                    Some(None) => return self.error("policy: recovery is notify or auto"),
                };
                let interval_ms = match interval.as_deref() {
                    None => None,
                    Some("default") => Some(None),
                    Some(i) => match parse_duration(i) {
                        Ok(d) if d.as_millis() >= 100 => Some(Some(d.as_millis() as i64)),
                        Ok(_) => return self.error("policy: the interval is at least 100ms"),
                        Err(e) => return self.error(format!("policy: {e}")),
                    },
                };
                self.cmds.push(Cmd::Op(OpCmd::Policy {
                    server,
                    recovery,
                    interval_ms,
                }));
            }
            _ => {}
        }
    }

    /// `c`: a health check of the targets now (off the loop; the header counts it meanwhile).
    pub fn check_now(&mut self, names: Vec<String>) {
        let names: Vec<String> = names
            .into_iter()
            .filter(|n| !self.checking.contains(n))
            .collect();
        if names.is_empty() {
            return self.error("no server to check (or its check is already running)");
        }
        self.info(format!("checking {}…", names.join(", ")));
        self.checking.extend(names.iter().cloned());
        self.cmds.push(Cmd::CheckNow(names));
    }

    /// A check-now answered: its samples go where the checker's go.
    pub fn on_checked(
        &mut self,
        names: Vec<String>,
        r: Result<Vec<ptui_types::health::Sample>, String>,
    ) {
        for n in &names {
            self.checking.remove(n);
        }
        match r {
            Ok(samples) => {
                let bad: Vec<String> = samples
                    .iter()
                    .filter(|s| !s.ok)
                    .map(|s| {
                        let why = s.failure.map(|k| k.as_str()).unwrap_or("over a threshold");
                        format!("{} {why}", s.server)
                    })
                    .collect();
                let n = samples.len();
                for s in samples {
                    self.apply_health(super::app::LastCheck::from_sample(s));
                }
                if bad.is_empty() {
                    self.info(format!("checked {n}: all healthy"));
                } else {
                    self.error(format!("checked {n}: {}", bad.join(", ")));
                }
                if let Some(Page::Detail(d)) = &self.page
                    && names.contains(&d.server.name)
                {
                    self.cmds.push(Cmd::Detail(d.server.name.clone()));
                }
            }
            Err(e) => self.error(format!("check of {}: {e}", names.join(", "))),
        }
    }

    /// `e`: the selected server's connection fields and tags in the add-server form.
    pub fn open_edit_server(&mut self) {
        let server = match &self.page {
            Some(Page::Detail(d)) => Some(d.server.clone()),
            _ => self.fleet.selected().cloned(),
        };
        let Some(s) = server else {
            return self.error("no server selected");
        };
        self.page = Some(Page::Form(Box::new(super::form::Form::new(
            super::form::FormKind::EditServer(s.name.clone()),
            format!("Edit server {}", s.name),
            super::form::edit_server_manifest(&s),
        ))));
    }

    /// `c`/`b`/`f` on the review: a prompt for that fan-out option.
    pub(super) fn ask_fan_option(&mut self, a: super::keymap::Action) {
        use super::keymap::Action;
        let (label, which): (&'static str, u8) = match a {
            Action::FanConcurrency => ("jobs at once (a number; empty: min(50, hosts))", 0),
            Action::FanBatch => ("batch size (5 or 20%; empty: all at once)", 1),
            _ => (
                "failure budget: stop after (2 or 10%; empty: try every host)",
                2,
            ),
        };
        self.prompt = Some(super::overlays::Prompt {
            input: tui_input::Input::default(),
            label,
            then: super::overlays::PromptFor::Fan(which),
        });
    }

    /// The typed fan-out option, checked; shown on the review.
    pub(super) fn set_fan_option(&mut self, which: u8, text: &str) {
        use ptui_engine::jobs::fanout::Amount;
        let Some(Page::Form(f)) = &mut self.page else {
            return;
        };
        let empty = text.is_empty();
        let r: Result<(), String> = match which {
            0 if empty => {
                f.fan.concurrency = None;
                Ok(())
            }
            0 => match text.parse::<usize>() {
                Ok(n) if n > 0 => {
                    f.fan.concurrency = Some(n);
                    Ok(())
                }
                _ => Err(format!("jobs at once: {text:?} is not a number above 0")),
            },
            1 if empty => {
                f.fan.batch = None;
                Ok(())
            }
            1 => text
                .parse::<Amount>()
                .map(|a| f.fan.batch = Some(a))
                .map_err(|e| format!("batch size: {e}")),
            _ if empty => {
                f.fan.max_fail = None;
                Ok(())
            }
            _ => text
                .parse::<Amount>()
                .map(|a| f.fan.max_fail = Some(a))
                .map_err(|e| format!("failure budget: {e}")),
        };
        match r {
            Err(e) => self.error(e),
            // The batches and the budget changed: so did the plan.
            Ok(()) => self.request_plan(),
        }
    }

    /// The install form with another action (uninstall, upgrade): same inputs, same review.
    pub fn open_action(&mut self, action: JobAction, app: &str, servers: Vec<String>) {
        self.open_install(app, servers);
        if let Some(Page::Form(f)) = &mut self.page
            && action != JobAction::Install
        {
            f.action = action;
            let verb = match action {
                JobAction::Uninstall => "Uninstall",
                _ => "Upgrade",
            };
            f.title = f.title.replacen("Install", verb, 1);
        }
    }
}

/// A time in local time, short.
fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%b %d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

/// Performs an operation; the message for the status line, or the error.
pub fn perform(eng: &Engine, op: OpCmd) -> Result<String, String> {
    let text = |e: color_eyre::Report| format!("{e:#}");
    match op {
        OpCmd::MaintenanceOn {
            servers,
            ends_at,
            reason,
        } => {
            let until = ends_at
                .map(|e| format!("until {}", at(e)))
                .unwrap_or_else(|| "until turned off".into());
            if servers.is_empty() {
                eng.maintenance_on(None, "the whole fleet", ends_at, &reason)
                    .map_err(text)?;
                return Ok(format!("maintenance on for the whole fleet {until}"));
            }
            for name in &servers {
                let s = eng.server(name).map_err(text)?;
                eng.maintenance_on(Some(s.id), name, ends_at, &reason)
                    .map_err(text)?;
            }
            Ok(format!("maintenance on for {} {until}", servers.join(", ")))
        }
        OpCmd::MaintenanceOff { servers } => {
            let mut ended = 0;
            if servers.is_empty() {
                ended += eng.maintenance_off(None, "the whole fleet").map_err(text)?;
            }
            for name in &servers {
                let s = eng.server(name).map_err(text)?;
                ended += eng.maintenance_off(Some(s.id), name).map_err(text)?;
            }
            let who = if servers.is_empty() {
                "the whole fleet".to_string()
            } else {
                servers.join(", ")
            };
            Ok(format!(
                "maintenance off for {who} ({ended} window{} ended)",
                if ended == 1 { "" } else { "s" }
            ))
        }
        OpCmd::MaintenanceList => {
            let rows = eng.active_maintenance().map_err(text)?;
            if rows.is_empty() {
                return Ok("no manual maintenance window in force (m starts one)".into());
            }
            let list: Vec<String> = rows
                .iter()
                .map(|m| {
                    format!(
                        "{} until {}{}",
                        m.server.as_deref().unwrap_or("(fleet)"),
                        m.ends_at.map(at).unwrap_or_else(|| "off".into()),
                        if m.reason.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", m.reason)
                        }
                    )
                })
                .collect();
            Ok(format!("maintenance: {}", list.join(" · ")))
        }
        OpCmd::Policy {
            server,
            recovery,
            interval_ms,
        } => {
            let s = eng.server(&server).map_err(text)?;
            let mut p = eng.health_policy(s.id).map_err(text)?;
            if let Some(r) = recovery {
                p.recovery = r;
            }
            if let Some(i) = interval_ms {
                p.interval_ms = i;
            }
            eng.set_health_policy(&server, &p).map_err(text)?;
            Ok(format!(
                "{server}: recovery {}, interval {}",
                p.recovery.as_str(),
                p.interval_ms
                    .map(ptui_types::time::human_ms)
                    .unwrap_or_else(|| "default".into())
            ))
        }
        OpCmd::Rollback { app, server } => {
            let job = eng
                .start_rollback(&app, &server)
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "job #{} rolls {app} on {server} back to its previous deployment (Jobs: 3)",
                job.id
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_run_the_cli_engine_methods_and_are_audited() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let eng = Engine::open(ptui_types::config::Config::new(
            Some(tmp.path().join("state.db")),
            Vec::new(),
        ))
        .expect("engine");
        eng.add_server(&ptui_types::server::ServerSpec {
            name: "web1".into(),
            host: "127.0.0.1".into(),
            port: 22,
            user: "root".into(),
            ..Default::default()
        })
        .expect("add");
        let on = OpCmd::MaintenanceOn {
            servers: vec!["web1".into()],
            ends_at: Some(ptui_types::time::now_ms() + 3_600_000),
            reason: "kernel".into(),
        };
        assert!(
            perform(&eng, on)
                .expect("on")
                .starts_with("maintenance on for web1 until")
        );
        let list = perform(&eng, OpCmd::MaintenanceList).expect("list");
        assert!(
            list.contains("web1 until") && list.contains("(kernel)"),
            "{list}"
        );
        let off = perform(
            &eng,
            OpCmd::MaintenanceOff {
                servers: vec!["web1".into()],
            },
        );
        assert_eq!(
            off.as_deref(),
            Ok("maintenance off for web1 (1 window ended)")
        );
        let p = OpCmd::Policy {
            server: "web1".into(),
            recovery: Some(RecoveryPolicy::Auto),
            interval_ms: Some(Some(30_000)),
        };
        assert_eq!(
            perform(&eng, p).as_deref(),
            Ok("web1: recovery auto, interval 30.0s")
        );
        let bad = OpCmd::MaintenanceOff {
            servers: vec!["nope".into()],
        };
        assert!(perform(&eng, bad).is_err(), "an unknown server is an error");
        // Editing keeps the name and status, changes the address, and is audited.
        let edited = eng
            .edit_server(
                "web1",
                &ptui_types::server::ServerSpec {
                    name: "ignored".into(),
                    host: "10.9.9.9".into(),
                    port: 2222,
                    user: "deploy".into(),
                    tags: vec!["web".into()],
                    ..Default::default()
                },
            )
            .expect("edit");
        assert_eq!(
            (edited.name.as_str(), edited.address()),
            ("web1", "deploy@10.9.9.9:2222".to_string())
        );
        let audit = eng.audit_entries(None, 20).expect("audit");
        let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
        for want in [
            "maintenance.on",
            "maintenance.off",
            "server.policy",
            "server.edit",
        ] {
            assert!(actions.contains(&want), "{want}: {actions:?}");
        }
        let policy = audit
            .iter()
            .find(|a| a.action == "server.policy")
            .expect("policy row");
        assert_eq!(policy.details, "recovery=auto base=- interval=30.0s");
    }

    #[test]
    fn the_last_samples_and_uptime_are_read_at_start() {
        use ptui_types::health::{AppHealth, IncidentKind, Sample};
        let tmp = tempfile::tempdir().expect("tempdir");
        let eng = Engine::open(ptui_types::config::Config::new(
            Some(tmp.path().join("state.db")),
            Vec::new(),
        ))
        .expect("engine");
        let s = eng
            .add_server(&ptui_types::server::ServerSpec {
                name: "web1".into(),
                host: "127.0.0.1".into(),
                port: 22,
                user: "root".into(),
                ..Default::default()
            })
            .expect("add");
        let now = ptui_types::time::now_ms();
        let samples: Vec<Sample> = (0..20)
            .map(|i| {
                let mut x =
                    Sample::unreachable(s.id, "web1", IncidentKind::ServerUnreachable, "x".into());
                x.ts = now - (20 - i) * 1000;
                if i % 10 != 0 {
                    x.ok = true;
                    x.failure = None;
                    x.latency_ms = 10 + i as u64;
                    x.mem_pct = Some(40.0);
                    x.apps = vec![AppHealth {
                        app_id: "nginx".into(),
                        ok: i != 5,
                        detail: String::new(),
                    }];
                }
                x
            })
            .collect();
        eng.record_samples(&samples).expect("record");
        let app = crate::app::App::with_engine(crate::theme::dark(), eng.clone());
        let h = &app.fleet.health["web1"];
        assert_eq!(
            h.history.len(),
            15,
            "the last 16 checks at start, one failed (no latency)"
        );
        let last = h.last.as_ref().expect("last");
        assert_eq!((last.latency_ms, last.mem_pct), (Some(29), Some(40)));
        let page = eng.health_page("web1").expect("page");
        assert_eq!((page.uptime_24h.ok, page.uptime_24h.total), (18, 20));
        assert_eq!(page.apps.len(), 1);
        assert_eq!((page.apps[0].1.ok, page.apps[0].1.total), (17, 18));
        assert_eq!(page.last.expect("last").latency_ms, 29);
    }
}
