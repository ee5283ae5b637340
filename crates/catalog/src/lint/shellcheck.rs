//! Runs `shellcheck` on an installer's scripts when it is installed.

use super::{LintFinding, Severity, static_regex};
use crate::Installer;
use regex::Regex;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::LazyLock;

/// Whether `shellcheck` can be run.
pub fn shellcheck_available() -> bool {
    Command::new("shellcheck")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

static SC_LINE: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(r"^-:(\d+):\d+: (error|warning|note|info|style): (.*) \[(SC\d+)\]$")
});

/// Runs shellcheck (bash dialect, gcc format) on one script given on stdin.
fn run_shellcheck(text: &str) -> Result<Output, String> {
    let mut child = Command::new("shellcheck")
        .args(["--shell=bash", "--format=gcc", "--external-sources", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run shellcheck: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // a write error shows up as shellcheck's own failure below
        let _ = stdin.write_all(text.as_bytes());
    }
    child
        .wait_with_output()
        .map_err(|e| format!("shellcheck failed: {e}"))
}

/// Runs shellcheck (bash dialect, every severity) on each script. `None` when it is not installed.
pub fn shellcheck_installer(inst: &Installer) -> Option<Vec<LintFinding>> {
    if !shellcheck_available() {
        return None;
    }
    let mut out = Vec::new();
    for (path, text) in inst.scripts() {
        let output = match run_shellcheck(text) {
            Ok(o) => o,
            Err(message) => {
                out.push(LintFinding {
                    installer: inst.id().into(),
                    file: path.into(),
                    line: 1,
                    severity: Severity::Warning,
                    code: "shellcheck".into(),
                    message,
                });
                continue;
            }
        };
        for l in String::from_utf8_lossy(&output.stdout).lines() {
            if let Some(c) = SC_LINE.captures(l) {
                out.push(LintFinding {
                    installer: inst.id().into(),
                    file: path.into(),
                    line: c[1].parse().unwrap_or(1),
                    severity: if &c[2] == "error" {
                        Severity::Error
                    } else {
                        Severity::Warning
                    },
                    code: c[4].to_string(),
                    message: format!("shellcheck {}: {}", &c[2], &c[3]),
                });
            }
        }
    }
    super::at_origins(inst, &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_regexes_compile() {
        LazyLock::force(&SC_LINE);
    }
}
