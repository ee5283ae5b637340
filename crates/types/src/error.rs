//! Error kinds shared by jobs, the CLI and the TUI.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a job (or an engine call) failed. Stored by name in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    SshConnect,
    Auth,
    HostKey,
    Validation,
    InstallerValidation,
    Installation,
    Configuration,
    Timeout,
    Cancelled,
    Interrupted,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::SshConnect,
        ErrorKind::Auth,
        ErrorKind::HostKey,
        ErrorKind::Validation,
        ErrorKind::InstallerValidation,
        ErrorKind::Installation,
        ErrorKind::Configuration,
        ErrorKind::Timeout,
        ErrorKind::Cancelled,
        ErrorKind::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::SshConnect => "ssh_connect",
            ErrorKind::Auth => "auth",
            ErrorKind::HostKey => "host_key",
            ErrorKind::Validation => "validation",
            ErrorKind::InstallerValidation => "installer_validation",
            ErrorKind::Installation => "installation",
            ErrorKind::Configuration => "configuration",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Only connection-level failures are worth an automatic retry.
    pub fn retry_possible(self) -> bool {
        matches!(self, ErrorKind::SshConnect)
    }

    /// Maps an installer's exit code to a kind (the installer contract).
    pub fn from_exit_code(code: u32) -> Option<Self> {
        match code {
            0 => None,
            1 => Some(ErrorKind::InstallerValidation),
            2 => Some(ErrorKind::Installation),
            3 => Some(ErrorKind::Configuration),
            124 => Some(ErrorKind::Timeout),
            _ => Some(ErrorKind::Installation),
        }
    }

    /// The CLI's process exit code for a job that ended with this kind.
    pub fn cli_exit_code(self) -> i32 {
        match self {
            ErrorKind::InstallerValidation => 10,
            ErrorKind::Installation => 11,
            ErrorKind::Configuration => 12,
            ErrorKind::Timeout => 13,
            ErrorKind::Cancelled => 14,
            ErrorKind::SshConnect => 15,
            ErrorKind::Auth => 16,
            ErrorKind::HostKey => 17,
            ErrorKind::Validation => 18,
            ErrorKind::Interrupted => 19,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An engine error: a kind plus a message that says what happened and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct KindError {
    pub kind: ErrorKind,
    pub message: String,
}

impl KindError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_to_kinds() {
        assert_eq!(ErrorKind::from_exit_code(0), None);
        assert_eq!(
            ErrorKind::from_exit_code(1),
            Some(ErrorKind::InstallerValidation)
        );
        assert_eq!(ErrorKind::from_exit_code(2), Some(ErrorKind::Installation));
        assert_eq!(ErrorKind::from_exit_code(3), Some(ErrorKind::Configuration));
        assert_eq!(ErrorKind::from_exit_code(124), Some(ErrorKind::Timeout));
        assert_eq!(ErrorKind::from_exit_code(7), Some(ErrorKind::Installation));
    }

    #[test]
    fn names_round_trip_and_only_connect_retries() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(k.as_str()), Some(k));
            assert_eq!(k.retry_possible(), k == ErrorKind::SshConnect);
        }
    }
}
