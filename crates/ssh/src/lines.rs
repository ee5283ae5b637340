//! Splits a byte stream into lines: partial lines wait for their end, invalid UTF-8 is
//! replaced, and a line longer than 64 KiB is split rather than lost.

pub const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

fn to_text(mut bytes: &[u8]) -> String {
    if bytes.last() == Some(&b'\r') {
        bytes = &bytes[..bytes.len() - 1];
    }
    String::from_utf8_lossy(bytes).into_owned()
}

impl LineSplitter {
    /// Feeds bytes; returns the complete lines they finish.
    pub fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos;
            self.emit(start, end, &mut out);
            start = end + 1;
        }
        self.buf.drain(..start);
        while self.buf.len() > MAX_LINE_BYTES {
            // Cut on a UTF-8 boundary so the chunk is not mangled.
            let mut cut = MAX_LINE_BYTES;
            if let Err(e) = std::str::from_utf8(&self.buf[..cut])
                && e.error_len().is_none()
                && e.valid_up_to() > 0
            {
                cut = e.valid_up_to();
            }
            out.push(to_text(&self.buf[..cut]));
            self.buf.drain(..cut);
        }
        out
    }

    fn emit(&self, start: usize, end: usize, out: &mut Vec<String>) {
        let mut s = start;
        while end - s > MAX_LINE_BYTES {
            out.push(String::from_utf8_lossy(&self.buf[s..s + MAX_LINE_BYTES]).into_owned());
            s += MAX_LINE_BYTES;
        }
        out.push(to_text(&self.buf[s..end]));
    }

    /// The unterminated last line, if any.
    pub fn finish(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            return None;
        }
        let line = to_text(&self.buf);
        self.buf.clear();
        Some(line)
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
}
