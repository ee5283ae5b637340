//! The outcome of checking a server's host key, shown by both front ends.

use std::path::PathBuf;

/// A key a known_hosts file records for the host:port we connect to.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedKey {
    /// `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`...
    pub key_type: String,
    pub fingerprint: String,
    pub file: PathBuf,
    /// 1-based line in `file`.
    pub line: usize,
    /// In provision-tui's own known_hosts, which `server trust --replace` rewrites; `false`
    /// for the user's `~/.ssh/known_hosts`, which we never edit.
    pub ours: bool,
}

/// What we concluded about a server's host key. Keys are compared by host, not by key
/// type: a server that offers a key of another type than the one recorded has changed.
#[derive(Debug, Clone, PartialEq)]
pub enum HostKeyVerdict {
    /// The offered key is one a known_hosts file records for this host:port.
    Trusted,
    /// Nothing is recorded for this host:port.
    Unknown {
        fingerprint: String,
        key_type: String,
    },
    /// Keys are recorded for this host:port, and the offered one is none of them.
    Changed {
        fingerprint: String,
        key_type: String,
        /// Every key recorded for the host:port (never empty).
        recorded: Vec<RecordedKey>,
    },
}

impl HostKeyVerdict {
    /// The recorded keys in the user's `~/.ssh/known_hosts` (which `--replace` leaves alone).
    pub fn recorded_outside_ours(&self) -> Vec<&RecordedKey> {
        match self {
            HostKeyVerdict::Changed { recorded, .. } => {
                recorded.iter().filter(|r| !r.ours).collect()
            }
            _ => Vec::new(),
        }
    }
}

impl RecordedKey {
    /// `ssh-ed25519 SHA256:... (/path/known_hosts:3)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {} ({}:{})",
            self.key_type,
            self.fingerprint,
            self.file.display(),
            self.line
        )
    }
}

/// For a change: the recorded entries `server trust --replace` cannot remove because they
/// are in the user's own known_hosts. `None` when every old entry is in ours.
pub fn user_file_note(verdict: &HostKeyVerdict) -> Option<String> {
    let outside = verdict.recorded_outside_ours();
    let first = outside.first()?;
    let lines: Vec<String> = outside.iter().map(|r| r.line.to_string()).collect();
    Some(format!(
        "the old key is also in {} (line {}), which provision-tui never edits: once replaced, \
         provision-tui trusts the new key, but delete that line yourself (`ssh-keygen -R`) so \
         OpenSSH agrees",
        first.file.display(),
        lines.join(", ")
    ))
}

/// `ssh-ed25519 SHA256:... (file:3) and ssh-rsa SHA256:... (file:4)`, for messages.
pub fn describe_all(recorded: &[RecordedKey]) -> String {
    let each: Vec<String> = recorded.iter().map(RecordedKey::describe).collect();
    each.join(" and ")
}
