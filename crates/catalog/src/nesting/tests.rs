//! The nesting scan against hand-written cases and against libyaml itself.

use super::*;

fn depth_ok(text: &str) -> bool {
    scan(text).too_deep.is_none()
}

#[test]
fn real_manifests_pass() {
    let doc = "id: x\ninputs:\n  - name: a\n    type: string\n    validation: {pattern: '[a-z]+', allowed_values: [a, b]}\n  - {name: b, type: select, validation: {allowed_values: [x]}}\nhealth:\n  command: \"test -f /x && [ -d /y ]\"\ndescription: |\n  [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n  text\n";
    assert_eq!(scan(doc), Scan::default());
}

#[test]
fn deep_flow_nesting_is_found_fast_with_its_position() {
    let deep = format!("id: x\ndescription: {}\n", "[".repeat(400_000));
    let t = std::time::Instant::now();
    let found = scan(&deep).too_deep.expect("too deep");
    assert!(t.elapsed().as_secs() < 2, "{:?}", t.elapsed());
    // `description:` opens one block mapping, then 64 `[` fit and the 64th bracket is too many.
    assert_eq!(
        found,
        TooDeep {
            line: 2,
            column: 13 + 64
        }
    );
    assert!(depth_ok(&format!(
        "a: {}{}\n",
        "[".repeat(60),
        "]".repeat(60)
    )));
    assert!(!depth_ok(&format!(
        "a: {}{}\n",
        "{a: ".repeat(70),
        "}".repeat(70)
    )));
}

#[test]
fn deep_block_nesting_is_found() {
    let mut indented = String::new();
    for i in 0..70 {
        indented.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
    }
    assert_eq!(scan(&indented).too_deep.map(|d| d.line), Some(65));
    let dashes = format!("{}x\n", "- ".repeat(100));
    assert_eq!(
        scan(&dashes).too_deep,
        Some(TooDeep {
            line: 1,
            column: 129
        })
    );
}

#[test]
fn brackets_inside_strings_and_comments_do_not_count() {
    let many = "[".repeat(100);
    for doc in [
        format!("a: '{many}'\n"),
        format!("a: \"{many}\\\"{many}\"\n"),
        format!("a: b {many}\n"),
        format!("a: b\n  {many}\n"),
        format!("# {many}\na: 1\n"),
        format!("a: 1 # {many}\n"),
        format!("a: |\n  {many}\n  x\nb: 2\n"),
        format!("a: >2\n   {many}\n"),
        format!("a: [x, 'y{many}', \"]]]{many}\"]\n"),
        format!("a: !!str '{many}'\n"),
    ] {
        assert!(depth_ok(&doc), "{doc}");
    }
}

#[test]
fn quotes_and_block_scalars_end_where_libyaml_ends_them() {
    let many = "[".repeat(100);
    for doc in [
        // An apostrophe inside a plain scalar does not open a quote.
        format!("a: it's\nb: {many}\n"),
        format!("a: [it's, {many}\n"),
        // A doubled quote is an escaped quote, not the end.
        format!("a: 'x''y'\nb: {many}\n"),
        // A block scalar ends at the first line indented less than its content.
        format!("a: |\n    text\n  b: {many}\n"),
        format!("- a: |\n  b: {many}\n"),
        // Line separators end comments, as in libyaml.
        format!("# c\u{2028}b: {many}\n"),
        format!("a: 1 # c\rb: {many}\n"),
        // `#` right after a flow indicator starts a comment; one inside a word does not.
        format!("a: [x,#c\n  {many}\n"),
    ] {
        assert!(!depth_ok(&doc), "{doc:?}");
    }
}

fn value_depth(v: &yaml_serde::Value) -> usize {
    match v {
        yaml_serde::Value::Sequence(s) => 1 + s.iter().map(value_depth).max().unwrap_or(0),
        yaml_serde::Value::Mapping(m) => {
            1 + m
                .iter()
                .map(|(k, v)| value_depth(k).max(value_depth(v)))
                .max()
                .unwrap_or(0)
        }
        yaml_serde::Value::Tagged(t) => value_depth(&t.value),
        _ => 0,
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const SCALARS: &[&str] = &[
    "a",
    "it's",
    "a#b",
    "a:b",
    "-x",
    "?y",
    "'[{#''x'",
    "\"]\\\"[{\"",
    "x ]",
    "'a''",
    "\"a\\",
    "*a",
    "&a b",
    "!t c",
    "!<u> d",
    "|",
    ">-",
    "\"",
    "'",
];
const PIECES: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "- ",
    "? ",
    "'",
    "\"",
    "# ",
    "|",
    "\n",
    "\n  ",
    "  ",
    "\t",
    "\r",
    "\u{2028}",
    "---",
    "#",
    ":",
    "-",
    "&a ",
    "*a",
    "!t ",
    "\n- ",
    "\n  - ",
    "\"\\\n",
    "''",
    "\n...\n",
    "%YAML 1.1\n",
    "\u{feff}",
    "\u{85}",
    "|+2\n",
    ">-\n   ",
];

/// A random YAML node: flow and block collections, quoted and block scalars, comments.
fn node(r: &mut Rng, depth: usize, indent: usize, block: bool) -> String {
    let pad = " ".repeat(indent);
    let choice = if depth == 0 {
        0
    } else {
        r.below(if block { 7 } else { 4 })
    };
    match choice {
        0 | 1 if depth == 0 || choice == 0 => r.pick(SCALARS).to_string(),
        1 => {
            let n = 1 + r.below(3);
            let items: Vec<String> = (0..n).map(|_| node(r, depth - 1, indent, false)).collect();
            format!("[{}]", items.join(r.pick(&[", ", ",", " ,\n", ", # c\n"])))
        }
        2 => {
            let n = 1 + r.below(3);
            let items: Vec<String> = (0..n)
                .map(|i| format!("k{i}: {}", node(r, depth - 1, indent, false)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        3 => format!(
            "[{}: {}]",
            r.pick(SCALARS),
            node(r, depth - 1, indent, false)
        ),
        4 => {
            let n = 1 + r.below(3);
            (0..n)
                .map(|_| format!("\n{pad}- {}", node(r, depth - 1, indent + 2, true)))
                .collect()
        }
        5 => {
            let n = 1 + r.below(3);
            (0..n)
                .map(|i| format!("\n{pad}k{i}: {}", node(r, depth - 1, indent + 2, true)))
                .collect()
        }
        _ => format!(
            "{}\n{pad}  {}\n{pad} {}\n",
            r.pick(&["|", ">", "|2", "|-", "| # c"]),
            r.pick(&["[[[", "'x", "\"y", "# z", "k: [", ""]),
            r.pick(&["[[", "'", "a: b", ""])
        ),
    }
}

/// Random documents from YAML's tricky pieces, some mangled: whatever libyaml parses deeper
/// than the limit, the scan must report (it may report more, never less).
#[test]
fn the_scan_never_sees_less_nesting_than_libyaml() {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut parsed, mut deep) = (0, 0);
    for _ in 0..40_000 {
        let depth = 1 + r.below(4);
        let mut doc = format!("top: {}\n", node(&mut r, depth, 2, true));
        for _ in 0..r.below(4) {
            let mut at = r.below(doc.len() + 1);
            while !doc.is_char_boundary(at) {
                at -= 1;
            }
            if r.below(2) == 0 {
                let piece = r.pick(PIECES);
                doc.insert_str(at, piece);
            } else if at < doc.len() {
                let mut end = at + 1;
                while !doc.is_char_boundary(end) {
                    end += 1;
                }
                doc.replace_range(at..end, "");
            }
        }
        let Ok(v) = yaml_serde::from_str::<yaml_serde::Value>(&doc) else {
            continue;
        };
        parsed += 1;
        let limit = 3;
        if value_depth(&v) > limit {
            deep += 1;
            assert!(
                scan_limited(&doc, limit).too_deep.is_some(),
                "depth {} missed in {doc:?}",
                value_depth(&v)
            );
        }
    }
    // The generator must produce parseable, nested documents for this to mean anything.
    assert!(parsed > 5_000 && deep > 500, "parsed {parsed}, deep {deep}");
}

#[test]
fn the_first_alias_is_located() {
    let doc = "a: &x [1]\nb: [*x, *x]\n";
    assert_eq!(scan(doc).first_alias, Some((2, 5)));
    assert_eq!(scan("a: '*x'\n").first_alias, None);
}
