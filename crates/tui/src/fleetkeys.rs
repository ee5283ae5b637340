//! The Fleet screen's and the server detail page's keys: selection, marks, sorting, the
//! server operations they open (add, edit, trust, status, remove) and the detail page itself.

use super::app::{App, Cmd, Confirmed, Detail, Modal, Page};
use super::form::{Form, FormKind, server_manifest};
use super::keymap::Action;
use super::update::{LIFECYCLE, PAGE, nav, step};
use ptui_types::server::ServerStatus;

impl App {
    pub(super) fn fleet_key(&mut self, a: Action) {
        let len = self.fleet.order.len();
        if nav(&mut self.fleet.sel, len, a, PAGE) {
            return;
        }
        match a {
            Action::Enter => self.open_detail(),
            Action::Mark => {
                if let Some(name) = self.fleet.selected().map(|s| s.name.clone())
                    && !self.fleet.marks.remove(&name)
                {
                    self.fleet.marks.insert(name);
                }
                step(&mut self.fleet.sel, len, 1);
            }
            Action::Filter => self.open_prompt("filter servers", self.fleet.filter.clone()),
            Action::Sort => {
                self.fleet.sort = (self.fleet.sort + 1) % super::app::FLEET_SORTS.len();
                self.fleet.reorder();
            }
            Action::SortReverse => {
                self.fleet.rev = !self.fleet.rev;
                self.fleet.reorder();
            }
            Action::AddServer => self.open_server_form(),
            Action::Edit => self.open_edit_server(),
            Action::CheckNow => self.check_now(self.fleet.targets()),
            Action::Shell => self.ask_shell(),
            Action::Import => self.offer_ssh_config_import(false),
            Action::Maintenance => self.ask_maintenance(),
            Action::Policy => self.ask_policy(),
            Action::Trust => self.trust_selected(),
            Action::SetStatus => self.open_picker(self.fleet.targets()),
            Action::Install => self.goto(2),
            Action::Remove => {
                if let Some(s) = self.fleet.selected() {
                    let name = s.name.clone();
                    self.modal = Some(Modal::Confirm {
                        title: "Remove server?".into(),
                        text: format!("Remove {name} from the inventory? Its job history stays."),
                        then: Box::new(Confirmed::Cmd(Cmd::RemoveServer(name))),
                    });
                }
            }
            Action::Back => {
                if !self.fleet.filter.is_empty() {
                    self.fleet.filter.clear();
                    self.fleet.reorder();
                } else {
                    self.fleet.marks.clear();
                }
            }
            _ => {}
        }
    }

    fn trust_selected(&mut self) {
        let name = match &self.page {
            Some(Page::Detail(d)) => Some(d.server.name.clone()),
            _ => self.fleet.selected().map(|s| s.name.clone()),
        };
        if let Some(name) = name {
            self.info(format!("connecting to {name} to read its host key…"));
            self.cmds.push(Cmd::Scan(name));
        }
    }

    pub fn open_server_form(&mut self) {
        self.page = Some(Page::Form(Box::new(Form::new(
            FormKind::AddServer,
            "Add server".into(),
            server_manifest(),
        ))));
    }

    pub(super) fn open_picker(&mut self, targets: Vec<String>) {
        if targets.is_empty() {
            self.error("no server selected");
            return;
        }
        let current: Vec<ServerStatus> = targets
            .iter()
            .filter_map(|t| {
                self.fleet
                    .servers
                    .iter()
                    .find(|s| &s.name == t)
                    .map(|s| s.status)
            })
            .collect();
        let items: Vec<ServerStatus> = LIFECYCLE
            .into_iter()
            .filter(|to| current.iter().all(|c| c.can_transition_to(*to)))
            .collect();
        if items.is_empty() {
            self.error("no status change is allowed for the selection");
            return;
        }
        self.modal = Some(Modal::Picker {
            targets,
            items,
            sel: 0,
        });
    }

    fn open_detail(&mut self) {
        let Some(server) = self.fleet.selected().cloned() else {
            return;
        };
        // The page shows the server at once; its history arrives from the engine.
        if self.eng.is_some() {
            self.cmds.push(Cmd::Detail(server.name.clone()));
        }
        self.page = Some(Page::Detail(Box::new(Detail::empty(server))));
    }

    pub(super) fn detail_key(&mut self, a: Action) {
        let Some(Page::Detail(d)) = &mut self.page else {
            return;
        };
        match a {
            Action::Down => d.scroll = d.scroll.saturating_add(1),
            Action::Up => d.scroll = d.scroll.saturating_sub(1),
            Action::Back => self.page = None,
            Action::Trust => self.trust_selected(),
            Action::Maintenance => self.ask_maintenance(),
            Action::Policy => self.ask_policy(),
            Action::Edit => self.open_edit_server(),
            Action::CheckNow => {
                let n = vec![d.server.name.clone()];
                self.check_now(n);
            }
            Action::Shell => self.ask_shell(),
            Action::SetStatus => {
                let t = vec![d.server.name.clone()];
                self.open_picker(t);
            }
            Action::Install => {
                let name = d.server.name.clone();
                self.fleet.marks.clear();
                if let Some(i) = self
                    .fleet
                    .order
                    .iter()
                    .position(|i| self.fleet.servers[*i].name == name)
                {
                    self.fleet.sel = i;
                }
                self.goto(2);
            }
            _ => {}
        }
    }
}
