//! A linear pre-check of a manifest's nesting depth, run before the YAML parser sees the text.
//! libyaml's scanner keeps one simple-key slot per open flow collection and walks them on every
//! token, so a 400 KB run of `[` costs minutes; here the same text is refused in milliseconds.
//!
//! This follows libyaml's own token rules (which characters start a token, where plain, quoted
//! and block scalars and comments end, how block indentation rolls and unrolls), so a bracket
//! inside a string is not counted while every real collection is. Where libyaml would stop with
//! an error the scan just goes on: libyaml parses nothing past that point, so counting more can
//! only make the check stricter, never let a deep document through.

/// Deeper than any real manifest (the bundled ones reach 5) and far below the quadratic zone.
pub const MAX_NESTING: usize = 64;

/// Where the nesting first passes `MAX_NESTING` (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    pub line: usize,
    pub column: usize,
}

/// What the scan found: the first place nesting passes the limit, and the first alias (for
/// naming a line when the parser refuses an alias bomb without one).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    pub too_deep: Option<TooDeep>,
    pub first_alias: Option<(usize, usize)>,
}

pub fn scan(text: &str) -> Scan {
    scan_limited(text, MAX_NESTING)
}

fn scan_limited(text: &str, limit: usize) -> Scan {
    let mut s = Scanner {
        limit,
        b: text.as_bytes(),
        i: 0,
        line: 1,
        col: 0,
        flows: Vec::new(),
        pairs: 0,
        flow_key_pending: false,
        swallowed: 0,
        indents: Vec::new(),
        indentless: 0,
        key_allowed: true,
        block_key_col: None,
        key_max: 0,
        out: Scan::default(),
    };
    s.run();
    s.out
}

struct Scanner<'a> {
    limit: usize,
    b: &'a [u8],
    i: usize,
    line: usize,
    /// In characters, as libyaml counts columns.
    col: usize,
    /// Open flow collections: whether each is a sequence, and whether a `key: value` pair is
    /// open in it (`[a: b]` is a sequence holding a one-pair mapping: one level more).
    flows: Vec<Flow>,
    /// Open one-pair mappings inside flow sequences.
    pairs: usize,
    /// A `?` in a flow sequence was the last token.
    flow_key_pending: bool,
    /// Sequences libyaml's parser keeps open past their `]` (never closed here: stricter).
    swallowed: usize,
    /// libyaml's block indentation stack (columns of the open block collections).
    /// Each with whether an "indentless" sequence is open at it (`key:` then `- x` at the
    /// key's column: a sequence with no indentation of its own, so one level the stack misses).
    indents: Vec<(usize, bool)>,
    indentless: usize,
    /// libyaml's `simple_key_allowed`.
    key_allowed: bool,
    /// The column of a possible simple key at flow level 0 on this line.
    block_key_col: Option<usize>,
    /// The deepest level reached since that key started.
    key_max: usize,
    out: Scan,
}

#[derive(Debug, Clone, Copy)]
struct Flow {
    seq: bool,
    pair: bool,
    /// The deepest level reached in the current entry (since the `[`, `{` or last `,`).
    entry_max: usize,
}

fn is_anchor_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn is_tag_char(c: u8) -> bool {
    is_anchor_char(c) || b";/?:@&=+$.%!~*'()".contains(&c)
}

impl Scanner<'_> {
    fn at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }
    fn is(&self, k: usize, c: u8) -> bool {
        self.at(k) == Some(c)
    }
    /// Length of a line break at `i + k` (LF, CR, CRLF, NEL, LS, PS), 0 if none.
    fn break_len(&self, k: usize) -> usize {
        match (self.at(k), self.at(k + 1), self.at(k + 2)) {
            (Some(b'\r'), Some(b'\n'), _) => 2,
            (Some(b'\r' | b'\n'), _, _) => 1,
            (Some(0xC2), Some(0x85), _) => 2,
            (Some(0xE2), Some(0x80), Some(0xA8 | 0xA9)) => 3,
            _ => 0,
        }
    }
    fn is_blank(&self, k: usize) -> bool {
        matches!(self.at(k), Some(b' ' | b'\t'))
    }
    fn is_blankz(&self, k: usize) -> bool {
        self.at(k).is_none() || self.is_blank(k) || self.break_len(k) > 0
    }
    fn eof(&self) -> bool {
        self.i >= self.b.len()
    }
    /// Moves past one character (or one line break).
    fn skip(&mut self) {
        let n = self.break_len(0);
        if n > 0 {
            self.i += n;
            self.line += 1;
            self.col = 0;
            return;
        }
        self.i += 1;
        while self.at(0).is_some_and(|c| c & 0xC0 == 0x80) {
            self.i += 1;
        }
        self.col += 1;
    }
    fn skip_to_break(&mut self) {
        while !self.eof() && self.break_len(0) == 0 {
            self.skip();
        }
    }
    fn parent_indent(&self) -> i64 {
        self.indents.last().map_or(-1, |&(c, _)| c as i64)
    }
    fn depth(&self) -> usize {
        self.indents.len() + self.indentless + self.flows.len() + self.pairs + self.swallowed
    }
    fn check(&mut self, depth: usize) {
        if self.out.too_deep.is_none() && depth > self.limit {
            self.out.too_deep = Some(TooDeep {
                line: self.line,
                column: self.col + 1,
            });
        }
    }
    /// After a level opened: checks it, and remembers it for a key or entry that may yet turn
    /// out to sit one level deeper (see `wrap`).
    fn deeper(&mut self) {
        let d = self.depth();
        self.key_max = self.key_max.max(d);
        if let Some(f) = self.flows.last_mut() {
            f.entry_max = f.entry_max.max(d);
        }
        self.check(d);
    }
    /// `[[a]]: b` or `[[[a]]: b]`: the mapping is known only at the `:`, and everything in the
    /// key already scanned sits one level deeper than it was counted.
    fn wrap(&mut self, key_max: usize) {
        self.check(key_max + 1);
        self.key_max = self.key_max.max(key_max + 1);
        if let Some(f) = self.flows.last_mut() {
            f.entry_max = f.entry_max.max(key_max + 1);
        }
    }
    /// Pushes a block level if libyaml would; returns whether it did.
    fn roll(&mut self, column: usize) -> bool {
        if self.flows.is_empty() && self.parent_indent() < column as i64 {
            self.indents.push((column, false));
            self.deeper();
            return true;
        }
        false
    }
    fn pop_indent(&mut self) {
        if self.indents.pop().is_some_and(|(_, seq)| seq) {
            self.indentless -= 1;
        }
    }
    /// A `-` at the column of the open block collection: an indentless sequence. Counted until
    /// that collection closes (it may end sooner; counting longer is only stricter).
    fn indentless_sequence(&mut self) {
        if self.flows.is_empty()
            && let Some(top) = self.indents.last_mut()
            && top.0 == self.col
            && !top.1
        {
            top.1 = true;
            self.indentless += 1;
            self.deeper();
        }
    }
    /// A `?` or `:` inside a flow sequence opens a one-pair mapping until the next `,` or `]`.
    fn open_pair(&mut self) {
        if let Some(f) = self.flows.last_mut().filter(|f| f.seq && !f.pair) {
            f.pair = true;
            let entry_max = f.entry_max;
            self.pairs += 1;
            self.deeper();
            self.wrap(entry_max);
        }
    }
    fn save_key(&mut self) {
        if self.flows.is_empty() && self.key_allowed {
            self.block_key_col = Some(self.col);
            self.key_max = self.depth();
        }
    }
    fn remove_key(&mut self) {
        if self.flows.is_empty() {
            self.block_key_col = None;
        }
    }

    fn run(&mut self) {
        loop {
            self.skip_to_next_token();
            if self.eof() || self.out.too_deep.is_some() {
                return;
            }
            if self.flows.is_empty() {
                while self.indents.last().is_some_and(|&(c, _)| c > self.col) {
                    self.pop_indent();
                }
            }
            self.token();
        }
    }

    /// libyaml's `scan_skip_to_next_token`: blanks, comments and line breaks.
    fn skip_to_next_token(&mut self) {
        loop {
            if self.col == 0 && self.b[self.i..].starts_with("\u{feff}".as_bytes()) {
                self.skip();
            }
            while self.is_blank(0) {
                self.skip();
            }
            if self.is(0, b'#') {
                self.skip_to_break();
            }
            if self.break_len(0) > 0 {
                self.skip();
                self.block_key_col = None; // a simple key cannot span lines
                if self.flows.is_empty() {
                    self.key_allowed = true;
                }
            } else {
                return;
            }
        }
    }

    fn token(&mut self) {
        let c = self.b[self.i];
        let after_flow_key = std::mem::take(&mut self.flow_key_pending);
        let at_line_start = self.col == 0;
        let marker = |s: &Self, m: u8| s.is(0, m) && s.is(1, m) && s.is(2, m) && s.is_blankz(3);
        if at_line_start && c == b'%' {
            self.skip_to_break();
        } else if at_line_start && (marker(self, b'-') || marker(self, b'.')) {
            if self.flows.is_empty() {
                while !self.indents.is_empty() {
                    self.pop_indent();
                }
            }
            self.remove_key();
            self.key_allowed = false;
            self.skip();
            self.skip();
            self.skip();
        } else if c == b'[' || c == b'{' {
            self.save_key();
            let entry_max = self.depth() + 1;
            self.flows.push(Flow {
                seq: c == b'[',
                pair: false,
                entry_max,
            });
            self.key_allowed = true;
            self.deeper();
            self.skip();
        } else if c == b']' || c == b'}' {
            if after_flow_key && c == b']' {
                // libyaml's parser skips the `]` of `[? ]`: its sequence stays open.
                self.swallowed += 1;
            }
            if let Some(f) = self.flows.pop() {
                if f.pair {
                    self.pairs -= 1;
                }
                // The closed collection is part of the entry around it.
                if let Some(outer) = self.flows.last_mut() {
                    outer.entry_max = outer.entry_max.max(f.entry_max);
                }
            }
            self.key_allowed = false;
            self.skip();
        } else if c == b',' {
            if let Some(f) = self.flows.last_mut().filter(|f| f.pair) {
                f.pair = false;
                self.pairs -= 1;
            }
            let d = self.depth();
            if let Some(f) = self.flows.last_mut() {
                f.entry_max = d;
            }
            self.remove_key();
            self.key_allowed = true;
            self.skip();
        } else if (c == b'-' && self.is_blankz(1))
            || (c == b'?' && (!self.flows.is_empty() || self.is_blankz(1)))
        {
            if !self.roll(self.col) && c == b'-' {
                self.indentless_sequence();
            }
            if c == b'?' {
                self.open_pair();
                self.flow_key_pending = self.flows.last().is_some_and(|f| f.seq);
            }
            self.remove_key();
            self.key_allowed = c == b'-' || self.flows.is_empty();
            self.skip();
        } else if c == b':' && (!self.flows.is_empty() || self.is_blankz(1)) {
            // In a flow collection the key is an inner level's; roll() does nothing there.
            let key = if self.flows.is_empty() {
                self.block_key_col.take()
            } else {
                None
            };
            let key_max = self.key_max;
            if self.roll(key.unwrap_or(self.col)) && key.is_some() {
                self.wrap(key_max);
            }
            self.open_pair();
            self.key_allowed = self.flows.is_empty();
            self.skip();
        } else if c == b'*' || c == b'&' {
            if c == b'*' && self.out.first_alias.is_none() {
                self.out.first_alias = Some((self.line, self.col + 1));
            }
            self.save_key();
            self.key_allowed = false;
            self.skip();
            while self.at(0).is_some_and(is_anchor_char) {
                self.skip();
            }
        } else if c == b'!' {
            self.save_key();
            self.key_allowed = false;
            self.tag();
        } else if (c == b'|' || c == b'>') && self.flows.is_empty() {
            self.remove_key();
            self.key_allowed = true;
            self.block_scalar();
        } else if c == b'\'' || c == b'"' {
            self.save_key();
            self.key_allowed = false;
            self.quoted(c);
        } else {
            // Everything else starts a plain scalar (or is an error libyaml stops at).
            self.save_key();
            self.key_allowed = self.plain();
        }
    }

    fn tag(&mut self) {
        self.skip();
        if self.is(0, b'<') {
            self.skip();
            while self
                .at(0)
                .is_some_and(|c| is_tag_char(c) || b",[]".contains(&c))
            {
                self.skip();
            }
            if self.is(0, b'>') {
                self.skip();
            }
        } else {
            while self.at(0).is_some_and(is_tag_char) {
                self.skip();
            }
        }
    }

    fn quoted(&mut self, q: u8) {
        self.skip();
        while !self.eof() {
            let c = self.b[self.i];
            if q == b'\'' && c == b'\'' {
                if self.is(1, b'\'') {
                    self.skip();
                    self.skip();
                    continue;
                }
                self.skip();
                return;
            }
            if q == b'"' && c == b'\\' {
                self.skip();
                if !self.eof() {
                    self.skip();
                }
                continue;
            }
            if q == b'"' && c == b'"' {
                self.skip();
                return;
            }
            self.skip();
        }
    }

    /// libyaml's `scan_plain_scalar`. Returns whether it ended after a line break (libyaml then
    /// allows a simple key again).
    fn plain(&mut self) -> bool {
        let indent = self.parent_indent() + 1;
        let mut leading_blanks = false;
        loop {
            let marker = |s: &Self, m: u8| s.is(0, m) && s.is(1, m) && s.is(2, m) && s.is_blankz(3);
            if self.col == 0 && (marker(self, b'-') || marker(self, b'.')) {
                break;
            }
            if self.is(0, b'#') {
                break;
            }
            while !self.is_blankz(0) {
                let c = self.b[self.i];
                let ends = (c == b':' && self.is_blankz(1))
                    || (!self.flows.is_empty() && b",[]{}".contains(&c))
                    || (!self.flows.is_empty()
                        && c == b':'
                        && self.at(1).is_some_and(|n| b",?[]{}".contains(&n)));
                if ends {
                    break;
                }
                leading_blanks = false;
                self.skip();
            }
            if !(self.is_blank(0) || self.break_len(0) > 0) {
                break;
            }
            while self.is_blank(0) || self.break_len(0) > 0 {
                if self.break_len(0) > 0 {
                    leading_blanks = true;
                    self.block_key_col = None;
                }
                self.skip();
            }
            if self.flows.is_empty() && (self.col as i64) < indent {
                break;
            }
        }
        leading_blanks
    }

    /// libyaml's `scan_block_scalar`: the header line, then every line indented at least as far
    /// as the content (explicit, or the first text line's), blank lines included.
    fn block_scalar(&mut self) {
        self.skip();
        let mut increment: i64 = 0;
        for _ in 0..2 {
            match self.at(0) {
                Some(b'+' | b'-') => self.skip(),
                Some(d @ b'1'..=b'9') => {
                    increment = i64::from(d - b'0');
                    self.skip();
                }
                _ => break,
            }
        }
        while self.is_blank(0) {
            self.skip();
        }
        if self.is(0, b'#') {
            self.skip_to_break();
        }
        // Anything else on the header line is an error libyaml stops at.
        self.skip_to_break();
        if self.eof() {
            return;
        }
        self.skip();
        let parent = self.parent_indent();
        let mut indent = if increment > 0 {
            if parent >= 0 {
                parent + increment
            } else {
                increment
            }
        } else {
            0
        };
        self.block_breaks(&mut indent, parent);
        while self.col as i64 == indent && !self.eof() {
            self.skip_to_break();
            if self.eof() {
                return;
            }
            self.skip();
            self.block_breaks(&mut indent, parent);
        }
        self.block_key_col = None;
    }

    /// libyaml's `scan_block_scalar_breaks`: indentation and empty lines; fixes an automatic
    /// indentation at the first text line.
    fn block_breaks(&mut self, indent: &mut i64, parent: i64) {
        let mut max_indent: i64 = 0;
        loop {
            while (*indent == 0 || (self.col as i64) < *indent) && self.is(0, b' ') {
                self.skip();
            }
            max_indent = max_indent.max(self.col as i64);
            if self.break_len(0) == 0 {
                break;
            }
            self.skip();
        }
        if *indent == 0 {
            *indent = max_indent.max(parent + 1).max(1);
        }
    }
}

#[cfg(test)]
mod tests;
