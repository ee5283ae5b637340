//! One check of one server: a lease on the pooled connection, then a single exec of the probe
//! script, all under the check's own timeout so a hung host (sshd stopped, network black hole)
//! delays nobody else. `sweep` checks many servers with bounded concurrency.

use super::probe::{self, AppProbe};
use super::{IncidentKind, Sample};
use crate::engine::Engine;
use ptui_types::error::ErrorKind;
use ptui_types::server::Server;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// What a check needs to know besides the server.
#[derive(Debug, Clone)]
pub struct CheckParams {
    pub timeout: Duration,
    pub disk_threshold: f64,
    pub memory_threshold: f64,
    pub app_timeout_secs: u64,
}

/// The apps deployed on a server whose manifest declares a health check.
pub fn app_probes(engine: &Engine, server_id: i64) -> Vec<AppProbe> {
    let catalog = engine.catalog();
    engine
        .store()
        .deployments(Some(server_id))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| {
            let check = catalog.get(&d.app_id)?.manifest.health.clone()?;
            (check.command.is_some() || check.url.is_some()).then_some(AppProbe {
                app_id: d.app_id,
                check,
            })
        })
        .collect()
}

fn classify(kind: ErrorKind, message: &str) -> IncidentKind {
    match kind {
        ErrorKind::HostKey if message.contains("HOST KEY CHANGED") => IncidentKind::HostKeyChanged,
        ErrorKind::HostKey => IncidentKind::HostKeyUnknown,
        ErrorKind::Auth => IncidentKind::AuthFailed,
        _ => IncidentKind::ServerUnreachable,
    }
}

/// Checks one server. Never fails: an unreachable server is a sample too.
pub async fn check_server(engine: &Engine, server: &Server, p: &CheckParams) -> Sample {
    let apps = app_probes(engine, server.id);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + p.timeout;
    let fail = |kind: IncidentKind, msg: String| {
        let mut s = Sample::unreachable(server.id, &server.name, kind, msg);
        s.latency_ms = started.elapsed().as_millis() as u64;
        s
    };
    let lease = match tokio::time::timeout_at(deadline, engine.pooled(server)).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => return fail(classify(e.kind, &e.message), e.message),
        Err(_) => {
            return fail(
                IncidentKind::ServerUnreachable,
                format!(
                    "no SSH session with {} within {:.1}s (connect/handshake hung)",
                    server.address(),
                    p.timeout.as_secs_f64()
                ),
            );
        }
    };
    let connect_ms = lease.fresh.then(|| started.elapsed().as_millis() as u64);
    let script = probe::body(&apps, p.app_timeout_secs);
    let out = match tokio::time::timeout_at(
        deadline,
        lease.run_resident(
            &script,
            deadline.saturating_duration_since(tokio::time::Instant::now()),
        ),
    )
    .await
    {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            drop(lease);
            engine.pool().invalidate(&server.name);
            return fail(IncidentKind::ServerUnreachable, e.message);
        }
        Err(_) => {
            // The connection is probably dead (or the host hung): dial afresh next time.
            drop(lease);
            engine.pool().invalidate(&server.name);
            return fail(
                IncidentKind::ServerUnreachable,
                format!(
                    "{} did not answer the check within {:.1}s",
                    server.address(),
                    p.timeout.as_secs_f64()
                ),
            );
        }
    };
    drop(lease);
    let facts = probe::parse(&out.stdout, &apps);
    let latency_ms = started.elapsed().as_millis() as u64;
    if !facts.complete {
        let mut s = fail(
            IncidentKind::ServerUnreachable,
            format!(
                "the check script did not finish (exit {:?}): {}",
                out.exit_code,
                out.stderr.trim()
            ),
        );
        s.connect_ms = connect_ms;
        return s;
    }
    let mounts_over: Vec<_> = facts
        .mounts
        .iter()
        .filter(|m| m.pct >= p.disk_threshold)
        .cloned()
        .collect();
    let ok = mounts_over.is_empty()
        && facts.mem_pct.is_none_or(|m| m < p.memory_threshold)
        && facts.docker.as_deref().is_none_or(|d| d == "active")
        && facts.apps.iter().all(|a| a.ok);
    Sample {
        server_id: server.id,
        server: server.name.clone(),
        ts: ptui_types::time::now_ms(),
        ok,
        failure: None,
        error: None,
        connect_ms,
        latency_ms,
        load: facts.load,
        mem_pct: facts.mem_pct,
        disk_pct: facts.root_pct,
        mounts_over,
        docker: facts.docker,
        apps: facts.apps,
        states: Vec::new(),
        maintenance: false,
    }
}

/// Checks every given server once, at most `concurrency` at a time; results in input order.
pub async fn sweep(
    engine: &Engine,
    servers: &[Server],
    p: &CheckParams,
    concurrency: usize,
) -> Vec<Sample> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(servers.len());
    for s in servers {
        let (engine, server, p, sem) = (engine.clone(), s.clone(), p.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.ok();
            check_server(&engine, &server, &p).await
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for (t, s) in tasks.into_iter().zip(servers) {
        out.push(t.await.unwrap_or_else(|e| {
            Sample::unreachable(
                s.id,
                &s.name,
                IncidentKind::ServerUnreachable,
                format!("check task failed: {e}"),
            )
        }));
    }
    out
}
