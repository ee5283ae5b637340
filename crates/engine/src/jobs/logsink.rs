//! A job's log: lines are masked, sent to a writer task that stores them in batches (with the
//! spool position they reach, in the same transaction), and announced as events.

use crate::context::JobContext;
use crate::events::Event;
use ptui_ssh::detached::Output;
use ptui_ssh::{Backlog, SpoolPos};
use ptui_store::now_ms;
use ptui_types::job::LogStream;
use ptui_types::secret::{Masker, Secret};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Log lines are written in batches: at most this many per transaction...
const LOG_BATCH_LINES: usize = 500;
/// ...or whatever arrived within this window.
const LOG_BATCH_WINDOW: Duration = Duration::from_millis(100);
/// Output read and not yet stored, per job, before reading pauses (backpressure).
const MAX_UNSTORED_BYTES: usize = 16 * 1024 * 1024;

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
    guards: Arc<Vec<Vec<u8>>>,
    backlog: Arc<Backlog>,
    /// The configuration guard said it restored the configuration (`config_guard::ROLLED_BACK`).
    pub rolled_back: Arc<std::sync::atomic::AtomicBool>,
}

impl LogSink {
    /// A sink and its writer task for `job_id`.
    pub fn spawn(
        ctx: &JobContext,
        job_id: i64,
        secrets: Vec<Secret>,
    ) -> (LogSink, tokio::task::JoinHandle<WriterReport>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(Backlog::new(MAX_UNSTORED_BYTES));
        let writer = tokio::spawn(write_batches(ctx.clone(), job_id, rx, backlog.clone()));
        let masker = Masker::new(secrets);
        (
            LogSink {
                tx,
                guards: Arc::new(masker.split_guards()),
                masker,
                backlog,
                rolled_back: Default::default(),
            },
            writer,
        )
    }

    /// Where a remote job's output goes: `on_line`, with this sink's secrets guarded at line
    /// splits and reading paused while too much is unstored.
    pub fn output<'a>(
        &'a self,
        on_line: &'a mut (dyn FnMut(LogStream, String, SpoolPos) + Send),
    ) -> Output<'a> {
        Output {
            on_line,
            guards: &self.guards,
            backlog: Some(&self.backlog),
        }
    }

    pub fn line(&self, stream: LogStream, text: &str, pos: Option<SpoolPos>) {
        if stream == LogStream::Stderr && text.starts_with(super::config_guard::ROLLED_BACK) {
            self.rolled_back
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let text = self.masker.mask(text);
        // Counted as the writer will count it: masked.
        self.backlog.add(text.len());
        // The writer only stops after the job ended: a line sent then has nowhere to go.
        let _ = self.tx.send(RawLine {
            stream,
            ts: now_ms(),
            text,
            pos,
        });
    }

    pub fn system(&self, text: &str) {
        self.line(LogStream::System, text, None);
    }
}

/// The stored-output cap of one job: past `limit` bytes, output lines are dropped except the
/// last ones (kept in memory, at most `TAIL_BYTES`), which are stored after a marker when the
/// output stops or a system line comes. Spool positions still advance: nothing is re-read.
struct Cap {
    limit: u64,
    stored: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
    tail: std::collections::VecDeque<RawLine>,
    tail_bytes: u64,
}

const TAIL_BYTES: u64 = 256 * 1024;

impl Cap {
    /// Lines to store now, from `batch`.
    fn admit(&mut self, batch: Vec<RawLine>) -> Vec<RawLine> {
        let mut out = Vec::with_capacity(batch.len());
        for l in batch {
            if l.stream == LogStream::System {
                self.release(&mut out);
                out.push(l);
                continue;
            }
            let n = l.text.len() as u64 + 1;
            if self.dropped_lines == 0 && self.tail.is_empty() && self.stored + n <= self.limit {
                self.stored += n;
                out.push(l);
                continue;
            }
            self.tail_bytes += n;
            self.tail.push_back(l);
            while self.tail_bytes > TAIL_BYTES && self.tail.len() > 1 {
                if let Some(old) = self.tail.pop_front() {
                    let m = old.text.len() as u64 + 1;
                    self.tail_bytes -= m;
                    self.dropped_lines += 1;
                    self.dropped_bytes += m;
                }
            }
        }
        out
    }

    /// The marker and the kept last lines, if lines were dropped (else the held lines).
    fn release(&mut self, out: &mut Vec<RawLine>) {
        if self.dropped_lines > 0 {
            let (pos, ts) = self
                .tail
                .front()
                .map(|l| (l.pos, l.ts))
                .unwrap_or((None, now_ms()));
            out.push(RawLine {
                stream: LogStream::System,
                ts,
                text: format!(
                    "[{} lines, {} bytes dropped: the job's stored output passed its cap of {} MiB (PROVISION_TUI_MAX_JOB_OUTPUT_MB); the last lines follow]",
                    self.dropped_lines,
                    self.dropped_bytes,
                    self.limit / (1024 * 1024)
                ),
                pos,
            });
            self.dropped_lines = 0;
            self.dropped_bytes = 0;
        }
        self.stored += self.tail_bytes;
        self.tail_bytes = 0;
        out.extend(self.tail.drain(..));
    }
}

async fn write_batches(
    ctx: JobContext,
    job_id: i64,
    mut rx: mpsc::UnboundedReceiver<RawLine>,
    backlog: Arc<Backlog>,
) -> WriterReport {
    let mut report = WriterReport::default();
    let mut cap = Cap {
        limit: ctx.settings.max_job_output,
        stored: 0,
        dropped_lines: 0,
        dropped_bytes: 0,
        tail: Default::default(),
        tail_bytes: 0,
    };
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
        // Dropped lines still move the stored spool position on.
        let pos = batch.iter().rev().find_map(|l| l.pos);
        let bytes: usize = batch.iter().map(|l| l.text.len()).sum();
        let mut kept = cap.admit(std::mem::take(&mut batch));
        flush(&ctx, job_id, &mut kept, pos, &mut report);
        backlog.done(bytes);
    }
    let mut rest = Vec::new();
    cap.release(&mut rest);
    flush(&ctx, job_id, &mut rest, None, &mut report);
    report
}

/// After a batch fails, later ones are not stored either: the stored lines and spool
/// position then still agree, and whoever follows the job again resumes exactly there.
fn flush(
    ctx: &JobContext,
    job_id: i64,
    batch: &mut Vec<RawLine>,
    pos: Option<SpoolPos>,
    report: &mut WriterReport,
) {
    if batch.is_empty() && pos.is_none() {
        return;
    }
    if report.lost_lines > 0 {
        report.lost_lines += batch.len();
        batch.clear();
        return;
    }
    let pos = pos
        .or_else(|| batch.iter().rev().find_map(|l| l.pos))
        .map(|p| (p.out, p.err));
    let rows: Vec<(LogStream, i64, String)> =
        batch.drain(..).map(|l| (l.stream, l.ts, l.text)).collect();
    match ctx.store.append_logs_at(job_id, &rows, pos) {
        Ok(lines) if lines.is_empty() => {}
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
