//! The fan-out view of `install`: a live per-host table on a terminal (host, state, last line,
//! elapsed), and a summary table at the end. Terminal code lives here, never in the engine.

use super::out::{self, errln};
use crossterm::terminal;
use ptui_types::job::{Job, JobStatus};
use ptui_types::sanitize::terminal_line;
use ptui_types::time::now_ms;

struct Row {
    host: String,
    job: Option<i64>,
    state: String,
    last: String,
    started: Option<i64>,
    finished: Option<i64>,
    exit: Option<i64>,
    detail: String,
}

pub struct Progress {
    rows: Vec<Row>,
    drawn: u16,
}

fn rank(state: &str) -> u8 {
    match state {
        "running" => 0,
        "failed" | "cancelled" | "interrupted" => 1,
        "queued" => 2,
        "pending" => 3,
        "succeeded" => 4,
        _ => 5,
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

impl Progress {
    pub fn new(hosts: &[String]) -> Self {
        Progress {
            rows: hosts
                .iter()
                .map(|h| Row {
                    host: h.clone(),
                    job: None,
                    state: "pending".into(),
                    last: String::new(),
                    started: None,
                    finished: None,
                    exit: None,
                    detail: String::new(),
                })
                .collect(),
            drawn: 0,
        }
    }

    pub fn job(&mut self, j: &Job) {
        if let Some(r) = self.rows.iter_mut().find(|r| r.host == j.server_name) {
            r.job = Some(j.id);
            r.state = j.status.to_string();
            r.started = j.started_at.or(r.started);
            r.finished = j.finished_at;
            r.exit = j.exit_code;
            if j.status != JobStatus::Succeeded {
                r.detail = terminal_line(j.error_message.as_deref().unwrap_or("")).into_owned();
            }
        }
    }

    pub fn last_line(&mut self, job: i64, text: &str) {
        if let Some(r) = self.rows.iter_mut().find(|r| r.job == Some(job)) {
            // Sanitised before clipping, so the row's width is what the terminal shows.
            r.last = terminal_line(text).into_owned();
        }
    }

    pub fn skipped(&mut self, hosts: &[String], reason: &str) {
        for r in self.rows.iter_mut().filter(|r| hosts.contains(&r.host)) {
            r.state = "skipped".into();
            r.detail = terminal_line(reason).into_owned();
        }
    }

    /// Hosts the fan-out reports as skipped whose event we may have missed.
    pub fn skipped_if_pending(&mut self, hosts: &[String]) {
        for r in self
            .rows
            .iter_mut()
            .filter(|r| r.state == "pending" && hosts.contains(&r.host))
        {
            r.state = "skipped".into();
            r.detail = "not started".into();
        }
    }

    fn elapsed(r: &Row) -> String {
        match r.started {
            Some(s) => ptui_types::time::human_ms(r.finished.unwrap_or_else(now_ms) - s),
            None => "-".into(),
        }
    }

    fn counts(&self) -> String {
        let n = |s: &str| self.rows.iter().filter(|r| r.state == s).count();
        format!(
            "{} hosts: {} running, {} queued, {} succeeded, {} failed, {} skipped, {} pending",
            self.rows.len(),
            n("running"),
            n("queued"),
            n("succeeded"),
            n("failed") + n("cancelled") + n("interrupted"),
            n("skipped"),
            n("pending")
        )
    }

    /// Redraws the table in place on stderr: running hosts first, as many as fit.
    pub fn draw(&mut self) -> std::io::Result<()> {
        let (w, h) = terminal::size().unwrap_or((100, 30));
        let w = w as usize;
        let room = (h as usize).saturating_sub(4).max(3);
        let mut order: Vec<&Row> = self.rows.iter().collect();
        order.sort_by_key(|r| rank(&r.state));
        let mut lines = vec![self.counts()];
        let hw = self
            .rows
            .iter()
            .map(|r| r.host.len())
            .max()
            .unwrap_or(4)
            .clamp(4, 30);
        for r in order.iter().take(room) {
            let text = format!(
                "{:<hw$}  {:<11} {:>7}  {}",
                clip(&r.host, hw),
                r.state,
                Self::elapsed(r),
                if r.last.is_empty() {
                    &r.detail
                } else {
                    &r.last
                }
            );
            lines.push(clip(&text, w.saturating_sub(1).max(20)));
        }
        if order.len() > room {
            lines.push(format!("… {} more", order.len() - room));
        }
        out::redraw_stderr(self.drawn, &lines);
        self.drawn = lines.len() as u16;
        Ok(())
    }

    /// One row per host, in the order they were given.
    pub fn summary_table(&self) {
        let hw = self
            .rows
            .iter()
            .map(|r| r.host.len())
            .max()
            .unwrap_or(4)
            .max(4);
        errln!(
            "{:<hw$}  {:<11} {:>4} {:>7} {:>6}  DETAIL",
            "HOST",
            "STATE",
            "EXIT",
            "TIME",
            "JOB"
        );
        for r in &self.rows {
            errln!(
                "{:<hw$}  {:<11} {:>4} {:>7} {:>6}  {}",
                r.host,
                r.state,
                r.exit.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
                Self::elapsed(r),
                r.job.map(|j| format!("#{j}")).unwrap_or_else(|| "-".into()),
                r.detail
            );
        }
        errln!("{}", self.counts());
    }
}
