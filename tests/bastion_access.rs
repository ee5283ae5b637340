//! Read-only mode and roles, through the real binary against a real sshd: every refusal is
//! checked against the database itself (`sqlite3 .dump` before and after), and role refusals
//! against their audit rows. Roles are read for the real Unix user running the tests, from a
//! system config given by PROVISION_TUI_SYSTEM_CONFIG (honoured while /etc/provision-tui/
//! config.yml does not exist, as on a test machine).

mod common;

use common::{Sshd, TestEnv};
use std::process::{Command, Output};

fn dump(env: &TestEnv) -> String {
    let out = Command::new("sqlite3")
        .arg(env.db())
        .arg(".dump")
        .output()
        .expect("sqlite3 (install the sqlite3 package)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A fleet with something to change: a trusted server with one finished job.
fn fleet(env: &TestEnv, sshd: &Sshd, other: &Sshd) -> i64 {
    env.add_server("web1", sshd);
    // Registered, its host key not trusted yet.
    env.register("web3", other, &other.user, &[]);
    env.ok(&[
        "install",
        "echo-ok",
        "--on",
        "web1",
        "--set",
        "token=abcdefgh",
    ]);
    env.jobs_json()[0]["id"].as_i64().expect("job id")
}

/// Every command that changes something, for `server web1` and job `job`.
fn mutating(job: i64, dir: &std::path::Path) -> Vec<Vec<String>> {
    let inv = dir.join("inventory.ini");
    std::fs::write(&inv, "[web]\nweb9 ansible_host=127.0.0.1\n").expect("inventory");
    let ssh_cfg = dir.join("ssh_config");
    std::fs::write(&ssh_cfg, "Host web8\n  HostName 127.0.0.1\n").expect("ssh config");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        s(&[
            "server",
            "add",
            "web2",
            "--host",
            "127.0.0.2",
            "--user",
            "root",
        ]),
        s(&["server", "rm", "web1"]),
        s(&["server", "edit", "web1", "--port", "2200"]),
        s(&["server", "set-status", "web1", "maintenance"]),
        s(&["server", "sudo", "web1", "--never"]),
        s(&["server", "trust", "web3", "--yes"]),
        s(&[
            "install",
            "echo-ok",
            "--on",
            "web1",
            "--set",
            "token=abcdefgh",
        ]),
        s(&["upgrade", "echo-ok", "--on", "web1"]),
        s(&["uninstall", "echo-ok", "--on", "web1"]),
        s(&["cancel", &job.to_string()]),
        s(&["check", "web1"]),
        s(&["watch"]),
        s(&["maintenance", "on", "web1"]),
        s(&["maintenance", "off", "web1"]),
        s(&["policy", "web1", "--recovery", "auto"]),
        s(&["import", "ansible", inv.to_str().expect("utf-8")]),
        s(&["import", "ssh-config", ssh_cfg.to_str().expect("utf-8")]),
        s(&["incidents", "ack", "1"]),
        s(&["incidents", "note", "1", "looked at it"]),
        s(&["secrets", "rotate-key"]),
    ]
}

#[test]
fn readonly_refuses_every_change_and_writes_nothing() {
    let (sshd, other) = (Sshd::start(), Sshd::start());
    let env = TestEnv::new();
    let job = fleet(&env, &sshd, &other);
    let known_hosts = env.db().with_file_name("known_hosts");
    let before = dump(&env);
    let keys_before = std::fs::read_to_string(&known_hosts).expect("known_hosts");
    for args in mutating(job, env.path()) {
        let mut argv: Vec<&str> = vec!["--readonly"];
        argv.extend(args.iter().map(String::as_str));
        let out = env.run(&argv);
        assert!(!out.status.success(), "{argv:?} succeeded: {}", text(&out));
        assert!(
            text(&out).contains("read-only:"),
            "{argv:?} did not say read-only: {}",
            text(&out)
        );
        assert_eq!(dump(&env), before, "{argv:?} wrote to the database");
    }
    assert_eq!(
        std::fs::read_to_string(&known_hosts).expect("kh"),
        keys_before
    );
    // The env var and the config key do the same.
    let out = env
        .cmd()
        .env("PROVISION_TUI_READONLY", "1")
        .args(["server", "rm", "web1"])
        .output()
        .expect("run");
    assert!(!out.status.success() && text(&out).contains("read-only:"));
    let cfg = env.path().join("config/provision-tui");
    std::fs::create_dir_all(&cfg).expect("config dir");
    std::fs::write(cfg.join("config.yml"), "readonly: true\n").expect("config");
    let out = env.run(&["server", "rm", "web1"]);
    assert!(
        !out.status.success() && text(&out).contains("readonly: true in"),
        "{}",
        text(&out)
    );
    assert_eq!(dump(&env), before);
    // Looking still works.
    std::fs::remove_file(cfg.join("config.yml")).expect("rm config");
    // A missing database is not created.
    let missing = env.path().join("nowhere/state.db");
    let out = env
        .cmd()
        .env("PROVISION_TUI_DB", &missing)
        .args(["--readonly", "server", "list"])
        .output()
        .expect("run");
    assert!(
        !out.status.success() && text(&out).contains("no database at"),
        "{}",
        text(&out)
    );
    assert!(!missing.exists());
    let list = env.ok(&["--readonly", "server", "list"]);
    assert!(list.contains("web1"), "{list}");
    let logs = env.ok(&["--readonly", "logs", &job.to_string()]);
    assert!(logs.contains("hello"), "{logs}");
    assert_eq!(dump(&env), before);
}

fn user_version(env: &TestEnv) -> String {
    let out = Command::new("sqlite3")
        .arg(env.db())
        .arg("PRAGMA user_version")
        .output()
        .expect("sqlite3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn readonly_neither_migrates_an_older_database_nor_pins_a_catalog() {
    let env = TestEnv::new();
    env.ok(&["server", "add", "web1", "--host", "10.0.0.5"]);
    let latest = user_version(&env);
    // An older binary's database (the version says so; its tables are today's).
    let older = (latest.parse::<i64>().expect("version") - 1).to_string();
    let set = Command::new("sqlite3")
        .arg(env.db())
        .arg(format!("PRAGMA user_version = {older}"))
        .output()
        .expect("sqlite3");
    assert!(set.status.success());
    let before = dump(&env);
    let bytes = std::fs::read(env.db()).expect("db");
    let out = env.run(&["--readonly", "server", "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("schema version {older}"))
            && said.contains(&format!("needs {latest}"))
            && said.contains("without --readonly"),
        "{said}"
    );
    assert_eq!(user_version(&env), older, "read-only migrated the database");
    assert_eq!(dump(&env), before);
    assert_eq!(
        std::fs::read(env.db()).expect("db"),
        bytes,
        "the file changed"
    );

    // `catalog pin` writes no database but changes the catalog: refused too.
    let dir = env.path().join("catalog");
    let app = dir.join("echo-ok");
    std::fs::create_dir_all(&app).expect("dir");
    for f in std::fs::read_dir(common::fixtures().join("echo-ok")).expect("fixture") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, app.join(f.file_name().expect("name"))).expect("copy");
    }
    let _ = std::fs::remove_file(dir.join("catalog.lock"));
    let d = dir.to_str().expect("utf-8");
    let out = env.run(&["--readonly", "catalog", "pin", d]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("read-only: pinning installers is refused"),
        "{}",
        text(&out)
    );
    assert!(!dir.join("catalog.lock").exists(), "pinned anyway");
    env.ok(&["catalog", "pin", d]);
    assert!(dir.join("catalog.lock").exists(), "pin without --readonly");
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The same environment as `env` under a system config giving this Unix user `role`.
fn as_role(env: &TestEnv, role: &str, args: &[&str]) -> Output {
    let sys = env.path().join(format!("system-{role}.yml"));
    std::fs::write(
        &sys,
        format!("# other sections are left to others\nroles:\n  users:\n    {}: {role}\n  default: viewer\n", user()),
    )
    .expect("system config");
    env.cmd()
        .env("PROVISION_TUI_SYSTEM_CONFIG", &sys)
        .args(args)
        .output()
        .expect("run")
}

fn denials(env: &TestEnv) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["audit", "--json", "--limit", "1000"])).expect("audit json");
    v.as_array()
        .expect("array")
        .iter()
        .filter(|e| e["action"] == "access.denied")
        .cloned()
        .collect()
}

#[test]
fn roles_viewer_install_operator_remove_refused_admin_passes_each_audited() {
    if std::path::Path::new("/etc/provision-tui/config.yml").exists() {
        panic!("/etc/provision-tui/config.yml exists: this test needs a machine without one");
    }
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("web1", &sshd);
    let me = user();

    let out = as_role(
        &env,
        "viewer",
        &[
            "install",
            "echo-ok",
            "--on",
            "web1",
            "--set",
            "token=abcdefgh",
        ],
    );
    assert!(!out.status.success(), "viewer install ran: {}", text(&out));
    assert!(
        text(&out).contains("needs the operator role"),
        "{}",
        text(&out)
    );
    assert!(
        env.jobs_json().as_array().expect("jobs").is_empty(),
        "a job was created"
    );
    let d = denials(&env);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["target"], "web1");
    let detail = d[0]["details"].as_str().expect("details");
    assert!(
        detail.contains("running an installer") && detail.contains(&format!("{me} is viewer")),
        "{detail}"
    );

    // An operator installs, but may not remove a server.
    let out = as_role(
        &env,
        "operator",
        &[
            "install",
            "echo-ok",
            "--on",
            "web1",
            "--set",
            "token=abcdefgh",
        ],
    );
    assert!(
        out.status.success(),
        "operator install refused: {}",
        text(&out)
    );
    let out = as_role(&env, "operator", &["server", "rm", "web1"]);
    assert!(
        !out.status.success() && text(&out).contains("needs the admin role"),
        "{}",
        text(&out)
    );
    assert!(env.ok(&["server", "list"]).contains("web1"));
    let d = denials(&env);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(
        d[0]["details"]
            .as_str()
            .expect("d")
            .contains("removing a server"),
        "{d:?}"
    );
    assert!(d[0]["operator"].as_str().is_some_and(|o| !o.is_empty()));

    // An admin removes it; the removal is audited as usual, and no new refusal.
    let out = as_role(&env, "admin", &["server", "rm", "web1"]);
    assert!(out.status.success(), "admin rm refused: {}", text(&out));
    assert!(!env.ok(&["server", "list"]).contains("web1"));
    let audit = env.ok(&["audit", "--json"]);
    assert!(audit.contains("\"server.rm\""), "{audit}");
    assert_eq!(denials(&env).len(), 2);
}

#[test]
fn a_group_gives_its_role_and_a_broken_roles_file_refuses_to_start() {
    let env = TestEnv::new();
    let out = Command::new("id").arg("-gn").output().expect("id");
    let group = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let sys = env.path().join("system.yml");
    std::fs::write(&sys, format!("roles:\n  groups:\n    {group}: viewer\n")).expect("write");
    let out = env
        .cmd()
        .env("PROVISION_TUI_SYSTEM_CONFIG", &sys)
        .args([
            "server",
            "add",
            "s1",
            "--host",
            "127.0.0.1",
            "--user",
            "root",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("group {group} in")),
        "{}",
        text(&out)
    );
    std::fs::write(&sys, "roles:\n  users:\n    someone: superuser\n").expect("write");
    let out = env
        .cmd()
        .env("PROVISION_TUI_SYSTEM_CONFIG", &sys)
        .args(["server", "list"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("system.yml:3:"),
        "names file and line: {}",
        text(&out)
    );
}
