//! Semantic checks of a parsed manifest (beyond what serde enforces), each with its line and
//! column in the YAML text.

use super::input_names::input_name_problem;
use super::input_values::{check_value, compile_pattern};
use crate::locate::{Seg, locate};
use crate::manifest::{InputSpec, InputType, Manifest, Scalar};
use std::collections::{BTreeMap, HashSet};

/// A manifest problem with its position in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestIssue {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

pub(super) fn issue(text: &str, path: &[Seg<'_>], message: String) -> ManifestIssue {
    let (line, column) = locate(text, path);
    ManifestIssue {
        line,
        column,
        message,
    }
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Semantic checks of a parsed manifest. `dir_name` is the installer directory's name.
pub fn check_manifest(m: &Manifest, text: &str, dir_name: Option<&str>) -> Vec<ManifestIssue> {
    let mut out = Vec::new();
    if !is_valid_id(&m.id) {
        out.push(issue(
            text,
            &[Seg::Key("id")],
            format!("id {:?} must match [a-z0-9-]+", m.id),
        ));
    } else if let Some(dir) = dir_name
        && dir != m.id
    {
        out.push(issue(
            text,
            &[Seg::Key("id")],
            format!(
                "id {:?} differs from its directory name {dir:?}; rename one so they match",
                m.id
            ),
        ));
    }
    if m.timeout_seconds == 0 {
        out.push(issue(
            text,
            &[Seg::Key("timeout_seconds")],
            "timeout_seconds must be at least 1".into(),
        ));
    }
    if let Some(h) = &m.health
        && h.command.is_some() == h.url.is_some()
    {
        out.push(issue(
            text,
            &[Seg::Key("health")],
            "health needs exactly one of `command` or `url`".into(),
        ));
    }
    let names: Vec<&str> = m.inputs.iter().map(|i| i.name.as_str()).collect();
    let mut seen = HashSet::new();
    for (idx, input) in m.inputs.iter().enumerate() {
        let at = |k: &'static str| vec![Seg::Key("inputs"), Seg::Index(idx), Seg::Key(k)];
        if let Some(message) = input_name_problem(&input.name) {
            out.push(issue(text, &at("name"), message));
        }
        if input.validation.as_ref().is_some_and(|v| v.allow_short) && !input.is_sensitive() {
            out.push(issue(
                text,
                &[
                    Seg::Key("inputs"),
                    Seg::Index(idx),
                    Seg::Key("validation"),
                    Seg::Key("allow_short"),
                ],
                format!(
                    "input {}: allow_short only applies to sensitive inputs; remove it or mark \
                     the input `sensitive: true`",
                    input.name
                ),
            ));
        }
        if !seen.insert(input.name.as_str()) {
            out.push(issue(
                text,
                &at("name"),
                format!("duplicate input name {:?}", input.name),
            ));
        }
        let v = input.validation.clone().unwrap_or_default();
        let vpath = |k: &'static str| {
            vec![
                Seg::Key("inputs"),
                Seg::Index(idx),
                Seg::Key("validation"),
                Seg::Key(k),
            ]
        };
        if let Some(p) = &v.pattern
            && let Err(e) = compile_pattern(p)
        {
            let first = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string();
            out.push(issue(
                text,
                &vpath("pattern"),
                format!("input {}: invalid regex {p:?}: {first}", input.name),
            ));
        }
        if let Some(items) = &v.items {
            let bad = if !matches!(
                items.item_kind(),
                InputType::String | InputType::Integer | InputType::Port | InputType::Email
            ) {
                Some(format!(
                    "input {}: validation.items.type must be string, integer, port or email",
                    input.name
                ))
            } else if items.protocols.is_some() && items.item_kind() != InputType::Port {
                Some(format!(
                    "input {}: validation.items.protocols needs items of type port",
                    input.name
                ))
            } else if let Some(p) = &items.pattern
                && compile_pattern(p).is_err()
            {
                Some(format!(
                    "input {}: invalid regex {p:?} in validation.items.pattern",
                    input.name
                ))
            } else {
                None
            };
            if let Some(msg) = bad {
                out.push(issue(text, &vpath("items"), msg));
            }
        }
        if input.kind == InputType::Select && v.allowed_values.as_ref().is_none_or(|a| a.is_empty())
        {
            out.push(issue(
                text,
                &at("type"),
                format!(
                    "input {}: a select needs validation.allowed_values",
                    input.name
                ),
            ));
        }
        if let (Some(a), Some(b)) = (v.min_length, v.max_length)
            && a > b
        {
            out.push(issue(
                text,
                &vpath("min_length"),
                format!("input {}: min_length > max_length", input.name),
            ));
        }
        if let (Some(a), Some(b)) = (v.min_value, v.max_value)
            && a > b
        {
            out.push(issue(
                text,
                &vpath("min_value"),
                format!("input {}: min_value > max_value", input.name),
            ));
        }
        if let Some(vi) = &input.visible_if {
            for c in &vi.conditions {
                let key = if vi.rich { "input" } else { c.input.as_str() };
                let vip = vec![
                    Seg::Key("inputs"),
                    Seg::Index(idx),
                    Seg::Key("visible_if"),
                    Seg::Key(key),
                ];
                let parent = m.inputs.iter().find(|i| i.name == c.input);
                if c.input == input.name {
                    out.push(issue(
                        text,
                        &vip,
                        format!("input {}: visible_if cannot refer to itself", input.name),
                    ));
                } else if let Some(parent) = parent {
                    for v in c.values() {
                        if let Some(why) = condition_value_problem(parent, v) {
                            out.push(issue(
                                text,
                                &vip,
                                format!(
                                    "input {}: visible_if {} {:?}: {why}",
                                    input.name,
                                    c.input,
                                    v.as_text()
                                ),
                            ));
                        }
                    }
                } else {
                    out.push(issue(
                        text,
                        &vip,
                        format!(
                            "input {}: visible_if names unknown input {:?}; known: {}",
                            input.name,
                            c.input,
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        if let Some(d) = &input.default {
            // Only check the default when the rules themselves are sound.
            if v.pattern
                .as_deref()
                .is_none_or(|p| compile_pattern(p).is_ok())
                && let Err(e) = check_value(input, &d.as_text())
            {
                out.push(issue(
                    text,
                    &at("default"),
                    format!("input {}: default {:?} {e}", input.name, d.as_text()),
                ));
            }
        }
    }
    out.extend(super::configuration::check_configuration(m, text));
    if let Some(cycle) = visible_if_cycle(m) {
        out.push(issue(
            text,
            &[Seg::Key("inputs")],
            format!("visible_if conditions form a cycle: {cycle}"),
        ));
    }
    out
}

/// Why a `visible_if` value can never be the value of `parent`, if so.
fn condition_value_problem(parent: &InputSpec, v: &Scalar) -> Option<String> {
    let text = v.as_text();
    match parent.kind {
        InputType::Boolean => (!matches!(text.as_str(), "true" | "false"))
            .then(|| format!("{} is a boolean: write true or false", parent.name)),
        InputType::Integer => text
            .parse::<i64>()
            .is_err()
            .then(|| format!("{} is an integer: write a whole number", parent.name)),
        InputType::Port => (!text.parse::<u16>().is_ok_and(|p| p > 0))
            .then(|| format!("{} is a port: write a number 1-65535", parent.name)),
        InputType::Select => (!parent.allowed_values().contains(&text)).then(|| {
            format!(
                "{} is a select: write one of {}",
                parent.name,
                parent.allowed_values().join(", ")
            )
        }),
        InputType::String | InputType::Password | InputType::Email => None,
    }
}

/// A chain of `visible_if` references that comes back to where it started, if any.
fn visible_if_cycle(m: &Manifest) -> Option<String> {
    let parents: BTreeMap<&str, Vec<&str>> = m
        .inputs
        .iter()
        .filter_map(|i| {
            i.visible_if
                .as_ref()
                .map(|v| (i.name.as_str(), v.inputs().collect()))
        })
        .collect();
    fn walk<'a>(
        cur: &'a str,
        parents: &BTreeMap<&'a str, Vec<&'a str>>,
        chain: &mut Vec<&'a str>,
    ) -> Option<String> {
        for &next in parents.get(cur).into_iter().flatten() {
            if chain.contains(&next) {
                chain.push(next);
                return Some(chain.join(" -> "));
            }
            if chain.len() > parents.len() {
                return None;
            }
            chain.push(next);
            if let Some(c) = walk(next, parents, chain) {
                return Some(c);
            }
            chain.pop();
        }
        None
    }
    parents
        .keys()
        .find_map(|start| walk(start, &parents, &mut vec![*start]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues_of(text: &str) -> Vec<ManifestIssue> {
        let m: Manifest = yaml_serde::from_str(text).unwrap();
        check_manifest(&m, text, None)
    }

    /// The issue whose message contains `s`.
    fn issue_with<'a>(issues: &'a [ManifestIssue], s: &str) -> &'a ManifestIssue {
        issues
            .iter()
            .find(|i| i.message.contains(s))
            .unwrap_or_else(|| panic!("{s}: {issues:?}"))
    }

    #[test]
    fn manifest_semantic_checks() {
        let text = "id: Bad_Id\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: a\n    type: select\n  - name: a\n    type: string\n    validation:\n      pattern: '(['\n  - name: c\n    type: integer\n    default: 0\n    validation:\n      min_value: 5\n  - name: d\n    type: string\n    visible_if:\n      input: nope\n      equals: x\n";
        let issues = issues_of(text);
        let find = |s: &str| issue_with(&issues, s);
        assert_eq!(find("must match [a-z0-9-]+").line, 1);
        assert_eq!(find("allowed_values").line, 7);
        assert_eq!(find("duplicate input").line, 8);
        assert_eq!(find("invalid regex").line, 11);
        assert_eq!(find("default \"0\"").line, 14);
        assert_eq!(find("unknown input \"nope\"").line, 20);
    }

    #[test]
    fn visible_if_shorthand_keeps_every_check() {
        let text = "id: x\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: tls\n    type: boolean\n  - name: mode\n    type: select\n    validation: {allowed_values: [a, b]}\n  - name: port\n    type: port\n  - name: k\n    type: string\n    visible_if:\n      tls: yes-please\n      mode: [a, c]\n      nope: 1\n      port: 70000\n  - name: ok\n    type: string\n    visible_if:\n      tls: true\n      mode: [a, b]\n";
        let issues = issues_of(text);
        let find = |s: &str| issue_with(&issues, s);
        assert_eq!(find("tls \"yes-please\": tls is a boolean").line, 16);
        assert_eq!(
            find("mode \"c\": mode is a select: write one of a, b").line,
            17
        );
        assert_eq!(find("unknown input \"nope\"").line, 18);
        assert_eq!(find("port \"70000\": port is a port").line, 19);
        assert_eq!(issues.len(), 4, "the `ok` input is sound: {issues:?}");
    }

    #[test]
    fn visible_if_cycles_through_several_keys_are_found() {
        let text = "id: x\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - {name: a, type: string, visible_if: {c: x}}\n  - {name: b, type: string}\n  - {name: c, type: string, visible_if: {b: x, a: y}}\n";
        let issues = issues_of(text);
        assert!(
            issues
                .iter()
                .any(|i| i.message.contains("form a cycle: a -> c -> a")),
            "{issues:?}"
        );
    }

    #[test]
    fn visible_if_rich_form_names_its_fields() {
        let bad = "id: x\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - {name: a, type: string}\n  - name: b\n    type: string\n    visible_if: {input: a, mode: x}\n";
        let err = yaml_serde::from_str::<Manifest>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `mode`"), "{err}");
        let empty = bad.replace("{input: a, mode: x}", "{}");
        let err = yaml_serde::from_str::<Manifest>(&empty)
            .unwrap_err()
            .to_string();
        assert!(err.contains("visible_if is empty"), "{err}");
        // Both spellings serialise back to themselves.
        for vi in ["{input: a, not_equals: x}", "{a: x}", "{a: [x, y]}"] {
            let text = bad.replace("{input: a, mode: x}", vi);
            let m: Manifest = yaml_serde::from_str(&text).unwrap();
            let again: Manifest =
                yaml_serde::from_str(&yaml_serde::to_string(&m).unwrap()).unwrap();
            assert_eq!(m, again, "{vi}");
        }
    }
}
