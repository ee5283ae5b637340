//! Inventory imports through the binary, against real files in tests/fixtures/inventory.

mod common;

use common::{TestEnv, repo_root};
use serde_json::Value;
use std::collections::BTreeMap;

fn inv(p: &str) -> String {
    repo_root()
        .join("tests/fixtures/inventory")
        .join(p)
        .display()
        .to_string()
}

fn servers(env: &TestEnv) -> BTreeMap<String, Value> {
    let v: Value = serde_json::from_str(&env.ok(&["server", "list", "--json"])).expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s.clone(),
            )
        })
        .collect()
}

fn report(out: &str) -> BTreeMap<String, String> {
    let v: Value = serde_json::from_str(out).expect("report json");
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn ssh_config_with_include_and_proxyjump_chains() {
    let env = TestEnv::new();
    let out = env.ok(&["import", "ssh-config", &inv("home/.ssh/config"), "--json"]);
    let rep = report(&out);
    let s = servers(&env);
    // Include conf.d/*.conf was followed.
    assert_eq!(s["db1"]["host"], "10.0.1.1");
    assert_eq!(s["db1"]["port"], 2201);
    assert_eq!(s["db1"]["user"], "postgres");
    assert!(
        s["db1"]["identity"]
            .as_str()
            .unwrap()
            .ends_with("home/.ssh/id_db"),
        "{}",
        s["db1"]
    );
    // HostName %h, multiple aliases on one Host line.
    assert_eq!(s["web2"]["host"], "web2.example.com");
    assert_eq!(s["web1"]["user"], "www");
    // One hop.
    assert_eq!(s["bastion"]["port"], 2222);
    assert_eq!(s["inner"]["jump"], "bastion");
    assert!(
        s["bastion"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "jump-host")
    );
    // Two hops: deep -> via admin@core:2200 -> via edge.
    let core = s["deep"]["jump"]
        .as_str()
        .expect("deep has a jump")
        .to_string();
    assert_eq!(s[&core]["host"], "core.example.net");
    assert_eq!(s[&core]["port"], 2200);
    assert_eq!(s[&core]["user"], "admin");
    assert_eq!(s[&core]["jump"], "edge");
    assert_eq!(s["edge"]["host"], "198.51.100.1");
    // Patterns are reported, not imported.
    assert!(rep["*.internal"].starts_with("skipped"), "{rep:?}");
    assert!(!s.contains_key("*.internal") && !s.contains_key("*"));
    assert_eq!(rep["db1"], "added");

    // Idempotent: the second run changes nothing.
    let again = report(&env.ok(&["import", "ssh-config", &inv("home/.ssh/config"), "--json"]));
    assert!(
        again
            .values()
            .filter(|o| *o != "skipped")
            .all(|o| o == "unchanged"),
        "{again:?}"
    );
    let audit = env.ok(&["audit", "--limit", "5"]);
    assert!(audit.contains("inventory.import"), "{audit}");
}

#[test]
fn malformed_ssh_config_names_file_and_line() {
    let env = TestEnv::new();
    let out = env.run(&["import", "ssh-config", &inv("bad_ssh_config")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad_ssh_config:6"), "{err}");
}

#[test]
fn ansible_ini_groups_ranges_and_vars() {
    let env = TestEnv::new();
    env.ok(&["import", "ansible", &inv("ansible.ini")]);
    let s = servers(&env);
    for n in [
        "web01.example.com",
        "web02.example.com",
        "web03.example.com",
        "db-a",
        "db-b",
        "db-c",
        "solo.example.com",
        "web-extra",
    ] {
        assert!(s.contains_key(n), "missing {n}: {:?}", s.keys());
    }
    assert_eq!(s.len(), 8);
    let tags = |n: &str| -> Vec<String> {
        s[n]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    // Nested groups: prod's children give their hosts the prod tag.
    assert_eq!(tags("web02.example.com"), vec!["prod", "web"]);
    assert_eq!(tags("db-b"), vec!["db", "prod"]);
    assert!(tags("solo.example.com").is_empty());
    // Host vars beat group vars, which beat parent group vars.
    assert_eq!(s["web-extra"]["host"], "10.0.0.99");
    assert_eq!(s["web-extra"]["port"], 2222);
    assert_eq!(s["web-extra"]["user"], "deploy");
    assert_eq!(s["web-extra"]["identity"], "/keys/web");
    assert_eq!(s["web01.example.com"]["user"], "produser");
    assert_eq!(s["db-a"]["user"], "postgres");
    assert_eq!(s["db-a"]["port"], 5522);
    assert_eq!(s["solo.example.com"]["user"], "admin");
    let show: Value = serde_json::from_str(&env.ok(&["server", "show", "db-c", "--json"])).unwrap();
    assert_eq!(show["sudo"]["escalate"], true, "{show}");
    let show: Value =
        serde_json::from_str(&env.ok(&["server", "show", "web03.example.com", "--json"])).unwrap();
    assert_eq!(show["sudo"]["escalate"], false, "{show}");

    let again = report(&env.ok(&["import", "ansible", &inv("ansible.ini"), "--json"]));
    assert!(again.values().all(|o| o == "unchanged"), "{again:?}");

    let bad = env.run(&["import", "ansible", &inv("bad.ini")]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("bad.ini:4"), "{err}");
}

#[test]
fn ansible_yaml_nested_children() {
    let env = TestEnv::new();
    env.ok(&["import", "ansible", &inv("ansible.yml")]);
    let s = servers(&env);
    assert_eq!(s.len(), 4, "{:?}", s.keys());
    assert_eq!(s["lonely"]["host"], "192.0.2.50");
    assert_eq!(s["lonely"]["user"], "base");
    assert_eq!(s["par2.example.org"]["port"], 2022);
    let tags: Vec<&str> = s["ber1.example.org"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, vec!["berlin", "europe", "monitoring"]);
    assert_eq!(s["ber1.example.org"]["user"], "hans");
    let tags: Vec<&str> = s["par1.example.org"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, vec!["europe", "paris"]);

    let bad = env.run(&["import", "ansible", &inv("bad.yml")]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("bad.yml:5"), "{err}");
}

#[test]
fn dynamic_inventory_adds_updates_never_deletes() {
    let env = TestEnv::new();
    let cmd = format!("sh {}", inv("dynamic.sh"));
    let rep = report(&env.ok(&["import", "command", &cmd, "--json"]));
    assert_eq!(rep["cloud-1"], "added");
    assert!(rep["bad name!"].starts_with("skipped"), "{rep:?}");
    let s = servers(&env);
    assert_eq!(s["cloud-1"]["status"], "discovered");
    assert_eq!(s["cloud-2"]["user"], "ubuntu");

    let out = env
        .cmd()
        .args(["import", "command", &cmd, "--json"])
        .env("DYN_EXTRA", "1")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rep = report(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(rep["cloud-1"], "unchanged");
    assert!(rep["cloud-2"].starts_with("changed"), "{rep:?}");
    assert_eq!(rep["cloud-3"], "added");
    let s = servers(&env);
    assert_eq!(s["cloud-2"]["port"], 2200);
    assert_eq!(s["cloud-3"]["jump"], "cloud-1");

    // A server the command no longer lists stays.
    let out = env.run(&["import", "command", "echo '{\"servers\": []}'"]);
    assert!(out.status.success());
    assert_eq!(servers(&env).len(), 3);

    let bad = env.run(&[
        "import",
        "command",
        "printf '{\"servers\": [\\n{\"name\": 1}]}'",
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains(":2"), "{err}");
    let failing = env.run(&["import", "command", "echo oops >&2; exit 3"]);
    assert!(String::from_utf8_lossy(&failing.stderr).contains("oops"));
}

#[test]
fn ansible_ini_host_port_is_the_port_not_part_of_the_name() {
    let env = TestEnv::new();
    env.ok(&["import", "ansible", &inv("ansible_guide.ini")]);
    let s = servers(&env);
    assert!(
        !s.contains_key("badwolf.example.com-5309"),
        "{:?}",
        s.keys()
    );
    assert_eq!(s["badwolf.example.com"]["port"], 5309);
    assert_eq!(s["badwolf.example.com"]["host"], "192.0.2.10");
    // [v6]:port, and a port on the line beaten by ansible_port on the same line.
    assert_eq!(s["2001-db8--7"]["host"], "2001:db8::7");
    assert_eq!(s["2001-db8--7"]["port"], 2201);
    assert_eq!(s["one.example.com"]["port"], 2300);
    // Ranges with a step.
    assert!(s.contains_key("www09.example.com") && !s.contains_key("www02.example.com"));
}

#[test]
fn ansible_list_json_through_import_command() {
    let env = TestEnv::new();
    let json = r#"{"_meta": {"hostvars": {"a1": {"ansible_host": "10.0.0.1", "ansible_port": 2201},
        "b1": {"ansible_user": "bee"}}},
      "all": {"children": ["ungrouped", "aws_ec2"], "vars": {"ansible_user": "ec2-user"}},
      "aws_ec2": {"hosts": ["a1"], "children": ["tag_role_db"]},
      "tag_role_db": {"hosts": ["b1"], "vars": {"ansible_become": true}},
      "ungrouped": {}}"#;
    let file = env.path().join("list.json");
    std::fs::write(&file, json).unwrap();
    let rep = report(&env.ok(&[
        "import",
        "command",
        &format!("cat {}", file.display()),
        "--json",
    ]));
    assert_eq!(rep["a1"], "added");
    let s = servers(&env);
    assert_eq!(s["a1"]["host"], "10.0.0.1");
    assert_eq!(s["a1"]["port"], 2201);
    assert_eq!(s["a1"]["user"], "ec2-user");
    assert_eq!(s["b1"]["user"], "bee");
    assert_eq!(
        s["b1"]["tags"],
        serde_json::json!(["aws_ec2", "tag_role_db"])
    );
    let show: Value = serde_json::from_str(&env.ok(&["server", "show", "b1", "--json"])).unwrap();
    assert_eq!(show["sudo"]["escalate"], true, "{show}");

    // A group whose hosts are not a list is named.
    let bad = env.run(&["import", "command", r#"echo '{"web": {"hosts": "a"}}'"#]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("web.hosts: expected a list of names"), "{err}");
}
