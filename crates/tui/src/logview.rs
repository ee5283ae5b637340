//! The log pane's memory: a bounded window of one job's lines. Older or newer lines are paged in
//! from the store through a `LogSource`; wrapped heights are cached per width.

use ptui_types::job::LogLine;
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
    /// Rows the pane had at the last render (for paging).
    pub rows: u16,
    heights: HashMap<i64, u16>,
    height_width: u16,
}

/// Display width of a char, with controls shown as one `?`.
pub fn char_width(c: char) -> usize {
    if c.is_control() {
        1
    } else {
        c.width().unwrap_or(0)
    }
}

/// Rows a text takes when wrapped at `width` columns.
pub fn rows_for(text: &str, width: u16) -> u16 {
    let w: usize = text.chars().map(char_width).sum();
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

    /// Shows a job: follow on, tail loaded.
    pub fn open(&mut self, job: i64, src: &dyn LogSource) {
        let (wrap, ts) = (self.wrap, self.timestamps);
        *self = LogView::new();
        self.wrap = wrap;
        self.timestamps = ts;
        self.job_id = Some(job);
        self.last_seq = src.last_seq(job);
        self.load_around(self.last_seq, src);
        self.top = self.last_seq;
    }

    fn load_at(&mut self, from: i64, src: &dyn LogSource) {
        let Some(job) = self.job_id else { return };
        self.lines = src.fetch(job, from.max(1), WINDOW).into();
        if self.heights.len() > 2 * WINDOW {
            self.heights.clear();
        }
        if let Some(l) = self.lines.back() {
            self.last_seq = self.last_seq.max(l.seq);
        }
    }

    /// Loads a window that puts `seq` three quarters down (keeps room to scroll both ways).
    fn load_around(&mut self, seq: i64, src: &dyn LogSource) {
        let from = (seq - (WINDOW as i64 * 3) / 4).max(1);
        self.load_at(from, src);
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
                    self.heights.remove(&old.seq);
                }
            }
        }
    }

    /// After lost events or another process's writes: catch up with the store.
    pub fn catch_up(&mut self, src: &dyn LogSource) {
        let Some(job) = self.job_id else { return };
        self.last_seq = src.last_seq(job);
        if self.follow {
            if self.last_seq - self.end_seq() > WINDOW as i64 || self.lines.is_empty() {
                self.load_around(self.last_seq, src);
            } else if self.last_seq > self.end_seq() {
                let more = src.fetch(job, self.end_seq() + 1, WINDOW);
                self.push(&more);
            }
        }
    }

    fn max_top(&self) -> i64 {
        (self.last_seq - self.rows.max(1) as i64 + 1).max(1)
    }

    /// Makes sure the lines from `top` for a screenful are in memory.
    pub fn ensure(&mut self, src: &dyn LogSource) {
        if self.follow || self.job_id.is_none() || self.last_seq == 0 {
            return;
        }
        let need_end = (self.top + self.rows as i64).min(self.last_seq);
        if self.top < self.first_seq() || need_end > self.end_seq() {
            if self.top < self.first_seq() {
                self.load_around(self.top + self.rows as i64, src);
            } else {
                self.load_at((self.top - WINDOW as i64 / 4).max(1), src);
            }
        }
    }

    /// Scrolls by lines; going up turns follow off.
    pub fn scroll(&mut self, delta: i64, src: &dyn LogSource) {
        if self.follow {
            if delta >= 0 {
                return;
            }
            self.follow = false;
            self.top = self.follow_top();
        }
        self.top = (self.top + delta).clamp(1, self.max_top());
        self.ensure(src);
    }

    pub fn to_top(&mut self, src: &dyn LogSource) {
        self.follow = false;
        self.top = 1;
        self.ensure(src);
    }

    /// End/G: back to the bottom, following.
    pub fn to_bottom(&mut self, src: &dyn LogSource) {
        self.follow = true;
        if self.end_seq() < self.last_seq || self.lines.is_empty() {
            self.load_around(self.last_seq, src);
        }
        self.top = self.max_top();
    }

    fn line_rows(&mut self, seq: i64, width: u16) -> u16 {
        if !self.wrap {
            return 1;
        }
        if self.height_width != width {
            self.heights.clear();
            self.height_width = width;
        }
        if let Some(h) = self.heights.get(&seq) {
            return *h;
        }
        let h = self
            .get(seq)
            .map(|l| rows_for(&l.text, width.saturating_sub(self.prefix_width())))
            .unwrap_or(1);
        self.heights.insert(seq, h);
        h
    }

    pub fn prefix_width(&self) -> u16 {
        if self.timestamps { 13 } else { 0 }
    }

    /// Top line when following: the last lines that fill the pane.
    fn follow_top(&mut self) -> i64 {
        let (rows, width) = (self.rows.max(1), self.height_width.max(1));
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

    /// The seqs to draw for a pane of `rows` x `width`, each with its row count.
    pub fn visible(&mut self, rows: u16, width: u16) -> Vec<(i64, u16)> {
        self.rows = rows;
        if self.wrap && self.height_width != width {
            self.heights.clear();
        }
        self.height_width = width;
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

    /// Jumps to the next/previous line containing the search text (in the whole log).
    pub fn find(&mut self, forward: bool, src: &dyn LogSource) -> bool {
        let (Some(job), Some(needle)) = (self.job_id, self.search.clone()) else {
            return false;
        };
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
        let found = self
            .find_in_window(&needle, from, forward)
            .or_else(|| src.find(job, &needle, from, forward));
        match found {
            Some(seq) => {
                self.hit = Some(seq);
                self.follow = false;
                self.top = (seq - self.rows as i64 / 2).clamp(1, self.max_top());
                self.ensure(src);
                true
            }
            None => false,
        }
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
        v.open(1, &src);
        assert!(v.lines.len() <= WINDOW);
        let vis = v.visible(20, 80);
        assert_eq!(vis.last().map(|x| x.0), Some(1_000_000));
        v.to_top(&src);
        assert_eq!(v.visible(20, 80).first().map(|x| x.0), Some(1));
        assert!(v.lines.len() <= WINDOW);
        v.scroll(500_000, &src);
        assert_eq!(v.visible(20, 80).first().map(|x| x.0), Some(500_001));
        assert!(v.lines.len() <= WINDOW);
    }

    #[test]
    fn scrolling_up_stops_follow_and_g_resumes() {
        let src = Synthetic { n: 100 };
        let mut v = LogView::new();
        v.open(1, &src);
        v.visible(10, 80);
        v.scroll(-3, &src);
        assert!(!v.follow);
        assert_eq!(v.visible(10, 80).first().map(|x| x.0), Some(88));
        v.push(&[line(101)]);
        assert_eq!(v.last_seq, 101);
        v.to_bottom(&src);
        assert!(v.follow);
        assert_eq!(v.visible(10, 80).last().map(|x| x.0), Some(101));
    }

    #[test]
    fn wrapped_heights_follow_width() {
        let src = Synthetic { n: 5 };
        let mut v = LogView::new();
        v.wrap = true;
        v.open(1, &src);
        let wide = v.visible(10, 80);
        assert!(wide.iter().all(|x| x.1 == 1));
        let narrow = v.visible(10, 10);
        assert!(narrow.iter().all(|x| x.1 >= 3));
    }

    #[test]
    fn search_finds_beyond_the_window() {
        let src = Synthetic { n: 100_000 };
        let mut v = LogView::new();
        v.open(1, &src);
        v.visible(10, 80);
        v.search = Some("line 42 ".into());
        assert!(v.find(true, &src));
        assert_eq!(v.hit, Some(42));
        assert!(!v.follow);
    }
}
