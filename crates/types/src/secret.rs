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

/// Replaces every known secret value in text with `***`.
#[derive(Clone, Default, Debug)]
pub struct Masker {
    values: Vec<Secret>,
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

    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.values {
            if out.contains(s.expose()) {
                out = out.replace(s.expose(), MASK);
            }
            // A multi-line secret can still leak line by line: mask each of its lines too.
            if s.expose().contains('\n') {
                for part in s.expose().lines().filter(|p| p.len() >= 4) {
                    if out.contains(part) {
                        out = out.replace(part, MASK);
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
}
