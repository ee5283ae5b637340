//! Two provision-tui processes share one database safely (WAL + BEGIN IMMEDIATE).

mod common;

use common::TestEnv;
use std::process::Stdio;

#[test]
fn two_processes_write_the_same_database() {
    let env = TestEnv::new();
    env.ok(&["server", "list"]);
    // Each process registers its own servers and then changes their statuses, interleaved.
    let script = |prefix: &str| {
        format!(
            "for i in $(seq 1 25); do \"$BIN\" server add {prefix}$i --host 10.0.0.$i >/dev/null || exit 1; \
             \"$BIN\" server set-status {prefix}$i maintenance >/dev/null || exit 1; done"
        )
    };
    let spawn = |prefix: &str| {
        let c = env.cmd();
        let bin = c.get_program().to_owned();
        let mut sh = std::process::Command::new("bash");
        sh.arg("-c")
            .arg(script(prefix))
            .env("BIN", bin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        sh.spawn().expect("spawn")
    };
    let a = spawn("a");
    let b = spawn("b");
    let (oa, ob) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    assert!(
        oa.status.success(),
        "{}",
        String::from_utf8_lossy(&oa.stderr)
    );
    assert!(
        ob.status.success(),
        "{}",
        String::from_utf8_lossy(&ob.stderr)
    );
    let servers: serde_json::Value =
        serde_json::from_str(&env.ok(&["server", "list", "--json"])).expect("json");
    let servers = servers.as_array().expect("array");
    assert_eq!(servers.len(), 50, "every write of both processes landed");
    assert!(servers.iter().all(|s| s["status"] == "maintenance"));
    let audit: serde_json::Value =
        serde_json::from_str(&env.ok(&["audit", "--json", "--limit", "1000"])).expect("json");
    assert_eq!(
        audit.as_array().expect("array").len(),
        100,
        "two audit rows per server"
    );
}
