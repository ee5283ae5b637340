//! `import ansible FILE`: Ansible INI and YAML inventories.
//!
//! Groups (nested through `children`) escalate tags; `ansible_host`, `ansible_port`,
//! `ansible_user`, `ansible_ssh_private_key_file` and `ansible_become` (and the old
//! `ansible_ssh_*` spellings) are honoured; ranges like `web[01:20].x` and `db-[a:c]` expand.
//! Variable precedence: `all` < ancestor groups < the host's own groups < host variables.

use super::{ImportEntry, ParseError, local_user, name_from};
use ptui_types::server::ServerSpec;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Vars = BTreeMap<String, (String, usize)>;

#[derive(Debug, Default)]
struct Group {
    /// (pattern, own vars, line)
    hosts: Vec<(String, Vars, usize)>,
    vars: Vars,
    children: Vec<String>,
}

#[derive(Debug, Default)]
struct Inventory {
    groups: BTreeMap<String, Group>,
}

/// Expands `web[01:03].x` into web01.x, web02.x, web03.x; `[a:c]` into a, b, c; `[1:9:2]` strides.
pub fn expand_range(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|c| open + c)
        .ok_or_else(|| format!("unclosed '[' in host pattern {pattern:?}"))?;
    let (head, body, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = body.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(format!(
            "bad range [{body}] in {pattern:?}: expected [start:end] or [start:end:step]"
        ));
    }
    let step: usize = match parts.get(2) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("bad step in [{body}]"))?,
        None => 1,
    };
    let (a, b) = (parts[0], parts[1]);
    let items: Vec<String> = if let (Ok(x), Ok(y)) = (a.parse::<u64>(), b.parse::<u64>()) {
        if x > y {
            return Err(format!("range [{body}] in {pattern:?} runs backwards"));
        }
        if y - x > 100_000 {
            return Err(format!("range [{body}] in {pattern:?} is too large"));
        }
        let width = if a.len() > 1 && a.starts_with('0') {
            a.len()
        } else {
            0
        };
        (x..=y)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else if a.len() == 1
        && b.len() == 1
        && a.chars().all(|c| c.is_ascii_alphabetic())
        && b.chars().all(|c| c.is_ascii_alphabetic())
    {
        let (x, y) = (a.as_bytes()[0], b.as_bytes()[0]);
        if x > y {
            return Err(format!("range [{body}] in {pattern:?} runs backwards"));
        }
        (x..=y)
            .step_by(step)
            .map(|c| (c as char).to_string())
            .collect()
    } else {
        return Err(format!(
            "bad range [{body}] in {pattern:?}: use numbers or single letters"
        ));
    };
    let mut out = Vec::new();
    for rest in expand_range(tail)? {
        for i in &items {
            out.push(format!("{head}{i}{rest}"));
        }
    }
    out.sort();
    Ok(out)
}

/// Splits `k=v k2="a b"` respecting quotes.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err("unclosed quote".into());
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
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
        if let Some(rest) = line.strip_prefix('[') {
            let inner = rest.strip_suffix(']').ok_or_else(|| {
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
        let words = split_words(line).map_err(|e| ParseError::new(file, Some(n), e))?;
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
                let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
                group.vars.insert(k.trim().to_string(), (v.to_string(), n));
            }
            "children" => group.children.push(line.to_string()),
            _ => {
                let mut vars = Vars::new();
                for w in &words[1..] {
                    let (k, v) = w.split_once('=').ok_or_else(|| {
                        ParseError::new(
                            file,
                            Some(n),
                            format!("expected key=value after the host, got {w:?}"),
                        )
                    })?;
                    vars.insert(k.to_string(), (v.to_string(), n));
                }
                group.hosts.push((words[0].clone(), vars, n));
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
                        if let Some(g) = inv.groups.get_mut(name) {
                            g.hosts.push((h, vars, line));
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

fn truthy(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" => Some(true),
        "false" | "no" | "off" | "0" | "n" => Some(false),
        _ => None,
    }
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
    resolve(&inv, path)
}

fn resolve(inv: &Inventory, file: &Path) -> Result<Vec<ImportEntry>, ParseError> {
    // parents[g] = groups listing g as a child
    let mut parents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (g, grp) in &inv.groups {
        for c in &grp.children {
            parents.entry(c.as_str()).or_default().push(g.as_str());
        }
    }
    // Ancestors of a group, farthest first.
    fn ancestors<'a>(
        g: &'a str,
        parents: &BTreeMap<&'a str, Vec<&'a str>>,
        out: &mut Vec<&'a str>,
        depth: usize,
    ) {
        if depth > 32 {
            return;
        }
        for p in parents.get(g).into_iter().flatten() {
            ancestors(p, parents, out, depth + 1);
            if !out.contains(p) {
                out.push(p);
            }
        }
    }
    // host -> (groups in order, host vars, line)
    let mut hosts: BTreeMap<String, (Vec<&str>, Vars, usize)> = BTreeMap::new();
    for (g, grp) in &inv.groups {
        for (pattern, vars, line) in &grp.hosts {
            let names = expand_range(pattern).map_err(|e| ParseError::new(file, Some(*line), e))?;
            for h in names {
                let entry = hosts
                    .entry(h)
                    .or_insert_with(|| (Vec::new(), Vars::new(), *line));
                let mut chain = Vec::new();
                ancestors(g, &parents, &mut chain, 0);
                chain.push(g.as_str());
                for c in chain {
                    if !entry.0.contains(&c) {
                        entry.0.push(c);
                    }
                }
                entry.1.extend(vars.clone());
            }
        }
    }
    let mut out = Vec::new();
    for (host, (groups, host_vars, line)) in hosts {
        let mut vars = inv
            .groups
            .get("all")
            .map(|g| g.vars.clone())
            .unwrap_or_default();
        for g in &groups {
            if *g != "all"
                && let Some(grp) = inv.groups.get(*g)
            {
                vars.extend(grp.vars.clone());
            }
        }
        vars.extend(host_vars);
        let get = |keys: &[&str]| keys.iter().find_map(|k| vars.get(*k).cloned());
        let port = match get(&["ansible_port", "ansible_ssh_port"]) {
            Some((p, l)) => p.parse::<u16>().map_err(|_| {
                ParseError::new(
                    file,
                    Some(if l > 0 { l } else { line }),
                    format!("{host}: ansible_port {p:?} is not a port number"),
                )
            })?,
            None => 22,
        };
        let escalate = match get(&["ansible_become"]) {
            Some((b, l)) => Some(truthy(&b).ok_or_else(|| {
                ParseError::new(
                    file,
                    Some(if l > 0 { l } else { line }),
                    format!("{host}: ansible_become {b:?} is not a boolean"),
                )
            })?),
            None => None,
        };
        let tags: BTreeSet<String> = groups
            .iter()
            .filter(|g| !matches!(**g, "all" | "ungrouped"))
            .map(|g| g.to_string())
            .collect();
        out.push(ImportEntry {
            spec: ServerSpec {
                name: name_from(&host),
                host: get(&["ansible_host", "ansible_ssh_host"])
                    .map(|v| v.0)
                    .unwrap_or_else(|| host.clone()),
                port,
                user: get(&["ansible_user", "ansible_ssh_user"])
                    .map(|v| v.0)
                    .unwrap_or_else(local_user),
                identity: get(&["ansible_ssh_private_key_file", "ansible_private_key_file"])
                    .map(|v| v.0),
                jump: None,
                tags: tags.into_iter().collect(),
                password_env: None,
            },
            escalate,
            origin: format!("{}:{line}", file.display()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            expand_range("web[01:03].x").unwrap(),
            vec!["web01.x", "web02.x", "web03.x"]
        );
        assert_eq!(
            expand_range("db-[a:c]").unwrap(),
            vec!["db-a", "db-b", "db-c"]
        );
        assert_eq!(expand_range("n[1:5:2]").unwrap(), vec!["n1", "n3", "n5"]);
        assert_eq!(expand_range("r[1:2]c[a:b]").unwrap().len(), 4);
        assert!(expand_range("w[3:1]").is_err());
        assert!(expand_range("w[1:").is_err());
    }

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"h a=1 b="x y""#).unwrap(),
            vec!["h", "a=1", "b=x y"]
        );
        assert!(split_words("h a=\"x").is_err());
    }
}
