//! What opens over a screen: the detail page and forms (pages), dialogs (modals) and the
//! one-line prompt.

use super::form::Form;
use super::palette::Palette;
use super::work::Cmd;
use ptui_engine::{HostKeyScan, InstallRequest};
use ptui_types::job::Job;
use ptui_types::records::{Deployment, IncidentRow, ServerEvent};
use ptui_types::server::{Server, ServerStatus};
use std::collections::VecDeque;
use tui_input::Input;

/// A server's detail page.
#[derive(Debug, Clone)]
pub struct Detail {
    pub server: Server,
    pub events: Vec<ServerEvent>,
    pub deployments: Vec<Deployment>,
    pub jobs: Vec<Job>,
    pub incidents: Vec<IncidentRow>,
    pub scroll: u16,
    /// The last sample and uptime (None until read).
    pub health: Option<ptui_engine::queries::HealthPage>,
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
            health: None,
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
            health: None,
        }
    }
}

#[derive(Debug)]
pub enum Page {
    Detail(Box<Detail>),
    Form(Box<Form>),
    Incident(Box<crate::incidents::IncidentPage>),
    /// The progress of the last fan-out started here (its state is `App::fanout`).
    Fanout,
}

#[derive(Debug)]
pub enum Modal {
    Confirm {
        title: String,
        text: String,
        then: Box<Confirmed>,
    },
    /// Quitting with jobs running: leave them running on their servers, or cancel them.
    QuitJobs {
        running: usize,
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
    pub fan: crate::work::FanOpts,
}

/// What a confirmation leads to.
/// What quitting does with the jobs this dashboard follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnQuit {
    /// They go on on their servers, detached; any process adopts them later.
    #[default]
    LeaveRunning,
    /// They are cancelled (their remote process groups killed) before the dashboard exits.
    Cancel,
}

#[derive(Debug)]
pub enum Confirmed {
    Cmd(Cmd),
    /// Close the form page, dropping what was typed.
    DiscardForm,
}

/// A one-line text prompt: a list filter, the log search, or a text an action takes.
#[derive(Debug)]
pub struct Prompt {
    pub input: Input,
    pub label: &'static str,
    pub then: PromptFor,
}

/// What a prompt's text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptFor {
    /// The screen's filter or the log search (applied live).
    Filter,
    /// Acknowledge this incident, the text its optional note.
    Ack(i64),
    /// A note on this incident.
    Note(i64),
    /// A fan-out option of the review: 0 jobs at once, 1 batch, 2 failure budget.
    Fan(u8),
}
