//! Fan-out: one install over many servers in rolling batches (like Ansible's `serial`), with a
//! concurrency limit and a failure budget (`max_fail`). Once failures pass the budget, hosts
//! not yet started are never started: no job is created for them, and a `Skipped` fan-out event
//! (plus an audit row) names them with the reason. Jobs already running finish normally.
//!
//! The CLI (`install --on/--tag/--all`) and the TUI (marked servers) both call `start_fanout`.

use crate::engine::{Engine, Event, InstallRequest, RequestError};
pub use crate::events::{FanoutEvent, FanoutSummary};
use crate::jobs::launch::Prepared;
use ptui_types::job::{JobAction, JobStatus};
use ptui_types::server::Server;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// A count or a percentage of the hosts (`5` or `20%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Amount {
    Count(usize),
    Percent(u32),
}

impl std::str::FromStr for Amount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            match p.trim().parse::<u32>() {
                Ok(n) if n <= 100 => Ok(Amount::Percent(n)),
                _ => Err(format!("{s:?}: expected a percentage from 0% to 100%")),
            }
        } else {
            s.parse::<usize>()
                .map(Amount::Count)
                .map_err(|_| format!("{s:?}: expected a number or a percentage like 20%"))
        }
    }
}

impl Amount {
    /// Batch size out of `total` hosts: a percentage rounds down, but is at least 1.
    pub fn batch_size(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => n.max(1),
            Amount::Percent(p) => (total * p as usize / 100).max(1),
        }
    }
    /// Failures tolerated out of `total` hosts: the fan-out stops when failures exceed it.
    pub fn tolerated(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => total * p as usize / 100,
        }
    }
}

/// Which servers a fan-out covers.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    Names(Vec<String>),
    Tag(String),
    All,
}

#[derive(Debug, Clone)]
pub struct FanoutRequest {
    pub app: String,
    pub targets: Targets,
    pub inputs: std::collections::BTreeMap<String, String>,
    pub action: JobAction,
    /// Jobs at once; default `default_concurrency(hosts)`.
    pub concurrency: Option<usize>,
    /// Rolling batch size; default all hosts in one batch.
    pub batch: Option<Amount>,
    /// Failure budget; default unlimited (every host is tried).
    pub max_fail: Option<Amount>,
}

/// What a started fan-out looks like; `done` resolves with the summary.
pub struct FanoutHandle {
    pub id: u64,
    pub hosts: Vec<String>,
    pub concurrency: usize,
    pub batches: Vec<Vec<String>>,
    pub max_fail: Option<usize>,
    /// Hosts left out before the start (operator holds under --tag/--all), with the reason.
    pub excluded: Vec<(String, String)>,
    pub cancel: CancellationToken,
    pub done: tokio::task::JoinHandle<FanoutSummary>,
}

/// File descriptors each concurrent host may need (its socket, plus one for a jump tunnel).
const FDS_PER_HOST: u64 = 2;
/// Descriptors kept for the database, logs, stdio and the runtime.
const FDS_RESERVED: u64 = 64;

/// Raises the soft open-file limit to the hard one; returns (soft, hard) after, or None when
/// the limits cannot be read.
pub fn raise_nofile() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    Some((lim.rlim_cur, lim.rlim_max))
}

/// Raises the soft open-file limit and returns how many hosts fit.
pub fn fd_bound() -> usize {
    match raise_nofile() {
        Some((soft, _)) => (soft.saturating_sub(FDS_RESERVED) / FDS_PER_HOST).max(1) as usize,
        None => 50,
    }
}

/// `min(50, hosts)`, and never more than the open-file limit allows.
pub fn default_concurrency(hosts: usize) -> usize {
    hosts.clamp(1, 50).min(fd_bound())
}

static NEXT_FANOUT: AtomicU64 = AtomicU64::new(1);

impl Engine {
    /// The servers a target selection names, in a stable order (given order, else by name).
    pub fn resolve_targets(&self, t: &Targets) -> color_eyre::eyre::Result<Vec<String>> {
        Ok(match t {
            Targets::Names(n) => n.clone(),
            Targets::Tag(tag) => {
                let v: Vec<String> = self
                    .servers()?
                    .into_iter()
                    .filter(|s| s.tags.iter().any(|x| x == tag))
                    .map(|s| s.name)
                    .collect();
                if v.is_empty() {
                    color_eyre::eyre::bail!("no server has the tag {tag}");
                }
                v
            }
            Targets::All => self.servers()?.into_iter().map(|s| s.name).collect(),
        })
    }

    /// Resolves a fan-out's targets and validates it as one install request; named servers on
    /// an operator hold refuse it, the others are left out and listed. Shared by the plan.
    pub(crate) fn prepare_fanout(
        &self,
        req: &FanoutRequest,
    ) -> Result<(Prepared, Vec<(String, String)>), RequestError> {
        let names = self
            .resolve_targets(&req.targets)
            .map_err(|e| RequestError::Invalid(e.to_string()))?;
        let strict = matches!(req.targets, Targets::Names(_));
        self.prepare_inner(
            &InstallRequest {
                app: req.app.clone(),
                servers: names,
                inputs: req.inputs.clone(),
                action: req.action,
            },
            strict,
        )
    }

    /// Validates, plans the batches and starts the coordinator. Nothing starts if invalid.
    pub fn start_fanout(&self, req: &FanoutRequest) -> Result<FanoutHandle, RequestError> {
        let (prepared, excluded) = self.prepare_fanout(req)?;
        if prepared.servers.is_empty() {
            return Err(RequestError::Invalid(
                "none of the selected servers accepts jobs".into(),
            ));
        }
        let hosts: Vec<String> = prepared.servers.iter().map(|s| s.name.clone()).collect();
        let total = hosts.len();
        let concurrency = req
            .concurrency
            .unwrap_or_else(|| default_concurrency(total))
            .clamp(1, fd_bound());
        self.ensure_job_slots(concurrency);
        let size = req.batch.map(|b| b.batch_size(total)).unwrap_or(total);
        let batches: Vec<Vec<String>> = hosts.chunks(size.max(1)).map(|c| c.to_vec()).collect();
        let max_fail = req.max_fail.map(|m| m.tolerated(total));
        let id = NEXT_FANOUT.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        self.emit(Event::Fanout {
            fanout: FanoutEvent::Started {
                fanout_id: id,
                app: req.app.clone(),
                hosts: hosts.clone(),
                batches: batches.iter().map(Vec::len).collect(),
                concurrency,
                max_fail,
            },
        });
        self.audit_or_warn(
            "fanout.start",
            &req.app,
            &format!(
                "fanout #{id}: {total} hosts, batches of {size}, concurrency {concurrency}, max-fail {}",
                max_fail.map(|m| m.to_string()).unwrap_or_else(|| "none".into())
            ),
        );
        let done = tokio::spawn(coordinate(
            self.clone(),
            id,
            prepared,
            batches.clone(),
            concurrency,
            max_fail,
            cancel.clone(),
        ));
        Ok(FanoutHandle {
            id,
            hosts,
            concurrency,
            batches,
            max_fail,
            excluded,
            cancel,
            done,
        })
    }
}

fn ok(status: JobStatus) -> bool {
    status == JobStatus::Succeeded
}

async fn coordinate(
    engine: Engine,
    id: u64,
    prepared: Prepared,
    batches: Vec<Vec<String>>,
    concurrency: usize,
    max_fail: Option<usize>,
    cancel: CancellationToken,
) -> FanoutSummary {
    let mut rx = engine.subscribe();
    let mut sum = FanoutSummary::default();
    let mut stop: Option<String> = None;
    let by_name: HashMap<&str, &Server> = prepared
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    for (bi, batch) in batches.iter().enumerate() {
        if stop.is_none() {
            engine.emit(Event::Fanout {
                fanout: FanoutEvent::BatchStarted {
                    fanout_id: id,
                    batch: bi + 1,
                    hosts: batch.clone(),
                },
            });
        }
        let mut queue = batch.iter();
        let mut running: HashMap<i64, String> = HashMap::new();
        loop {
            while running.len() < concurrency && stop.is_none() {
                let Some(name) = queue.next() else { break };
                let Some(server) = by_name.get(name.as_str()) else {
                    continue;
                };
                match engine.launch_one(&prepared, server, Some(id)) {
                    Ok(job) => {
                        sum.jobs.push((name.clone(), job.id));
                        running.insert(job.id, name.clone());
                    }
                    Err(e) => {
                        // No job row to show it on (a full or read-only database): the front
                        // end hears it as a skip with the reason, and the run fails.
                        tracing::warn!("fanout #{id}: cannot start a job on {name}: {e}");
                        engine.emit(Event::Fanout {
                            fanout: FanoutEvent::Skipped {
                                fanout_id: id,
                                servers: vec![name.clone()],
                                reason: format!("its job could not be created: {e}"),
                            },
                        });
                        sum.skipped.push(name.clone());
                    }
                }
                check_budget(&sum, max_fail, &mut stop);
            }
            if running.is_empty() {
                break;
            }
            let mut ended: Vec<(i64, JobStatus)> = Vec::new();
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(Event::JobFinished { job }) if running.contains_key(&job.id) => ended.push((job.id, job.status)),
                    // Left on its server (its output could not be stored here): over for us.
                    Ok(Event::JobDetached { job }) if running.contains_key(&job.id) => ended.push((job.id, job.status)),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        // Missed events: the database knows which jobs ended.
                        for jid in running.keys() {
                            if let Ok(j) = engine.job(*jid) && j.status.is_terminal() {
                                ended.push((j.id, j.status));
                            }
                        }
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = cancel.cancelled(), if stop.as_deref() != Some(CANCELLED) => {
                    stop = Some(CANCELLED.into());
                    for jid in running.keys() {
                        // Fails only for a job that already ended: nothing left to cancel.
                        let _ = engine.cancel_job(*jid);
                    }
                }
            }
            for (jid, status) in ended {
                if let Some(name) = running.remove(&jid) {
                    if ok(status) {
                        sum.succeeded.push(name);
                    } else {
                        sum.failed.push(name);
                    }
                }
            }
            check_budget(&sum, max_fail, &mut stop);
        }
        let left: Vec<String> = queue.cloned().collect();
        if !left.is_empty() {
            let reason = stop.clone().unwrap_or_else(|| "not started".into());
            engine.emit(Event::Fanout {
                fanout: FanoutEvent::Skipped {
                    fanout_id: id,
                    servers: left.clone(),
                    reason: reason.clone(),
                },
            });
            engine.audit_or_warn(
                "fanout.skip",
                &left.join(","),
                &format!("fanout #{id}: {reason}"),
            );
            sum.skipped.extend(left);
        }
    }
    engine.audit_or_warn(
        "fanout.end",
        &prepared.installer.manifest.id,
        &format!(
            "fanout #{id}: {} succeeded, {} failed, {} skipped",
            sum.succeeded.len(),
            sum.failed.len(),
            sum.skipped.len()
        ),
    );
    engine.emit(Event::Fanout {
        fanout: FanoutEvent::Finished {
            fanout_id: id,
            summary: sum.clone(),
        },
    });
    sum
}

const CANCELLED: &str = "the fan-out was cancelled";

fn check_budget(sum: &FanoutSummary, max_fail: Option<usize>, stop: &mut Option<String>) {
    if stop.is_none()
        && let Some(m) = max_fail
        && sum.failed.len() > m
    {
        *stop = Some(format!(
            "{} hosts failed, more than --max-fail allows ({m})",
            sum.failed.len()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!("5".parse::<Amount>(), Ok(Amount::Count(5)));
        assert_eq!("20%".parse::<Amount>(), Ok(Amount::Percent(20)));
        assert!("120%".parse::<Amount>().is_err());
        assert!("x".parse::<Amount>().is_err());
        assert_eq!(Amount::Percent(20).batch_size(12), 2);
        assert_eq!(Amount::Percent(1).batch_size(12), 1);
        assert_eq!(Amount::Count(0).batch_size(12), 1);
        assert_eq!(Amount::Percent(10).tolerated(20), 2);
        assert_eq!(Amount::Count(0).tolerated(20), 0);
    }

    #[test]
    fn concurrency_rule() {
        assert!(default_concurrency(3) <= 3);
        assert!(default_concurrency(500) <= 50);
        assert!(default_concurrency(0) >= 1);
    }
}
