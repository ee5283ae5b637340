//! Maintenance windows. Manual ones (`maintenance on|off`) live in the database; scheduled ones
//! (one-off, or weekly days and hours in a time zone) in the config file. During a window
//! checks still run and are stored, but no incident opens and nothing is sent.

use chrono::{DateTime, Datelike, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

/// A scheduled window as written in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    #[serde(default)]
    pub name: Option<String>,
    /// Servers it covers; empty or absent means the whole fleet.
    #[serde(default)]
    pub servers: Vec<String>,
    /// IANA zone name; default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// One-off: `YYYY-MM-DD HH:MM` local to the zone.
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
    /// Weekly: days (`mon`..`sun`) and local hours `HH:MM`; `from > to` crosses midnight.
    #[serde(default)]
    pub days: Vec<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum When {
    Once(DateTime<Utc>, DateTime<Utc>),
    Weekly(Vec<Weekday>, NaiveTime, NaiveTime),
}

/// A checked window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub name: String,
    servers: Vec<String>,
    tz: Tz,
    when: When,
}

fn weekday(s: &str) -> Result<Weekday, String> {
    s.trim()
        .parse::<Weekday>()
        .map_err(|_| format!("unknown day {s:?}: use mon, tue, wed, thu, fri, sat or sun"))
}

fn time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| format!("invalid time {s:?}: use HH:MM"))
}

fn local(tz: &Tz, s: &str) -> Result<DateTime<Utc>, String> {
    let naive = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M")
        .map_err(|_| format!("invalid date {s:?}: use YYYY-MM-DD HH:MM"))?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{s} does not exist in {tz}"))
}

impl WindowSpec {
    pub fn compile(&self) -> Result<Window, String> {
        let tz: Tz = match &self.timezone {
            Some(z) => z.parse().map_err(|_| format!("unknown time zone {z:?}"))?,
            None => Tz::UTC,
        };
        let when = match (
            &self.start,
            &self.end,
            self.days.is_empty(),
            &self.from,
            &self.to,
        ) {
            (Some(s), Some(e), true, None, None) => {
                let (s, e) = (local(&tz, s)?, local(&tz, e)?);
                if e <= s {
                    return Err("end must be after start".into());
                }
                When::Once(s, e)
            }
            (None, None, false, Some(f), Some(t)) => When::Weekly(
                self.days
                    .iter()
                    .map(|d| weekday(d))
                    .collect::<Result<_, _>>()?,
                time(f)?,
                time(t)?,
            ),
            _ => {
                return Err(
                    "a window is either one-off (start and end) or weekly (days, from and to)"
                        .into(),
                );
            }
        };
        Ok(Window {
            name: self.name.clone().unwrap_or_else(|| "scheduled".into()),
            servers: self.servers.clone(),
            tz,
            when,
        })
    }
}

impl Window {
    pub fn covers(&self, server: &str) -> bool {
        self.servers.is_empty() || self.servers.iter().any(|s| s == server)
    }

    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        match &self.when {
            When::Once(s, e) => *s <= now && now < *e,
            When::Weekly(days, from, to) => {
                let t = now.with_timezone(&self.tz);
                let (day, tod) = (t.weekday(), t.time());
                if from <= to {
                    days.contains(&day) && *from <= tod && tod < *to
                } else {
                    // Crosses midnight: the evening part on a listed day, the morning part after it.
                    (days.contains(&day) && tod >= *from)
                        || (days.contains(&day.pred()) && tod < *to)
                }
            }
        }
    }
}

/// Which servers are in maintenance now: manual windows from the store plus scheduled ones.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceView {
    pub fleet: Option<String>,
    pub servers: std::collections::HashMap<String, String>,
    windows: Vec<Window>,
}

impl MaintenanceView {
    pub fn new(
        manual: &[ptui_store::health::MaintenanceRow],
        windows: &[Window],
        now: DateTime<Utc>,
    ) -> Self {
        let mut v = MaintenanceView::default();
        for m in manual {
            let why = format!("manual window #{} by {}", m.id, m.created_by);
            match &m.server {
                None => v.fleet = Some(why),
                Some(s) => {
                    v.servers.insert(s.clone(), why);
                }
            }
        }
        v.windows = windows
            .iter()
            .filter(|w| w.active_at(now))
            .cloned()
            .collect();
        v
    }

    /// Why a server is in maintenance now, if it is.
    pub fn reason(&self, server: &str) -> Option<String> {
        if let Some(f) = &self.fleet {
            return Some(format!("fleet-wide {f}"));
        }
        if let Some(r) = self.servers.get(server) {
            return Some(r.clone());
        }
        self.windows
            .iter()
            .find(|w| w.covers(server))
            .map(|w| format!("scheduled window {}", w.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Window {
        yaml_serde::from_str::<WindowSpec>(yaml)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn weekly_in_a_zone_and_across_midnight() {
        // Saturday 02:00-04:00 in Paris (UTC+1 in January).
        let w = spec("timezone: Europe/Paris\ndays: [sat]\nfrom: \"02:00\"\nto: \"04:00\"\n");
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(w.active_at(at("2026-01-03T01:30:00Z"))); // Sat 02:30 Paris
        assert!(!w.active_at(at("2026-01-03T03:30:00Z"))); // Sat 04:30 Paris
        assert!(!w.active_at(at("2026-01-04T01:30:00Z"))); // Sun
        let night = spec("days: [fri]\nfrom: \"23:00\"\nto: \"01:00\"\n");
        assert!(night.active_at(at("2026-01-02T23:30:00Z"))); // Fri 23:30
        assert!(night.active_at(at("2026-01-03T00:30:00Z"))); // Sat 00:30
        assert!(!night.active_at(at("2026-01-03T23:30:00Z"))); // Sat 23:30
    }

    #[test]
    fn one_off_and_bad_specs() {
        let w = spec("servers: [a]\nstart: \"2026-05-01 10:00\"\nend: \"2026-05-01 11:00\"\n");
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(w.active_at(at("2026-05-01T10:30:00Z")));
        assert!(!w.active_at(at("2026-05-01T11:00:00Z")));
        assert!(w.covers("a") && !w.covers("b"));
        let bad: WindowSpec = yaml_serde::from_str("days: [sat]\nfrom: \"02:00\"\n").unwrap();
        assert!(bad.compile().is_err());
        let bad: WindowSpec = yaml_serde::from_str(
            "timezone: Mars/Base\nstart: \"2026-05-01 10:00\"\nend: \"2026-05-01 11:00\"\n",
        )
        .unwrap();
        assert!(bad.compile().unwrap_err().contains("Mars/Base"));
    }
}
