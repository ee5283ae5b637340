//! The Jobs screen's and the log pane's keys: selection, filter, cancel, re-run, export, the
//! log's scrolling, follow, wrap and search.

use super::app::App;
use super::keymap::Action;
use super::update::{PAGE, nav};

impl App {
    pub(super) fn jobs_key(&mut self, a: Action) {
        let len = self.jobs.shown().len();
        if nav(&mut self.jobs.sel, len, a, PAGE) {
            self.open_selected_log();
            return;
        }
        match a {
            Action::Enter if self.jobs.selected().is_some() => self.jobs.focus_log = true,
            Action::Filter => self.open_prompt(
                "filter jobs (status:X server:X app:X)",
                self.jobs.filter.clone(),
            ),
            Action::Cancel => self.ask_cancel(),
            Action::Rerun => self.rerun_selected(),
            Action::Export => self.export_selected_log(),
            Action::FanoutView => self.open_fanout(),
            Action::Back => {
                self.jobs.filter.clear();
                self.select_job(None);
            }
            _ => {}
        }
    }

    pub(super) fn log_key(&mut self, a: Action) {
        // A new search starts empty (typing does not append to the last query; n/N still
        // step through the last one).
        if a == Action::Filter {
            self.open_prompt("search log", String::new());
            return;
        }
        match a {
            Action::Rerun => return self.rerun_selected(),
            Action::Export => return self.export_selected_log(),
            _ => {}
        }
        if self.eng.is_none() {
            if a == Action::Back {
                self.jobs.focus_log = false;
            }
            return;
        }
        let log = &mut self.jobs.log;
        let page = log.rows.get().max(2) as i64 - 1;
        match a {
            Action::Down => log.scroll(1),
            Action::Up => log.scroll(-1),
            Action::PageDown => log.scroll(page),
            Action::PageUp => log.scroll(-page),
            Action::Top => log.to_top(),
            Action::Bottom => log.to_bottom(),
            Action::Follow => {
                if log.follow {
                    log.scroll(-1);
                    log.scroll(1);
                } else {
                    log.to_bottom();
                }
            }
            Action::Wrap => log.wrap = !log.wrap,
            Action::Timestamps => log.timestamps = !log.timestamps,
            Action::NextMatch | Action::PrevMatch => {
                if log.search.is_none() {
                    self.error("no search yet: press / first");
                } else {
                    log.find(a == Action::NextMatch, "no more matches".into());
                }
            }
            Action::Cancel => self.ask_cancel(),
            Action::Back => self.jobs.focus_log = false,
            _ => {}
        }
    }
}
