//! A server that floods its output with no newline: the client's memory stays bounded, the
//! stored log stays under its cap, and a secret across the client's line split stays masked.
//! Real sshd, the real binary.

mod common;

use common::{Sshd, TestEnv};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The peak resident set of a running process, in KiB (`VmHWM` of /proc/PID/status).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn log_texts(env: &TestEnv, job: &str) -> Vec<String> {
    let out = env.run(&["logs", job, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn output_without_newlines_keeps_the_clients_memory_and_the_stored_log_bounded() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    // 300 MiB in one "line": once, the client buffered such a line whole (1.5 GB for 3 GB).
    let mut child = env
        .cmd()
        .env("PROVISION_TUI_MAX_JOB_OUTPUT_MB", "2")
        .args([
            "install",
            "hostile-flood",
            "--on",
            "s",
            "--set",
            "megabytes=300",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start install");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "the flood did not end in 240 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut err).ok();
    assert!(status.success(), "install failed: {err}");
    eprintln!("peak rss {} MiB", peak / 1024);
    assert!(
        peak < 100 * 1024,
        "the client's peak RSS was {} MiB for 300 MiB of output without a newline",
        peak / 1024
    );

    let job = env.jobs_json()[0]["id"]
        .as_i64()
        .expect("job id")
        .to_string();
    let texts = log_texts(&env, &job);
    let stored: usize = texts.iter().map(|t| t.len()).sum();
    assert!(
        stored < 3 * 1024 * 1024,
        "stored {stored} bytes with a 2 MiB cap"
    );
    assert!(
        texts.iter().any(|t| t.contains("bytes dropped")),
        "no drop marker in the log"
    );
    assert!(
        texts.iter().any(|t| t == "flood done"),
        "the tail after the flood was not kept"
    );
    // Split pieces are at most the line limit, and nothing but the flood's bytes.
    assert!(
        texts
            .iter()
            .filter(|t| t.starts_with('a'))
            .all(|t| t.len() <= 64 * 1024 && t.bytes().all(|b| b == b'a')),
        "a split piece is longer than 64 KiB or holds other bytes"
    );
}

#[test]
fn a_secret_across_the_clients_line_split_is_masked_whole() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let token = "Zq9-straddling-secret-7Kp";
    let out = env
        .cmd()
        .env("PTUI_TOKEN", token)
        .args(["install", "hostile-flood", "--on", "s"])
        .args(["--set-env", "token=PTUI_TOKEN"])
        .output()
        .expect("run install");
    let shown =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{shown}");
    let job = env.jobs_json()[0]["id"]
        .as_i64()
        .expect("job id")
        .to_string();
    let texts = log_texts(&env, &job);
    let joined = texts.join("\n");
    // No piece of the token of 4 bytes or more, in the store or on screen.
    for part in token.as_bytes().windows(4) {
        let part = std::str::from_utf8(part).expect("ascii");
        assert!(
            !joined.contains(part),
            "stored log holds {part:?} of the secret"
        );
        assert!(
            !shown.contains(part),
            "the screen showed {part:?} of the secret"
        );
    }
    assert!(
        texts.iter().any(|t| t.contains("***")),
        "the masked secret is not in the log at all"
    );
}
