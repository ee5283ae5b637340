//! Validation of input values (from `--set`, a form or a stored deployment) against a
//! manifest's types and rules, visibility (`visible_if`), and the resolved inputs a job sends.

use crate::manifest::{InputSpec, InputType, Manifest};
use ptui_types::secret::{MASK, SHORT_SECRET_CHARS, Secret};
use regex::Regex;
use std::collections::BTreeMap;

/// Values over this size are refused: they do not belong in an env var.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Anchored form of a manifest pattern: patterns must match the whole value.
pub fn compile_pattern(p: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{p})$"))
}

/// The rule of an input in words, for form hints and error messages.
pub fn describe_rules(input: &InputSpec) -> Vec<String> {
    let mut out = Vec::new();
    match input.kind {
        InputType::Integer => out.push("a whole number".into()),
        InputType::Port => out.push("a port 1-65535".into()),
        InputType::Boolean => out.push("true or false".into()),
        InputType::Email => out.push("an email address".into()),
        _ => {}
    }
    if let Some(v) = &input.validation {
        // The manifest's words stand for its regex.
        match (&v.message, &v.pattern) {
            (Some(m), _) => out.push(m.trim().trim_end_matches('.').to_string()),
            (None, Some(p)) => out.push(format!("matches {p}")),
            _ => {}
        }
        if let Some(items) = &v.items
            && v.message.is_none()
        {
            out.extend(super::list_items::describe_items(input, items));
        }
        match (v.min_length, v.max_length) {
            (Some(a), Some(b)) => out.push(format!("{a}-{b} characters")),
            (Some(a), None) => out.push(format!("at least {a} characters")),
            (None, Some(b)) => out.push(format!("at most {b} characters")),
            _ => {}
        }
        match (v.min_value, v.max_value) {
            (Some(a), Some(b)) => out.push(format!("between {a} and {b}")),
            (Some(a), None) => out.push(format!("at least {a}")),
            (None, Some(b)) => out.push(format!("at most {b}")),
            _ => {}
        }
        if let Some(a) = &v.allowed_values {
            out.push(format!("one of: {}", a.join(", ")));
        }
    }
    out
}

fn is_email(v: &str) -> bool {
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

/// Normalises booleans; everything else passes through verbatim.
pub fn normalize_bool(v: &str) -> Option<&'static str> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some("true"),
        "false" | "no" | "off" | "0" => Some("false"),
        _ => None,
    }
}

/// Checks one value against its input's type and rules. The message completes
/// "input NAME ..." and states the rule.
pub fn check_value(input: &InputSpec, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err("contains a NUL byte, which cannot be passed to a script".into());
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "is {} bytes; values are limited to 64 KiB (pass large data as a file on the server)",
            value.len()
        ));
    }
    let v = input.validation.clone().unwrap_or_default();
    // Messages reach the terminal, the audit log and job records: never echo a secret
    // (nor its length or numeric value).
    let sensitive = input.is_sensitive();
    let got = |shown: &dyn std::fmt::Display| {
        if sensitive {
            String::new()
        } else {
            format!(", got {shown}")
        }
    };
    match input.kind {
        InputType::Integer | InputType::Port => {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| format!("must be a whole number{}", got(&format!("{value:?}"))))?;
            if input.kind == InputType::Port && !(1..=65535).contains(&n) {
                return Err(format!("must be a port between 1 and 65535{}", got(&n)));
            }
            if let Some(min) = v.min_value
                && n < min
            {
                return Err(format!("must be at least {min}{}", got(&n)));
            }
            if let Some(max) = v.max_value
                && n > max
            {
                return Err(format!("must be at most {max}{}", got(&n)));
            }
        }
        InputType::Boolean => {
            if normalize_bool(value).is_none() {
                return Err(format!(
                    "must be true or false{}",
                    got(&format!("{value:?}"))
                ));
            }
        }
        InputType::Email => {
            if !is_email(value) {
                return Err(format!(
                    "must be an email address like ops@example.com{}",
                    got(&format!("{value:?}"))
                ));
            }
        }
        InputType::Select => {
            if !v
                .allowed_values
                .as_ref()
                .is_some_and(|a| a.iter().any(|x| x == value))
            {
                return Err(format!(
                    "must be one of: {}",
                    v.allowed_values.unwrap_or_default().join(", ")
                ));
            }
        }
        InputType::String | InputType::Password => {}
    }
    let chars = value.chars().count();
    if let Some(min) = v.min_length
        && chars < min
    {
        return Err(format!("must be at least {min} characters{}", got(&chars)));
    }
    if let Some(max) = v.max_length
        && chars > max
    {
        return Err(format!("must be at most {max} characters{}", got(&chars)));
    }
    if let Some(p) = &v.pattern {
        let re = compile_pattern(p)
            .map_err(|e| format!("has an invalid pattern in its manifest: {e}"))?;
        if !re.is_match(value) {
            return Err(match &v.message {
                Some(m) => m.trim().to_string(),
                None => format!("must match the pattern {p}"),
            });
        }
    }
    if let Some(items) = &v.items {
        super::list_items::check_items(input, items, value).map_err(|e| match &v.message {
            Some(m) => format!("{e}; expected {}", m.trim().trim_end_matches('.')),
            None => e,
        })?;
    }
    if input.kind != InputType::Select
        && let Some(allowed) = &v.allowed_values
        && !allowed.iter().any(|x| x == value)
    {
        return Err(format!("must be one of: {}", allowed.join(", ")));
    }
    if is_short_secret(input, value) {
        return Err(format!(
            "is a secret shorter than {SHORT_SECRET_CHARS} characters: it is easy to guess, and \
             masking it in logs would show where it occurs; use at least {SHORT_SECRET_CHARS} \
             characters (an installer that needs a short one, e.g. a PIN, sets \
             `validation: {{allow_short: true}}` on the input)"
        ));
    }
    Ok(())
}

/// A non-empty sensitive free-form value under `SHORT_SECRET_CHARS` the manifest does not allow.
/// Booleans, selects and ports come from a small known set: their length says nothing.
fn is_short_secret(input: &InputSpec, value: &str) -> bool {
    let free_form = matches!(
        input.kind,
        InputType::String | InputType::Password | InputType::Email | InputType::Integer
    );
    input.is_sensitive()
        && free_form
        && !value.is_empty()
        && value.chars().count() < SHORT_SECRET_CHARS
        && !input.validation.as_ref().is_some_and(|v| v.allow_short)
}

/// A validated input ready to send: its env name, value and whether it is secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedInput {
    pub name: String,
    pub env: String,
    pub value: Secret,
    pub sensitive: bool,
}

/// The validated inputs of one install.
#[derive(Debug, Clone, Default)]
pub struct ResolvedInputs {
    pub inputs: Vec<ResolvedInput>,
}

impl ResolvedInputs {
    /// JSON for the database and audit: sensitive values become `***`.
    pub fn masked_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .inputs
            .iter()
            .map(|i| {
                let v = if i.sensitive {
                    MASK.to_string()
                } else {
                    i.value.expose().to_string()
                };
                (i.name.clone(), serde_json::Value::String(v))
            })
            .collect();
        serde_json::Value::Object(map)
    }

    pub fn secrets(&self) -> Vec<Secret> {
        self.inputs
            .iter()
            .filter(|i| i.sensitive)
            .map(|i| i.value.clone())
            .collect()
    }
}

/// One rejected input value.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    pub input: String,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "input {}: {}", self.input, self.message)
    }
}

/// Which inputs are visible given the current raw values (defaults applied).
pub fn visibility(m: &Manifest, given: &BTreeMap<String, String>) -> BTreeMap<String, bool> {
    let effective = |name: &str| -> Option<String> {
        let spec = m.inputs.iter().find(|i| i.name == name)?;
        let raw = given
            .get(name)
            .cloned()
            .or_else(|| spec.default.as_ref().map(|d| d.as_text()))?;
        Some(if spec.kind == InputType::Boolean {
            normalize_bool(&raw).map(str::to_string).unwrap_or(raw)
        } else {
            raw
        })
    };
    // An input is shown when its conditions match and every input they name is shown too
    // (hidden parents hide their children). `depth` bounds a cycle, which validate reports.
    fn shown(
        m: &Manifest,
        name: &str,
        effective: &dyn Fn(&str) -> Option<String>,
        memo: &mut BTreeMap<String, bool>,
        depth: usize,
    ) -> bool {
        if let Some(v) = memo.get(name) {
            return *v;
        }
        let Some(input) = m.inputs.iter().find(|i| i.name == name) else {
            return false;
        };
        let v = match &input.visible_if {
            None => true,
            Some(_) if depth > m.inputs.len() => false,
            Some(vi) => vi.conditions.iter().all(|c| {
                c.matches(effective(&c.input).as_deref())
                    && shown(m, &c.input, effective, memo, depth + 1)
            }),
        };
        memo.insert(name.to_string(), v);
        v
    }
    let mut out = BTreeMap::new();
    for input in &m.inputs {
        let visible = shown(m, &input.name, &effective, &mut out, 0);
        out.insert(input.name.clone(), visible);
    }
    out
}

/// Validates raw values (from `--set`, a form, or a stored deployment) against the manifest.
/// Hidden inputs are neither required nor sent; undeclared inputs are errors.
pub fn resolve_inputs(
    m: &Manifest,
    given: &BTreeMap<String, String>,
) -> Result<ResolvedInputs, Vec<InputError>> {
    let mut errors = Vec::new();
    for key in given.keys() {
        if !m.inputs.iter().any(|i| &i.name == key) {
            let known: Vec<&str> = m.inputs.iter().map(|i| i.name.as_str()).collect();
            errors.push(InputError {
                input: key.clone(),
                message: format!(
                    "is not declared by {}; it accepts: {}",
                    m.id,
                    if known.is_empty() {
                        "no inputs".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        }
    }
    let vis = visibility(m, given);
    let mut out = ResolvedInputs::default();
    for input in &m.inputs {
        if !vis.get(&input.name).copied().unwrap_or(true) {
            continue;
        }
        let raw = given
            .get(&input.name)
            .cloned()
            .or_else(|| input.default.as_ref().map(|d| d.as_text()));
        let raw = match raw {
            Some(r)
                if !(r.is_empty()
                    && input.kind != InputType::String
                    && input.kind != InputType::Password) =>
            {
                r
            }
            _ => {
                if input.required {
                    errors.push(InputError {
                        input: input.name.clone(),
                        message: "is required".into(),
                    });
                }
                continue;
            }
        };
        if raw.is_empty() && input.required {
            errors.push(InputError {
                input: input.name.clone(),
                message: "is required".into(),
            });
            continue;
        }
        if let Err(message) = check_value(input, &raw) {
            errors.push(InputError {
                input: input.name.clone(),
                message,
            });
            continue;
        }
        let value = match input.kind {
            InputType::Boolean => normalize_bool(&raw).unwrap_or("false").to_string(),
            InputType::Integer | InputType::Port => raw.trim().to_string(),
            _ => raw,
        };
        out.inputs.push(ResolvedInput {
            name: input.name.clone(),
            env: input.env_name(),
            value: Secret::new(value),
            sensitive: input.is_sensitive(),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(inputs: &str) -> Manifest {
        let text = format!(
            "id: demo\nname: Demo\nversion: '1'\ninstall_script: install.sh\ninputs:\n{inputs}"
        );
        yaml_serde::from_str(&text).expect("fixture manifest parses")
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const ALL_TYPES: &str = r#"
  - {name: s, type: string, validation: {pattern: '[a-z]+', min_length: 2, max_length: 5}}
  - {name: n, type: integer, validation: {min_value: 1, max_value: 10}}
  - {name: b, type: boolean, default: false}
  - {name: pw, type: password, required: true, validation: {min_length: 8}}
  - {name: sel, type: select, default: a, validation: {allowed_values: [a, b]}}
  - {name: mail, type: email}
  - {name: p, type: port}
  - {name: extra, type: string, required: true, visible_if: {input: b, equals: true}}
"#;

    #[test]
    fn visible_if_shorthand_all_keys_and_lists() {
        let m = manifest(
            r#"
  - {name: tls, type: boolean, default: false}
  - {name: mode, type: select, default: a, validation: {allowed_values: [a, b, c]}}
  - {name: cert, type: string, required: true, visible_if: {tls: true, mode: [b, c]}}
  - {name: key, type: string, visible_if: {cert: x}}
"#,
        );
        let shown = |pairs: &[(&str, &str)]| visibility(&m, &given(pairs));
        assert!(!shown(&[])["cert"], "tls false by default");
        assert!(!shown(&[("tls", "yes")])["cert"], "mode a is not in [b, c]");
        assert!(shown(&[("tls", "yes"), ("mode", "c")])["cert"]);
        assert!(
            !shown(&[("tls", "no"), ("mode", "c")])["cert"],
            "every key must match"
        );
        // A hidden parent hides its child even when the child's own condition matches.
        assert!(!shown(&[("cert", "x")])["key"]);
        assert!(shown(&[("tls", "true"), ("mode", "b"), ("cert", "x")])["key"]);
        // Hidden and required: not asked for.
        assert!(resolve_inputs(&m, &given(&[])).is_ok());
        let err = resolve_inputs(&m, &given(&[("tls", "true"), ("mode", "b")])).unwrap_err();
        assert_eq!(err[0].input, "cert", "{err:?}");
    }

    #[test]
    fn sensitive_values_never_appear_in_messages() {
        let m = manifest(
            r#"
  - {name: pin, type: integer, sensitive: true, validation: {min_value: 1000}}
  - {name: token, type: email, sensitive: true}
  - {name: flag, type: boolean, sensitive: true}
  - {name: pw, type: password, validation: {min_length: 20}}
  - {name: n, type: integer}
"#,
        );
        let spec = |name: &str| m.inputs.iter().find(|i| i.name == name).unwrap();
        for (name, value) in [
            ("pin", "s3cr3t-pin"),
            ("pin", "123"),
            ("token", "tok-XYZZY"),
            ("flag", "maybe-XYZZY"),
            ("pw", "hunter2-XYZZY"),
        ] {
            let err = check_value(spec(name), value).expect_err(name);
            assert!(!err.contains(value), "{name}: {err}");
            // Not even the length of a password.
            assert!(!err.contains("got"), "{name}: {err}");
        }
        // Non-sensitive inputs still say what was wrong.
        let err = check_value(spec("n"), "abc").unwrap_err();
        assert!(err.contains("\"abc\""), "{err}");
    }

    #[test]
    fn every_type_and_rule_is_enforced() {
        let m = manifest(ALL_TYPES);
        let bad = [
            ("s", "A", "must be at least 2"),
            ("s", "abcdef", "at most 5"),
            ("s", "AB", "pattern"),
            ("n", "x", "whole number"),
            ("n", "0", "at least 1"),
            ("n", "11", "at most 10"),
            ("b", "maybe", "true or false"),
            ("pw", "short", "at least 8"),
            ("sel", "c", "one of: a, b"),
            ("mail", "nope", "email"),
            ("p", "70000", "between 1 and 65535"),
            ("p", "80x", "whole number"),
        ];
        for (k, v, want) in bad {
            let mut g = given(&[("pw", "longenough")]);
            g.insert(k.into(), v.into());
            let errs = resolve_inputs(&m, &g).expect_err(&format!("{k}={v} must fail"));
            assert!(
                errs.iter()
                    .any(|e| e.input == k && e.message.contains(want)),
                "{k}={v}: {errs:?}"
            );
        }
        let ok = resolve_inputs(
            &m,
            &given(&[
                ("s", "abc"),
                ("n", "5"),
                ("pw", "longenough"),
                ("mail", "a@b.io"),
                ("p", "8080"),
                ("b", "no"),
            ]),
        )
        .unwrap();
        let names: Vec<_> = ok.inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            ["s", "n", "b", "pw", "sel", "mail", "p"],
            "hidden `extra` is not sent"
        );
        assert_eq!(ok.inputs[2].value.expose(), "false");
        assert!(ok.inputs[3].sensitive);
        assert_eq!(ok.masked_json()["pw"], "***");
    }

    #[test]
    fn short_secrets_are_refused_unless_the_manifest_allows_them() {
        let m = manifest(
            r#"
  - {name: pw, type: password}
  - {name: key, type: string, sensitive: true, default: ""}
  - {name: pin, type: integer, sensitive: true, validation: {allow_short: true}}
  - {name: flag, type: boolean, sensitive: true}
  - {name: plain, type: string}
"#,
        );
        let spec = |name: &str| m.inputs.iter().find(|i| i.name == name).unwrap();
        for short in ["Q", "zX", "q7Z", "hunter2"] {
            let err = check_value(spec("pw"), short).expect_err(short);
            assert!(err.contains("shorter than 8 characters"), "{err}");
            assert!(err.contains("allow_short: true"), "{err}");
            assert!(!err.contains(short), "the value is not echoed: {err}");
        }
        check_value(spec("pw"), "hunter22").unwrap();
        // Counted in characters, not bytes.
        assert!(check_value(spec("pw"), "ééééééé").is_err());
        check_value(spec("key"), "").unwrap();
        check_value(spec("pin"), "1234").unwrap();
        check_value(spec("flag"), "true").unwrap();
        check_value(spec("plain"), "ab").unwrap();
        // An optional secret left at its empty default is not "short".
        let r = resolve_inputs(&m, &given(&[("pw", "longenough")])).unwrap();
        assert_eq!(r.inputs.len(), 2, "pw and the empty key");
    }

    #[test]
    fn required_hidden_and_visible() {
        let m = manifest(ALL_TYPES);
        let errs = resolve_inputs(&m, &given(&[])).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.input == "pw" && e.message == "is required")
        );
        assert!(
            !errs.iter().any(|e| e.input == "extra"),
            "hidden input is not required"
        );
        let errs = resolve_inputs(&m, &given(&[("pw", "longenough"), ("b", "true")])).unwrap_err();
        assert!(
            errs.iter().any(|e| e.input == "extra"),
            "visible input becomes required"
        );
    }

    #[test]
    fn undeclared_nul_and_oversize_are_refused() {
        let m = manifest(ALL_TYPES);
        let errs = resolve_inputs(&m, &given(&[("pw", "longenough"), ("bogus", "1")])).unwrap_err();
        assert!(errs[0].message.contains("not declared"), "{errs:?}");
        let errs = resolve_inputs(&m, &given(&[("pw", "long\0enough")])).unwrap_err();
        assert!(errs[0].message.contains("NUL"));
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        let errs = resolve_inputs(&m, &given(&[("pw", big.as_str())])).unwrap_err();
        assert!(errs[0].message.contains("64 KiB"));
    }

    #[test]
    fn values_pass_verbatim() {
        let m = manifest("  - {name: v, type: string}\n");
        for payload in [
            "$(touch /tmp/x)",
            "`id`",
            "'; rm -rf /; '",
            "a\nb",
            "*",
            "héllo ✓",
            "  spaced  ",
        ] {
            let r = resolve_inputs(&m, &given(&[("v", payload)])).unwrap();
            assert_eq!(r.inputs[0].value.expose(), payload);
        }
    }
}
