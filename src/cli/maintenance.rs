//! `provision-tui maintenance on|off|list` and `provision-tui metrics`.

use super::out::{self, errln, out, outln};
use super::{exit, fmt_ts};
use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use ptui_engine::Engine;
use ptui_engine::health::config::parse_duration;
use ptui_engine::health::metrics;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum MaintenanceCmd {
    /// Start a manual window: checks go on, but no incident opens and nothing is sent.
    On {
        servers: Vec<String>,
        /// The whole fleet.
        #[arg(long, conflicts_with = "servers")]
        all: bool,
        /// End it by itself after this long (e.g. 2h); default: until `maintenance off`.
        #[arg(long = "for")]
        duration: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// End the manual windows of these servers (or the fleet-wide one with --all).
    Off {
        servers: Vec<String>,
        #[arg(long, conflicts_with = "servers")]
        all: bool,
    },
    /// Manual windows in force now, and the scheduled ones from the config file.
    List {
        #[arg(long)]
        json: bool,
    },
}

fn targets(engine: &Engine, servers: &[String], all: bool) -> Result<Vec<(Option<i64>, String)>> {
    if all {
        return Ok(vec![(None, "the whole fleet".into())]);
    }
    if servers.is_empty() {
        bail!("name servers, or use --all for the whole fleet");
    }
    servers
        .iter()
        .map(|n| Ok((Some(engine.server(n)?.id), n.clone())))
        .collect()
}

pub fn run(engine: &Engine, cmd: MaintenanceCmd) -> Result<i32> {
    match cmd {
        MaintenanceCmd::On {
            servers,
            all,
            duration,
            reason,
        } => {
            let ends = match duration {
                Some(d) => Some(
                    ptui_types::time::now_ms()
                        + parse_duration(&d).map_err(|e| eyre!(e))?.as_millis() as i64,
                ),
                None => None,
            };
            for (id, label) in targets(engine, &servers, all)? {
                engine.maintenance_on(id, &label, ends, &reason)?;
                match ends {
                    Some(e) => outln!("maintenance on for {label} until {}", fmt_ts(e)),
                    None => outln!("maintenance on for {label} until `maintenance off`"),
                }
            }
        }
        MaintenanceCmd::Off { servers, all } => {
            for (id, label) in targets(engine, &servers, all)? {
                let n = engine.maintenance_off(id, &label)?;
                outln!(
                    "maintenance off for {label} ({n} window{} ended)",
                    if n == 1 { "" } else { "s" }
                );
            }
        }
        MaintenanceCmd::List { json } => {
            let manual = engine.active_maintenance()?;
            let cfg = super::health::load_config()?;
            if json {
                let sched: Vec<_> = cfg
                    .maintenance
                    .iter()
                    .map(|w| serde_json::json!({"name": w.name, "servers": w.servers, "timezone": w.timezone,
                        "start": w.start, "end": w.end, "days": w.days, "from": w.from, "to": w.to}))
                    .collect();
                out::json_pretty(&serde_json::json!({"manual": manual, "scheduled": sched}))?;
                return Ok(exit::OK);
            }
            if manual.is_empty() {
                outln!("no manual maintenance window in force");
            }
            for m in &manual {
                outln!(
                    "#{} {} since {} until {} by {} {}",
                    m.id,
                    m.server.as_deref().unwrap_or("(fleet)"),
                    fmt_ts(m.starts_at),
                    m.ends_at.map(fmt_ts).unwrap_or_else(|| "off".into()),
                    m.created_by,
                    m.reason
                );
            }
            for w in &cfg.maintenance {
                outln!("scheduled {:?}", w);
            }
        }
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[arg(long)]
    pub json: bool,
    /// Also write the Prometheus text format to this file (atomically; node_exporter textfile).
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    /// Serve the Prometheus format on http://ADDR/metrics until interrupted.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

fn write_atomic(path: &PathBuf, text: &str) -> Result<()> {
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, text).wrap_err_with(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).wrap_err_with(|| format!("cannot rename to {}", path.display()))?;
    Ok(())
}

pub async fn metrics_cmd(engine: &Engine, a: MetricsArgs) -> Result<i32> {
    let m = engine.metrics()?;
    if let Some(p) = &a.prometheus {
        write_atomic(p, &metrics::prometheus(&m))?;
    }
    if a.json {
        out::json_pretty(&m)?;
    } else if a.metrics_listen.is_none() || a.prometheus.is_none() {
        out!("{}", metrics::prometheus(&m));
    }
    if let Some(addr) = a.metrics_listen {
        serve(engine, addr).await?;
    }
    Ok(exit::OK)
}

/// A minimal HTTP/1.1 endpoint: every GET /metrics gets fresh figures.
async fn serve(engine: &Engine, addr: SocketAddr) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !addr.ip().is_loopback() {
        errln!("warning: serving metrics on non-loopback {addr}; there is no authentication");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .wrap_err_with(|| format!("cannot listen on {addr}"))?;
    errln!(
        "serving http://{}/metrics; Ctrl-C stops",
        listener.local_addr()?
    );
    loop {
        let (mut sock, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n =
                match tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf))
                    .await
                {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if path == "/metrics" || path == "/" {
                match engine.metrics() {
                    Ok(m) => ("200 OK", metrics::prometheus(&m)),
                    Err(e) => ("500 Internal Server Error", format!("{e:#}\n")),
                }
            } else {
                ("404 Not Found", "try /metrics\n".to_string())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}
