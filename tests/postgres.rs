//! The PostgreSQL backend across processes, on the real server `scripts/pg-test-server`
//! starts: what one process commits reaches another's change counter (LISTEN/NOTIFY) within
//! a second, its own commits do not, and two processes writing at once keep every row.
mod common;

use common::TestEnv;
use ptui_store::Store;
use std::time::{Duration, Instant};

fn pg_env() -> (TestEnv, Store) {
    let mut env = TestEnv::new();
    let url = ptui_store::testing::fresh_postgres_url().expect("test database");
    env.pg_url = Some(url.clone());
    let server = ptui_store::testing::pg_server().expect("server");
    let store = Store::open_postgres_with(&url, Some(&server.pgpass)).expect("open");
    (env, store)
}

#[test]
fn another_process_commit_is_seen_within_a_second_and_own_commits_are_not() {
    let (env, store) = pg_env();
    let before = store.data_version().unwrap();
    store.audit("tester", "own.write", "", "").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        store.data_version().unwrap(),
        before,
        "own commits do not count"
    );
    env.ok(&["server", "add", "web-01", "--host", "10.0.0.1"]);
    let t0 = Instant::now();
    while store.data_version().unwrap() == before {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "another process's commit not seen within 1 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = store
        .server_by_name("web-01")
        .unwrap()
        .expect("row from the other process");
    assert_eq!(s.host, "10.0.0.1");
}

#[test]
fn two_processes_adding_servers_at_once_keep_every_row() {
    let (env, store) = pg_env();
    std::thread::scope(|scope| {
        for prefix in ["a", "b"] {
            let env = &env;
            scope.spawn(move || {
                for i in 0..15 {
                    let name = format!("{prefix}-{i:02}");
                    let out = env.run(&["server", "add", &name, "--host", "10.0.0.9"]);
                    assert!(out.status.success(), "server add {name}: {out:?}");
                }
            });
        }
    });
    let servers = store.list_servers().unwrap();
    assert_eq!(
        servers.len(),
        30,
        "{:?}",
        servers.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    // The audit chain stayed one chain: writers took turns.
    let out = env.ok(&["audit", "verify"]);
    assert!(out.starts_with("intact, 30 rows"), "{out}");
}

#[test]
fn a_password_never_shows_and_a_wrong_one_says_what_to_do() {
    let env = TestEnv::new();
    let server = ptui_store::testing::pg_server().expect("server");
    let url = server
        .url
        .replacen("postgres://ptui@", "postgres://ptui:wrong-s3cret@", 1);
    let out = env
        .cmd()
        .env("PROVISION_TUI_DB", &url)
        .env_remove("PGPASSFILE")
        .args(["server", "list"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("wrong-s3cret"), "the password leaked: {err}");
    assert!(
        err.contains("ptui:***@127.0.0.1"),
        "names the server: {err}"
    );
    assert!(err.contains("password authentication failed"), "{err}");
}

#[test]
fn read_only_changes_nothing_on_the_server_and_refuses_an_older_schema() {
    let (env, store) = pg_env();
    env.ok(&["server", "add", "web-01", "--host", "10.0.0.1"]);
    let url = env.pg_url.clone().expect("url");
    let server = ptui_store::testing::pg_server().expect("server");
    let ro = Store::open_postgres_read_only(&url, Some(&server.pgpass)).expect("read-only open");
    assert_eq!(ro.list_servers().unwrap().len(), 1);
    let err = ro.audit("tester", "sneaky.write", "", "").unwrap_err();
    assert!(format!("{err:#}").contains("read-only"), "{err:#}");
    let out = env.run(&[
        "--readonly",
        "server",
        "add",
        "web-02",
        "--host",
        "10.0.0.2",
    ]);
    assert!(!out.status.success());
    assert_eq!(store.list_servers().unwrap().len(), 1, "nothing was added");
    // An empty database is not migrated when looking only.
    let fresh = ptui_store::testing::fresh_postgres_url().expect("fresh");
    let err = Store::open_postgres_read_only(&fresh, Some(&server.pgpass))
        .err()
        .expect("an unmigrated database is refused");
    assert!(
        format!("{err:#}").contains("not upgraded when looking only"),
        "{err:#}"
    );
}
