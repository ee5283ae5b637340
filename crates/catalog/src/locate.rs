//! Finds the line and column of a key path in block-style YAML, so that semantic errors
//! (which serde cannot locate) still name a line. Falls back to the nearest found parent.

#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Line<'a> {
    no: usize,
    indent: usize,
    dash: bool,
    /// Column where the key text starts (after `- ` on item lines).
    key_col: usize,
    key: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        let (dash, rest, key_col) = match trimmed.strip_prefix("- ") {
            Some(rest) => {
                let r = rest.trim_start();
                (true, r, indent + 2 + (rest.len() - r.len()))
            }
            None if trimmed == "-" => (true, "", indent + 2),
            None => (false, trimmed, indent),
        };
        let key = rest.split(':').next().unwrap_or("").trim();
        out.push(Line {
            no: i + 1,
            indent,
            dash,
            key_col,
            key,
        });
    }
    out
}

/// 1-based (line, column) of the path, or of its deepest located prefix.
pub fn locate(text: &str, path: &[Seg<'_>]) -> (usize, usize) {
    let ls = lines(text);
    let (mut lo, mut hi) = (0usize, ls.len());
    let mut found = (1, 1);
    for seg in path {
        if lo >= hi {
            break;
        }
        match *seg {
            Seg::Key(k) => {
                let block = ls[lo].key_col;
                let Some(pos) = (lo..hi).find(|&i| ls[i].key_col == block && ls[i].key == k) else {
                    break;
                };
                found = (ls[pos].no, ls[pos].key_col + 1);
                // The value block: following lines indented deeper, or a sequence at the same indent.
                let mut end = pos + 1;
                while end < hi
                    && (ls[end].indent > ls[pos].key_col
                        || (ls[end].dash && ls[end].indent == ls[pos].key_col))
                {
                    end += 1;
                }
                lo = pos + 1;
                hi = end;
                if lo >= hi {
                    break;
                }
            }
            Seg::Index(n) => {
                let dash_indent = ls[lo].indent;
                let items: Vec<usize> = (lo..hi)
                    .filter(|&i| ls[i].dash && ls[i].indent == dash_indent)
                    .collect();
                let Some(&pos) = items.get(n) else { break };
                found = (ls[pos].no, ls[pos].indent + 1);
                let end = items.get(n + 1).copied().unwrap_or(hi);
                lo = pos;
                hi = end;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "id: x\ninputs:\n  - name: a\n    type: string\n  - name: b\n    type: string\n    validation:\n      pattern: '['\nhealth:\n  command: true\n";

    #[test]
    fn finds_nested_keys_and_items() {
        assert_eq!(locate(DOC, &[Seg::Key("id")]), (1, 1));
        assert_eq!(locate(DOC, &[Seg::Key("inputs"), Seg::Index(1)]), (5, 3));
        assert_eq!(
            locate(DOC, &[Seg::Key("inputs"), Seg::Index(1), Seg::Key("name")]),
            (5, 5)
        );
        assert_eq!(
            locate(
                DOC,
                &[
                    Seg::Key("inputs"),
                    Seg::Index(1),
                    Seg::Key("validation"),
                    Seg::Key("pattern")
                ]
            ),
            (8, 7)
        );
        assert_eq!(
            locate(DOC, &[Seg::Key("health"), Seg::Key("command")]),
            (10, 3)
        );
    }

    #[test]
    fn sequence_at_same_indent_as_key() {
        let doc = "inputs:\n- name: a\n  type: string\n- name: b\n  visible_if:\n    input: zz\n";
        assert_eq!(
            locate(
                doc,
                &[
                    Seg::Key("inputs"),
                    Seg::Index(1),
                    Seg::Key("visible_if"),
                    Seg::Key("input")
                ]
            ),
            (6, 5)
        );
    }

    #[test]
    fn missing_path_falls_back_to_parent() {
        assert_eq!(
            locate(DOC, &[Seg::Key("inputs"), Seg::Index(0), Seg::Key("nope")]),
            (3, 3)
        );
    }
}
