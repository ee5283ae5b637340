//! What the health tests share: a webhook receiver, `watch --json` as a child process, and a
//! fast health config.

use super::{Sshd, TestEnv};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A tiny HTTP server that records every JSON body POSTed to it.
pub struct Hook {
    pub url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    pub fn start() -> Hook {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", l.local_addr().expect("addr"));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = bodies.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let Ok(n) = s.read(&mut chunk) else {
                        break None;
                    };
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break Some(buf[end + 4..end + 4 + len].to_vec());
                        }
                    }
                };
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                if let Some(body) = body
                    && let Ok(v) = serde_json::from_slice::<Value>(&body)
                {
                    b.lock().unwrap().push(v);
                }
            }
        });
        Hook { url, bodies }
    }

    pub fn all(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits for a body matching `f`.
    pub fn wait(&self, secs: u64, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = self.all().into_iter().find(|v| f(v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no notification {what} within {secs}s; got {:#?}",
                self.all()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `provision-tui watch --json` running in the background; its events arrive on a channel.
pub struct Watch {
    child: Child,
    rx: Receiver<Value>,
    pub seen: Vec<Value>,
}

impl Watch {
    pub fn start(env: &TestEnv) -> Watch {
        let mut child = env
            .cmd()
            .args(["watch", "--json"])
            .env("PROVISION_TUI_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn watch");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Watch {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for an event matching `f`, keeping every event seen.
    pub fn wait(&mut self, secs: u64, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no event {what} within {secs}s; last events: {:#?}",
                &self.seen[self.seen.len().saturating_sub(8)..]
            );
            if let Ok(v) = self.rx.recv_timeout(left.min(Duration::from_millis(200))) {
                self.seen.push(v.clone());
                if f(&v) {
                    return v;
                }
            }
        }
    }

    pub fn samples_of(&self, server: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter(|e| e["event"] == "health_sample" && e["sample"]["server"] == server)
            .map(|e| e["sample"].clone())
            .collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn is_sample(e: &Value, server: &str) -> bool {
    e["event"] == "health_sample" && e["sample"]["server"] == server
}

pub fn write_config(env: &TestEnv, yaml: &str) {
    let dir = env.path().join("config/provision-tui");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(dir.join("config.yml"), yaml).expect("config");
}

pub fn fast_config(hook: &Hook, extra: &str) -> String {
    format!(
        "health:\n  interval: 300ms\n  timeout: 5s\n  failure_threshold: 3\n  success_threshold: 2\n\
         recovery:\n  grace: 0s\n  max_attempts: 2\n  backoff: 1s\n\
         notifications:\n  retries: 1\n  retry_delay: 100ms\n  channels:\n    - name: hook\n      type: webhook\n      url: {}\n{extra}",
        hook.url
    )
}

/// Registers and provisions a server (base-fixture makes it ready).
pub fn ready_server(env: &TestEnv, name: &str, sshd: &Sshd) {
    env.add_server(name, sshd);
    env.ok(&["install", "base-fixture", "--on", name]);
    assert_eq!(env.server_json(name)["server"]["status"], "ready");
}

pub fn state_of(sample: &Value, kind: &str) -> Option<String> {
    sample["states"]
        .as_array()?
        .iter()
        .find(|c| c["kind"] == kind)
        .and_then(|c| c["level"].as_str().map(str::to_string))
}
