//! Inventories imported by provision-tui, compared host by host with what the real tools
//! resolve from the same files: `ansible-inventory -i FILE --list` (ansible-core) and
//! `ssh -G HOST` (OpenSSH). Each test prints how many hosts matched per fixture.
//!
//! `ansible-inventory` is `$PTUI_ANSIBLE_INVENTORY`, else the virtualenv `scripts/test` makes
//! (`/var/tmp/ptui-ansible-venv`), else the one on PATH. Missing, the test FAILS; it is skipped
//! only when `PTUI_ANSIBLE_INVENTORY=skip` says so.

mod common;

use common::{TestEnv, repo_root};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const VENV_TOOL: &str = "/var/tmp/ptui-ansible-venv/bin/ansible-inventory";

fn fixture(p: &str) -> PathBuf {
    repo_root().join("tests/fixtures/inventory").join(p)
}

fn ansible_inventory() -> Option<PathBuf> {
    match std::env::var("PTUI_ANSIBLE_INVENTORY") {
        Ok(v) if v == "skip" => {
            eprintln!("ansible comparison SKIPPED: PTUI_ANSIBLE_INVENTORY=skip");
            return None;
        }
        Ok(v) if !v.is_empty() => {
            let p = PathBuf::from(&v);
            assert!(p.is_file(), "PTUI_ANSIBLE_INVENTORY={v} does not exist");
            return Some(p);
        }
        _ => {}
    }
    if Path::new(VENV_TOOL).is_file() {
        return Some(VENV_TOOL.into());
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v ansible-inventory"])
        .output()
        .expect("sh");
    let found = String::from_utf8_lossy(&on_path.stdout).trim().to_string();
    assert!(
        !found.is_empty(),
        "ansible-inventory not found: run scripts/test (it installs ansible-core into \
         /var/tmp/ptui-ansible-venv), or set PTUI_ANSIBLE_INVENTORY=PATH, or \
         PTUI_ANSIBLE_INVENTORY=skip to skip this comparison on purpose"
    );
    Some(found.into())
}

/// `ansible-inventory -i FILE --list`, failing (not warning) on a file it cannot parse.
fn ansible_list(tool: &Path, file: &Path, home: &Path, extra: &[&str]) -> String {
    let out = Command::new(tool)
        .args(["-i", &file.display().to_string(), "--list"])
        .args(extra)
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "True")
        .env("ANSIBLE_HOME", home)
        .env("ANSIBLE_LOCAL_TEMP", home)
        .output()
        .expect("run ansible-inventory");
    assert!(
        out.status.success(),
        "ansible-inventory failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[derive(Debug, PartialEq)]
struct Resolved {
    host: String,
    port: u64,
    user: String,
    key: Option<String>,
    groups: BTreeSet<String>,
}

fn local_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// provision-tui's server name for an inventory host (`:` of IPv6 becomes `-`).
fn server_name(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_start_matches('-')
        .to_string()
}

/// What Ansible resolved, per server name: the connection variables (the `ansible_ssh_*`
/// spelling first, as Ansible's play context reads them) and every group above the host.
fn from_ansible(list: &Value) -> BTreeMap<String, Resolved> {
    let top = list.as_object().expect("object");
    let hostvars = &list["_meta"]["hostvars"];
    let mut groups_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Direct membership, then propagate up through children until nothing changes.
    for (g, v) in top.iter().filter(|(k, _)| *k != "_meta") {
        for h in v["hosts"].as_array().into_iter().flatten() {
            groups_of
                .entry(h.as_str().expect("host").to_string())
                .or_default()
                .insert(g.clone());
        }
    }
    loop {
        let mut changed = false;
        for (g, v) in top.iter().filter(|(k, _)| *k != "_meta") {
            for c in v["children"].as_array().into_iter().flatten() {
                for gs in groups_of.values_mut() {
                    if gs.contains(c.as_str().expect("child")) && gs.insert(g.clone()) {
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    groups_of
        .into_iter()
        .map(|(h, groups)| {
            let vars = &hostvars[&h];
            let pick = |keys: &[&str]| {
                keys.iter()
                    .map(|k| &vars[*k])
                    .find(|v| !v.is_null())
                    .map(text)
            };
            (
                server_name(&h),
                Resolved {
                    host: pick(&["ansible_ssh_host", "ansible_host"]).unwrap_or(h.clone()),
                    port: pick(&["ansible_ssh_port", "ansible_port"])
                        .map(|p| p.parse().expect("numeric port"))
                        .unwrap_or(22),
                    user: pick(&["ansible_ssh_user", "ansible_user"]).unwrap_or_else(local_user),
                    key: pick(&["ansible_ssh_private_key_file", "ansible_private_key_file"]),
                    groups: groups
                        .into_iter()
                        .filter(|g| g != "all" && g != "ungrouped")
                        .collect(),
                },
            )
        })
        .collect()
}

/// What provision-tui registered, per server name.
fn from_store(env: &TestEnv) -> BTreeMap<String, Resolved> {
    let v: Value = serde_json::from_str(&env.ok(&["server", "list", "--json"])).expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_string(),
                Resolved {
                    host: s["host"].as_str().expect("host").to_string(),
                    port: s["port"].as_u64().expect("port"),
                    user: s["user"].as_str().expect("user").to_string(),
                    key: s["identity"].as_str().map(str::to_string),
                    groups: s["tags"]
                        .as_array()
                        .expect("tags")
                        .iter()
                        .map(|t| t.as_str().expect("tag").to_string())
                        .collect(),
                },
            )
        })
        .collect()
}

/// Every host equal on both sides; returns how many.
fn compare(
    what: &str,
    ours: &BTreeMap<String, Resolved>,
    theirs: &BTreeMap<String, Resolved>,
) -> usize {
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{what}: the same hosts"
    );
    let mut matched = 0;
    for (name, t) in theirs {
        assert_eq!(
            &ours[name], t,
            "{what}: host {name} (left: provision-tui, right: Ansible)"
        );
        matched += 1;
    }
    matched
}

#[test]
fn ansible_inventories_match_ansible_inventory_host_by_host() {
    let Some(tool) = ansible_inventory() else {
        return;
    };
    let mut summary = Vec::new();
    for f in [
        "ansible_guide.ini",
        "ansible_guide.yml",
        "ansible.ini",
        "ansible.yml",
    ] {
        let file = fixture(f);
        let env = TestEnv::new();
        let list_text = ansible_list(&tool, &file, env.path(), &[]);
        let list: Value = serde_json::from_str(&list_text).expect("ansible json");
        let theirs = from_ansible(&list);
        assert!(theirs.len() >= 4, "{f}: a real fixture: {theirs:?}");

        env.ok(&["import", "ansible", &file.display().to_string()]);
        let n = compare(&format!("import ansible {f}"), &from_store(&env), &theirs);

        // The same inventory as Ansible's JSON, through `import command`.
        let json = env.path().join("list.json");
        std::fs::write(&json, &list_text).expect("write json");
        let env2 = TestEnv::new();
        env2.ok(&["import", "command", &format!("cat {}", json.display())]);
        let n2 = compare(
            &format!("import command (ansible-inventory --list of {f})"),
            &from_store(&env2),
            &theirs,
        );
        // `--export` keeps group variables in the groups: our precedence must fold them.
        let export = ansible_list(&tool, &file, env.path(), &["--export"]);
        std::fs::write(&json, &export).expect("write json");
        let env3 = TestEnv::new();
        env3.ok(&["import", "command", &format!("cat {}", json.display())]);
        let n3 = compare(
            &format!("import command (ansible-inventory --list --export of {f})"),
            &from_store(&env3),
            &theirs,
        );
        summary.push(format!(
            "{f}: import ansible {n} of {t} hosts match ansible-inventory; its --list JSON \
             through import command {n2} of {t}, --list --export {n3} of {t}",
            t = theirs.len()
        ));
    }
    println!("{}", summary.join("\n"));
    eprintln!("{}", summary.join("\n"));
}

/// `ssh -G` of one alias: (hostname, port, user, identity files, proxyjump).
fn ssh_g(config: &Path, alias: &str) -> (String, u64, String, Vec<String>, Option<String>) {
    let out = Command::new("ssh")
        .args(["-G", "-F", &config.display().to_string(), alias])
        .output()
        .expect("run ssh -G");
    assert!(
        out.status.success(),
        "ssh -G {alias}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let one = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .map(str::to_string)
    };
    let keys = text
        .lines()
        .filter_map(|l| l.strip_prefix("identityfile "))
        .map(str::to_string)
        .collect();
    (
        one("hostname").expect("hostname"),
        one("port").expect("port").parse().expect("port number"),
        one("user").expect("user"),
        keys,
        one("proxyjump"),
    )
}

/// The ssh_config fixture (with `Include` and ProxyJump chains), every concrete alias compared
/// with `ssh -G`. OpenSSH resolves a relative `Include` and `~` against the real home, so the
/// fixture is copied into a home of its own with the `Include` made absolute, and `~` in our
/// identity paths is compared as written by replacing that home.
#[test]
fn ssh_config_matches_ssh_dash_g_host_by_host() {
    let env = TestEnv::new();
    let home = env.path().join("cfg-home");
    let ssh_dir = home.join(".ssh");
    std::fs::create_dir_all(ssh_dir.join("conf.d")).expect("mkdir");
    let src = fixture("home/.ssh");
    std::fs::copy(src.join("conf.d/db.conf"), ssh_dir.join("conf.d/db.conf")).expect("copy");
    let text = std::fs::read_to_string(src.join("config")).expect("read config");
    let text = text.replace(
        "Include conf.d/*.conf",
        &format!("Include {}/conf.d/*.conf", ssh_dir.display()),
    );
    let config = ssh_dir.join("config");
    std::fs::write(&config, &text).expect("write config");

    env.ok(&["import", "ssh-config", &config.display().to_string()]);
    let v: Value = serde_json::from_str(&env.ok(&["server", "list", "--json"])).expect("json");
    let ours: BTreeMap<String, Value> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|s| (s["name"].as_str().expect("name").to_string(), s.clone()))
        .collect();
    let home_text = home.display().to_string();
    let aliases = ["bastion", "inner", "deep", "edge", "web1", "web2", "db1"];
    let mut matched = 0;
    for alias in aliases {
        let (hostname, port, user, keys, jump) = ssh_g(&config, alias);
        let s = &ours[alias];
        assert_eq!(s["host"], hostname.as_str(), "{alias}: host");
        assert_eq!(s["port"], port, "{alias}: port");
        assert_eq!(s["user"], user.as_str(), "{alias}: user");
        match s["identity"].as_str() {
            Some(k) => assert_eq!(
                k.replacen(&home_text, "~", 1),
                keys[0],
                "{alias}: the first IdentityFile"
            ),
            // Nothing configured: ssh -G lists only its defaults.
            None => assert!(
                keys.iter().all(|k| k.starts_with("~/.ssh/id_")),
                "{alias}: {keys:?}"
            ),
        }
        // Our jump chain, nearest hop last, spelled as ssh's ProxyJump hops.
        let mut chain = Vec::new();
        let mut cur = s["jump"].as_str().map(str::to_string);
        while let Some(j) = cur {
            chain.insert(0, ours[&j].clone());
            cur = ours[&j]["jump"].as_str().map(str::to_string);
        }
        let hops: Vec<&str> = jump
            .as_deref()
            .map(|j| j.split(',').collect())
            .unwrap_or_default();
        assert_eq!(chain.len(), hops.len(), "{alias}: ProxyJump {jump:?}");
        for (hop, srv) in hops.iter().zip(&chain) {
            let (h, p, u, _, _) = if hop.contains('@') || hop.contains(':') {
                // user@host:port: ssh connects to it as written.
                let (u, hp) = hop.split_once('@').unwrap_or(("", hop));
                let (h, p) = hp.split_once(':').unwrap_or((hp, "22"));
                (
                    h.to_string(),
                    p.parse().expect("port"),
                    u.to_string(),
                    vec![],
                    None,
                )
            } else {
                ssh_g(&config, hop)
            };
            assert_eq!(srv["host"], h.as_str(), "{alias}: hop {hop}");
            assert_eq!(srv["port"], p, "{alias}: hop {hop}");
            if !u.is_empty() {
                assert_eq!(srv["user"], u.as_str(), "{alias}: hop {hop}");
            }
        }
        matched += 1;
    }
    let line = format!(
        "home/.ssh/config: import ssh-config {matched} of {} hosts match ssh -G",
        aliases.len()
    );
    println!("{line}");
    eprintln!("{line}");
}
