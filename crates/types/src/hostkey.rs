//! The outcome of checking a server's host key, shown by both front ends.

use std::path::PathBuf;

/// What we concluded about a server's host key.
#[derive(Debug, Clone, PartialEq)]
pub enum HostKeyVerdict {
    Trusted,
    Unknown {
        fingerprint: String,
    },
    Changed {
        fingerprint: String,
        recorded: String,
        file: PathBuf,
        line: usize,
    },
}
