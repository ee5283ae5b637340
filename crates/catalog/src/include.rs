//! The shared catalog library (`installers/_lib/*.sh`): a script line `# ptui:include NAME.sh`
//! is replaced by that file's text when the catalog loads, so what is sent to the server is one
//! self-contained script and each shared helper exists once in the repository.

use crate::source::ReadProblem;

/// The directive, at the start of a line; the rest of the line is the library file's name.
pub const INCLUDE_DIRECTIVE: &str = "# ptui:include ";
/// The library's directory beside the installers (a directory without a manifest).
pub const LIBRARY_DIR: &str = "_lib";

/// Where the lines of an assembled script came from, to report findings at their real place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineMap {
    /// (first line in the assembled script, line count, `None` = the script itself or the
    /// library file's name, its first line in that file), in order.
    segments: Vec<(usize, usize, Option<String>, usize)>,
}

impl LineMap {
    /// The file (`None`: the script itself) and line that assembled line `line` came from.
    pub fn origin(&self, line: usize) -> (Option<&str>, usize) {
        for (start, len, file, first) in &self.segments {
            if line >= *start && line < start + len {
                return (file.as_deref(), first + (line - start));
            }
        }
        (None, line)
    }
}

/// A library name is a plain file name: `[a-z0-9_-]+.sh`.
fn valid_name(name: &str) -> bool {
    name.strip_suffix(".sh").is_some_and(|stem| {
        !stem.is_empty()
            && stem
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    })
}

/// Replaces each include line by the library file's text (`read_lib` reads `_lib/NAME`). A
/// library may not include another; a second include of the same file is an error (it would
/// define everything twice). Errors carry the script's line.
pub fn expand(
    body: &str,
    read_lib: &dyn Fn(&str) -> Result<String, ReadProblem>,
) -> Result<(String, LineMap), ReadProblem> {
    if !body.lines().any(|l| l.starts_with(INCLUDE_DIRECTIVE)) {
        return Ok((body.to_string(), LineMap::default()));
    }
    let mut out = String::with_capacity(body.len() * 2);
    let mut map = LineMap::default();
    let mut seen: Vec<String> = Vec::new();
    let mut out_line = 1;
    let mut own_start = (1, 1); // (assembled line, script line) where the current own run began
    for (idx, line) in body.lines().enumerate() {
        let line_no = idx + 1;
        let Some(name) = line.strip_prefix(INCLUDE_DIRECTIVE) else {
            out.push_str(line);
            out.push('\n');
            out_line += 1;
            continue;
        };
        let name = name.trim();
        let at = |message: String| ReadProblem {
            line: line_no,
            column: 1,
            message,
        };
        if !valid_name(name) {
            return Err(at(format!(
                "`{INCLUDE_DIRECTIVE}{name}`: a library is a file name like `apt.sh` in \
                 installers/{LIBRARY_DIR}/"
            )));
        }
        if seen.iter().any(|s| s == name) {
            return Err(at(format!("{name} is included twice; include it once")));
        }
        let text =
            read_lib(name).map_err(|p| at(format!("{LIBRARY_DIR}/{name}: {}", p.message)))?;
        if let Some(n) = text.lines().position(|l| l.starts_with(INCLUDE_DIRECTIVE)) {
            return Err(at(format!(
                "{LIBRARY_DIR}/{name}:{}: a library cannot include another; include both from \
                 the script",
                n + 1
            )));
        }
        map.segments
            .push((own_start.0, out_line - own_start.0, None, own_start.1));
        let lines = text.lines().count();
        map.segments
            .push((out_line, lines, Some(format!("{LIBRARY_DIR}/{name}")), 1));
        for l in text.lines() {
            out.push_str(l);
            out.push('\n');
        }
        out_line += lines;
        own_start = (out_line, line_no + 1);
        seen.push(name.to_string());
    }
    map.segments
        .push((own_start.0, usize::MAX - own_start.0, None, own_start.1));
    Ok((out, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib(name: &str) -> Result<String, ReadProblem> {
        match name {
            "a.sh" => Ok("a1\na2\na3\n".into()),
            "b.sh" => Ok("b1\n".into()),
            "nested.sh" => Ok("x\n# ptui:include a.sh\n".into()),
            _ => Err(ReadProblem::whole(format!("{name} does not exist"))),
        }
    }

    #[test]
    fn includes_are_replaced_and_lines_map_back() {
        let (text, map) = expand(
            "s1\n# ptui:include a.sh\ns3\n# ptui:include b.sh\ns5\n",
            &lib,
        )
        .expect("expands");
        assert_eq!(text, "s1\na1\na2\na3\ns3\nb1\ns5\n");
        assert_eq!(map.origin(1), (None, 1));
        assert_eq!(map.origin(2), (Some("_lib/a.sh"), 1));
        assert_eq!(map.origin(4), (Some("_lib/a.sh"), 3));
        assert_eq!(map.origin(5), (None, 3));
        assert_eq!(map.origin(6), (Some("_lib/b.sh"), 1));
        assert_eq!(map.origin(7), (None, 5));
        // A script without includes is unchanged.
        let (same, map) = expand("x\ny", &lib).expect("plain");
        assert_eq!((same.as_str(), map.origin(2)), ("x\ny", (None, 2)));
    }

    #[test]
    fn bad_includes_name_the_script_line() {
        let err = |body: &str| expand(body, &lib).expect_err("refused");
        let e = err("x\n# ptui:include missing.sh\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("_lib/missing.sh"), "{}", e.message);
        assert!(
            err("# ptui:include ../a.sh\n")
                .message
                .contains("file name")
        );
        assert!(
            err("# ptui:include a.sh\n# ptui:include a.sh\n")
                .message
                .contains("twice")
        );
        let e = err("# ptui:include nested.sh\n");
        assert!(e.message.contains("_lib/nested.sh:2"), "{}", e.message);
    }
}
