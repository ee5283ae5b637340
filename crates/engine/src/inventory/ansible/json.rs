//! Ansible's dynamic-inventory JSON, as `ansible-inventory -i SRC --list` (and every inventory
//! script) prints it: top-level groups with `hosts`, `children` and `vars` (or a bare list of
//! hosts), and `_meta.hostvars`. Resolved with the same precedence as `import ansible`.

use super::super::{ImportEntry, ParseError};
use super::resolve::{Group, Inventory, Vars, resolve};
use serde_json::Value;
use std::path::Path;

/// Whether a JSON document has Ansible's shape: an object without our own `servers` key,
/// whose values are group objects or host lists (or `_meta`).
pub fn looks_like_ansible(doc: &Value) -> bool {
    let Value::Object(top) = doc else {
        return false;
    };
    !top.contains_key("servers")
        && top.iter().all(|(k, v)| {
            k == "_meta"
                || v.is_array()
                || v.as_object().is_some_and(|g| {
                    g.keys()
                        .all(|k| matches!(k.as_str(), "hosts" | "children" | "vars"))
                })
        })
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None, // lists and objects are not connection variables
    }
}

fn vars_of(v: Option<&Value>, what: &str, label: &Path) -> Result<Vars, ParseError> {
    match v {
        None | Some(Value::Null) => Ok(Vars::new()),
        Some(Value::Object(m)) => Ok(m
            .iter()
            .filter_map(|(k, v)| text_of(v).map(|t| (k.clone(), (t, 0))))
            .collect()),
        Some(_) => Err(ParseError::new(
            label,
            None,
            format!("{what}: expected an object of variables"),
        )),
    }
}

fn names(v: Option<&Value>, what: &str, label: &Path) -> Result<Vec<String>, ParseError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|h| {
                h.as_str().map(str::to_string).ok_or_else(|| {
                    ParseError::new(label, None, format!("{what}: expected names, got {h}"))
                })
            })
            .collect(),
        Some(other) => Err(ParseError::new(
            label,
            None,
            format!("{what}: expected a list of names, got {other}"),
        )),
    }
}

/// The servers of an Ansible JSON inventory (`doc` passed `looks_like_ansible`).
pub fn entries(doc: &Value, label: &Path) -> Result<Vec<ImportEntry>, ParseError> {
    let mut inv = Inventory::default();
    let Value::Object(top) = doc else {
        return Ok(Vec::new());
    };
    let hostvars = top
        .get("_meta")
        .and_then(|m| m.get("hostvars"))
        .and_then(Value::as_object);
    for (g, v) in top.iter().filter(|(k, _)| *k != "_meta") {
        let (hosts, children, vars) = match v {
            Value::Array(_) => (names(Some(v), g, label)?, Vec::new(), Vars::new()),
            _ => (
                names(v.get("hosts"), &format!("{g}.hosts"), label)?,
                names(v.get("children"), &format!("{g}.children"), label)?,
                vars_of(v.get("vars"), &format!("{g}.vars"), label)?,
            ),
        };
        let mut group = Group {
            vars,
            children,
            ..Group::default()
        };
        for h in hosts {
            let own = vars_of(
                hostvars.and_then(|hv| hv.get(&h)),
                &format!("_meta.hostvars.{h}"),
                label,
            )?;
            group.hosts.push((h, own, 0));
        }
        inv.groups.insert(g.clone(), group);
    }
    resolve(&inv, label, &|host, _| {
        format!("{} host {host}", label.display())
    })
}
