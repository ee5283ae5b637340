//! Notifications: a generic JSON webhook, Slack-compatible incoming webhooks and the Telegram
//! bot API. Each channel has its own background worker and queue, so a slow or dead endpoint
//! never blocks checks, jobs or other channels. Each channel sends at most
//! `rate_limit_per_hour` messages in any sliding hour; what it drops is counted and reported
//! in its next message. Delivery is retried with a per-attempt timeout; failures are logged
//! (without the URL, which holds secrets) and emitted as `Event::Notification`.

use super::config::{ChannelKind, ChannelSpec, NotifySettings};
use crate::engine::{Engine, Event};
use ptui_store::incidents::Incident;
use ptui_types::job::Job;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    IncidentOpened,
    IncidentResolved,
    IncidentFailed,
    IncidentReminder,
    JobFailed,
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::IncidentOpened => "incident_opened",
            Topic::IncidentResolved => "incident_resolved",
            Topic::IncidentFailed => "incident_failed",
            Topic::IncidentReminder => "incident_reminder",
            Topic::JobFailed => "job_failed",
        }
    }
}

/// One notification, before it is shaped for a channel.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub event: Topic,
    pub text: String,
    pub server: Option<String>,
    pub incident: Option<Incident>,
    pub job: Option<Job>,
    pub ts: i64,
}

impl Message {
    pub fn incident(event: Topic, inc: &Incident, note: &str) -> Message {
        let what = match event {
            Topic::IncidentOpened => "OPENED",
            Topic::IncidentResolved => "RESOLVED",
            Topic::IncidentFailed => "RECOVERY FAILED",
            Topic::IncidentReminder => "STILL OPEN",
            Topic::JobFailed => "JOB FAILED",
        };
        let app = inc
            .app_id
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        let mut text = format!(
            "[provision-tui] {what}: incident #{} {}{app} on {}: {}",
            inc.id, inc.kind, inc.server, inc.details
        );
        if !note.is_empty() {
            text.push_str(&format!(" — {note}"));
        }
        Message {
            event,
            text,
            server: Some(inc.server.clone()),
            incident: Some(inc.clone()),
            job: None,
            ts: ptui_types::time::now_ms(),
        }
    }

    pub fn job_failed(job: &Job) -> Message {
        Message {
            event: Topic::JobFailed,
            text: format!(
                "[provision-tui] JOB FAILED: #{} {} {} on {}: {}",
                job.id,
                job.action.as_str(),
                job.app_id,
                job.server_name,
                job.error_message.as_deref().unwrap_or("failed")
            ),
            server: Some(job.server_name.clone()),
            incident: None,
            job: Some(job.clone()),
            ts: ptui_types::time::now_ms(),
        }
    }
}

/// The body a channel receives.
pub fn body(
    kind: ChannelKind,
    chat_id: Option<&str>,
    m: &Message,
    dropped: u64,
) -> serde_json::Value {
    let mut text = m.text.clone();
    if dropped > 0 {
        text.push_str(&format!(
            " ({dropped} earlier notification{} dropped by the rate limit or a full queue)",
            if dropped == 1 { " was" } else { "s were" }
        ));
    }
    match kind {
        ChannelKind::Webhook => serde_json::json!({
            "event": m.event,
            "text": text,
            "server": m.server,
            "incident": m.incident,
            "job": m.job,
            "dropped": dropped,
            "ts": m.ts,
        }),
        ChannelKind::Slack => serde_json::json!({ "text": text }),
        ChannelKind::Telegram => serde_json::json!({
            "chat_id": chat_id.unwrap_or_default(),
            "text": text,
            "disable_web_page_preview": true,
        }),
    }
}

/// A sliding one-hour window of sends plus the count of drops not yet reported.
#[derive(Debug, Default)]
pub struct RateLimit {
    sent: VecDeque<Instant>,
    pub dropped: u64,
}

impl RateLimit {
    /// Whether a message may go now (and counts it); otherwise counts a drop.
    pub fn admit(&mut self, limit: u32, window: Duration, now: Instant) -> bool {
        while let Some(t) = self.sent.front() {
            if now.duration_since(*t) >= window {
                self.sent.pop_front();
            } else {
                break;
            }
        }
        if self.sent.len() as u64 >= u64::from(limit) {
            self.dropped += 1;
            return false;
        }
        self.sent.push_back(now);
        true
    }
}

/// One channel's queue, as seen by `Notifier::send`.
#[derive(Clone)]
struct Channel {
    name: String,
    tx: mpsc::Sender<Message>,
    /// Messages lost because the queue was full; the worker adds them to its rate-limit
    /// drop count, so the next delivered message reports them too.
    overflow: Arc<AtomicU64>,
}

/// Hands messages to the channel workers. Cheap to clone; `send` never blocks.
#[derive(Clone, Default)]
pub struct Notifier {
    channels: Vec<Channel>,
}

const QUEUE: usize = 1000;

impl Notifier {
    /// Starts one worker per configured channel.
    pub fn start(engine: &Engine, settings: &NotifySettings) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout.0)
            .connect_timeout(settings.timeout.0)
            .build();
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("notifications disabled: cannot build the HTTP client: {e}");
                return Notifier::default();
            }
        };
        let mut channels = Vec::new();
        for spec in &settings.channels {
            let (tx, rx) = mpsc::channel(QUEUE);
            let overflow = Arc::new(AtomicU64::new(0));
            tokio::spawn(worker(
                engine.clone(),
                client.clone(),
                spec.clone(),
                settings.clone(),
                rx,
                overflow.clone(),
            ));
            channels.push(Channel {
                name: spec.name.clone(),
                tx,
                overflow,
            });
        }
        Notifier { channels }
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    pub fn send(&self, m: Message) {
        for c in &self.channels {
            if c.tx.try_send(m.clone()).is_err() {
                let n = c.overflow.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    "notification channel {}: queue full, {} dropped ({n} not yet reported)",
                    c.name,
                    m.event.as_str()
                );
            }
        }
    }
}

fn report(engine: &Engine, channel: &str, m: &Message, outcome: &str, detail: Option<String>) {
    engine.emit(Event::Notification {
        channel: channel.to_string(),
        topic: m.event.as_str().to_string(),
        outcome: outcome.to_string(),
        detail,
    });
}

async fn worker(
    engine: Engine,
    client: reqwest::Client,
    spec: ChannelSpec,
    settings: NotifySettings,
    mut rx: mpsc::Receiver<Message>,
    overflow: Arc<AtomicU64>,
) {
    let mut rate = RateLimit::default();
    while let Some(m) = rx.recv().await {
        rate.dropped += overflow.swap(0, Ordering::Relaxed);
        if !rate.admit(
            settings.rate_limit_per_hour,
            settings.rate_limit_window.0,
            Instant::now(),
        ) {
            tracing::warn!(
                "notification channel {}: rate limit of {}/h reached, {} dropped ({} so far)",
                spec.name,
                settings.rate_limit_per_hour,
                m.event.as_str(),
                rate.dropped
            );
            report(
                &engine,
                &spec.name,
                &m,
                "dropped",
                Some(format!("rate limit {}/h", settings.rate_limit_per_hour)),
            );
            continue;
        }
        let url = match spec.target_url() {
            Ok(u) => u,
            Err(e) => {
                tracing::error!("notification channel {}: {e}", spec.name);
                report(&engine, &spec.name, &m, "failed", Some(e));
                continue;
            }
        };
        let payload = body(spec.kind, spec.chat_id.as_deref(), &m, rate.dropped);
        match deliver(&client, &url, &payload, &settings).await {
            Ok(attempts) => {
                rate.dropped = 0;
                tracing::info!(
                    "notification channel {}: {} sent (attempt {attempts})",
                    spec.name,
                    m.event.as_str()
                );
                report(&engine, &spec.name, &m, "sent", None);
            }
            Err(e) => {
                tracing::error!(
                    "notification channel {}: {} not delivered: {e}",
                    spec.name,
                    m.event.as_str()
                );
                report(&engine, &spec.name, &m, "failed", Some(e));
            }
        }
    }
}

/// POSTs with retries. Errors never contain the URL (it may hold a token).
async fn deliver(
    client: &reqwest::Client,
    url: &str,
    payload: &serde_json::Value,
    settings: &NotifySettings,
) -> Result<u32, String> {
    let mut last = String::new();
    for attempt in 1..=settings.retries + 1 {
        match client.post(url).json(payload).send().await {
            Ok(r) if r.status().is_success() => return Ok(attempt),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.without_url().to_string(),
        }
        if attempt <= settings.retries {
            tokio::time::sleep(settings.retry_delay.0 * attempt).await;
        }
    }
    Err(format!("{last} after {} attempts", settings.retries + 1))
}

#[cfg(test)]
impl Notifier {
    /// A notifier with one channel whose queue the test reads (no worker, no HTTP).
    pub(crate) fn for_test(queue: usize) -> (Notifier, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(queue);
        let n = Notifier {
            channels: vec![Channel {
                name: "test".into(),
                tx,
                overflow: Arc::new(AtomicU64::new(0)),
            }],
        };
        (n, rx)
    }

    pub(crate) fn overflow(&self) -> u64 {
        self.channels
            .iter()
            .map(|c| c.overflow.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_slides_and_counts_drops() {
        let mut r = RateLimit::default();
        let t0 = Instant::now();
        let h = Duration::from_secs(3600);
        assert!(r.admit(2, h, t0));
        assert!(r.admit(2, h, t0));
        assert!(!r.admit(2, h, t0));
        assert!(!r.admit(2, h, t0 + Duration::from_secs(3599)));
        assert_eq!(r.dropped, 2);
        assert!(r.admit(2, h, t0 + h));
    }

    /// Records the JSON bodies POSTed to it (one connection per request).
    fn hook() -> (String, std::sync::mpsc::Receiver<serde_json::Value>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = s.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        if let Ok(v) = serde_json::from_slice(&buf[end + 4..end + 4 + len]) {
                            let _ = tx.send(v);
                        }
                        break;
                    }
                }
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn a_full_queue_counts_as_dropped_and_is_reported() {
        let (_d, engine) = crate::health::test_engine(Vec::new());
        let (url, bodies) = hook();
        // A queue of one and no worker yet: the second and third messages do not fit.
        let (tx, rx) = mpsc::channel(1);
        let overflow = Arc::new(AtomicU64::new(0));
        let n = Notifier {
            channels: vec![Channel {
                name: "hook".into(),
                tx,
                overflow: overflow.clone(),
            }],
        };
        let m = |text: &str| Message {
            event: Topic::JobFailed,
            text: text.into(),
            server: None,
            incident: None,
            job: None,
            ts: 1,
        };
        for t in ["first", "second", "third"] {
            n.send(m(t));
        }
        assert_eq!(n.overflow(), 2);
        let spec: ChannelSpec =
            yaml_serde::from_str(&format!("name: hook\ntype: webhook\nurl: {url}\n")).unwrap();
        let settings = NotifySettings {
            retries: 0,
            ..Default::default()
        };
        let client = reqwest::Client::new();
        tokio::spawn(worker(engine, client, spec, settings, rx, overflow.clone()));
        let got = tokio::task::spawn_blocking(move || bodies.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("a delivery");
        assert_eq!(
            got["text"].as_str().unwrap().split(" (").next(),
            Some("first")
        );
        assert_eq!(got["dropped"], 2, "{got}");
        assert!(
            got["text"]
                .as_str()
                .unwrap()
                .contains("2 earlier notifications were dropped"),
            "{got}"
        );
        assert_eq!(overflow.load(Ordering::Relaxed), 0, "handed to the worker");
    }

    #[test]
    fn bodies_per_channel_and_dropped_note() {
        let m = Message {
            event: Topic::JobFailed,
            text: "x".into(),
            server: Some("a".into()),
            incident: None,
            job: None,
            ts: 1,
        };
        let w = body(ChannelKind::Webhook, None, &m, 3);
        assert_eq!(w["event"], "job_failed");
        assert_eq!(w["dropped"], 3);
        assert!(
            w["text"]
                .as_str()
                .unwrap()
                .contains("3 earlier notifications were dropped")
        );
        assert_eq!(
            body(ChannelKind::Slack, None, &m, 0),
            serde_json::json!({"text": "x"})
        );
        let t = body(ChannelKind::Telegram, Some("42"), &m, 0);
        assert_eq!(t["chat_id"], "42");
    }
}
