//! Hysteresis. A condition is DOWN only after `failure_threshold` failing checks in a row and
//! UP again only after `success_threshold` passing ones; in between it is PENDING (visible in
//! samples, silent). During maintenance a condition may not go DOWN: it waits, PENDING, and
//! goes DOWN on the first failure after the window if it is still failing.

use super::{ConditionState, IncidentKind, Level, Sample};
use std::collections::HashMap;

type Key = (i64, IncidentKind, Option<String>);

#[derive(Debug, Default, Clone)]
struct Cond {
    down: bool,
    failures: u32,
    successes: u32,
}

impl Cond {
    fn level(&self) -> Level {
        match (self.down, self.failures, self.successes) {
            (false, 0, _) => Level::Up,
            (true, _, 0) => Level::Down,
            _ => Level::Pending,
        }
    }
}

/// A condition crossed a threshold.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Down {
        kind: IncidentKind,
        app_id: Option<String>,
        detail: String,
    },
    Up {
        kind: IncidentKind,
        app_id: Option<String>,
    },
}

#[derive(Debug)]
pub struct Tracker {
    failure_threshold: u32,
    success_threshold: u32,
    conds: HashMap<Key, Cond>,
}

/// What one sample says about each condition: (kind, app, failing, detail).
pub fn observations(
    s: &Sample,
    disk_threshold: f64,
    memory_threshold: f64,
) -> Vec<(IncidentKind, Option<String>, bool, String)> {
    use IncidentKind::*;
    let err = s.error.clone().unwrap_or_default();
    match s.failure {
        Some(ServerUnreachable) => vec![(ServerUnreachable, None, true, err)],
        Some(k @ (AuthFailed | HostKeyChanged | HostKeyUnknown)) => vec![
            (ServerUnreachable, None, false, String::new()),
            (k, None, true, err),
        ],
        Some(other) => vec![(other, None, true, err)],
        None => {
            let mut v = vec![
                (ServerUnreachable, None, false, String::new()),
                (AuthFailed, None, false, String::new()),
                (HostKeyChanged, None, false, String::new()),
                (HostKeyUnknown, None, false, String::new()),
            ];
            let full: Vec<String> = s
                .mounts_over
                .iter()
                .filter(|m| m.pct >= disk_threshold)
                .map(|m| format!("{} {:.0}%", m.mount, m.pct))
                .collect();
            v.push((
                DiskFull,
                None,
                !full.is_empty(),
                format!("over {disk_threshold:.0}%: {}", full.join(", ")),
            ));
            if let Some(m) = s.mem_pct {
                v.push((
                    MemoryPressure,
                    None,
                    m >= memory_threshold,
                    format!("memory {m:.0}% used (threshold {memory_threshold:.0}%)"),
                ));
            }
            v.push((
                DockerDown,
                None,
                s.docker.as_deref().is_some_and(|d| d != "active"),
                format!("docker is {}", s.docker.as_deref().unwrap_or("absent")),
            ));
            for a in &s.apps {
                v.push((ServiceDown, Some(a.app_id.clone()), !a.ok, a.detail.clone()));
            }
            v
        }
    }
}

impl Tracker {
    pub fn new(failure_threshold: u32, success_threshold: u32) -> Self {
        Tracker {
            failure_threshold: failure_threshold.max(1),
            success_threshold: success_threshold.max(1),
            conds: HashMap::new(),
        }
    }

    /// Starts a condition as DOWN (an incident is already open for it).
    pub fn assume_down(&mut self, server_id: i64, kind: IncidentKind, app_id: Option<String>) {
        self.conds.insert(
            (server_id, kind, app_id),
            Cond {
                down: true,
                failures: self.failure_threshold,
                successes: 0,
            },
        );
    }

    /// Whether a server-level condition is failing now, DOWN or still PENDING.
    pub fn failing(&self, server_id: i64, kind: IncidentKind) -> bool {
        self.conds
            .get(&(server_id, kind, None))
            .is_some_and(|c| c.down || c.failures > 0)
    }

    pub fn forget_server(&mut self, server_id: i64) {
        self.conds.retain(|k, _| k.0 != server_id);
    }

    fn observe(
        &mut self,
        key: Key,
        failing: bool,
        maintenance: bool,
    ) -> Option<bool /* true = went down, false = went up */> {
        let (ft, st) = (self.failure_threshold, self.success_threshold);
        let c = self.conds.entry(key).or_default();
        if failing {
            c.successes = 0;
            c.failures = c.failures.saturating_add(1);
            if !c.down && c.failures >= ft {
                if maintenance {
                    c.failures = ft - 1;
                    return None;
                }
                c.down = true;
                return Some(true);
            }
        } else {
            c.failures = 0;
            if c.down {
                c.successes += 1;
                if c.successes >= st {
                    c.down = false;
                    c.successes = 0;
                    return Some(false);
                }
            }
        }
        None
    }

    /// Feeds a sample in; fills `sample.states` with the conditions that are not up and
    /// returns the threshold crossings.
    pub fn evaluate(
        &mut self,
        sample: &mut Sample,
        disk_threshold: f64,
        memory_threshold: f64,
    ) -> Vec<Transition> {
        let obs = observations(sample, disk_threshold, memory_threshold);
        let mut out = Vec::new();
        // Apps that vanished from the server (uninstalled) count as passing.
        let gone: Vec<Key> = if sample.failure.is_none() {
            self.conds
                .keys()
                .filter(|k| {
                    k.0 == sample.server_id
                        && k.1 == IncidentKind::ServiceDown
                        && !sample.apps.iter().any(|a| Some(&a.app_id) == k.2.as_ref())
                })
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let all = obs
            .into_iter()
            .chain(gone.into_iter().map(|k| (k.1, k.2, false, String::new())));
        for (kind, app_id, failing, detail) in all {
            let key = (sample.server_id, kind, app_id.clone());
            match self.observe(key.clone(), failing, sample.maintenance) {
                Some(true) => out.push(Transition::Down {
                    kind,
                    app_id: app_id.clone(),
                    detail,
                }),
                Some(false) => out.push(Transition::Up {
                    kind,
                    app_id: app_id.clone(),
                }),
                None => {}
            }
            if let Some(c) = self.conds.get(&key) {
                let level = c.level();
                if level != Level::Up {
                    sample.states.push(ConditionState {
                        kind,
                        app_id,
                        level,
                        failures: c.failures,
                        successes: c.successes,
                    });
                } else if !c.down && c.failures == 0 && c.successes == 0 {
                    self.conds.remove(&key);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> Sample {
        Sample::unreachable(1, "a", IncidentKind::ServerUnreachable, "down".into())
    }
    fn healthy() -> Sample {
        let mut s = unreachable();
        s.ok = true;
        s.failure = None;
        s.error = None;
        s
    }

    #[test]
    fn three_failures_open_two_successes_close_pending_between() {
        let mut t = Tracker::new(3, 2);
        let mut levels = Vec::new();
        let mut crossings = Vec::new();
        for s in [
            unreachable(),
            unreachable(),
            unreachable(),
            unreachable(),
            healthy(),
            unreachable(),
            healthy(),
            healthy(),
        ] {
            let mut s = s;
            crossings.push(t.evaluate(&mut s, 90.0, 95.0));
            levels.push(
                s.states
                    .iter()
                    .find(|c| c.kind == IncidentKind::ServerUnreachable)
                    .map(|c| c.level)
                    .unwrap_or(Level::Up),
            );
        }
        use Level::*;
        assert_eq!(
            levels,
            vec![Pending, Pending, Down, Down, Pending, Down, Pending, Up]
        );
        assert!(matches!(
            crossings[2][..],
            [Transition::Down {
                kind: IncidentKind::ServerUnreachable,
                ..
            }]
        ));
        assert!(crossings[3].is_empty() && crossings[4].is_empty() && crossings[6].is_empty());
        assert!(matches!(
            crossings[7][..],
            [Transition::Up {
                kind: IncidentKind::ServerUnreachable,
                ..
            }]
        ));
    }

    #[test]
    fn maintenance_holds_pending_then_opens_after() {
        let mut t = Tracker::new(2, 1);
        for _ in 0..5 {
            let mut s = unreachable();
            s.maintenance = true;
            assert!(t.evaluate(&mut s, 90.0, 95.0).is_empty());
            assert_eq!(s.states[0].level, Level::Pending);
        }
        let mut s = unreachable();
        assert_eq!(
            t.evaluate(&mut s, 90.0, 95.0).len(),
            1,
            "first failure after the window opens"
        );
    }

    #[test]
    fn app_and_disk_conditions() {
        let mut t = Tracker::new(1, 1);
        let mut s = healthy();
        s.mounts_over.push(crate::health::MountUse {
            mount: "/".into(),
            pct: 97.0,
        });
        s.apps.push(crate::health::AppHealth {
            app_id: "web".into(),
            ok: false,
            detail: "exit 1".into(),
        });
        let tr = t.evaluate(&mut s, 90.0, 95.0);
        assert_eq!(tr.len(), 2, "{tr:?}");
        // The app is uninstalled: its condition clears.
        let mut s = healthy();
        let tr = t.evaluate(&mut s, 90.0, 95.0);
        assert!(
            tr.contains(&Transition::Up {
                kind: IncidentKind::ServiceDown,
                app_id: Some("web".into())
            }),
            "{tr:?}"
        );
    }
}
