//! Who is acting: the OS user, plus the SSH client's address when logged in over SSH.

/// The operator string recorded in the audit log, e.g. `alice (from 10.1.2.3)`.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(whoami::username);
    match std::env::var("SSH_CLIENT")
        .ok()
        .and_then(|c| c.split_whitespace().next().map(str::to_string))
    {
        Some(addr) => format!("{user} (from {addr})"),
        None => user,
    }
}

/// Identifies this process as a lease or job owner: `pid@hostname`.
pub fn process_owner() -> String {
    format!("{}@{}", std::process::id(), hostname())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether an owner string from `process_owner` names a live process. Owners on other
/// hosts are assumed alive; their heartbeat decides.
pub fn owner_alive(owner: &str) -> bool {
    let Some((pid, host)) = owner.split_once('@') else {
        return false;
    };
    if host != hostname() {
        return true;
    }
    match pid.parse::<u32>() {
        Ok(pid) => std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => false,
    }
}
