//! `upgrade` on many servers, against a real sshd: one set of given inputs, each server's
//! missing ones filled from its own recorded deployment, and a server with no recorded value
//! for a required input refused (named, with the input) before anything runs.

mod common;

use common::{Sshd, TestEnv};

fn job_count(env: &TestEnv) -> usize {
    env.jobs_json().as_array().expect("jobs").len()
}

#[test]
fn upgrade_fills_each_servers_inputs_from_its_own_deployment() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    for s in ["s1", "s2", "s3"] {
        env.add_server(s, &sshd);
    }
    env.ok(&[
        "install",
        "upgradable",
        "--on",
        "s1",
        "--set",
        "site=alpha",
        "--set",
        "level=4",
    ]);
    env.ok(&["install", "upgradable", "--on", "s2", "--set", "site=beta"]);
    assert_eq!(job_count(&env), 2);

    // s3 never had it installed: no recorded `site`. Refused before any job exists.
    let out = env.run(&[
        "upgrade",
        "upgradable",
        "--on",
        "s1,s2,s3",
        "--set",
        "level=9",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(18), "{err}");
    assert!(
        err.contains(
            "input site: is required, and server s3 has no recorded deployment of upgradable; \
             nothing was started (pass --set site=VALUE, or leave s3 out)"
        ),
        "{err}"
    );
    assert!(
        !err.contains("server s1") && !err.contains("server s2"),
        "{err}"
    );
    assert_eq!(job_count(&env), 2, "nothing ran");

    // Each server gets its own `site`, and the one given `level`.
    let out = env.ok(&["upgrade", "upgradable", "--on", "s1,s2", "--set", "level=9"]);
    assert!(out.contains("level=9 site=alpha"), "{out}");
    assert!(out.contains("level=9 site=beta"), "{out}");
    for (s, site) in [("s1", "alpha"), ("s2", "beta")] {
        let show = env.server_json(s);
        let dep = &show["deployments"][0];
        assert_eq!(dep["inputs"]["site"], site, "{dep}");
        assert_eq!(dep["inputs"]["level"], "9", "{dep}");
    }
    // A given value still wins over the recorded one.
    let out = env.ok(&[
        "upgrade",
        "upgradable",
        "--on",
        "s1,s2",
        "--set",
        "site=gamma",
    ]);
    assert_eq!(out.matches("level=9 site=gamma").count(), 2, "{out}");
}
