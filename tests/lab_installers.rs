//! The installer lab suite (tests/lab/run.sh) as part of `cargo test`.
//!
//! It boots real Debian 12 servers (systemd-nspawn in network namespaces) and runs every fast-tier
//! installer through this crate's binary. It needs root, network namespaces and systemd-nspawn;
//! otherwise it prints why it was skipped and passes. `PROVISION_TUI_LAB=0` skips it,
//! `PROVISION_TUI_LAB=1` makes a skip a failure (CI), `PROVISION_TUI_LAB_TIER=slow|all` picks
//! another tier (default `fast`).

use std::path::Path;
use std::process::Command;

#[test]
fn installers_in_the_lab() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lab = root.join("tests/lab/lab.sh");
    let required = std::env::var("PROVISION_TUI_LAB").as_deref() == Ok("1");
    if std::env::var("PROVISION_TUI_LAB").as_deref() == Ok("0") {
        eprintln!("lab suite SKIPPED: PROVISION_TUI_LAB=0");
        return;
    }
    let check = Command::new("bash").arg(&lab).arg("check").output();
    let reason = match check {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Err(e) => Some(format!("cannot run {}: {e}", lab.display())),
    };
    if let Some(reason) = reason {
        assert!(
            !required,
            "PROVISION_TUI_LAB=1 but the lab cannot run: {reason}"
        );
        eprintln!("lab suite SKIPPED: {reason}");
        return;
    }
    let tier = std::env::var("PROVISION_TUI_LAB_TIER").unwrap_or_else(|_| "fast".into());
    let status = Command::new("bash")
        .arg(root.join("tests/lab/run.sh"))
        .arg(&tier)
        .env("PROVISION_TUI_BIN", env!("CARGO_BIN_EXE_provision-tui"))
        .status()
        .expect("tests/lab/run.sh starts");
    assert!(
        status.success(),
        "lab suite ({tier} tier) failed: {status}; see its output above"
    );
}
