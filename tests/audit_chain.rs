//! The audit log's HMAC chain through the real binary, tampered with by the real `sqlite3`:
//! `audit verify` names the edited, deleted, inserted and swapped rows; an untouched log
//! verifies; a removed tail shows against a kept head; `audit export` prints JSON lines.

mod common;

use common::TestEnv;
use std::process::Command;

fn sqlite(env: &TestEnv, sql: &str) {
    let out = Command::new("sqlite3")
        .arg(env.db())
        .arg(sql)
        .output()
        .expect("sqlite3 (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An env whose audit log has `n` rows (one `maintenance on` each, no server needed).
fn env_with_rows(n: usize) -> TestEnv {
    let env = TestEnv::new();
    for i in 0..n {
        env.ok(&["maintenance", "on", "--all", "--reason", &format!("r{i}")]);
    }
    env
}

fn verify(env: &TestEnv) -> (i32, String) {
    let out = env.run(&["audit", "verify"]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

#[test]
fn an_untouched_log_verifies_and_each_tampering_is_named() {
    let env = env_with_rows(5);
    let (code, text) = verify(&env);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("intact, 5 rows, head "), "{text}");
    let head = text.rsplit(' ').next().unwrap().to_string();
    assert_eq!(head.len(), 64, "{text}");

    sqlite(
        &env,
        "UPDATE audit_log SET details='nothing to see' WHERE id=3",
    );
    assert_eq!(
        verify(&env),
        (
            1,
            "broken: row #3 was edited: its content does not match its hash".into()
        )
    );
    sqlite(&env, "UPDATE audit_log SET details='r2' WHERE id=3");
    assert_eq!(verify(&env).0, 0, "the original text verifies again");

    sqlite(
        &env,
        "UPDATE audit_log SET id=-1 WHERE id=2; UPDATE audit_log SET id=2 WHERE id=3; UPDATE audit_log SET id=3 WHERE id=-1",
    );
    let (code, text) = verify(&env);
    assert_eq!(code, 1);
    assert!(
        text.contains("row #2 is out of place") && text.contains("swapped"),
        "{text}"
    );
    sqlite(
        &env,
        "UPDATE audit_log SET id=-1 WHERE id=2; UPDATE audit_log SET id=2 WHERE id=3; UPDATE audit_log SET id=3 WHERE id=-1",
    );
    assert_eq!(verify(&env).0, 0);

    sqlite(
        &env,
        "INSERT INTO audit_log(ts, operator, action, target, details) VALUES(1, 'mallory', 'server.rm', 'db', '')",
    );
    assert_eq!(
        verify(&env),
        (
            1,
            "broken: row #6 was inserted: it has no chain hash".into()
        )
    );
    sqlite(&env, "DELETE FROM audit_log WHERE id=6");

    sqlite(&env, "DELETE FROM audit_log WHERE id=3");
    assert_eq!(
        verify(&env),
        (
            1,
            "broken: rows were deleted between row #2 and row #4: the row it was chained to is gone".into()
        )
    );
}

#[test]
fn a_removed_tail_shows_against_a_kept_head_and_export_prints_json_lines() {
    let env = env_with_rows(3);
    let (_, text) = verify(&env);
    let head = text.rsplit(' ').next().unwrap().to_string();
    let export = env.ok(&["audit", "export"]);
    let rows: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2]["hash"], head.as_str());
    assert_eq!(rows[1]["hash"], rows[2]["prev_hash"]);
    assert_eq!(rows[0]["action"], "maintenance.on");
    sqlite(&env, "DELETE FROM audit_log WHERE id=3");
    assert_eq!(
        verify(&env).0,
        0,
        "without the head, a shorter log looks whole"
    );
    let out = env.run(&["audit", "verify", "--head", &head]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed from the end"));
    // The chain's key is needed: without it, verify says which file to restore.
    std::fs::remove_file(env.db().with_file_name("audit.key")).unwrap();
    let out = env.run(&["audit", "verify"]);
    assert!(!out.status.success());
    // Opening the database made a new key; the log says it was chained with another one.
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("chained with key"), "{text}");
}
