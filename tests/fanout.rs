//! Fan-out over 20 real local sshd hosts: batches, max-fail, per-host logs that never interleave.

mod common;

use common::{Sshd, TestEnv};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn fleet(env: &TestEnv, n: usize) -> Vec<Sshd> {
    let sshds: Vec<Sshd> = (0..n).map(|_| Sshd::start()).collect();
    for (i, s) in sshds.iter().enumerate() {
        let name = format!("h{:02}", i + 1);
        let port = s.port.to_string();
        let key = s.client_key.display().to_string();
        env.ok(&[
            "server",
            "add",
            &name,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            &s.user,
            "--identity",
            &key,
            "--tag",
            "fleet",
        ]);
        env.ok(&["server", "trust", &name, "--yes"]);
    }
    sshds
}

fn events(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Each job's stored log holds only lines of its own host, all five, in order.
fn check_logs(env: &TestEnv, jobs: &BTreeMap<String, i64>) {
    for (host, id) in jobs {
        let logs = env.run(&["logs", &id.to_string()]);
        let text = String::from_utf8_lossy(&logs.stdout);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("line ")).collect();
        let want: Vec<String> = (1..=5).map(|i| format!("line {i} from {host}")).collect();
        assert_eq!(lines, want, "job #{id} on {host}: {text}");
        for other in jobs.keys().filter(|h| *h != host) {
            assert!(
                !text.contains(&format!("from {other}")),
                "{host}'s log has {other}'s lines"
            );
        }
    }
}

#[test]
fn max_fail_stops_the_batches_and_logs_stay_per_host() {
    let env = TestEnv::new();
    let _sshds = fleet(&env, 20);
    // Batches of 5; h03, h07 and h12 fail; more than 1 failure stops the rollout.
    let out = env.run(&[
        "install",
        "fanout",
        "--tag",
        "fleet",
        "--batch",
        "5",
        "--max-fail",
        "1",
        "--set",
        "fail_on=h03,h07,h12",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(11),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    let mut finished: BTreeMap<String, String> = BTreeMap::new();
    let mut jobs: BTreeMap<String, i64> = BTreeMap::new();
    let mut skipped: BTreeSet<String> = BTreeSet::new();
    let mut batches = 0;
    for e in &evs {
        match (e["event"].as_str(), e["fanout"]["kind"].as_str()) {
            (Some("job_finished"), _) => {
                finished.insert(
                    e["job"]["server_name"].as_str().unwrap().into(),
                    e["job"]["status"].as_str().unwrap().into(),
                );
            }
            (Some("fanout"), Some("job_launched")) => {
                jobs.insert(
                    e["fanout"]["server"].as_str().unwrap().into(),
                    e["fanout"]["job_id"].as_i64().unwrap(),
                );
            }
            (Some("fanout"), Some("batch_started")) => batches += 1,
            (Some("fanout"), Some("skipped")) => {
                assert!(
                    e["fanout"]["reason"].as_str().unwrap().contains("max-fail"),
                    "{e}"
                );
                for s in e["fanout"]["servers"].as_array().unwrap() {
                    skipped.insert(s.as_str().unwrap().into());
                }
            }
            _ => {}
        }
    }
    // Batch 1 (h01-h05) has one failure, within budget; batch 2 (h06-h10) brings the second,
    // so batches 3 and 4 never start.
    assert_eq!(batches, 2, "{evs:?}");
    assert_eq!(jobs.len(), 10);
    assert_eq!(finished.len(), 10);
    assert_eq!(finished["h03"], "failed");
    assert_eq!(finished["h07"], "failed");
    assert_eq!(finished.values().filter(|s| *s == "succeeded").count(), 8);
    let want: BTreeSet<String> = (11..=20).map(|i| format!("h{i:02}")).collect();
    assert_eq!(skipped, want);
    // No job was ever created for a skipped host.
    let all = env.jobs_json();
    assert_eq!(all.as_array().unwrap().len(), 10);
    check_logs(&env, &jobs);
    let audit = env.ok(&["audit", "--limit", "50"]);
    assert!(audit.contains("fanout.skip"), "{audit}");

    // Without a budget every host runs: 3 fail, 17 succeed, and the table says so.
    let out = env.run(&[
        "install",
        "fanout",
        "--all",
        "--concurrency",
        "8",
        "--set",
        "fail_on=h03,h07,h12",
    ]);
    assert_eq!(out.status.code(), Some(11));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("20 hosts: 0 running, 0 queued, 17 succeeded, 3 failed, 0 skipped"),
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Streamed lines carry their job's prefix; each prefix only ever names one host.
    let mut by_prefix: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in stdout.lines().filter(|l| l.contains(" from h")) {
        let (prefix, rest) = l.split_once("] ").expect("prefixed line");
        let host = rest.rsplit(' ').next().unwrap().to_string();
        by_prefix
            .entry(prefix.to_string())
            .or_default()
            .insert(host);
    }
    assert_eq!(by_prefix.len(), 20, "{stdout}");
    assert!(by_prefix.values().all(|h| h.len() == 1), "{by_prefix:?}");
}
