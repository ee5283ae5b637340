//! From groups, hosts and variables (read from INI, YAML or `ansible-inventory --list` JSON) to
//! servers, with Ansible's variable precedence: group variables by group depth (`all` 0, its
//! children 1, theirs 2, ...), then `ansible_group_priority`, then group name (later wins),
//! and host variables over all of them. Connection variables prefer the `ansible_ssh_*`
//! spelling when both are set, as Ansible's play context does.

use super::super::{ImportEntry, ParseError, local_user, name_from};
use ptui_types::server::ServerSpec;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// name -> (value, line; 0 when unknown).
pub type Vars = BTreeMap<String, (String, usize)>;

#[derive(Debug, Default)]
pub struct Group {
    /// (host name, its own vars from this line, line)
    pub hosts: Vec<(String, Vars, usize)>,
    pub vars: Vars,
    pub children: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Inventory {
    pub groups: BTreeMap<String, Group>,
}

fn truthy(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" => Some(true),
        "false" | "no" | "off" | "0" | "n" => Some(false),
        _ => None,
    }
}

/// Each group's depth: the longest chain of `children` from `all` (groups nobody lists are
/// children of `all`).
fn depths(inv: &Inventory) -> BTreeMap<&str, usize> {
    let mut parents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (g, grp) in &inv.groups {
        for c in &grp.children {
            parents.entry(c.as_str()).or_default().push(g.as_str());
        }
    }
    fn depth<'a>(
        g: &'a str,
        parents: &BTreeMap<&'a str, Vec<&'a str>>,
        memo: &mut BTreeMap<&'a str, usize>,
        guard: usize,
    ) -> usize {
        if g == "all" || guard > 64 {
            return 0;
        }
        if let Some(d) = memo.get(g) {
            return *d;
        }
        let d = match parents.get(g) {
            None => 1,
            Some(ps) => {
                ps.iter()
                    .map(|p| depth(p, parents, memo, guard + 1))
                    .max()
                    .unwrap_or(0)
                    + 1
            }
        };
        memo.insert(g, d);
        d
    }
    let mut memo = BTreeMap::new();
    for g in inv.groups.keys() {
        depth(g, &parents, &mut memo, 0);
    }
    memo.insert("all", 0);
    memo
}

/// A group and every group above it, through `children`.
fn with_ancestors<'a>(g: &'a str, inv: &'a Inventory, out: &mut BTreeSet<&'a str>) {
    let mut todo = vec![g];
    while let Some(cur) = todo.pop() {
        if out.insert(cur) {
            for (p, grp) in &inv.groups {
                if grp.children.iter().any(|c| c == cur) {
                    todo.push(p.as_str());
                }
            }
        }
    }
}

/// The servers of an inventory. `origin(host, line)` names where each came from.
pub fn resolve(
    inv: &Inventory,
    file: &Path,
    origin: &dyn Fn(&str, usize) -> String,
) -> Result<Vec<ImportEntry>, ParseError> {
    let depth = depths(inv);
    let priority = |g: &str| -> i64 {
        inv.groups
            .get(g)
            .and_then(|grp| grp.vars.get("ansible_group_priority"))
            .and_then(|(v, _)| v.parse().ok())
            .unwrap_or(1)
    };
    // host -> (groups, host vars in the order seen, first line)
    let mut hosts: BTreeMap<&str, (BTreeSet<&str>, Vars, usize)> = BTreeMap::new();
    for (g, grp) in &inv.groups {
        for (h, vars, line) in &grp.hosts {
            let entry = hosts
                .entry(h.as_str())
                .or_insert_with(|| (BTreeSet::new(), Vars::new(), *line));
            with_ancestors(g, inv, &mut entry.0);
            entry.1.extend(vars.clone());
        }
    }
    let mut out = Vec::new();
    for (host, (mut groups, host_vars, line)) in hosts {
        groups.insert("all");
        let mut order: Vec<&str> = groups.iter().copied().collect();
        order.sort_by_key(|g| (depth.get(g).copied().unwrap_or(1), priority(g), *g));
        let mut vars = Vars::new();
        for g in &order {
            if let Some(grp) = inv.groups.get(*g) {
                vars.extend(grp.vars.clone());
            }
        }
        vars.extend(host_vars);
        let at = |l: usize| Some(if l > 0 { l } else { line });
        let get = |keys: &[&str]| keys.iter().find_map(|k| vars.get(*k).cloned());
        let port = match get(&["ansible_ssh_port", "ansible_port"]) {
            Some((p, l)) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                ParseError::new(
                    file,
                    at(l),
                    format!("{host}: ansible_port {p:?} is not a port number (1-65535)"),
                )
            })?,
            None => 22,
        };
        let escalate = match get(&["ansible_become"]) {
            Some((b, l)) => Some(truthy(&b).ok_or_else(|| {
                ParseError::new(
                    file,
                    at(l),
                    format!("{host}: ansible_become {b:?} is not a boolean (true or false)"),
                )
            })?),
            None => None,
        };
        let tags: Vec<String> = groups
            .iter()
            .filter(|g| !matches!(**g, "all" | "ungrouped"))
            .map(|g| g.to_string())
            .collect();
        out.push(ImportEntry {
            spec: ServerSpec {
                name: name_from(host),
                host: get(&["ansible_ssh_host", "ansible_host"])
                    .map(|v| v.0)
                    .unwrap_or_else(|| host.to_string()),
                port,
                user: get(&["ansible_ssh_user", "ansible_user"])
                    .map(|v| v.0)
                    .unwrap_or_else(local_user),
                identity: get(&["ansible_ssh_private_key_file", "ansible_private_key_file"])
                    .map(|v| v.0),
                jump: None,
                tags,
                password_env: None,
                // The site whose bastions reach the host (docs/MULTI-BASTION.md).
                site: get(&["provision_tui_site"]).map(|v| v.0),
            },
            escalate,
            origin: origin(host, line),
        });
    }
    Ok(out)
}
