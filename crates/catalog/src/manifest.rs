//! Manifest types (`installers/<id>/manifest.yml`). Every type denies unknown fields.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub os_requirements: OsRequirements,
    pub install_script: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub idempotent: bool,
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub inputs: Vec<InputSpec>,
    #[serde(default)]
    pub health: Option<HealthCheck>,
    #[serde(default)]
    pub uninstall_script: Option<String>,
    #[serde(default)]
    pub upgrade_script: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// On cancel: TERM to the script's process group, then KILL after this many seconds, so a
    /// package step can finish (dpkg killed midway leaves the server needing a repair).
    #[serde(default = "default_cancel_grace")]
    pub cancel_grace_seconds: u64,
    /// What the app's configuration is: the engine keeps a copy of it on the server before a
    /// run that changes a deployed app, and restores it when the run fails.
    #[serde(default)]
    pub configuration: Option<Configuration>,
}

fn default_timeout() -> u64 {
    1800
}

fn default_cancel_grace() -> u64 {
    30
}

/// `configuration:` in a manifest (docs/INSTALLERS.md, "Configuration and rollback").
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Configuration {
    /// Absolute paths of the files and directories the installer writes; `{input}` stands
    /// for the value of a (non-sensitive) input.
    pub paths: Vec<String>,
    /// The systemd units restarted, in order, after a restore.
    #[serde(default)]
    pub services: Vec<String>,
    /// How many copies (generations) are kept on the server.
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// How long the health check is retried after a run or a restore before it counts as failed.
    #[serde(default = "default_settle")]
    pub settle_seconds: u32,
}

fn default_keep() -> u32 {
    3
}

fn default_settle() -> u32 {
    30
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OsRequirements {
    #[serde(default)]
    pub family: Vec<String>,
}

/// `base` marks the server baseline installer; a success moves a provisioning server to ready.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Base,
    #[default]
    App,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    String,
    Integer,
    Boolean,
    Password,
    Select,
    Email,
    Port,
}

impl InputType {
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Boolean => "boolean",
            InputType::Password => "password",
            InputType::Select => "select",
            InputType::Email => "email",
            InputType::Port => "port",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: InputType,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Scalar>,
    #[serde(default)]
    pub validation: Option<Validation>,
    #[serde(default)]
    pub visible_if: Option<VisibleIf>,
    #[serde(default)]
    pub sensitive: bool,
}

impl InputSpec {
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }
    /// Passwords are always sensitive.
    pub fn is_sensitive(&self) -> bool {
        self.sensitive || self.kind == InputType::Password
    }
    /// The environment variable the installer reads.
    pub fn env_name(&self) -> String {
        self.name.to_ascii_uppercase()
    }
    pub fn allowed_values(&self) -> &[String] {
        self.validation
            .as_ref()
            .and_then(|v| v.allowed_values.as_deref())
            .unwrap_or(&[])
    }
}

/// A YAML scalar used for defaults and conditions; compared as text.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl Scalar {
    pub fn as_text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Str(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub min_length: Option<usize>,
    #[serde(default)]
    pub max_length: Option<usize>,
    #[serde(default)]
    pub min_value: Option<i64>,
    #[serde(default)]
    pub max_value: Option<i64>,
    #[serde(default)]
    pub allowed_values: Option<Vec<String>>,
    /// Lets a sensitive value be shorter than `SHORT_SECRET_CHARS` (8), e.g. a PIN. Such a
    /// value is masked in logs only where it stands as a whole word.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_short: bool,
    /// What a valid value looks like, in words: shown instead of the regex when `pattern` or
    /// `items` refuses a value (the form, `--set`, the CLI's errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The value is a list (`8080,5432/tcp`): each item is checked by these rules, as the
    /// installer will check it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<ItemRules>,
}

/// The rules each item of a list value follows.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ItemRules {
    /// Between items (default `,`); spaces around an item are ignored.
    #[serde(default = "comma")]
    pub separator: String,
    /// `string` (the default), `integer`, `port` or `email`.
    #[serde(default, rename = "type")]
    pub kind: Option<InputType>,
    /// For `port` items: the protocols allowed after a slash (`8080/tcp`).
    #[serde(default)]
    pub protocols: Option<Vec<String>>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub min_length: Option<usize>,
    #[serde(default)]
    pub max_length: Option<usize>,
    #[serde(default)]
    pub min_value: Option<i64>,
    #[serde(default)]
    pub max_value: Option<i64>,
    #[serde(default)]
    pub allowed_values: Option<Vec<String>>,
}

fn comma() -> String {
    ",".into()
}

impl ItemRules {
    /// The item types a list may hold.
    pub fn item_kind(&self) -> InputType {
        self.kind.unwrap_or(InputType::String)
    }

    /// An item's own rules, as a `Validation` (for `check_value`).
    pub fn validation(&self) -> Validation {
        Validation {
            pattern: self.pattern.clone(),
            min_length: self.min_length,
            max_length: self.max_length,
            min_value: self.min_value,
            max_value: self.max_value,
            allowed_values: self.allowed_values.clone(),
            ..Default::default()
        }
    }
}

/// Shows an input only when other inputs' values match. Two spellings in YAML:
/// the rich form `{input: other, equals: v}` (or `not_equals: v`, `one_of: [a, b]`), and the
/// published shorthand `{other: v, third: [a, b]}` (every key must match; a list means one of).
/// The rich form is recognised by its `input` key.
#[derive(Debug, Clone, PartialEq)]
pub struct VisibleIf {
    /// All must match. Never empty.
    pub conditions: Vec<Condition>,
    /// Written in the rich form (so it serialises back the same way).
    pub rich: bool,
}

/// One test of another input's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub input: String,
    pub equals: Option<Scalar>,
    pub not_equals: Option<Scalar>,
    pub one_of: Option<Vec<Scalar>>,
}

impl Condition {
    pub fn matches(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        if let Some(e) = &self.equals
            && e.as_text() != v
        {
            return false;
        }
        if let Some(ne) = &self.not_equals
            && ne.as_text() == v
        {
            return false;
        }
        if let Some(set) = &self.one_of
            && !set.iter().any(|s| s.as_text() == v)
        {
            return false;
        }
        true
    }

    /// The values the condition names (for type checks).
    pub fn values(&self) -> Vec<&Scalar> {
        let mut out: Vec<&Scalar> = self.equals.iter().chain(&self.not_equals).collect();
        out.extend(self.one_of.iter().flatten());
        out
    }

    pub fn describe(&self) -> String {
        if let Some(e) = &self.equals {
            format!("{} = {}", self.input, e.as_text())
        } else if let Some(ne) = &self.not_equals {
            format!("{} != {}", self.input, ne.as_text())
        } else if let Some(set) = &self.one_of {
            let v: Vec<String> = set.iter().map(Scalar::as_text).collect();
            format!("{} in [{}]", self.input, v.join(", "))
        } else {
            format!("{} is set", self.input)
        }
    }
}

impl VisibleIf {
    /// `value(name)` gives another input's effective value.
    pub fn matches<'a>(&self, value: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.conditions.iter().all(|c| c.matches(value(&c.input)))
    }

    /// The inputs this depends on.
    pub fn inputs(&self) -> impl Iterator<Item = &str> {
        self.conditions.iter().map(|c| c.input.as_str())
    }

    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.conditions.iter().map(Condition::describe).collect();
        parts.join(" and ")
    }
}

/// A condition's value as written: one scalar or a list of them.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum CondValue {
    One(Scalar),
    Many(Vec<Scalar>),
}

const RICH_KEYS: &[&str] = &["input", "equals", "not_equals", "one_of"];

impl<'de> Deserialize<'de> for VisibleIf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = VisibleIf;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a mapping: {input: other, equals: value} or the shorthand {other: value}",
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<VisibleIf, A::Error> {
                let mut pairs: Vec<(String, CondValue)> = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if pairs.iter().any(|(p, _)| *p == k) {
                        return Err(A::Error::custom(format!("visible_if: duplicate key `{k}`")));
                    }
                    let v = map.next_value::<CondValue>().map_err(|_| {
                        A::Error::custom(format!(
                            "visible_if `{k}`: expected a value (text, number, true/false) or a list of values"
                        ))
                    })?;
                    pairs.push((k, v));
                }
                build(pairs).map_err(A::Error::custom)
            }
        }
        d.deserialize_map(V)
    }
}

fn build(pairs: Vec<(String, CondValue)>) -> Result<VisibleIf, String> {
    if pairs.is_empty() {
        return Err("visible_if is empty: name at least one input, e.g. {other: value}".into());
    }
    let rich_input = pairs.iter().find_map(|(k, v)| match (k.as_str(), v) {
        ("input", CondValue::One(Scalar::Str(s))) => Some(s.clone()),
        _ => None,
    });
    let Some(input) = rich_input else {
        let conditions = pairs
            .into_iter()
            .map(|(input, v)| {
                let (equals, one_of) = match v {
                    CondValue::One(s) => (Some(s), None),
                    CondValue::Many(l) => (None, Some(l)),
                };
                Condition {
                    input,
                    equals,
                    not_equals: None,
                    one_of,
                }
            })
            .collect();
        return Ok(VisibleIf {
            conditions,
            rich: false,
        });
    };
    let mut c = Condition {
        input,
        equals: None,
        not_equals: None,
        one_of: None,
    };
    for (k, v) in pairs {
        match (k.as_str(), v) {
            ("input", _) => {}
            ("equals", CondValue::One(s)) => c.equals = Some(s),
            ("not_equals", CondValue::One(s)) => c.not_equals = Some(s),
            ("one_of", CondValue::Many(l)) => c.one_of = Some(l),
            ("one_of", CondValue::One(s)) => c.one_of = Some(vec![s]),
            ("equals" | "not_equals", CondValue::Many(_)) => {
                return Err(format!(
                    "visible_if `{k}` takes one value; use one_of for a list"
                ));
            }
            (other, _) => {
                return Err(format!(
                    "unknown field `{other}` in visible_if with `input:`, expected one of {} \
                     (the shorthand {{other: value}} has no `input` key)",
                    RICH_KEYS.join(", ")
                ));
            }
        }
    }
    Ok(VisibleIf {
        conditions: vec![c],
        rich: true,
    })
}

impl Serialize for VisibleIf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for c in &self.conditions {
            if self.rich {
                m.serialize_entry("input", &c.input)?;
                if let Some(e) = &c.equals {
                    m.serialize_entry("equals", e)?;
                }
                if let Some(e) = &c.not_equals {
                    m.serialize_entry("not_equals", e)?;
                }
                if let Some(e) = &c.one_of {
                    m.serialize_entry("one_of", e)?;
                }
            } else if let Some(e) = &c.equals {
                m.serialize_entry(&c.input, e)?;
            } else if let Some(l) = &c.one_of {
                m.serialize_entry(&c.input, l)?;
            }
        }
        m.end()
    }
}

/// How to tell an installed app is healthy, run on the server itself.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub expect_status: Option<u16>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}
