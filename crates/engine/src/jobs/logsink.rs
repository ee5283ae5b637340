//! A job's log: lines are masked, sent to a writer task that stores them in batches (with the
//! spool position they reach, in the same transaction), and announced as events.

use crate::context::JobContext;
use crate::events::Event;
use ptui_ssh::SpoolPos;
use ptui_store::now_ms;
use ptui_types::job::LogStream;
use ptui_types::secret::{Masker, Secret};
use std::time::Duration;
use tokio::sync::mpsc;

/// Log lines are written in batches: at most this many per transaction...
const LOG_BATCH_LINES: usize = 500;
/// ...or whatever arrived within this window.
const LOG_BATCH_WINDOW: Duration = Duration::from_millis(100);

struct RawLine {
    stream: LogStream,
    ts: i64,
    text: String,
    /// For output lines: the spool position just past this line.
    pos: Option<SpoolPos>,
}

/// What the writer managed to store.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WriterReport {
    /// Lines that could not be stored (disk full, read-only database).
    pub lost_lines: usize,
}

/// Sends masked lines to the writer.
#[derive(Clone)]
pub(crate) struct LogSink {
    tx: mpsc::UnboundedSender<RawLine>,
    pub masker: Masker,
}

impl LogSink {
    /// A sink and its writer task for `job_id`.
    pub fn spawn(
        ctx: &JobContext,
        job_id: i64,
        secrets: Vec<Secret>,
    ) -> (LogSink, tokio::task::JoinHandle<WriterReport>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_batches(ctx.clone(), job_id, rx));
        (
            LogSink {
                tx,
                masker: Masker::new(secrets),
            },
            writer,
        )
    }

    pub fn line(&self, stream: LogStream, text: &str, pos: Option<SpoolPos>) {
        // The writer only stops after the job ended: a line sent then has nowhere to go.
        let _ = self.tx.send(RawLine {
            stream,
            ts: now_ms(),
            text: self.masker.mask(text),
            pos,
        });
    }

    pub fn system(&self, text: &str) {
        self.line(LogStream::System, text, None);
    }
}

async fn write_batches(
    ctx: JobContext,
    job_id: i64,
    mut rx: mpsc::UnboundedReceiver<RawLine>,
) -> WriterReport {
    let mut report = WriterReport::default();
    let mut batch: Vec<RawLine> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LOG_BATCH_WINDOW;
        while batch.len() < LOG_BATCH_LINES {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(l)) => batch.push(l),
                _ => break,
            }
        }
        flush(&ctx, job_id, &mut batch, &mut report);
    }
    flush(&ctx, job_id, &mut batch, &mut report);
    report
}

/// After a batch fails, later ones are not stored either: the stored lines and spool
/// position then still agree, and whoever follows the job again resumes exactly there.
fn flush(ctx: &JobContext, job_id: i64, batch: &mut Vec<RawLine>, report: &mut WriterReport) {
    if batch.is_empty() {
        return;
    }
    if report.lost_lines > 0 {
        report.lost_lines += batch.len();
        batch.clear();
        return;
    }
    let pos = batch
        .iter()
        .rev()
        .find_map(|l| l.pos)
        .map(|p| (p.out, p.err));
    let rows: Vec<(LogStream, i64, String)> =
        batch.drain(..).map(|l| (l.stream, l.ts, l.text)).collect();
    match ctx.store.append_logs_at(job_id, &rows, pos) {
        Ok(lines) => ctx.emit(Event::JobLog { job_id, lines }),
        Err(e) => {
            report.lost_lines += rows.len();
            tracing::error!(
                "job #{job_id}: cannot store {} log lines: {e:#}",
                rows.len()
            );
        }
    }
}
