//! `server edit` through the real binary against a real sshd: the CLI reaches the same engine
//! method as the dashboard's `e` (audited `server.edit`), fields left out keep their value, and
//! a bad edit is refused with the field named and nothing changed.

mod common;

use common::{Sshd, TestEnv};

#[test]
fn server_edit_changes_what_the_next_connection_uses_and_is_audited() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    let key = sshd.client_key.display().to_string();
    // Registered on a port nothing listens on: trusting it cannot work yet.
    env.ok(&[
        "server",
        "add",
        "web1",
        "--host",
        "127.0.0.1",
        "--port",
        "1",
        "--user",
        &sshd.user,
        "--identity",
        &key,
        "--tag",
        "old",
    ]);
    assert!(
        !env.run(&["server", "trust", "web1", "--yes"])
            .status
            .success()
    );

    let port = sshd.port.to_string();
    let out = env.ok(&[
        "server", "edit", "web1", "--port", &port, "--tag", "web", "--tag", "eu",
    ]);
    assert!(
        out.contains(&format!(
            "web1 now {}@127.0.0.1:{port} (tags web,eu)",
            sshd.user
        )),
        "{out}"
    );
    let s = env.server_json("web1");
    assert_eq!(s["server"]["port"], sshd.port);
    assert_eq!(s["server"]["tags"], serde_json::json!(["web", "eu"]));
    assert_eq!(s["server"]["user"], sshd.user.as_str(), "the user was kept");
    assert_eq!(s["server"]["identity"], key.as_str(), "the key was kept");

    // The next connection dials the new port: trust and a real job work now.
    env.ok(&["server", "trust", "web1", "--yes"]);
    env.install_echo_ok("web1", &["message=after-edit"]);

    let audit: serde_json::Value =
        serde_json::from_str(&env.ok(&["audit", "server.edit", "--json"])).expect("audit json");
    let rows = audit.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{audit}");
    assert_eq!(rows[0]["target"], "web1");
    assert!(
        rows[0]["details"]
            .as_str()
            .is_some_and(|d| d.contains(&port) && d.contains("tags=web,eu")),
        "{audit}"
    );

    // --no-tags clears them; the rest stays.
    env.ok(&["server", "edit", "web1", "--no-tags"]);
    let s = env.server_json("web1");
    assert_eq!(s["server"]["tags"], serde_json::json!([]));
    assert_eq!(s["server"]["port"], sshd.port);
}

#[test]
fn a_bad_server_edit_names_the_problem_and_changes_nothing() {
    let env = TestEnv::new();
    env.ok(&[
        "server", "add", "web1", "--host", "10.0.0.5", "--user", "deploy",
    ]);
    let before = env.server_json("web1");
    let cases: [(&[&str], &str); 4] = [
        (&["server", "edit", "web1"], "nothing to change for web1"),
        (&["server", "edit", "nosuch", "--port", "2222"], "nosuch"),
        (&["server", "edit", "web1", "--user", "two words"], "user"),
        (&["server", "edit", "web1", "--tag", "a,b"], "tag"),
    ];
    for (args, says) in cases {
        let out = env.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(says),
            "{args:?} should mention {says:?}: {err}"
        );
    }
    assert_eq!(env.server_json("web1"), before, "a refused edit wrote");
    let audit = env.ok(&["audit", "server.edit", "--json"]);
    assert_eq!(audit.trim(), "[]", "a refused edit was audited as done");
}
