//! Text from outside the program (a server's output, stored server fields, manifests, import
//! sources) made safe to show on a terminal, and JSON made safe to print. Both front ends use
//! these functions, so there is one definition of what reaches the terminal.
//!
//! The visible scheme is the form Rust's `{:?}` gives most controls, so a value quoted in an
//! error and the same text in a log line look alike: a C0 control other than tab and newline,
//! DEL, and a C1 control (U+0080..U+009F) become `\u{H}`, the code point in lowercase hex (ESC
//! is `\u{1b}`, BEL `\u{7}`, DEL `\u{7f}`, the one-character CSI U+009B `\u{9b}`). A literal
//! backslash is left as it is, so `\u{1b}` in the output may also be those characters in the
//! input.
//!
//! Bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069) are shown the same
//! way: they reorder how the rest of a line is displayed ("Trojan Source"), so a server could
//! make a log line read differently from what it holds.
//!
//! Carriage returns: progress output (`10%\r20%\r100%`) is shown as its final state, the text
//! after the last `\r` of each line; a `\r` ending a line (CRLF) is dropped.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` as it may be printed on a terminal: tabs and newlines kept, every other control shown
/// visibly, each line reduced to what follows its last carriage return.
pub fn terminal_text(s: &str) -> Cow<'_, str> {
    sanitize(s, false)
}

/// Like [`terminal_text`] for one row of a table or a dashboard cell: tabs and newlines become
/// spaces too.
pub fn terminal_line(s: &str) -> Cow<'_, str> {
    sanitize(s, true)
}

/// Serialized JSON with DEL and the C1 controls escaped as `\u007f`..`\u009f`, which
/// serde_json leaves raw (it escapes only C0). Outside strings JSON is plain ASCII, so every
/// such character is inside a string, where the escape means the same character.
pub fn json_text(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_del_or_c1) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_del_or_c1(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_del_or_c1(c: char) -> bool {
    ('\u{7f}'..='\u{9f}').contains(&c)
}

/// Characters that change the display order of the text after them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether any byte needs changing; most text needs none and is returned as it is.
fn needs_work(s: &str, one_line: bool) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| match b {
        b'\t' | b'\n' => one_line,
        0..=0x1f | 0x7f => true,
        // C1 controls are U+0080..U+009F: C2 80..C2 9F in UTF-8.
        0xc2 => bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)),
        // U+202A..U+202E are E2 80 AA..AE, U+2066..U+2069 are E2 81 A6..A9.
        0xe2 => matches!(
            (bytes.get(i + 1), bytes.get(i + 2)),
            (Some(0x80), Some(0xaa..=0xae)) | (Some(0x81), Some(0xa6..=0xa9))
        ),
        _ => false,
    })
}

fn sanitize(s: &str, one_line: bool) -> Cow<'_, str> {
    if !needs_work(s, one_line) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push(if one_line { ' ' } else { '\n' });
        }
        let line = line.trim_end_matches('\r');
        let shown = line.rsplit('\r').next().unwrap_or(line);
        for c in shown.chars() {
            push_visible(&mut out, c, one_line);
        }
    }
    Cow::Owned(out)
}

fn push_visible(out: &mut String, c: char, one_line: bool) {
    match c {
        '\t' if one_line => out.push(' '),
        '\t' => out.push('\t'),
        '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c if is_bidi_control(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        let s = "hello wörld\tcol\nnext ✓";
        assert!(matches!(terminal_text(s), Cow::Borrowed(_)));
        assert!(matches!(terminal_line("a b ✓ \u{a0}é"), Cow::Borrowed(_)));
        assert!(matches!(json_text(r#"{"a":"é"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn c0_and_del_are_shown_not_emitted() {
        assert_eq!(
            terminal_text("\x1b]52;c;aGk=\x07 \x1bc \x1b[6n\x7f\0"),
            r"\u{1b}]52;c;aGk=\u{7} \u{1b}c \u{1b}[6n\u{7f}\u{0}"
        );
    }

    #[test]
    fn c1_controls_are_shown_not_emitted() {
        let shown = terminal_text("a\u{9b}31mred\u{80}\u{9f}");
        assert_eq!(shown, r"a\u{9b}31mred\u{80}\u{9f}");
        // Characters just outside the C1 range pass.
        assert_eq!(terminal_text("\u{a0}\u{7e}"), "\u{a0}~");
    }

    #[test]
    fn tabs_and_newlines_stay_in_text_and_become_spaces_in_a_line() {
        assert_eq!(terminal_text("a\tb\nc\x1b"), "a\tb\nc\\u{1b}");
        assert_eq!(terminal_line("a\tb\nc"), "a b c");
    }

    #[test]
    fn carriage_return_progress_shows_its_final_state() {
        assert_eq!(terminal_text("10%\r20%\r100%"), "100%");
        assert_eq!(
            terminal_text("dl 10%\rdl 100%\ndone\r\n"),
            "dl 100%\ndone\n"
        );
        assert_eq!(terminal_text("crlf line\r"), "crlf line");
        assert_eq!(terminal_text("a\r\r"), "a");
        assert_eq!(terminal_line("x\r\ny\rz"), "x z");
        assert_eq!(terminal_text("\r"), "");
    }

    #[test]
    fn the_scheme_is_what_debug_quoting_shows() {
        let s = "\x1b\x07\x7f\u{9b}";
        assert_eq!(format!("\"{}\"", terminal_text(s)), format!("{s:?}"));
    }

    #[test]
    fn multibyte_text_next_to_controls_survives() {
        assert_eq!(terminal_text("é\u{1b}ü\u{9b}€"), "é\\u{1b}ü\\u{9b}€");
    }

    #[test]
    fn json_escapes_del_and_c1_only() {
        let raw = serde_json::to_string("a\u{9b}b\u{7f}c\u{85}é\x1b").unwrap_or_default();
        assert_eq!(json_text(&raw), r#""a\u009bb\u007fc\u0085é\u001b""#);
        let back: String = serde_json::from_str(&json_text(&raw)).unwrap_or_default();
        assert_eq!(back, "a\u{9b}b\u{7f}c\u{85}é\x1b");
    }

    #[test]
    fn bidi_overrides_are_shown_not_emitted() {
        // "Trojan Source": U+202E would display the rest of the line reversed.
        let s = "ok \u{202e}dlrow\u{202c} \u{2066}iso\u{2069} →";
        assert_eq!(
            terminal_line(s),
            "ok \\u{202e}dlrow\\u{202c} \\u{2066}iso\\u{2069} →"
        );
        // Neighbours in the same UTF-8 lead byte range are text.
        assert!(matches!(terminal_text("– ‘quoted’ … ⁥"), Cow::Borrowed(_)));
    }
}
