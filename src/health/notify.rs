//! Notifications: a generic JSON webhook, Slack-compatible incoming webhooks and the Telegram
//! bot API. Each channel has its own background worker and queue, so a slow or dead endpoint
//! never blocks checks, jobs or other channels. Each channel sends at most
//! `rate_limit_per_hour` messages in any sliding hour; what it drops is counted and reported
//! in its next message. Delivery is retried with a per-attempt timeout; failures are logged
//! (without the URL, which holds secrets) and emitted as `Event::Notification`.

use super::config::{ChannelKind, ChannelSpec, NotifySettings};
use crate::engine::{Engine, Event};
use crate::jobs::job::Job;
use crate::store::incidents::Incident;
use serde::Serialize;
use std::collections::VecDeque;
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
            ts: crate::store::now_ms(),
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
            ts: crate::store::now_ms(),
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
            " ({dropped} earlier notification{} dropped by the rate limit)",
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

/// Hands messages to the channel workers. Cheap to clone; `send` never blocks.
#[derive(Clone, Default)]
pub struct Notifier {
    channels: Vec<(String, mpsc::Sender<Message>)>,
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
            tokio::spawn(worker(
                engine.clone(),
                client.clone(),
                spec.clone(),
                settings.clone(),
                rx,
            ));
            channels.push((spec.name.clone(), tx));
        }
        Notifier { channels }
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    pub fn send(&self, m: Message) {
        for (name, tx) in &self.channels {
            if tx.try_send(m.clone()).is_err() {
                tracing::warn!(
                    "notification channel {name}: queue full, {} dropped",
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
) {
    let mut rate = RateLimit::default();
    while let Some(m) = rx.recv().await {
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
