//! `install|upgrade|uninstall --plan` on a tag that matches servers in every state (real sshd
//! hosts): the listed and skipped servers and reasons, no-op vs changed inputs, secrets
//! masked; the database is byte-for-byte the same (`sqlite3 .dump`) and nothing ran.

mod common;

use common::{Sshd, TestEnv};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const TOKEN: &str = "plan-token-93ab71";

fn dump(env: &TestEnv) -> String {
    let out = Command::new("sqlite3")
        .arg(env.db())
        .arg(".dump")
        .output()
        .expect("sqlite3 (scripts/test installs it)");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let out = env
        .cmd()
        .args(args)
        .env("PTUI_TOKEN", TOKEN)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn add(env: &TestEnv, name: &str, sshd: &Sshd, trust: bool) {
    let key = sshd.client_key.display().to_string();
    env.register(
        name,
        sshd,
        &sshd.user,
        &["--identity", &key, "--tag", "web"],
    );
    if trust {
        env.ok(&["server", "trust", name, "--yes"]);
    }
}

#[test]
fn a_plan_lists_and_skips_the_right_servers_and_changes_nothing() {
    let env = TestEnv::new();
    let hosts: Vec<Sshd> = (0..6).map(|_| Sshd::start()).collect();
    for (name, h) in ["same", "other", "fresh", "held", "leased"]
        .iter()
        .zip(&hosts)
    {
        add(&env, name, h, true);
    }
    add(&env, "unknown-key", &hosts[5], false);
    let token = ["--set-env", "token=PTUI_TOKEN"];
    let install = |server: &str, message: &str| {
        let mut a = vec!["install", "echo-ok", "--on", server, "--set", message];
        a.extend_from_slice(&token);
        let (code, _, err) = run(&env, &a);
        assert_eq!(code, 0, "{err}");
    };
    install("same", "message=hello");
    install("other", "message=hi");
    env.ok(&["server", "set-status", "held", "maintenance"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let out = Command::new("sqlite3")
        .arg(env.db())
        .arg(format!(
            "INSERT INTO server_leases(server_id, job_id, holder, acquired_at, heartbeat_at)
             SELECT id, NULL, 'other-process', {now}, {now} + 3600000 FROM servers WHERE name='leased'"
        ))
        .status()
        .unwrap();
    assert!(out.success());

    let marker = format!("/tmp/ptui-plan-{}", hosts[2].port);
    let _ = std::fs::remove_file(&marker);
    let before = dump(&env);
    let out_file = format!("out_file={marker}");
    let mut args = vec![
        "install",
        "echo-ok",
        "--tag",
        "web",
        "--plan",
        "--json",
        "--batch",
        "2",
        "--set",
        "message=hello",
        "--set",
        &out_file,
    ];
    args.extend_from_slice(&token);
    let (code, stdout, stderr) = run(&env, &args);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "the secret is masked"
    );
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["app"], "echo-ok");
    assert_eq!(plan["script"], "install.sh");
    assert_eq!(plan["script_sha256"].as_str().unwrap().len(), 64);
    let by = |name: &str| -> Value {
        plan["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by("same")["change"], "changed", "out_file is new: {plan:#}");
    assert_eq!(by("other")["change"], "changed");
    let changes = by("other")["changes"].to_string();
    assert!(
        changes.contains(r#"{"from":"hi","input":"message","to":"hello"}"#),
        "{changes}"
    );
    assert_eq!(by("fresh")["change"], "new");
    assert_eq!(by("fresh")["inputs"]["token"], "***");
    let skipped: Vec<(String, String)> = plan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut skipped_sorted = skipped.clone();
    skipped_sorted.sort();
    assert_eq!(
        skipped_sorted,
        vec![
            ("held".to_string(), "status".to_string()),
            ("leased".to_string(), "lease".to_string()),
            ("unknown-key".to_string(), "host_key".to_string()),
        ],
        "{plan:#}"
    );
    let reasons = plan["skipped"].to_string();
    assert!(
        reasons.contains("maintenance")
            && reasons.contains("other-process")
            && reasons.contains("server trust unknown-key"),
        "{reasons}"
    );
    assert_eq!(
        plan["batches"].as_array().unwrap().len(),
        2,
        "3 servers in batches of 2"
    );
    assert_eq!(plan["servers"].as_array().unwrap().len(), 3);

    // A no-op: the same inputs as recorded, the secret compared by its sealed value.
    let mut args = vec![
        "install",
        "echo-ok",
        "--on",
        "same",
        "--plan",
        "--json",
        "--set",
        "message=hello",
    ];
    args.extend_from_slice(&token);
    let (_, stdout, _) = run(&env, &args);
    let p: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(p["servers"][0]["change"], "no-op", "{p:#}");
    let (_, stdout, _) = run(
        &env,
        &[
            "install",
            "echo-ok",
            "--on",
            "same",
            "--plan",
            "--json",
            "--set",
            "message=hello",
            "--set",
            "token=another-token",
        ],
    );
    let p: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        p["servers"][0]["change"], "changed",
        "a new secret is a change: {p:#}"
    );
    assert_eq!(p["servers"][0]["changes"][0]["to"], "***");

    // Text form, and uninstall.
    let (code, text, err) = run(&env, &["uninstall", "echo-ok", "--tag", "web", "--plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.starts_with("plan: uninstall echo-ok v1.0 on 3 server(s)"),
        "{text}"
    );
    assert!(text.contains("remove") && text.contains("absent"), "{text}");
    assert!(text.contains("skipped held (status)"), "{text}");
    assert!(err.contains("nothing was changed"), "{err}");

    assert_eq!(dump(&env), before, "the database did not change");
    assert!(!Path::new(&marker).exists(), "nothing ran on the servers");
}
