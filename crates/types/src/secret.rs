//! Secrets are a type: they never print, and log lines are masked before they are stored or shown.

use std::fmt;

/// A sensitive value. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The plaintext. Call only where the value crosses to the remote on stdin.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

pub const MASK: &str = "***";

/// Secrets shorter than this are refused by input validation unless the manifest says
/// `allow_short: true`, and are masked only as whole words (see `Masker::mask`).
pub const SHORT_SECRET_CHARS: usize = 8;

/// Replaces every known secret value in text with `***`.
#[derive(Clone, Default, Debug)]
pub struct Masker {
    values: Vec<Secret>,
}

/// Letters, digits and `_` make up a word: a short secret next to one is part of another word.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Replaces `needle` in `text`. A needle shorter than `SHORT_SECRET_CHARS` is replaced only
/// where it stands as a whole word: masking `ne` inside `connecting` (`con***cting`) would
/// show where the secret occurs in ordinary words, and so reveal it.
fn replace_secret(text: &str, needle: &str) -> String {
    if needle.chars().count() >= SHORT_SECRET_CHARS {
        return text.replace(needle, MASK);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in text.match_indices(needle) {
        if at < last {
            continue; // overlaps the previous replacement
        }
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        let glued = |c: Option<char>, edge: Option<char>| {
            c.is_some_and(is_word_char) && edge.is_some_and(is_word_char)
        };
        // A boundary only counts where the secret itself has a word character at that edge
        // (`-x-` inside `a-x-b` still stands alone).
        if glued(before, needle.chars().next()) || glued(after, needle.chars().next_back()) {
            continue;
        }
        out.push_str(&text[last..at]);
        out.push_str(MASK);
        last = at + needle.len();
    }
    out.push_str(&text[last..]);
    out
}

impl Masker {
    pub fn new(values: impl IntoIterator<Item = Secret>) -> Self {
        // Longest first, so a secret that contains another is masked whole.
        let mut values: Vec<Secret> = values.into_iter().filter(|s| !s.0.is_empty()).collect();
        values.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        values.dedup();
        Self { values }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// What a long line must never be cut inside, so that `mask` sees each value whole: the
    /// values and the lines of multi-line ones.
    pub fn split_guards(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for s in &self.values {
            out.push(s.expose().as_bytes().to_vec());
            if s.expose().contains('\n') {
                let parts = s.expose().lines().filter(|p| p.len() >= 4);
                out.extend(parts.map(|p| p.as_bytes().to_vec()));
            }
        }
        out
    }

    /// Secrets of `SHORT_SECRET_CHARS` or more are masked wherever they occur; shorter ones
    /// only as whole words (not inside a longer run of letters, digits and `_`).
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.values {
            if out.contains(s.expose()) {
                out = replace_secret(&out, s.expose());
            }
            // A multi-line secret can still leak line by line: mask each of its lines too.
            if s.expose().contains('\n') {
                for part in s.expose().lines().filter(|p| p.len() >= 4) {
                    if out.contains(part) {
                        out = replace_secret(&out, part);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn masker_masks_every_occurrence_longest_first() {
        let m = Masker::new([Secret::new("abc"), Secret::new("abcdef"), Secret::new("")]);
        assert_eq!(m.mask("x abcdef y abc z"), "x *** y *** z");
        assert_eq!(m.mask("nothing here"), "nothing here");
    }

    #[test]
    fn masker_masks_lines_of_multiline_secret() {
        let m = Masker::new([Secret::new(
            "-----BEGIN KEY-----\nAAAABBBB\n-----END KEY-----",
        )]);
        assert_eq!(m.mask("got AAAABBBB"), "got ***");
    }

    #[test]
    fn short_secrets_are_masked_only_as_whole_words() {
        let m = Masker::new([Secret::new("ne")]);
        // Masking inside `connecting` would reveal the secret's letters.
        assert_eq!(m.mask("connecting"), "connecting");
        assert_eq!(m.mask("ne"), "***");
        assert_eq!(m.mask("pw=ne, again: ne."), "pw=***, again: ***.");
        assert_eq!(m.mask("one_ne ne1 ne"), "one_ne ne1 ***");
        let user = Masker::new([Secret::new("admin")]);
        assert_eq!(
            user.mask("connecting to admin@host as administrator"),
            "connecting to ***@host as administrator"
        );
        // Punctuation at the secret's own edge does not need a boundary.
        let dashed = Masker::new([Secret::new("-x-")]);
        assert_eq!(dashed.mask("a-x-b"), "a***b");
    }

    #[test]
    fn long_secrets_are_masked_even_inside_words() {
        let m = Masker::new([Secret::new("s3cr3tT0ken")]);
        assert_eq!(m.mask("url?key=s3cr3tT0kenXYZ"), "url?key=***XYZ");
        assert_eq!(m.mask("multi-byte ✓s3cr3tT0ken✓"), "multi-byte ✓***✓");
    }
}
