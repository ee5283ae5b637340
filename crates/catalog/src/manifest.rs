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
}

fn default_timeout() -> u64 {
    1800
}

fn default_cancel_grace() -> u64 {
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
}

/// Shows an input only when another input's value matches.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisibleIf {
    pub input: String,
    #[serde(default)]
    pub equals: Option<Scalar>,
    #[serde(default)]
    pub not_equals: Option<Scalar>,
    #[serde(default)]
    pub one_of: Option<Vec<Scalar>>,
}

impl VisibleIf {
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
