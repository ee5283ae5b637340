//! `catalog validate`'s linter for installer authors: checks of the scripts against the script
//! contract (bash, `set -euo pipefail`, no stdin, inputs as env vars) and of the manifest's
//! completeness (uninstall, health), plus `shellcheck` when it is installed.

use super::Installer;
use regex::Regex;
use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::LazyLock;

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
    /// 1-based; 0 when the finding is about the file as a whole.
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

/// Variables a script may use without an input declaring them.
const WELL_KNOWN: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PWD",
    "OLDPWD",
    "IFS",
    "TERM",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "DEBIAN_FRONTEND",
    "DEBCONF_NONINTERACTIVE_SEEN",
    "NEEDRESTART_MODE",
    "APT_LISTCHANGES_FRONTEND",
    "UCF_FORCE_CONFFOLD",
    "BASH",
    "BASH_REMATCH",
    "BASH_SOURCE",
    "BASH_VERSION",
    "BASH_LINENO",
    "BASHPID",
    "FUNCNAME",
    "LINENO",
    "RANDOM",
    "SECONDS",
    "EUID",
    "UID",
    "PPID",
    "PIPESTATUS",
    "HOSTNAME",
    "HOSTTYPE",
    "OSTYPE",
    "MACHTYPE",
    "OPTARG",
    "OPTIND",
    "REPLY",
    "COLUMNS",
    "LINES",
    "SUDO_USER",
    "SUDO_UID",
    "SUDO_GID",
    "SSH_CONNECTION",
    "SSH_CLIENT",
    "EPOCHSECONDS",
    "EPOCHREALTIME",
];

fn is_well_known(name: &str) -> bool {
    WELL_KNOWN.contains(&name) || name.starts_with("PROVISION_TUI_") || name.starts_with("LC_")
}

/// A script reduced for matching, line structure kept:
/// - `code`: comments and single-quoted text blanked; bodies of unquoted here-documents kept
///   (they expand variables), bodies of quoted ones blanked;
/// - `commands`: like `code` but with every here-document body blanked (no commands there).
struct Scanned {
    code: Vec<String>,
    commands: Vec<String>,
}

static HEREDOC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"<<-?\s*(?:'([A-Za-z_][A-Za-z0-9_]*)'|"([A-Za-z_][A-Za-z0-9_]*)"|\\?([A-Za-z_][A-Za-z0-9_]*))"#).expect("static regex")
});

fn scan(text: &str) -> Scanned {
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

static VAR_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{#?([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)").expect("static regex")
});
static ASSIGN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s;&|(!])(?:(?:export|local|declare|readonly|typeset)\s+(?:-[A-Za-z]+\s+)*)?([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?\+?=")
        .expect("static regex")
});
static DECLARE_ONLY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s;&|(])(?:local|declare|readonly|typeset|export)\s+(?:-[A-Za-z]+\s+)*((?:[A-Za-z_][A-Za-z0-9_]*\s*)+)(?:$|[;&|)])")
        .expect("static regex")
});
static FOR_VAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b").expect("static regex"));
static MAPFILE_VAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:mapfile|readarray)\s+(?:-[A-Za-z]+\s+(?:\S+\s+)?)*([A-Za-z_][A-Za-z0-9_]*)")
        .expect("static regex")
});
// a command word: at the start, or after ; & | ( { ! or a keyword
const CMD_START: &str = r"(?:^|[;&|({!]|\$\(|\b(?:then|do|else|elif|if|while|until|time)\s)\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*";
static READ_CMD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"{CMD_START}read\b")).expect("static regex"));
static CAT_STDIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"{CMD_START}cat(?:\s+-)?\s*(?:$|[|;&)>])")).expect("static regex")
});
static MAPFILE_CMD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"{CMD_START}(?:mapfile|readarray)\b")).expect("static regex")
});
static STDIN_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"/dev/stdin|/proc/self/fd/0|/dev/fd/0|<&0").expect("static regex")
});
static SET_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*set\s+(.*)$").expect("static regex"));
static APT_USE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:apt-get|apt|dpkg-reconfigure)\s").expect("static regex"));

/// Whether a `set` line turns on errexit, nounset and pipefail (in any spelling).
fn strict_flags(args: &str) -> (bool, bool, bool) {
    let (mut e, mut u, mut p) = (false, false, false);
    let mut words = args.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if w == "-o" {
            match words.next() {
                Some("errexit") => e = true,
                Some("nounset") => u = true,
                Some("pipefail") => p = true,
                _ => {}
            }
        } else if let Some(flags) = w.strip_prefix('-') {
            if flags.starts_with('-') {
                continue;
            }
            let mut fl = flags.chars().peekable();
            while let Some(c) = fl.next() {
                match c {
                    'e' => e = true,
                    'u' => u = true,
                    // `-euo pipefail`: the option name is the next word
                    'o' if fl.peek().is_none() && words.peek() == Some(&"pipefail") => {
                        p = true;
                        words.next();
                    }
                    _ => {}
                }
            }
        }
    }
    (e, u, p)
}

/// Checks one script's text. `inputs` are the installer's env names.
fn lint_script(
    id: &str,
    file: &str,
    text: &str,
    inputs: &BTreeSet<String>,
    used: &mut BTreeSet<String>,
) -> Vec<LintFinding> {
    let mut out = Vec::new();
    let finding = |line: usize, severity: Severity, code: &str, message: String| LintFinding {
        installer: id.to_string(),
        file: file.to_string(),
        line,
        severity,
        code: code.to_string(),
        message,
    };
    let mut strict = false;
    let first = text.lines().next().unwrap_or("");
    // POSIX sh has no pipefail: -eu is the most it can promise.
    let mut posix_sh = false;
    if !first.starts_with("#!") {
        out.push(finding(
            1,
            Severity::Error,
            "shebang",
            "the first line must be `#!/usr/bin/env bash`".into(),
        ));
    } else {
        match super::script::interpreter(text) {
            Err(m) => out.push(finding(1, Severity::Error, "shebang", m)),
            Ok(argv) => {
                let shell = argv[0].rsplit('/').next().unwrap_or("");
                posix_sh = matches!(shell, "sh" | "dash");
                if posix_sh {
                    out.push(finding(
                        1,
                        Severity::Warning,
                        "posix-sh",
                        "POSIX sh has no `pipefail`: a failing command inside a pipeline goes \
                         unnoticed; prefer `#!/usr/bin/env bash`"
                            .into(),
                    ));
                }
                if let Some(flags) = argv.iter().skip(1).find(|a| !a.starts_with("--")) {
                    let (e, u, p) = strict_flags(flags);
                    if e && u && (p || posix_sh) {
                        strict = true;
                    }
                }
            }
        }
    }
    let s = scan(text);
    for l in &s.commands {
        if let Some(c) = SET_LINE.captures(l) {
            let (e, u, p) = strict_flags(&c[1]);
            if e && u && (p || posix_sh) {
                strict = true;
                break;
            }
        }
    }
    if !strict {
        let want = if posix_sh {
            "set -eu"
        } else {
            "set -euo pipefail"
        };
        out.push(finding(
            1,
            Severity::Error,
            "strict-mode",
            format!("missing `{want}` near the top of the script"),
        ));
    }
    let mut assigned: BTreeSet<String> = BTreeSet::new();
    let mut apt = None;
    let mut frontend = false;
    for (i, l) in s.commands.iter().enumerate() {
        let n = i + 1;
        if READ_CMD.is_match(l) {
            out.push(finding(n, Severity::Error, "reads-stdin", "calls `read`: installers get stdin=/dev/null and must take every value from env vars".into()));
        }
        if MAPFILE_CMD.is_match(l) && !l.contains('<') {
            out.push(finding(
                n,
                Severity::Error,
                "reads-stdin",
                "`mapfile`/`readarray` without a `<` redirection reads stdin".into(),
            ));
        }
        if CAT_STDIN.is_match(l) && !l.contains('<') {
            out.push(finding(
                n,
                Severity::Error,
                "reads-stdin",
                "`cat` without a file reads stdin".into(),
            ));
        }
        if STDIN_PATH.is_match(l) {
            out.push(finding(
                n,
                Severity::Error,
                "reads-stdin",
                "reads /dev/stdin: installers must not read stdin".into(),
            ));
        }
        for c in ASSIGN.captures_iter(l) {
            assigned.insert(c[1].to_string());
        }
        for c in DECLARE_ONLY.captures_iter(l) {
            assigned.extend(c[1].split_whitespace().map(str::to_string));
        }
        for c in FOR_VAR.captures_iter(l).chain(MAPFILE_VAR.captures_iter(l)) {
            assigned.insert(c[1].to_string());
        }
        if apt.is_none() && APT_USE.is_match(l) {
            apt = Some(n);
        }
        if l.contains("DEBIAN_FRONTEND=noninteractive") {
            frontend = true;
        }
    }
    if let (Some(n), false) = (apt, frontend) {
        out.push(finding(
            n,
            Severity::Error,
            "debian-frontend",
            "uses apt without `export DEBIAN_FRONTEND=noninteractive`: a debconf prompt would hang"
                .into(),
        ));
    }
    let mut reported = BTreeSet::new();
    for (i, l) in s.code.iter().enumerate() {
        for c in VAR_REF.captures_iter(l) {
            let Some(name) = c.get(1).or(c.get(2)).map(|m| m.as_str()) else {
                continue;
            };
            used.insert(name.to_string());
            // only UPPER_CASE names can be inputs; lower-case ones are the script's own
            if !name
                .chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
            {
                continue;
            }
            if inputs.contains(name)
                || assigned.contains(name)
                || is_well_known(name)
                || !reported.insert(name.to_string())
            {
                continue;
            }
            out.push(finding(
                i + 1,
                Severity::Error,
                "undeclared-env",
                format!("uses ${name}, but no input declares it (inputs arrive as UPPER_CASE env vars; declare an input `{}` or assign it in the script)", name.to_ascii_lowercase()),
            ));
        }
    }
    out
}

/// The static checks of one installer (no external programs).
pub fn lint_installer(inst: &Installer) -> Vec<LintFinding> {
    let id = inst.id().to_string();
    let m = &inst.manifest;
    let inputs: BTreeSet<String> = m.inputs.iter().map(|i| i.env_name()).collect();
    let mut out = Vec::new();
    let manifest_finding = |severity: Severity, code: &str, message: String| LintFinding {
        installer: id.clone(),
        file: "manifest.yml".into(),
        line: 0,
        severity,
        code: code.into(),
        message,
    };
    if m.uninstall_script.is_none() {
        out.push(manifest_finding(
            Severity::Warning,
            "no-uninstall",
            "no uninstall_script: users cannot remove what this installs".into(),
        ));
    }
    if m.health.is_none() {
        out.push(manifest_finding(
            Severity::Warning,
            "no-health",
            "no health check: add `health: {command: ...}` or `health: {url: ...}`".into(),
        ));
    }
    let mut used = BTreeSet::new();
    for (path, text) in inst.scripts() {
        out.extend(lint_script(&id, path, text, &inputs, &mut used));
    }
    for input in &m.inputs {
        if !used.contains(&input.env_name()) {
            out.push(manifest_finding(
                Severity::Warning,
                "unused-input",
                format!(
                    "input {} is never read: no script uses ${}",
                    input.name,
                    input.env_name()
                ),
            ));
        }
    }
    out
}

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
    Regex::new(r"^-:(\d+):\d+: (error|warning|note|info|style): (.*) \[(SC\d+)\]$")
        .expect("static regex")
});

/// Runs shellcheck (bash dialect, every severity) on each script. `None` when it is not installed.
pub fn shellcheck_installer(inst: &Installer) -> Option<Vec<LintFinding>> {
    if !shellcheck_available() {
        return None;
    }
    let mut out = Vec::new();
    for (path, text) in inst.scripts() {
        let child = Command::new("shellcheck")
            .args(["--shell=bash", "--format=gcc", "--external-sources", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                out.push(LintFinding {
                    installer: inst.id().into(),
                    file: path.into(),
                    line: 0,
                    severity: Severity::Warning,
                    code: "shellcheck".into(),
                    message: format!("cannot run shellcheck: {e}"),
                });
                continue;
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            // a write error shows up as shellcheck's own failure below
            let _ = stdin.write_all(text.as_bytes());
        }
        let output = match child.wait_with_output() {
            Ok(o) => o,
            Err(e) => {
                out.push(LintFinding {
                    installer: inst.id().into(),
                    file: path.into(),
                    line: 0,
                    severity: Severity::Warning,
                    code: "shellcheck".into(),
                    message: format!("shellcheck failed: {e}"),
                });
                continue;
            }
        };
        for l in String::from_utf8_lossy(&output.stdout).lines() {
            if let Some(c) = SC_LINE.captures(l) {
                out.push(LintFinding {
                    installer: inst.id().into(),
                    file: path.into(),
                    line: c[1].parse().unwrap_or(0),
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
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;

    const MANIFEST: &str = "id: demo\nname: Demo\nversion: '1'\ninstall_script: install.sh\nuninstall_script: uninstall.sh\nhealth:\n  command: 'true'\ninputs:\n  - {name: greeting, type: string}\n";
    const GOOD: &str = "#!/usr/bin/env bash\nset -euo pipefail\nexport DEBIAN_FRONTEND=noninteractive\nGREETING=${GREETING:-hi}\necho \"$GREETING from $PROVISION_TUI_SERVER in $HOME\"\n";
    const UNINSTALL: &str = "#!/usr/bin/env bash\nset -euo pipefail\necho bye\n";

    fn installer(manifest: &str, install: &str) -> Installer {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("demo");
        std::fs::create_dir(&d).expect("mkdir");
        std::fs::write(d.join("manifest.yml"), manifest).expect("write");
        std::fs::write(d.join("install.sh"), install).expect("write");
        std::fs::write(d.join("uninstall.sh"), UNINSTALL).expect("write");
        let cat = Catalog::load_dir(dir.path());
        assert!(cat.problems.is_empty(), "{:?}", cat.problems);
        cat.get("demo").expect("demo loads").clone()
    }

    fn codes(f: &[LintFinding]) -> Vec<&str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn a_clean_installer_has_no_findings() {
        let f = lint_installer(&installer(MANIFEST, GOOD));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn stdin_readers_are_flagged_with_their_line() {
        for (snippet, what) in [
            ("read -r answer", "read"),
            ("if read -r x; then :; fi", "read in if"),
            ("IFS=, read -r -a parts <<< \"$GREETING\"", "read with IFS"),
            ("x=$(cat)", "cat in $()"),
            ("cat | tr a b", "cat in a pipe"),
            ("cat - > /tmp/x", "cat -"),
            ("mapfile -t lines", "mapfile"),
            ("tr a b < /dev/stdin", "/dev/stdin"),
        ] {
            let script = format!("{GOOD}{snippet}\n");
            let f = lint_installer(&installer(MANIFEST, &script));
            let hit = f
                .iter()
                .find(|f| f.code == "reads-stdin")
                .unwrap_or_else(|| panic!("{what} not flagged: {f:?}"));
            assert_eq!(hit.line, 6, "{what}");
            assert_eq!(hit.file, "install.sh");
        }
    }

    #[test]
    fn harmless_lookalikes_are_not_flagged() {
        for snippet in [
            "# read the docs first",
            "echo 'read me' \"cat\"",
            "cat /etc/os-release > /dev/null",
            "cat <<EOF > /tmp/x\nread this\ncat\nEOF",
            "mapfile -t pkgs < <(dpkg-query -W -f='${Package}\\n')\necho \"${pkgs[@]}\"",
            "thread=1; readonly_x=2; echo \"$thread $readonly_x\"",
        ] {
            let script = format!("{GOOD}{snippet}\n");
            let f = lint_installer(&installer(MANIFEST, &script));
            assert!(!codes(&f).contains(&"reads-stdin"), "{snippet:?}: {f:?}");
        }
    }

    #[test]
    fn strict_mode_spellings() {
        for (set, ok) in [
            ("set -euo pipefail", true),
            ("set -Eeuo pipefail", true),
            ("set -e -u -o pipefail", true),
            ("set -o errexit -o nounset -o pipefail", true),
            ("set -eu", false),
            ("set -e", false),
            ("# set -euo pipefail", false),
        ] {
            let script = format!("#!/usr/bin/env bash\n{set}\necho \"$GREETING\"\n");
            let f = lint_installer(&installer(MANIFEST, &script));
            assert_eq!(!codes(&f).contains(&"strict-mode"), ok, "{set}: {f:?}");
        }
    }

    #[test]
    fn posix_sh_scripts_need_eu_and_get_a_warning() {
        for (head, strict_ok) in [
            ("#!/bin/sh\nset -eu", true),
            ("#!/bin/sh -eu\n:", true),
            ("#!/bin/sh\nset -e", false),
            ("#!/bin/bash -eu\n:", false),
        ] {
            let script = format!("{head}\necho \"$GREETING\"\n");
            let f = lint_installer(&installer(MANIFEST, &script));
            let c = codes(&f);
            assert_eq!(!c.contains(&"strict-mode"), strict_ok, "{head}: {f:?}");
            assert_eq!(
                c.contains(&"posix-sh"),
                head.starts_with("#!/bin/sh"),
                "{head}"
            );
        }
    }

    #[test]
    fn env_vars_against_inputs() {
        // uses an undeclared var; never reads the declared input
        let script = "#!/usr/bin/env bash\nset -euo pipefail\necho \"${GREETNG:-x}\"\nLOCAL_ONE=1\necho \"$LOCAL_ONE $PATH $PROVISION_TUI_JOB_ID ${BASH_REMATCH[1]:-}\"\nfor ITEM in a b; do echo \"$ITEM\"; done\necho '$NOT_EXPANDED'\ncat <<'EOF' > /tmp/x\n$QUOTED_HEREDOC\nEOF\n";
        let f = lint_installer(&installer(MANIFEST, script));
        let undeclared: Vec<_> = f.iter().filter(|f| f.code == "undeclared-env").collect();
        assert_eq!(undeclared.len(), 1, "{f:?}");
        assert!(undeclared[0].message.contains("$GREETNG"));
        assert_eq!(undeclared[0].line, 3);
        assert!(
            f.iter()
                .any(|f| f.code == "unused-input" && f.message.contains("greeting")),
            "{f:?}"
        );
        // an unquoted here-document expands, so a var there counts as used
        let script =
            "#!/usr/bin/env bash\nset -euo pipefail\ncat <<EOF > /tmp/x\nhello $GREETING\nEOF\n";
        let f = lint_installer(&installer(MANIFEST, script));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn manifest_completeness_and_apt_frontend() {
        let m = "id: demo\nname: Demo\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - {name: host_name, type: string}\n";
        let script =
            "#!/usr/bin/env bash\nset -euo pipefail\napt-get install -y x\necho \"$HOST_NAME\"\n";
        let f = lint_installer(&installer(m, script));
        let c = codes(&f);
        for want in ["no-uninstall", "no-health", "debian-frontend"] {
            assert!(c.contains(&want), "{want} missing: {f:?}");
        }
        assert_eq!(f.len(), 3, "{f:?}");
    }

    #[test]
    fn missing_shebang_is_an_error() {
        let f = lint_installer(&installer(
            MANIFEST,
            "set -euo pipefail\necho \"$GREETING\"\n",
        ));
        assert!(
            f.iter()
                .any(|f| f.code == "shebang" && f.severity == Severity::Error),
            "{f:?}"
        );
    }

    #[test]
    fn shellcheck_findings_when_installed() {
        let inst = installer(MANIFEST, &format!("{GOOD}x=$GREETING\nls $x\n"));
        match shellcheck_installer(&inst) {
            None => eprintln!("shellcheck not installed: skipping its part of the test"),
            Some(f) => assert!(f.iter().any(|f| f.code == "SC2086" && f.line == 7), "{f:?}"),
        }
    }

    #[test]
    fn every_bundled_installer_lints_clean() {
        let cat = Catalog::load(&[]);
        assert!(cat.problems.is_empty(), "{:?}", cat.problems);
        assert!(
            cat.len() >= 9,
            "expected the full catalog, got {}",
            cat.len()
        );
        for inst in cat.installers() {
            let mut f = lint_installer(inst);
            f.extend(shellcheck_installer(inst).unwrap_or_default());
            assert!(
                f.is_empty(),
                "{}:\n{}",
                inst.id(),
                f.iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
