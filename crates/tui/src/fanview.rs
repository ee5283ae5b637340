//! The fan-out progress view: one row per server of the last fan-out started here (state,
//! elapsed time, last log line, exit kind); Enter opens that server's job log. Fed by the
//! engine's fan-out and job events, so it costs no reads.

use super::app::{App, Page};
use super::keymap::Action;
use ptui_engine::jobs::fanout::FanoutEvent;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct FanoutView {
    pub id: u64,
    pub app: String,
    pub hosts: Vec<String>,
    /// host → its job.
    pub jobs: HashMap<String, i64>,
    /// host → why it never started.
    pub skipped: HashMap<String, String>,
    /// job → its last log line (sanitised when drawn).
    pub last: HashMap<i64, String>,
    pub done: bool,
    pub sel: usize,
}

/// Fan-out events kept for a fan-out not tracked yet: its first jobs launch before the
/// start's answer reaches the loop.
const EARLY_MAX: usize = 1000;

impl App {
    /// A fan-out started here: its view begins with every host waiting.
    pub fn track_fanout(&mut self, id: u64, app: &str, hosts: &[String]) {
        self.fanout = Some(FanoutView {
            id,
            app: app.to_string(),
            hosts: hosts.to_vec(),
            ..Default::default()
        });
        for ev in std::mem::take(&mut self.fanout_early) {
            self.fanout_progress(&ev);
        }
    }

    /// Fan-out events of the tracked fan-out.
    pub(super) fn fanout_progress(&mut self, ev: &FanoutEvent) {
        let id = match ev {
            FanoutEvent::Started { fanout_id, .. }
            | FanoutEvent::BatchStarted { fanout_id, .. }
            | FanoutEvent::JobLaunched { fanout_id, .. }
            | FanoutEvent::Skipped { fanout_id, .. }
            | FanoutEvent::Finished { fanout_id, .. } => *fanout_id,
        };
        if self.fanout.as_ref().is_none_or(|v| v.id != id) {
            if self.fanout_early.len() < EARLY_MAX {
                self.fanout_early.push(ev.clone());
            }
            return;
        }
        let Some(v) = &mut self.fanout else { return };
        match ev {
            FanoutEvent::JobLaunched {
                fanout_id,
                server,
                job_id,
            } if *fanout_id == v.id => {
                v.jobs.insert(server.clone(), *job_id);
            }
            FanoutEvent::Skipped {
                fanout_id,
                servers,
                reason,
            } if *fanout_id == v.id => {
                for s in servers {
                    v.skipped.insert(s.clone(), reason.clone());
                }
            }
            FanoutEvent::Finished { fanout_id, .. } if *fanout_id == v.id => v.done = true,
            _ => {}
        }
    }

    /// A job's new log lines: the view keeps the last one of its jobs.
    pub(super) fn fanout_log(&mut self, job_id: i64, last: Option<&str>) -> bool {
        let Some(v) = &mut self.fanout else {
            return false;
        };
        match last {
            Some(l) if v.jobs.values().any(|j| *j == job_id) => {
                v.last.insert(job_id, l.to_string());
                true
            }
            _ => false,
        }
    }

    /// `F` on Jobs, `:fanout`: the progress view of the last fan-out started here.
    pub fn open_fanout(&mut self) {
        if self.fanout.is_none() {
            return self.error("no fan-out started from this dashboard yet");
        }
        self.page = Some(Page::Fanout);
    }

    pub(super) fn fanout_key(&mut self, a: Action) {
        let Some(v) = &mut self.fanout else {
            self.page = None;
            return;
        };
        let len = v.hosts.len();
        match a {
            Action::Down => super::update::step(&mut v.sel, len, 1),
            Action::Up => super::update::step(&mut v.sel, len, -1),
            Action::Back => self.page = None,
            Action::Enter => {
                let job = v.hosts.get(v.sel).and_then(|h| v.jobs.get(h)).copied();
                match job {
                    Some(id) => {
                        self.page = None;
                        self.open_job_log(id);
                    }
                    None => self.error("this server has no job (yet)"),
                }
            }
            _ => {}
        }
    }
}
