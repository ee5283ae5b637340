//! Reduces a script to what the checks match on: comments, quoted text and here-document
//! bodies blanked, line structure kept.

use super::static_regex;
use regex::Regex;
use std::sync::LazyLock;

/// A script reduced for matching, line structure kept:
/// - `code`: comments and single-quoted text blanked; bodies of unquoted here-documents kept
///   (they expand variables), bodies of quoted ones blanked;
/// - `commands`: like `code` but with every here-document body blanked (no commands there).
pub(super) struct Scanned {
    pub(super) code: Vec<String>,
    pub(super) commands: Vec<String>,
}

static HEREDOC: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(
        r#"<<-?\s*(?:'([A-Za-z_][A-Za-z0-9_]*)'|"([A-Za-z_][A-Za-z0-9_]*)"|\\?([A-Za-z_][A-Za-z0-9_]*))"#,
    )
});

pub(super) fn scan(text: &str) -> Scanned {
    let mut code = Vec::new();
    let mut commands = Vec::new();
    let mut in_single = false;
    let mut in_double = false;
    // pending here-documents opened on the current line: (delimiter, expands)
    let mut pending: Vec<(String, bool)> = Vec::new();
    let mut body: Option<(String, bool)> = None;
    for line in text.split('\n') {
        if let Some((delim, expands)) = &body {
            let done = line.trim_start_matches('\t') == delim;
            code.push(if *expands && !done {
                line.to_string()
            } else {
                String::new()
            });
            commands.push(String::new());
            if done {
                body = if pending.is_empty() {
                    None
                } else {
                    Some(pending.remove(0))
                };
            }
            continue;
        }
        let mut out = String::with_capacity(line.len());
        let mut chars = line.chars().peekable();
        let mut prev: Option<char> = None;
        while let Some(c) = chars.next() {
            if in_single {
                if c == '\'' {
                    in_single = false;
                    out.push('\'');
                } else {
                    // same byte length, so positions in `out` match the raw line
                    out.extend(std::iter::repeat_n(' ', c.len_utf8()));
                }
            } else if c == '\\' && !in_single {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(if n == '\'' || n == '"' || n == '#' || n == '$' {
                        '_'
                    } else {
                        n
                    });
                }
            } else if c == '"' {
                in_double = !in_double;
                out.push(c);
            } else if c == '\'' && !in_double {
                in_single = true;
                out.push('\'');
            } else if c == '#'
                && !in_double
                && prev.is_none_or(|p| p.is_whitespace() || p == ';' || p == '(')
            {
                // a comment: the rest of the line goes
                break;
            } else {
                out.push(c);
            }
            prev = Some(c);
        }
        if !in_single && !in_double {
            // matched on the raw line (a quoted delimiter is blanked in `out`), kept only where
            // `out` still has the `<<`, i.e. outside quotes and comments; `<<<` is a here-string
            for cap in HEREDOC.captures_iter(line) {
                let Some(m) = cap.get(0) else { continue };
                let (start, bytes) = (m.start(), line.as_bytes());
                if out.get(start..start + 2) != Some("<<")
                    || (start > 0 && bytes[start - 1] == b'<')
                    || bytes.get(start + 2) == Some(&b'<')
                {
                    continue;
                }
                let quoted = cap.get(1).or(cap.get(2));
                let name = quoted
                    .or(cap.get(3))
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default();
                let escaped = cap.get(0).is_some_and(|m| m.as_str().contains('\\'));
                pending.push((name, quoted.is_none() && !escaped));
            }
            if !pending.is_empty() {
                body = Some(pending.remove(0));
            }
        }
        commands.push(out.clone());
        code.push(out);
    }
    Scanned { code, commands }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_regexes_compile() {
        LazyLock::force(&HEREDOC);
    }
}
