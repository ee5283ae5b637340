//! `import ansible FILE`: Ansible INI and YAML inventories, read as ansible-core reads them
//! (compared host by host with `ansible-inventory --list` in tests/import_real_tools.rs).
//!
//! INI: `host:port` and `[v6]:port`, ranges with steps and letters (`web[01:10:2]`,
//! `db-[a:f]`), `[g:vars]`, `[g:children]` nesting, quoted values, comments (a line starting
//! with `#` or `;`, an unquoted `#` on host lines and after section headers; in `[g:vars]`
//! a `#` is part of the value, as in Ansible). Groups become tags. `ansible_host`,
//! `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`, `ansible_become` and the
//! `ansible_ssh_*` aliases are honoured; precedence is in `resolve.rs`.

pub mod json;
mod patterns;
mod resolve;

pub use patterns::expand_range;
use patterns::{before_comment, literal_value, parse_address, split_words};
use resolve::{Inventory, Vars, resolve};

use super::{ImportEntry, ParseError};
use std::path::Path;

/// The hosts a pattern stands for, with the line's variables: a `host:port` port first, so a
/// variable on the same line overrides it, as in Ansible.
fn host_pattern(
    pattern: &str,
    mut vars: Vars,
    line: usize,
) -> Result<Vec<(String, Vars, usize)>, String> {
    let (host, port) = parse_address(pattern)?;
    if let Some(p) = port {
        vars.entry("ansible_port".into())
            .or_insert((p.to_string(), line));
    }
    Ok(expand_range(&host)?
        .into_iter()
        .map(|h| (h, vars.clone(), line))
        .collect())
}

fn parse_ini(text: &str, file: &Path) -> Result<Inventory, ParseError> {
    let mut inv = Inventory::default();
    let mut section = ("ungrouped".to_string(), "hosts".to_string());
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[')
            && !is_host_line(line)
        {
            let inner = before_comment(rest).strip_suffix(']').ok_or_else(|| {
                ParseError::new(file, Some(n), format!("section header {line:?} lacks ']'"))
            })?;
            let (g, kind) = match inner.split_once(':') {
                Some((g, k)) => (g.trim(), k.trim()),
                None => (inner.trim(), "hosts"),
            };
            if g.is_empty() || !matches!(kind, "hosts" | "vars" | "children") {
                return Err(ParseError::new(
                    file,
                    Some(n),
                    format!(
                        "bad section [{inner}]: expected [group], [group:vars] or [group:children]"
                    ),
                ));
            }
            inv.groups.entry(g.to_string()).or_default();
            section = (g.to_string(), kind.to_string());
            continue;
        }
        let group = inv.groups.entry(section.0.clone()).or_default();
        match section.1.as_str() {
            "vars" => {
                let (k, v) = line.split_once('=').ok_or_else(|| {
                    ParseError::new(
                        file,
                        Some(n),
                        format!("expected key=value in [{}:vars], got {line:?}", section.0),
                    )
                })?;
                group
                    .vars
                    .insert(k.trim().to_string(), (literal_value(v), n));
            }
            "children" => group.children.push(before_comment(line).to_string()),
            _ => {
                let words = split_words(line).map_err(|e| ParseError::new(file, Some(n), e))?;
                if words.is_empty() {
                    continue;
                }
                let mut vars = Vars::new();
                for w in &words[1..] {
                    let (k, v) = w.split_once('=').ok_or_else(|| {
                        ParseError::new(
                            file,
                            Some(n),
                            format!("expected key=value after the host, got {w:?}"),
                        )
                    })?;
                    vars.insert(k.to_string(), (literal_value(v), n));
                }
                let hosts = host_pattern(&words[0], vars, n)
                    .map_err(|e| ParseError::new(file, Some(n), e))?;
                group.hosts.extend(hosts);
            }
        }
    }
    Ok(inv)
}

fn scalar(v: &yaml_serde::Value) -> Option<String> {
    match v {
        yaml_serde::Value::String(s) => Some(s.clone()),
        yaml_serde::Value::Number(n) => Some(n.to_string()),
        yaml_serde::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first line mentioning `key:`, for errors the YAML parser cannot place.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(&format!("{key}:")))
        .map(|i| i + 1)
}

fn yaml_vars(
    v: &yaml_serde::Value,
    text: &str,
    file: &Path,
    what: &str,
) -> Result<Vars, ParseError> {
    let mut out = Vars::new();
    match v {
        yaml_serde::Value::Null => {}
        yaml_serde::Value::Mapping(m) => {
            for (k, val) in m {
                let (Some(k), Some(val)) = (scalar(k), scalar(val)) else {
                    continue; // lists and dicts are not connection variables
                };
                out.insert(k.clone(), (val, line_of(text, &k).unwrap_or(0)));
            }
        }
        _ => {
            return Err(ParseError::new(
                file,
                line_of(text, what),
                format!("{what}: expected a mapping of variables"),
            ));
        }
    }
    Ok(out)
}

fn yaml_group(
    name: &str,
    v: &yaml_serde::Value,
    inv: &mut Inventory,
    text: &str,
    file: &Path,
    depth: usize,
) -> Result<(), ParseError> {
    if depth > 32 {
        return Err(ParseError::new(
            file,
            line_of(text, name),
            "groups nested too deeply",
        ));
    }
    inv.groups.entry(name.to_string()).or_default();
    let map = match v {
        yaml_serde::Value::Null => return Ok(()),
        yaml_serde::Value::Mapping(m) => m,
        _ => {
            return Err(ParseError::new(
                file,
                line_of(text, name),
                format!("group {name}: expected a mapping with hosts, vars or children"),
            ));
        }
    };
    for (k, val) in map {
        let key = scalar(k).unwrap_or_default();
        match key.as_str() {
            "hosts" => match val {
                yaml_serde::Value::Null => {}
                yaml_serde::Value::Mapping(hosts) => {
                    for (h, hv) in hosts {
                        let h = scalar(h).unwrap_or_default();
                        let vars = yaml_vars(hv, text, file, &h)?;
                        let line = line_of(text, &h).unwrap_or(0);
                        let hosts = host_pattern(&h, vars, line)
                            .map_err(|e| ParseError::new(file, Some(line), e))?;
                        if let Some(g) = inv.groups.get_mut(name) {
                            g.hosts.extend(hosts);
                        }
                    }
                }
                _ => {
                    return Err(ParseError::new(
                        file,
                        line_of(text, "hosts"),
                        format!("group {name}: hosts must be a mapping (host: vars)"),
                    ));
                }
            },
            "vars" => {
                let vars = yaml_vars(val, text, file, "vars")?;
                if let Some(g) = inv.groups.get_mut(name) {
                    g.vars.extend(vars);
                }
            }
            "children" => match val {
                yaml_serde::Value::Null => {}
                yaml_serde::Value::Mapping(ch) => {
                    for (c, cv) in ch {
                        let c = scalar(c).unwrap_or_default();
                        if let Some(g) = inv.groups.get_mut(name) {
                            g.children.push(c.clone());
                        }
                        yaml_group(&c, cv, inv, text, file, depth + 1)?;
                    }
                }
                _ => {
                    return Err(ParseError::new(
                        file,
                        line_of(text, "children"),
                        format!("group {name}: children must be a mapping of groups"),
                    ));
                }
            },
            other => {
                return Err(ParseError::new(
                    file,
                    line_of(text, other),
                    format!(
                        "group {name}: unknown key {other:?} (expected hosts, vars or children)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn parse_yaml(text: &str, file: &Path) -> Result<Inventory, ParseError> {
    let doc: yaml_serde::Value = yaml_serde::from_str(text)
        .map_err(|e| ParseError::new(file, e.location().map(|l| l.line()), e.to_string()))?;
    let mut inv = Inventory::default();
    let yaml_serde::Value::Mapping(top) = doc else {
        return Err(ParseError::new(
            file,
            Some(1),
            "expected a mapping of groups (e.g. `all:`)",
        ));
    };
    for (g, v) in &top {
        let g = scalar(g).unwrap_or_default();
        yaml_group(&g, v, &mut inv, text, file, 0)?;
    }
    Ok(inv)
}

/// Reads an inventory (YAML when the name ends in .yml/.yaml or the text starts like YAML).
pub fn entries(path: &Path) -> Result<Vec<ImportEntry>, ParseError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ParseError::new(path, None, format!("cannot read: {e}")))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    let yaml = matches!(ext, "yml" | "yaml")
        || first == "---"
        || (first.ends_with(':') && !first.starts_with('['));
    let inv = if yaml {
        parse_yaml(&text, path)?
    } else {
        parse_ini(&text, path)?
    };
    resolve(&inv, path, &|_, line| format!("{}:{line}", path.display()))
}

/// A `[2001:db8::1]:22 ...` host line, not a section header.
fn is_host_line(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    matches!(parse_address(first), Ok((_, Some(_)))) && !first.ends_with(']')
}
