//! Exit 1 (`installer_validation`: the installer refused its inputs and changed nothing) puts
//! the server back where the job found it, not in error, and opens no `provisioning_failed`
//! incident. Real sshd, the real binary, and `watch --json` (which opens incidents) running.

mod common;

use common::{Sshd, TestEnv};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

struct Watch {
    child: Child,
    rx: Receiver<Value>,
}

impl Watch {
    fn start(env: &TestEnv) -> Watch {
        let mut child = env
            .cmd()
            .args(["watch", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn watch");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Watch { child, rx }
    }

    fn wait(&self, secs: u64, what: &str, f: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no event {what} within {secs}s");
            if let Ok(v) = self.rx.recv_timeout(left.min(Duration::from_millis(200)))
                && f(&v)
            {
                return;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Exit 1 first, then exit 2: the watcher handles finished jobs in order, so once the exit-2
/// job's incident exists the exit-1 job was seen too, and opened nothing.
#[test]
fn an_installer_refusing_its_inputs_opens_no_incident_and_leaves_no_error() {
    let env = TestEnv::new();
    let sshd = Sshd::start();
    env.add_server("s", &sshd);
    let dir = env.path().join("config/provision-tui");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(
        dir.join("config.yml"),
        "health:\n  interval: 300ms\n  timeout: 5s\n",
    )
    .expect("config");
    let w = Watch::start(&env);
    w.wait(20, "first sample", |e| e["event"] == "health_sample");

    let out = env.run(&["install", "exit-code", "--on", "s", "--set", "code=1"]);
    assert_eq!(out.status.code(), Some(10), "installer_validation exit");
    let show = env.server_json("s");
    assert_eq!(show["server"]["status"], "pending_setup", "{show}");
    let last = &show["events"][0];
    assert_eq!(last["from_status"], "provisioning", "{last}");
    assert_eq!(last["to_status"], "pending_setup", "{last}");

    let out = env.run(&["install", "exit-code", "--on", "s", "--set", "code=2"]);
    assert_eq!(out.status.code(), Some(11), "installation exit");
    assert_eq!(env.server_json("s")["server"]["status"], "error");
    w.wait(30, "provisioning_failed for the exit-2 job", |e| {
        e["event"] == "incident_changed" && e["incident"]["kind"] == "provisioning_failed"
    });
    let incs: Value = serde_json::from_str(&env.ok(&["incidents", "--json"])).expect("json");
    let failed: Vec<&Value> = incs
        .as_array()
        .expect("array")
        .iter()
        .filter(|i| i["kind"] == "provisioning_failed")
        .collect();
    assert_eq!(failed.len(), 1, "only the exit-2 job: {incs:#}");
    let jobs = env.jobs_json();
    let exit2 = jobs
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["exit_code"] == 2)
        .expect("the exit-2 job");
    let details = failed[0]["details"].as_str().unwrap_or_default();
    assert!(
        details.contains(&format!("job #{} ", exit2["id"])),
        "the incident is the exit-2 job's: {details}"
    );
}
