//! Splits a byte stream into lines: partial lines wait for their end, invalid UTF-8 is
//! replaced, and a line longer than 64 KiB is split rather than lost.

pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Splits one stream. Every line comes with the stream position just past it (its newline
/// included), so a reader that stored up to a line can resume exactly there.
#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Stream position of `buf[0]`.
    base: u64,
    /// Values a long line is never cut inside (see `cut_point`).
    guards: Vec<Vec<u8>>,
}

fn to_text(mut bytes: &[u8]) -> String {
    if bytes.last() == Some(&b'\r') {
        bytes = &bytes[..bytes.len() - 1];
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// Backs `at` up so that no UTF-8 character is split: a continuation byte (10xxxxxx) at the
/// cut means a character straddles it (at most 3 steps; invalid input is cut anywhere).
fn char_boundary(bytes: &[u8], at: usize) -> usize {
    for back in 0..4 {
        if at - back == 0 {
            break;
        }
        if bytes[at - back] & 0xC0 != 0x80 {
            return at - back;
        }
    }
    at
}

/// The length of the longest proper prefix of `guard` that `head` ends with.
fn straddle(head: &[u8], guard: &[u8]) -> usize {
    let from = head.len().saturating_sub(guard.len().saturating_sub(1));
    (from..head.len())
        .find(|&i| guard.starts_with(&head[i..]))
        .map_or(0, |i| head.len() - i)
}

/// Where to cut `bytes` (longer than the limit): not inside a UTF-8 character, and not inside
/// a guarded value (a secret), which goes whole into the next piece so the masker sees it.
fn cut_point(bytes: &[u8], guards: &[Vec<u8>]) -> usize {
    let mut cut = char_boundary(bytes, MAX_LINE_BYTES);
    loop {
        let back = guards
            .iter()
            .map(|g| straddle(&bytes[..cut], g))
            .max()
            .unwrap_or(0);
        if back == 0 || back >= cut {
            return cut;
        }
        cut = char_boundary(bytes, cut - back);
    }
}

impl LineSplitter {
    /// A splitter for a stream read from position `base` on.
    pub fn starting_at(base: u64) -> Self {
        LineSplitter {
            buf: Vec::new(),
            base,
            guards: Vec::new(),
        }
    }

    /// Never cuts a long line inside one of `guards` (secret values).
    pub fn guarding(mut self, guards: &[Vec<u8>]) -> Self {
        self.guards = guards.to_vec();
        self
    }

    /// Stream position up to which every byte has been returned as part of a line.
    pub fn position(&self) -> u64 {
        self.base
    }

    /// Stream position up to which bytes were fed (lines or not).
    pub fn received(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Feeds bytes; returns the complete lines they finish.
    pub fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.push_at(data).into_iter().map(|(l, _)| l).collect()
    }

    /// Feeds bytes; returns the complete lines, each with the position just past it.
    pub fn push_at(&mut self, data: &[u8]) -> Vec<(String, u64)> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let newline = rest
                .iter()
                .take(MAX_LINE_BYTES + 1)
                .position(|b| *b == b'\n');
            let (text_end, consumed) = match newline {
                Some(pos) => (pos, pos + 1),
                None if rest.len() > MAX_LINE_BYTES => {
                    let cut = cut_point(rest, &self.guards);
                    (cut, cut)
                }
                None => break,
            };
            let line = to_text(&rest[..text_end]);
            start += consumed;
            out.push((line, self.base + start as u64));
        }
        self.buf.drain(..start);
        self.base += start as u64;
        out
    }

    /// The unterminated last line, if any.
    pub fn finish(&mut self) -> Option<String> {
        self.finish_at().map(|(l, _)| l)
    }

    /// The unterminated last line with the position past it.
    pub fn finish_at(&mut self) -> Option<(String, u64)> {
        if self.buf.is_empty() {
            return None;
        }
        let line = to_text(&self.buf);
        self.base += self.buf.len() as u64;
        self.buf.clear();
        Some((line, self.base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_lines_wait_and_crlf_is_trimmed() {
        let mut s = LineSplitter::default();
        assert!(s.push(b"hel").is_empty());
        assert_eq!(s.push(b"lo\r\nwor"), vec!["hello"]);
        assert_eq!(s.push(b"ld\n\n"), vec!["world", ""]);
        assert_eq!(s.finish(), None);
        s.push(b"tail");
        assert_eq!(s.finish().as_deref(), Some("tail"));
    }

    #[test]
    fn positions_let_a_reader_resume_exactly() {
        let data = b"one\ntwo\r\nthree-long\npartial";
        let mut s = LineSplitter::default();
        let mut got = s.push_at(&data[..5]);
        got.extend(s.push_at(&data[5..]));
        assert_eq!(
            got,
            vec![
                ("one".into(), 4),
                ("two".into(), 9),
                ("three-long".into(), 20)
            ]
        );
        assert_eq!(s.position(), 20);
        // Resuming at a stored position yields exactly the rest.
        let mut r = LineSplitter::starting_at(9);
        let rest = r.push_at(&data[9..]);
        assert_eq!(rest, vec![("three-long".into(), 20)]);
        assert_eq!(r.finish_at(), Some(("partial".into(), data.len() as u64)));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"a\xffb\n"), vec!["a\u{fffd}b"]);
    }

    #[test]
    fn long_lines_are_split_not_lost() {
        let mut s = LineSplitter::default();
        let big = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        let mut out = s.push(&big);
        out.extend(s.push(b"\n"));
        let total: usize = out.iter().map(|l| l.len()).sum();
        assert_eq!(total, MAX_LINE_BYTES * 2 + 10);
        assert!(out.iter().all(|l| l.len() <= MAX_LINE_BYTES));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn split_respects_utf8_boundaries() {
        let mut s = LineSplitter::default();
        let mut data = vec![b'a'; MAX_LINE_BYTES - 1];
        data.extend_from_slice("é".as_bytes());
        data.extend_from_slice(b"zz");
        let out = s.push(&data);
        assert_eq!(out.len(), 1);
        assert!(!out[0].contains('\u{fffd}'));
        assert_eq!(s.finish().as_deref(), Some("ézz"));
    }

    #[test]
    fn a_long_line_is_never_cut_inside_a_guarded_secret() {
        let secret = b"s3cret-value-42".to_vec();
        // The secret starts 3 bytes before the limit: a plain cut would split it.
        let mut data = vec![b'b'; MAX_LINE_BYTES - 3];
        data.extend_from_slice(&secret);
        data.extend_from_slice(&[b'c'; MAX_LINE_BYTES]);
        let plain: Vec<String> = LineSplitter::default().push(&data);
        assert!(
            !plain.iter().any(|l| l.contains("s3cret-value-42")),
            "unguarded cut splits it"
        );

        let mut s = LineSplitter::default().guarding(std::slice::from_ref(&secret));
        let mut got = s.push(&data);
        got.extend(s.finish());
        assert_eq!(got.concat().len(), data.len(), "nothing lost");
        assert_eq!(got[0].len(), MAX_LINE_BYTES - 3);
        assert!(
            got[1].starts_with("s3cret-value-42"),
            "the secret went whole to the next piece"
        );
        // A prefix of the secret at the end of a piece that is not the secret moves on too,
        // and a guard longer than a piece never stalls the split.
        let mut s = LineSplitter::default().guarding(&[vec![b'b'; MAX_LINE_BYTES * 2]]);
        let pieces = s.push(&[b'b'; MAX_LINE_BYTES * 3]);
        assert!(!pieces.is_empty() && pieces.iter().all(|p| p.len() <= MAX_LINE_BYTES));
    }
}
