//! The script-contract checks: shebang and strict mode, no stdin, apt without prompts, env vars
//! against the manifest's inputs.

use super::scan::scan;
use super::{LintFinding, Severity, static_regex};
use regex::Regex;
use std::collections::BTreeSet;
use std::sync::LazyLock;

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

static VAR_REF: LazyLock<Regex> =
    LazyLock::new(|| static_regex(r"\$\{#?([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)"));
static ASSIGN: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(
        r"(?:^|[\s;&|(!])(?:(?:export|local|declare|readonly|typeset)\s+(?:-[A-Za-z]+\s+)*)?([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?\+?=",
    )
});
static DECLARE_ONLY: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(
        r"(?:^|[\s;&|(])(?:local|declare|readonly|typeset|export)\s+(?:-[A-Za-z]+\s+)*((?:[A-Za-z_][A-Za-z0-9_]*\s*)+)(?:$|[;&|)])",
    )
});
static FOR_VAR: LazyLock<Regex> =
    LazyLock::new(|| static_regex(r"\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b"));
static MAPFILE_VAR: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(r"\b(?:mapfile|readarray)\s+(?:-[A-Za-z]+\s+(?:\S+\s+)?)*([A-Za-z_][A-Za-z0-9_]*)")
});
// a command word: at the start, or after ; & | ( { ! or a keyword
const CMD_START: &str = r"(?:^|[;&|({!]|\$\(|\b(?:then|do|else|elif|if|while|until|time)\s)\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*";
static READ_CMD: LazyLock<Regex> = LazyLock::new(|| static_regex(&format!(r"{CMD_START}read\b")));
static CAT_STDIN: LazyLock<Regex> =
    LazyLock::new(|| static_regex(&format!(r"{CMD_START}cat(?:\s+-)?\s*(?:$|[|;&)>])")));
static MAPFILE_CMD: LazyLock<Regex> =
    LazyLock::new(|| static_regex(&format!(r"{CMD_START}(?:mapfile|readarray)\b")));
static STDIN_PATH: LazyLock<Regex> =
    LazyLock::new(|| static_regex(r"/dev/stdin|/proc/self/fd/0|/dev/fd/0|<&0"));
static SET_LINE: LazyLock<Regex> = LazyLock::new(|| static_regex(r"^\s*set\s+(.*)$"));
static APT_USE: LazyLock<Regex> =
    LazyLock::new(|| static_regex(r"\b(?:apt-get|apt|dpkg-reconfigure)\s"));

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
pub(super) fn lint_script(
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
        match ptui_types::script::interpreter(text) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_regexes_compile() {
        LazyLock::force(&VAR_REF);
        LazyLock::force(&ASSIGN);
        LazyLock::force(&DECLARE_ONLY);
        LazyLock::force(&FOR_VAR);
        LazyLock::force(&MAPFILE_VAR);
        LazyLock::force(&READ_CMD);
        LazyLock::force(&CAT_STDIN);
        LazyLock::force(&MAPFILE_CMD);
        LazyLock::force(&STDIN_PATH);
        LazyLock::force(&SET_LINE);
        LazyLock::force(&APT_USE);
    }
}
