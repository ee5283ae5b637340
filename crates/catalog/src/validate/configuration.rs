//! Checks of `configuration:` (the paths the engine keeps a copy of before a run, and the
//! service it restarts after a restore), each with its line in the YAML text.

use super::manifest_checks::{ManifestIssue, issue};
use crate::locate::Seg;
use crate::manifest::Manifest;

/// Most paths one installer may declare.
pub const MAX_PATHS: usize = 64;
/// Most copies kept on a server.
pub const MAX_KEEP: u32 = 20;
/// Longest wait for the health check after a run or a restore.
pub const MAX_SETTLE: u32 = 120;

/// System directories whose whole content is never "an app's configuration": a restore
/// removes a declared path before it puts the copy back.
const TOO_WIDE: &[&str] = &[
    "/var/lib",
    "/var/log",
    "/var/cache",
    "/var/spool",
    "/usr/lib",
    "/usr/bin",
    "/usr/sbin",
    "/usr/share",
    "/usr/local",
    "/etc/systemd",
    "/etc/default",
    "/etc/ssh",
    "/etc/ssl",
];

/// Trees a copy must never hold (the engine's own copies, kernel and runtime files).
const FORBIDDEN_ROOTS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/tmp",
    "/var/backups/provision-tui",
];

/// Why `p` cannot be a declared configuration path, if so.
pub fn path_problem(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return Some(format!("{p:?} is not an absolute path; write it from /"));
    }
    if let Some(c) = p
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/._@+-".contains(*c)))
    {
        return Some(format!(
            "{p:?} contains {c:?}; a path may hold only letters, digits and /._@+-"
        ));
    }
    if p.len() > 1 && p.ends_with('/') {
        return Some(format!("{p:?} ends with /; write it without the slash"));
    }
    let parts: Vec<&str> = p.split('/').skip(1).collect();
    if parts
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return Some(format!(
            "{p:?} has an empty, `.` or `..` component; write the plain path"
        ));
    }
    if parts.len() < 2 || TOO_WIDE.contains(&p) {
        return Some(format!(
            "{p:?} is a system directory, not one app's configuration; name the app's own files or directories in it"
        ));
    }
    if let Some(root) = FORBIDDEN_ROOTS
        .iter()
        .find(|r| p == **r || p.starts_with(&format!("{r}/")))
    {
        return Some(format!(
            "{p:?} is under {root}, which is never kept as configuration"
        ));
    }
    None
}

/// Why `s` cannot be a systemd unit name, if so.
fn service_problem(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._:-".contains(c));
    (!ok).then(|| {
        format!("service {s:?} is not a systemd unit name (letters, digits and @._:- only)")
    })
}

/// `template` with each `{input}` replaced by `value(input)`; an error names a placeholder
/// without a value or an unclosed brace.
pub fn expand_path(
    template: &str,
    value: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("{template:?} has a `{{` without its `}}`"))?;
        let name = &after[..close];
        let v = value(name).ok_or_else(|| {
            format!("{template:?} names {{{name}}}, which has no value (write the name of a non-sensitive input)")
        })?;
        out.push_str(&v);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The inputs a path names as `{input}`.
fn placeholders(template: &str) -> Vec<&str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(n, _)| n))
        .collect()
}

pub(super) fn check_configuration(m: &Manifest, text: &str) -> Vec<ManifestIssue> {
    let mut out = Vec::new();
    let Some(c) = &m.configuration else {
        return out;
    };
    let at = |k: &'static str| vec![Seg::Key("configuration"), Seg::Key(k)];
    if c.paths.is_empty() {
        out.push(issue(
            text,
            &at("paths"),
            "configuration.paths is empty; list the files and directories the installer writes"
                .into(),
        ));
    }
    if c.paths.len() > MAX_PATHS {
        out.push(issue(
            text,
            &at("paths"),
            format!(
                "configuration.paths lists {} paths; at most {MAX_PATHS}",
                c.paths.len()
            ),
        ));
    }
    for (i, p) in c.paths.iter().enumerate() {
        let here = [Seg::Key("configuration"), Seg::Key("paths"), Seg::Index(i)];
        for name in placeholders(p) {
            let input = m.inputs.iter().find(|i| i.name == name);
            let why = match input {
                None => Some(format!("{{{name}}} is not an input of this installer")),
                Some(i) if i.is_sensitive() => Some(format!(
                    "{{{name}}} is a sensitive input; a path never holds a secret"
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                out.push(issue(
                    text,
                    &here,
                    format!("configuration.paths: {p:?}: {why}"),
                ));
            }
        }
        // Checked with a sample value: the job checks the real one again.
        let problem = match expand_path(p, &|_| Some("x".to_string())) {
            Err(e) => Some(e),
            Ok(sample) => path_problem(&sample),
        };
        if let Some(why) = problem {
            out.push(issue(text, &here, format!("configuration.paths: {why}")));
            continue;
        }
        let inside = |outer: &str| p == outer || p.starts_with(&format!("{outer}/"));
        if let Some((j, other)) =
            c.paths.iter().enumerate().find(|(j, o)| {
                *j != i && inside(o) && (p != *o || *j < i) && path_problem(o).is_none()
            })
        {
            let (line, _) = crate::locate::locate(
                text,
                &[Seg::Key("configuration"), Seg::Key("paths"), Seg::Index(j)],
            );
            out.push(issue(
                text,
                &here,
                format!(
                    "configuration.paths: {p:?} is already covered by {other:?} (line {line}); list it once"
                ),
            ));
        }
    }
    for (i, s) in c.services.iter().enumerate() {
        if let Some(why) = service_problem(s) {
            let here = [
                Seg::Key("configuration"),
                Seg::Key("services"),
                Seg::Index(i),
            ];
            out.push(issue(text, &here, format!("configuration: {why}")));
        }
    }
    if c.keep == 0 || c.keep > MAX_KEEP {
        out.push(issue(
            text,
            &at("keep"),
            format!(
                "configuration.keep is {}; keep 1 to {MAX_KEEP} copies",
                c.keep
            ),
        ));
    }
    if c.settle_seconds == 0 || c.settle_seconds > MAX_SETTLE {
        out.push(issue(
            text,
            &at("settle_seconds"),
            format!(
                "configuration.settle_seconds is {}; give 1 to {MAX_SETTLE}",
                c.settle_seconds
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues_of(text: &str) -> Vec<ManifestIssue> {
        let m: Manifest = yaml_serde::from_str(text).unwrap();
        check_configuration(&m, text)
    }

    /// The line of the issue whose message contains `s`.
    fn line_of(issues: &[ManifestIssue], s: &str) -> usize {
        issues
            .iter()
            .find(|i| i.message.contains(s))
            .unwrap_or_else(|| panic!("{s}: {issues:?}"))
            .line
    }

    const HEAD: &str = "id: x\nname: x\nversion: '1'\ninstall_script: install.sh\n";

    #[test]
    fn a_sound_configuration_has_no_issue() {
        let text = format!(
            "{HEAD}configuration:\n  paths:\n    - /etc/nginx/sites-available/x\n    - /var/www/x\n  services: [nginx.service]\n  keep: 5\n"
        );
        assert_eq!(issues_of(&text), vec![]);
    }

    #[test]
    fn every_bad_path_is_named_at_its_line() {
        let text = format!(
            "{HEAD}configuration:\n  paths:\n    - etc/x\n    - /etc\n    - /etc/x/../y\n    - /etc/a b\n    - /run/x\n    - /etc/app\n    - /etc/app/sub\n    - /var/lib\n    - /etc/y/\n  services: ['bad;unit']\n  keep: 0\n  settle_seconds: 999\n"
        );
        let issues = issues_of(&text);
        let line = |s: &str| line_of(&issues, s);
        assert_eq!(line("\"etc/x\" is not an absolute path"), 7);
        assert_eq!(line("\"/etc\" is a system directory"), 8);
        assert_eq!(line("\"/etc/x/../y\" has an empty"), 9);
        assert_eq!(line("\"/etc/a b\" contains ' '"), 10);
        assert_eq!(line("\"/run/x\" is under /run"), 11);
        assert_eq!(
            line("\"/etc/app/sub\" is already covered by \"/etc/app\" (line 12)"),
            13
        );
        assert_eq!(line("\"/var/lib\" is a system directory"), 14);
        assert_eq!(line("\"/etc/y/\" ends with /"), 15);
        assert_eq!(line("service \"bad;unit\""), 16);
        assert_eq!(line("keep is 0"), 17);
        assert_eq!(line("settle_seconds is 999"), 18);
        assert_eq!(issues.len(), 11, "{issues:?}");
    }

    #[test]
    fn input_placeholders_name_plain_inputs_and_expand_to_checked_paths() {
        let text = format!(
            "{HEAD}inputs:\n  - name: app\n    type: string\n  - name: pw\n    type: password\nconfiguration:\n  paths:\n    - /srv/apps/{{app}}/.env\n    - /srv/{{pw}}/x\n    - /srv/{{nope}}/x\n    - /srv/{{app/x\n"
        );
        let issues = issues_of(&text);
        let line = |s: &str| line_of(&issues, s);
        assert_eq!(line("{pw} is a sensitive input"), 13);
        assert_eq!(line("{nope} is not an input"), 14);
        assert_eq!(line("without its"), 15);
        assert_eq!(issues.len(), 3, "{issues:?}");
        let v = |n: &str| (n == "app").then(|| "shop".to_string());
        assert_eq!(
            expand_path("/srv/apps/{app}/.env", &v).unwrap(),
            "/srv/apps/shop/.env"
        );
        assert!(expand_path("/srv/{other}", &v).is_err());
    }

    #[test]
    fn every_bundled_installer_declares_its_configuration() {
        let cat = crate::Catalog::load(&[]);
        assert!(cat.len() >= 10);
        for i in cat.installers() {
            assert!(
                i.manifest.configuration.is_some(),
                "installers/{}/manifest.yml declares no `configuration:`",
                i.id()
            );
        }
    }

    #[test]
    fn an_empty_list_and_unknown_fields_are_refused() {
        let text = format!("{HEAD}configuration:\n  paths: []\n");
        assert!(issues_of(&text)[0].message.contains("paths is empty"));
        let unknown = format!("{HEAD}configuration:\n  paths: [/etc/x/y]\n  files: []\n");
        assert!(yaml_serde::from_str::<Manifest>(&unknown).is_err());
    }
}
