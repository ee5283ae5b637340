//! The Fleet screen's state: servers, their last health checks, filter, sort and marks. The
//! order is recomputed when servers, samples (under a health sort) or the sort change.

use ptui_types::health::Sample;
use ptui_types::server::Server;
use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// What a fleet row shows of a server's last health check: derived from the engine's
/// `ptui_types::health::Sample` (which carries every probe) so that a row holds only its
/// columns: a failed check's time-to-fail is not a latency, percentages are whole numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct LastCheck {
    pub server: String,
    pub at_ms: i64,
    pub latency_ms: Option<u32>,
    pub load: Option<f32>,
    pub mem_pct: Option<u8>,
    pub disk_pct: Option<u8>,
    /// Why the check failed (`server_unreachable`, `auth_failed`, ...); None when it passed.
    pub failure: Option<String>,
}

impl LastCheck {
    pub fn from_sample(sample: Sample) -> Self {
        // A failed check's "latency" is how long it took to fail: not a latency.
        // Samples stored before `host_key_unknown` existed filed an unknown host key under
        // auth_failed; the row says what it is (a key to accept with `t`).
        let unknown_key = sample
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("host key of ") && e.contains(" is not known"));
        let failure = sample.failure.map(|k| match k.as_str() {
            "auth_failed" if unknown_key => "host_key_unknown".to_string(),
            other => other.to_string(),
        });
        LastCheck {
            server: sample.server,
            at_ms: sample.ts,
            latency_ms: failure
                .is_none()
                .then(|| sample.latency_ms.min(u32::MAX as u64) as u32),
            failure,
            load: sample.load.map(|l| l[0] as f32),
            mem_pct: sample.mem_pct.map(|m| m.round().clamp(0.0, 100.0) as u8),
            disk_pct: sample.disk_pct.map(|d| d.round().clamp(0.0, 100.0) as u8),
        }
    }
}

/// The last health figures of a server and a short latency history for the sparkline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub last: Option<LastCheck>,
    pub history: VecDeque<u64>,
}

impl Health {
    pub const HISTORY: usize = 16;
    pub fn apply(&mut self, s: LastCheck) {
        if let Some(l) = s.latency_ms {
            self.history.push_back(l as u64);
            while self.history.len() > Self::HISTORY {
                self.history.pop_front();
            }
        }
        self.last = Some(s);
    }
}

#[derive(Debug, Default)]
pub struct FleetState {
    pub servers: Vec<Server>,
    pub health: HashMap<String, Health>,
    /// Indices into `servers` after filter and sort; recomputed on change, not per frame.
    pub order: Vec<usize>,
    pub sel: usize,
    /// The first row shown, as the view last scrolled it.
    pub offset: Cell<usize>,
    pub sort: usize,
    pub rev: bool,
    pub filter: String,
    pub marks: BTreeSet<String>,
    /// A sample arrived under a health sort: reorder once before the next frame, not per sample.
    pub stale: bool,
}

/// Sort columns `o` cycles through; from `age` on they are health figures.
pub const FLEET_SORTS: [&str; 9] = [
    "name", "address", "status", "tags", "age", "latency", "load", "mem%", "disk%",
];
const FIRST_HEALTH_SORT: usize = 4;

impl FleetState {
    /// Whether the order depends on health samples (each sample may move a row).
    pub fn sorts_by_health(&self) -> bool {
        self.sort >= FIRST_HEALTH_SORT
    }

    /// The sort value of a server's last sample for a health column; None sorts last.
    fn health_key(&self, name: &str) -> Option<f64> {
        let last = self.health.get(name)?.last.as_ref()?;
        match self.sort {
            // Youngest sample first: the largest timestamp.
            4 => Some(-(last.at_ms as f64)),
            5 => last.latency_ms.map(f64::from),
            6 => last.load.map(f64::from),
            7 => last.mem_pct.map(f64::from),
            8 => last.disk_pct.map(f64::from),
            _ => None,
        }
    }

    /// Reorders once if samples arrived under a health sort (the loop calls it before a frame).
    pub fn reorder_if_stale(&mut self) {
        if self.stale {
            self.reorder();
        }
    }

    /// Records a server's check; under a health sort the order is redone before the next
    /// frame, not per sample.
    pub fn apply_check(&mut self, c: LastCheck) {
        self.health.entry(c.server.clone()).or_default().apply(c);
        if self.sorts_by_health() {
            self.stale = true;
        }
    }

    pub fn reorder(&mut self) {
        self.stale = false;
        let current = self.selected().map(|s| s.name.clone());
        let f = self.filter.to_lowercase();
        let mut order: Vec<usize> = (0..self.servers.len())
            .filter(|i| {
                let s = &self.servers[*i];
                f.is_empty()
                    || s.name.to_lowercase().contains(&f)
                    || s.host.to_lowercase().contains(&f)
                    || s.status.as_str().contains(&f)
                    || s.tags.iter().any(|t| t.to_lowercase().contains(&f))
            })
            .collect();
        let sv = &self.servers;
        match self.sort {
            1 => order.sort_by(|a, b| {
                sv[*a]
                    .host
                    .cmp(&sv[*b].host)
                    .then(sv[*a].port.cmp(&sv[*b].port))
            }),
            2 => order.sort_by(|a, b| {
                sv[*a]
                    .status
                    .as_str()
                    .cmp(sv[*b].status.as_str())
                    .then(sv[*a].name.cmp(&sv[*b].name))
            }),
            3 => order.sort_by(|a, b| {
                sv[*a]
                    .tags
                    .join(",")
                    .cmp(&sv[*b].tags.join(","))
                    .then(sv[*a].name.cmp(&sv[*b].name))
            }),
            n if n >= FIRST_HEALTH_SORT => {
                // Keys once per server, not per comparison (10,000 servers).
                let keys: Vec<Option<f64>> = sv.iter().map(|s| self.health_key(&s.name)).collect();
                let rev = self.rev;
                order.sort_by(|a, b| {
                    let by = match (keys[*a], keys[*b]) {
                        (Some(x), Some(y)) if rev => y.total_cmp(&x),
                        (Some(x), Some(y)) => x.total_cmp(&y),
                        // Servers without a figure stay last in both directions.
                        (Some(_), None) => Ordering::Less,
                        (None, Some(_)) => Ordering::Greater,
                        (None, None) => Ordering::Equal,
                    };
                    by.then(sv[*a].name.cmp(&sv[*b].name))
                });
            }
            _ => order.sort_by(|a, b| sv[*a].name.cmp(&sv[*b].name)),
        }
        if self.rev && !self.sorts_by_health() {
            order.reverse();
        }
        self.order = order;
        self.sel = current
            .and_then(|n| self.order.iter().position(|i| self.servers[*i].name == n))
            .unwrap_or(self.sel)
            .min(self.order.len().saturating_sub(1));
    }

    pub fn selected(&self) -> Option<&Server> {
        self.order.get(self.sel).and_then(|i| self.servers.get(*i))
    }

    /// Marked servers, or the selected one.
    pub fn targets(&self) -> Vec<String> {
        if self.marks.is_empty() {
            self.selected()
                .map(|s| vec![s.name.clone()])
                .unwrap_or_default()
        } else {
            self.marks.iter().cloned().collect()
        }
    }
}
