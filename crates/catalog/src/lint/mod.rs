//! `catalog validate`'s linter for installer authors: checks of the scripts against the script
//! contract (bash, `set -euo pipefail`, no stdin, inputs as env vars) and of the manifest's
//! completeness (uninstall, health), plus `shellcheck` when it is installed.

mod scan;
mod script;
mod shellcheck;
#[cfg(test)]
mod tests;

pub use shellcheck::{shellcheck_available, shellcheck_installer};

use crate::Installer;
use crate::locate::{Seg, locate};
use regex::Regex;
use std::collections::BTreeSet;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding: where (the manifest or a script, relative to the installer directory), what, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintFinding {
    pub installer: String,
    /// `manifest.yml` or the script's path inside the installer directory.
    pub file: String,
    /// 1-based; 1 when the finding is about the file as a whole.
    pub line: usize,
    pub severity: Severity,
    /// A short stable name, e.g. `reads-stdin`, or `SC2086` for shellcheck.
    pub code: String,
    pub message: String,
}

impl fmt::Display for LintFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}:{}: {}: {} [{}]",
            self.installer,
            self.file,
            self.line,
            self.severity.as_str(),
            self.message,
            self.code
        )
    }
}

/// Compiles a pattern written in this crate's source, for a `LazyLock` static.
// The only `expect` here: every pattern is a literal (or literals joined), so it either always
// compiles or never does, and each module's `static_regexes_compile` test forces its statics.
#[allow(clippy::expect_used)]
fn static_regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a static regex in ptui-catalog's linter compiles")
}

/// Moves findings in assembled scripts to the file and line they came from (a shared library
/// file is named `../_lib/NAME`), and reports a library line once, not once per script.
pub(crate) fn at_origins(inst: &Installer, findings: &mut Vec<LintFinding>) {
    for f in findings.iter_mut() {
        if f.file != "manifest.yml" {
            (f.file, f.line) = inst.script_origin(&f.file, f.line);
        }
    }
    let mut seen = BTreeSet::new();
    findings.retain(|f| {
        !f.file.starts_with("../")
            || seen.insert((f.file.clone(), f.line, f.code.clone(), f.message.clone()))
    });
}

/// The static checks of one installer (no external programs).
pub fn lint_installer(inst: &Installer) -> Vec<LintFinding> {
    let id = inst.id().to_string();
    let m = &inst.manifest;
    let inputs: BTreeSet<String> = m.inputs.iter().map(|i| i.env_name()).collect();
    let mut out = Vec::new();
    let text = inst.manifest_text();
    let manifest_finding =
        |severity: Severity, code: &str, at: &[Seg<'_>], message: String| LintFinding {
            installer: id.clone(),
            file: "manifest.yml".into(),
            line: locate(text, at).0,
            severity,
            code: code.into(),
            message,
        };
    if m.uninstall_script.is_none() {
        // Beside install_script, where the missing field belongs.
        out.push(manifest_finding(
            Severity::Warning,
            "no-uninstall",
            &[Seg::Key("install_script")],
            "no uninstall_script: users cannot remove what this installs; add \
             `uninstall_script: uninstall.sh`"
                .into(),
        ));
    }
    if m.health.is_none() {
        out.push(manifest_finding(
            Severity::Warning,
            "no-health",
            &[Seg::Key("id")],
            "no health check: add `health: {command: ...}` or `health: {url: ...}`".into(),
        ));
    }
    let mut used = BTreeSet::new();
    for (path, text) in inst.scripts() {
        out.extend(script::lint_script(&id, path, text, &inputs, &mut used));
    }
    at_origins(inst, &mut out);
    for (idx, input) in m.inputs.iter().enumerate() {
        if !used.contains(&input.env_name()) {
            out.push(manifest_finding(
                Severity::Warning,
                "unused-input",
                &[Seg::Key("inputs"), Seg::Index(idx), Seg::Key("name")],
                format!(
                    "input {} is never read: no script uses ${}; read it or remove the input",
                    input.name,
                    input.env_name()
                ),
            ));
        }
    }
    out
}
