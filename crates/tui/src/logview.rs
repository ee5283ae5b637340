//! The log pane's memory: a bounded window of one job's lines. Older or newer lines are paged in
//! from the store through a `LogSource`; wrapped heights are cached per width.

use ptui_types::job::LogLine;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use unicode_width::UnicodeWidthChar;

/// Lines kept in memory at most, whatever the log's size.
pub const WINDOW: usize = 4000;

/// Where log lines come from (the engine, or a fixture in tests).
pub trait LogSource {
    fn fetch(&self, job: i64, from_seq: i64, limit: usize) -> Vec<LogLine>;
    fn last_seq(&self, job: i64) -> i64;
    /// The nearest line containing `needle` at or after (before) `from_seq`.
    fn find(&self, job: i64, needle: &str, from_seq: i64, forward: bool) -> Option<i64>;
}

impl LogSource for ptui_engine::Engine {
    fn fetch(&self, job: i64, from_seq: i64, limit: usize) -> Vec<LogLine> {
        self.job_logs(job, from_seq, limit).unwrap_or_default()
    }
    fn last_seq(&self, job: i64) -> i64 {
        self.job_log_count(job).unwrap_or(0)
    }
    fn find(&self, job: i64, needle: &str, from_seq: i64, forward: bool) -> Option<i64> {
        self.find_log_line(job, needle, from_seq, forward)
            .ok()
            .flatten()
    }
}

/// A read the log pane needs from the store; the loop runs it off the event loop.
#[derive(Debug, Clone, PartialEq)]
pub enum LogWant {
    /// The log's length and its tail.
    Open,
    /// `WINDOW` lines from this seq.
    Window { from: i64 },
    /// The log's length, and when following the lines after `end` (or a new tail).
    CatchUp { end: i64, follow: bool },
    /// The nearest line containing `needle` from `from`; `miss` is shown when there is none.
    Find {
        needle: String,
        from: i64,
        forward: bool,
        miss: String,
    },
}

/// What a `LogWant` read.
#[derive(Debug, Clone)]
pub enum LogGot {
    Opened {
        last_seq: i64,
        lines: Vec<LogLine>,
    },
    Window {
        lines: Vec<LogLine>,
    },
    CatchUp {
        last_seq: i64,
        lines: Vec<LogLine>,
        /// The lines are a new window, not a continuation.
        replace: bool,
    },
    Found {
        seq: Option<i64>,
        miss: String,
    },
}

/// The first seq of a window that puts `seq` three quarters down (room to scroll both ways).
fn window_around(seq: i64) -> i64 {
    (seq - (WINDOW as i64 * 3) / 4).max(1)
}

/// Runs a want against the store (on a blocking thread in the dashboard).
pub fn perform(src: &dyn LogSource, job: i64, want: LogWant) -> LogGot {
    match want {
        LogWant::Open => {
            let last_seq = src.last_seq(job);
            LogGot::Opened {
                last_seq,
                lines: src.fetch(job, window_around(last_seq), WINDOW),
            }
        }
        LogWant::Window { from } => LogGot::Window {
            lines: src.fetch(job, from.max(1), WINDOW),
        },
        LogWant::CatchUp { end, follow } => {
            let last_seq = src.last_seq(job);
            let (lines, replace) = if !follow {
                (Vec::new(), false)
            } else if last_seq - end > WINDOW as i64 || end == 0 {
                (src.fetch(job, window_around(last_seq), WINDOW), true)
            } else if last_seq > end {
                (src.fetch(job, end + 1, WINDOW), false)
            } else {
                (Vec::new(), false)
            };
            LogGot::CatchUp {
                last_seq,
                lines,
                replace,
            }
        }
        LogWant::Find {
            needle,
            from,
            forward,
            miss,
        } => LogGot::Found {
            seq: src.find(job, &needle, from, forward),
            miss,
        },
    }
}

#[derive(Debug, Default)]
pub struct LogView {
    pub job_id: Option<i64>,
    /// Contiguous lines, oldest first.
    pub lines: VecDeque<LogLine>,
    /// Highest seq the log has (may be beyond the window).
    pub last_seq: i64,
    /// Seq of the top line when not following.
    pub top: i64,
    pub follow: bool,
    pub wrap: bool,
    pub timestamps: bool,
    pub search: Option<String>,
    /// Seq of the current match, if any.
    pub hit: Option<i64>,
    /// Rows the pane had at the last render (for paging); set by the view.
    pub rows: Cell<u16>,
    /// The next read wanted from the store (the latest replaces an older one not yet sent).
    want: Option<LogWant>,
    /// A read is running: the next is sent when it answers.
    loading: bool,
    /// Wrapped heights by seq at `height_width` columns: a cache the view fills.
    heights: RefCell<HashMap<i64, u16>>,
    height_width: Cell<u16>,
}

/// Display width of a char of sanitised text (`views::clean` leaves no controls; one would
/// count as one column).
pub fn char_width(c: char) -> usize {
    if c.is_control() {
        1
    } else {
        c.width().unwrap_or(0)
    }
}

/// Rows a text takes when wrapped at `width` columns, measured as the view shows it.
pub fn rows_for(text: &str, width: u16) -> u16 {
    let shown = ptui_types::sanitize::terminal_line(text);
    let w: usize = shown.chars().map(char_width).sum();
    let width = width.max(1) as usize;
    w.div_ceil(width).clamp(1, u16::MAX as usize) as u16
}

impl LogView {
    pub fn new() -> Self {
        LogView {
            follow: true,
            ..Default::default()
        }
    }

    pub fn first_seq(&self) -> i64 {
        self.lines.front().map(|l| l.seq).unwrap_or(1)
    }

    pub fn end_seq(&self) -> i64 {
        self.lines.back().map(|l| l.seq).unwrap_or(0)
    }

    pub fn get(&self, seq: i64) -> Option<&LogLine> {
        let first = self.lines.front()?.seq;
        if seq < first {
            return None;
        }
        self.lines.get((seq - first) as usize)
    }

    /// Whether a read from the store is wanted or running (the pane may show a placeholder).
    pub fn loading(&self) -> bool {
        self.loading || self.want.is_some()
    }

    /// The read to send now, if any and none is running; marks it running.
    pub fn take_want(&mut self) -> Option<(i64, LogWant)> {
        if self.loading {
            return None;
        }
        let job = self.job_id?;
        let want = self.want.take()?;
        self.loading = true;
        Some((job, want))
    }

    /// Applies a read's answer for `job`; an answer for another job is dropped. Returns the
    /// message to show when a search found nothing.
    pub fn apply(&mut self, job: i64, got: LogGot) -> Option<String> {
        if self.job_id != Some(job) {
            return None;
        }
        self.loading = false;
        match got {
            LogGot::Opened { last_seq, lines } => {
                self.last_seq = self.last_seq.max(last_seq);
                self.set_window(lines);
                self.top = self.last_seq;
                self.catch_up_if_behind();
            }
            LogGot::Window { lines } => {
                self.set_window(lines);
                self.catch_up_if_behind();
            }
            LogGot::CatchUp {
                last_seq,
                lines,
                replace,
            } => {
                self.last_seq = self.last_seq.max(last_seq);
                if self.follow && replace {
                    self.set_window(lines);
                } else if self.follow {
                    self.push(&lines);
                }
            }
            LogGot::Found { seq: Some(seq), .. } => self.jump_to_hit(seq),
            LogGot::Found { seq: None, miss } => return Some(miss),
        }
        self.ensure();
        None
    }

    /// Runs every wanted read at once against `src` (tests and benches without a loop).
    pub fn settle(&mut self, src: &dyn LogSource) -> Vec<String> {
        let mut misses = Vec::new();
        while let Some((job, want)) = self.take_want() {
            misses.extend(self.apply(job, perform(src, job, want)));
        }
        misses
    }

    /// Shows a job: follow on, tail loaded.
    pub fn open(&mut self, job: i64) {
        let (wrap, ts) = (self.wrap, self.timestamps);
        *self = LogView::new();
        self.wrap = wrap;
        self.timestamps = ts;
        self.job_id = Some(job);
        self.want = Some(LogWant::Open);
    }

    fn set_window(&mut self, lines: Vec<LogLine>) {
        self.lines = lines.into();
        let heights = self.heights.get_mut();
        if heights.len() > 2 * WINDOW {
            heights.clear();
        }
        if let Some(l) = self.lines.back() {
            self.last_seq = self.last_seq.max(l.seq);
        }
    }

    /// Asks for a window that puts `seq` three quarters down.
    fn load_around(&mut self, seq: i64) {
        self.want = Some(LogWant::Window {
            from: window_around(seq),
        });
    }

    /// New lines from the engine. Kept if they continue the window and we are at its end.
    pub fn push(&mut self, lines: &[LogLine]) {
        for l in lines {
            self.last_seq = self.last_seq.max(l.seq);
            if l.seq != self.end_seq() + 1 {
                continue;
            }
            if !self.follow && self.lines.len() >= WINDOW {
                continue; // paged in later if the user scrolls down
            }
            self.lines.push_back(l.clone());
            while self.lines.len() > WINDOW {
                if let Some(old) = self.lines.pop_front() {
                    self.heights.get_mut().remove(&old.seq);
                }
            }
        }
    }

    /// Lines pushed while a window was read are not in it: fetch them.
    fn catch_up_if_behind(&mut self) {
        if self.follow && self.last_seq > self.end_seq() {
            self.catch_up();
        }
    }

    /// After lost events or another process's writes: catch up with the store.
    pub fn catch_up(&mut self) {
        if self.job_id.is_none() {
            return;
        }
        // An open or window read in flight answers with the newest lines anyway.
        if self.want.is_none() {
            self.want = Some(LogWant::CatchUp {
                end: if self.lines.is_empty() {
                    0
                } else {
                    self.end_seq()
                },
                follow: self.follow,
            });
        }
    }

    fn max_top(&self) -> i64 {
        (self.last_seq - self.rows.get().max(1) as i64 + 1).max(1)
    }

    /// Asks for the lines from `top` for a screenful when they are not in memory.
    pub fn ensure(&mut self) {
        if self.follow || self.job_id.is_none() || self.last_seq == 0 {
            return;
        }
        let rows = self.rows.get() as i64;
        let need_end = (self.top + rows).min(self.last_seq);
        if self.top < self.first_seq() || need_end > self.end_seq() {
            if self.top < self.first_seq() {
                self.load_around(self.top + rows);
            } else {
                self.want = Some(LogWant::Window {
                    from: (self.top - WINDOW as i64 / 4).max(1),
                });
            }
        }
    }

    /// Scrolls by lines; going up turns follow off.
    pub fn scroll(&mut self, delta: i64) {
        if self.follow {
            if delta >= 0 {
                return;
            }
            self.follow = false;
            self.top = self.follow_top();
        }
        self.top = (self.top + delta).clamp(1, self.max_top());
        self.ensure();
    }

    pub fn to_top(&mut self) {
        self.follow = false;
        self.top = 1;
        self.ensure();
    }

    /// End/G: back to the bottom, following.
    pub fn to_bottom(&mut self) {
        self.follow = true;
        if self.end_seq() < self.last_seq || self.lines.is_empty() {
            self.load_around(self.last_seq);
        }
        self.top = self.max_top();
    }

    fn line_rows(&self, seq: i64, width: u16) -> u16 {
        if !self.wrap {
            return 1;
        }
        if self.height_width.get() != width {
            self.heights.borrow_mut().clear();
            self.height_width.set(width);
        }
        if let Some(h) = self.heights.borrow().get(&seq) {
            return *h;
        }
        let h = self
            .get(seq)
            .map(|l| rows_for(&l.text, width.saturating_sub(self.prefix_width())))
            .unwrap_or(1);
        self.heights.borrow_mut().insert(seq, h);
        h
    }

    pub fn prefix_width(&self) -> u16 {
        if self.timestamps { 13 } else { 0 }
    }

    /// Top line when following: the last lines that fill the pane.
    fn follow_top(&self) -> i64 {
        let (rows, width) = (self.rows.get().max(1), self.height_width.get().max(1));
        let mut used = 0u16;
        let mut seq = self.end_seq();
        while seq >= self.first_seq() && seq >= 1 {
            let h = self.line_rows(seq, width);
            if used + h > rows && used > 0 {
                return seq + 1;
            }
            used = used.saturating_add(h);
            seq -= 1;
        }
        self.first_seq()
    }

    /// The seqs to draw for a pane of `rows` x `width`, each with its row count. Remembers the
    /// pane's size for paging.
    pub fn visible(&self, rows: u16, width: u16) -> Vec<(i64, u16)> {
        self.rows.set(rows);
        if self.wrap && self.height_width.get() != width {
            self.heights.borrow_mut().clear();
        }
        self.height_width.set(width);
        let start = if self.follow {
            self.follow_top()
        } else {
            self.top
        };
        let mut out = Vec::new();
        let mut used = 0u16;
        let mut seq = start;
        while used < rows && seq <= self.end_seq() {
            if self.get(seq).is_none() {
                break;
            }
            let h = self.line_rows(seq, width);
            out.push((seq, h));
            used = used.saturating_add(h);
            seq += 1;
        }
        out
    }

    /// Jumps to the next/previous line containing the search text (in the whole log). A miss
    /// in memory asks the store; `miss` is the message shown if it has none either. False
    /// when there is no search.
    pub fn find(&mut self, forward: bool, miss: String) -> bool {
        let Some(needle) = self.search.clone() else {
            return false;
        };
        if self.job_id.is_none() {
            return false;
        }
        let from = match self.hit {
            Some(h) if forward => h + 1,
            Some(h) => h - 1,
            None if self.follow => {
                if forward {
                    1
                } else {
                    self.last_seq
                }
            }
            None => self.top,
        };
        match self.find_in_window(&needle, from, forward) {
            Some(seq) => self.jump_to_hit(seq),
            None => {
                self.want = Some(LogWant::Find {
                    needle,
                    from,
                    forward,
                    miss,
                })
            }
        }
        true
    }

    fn jump_to_hit(&mut self, seq: i64) {
        self.hit = Some(seq);
        self.follow = false;
        self.top = (seq - self.rows.get() as i64 / 2).clamp(1, self.max_top());
        self.ensure();
    }

    fn find_in_window(&self, needle: &str, from: i64, forward: bool) -> Option<i64> {
        let hit = |l: &&LogLine| l.text.contains(needle);
        if from < self.first_seq() || from > self.end_seq() {
            return None;
        }
        if forward {
            self.lines
                .iter()
                .filter(|l| l.seq >= from)
                .find(hit)
                .map(|l| l.seq)
        } else {
            self.lines
                .iter()
                .rev()
                .filter(|l| l.seq <= from)
                .find(hit)
                .map(|l| l.seq)
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use ptui_types::job::LogStream;

    /// A synthetic log of `n` lines that never exists in memory as a whole.
    pub struct Synthetic {
        pub n: i64,
    }

    pub fn line(seq: i64) -> LogLine {
        LogLine {
            job_id: 1,
            seq,
            stream: if seq % 10 == 0 {
                LogStream::Stderr
            } else {
                LogStream::Stdout
            },
            ts: 1_700_000_000_000 + seq,
            text: format!("line {seq} of the build output"),
        }
    }

    impl LogSource for Synthetic {
        fn fetch(&self, _job: i64, from: i64, limit: usize) -> Vec<LogLine> {
            (from..(from + limit as i64).min(self.n + 1))
                .map(line)
                .collect()
        }
        fn last_seq(&self, _job: i64) -> i64 {
            self.n
        }
        fn find(&self, _job: i64, needle: &str, from: i64, forward: bool) -> Option<i64> {
            let mut s = from;
            while s >= 1 && s <= self.n {
                if line(s).text.contains(needle) {
                    return Some(s);
                }
                s += if forward { 1 } else { -1 };
            }
            None
        }
    }

    #[test]
    fn a_million_lines_stay_bounded() {
        let src = Synthetic { n: 1_000_000 };
        let mut v = LogView::new();
        v.open(1);
        v.settle(&src);
        assert!(v.lines.len() <= WINDOW);
        let vis = v.visible(20, 80);
        assert_eq!(vis.last().map(|x| x.0), Some(1_000_000));
        v.to_top();
        v.settle(&src);
        assert_eq!(v.visible(20, 80).first().map(|x| x.0), Some(1));
        assert!(v.lines.len() <= WINDOW);
        v.scroll(500_000);
        v.settle(&src);
        assert_eq!(v.visible(20, 80).first().map(|x| x.0), Some(500_001));
        assert!(v.lines.len() <= WINDOW);
    }

    #[test]
    fn scrolling_up_stops_follow_and_g_resumes() {
        let src = Synthetic { n: 100 };
        let mut v = LogView::new();
        v.open(1);
        v.settle(&src);
        v.visible(10, 80);
        v.scroll(-3);
        v.settle(&src);
        assert!(!v.follow);
        assert_eq!(v.visible(10, 80).first().map(|x| x.0), Some(88));
        v.push(&[line(101)]);
        assert_eq!(v.last_seq, 101);
        v.to_bottom();
        v.settle(&src);
        assert!(v.follow);
        assert_eq!(v.visible(10, 80).last().map(|x| x.0), Some(101));
    }

    #[test]
    fn wrapped_heights_follow_width() {
        let src = Synthetic { n: 5 };
        let mut v = LogView::new();
        v.wrap = true;
        v.open(1);
        v.settle(&src);
        let wide = v.visible(10, 80);
        assert!(wide.iter().all(|x| x.1 == 1));
        let narrow = v.visible(10, 10);
        assert!(narrow.iter().all(|x| x.1 >= 3));
    }

    #[test]
    fn search_finds_beyond_the_window() {
        let src = Synthetic { n: 100_000 };
        let mut v = LogView::new();
        v.open(1);
        v.settle(&src);
        v.visible(10, 80);
        v.search = Some("line 42 ".into());
        assert!(v.find(true, String::new()));
        assert!(v.settle(&src).is_empty(), "found");
        assert_eq!(v.hit, Some(42));
        assert!(!v.follow);
    }
}
