//! The config file: `$XDG_CONFIG_HOME/provision-tui/config.yml`, or the file named by
//! `PROVISION_TUI_CONFIG`. Every section is optional; unknown keys are errors reported with
//! file:line:column. See docs/HEALTH.md for an annotated example.

use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A duration written as seconds (`60`) or with a unit (`500ms`, `30s`, `5m`, `2h`, `1d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: use e.g. 500ms, 30s, 5m, 2h, 1d"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        u => {
            return Err(format!(
                "invalid duration unit {u:?} in {s:?}: use ms, s, m, h or d"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            F(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Dur(Duration::from_secs(n))),
            Raw::F(f) if f.is_finite() && f >= 0.0 => Ok(Dur(Duration::from_secs_f64(f))),
            Raw::F(f) => Err(serde::de::Error::custom(format!("invalid duration {f}"))),
            Raw::S(s) => parse_duration(&s)
                .map(Dur)
                .map_err(serde::de::Error::custom),
        }
    }
}

fn secs(n: u64) -> Dur {
    Dur(Duration::from_secs(n))
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    #[serde(default)]
    pub health: CheckSettings,
    #[serde(default)]
    pub recovery: RecoverySettings,
    #[serde(default)]
    pub notifications: NotifySettings,
    /// Scheduled maintenance windows.
    #[serde(default)]
    pub maintenance: Vec<crate::health::maintenance::WindowSpec>,
    /// `readonly: true`: this user's provision-tui looks only (docs/BASTION.md).
    #[serde(default)]
    pub readonly: bool,
    /// `clipboard: false`: the dashboard's `y` copies nothing (default: OSC 52 on).
    #[serde(default)]
    pub clipboard: Option<bool>,
    /// Read by `access.rs` from the system config (/etc/provision-tui/config.yml, which is
    /// also the watcher's config.yml); any other config.yml may hold it without effect.
    #[serde(default)]
    pub roles: Option<serde::de::IgnoredAny>,
    /// The sites this process serves (`--site` overrides; default `default`).
    #[serde(default)]
    pub sites: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckSettings {
    /// How often each server is checked (a server's own `policy --interval` overrides it).
    pub interval: Dur,
    /// Budget of one check, connect included. A hung host fails after this; others go on.
    pub timeout: Dur,
    /// Checks running at once.
    pub concurrency: usize,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    /// Percent used at which a filesystem counts as full.
    pub disk_threshold: f64,
    /// Percent of memory used (MemTotal - MemAvailable) at which memory is under pressure.
    pub memory_threshold: f64,
    /// Default timeout of an app's manifest health check when it sets none.
    pub app_timeout: Dur,
    /// Raw samples are kept this long, then folded into hourly rows.
    pub raw_retention: Dur,
    /// Hourly rows are kept this long, then deleted.
    pub hourly_retention: Dur,
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            interval: secs(60),
            timeout: secs(10),
            concurrency: 50,
            failure_threshold: 3,
            success_threshold: 2,
            disk_threshold: 90.0,
            memory_threshold: 95.0,
            app_timeout: secs(5),
            raw_retention: secs(86_400),
            hourly_retention: secs(90 * 86_400),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoverySettings {
    /// Wait after an incident opens before automatic recovery starts.
    pub grace: Dur,
    pub max_attempts: u32,
    /// Wait after a failed attempt; doubles with each attempt.
    pub backoff: Dur,
    /// Base installer re-run first, for servers that name none themselves.
    pub base_installer: Option<String>,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        RecoverySettings {
            grace: secs(60),
            max_attempts: 3,
            backoff: secs(120),
            base_installer: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// Send again while an incident stays open; 0 = never.
    pub resend_interval: Dur,
    /// Messages per channel per hour; what is over the limit is dropped and counted.
    pub rate_limit_per_hour: u32,
    /// The rate limit's sliding window: one hour, shorter only for tests.
    pub rate_limit_window: Dur,
    /// Timeout of one delivery attempt.
    pub timeout: Dur,
    /// Extra attempts after a failed delivery.
    pub retries: u32,
    pub retry_delay: Dur,
    pub channels: Vec<ChannelSpec>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            resend_interval: secs(0),
            rate_limit_per_hour: 30,
            rate_limit_window: secs(3600),
            timeout: secs(10),
            retries: 3,
            retry_delay: secs(2),
            channels: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Webhook,
    Slack,
    Telegram,
}

/// One notification channel. URLs and tokens are secrets: prefer the `*_env` forms, which
/// name an environment variable holding the value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ChannelKind,
    /// webhook/slack: where to POST.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub url_env: Option<String>,
    /// telegram: the bot token, or the variable holding it.
    #[serde(default)]
    pub bot_token: Option<String>,
    #[serde(default)]
    pub bot_token_env: Option<String>,
    #[serde(default)]
    pub chat_id: Option<String>,
    /// telegram: API base URL (default https://api.telegram.org).
    #[serde(default)]
    pub api_url: Option<String>,
}

/// Where the config file is looked for.
pub fn default_path() -> PathBuf {
    match std::env::var_os("PROVISION_TUI_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => ptui_types::config::config_dir().join("config.yml"),
    }
}

fn env_value(var: &str, what: &str) -> Result<String, String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{what}: environment variable {var} is not set"))
}

impl ChannelSpec {
    /// The URL to POST to. Contains secrets (webhook paths, bot tokens): never log it.
    pub fn target_url(&self) -> Result<String, String> {
        let what = format!("channel {}", self.name);
        match self.kind {
            ChannelKind::Webhook | ChannelKind::Slack => match (&self.url, &self.url_env) {
                (Some(u), None) => Ok(u.clone()),
                (None, Some(v)) => env_value(v, &what),
                _ => Err(format!("{what}: set exactly one of url and url_env")),
            },
            ChannelKind::Telegram => {
                let token = match (&self.bot_token, &self.bot_token_env) {
                    (Some(t), None) => t.clone(),
                    (None, Some(v)) => env_value(v, &what)?,
                    _ => {
                        return Err(format!(
                            "{what}: set exactly one of bot_token and bot_token_env"
                        ));
                    }
                };
                let base = self
                    .api_url
                    .as_deref()
                    .unwrap_or("https://api.telegram.org");
                Ok(format!(
                    "{}/bot{token}/sendMessage",
                    base.trim_end_matches('/')
                ))
            }
        }
    }
}

impl HealthConfig {
    /// Loads the file at `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<HealthConfig, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(HealthConfig::default());
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, file: &str) -> Result<HealthConfig, String> {
        let cfg: HealthConfig = if text.trim().is_empty() {
            HealthConfig::default()
        } else {
            yaml_serde::from_str(text).map_err(|e| match e.location() {
                Some(l) => format!("{file}:{}:{}: {e}", l.line(), l.column()),
                None => format!("{file}: {e}"),
            })?
        };
        cfg.check().map_err(|e| format!("{file}: {e}"))?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), String> {
        let h = &self.health;
        if h.interval.0 < Duration::from_millis(100) {
            return Err("health.interval must be at least 100ms".into());
        }
        if h.timeout.0.is_zero() || h.concurrency == 0 {
            return Err("health.timeout and health.concurrency must be above 0".into());
        }
        if h.failure_threshold == 0 || h.success_threshold == 0 {
            return Err("health.failure_threshold and success_threshold must be at least 1".into());
        }
        for (n, v) in [
            ("disk_threshold", h.disk_threshold),
            ("memory_threshold", h.memory_threshold),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("health.{n} is a percentage (0-100), not {v}"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, c) in self.notifications.channels.iter().enumerate() {
            if !names.insert(c.name.clone()) {
                return Err(format!(
                    "notifications.channels[{i}]: duplicate name {}",
                    c.name
                ));
            }
            let pairs = match c.kind {
                ChannelKind::Telegram => {
                    if c.chat_id.as_deref().is_none_or(str::is_empty) {
                        return Err(format!(
                            "notifications.channels[{i}] ({}): telegram needs chat_id",
                            c.name
                        ));
                    }
                    (
                        c.bot_token.is_some(),
                        c.bot_token_env.is_some(),
                        "bot_token and bot_token_env",
                    )
                }
                _ => (c.url.is_some(), c.url_env.is_some(), "url and url_env"),
            };
            if pairs.0 == pairs.1 {
                return Err(format!(
                    "notifications.channels[{i}] ({}): set exactly one of {}",
                    c.name, pairs.2
                ));
            }
        }
        for (i, w) in self.maintenance.iter().enumerate() {
            w.compile().map_err(|e| format!("maintenance[{i}]: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn full_example_parses_and_unknown_keys_name_the_line() {
        let ok = "health:\n  interval: 30s\n  failure_threshold: 2\nnotifications:\n  rate_limit_per_hour: 5\n  channels:\n    - name: ops\n      type: webhook\n      url: http://127.0.0.1:9/hook\n    - name: tg\n      type: telegram\n      bot_token_env: TG_TOKEN\n      chat_id: \"42\"\nmaintenance:\n  - servers: [web1]\n    timezone: Europe/Paris\n    days: [sat]\n    from: \"02:00\"\n    to: \"04:00\"\n";
        let c = HealthConfig::parse(ok, "config.yml").unwrap();
        assert_eq!(c.health.interval.0, Duration::from_secs(30));
        assert_eq!(c.health.success_threshold, 2);
        assert_eq!(c.notifications.channels.len(), 2);
        let err = HealthConfig::parse("health:\n  intervall: 5\n", "config.yml").unwrap_err();
        assert!(err.starts_with("config.yml:2:"), "{err}");
        assert!(err.contains("intervall"), "{err}");
        let err = HealthConfig::parse(
            "notifications:\n  channels:\n    - {name: a, type: slack}\n",
            "c.yml",
        )
        .unwrap_err();
        assert!(err.contains("exactly one of url and url_env"), "{err}");
    }
}
