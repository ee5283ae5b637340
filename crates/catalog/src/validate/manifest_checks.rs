//! Semantic checks of a parsed manifest (beyond what serde enforces), each with its line and
//! column in the YAML text.

use super::input_names::input_name_problem;
use super::input_values::{check_value, compile_pattern};
use crate::locate::{Seg, locate};
use crate::manifest::{InputType, Manifest};
use std::collections::{BTreeMap, HashSet};

/// A manifest problem with its position in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestIssue {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn issue(text: &str, path: &[Seg<'_>], message: String) -> ManifestIssue {
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
            let vip = vec![
                Seg::Key("inputs"),
                Seg::Index(idx),
                Seg::Key("visible_if"),
                Seg::Key("input"),
            ];
            if vi.input == input.name {
                out.push(issue(
                    text,
                    &vip,
                    format!("input {}: visible_if cannot refer to itself", input.name),
                ));
            } else if !names.contains(&vi.input.as_str()) {
                out.push(issue(
                    text,
                    &vip,
                    format!(
                        "input {}: visible_if names unknown input {:?}; known: {}",
                        input.name,
                        vi.input,
                        names.join(", ")
                    ),
                ));
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
    if let Some(cycle) = visible_if_cycle(m) {
        out.push(issue(
            text,
            &[Seg::Key("inputs")],
            format!("visible_if conditions form a cycle: {cycle}"),
        ));
    }
    out
}

fn visible_if_cycle(m: &Manifest) -> Option<String> {
    let parent: BTreeMap<&str, &str> = m
        .inputs
        .iter()
        .filter_map(|i| {
            i.visible_if
                .as_ref()
                .map(|v| (i.name.as_str(), v.input.as_str()))
        })
        .collect();
    for start in parent.keys() {
        let mut chain = vec![*start];
        let mut cur = *start;
        while let Some(&next) = parent.get(cur) {
            if chain.contains(&next) {
                chain.push(next);
                return Some(chain.join(" -> "));
            }
            chain.push(next);
            cur = next;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_semantic_checks() {
        let text = "id: Bad_Id\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: a\n    type: select\n  - name: a\n    type: string\n    validation:\n      pattern: '(['\n  - name: c\n    type: integer\n    default: 0\n    validation:\n      min_value: 5\n  - name: d\n    type: string\n    visible_if:\n      input: nope\n      equals: x\n";
        let m: Manifest = yaml_serde::from_str(text).unwrap();
        let issues = check_manifest(&m, text, None);
        let find = |s: &str| {
            issues
                .iter()
                .find(|i| i.message.contains(s))
                .unwrap_or_else(|| panic!("{s}: {issues:?}"))
        };
        assert_eq!(find("must match [a-z0-9-]+").line, 1);
        assert_eq!(find("allowed_values").line, 7);
        assert_eq!(find("duplicate input").line, 8);
        assert_eq!(find("invalid regex").line, 11);
        assert_eq!(find("default \"0\"").line, 14);
        assert_eq!(find("unknown input \"nope\"").line, 20);
    }
}
