//! Incidents: the detail page (timeline, recovery, acknowledgement), acknowledging and notes.
//! The engine calls are `Cmd`s (off the loop); the CLI's `incidents ack|note` call the same
//! engine methods, so the audit rows match.

use super::app::{App, Cmd, Page};
use super::keymap::Action;
use super::overlays::PromptFor;
use ptui_engine::queries::IncidentDetail;
use ptui_types::records::IncidentRow;
use tui_input::Input;

/// An incident's page: the list row at once, the detail when the engine answers.
#[derive(Debug, Clone)]
pub struct IncidentPage {
    pub row: IncidentRow,
    pub detail: Option<IncidentDetail>,
    /// The selected timeline entry.
    pub sel: usize,
}

/// Why recovery is where it is, in words: the last timeline entry says what stopped or
/// postponed it; the state and attempts say the rest.
pub fn recovery_words(row: &IncidentRow, now_ms: i64) -> String {
    if row.resolved_at.is_some() {
        return match row.attempts {
            0 => "-".into(),
            1 => "1 attempt".into(),
            n => format!("{n} attempts"),
        };
    }
    match row.state.as_str() {
        "recovering" => format!("attempt {}", row.attempts.max(1)),
        "failed" => format!("stopped ({})", row.attempts),
        _ => match row.next_attempt_at {
            Some(t) if t > now_ms => format!("next in {}", super::views::age(t, now_ms)),
            Some(_) => "due".into(),
            None if row.attempts > 0 => format!("stopped ({})", row.attempts),
            None => "notify".into(),
        },
    }
}

impl App {
    /// The incident selected on the Incidents screen.
    fn selected_incident(&self) -> Option<IncidentRow> {
        let shown = self.incidents.shown();
        let sel = self.incidents.sel.min(shown.len().saturating_sub(1));
        shown.get(sel).map(|i| (*i).clone())
    }

    /// The incident on screen: the detail page's, else the list's selection.
    fn current_incident(&self) -> Option<IncidentRow> {
        match &self.page {
            Some(Page::Incident(p)) => Some(p.row.clone()),
            _ => self.selected_incident(),
        }
    }

    /// Keys of the Incidents list beyond moving and filtering.
    pub(super) fn incidents_key(&mut self, a: Action) {
        match a {
            Action::Enter => {
                if let Some(row) = self.selected_incident() {
                    self.open_incident(row);
                }
            }
            Action::Ack | Action::Note => self.ask_incident_text(a),
            _ => {}
        }
    }

    pub fn open_incident(&mut self, row: IncidentRow) {
        if self.eng.is_some() {
            self.cmds.push(Cmd::IncidentDetail(row.id));
        }
        self.page = Some(Page::Incident(Box::new(IncidentPage {
            row,
            detail: None,
            sel: 0,
        })));
    }

    pub(super) fn incident_detail_key(&mut self, a: Action) {
        let Some(Page::Incident(p)) = &mut self.page else {
            return;
        };
        let len = p.detail.as_ref().map_or(0, |d| d.timeline.len());
        match a {
            Action::Down => super::update::step(&mut p.sel, len, 1),
            Action::Up => super::update::step(&mut p.sel, len, -1),
            Action::Back => self.page = None,
            Action::Enter => {
                let job = p
                    .detail
                    .as_ref()
                    .and_then(|d| d.timeline.get(p.sel))
                    .and_then(|e| e.job_id);
                match job {
                    Some(id) => self.open_job_log(id),
                    None => self.error("this timeline entry has no job (j/k to one that has)"),
                }
            }
            Action::Ack | Action::Note => self.ask_incident_text(a),
            _ => {}
        }
    }

    /// Opens the Jobs screen on a job's log (the filter is cleared so the job shows).
    pub fn open_job_log(&mut self, id: i64) {
        self.goto(3);
        self.jobs.filter.clear();
        match self.jobs.shown().iter().position(|j| j.id == id) {
            Some(pos) => {
                self.jobs.sel = pos;
                self.open_selected_log();
                self.jobs.focus_log = true;
            }
            None => self.error(format!(
                "job #{id} is not among the last {} jobs; `provision-tui jobs logs {id}` shows it",
                super::app::JOB_LIMIT
            )),
        }
    }

    /// `a` or `n`: a prompt for the (optional) note, then the engine call.
    fn ask_incident_text(&mut self, a: Action) {
        let Some(row) = self.current_incident() else {
            self.error("no incident selected");
            return;
        };
        let (label, then) = if a == Action::Ack {
            if row.resolved_at.is_some() {
                self.error(format!(
                    "incident #{} is already resolved; n adds a note",
                    row.id
                ));
                return;
            }
            (
                "acknowledge: note (optional), Enter",
                PromptFor::Ack(row.id),
            )
        } else {
            ("note for the incident's timeline", PromptFor::Note(row.id))
        };
        self.prompt = Some(super::overlays::Prompt {
            input: Input::default(),
            label,
            then,
        });
    }

    /// Keys of a prompt that is not a filter: Enter runs its action, Esc drops it.
    pub(super) fn action_prompt_key(&mut self, a: Action) {
        use crossterm::event::Event as TermEvent;
        use tui_input::backend::crossterm::EventHandler;
        let Some(p) = &mut self.prompt else { return };
        match a {
            Action::Input(ev) => {
                p.input.handle_event(&TermEvent::Key(ev));
            }
            Action::Submit => {
                let text = p.input.value().trim().to_string();
                let then = p.then;
                self.prompt = None;
                match then {
                    PromptFor::Ack(id) => {
                        self.info(format!("acknowledging incident #{id}…"));
                        self.cmds
                            .push(Cmd::AckIncident(id, (!text.is_empty()).then_some(text)));
                    }
                    PromptFor::Note(_) if text.is_empty() => {
                        self.error("the note is empty: nothing recorded")
                    }
                    PromptFor::Note(id) => self.cmds.push(Cmd::NoteIncident(id, text)),
                    PromptFor::Fan(which) => self.set_fan_option(which, &text),
                    PromptFor::Filter => {}
                }
            }
            Action::Back => self.prompt = None,
            _ => {}
        }
    }

    /// An acknowledgement or note was recorded (or refused): say so and re-read.
    pub fn on_incident_updated(&mut self, id: i64, what: &str, r: Result<(), String>) {
        match r {
            Ok(()) => {
                self.info(format!("incident #{id}: {what}"));
                self.reload_incidents();
                if matches!(&self.page, Some(Page::Incident(p)) if p.row.id == id) {
                    self.cmds.push(Cmd::IncidentDetail(id));
                }
            }
            Err(e) => self.error(e),
        }
    }

    pub fn on_incident_detail(&mut self, id: i64, r: Result<IncidentDetail, String>) {
        match r {
            Ok(d) => {
                if let Some(Page::Incident(p)) = &mut self.page
                    && p.row.id == id
                {
                    p.row.acked_by = d.acked_by.clone();
                    p.row.state = d.incident.state.as_str().to_string();
                    p.row.resolved_at = d.incident.resolved_at;
                    p.row.attempts = d.incident.attempts;
                    p.row.next_attempt_at = d.incident.next_attempt_at;
                    p.sel = p.sel.min(d.timeline.len().saturating_sub(1));
                    p.detail = Some(d);
                }
            }
            Err(e) => self.error(format!("reading incident #{id}: {e}")),
        }
    }

    /// Open incidents per server (the Fleet's marker).
    pub fn open_incidents_of(&self, server: &str) -> usize {
        self.incidents
            .items
            .iter()
            .filter(|i| i.resolved_at.is_none() && i.server == server)
            .count()
    }
}
