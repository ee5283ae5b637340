//! The install review's plan: the same `ChangePlan` as `install|upgrade|uninstall --plan`
//! (servers, those skipped and why, batches, the script's version and checksum, each server's
//! change), computed off the loop when the review opens and again when a fan-out option changes.

use super::app::{App, Cmd, Page};
use super::form::FormKind;
use super::work::FanOpts;
use ptui_engine::InstallRequest;
use ptui_engine::change_plan::ChangePlan;
use ptui_engine::jobs::fanout::{FanoutRequest, Targets};

/// The fan-out an install request with these options is (the plan and the run use the same).
pub fn fanout_request(req: &InstallRequest, fan: &FanOpts) -> FanoutRequest {
    FanoutRequest {
        app: req.app.clone(),
        targets: Targets::Names(req.servers.clone()),
        inputs: req.inputs.clone(),
        action: req.action,
        concurrency: fan.concurrency,
        batch: fan.batch,
        max_fail: fan.max_fail,
    }
}

impl App {
    /// Asks for the plan of the install on review (nothing without an engine).
    pub(super) fn request_plan(&mut self) {
        let Some(Page::Form(f)) = &mut self.page else {
            return;
        };
        let FormKind::Install { app, servers } = &f.kind else {
            return;
        };
        if !f.review || self.eng.is_none() {
            return;
        }
        let req = InstallRequest {
            app: app.clone(),
            servers: servers.clone(),
            inputs: f.values(),
            action: f.action,
        };
        f.plan = None;
        self.cmds
            .push(Cmd::Plan(Box::new(fanout_request(&req, &f.fan))));
    }

    /// The plan arrived: shown if the review of that app is still open.
    pub(super) fn on_planned(&mut self, app: &str, r: Result<ChangePlan, String>) {
        if let Some(Page::Form(f)) = &mut self.page
            && f.review
            && matches!(&f.kind, FormKind::Install { app: a, .. } if a == app)
        {
            f.plan = Some(r);
        }
    }
}
