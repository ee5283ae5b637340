//! Forms generated from a manifest's inputs: install forms and the add-server form.
//! Pure state: no terminal, no engine.

use crossterm::event::{Event as TermEvent, KeyEvent};
use ptui_catalog::manifest::{InputSpec, InputType, Manifest, Scalar, Validation};
use ptui_catalog::{check_value, describe_rules, visibility};
use std::collections::BTreeMap;
use tui_input::backend::crossterm::EventHandler;
use tui_input::{Input, InputRequest};

/// What submitting the form does.
#[derive(Debug, Clone, PartialEq)]
pub enum FormKind {
    Install {
        app: String,
        servers: Vec<String>,
    },
    AddServer,
    /// Editing this server (the add-server fields, prefilled, without the name).
    EditServer(String),
    /// The sudo password of a `--prompt` server (a one-field form in a dialog).
    SudoPassword {
        server: String,
    },
}

#[derive(Debug, Clone)]
pub struct Field {
    pub spec: InputSpec,
    pub input: Input,
    /// Index into the allowed values (select).
    pub choice: usize,
    pub on: bool,
    /// Shown errors only for fields the user has left or after a submit attempt.
    pub touched: bool,
}

impl Field {
    fn new(spec: InputSpec) -> Self {
        let default = spec
            .default
            .as_ref()
            .map(Scalar::as_text)
            .unwrap_or_default();
        let choice = spec
            .allowed_values()
            .iter()
            .position(|v| *v == default)
            .unwrap_or(0);
        let on = ptui_catalog::validate::normalize_bool(&default) == Some("true");
        Field {
            input: Input::new(default),
            choice,
            on,
            touched: false,
            spec,
        }
    }

    pub fn value(&self) -> String {
        match self.spec.kind {
            InputType::Boolean => self.on.to_string(),
            InputType::Select => self
                .spec
                .allowed_values()
                .get(self.choice)
                .cloned()
                .unwrap_or_default(),
            _ => self.input.value().to_string(),
        }
    }

    /// What the screen shows: secrets masked unless revealed.
    pub fn shown(&self, reveal: bool) -> String {
        let v = self.value();
        if self.spec.is_sensitive() && !reveal {
            "*".repeat(v.chars().count())
        } else {
            v
        }
    }

    pub fn is_text(&self) -> bool {
        !matches!(self.spec.kind, InputType::Boolean | InputType::Select)
    }

    /// The inline error, with the manifest's rule in words.
    pub fn error(&self) -> Option<String> {
        let v = self.value();
        if v.is_empty() {
            return self.spec.required.then(|| "required".to_string());
        }
        check_value(&self.spec, &v).err().map(|m| {
            // A pattern is not words: the field's description says what is expected, and
            // the regex is not repeated as a rule.
            let pattern = m.starts_with("must match the pattern");
            let m = match (&self.spec.description, pattern) {
                (Some(d), true) if !d.trim().is_empty() => {
                    format!(
                        "not in the expected form: {}",
                        d.trim().trim_end_matches('.')
                    )
                }
                _ => m,
            };
            // Add the manifest's rule in words unless the message already says it.
            let rules: Vec<String> = describe_rules(&self.spec)
                .into_iter()
                .filter(|r| !m.contains(r.as_str()))
                .filter(|r| !(pattern && r.starts_with("matches ")))
                .collect();
            if rules.is_empty() {
                m
            } else {
                format!("{m} (rule: {})", rules.join("; "))
            }
        })
    }

    /// Integer and port fields refuse anything but digits (and a leading minus for integers).
    fn accepts(&self, c: char) -> bool {
        match self.spec.kind {
            InputType::Port => c.is_ascii_digit(),
            InputType::Integer => {
                c.is_ascii_digit()
                    || (c == '-'
                        && self.input.cursor() == 0
                        && !self.input.value().starts_with('-'))
            }
            _ => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Form {
    pub kind: FormKind,
    pub title: String,
    pub manifest: Manifest,
    pub fields: Vec<Field>,
    /// Index into `fields` (always a visible one).
    pub focus: usize,
    pub reveal: bool,
    pub review: bool,
    pub submitted: bool,
    /// A refusal from the engine (e.g. server on hold), shown above the fields.
    pub message: Option<String>,
    /// What the jobs do: install (the default), uninstall or upgrade.
    pub action: ptui_types::job::JobAction,
    /// A fan-out's options, set on the review step.
    pub fan: crate::work::FanOpts,
    /// The operator's public keys (label, key) offered to a public-key field; Ctrl-o cycles.
    pub pubkeys: Vec<(String, String)>,
    pub pubkey_at: usize,
    /// The review's plan (`Engine::plan_fanout`, as `--plan` prints it): None while it is
    /// computed, the refusal's words if the run would be refused.
    pub plan: Option<Result<ptui_engine::change_plan::ChangePlan, String>>,
}

impl Form {
    pub fn new(kind: FormKind, title: String, manifest: Manifest) -> Self {
        let fields: Vec<Field> = manifest.inputs.iter().cloned().map(Field::new).collect();
        let mut f = Form {
            kind,
            title,
            manifest,
            fields,
            focus: 0,
            reveal: false,
            review: false,
            submitted: false,
            message: None,
            action: ptui_types::job::JobAction::Install,
            fan: Default::default(),
            pubkeys: Vec::new(),
            pubkey_at: 0,
            plan: None,
        };
        f.focus = f.visible().first().copied().unwrap_or(0);
        f
    }

    /// The index of the field that takes an SSH public key (`ssh_public_key`, `..._pubkey`).
    pub fn pubkey_field(&self) -> Option<usize> {
        self.fields.iter().position(|f| {
            f.is_text() && (f.spec.name.ends_with("public_key") || f.spec.name.ends_with("pubkey"))
        })
    }

    /// Puts the next offered public key into the public-key field; its label, if any.
    pub fn next_pubkey(&mut self) -> Option<String> {
        let i = self.pubkey_field()?;
        if self.pubkeys.is_empty() {
            return None;
        }
        let (label, key) = self.pubkeys[self.pubkey_at % self.pubkeys.len()].clone();
        self.pubkey_at = (self.pubkey_at + 1) % self.pubkeys.len();
        self.fields[i].input = Input::new(key);
        self.fields[i].touched = true;
        Some(label)
    }

    /// Whether anything was typed or chosen (Esc then asks before throwing it away).
    pub fn changed(&self) -> bool {
        self.fields.iter().any(|f| {
            let default = Field::new(f.spec.clone());
            f.value() != default.value()
        })
    }

    /// Fills fields from recorded inputs (a job's or a deployment's). Masked secrets (`***`)
    /// stay empty: they are asked again.
    pub fn prefill(&mut self, inputs: &serde_json::Value) {
        let Some(map) = inputs.as_object() else {
            return;
        };
        for f in &mut self.fields {
            let Some(v) = map.get(&f.spec.name) else {
                continue;
            };
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            if text == "***" {
                f.input = Input::default();
                continue;
            }
            match f.spec.kind {
                InputType::Boolean => {
                    f.on = ptui_catalog::validate::normalize_bool(&text) == Some("true")
                }
                InputType::Select => {
                    if let Some(i) = f.spec.allowed_values().iter().position(|a| *a == text) {
                        f.choice = i;
                    }
                }
                _ => f.input = Input::new(text),
            }
        }
    }

    pub fn raw_values(&self) -> BTreeMap<String, String> {
        self.fields
            .iter()
            .map(|f| (f.spec.name.clone(), f.value()))
            .collect()
    }

    /// Indices of the fields `visible_if` shows right now.
    pub fn visible(&self) -> Vec<usize> {
        let vis = visibility(&self.manifest, &self.raw_values());
        (0..self.fields.len())
            .filter(|i| vis.get(&self.fields[*i].spec.name).copied().unwrap_or(true))
            .collect()
    }

    pub fn focused(&self) -> Option<&Field> {
        self.fields.get(self.focus)
    }

    fn step(&mut self, forward: bool) {
        if let Some(f) = self.fields.get_mut(self.focus) {
            f.touched = true;
        }
        let vis = self.visible();
        if vis.is_empty() {
            return;
        }
        let pos = vis.iter().position(|i| *i == self.focus).unwrap_or(0);
        let next = if forward {
            (pos + 1) % vis.len()
        } else {
            (pos + vis.len() - 1) % vis.len()
        };
        self.focus = vis[next];
    }

    pub fn next(&mut self) {
        self.step(true)
    }

    pub fn prev(&mut self) {
        self.step(false)
    }

    pub fn is_last(&self) -> bool {
        self.visible().last() == Some(&self.focus)
    }

    /// Whether the focused field takes typed text (not a toggle or a select).
    pub fn focus_is_text(&self) -> bool {
        self.focused().is_none_or(Field::is_text)
    }

    /// Space on a toggle or select: flips it, or picks the next choice.
    pub fn toggle(&mut self) {
        self.change_choice(1);
    }

    /// ← / →: the previous or next choice on a toggle or select, the cursor in a text.
    pub fn left_right(&mut self, forward: bool) {
        if self.focus_is_text() {
            if let Some(f) = self.fields.get_mut(self.focus) {
                f.input.handle(if forward {
                    InputRequest::GoToNextChar
                } else {
                    InputRequest::GoToPrevChar
                });
            }
            return;
        }
        self.change_choice(if forward { 1 } else { -1 });
    }

    fn change_choice(&mut self, delta: i64) {
        self.message = None;
        let Some(f) = self.fields.get_mut(self.focus) else {
            return;
        };
        match f.spec.kind {
            InputType::Boolean => f.on = !f.on,
            InputType::Select => {
                let n = f.spec.allowed_values().len().max(1) as i64;
                f.choice = (f.choice as i64 + delta).rem_euclid(n) as usize;
            }
            _ => return,
        }
        self.refocus();
    }

    /// A key typed into the focused text field; other fields ignore typing.
    pub fn key(&mut self, ev: KeyEvent) {
        self.message = None;
        let Some(f) = self.fields.get_mut(self.focus) else {
            return;
        };
        if !f.is_text() {
            return;
        }
        if let Some(c) = ev.code.as_char()
            && !f.accepts(c)
        {
            return;
        }
        f.input.handle_event(&TermEvent::Key(ev));
        self.refocus();
    }

    /// Pasted text (bracketed paste) into the focused text field, line ends kept as `\n`
    /// (a PEM key, a certificate); characters the field refuses are dropped.
    pub fn paste(&mut self, text: &str) {
        self.message = None;
        let Some(f) = self.fields.get_mut(self.focus) else {
            return;
        };
        if !f.is_text() {
            return;
        }
        for c in text.replace("\r\n", "\n").replace('\r', "\n").chars() {
            if c == '\n' || f.accepts(c) {
                f.input.handle(InputRequest::InsertChar(c));
            }
        }
        self.refocus();
    }

    /// A field changed: hidden fields may appear, the focused one may hide.
    fn refocus(&mut self) {
        let vis = self.visible();
        if !vis.contains(&self.focus) {
            self.focus = vis.first().copied().unwrap_or(0);
        }
    }

    /// Errors of visible fields, by index.
    pub fn errors(&self) -> Vec<(usize, String)> {
        self.visible()
            .into_iter()
            .filter_map(|i| self.fields[i].error().map(|e| (i, e)))
            .collect()
    }

    /// Whether a field's error should show (typed in, left, or after a submit attempt).
    pub fn shows_error(&self, i: usize) -> bool {
        self.submitted
            || self
                .fields
                .get(i)
                .is_some_and(|f| f.touched || f.input.value() != default_text(&f.spec))
    }

    /// Moves to review if everything validates; otherwise marks every error visible.
    pub fn submit(&mut self) -> bool {
        self.submitted = true;
        let errs = self.errors();
        if let Some((i, _)) = errs.first() {
            self.focus = *i;
            self.message = Some(format!("{} field(s) need attention", errs.len()));
            return false;
        }
        self.review = true;
        true
    }

    /// Values to send: visible fields only, empty optional ones left out.
    pub fn values(&self) -> BTreeMap<String, String> {
        self.visible()
            .into_iter()
            .map(|i| &self.fields[i])
            .filter(|f| !f.value().is_empty() || f.spec.required)
            .map(|f| (f.spec.name.clone(), f.value()))
            .collect()
    }

    /// Review lines: (label, shown value); secrets always `***`.
    pub fn review_lines(&self) -> Vec<(String, String)> {
        self.visible()
            .into_iter()
            .map(|i| &self.fields[i])
            .map(|f| {
                let v = f.value();
                let shown = if f.spec.is_sensitive() && !v.is_empty() {
                    ptui_types::secret::MASK.to_string()
                } else if v.is_empty() {
                    "(empty)".to_string()
                } else {
                    v
                };
                (f.spec.label().to_string(), shown)
            })
            .collect()
    }
}

fn default_text(spec: &InputSpec) -> String {
    spec.default
        .as_ref()
        .map(Scalar::as_text)
        .unwrap_or_default()
}

fn input(name: &str, kind: InputType, label: &str, required: bool) -> InputSpec {
    InputSpec {
        name: name.into(),
        kind,
        label: Some(label.into()),
        description: None,
        required,
        default: None,
        validation: None,
        visible_if: None,
        sensitive: false,
    }
}

/// The add-server form, expressed as a manifest so it reuses the same widgets and rules.
pub fn server_manifest() -> Manifest {
    let mut name = input("name", InputType::String, "Name", true);
    name.validation = Some(Validation {
        pattern: Some("^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}$".into()),
        ..Default::default()
    });
    let host = input("host", InputType::String, "Host or IP", true);
    let mut port = input("port", InputType::Port, "SSH port", true);
    port.default = Some(Scalar::Int(22));
    let mut user = input("user", InputType::String, "User", true);
    user.default = Some(Scalar::Str("root".into()));
    let identity = input("identity", InputType::String, "Identity file", false);
    let jump = input("jump", InputType::String, "Jump host (server name)", false);
    let tags = input("tags", InputType::String, "Tags (comma separated)", false);
    // Only the processes serving a server's site run its jobs and checks.
    let mut site = input("site", InputType::String, "Site", true);
    site.default = Some(Scalar::Str(ptui_types::server::DEFAULT_SITE.into()));
    site.validation = Some(Validation {
        pattern: Some("^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}$".into()),
        ..Default::default()
    });
    form_manifest(
        "server",
        "Add server",
        vec![name, host, port, user, identity, jump, tags, site],
    )
}

/// The add-server fields without the name, prefilled from `s` (editing a server).
pub fn edit_server_manifest(s: &ptui_types::server::Server) -> Manifest {
    let mut m = server_manifest();
    m.inputs.retain(|i| i.name != "name");
    for i in &mut m.inputs {
        i.default = match i.name.as_str() {
            "host" => Some(Scalar::Str(s.host.clone())),
            "port" => Some(Scalar::Int(s.port as i64)),
            "user" => Some(Scalar::Str(s.user.clone())),
            "identity" => s.identity.clone().map(Scalar::Str),
            "jump" => s.jump.clone().map(Scalar::Str),
            "tags" => (!s.tags.is_empty()).then(|| Scalar::Str(s.tags.join(","))),
            "site" => Some(Scalar::Str(s.site.clone())),
            _ => i.default.clone(),
        };
    }
    m
}

/// A manifest that only carries a built-in form's fields.
fn form_manifest(id: &str, name: &str, inputs: Vec<InputSpec>) -> Manifest {
    Manifest {
        id: id.into(),
        name: name.into(),
        version: String::new(),
        description: String::new(),
        category: String::new(),
        author: String::new(),
        os_requirements: Default::default(),
        install_script: String::new(),
        timeout_seconds: 0,
        idempotent: false,
        role: Default::default(),
        inputs,
        health: None,
        uninstall_script: None,
        upgrade_script: None,
        depends_on: Vec::new(),
        cancel_grace_seconds: 0,
        configuration: None,
    }
}

/// The sudo password dialog of one `--prompt` server: a single masked password field, so it
/// masks, reveals (Ctrl-v) and edits like every other password field.
pub fn sudo_password_form(server: &str, login: &str) -> Form {
    let pw = input("password", InputType::Password, "Password", true);
    Form::new(
        FormKind::SudoPassword {
            server: server.to_string(),
        },
        format!("sudo password for {login}"),
        form_manifest("sudo", "sudo password", vec![pw]),
    )
}

/// The server spec an add-server form describes.
pub fn server_spec(values: &BTreeMap<String, String>) -> ptui_types::server::ServerSpec {
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    let opt = |k: &str| values.get(k).filter(|v| !v.trim().is_empty()).cloned();
    ptui_types::server::ServerSpec {
        name: get("name"),
        host: get("host"),
        port: get("port").parse().unwrap_or(22),
        user: get("user"),
        identity: opt("identity"),
        jump: opt("jump"),
        tags: get("tags")
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        password_env: None,
        site: opt("site"),
    }
}

#[cfg(test)]
#[path = "form_tests.rs"]
mod tests;
