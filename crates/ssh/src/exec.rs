//! Short remote commands (`exec_capture`), privilege escalation, and the inputs' encoding.
//! Installers run detached under the agent: see `detached.rs`.

use super::connect::{Session, SudoMode};
use ptui_types::error::{ErrorKind, KindError};
use ptui_types::secret::Secret;
use russh::ChannelMsg;
use std::time::Duration;

/// Output of a short command.
#[derive(Debug, Default)]
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<u32>,
    pub signal: Option<String>,
}

fn channel_error(s: &Session, what: &str, e: russh::Error) -> KindError {
    let text = e.to_string();
    let hint = if text.contains("ConnectFailed") || text.contains("open channel") {
        " (sshd MaxSessions reached: too many channels on this connection)"
    } else {
        ""
    };
    KindError::new(
        ErrorKind::SshConnect,
        format!("{}: {what}: {text}{hint}", s.target.label()),
    )
}

/// Runs a short command, feeding `stdin` and then EOF, and collects its output.
/// Helper commands (kill, checks) never take this long on a healthy host.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(120);

/// `exec_capture` bounded by a timeout, so a frozen host cannot hang a job forever.
pub async fn exec_capture_timeout(
    s: &Session,
    cmd: &str,
    stdin: &[u8],
    limit: Duration,
) -> Result<Captured, KindError> {
    tokio::time::timeout(limit, exec_capture(s, cmd, stdin))
        .await
        .map_err(|_| {
            KindError::new(
                ErrorKind::Timeout,
                format!(
                    "{}: no answer within {}s",
                    s.target.label(),
                    limit.as_secs()
                ),
            )
        })?
}

/// Opens a channel, runs `cmd`, sends `stdin` and EOF (without EOF the remote side waits).
async fn open_exec(
    s: &Session,
    cmd: &str,
    stdin: &[u8],
) -> Result<russh::Channel<russh::client::Msg>, KindError> {
    let ch = s
        .handle
        .channel_open_session()
        .await
        .map_err(|e| channel_error(s, "open channel", e))?;
    ch.exec(true, cmd)
        .await
        .map_err(|e| channel_error(s, "exec", e))?;
    if !stdin.is_empty() {
        ch.data(stdin)
            .await
            .map_err(|e| channel_error(s, "send stdin", e))?;
    }
    ch.eof()
        .await
        .map_err(|e| channel_error(s, "send eof", e))?;
    Ok(ch)
}

pub async fn exec_capture(s: &Session, cmd: &str, stdin: &[u8]) -> Result<Captured, KindError> {
    let mut ch = open_exec(s, cmd, stdin).await?;
    let mut out = Captured::default();
    let (mut o, mut e) = (Vec::new(), Vec::new());
    while let Some(msg) = ch.wait().await {
        match msg {
            ChannelMsg::Data { data } => o.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => e.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => out.exit_code = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                out.signal = Some(format!("{signal_name:?}"))
            }
            _ => {}
        }
    }
    out.stdout = String::from_utf8_lossy(&o).into_owned();
    out.stderr = String::from_utf8_lossy(&e).into_owned();
    Ok(out)
}

/// How a command is escalated: the prefix, and what goes first on its stdin.
pub(crate) struct Escalation {
    prefix: &'static str,
    /// `password\n` for `sudo -S`; empty otherwise. Never logged.
    preamble: Secret,
    /// Whether the command must skip a preamble record (see `SKIP_PREAMBLE`).
    skip: bool,
}

/// With a sudo password, stdin starts `password\n__PTUI_BEGIN\0`. sudo reads the first line;
/// if sudo did not ask (NOPASSWD rule) the password is still there, so the command reads up to
/// the first NUL and checks that it ends with the marker either way: the password never
/// reaches the installer, the script file or the log.
const SKIP_PREAMBLE: &str =
    r#"IFS= read -r -d "" first; case "$first" in *__PTUI_BEGIN) ;; *) exit 97;; esac; "#;
const BEGIN_MARKER: &[u8] = b"__PTUI_BEGIN\0";

impl Escalation {
    /// No sudo at all: the command runs as the login user.
    pub(crate) fn is_none(&self) -> bool {
        self.prefix.is_empty() && !self.skip
    }
}

pub(crate) fn escalation(s: &Session) -> Result<Escalation, KindError> {
    let none = Escalation::none();
    if s.target.user == "root" {
        return Ok(none);
    }
    match &s.target.sudo {
        SudoMode::Never => Ok(none),
        SudoMode::NoPassword => Ok(Escalation {
            prefix: "sudo -n ",
            ..none
        }),
        SudoMode::PasswordEnv(var) => {
            let pw = std::env::var(var).map_err(|_| {
                KindError::new(
                    ErrorKind::Auth,
                    format!(
                        "{}: the sudo password variable ${var} is not set in provision-tui's environment",
                        s.target.label()
                    ),
                )
            })?;
            if pw.contains(['\n', '\0']) {
                return Err(KindError::new(
                    ErrorKind::Validation,
                    format!("${var}: a sudo password cannot contain a newline or NUL"),
                ));
            }
            Ok(with_password(&pw))
        }
        SudoMode::PasswordPrompt(Some(pw)) => {
            // Engine::set_sudo_password refuses these already; checked again so a newline
            // can never end the password line early and reach the command.
            if pw.expose().contains(['\n', '\0']) {
                return Err(KindError::new(
                    ErrorKind::Validation,
                    "a sudo password cannot contain a newline or NUL",
                ));
            }
            Ok(with_password(pw.expose()))
        }
        SudoMode::PasswordPrompt(None) => Err(missing_prompted_password(&s.target)),
    }
}

/// The error of a job on a `--prompt` server whose sudo password nobody gave yet.
pub fn missing_prompted_password(t: &super::SshTarget) -> KindError {
    KindError::new(
        ErrorKind::Auth,
        format!(
            "{}: sudo asks for a password and none was given to this process; enter it in the \
             dashboard when it asks, run the command on a terminal to be prompted, or for \
             scripts use `provision-tui server sudo {} --password-env VAR`",
            t.label(),
            t.name
        ),
    )
}

fn with_password(pw: &str) -> Escalation {
    Escalation {
        // -k: ignore cached credentials, so sudo always reads the line we send.
        prefix: "sudo -k -S -p '' ",
        preamble: Secret::new(format!("{pw}\n")),
        skip: true,
    }
}

impl Escalation {
    /// No escalation: the command runs as the login user.
    pub(crate) fn none() -> Self {
        Escalation {
            prefix: "",
            preamble: Secret::new(""),
            skip: false,
        }
    }
    pub(crate) fn prefix(&self) -> &'static str {
        self.prefix
    }
    /// The bytes to send first on stdin for a command that reads stdin.
    pub(crate) fn stdin(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = self.preamble.expose().as_bytes().to_vec();
        if self.skip {
            out.extend_from_slice(BEGIN_MARKER);
        }
        out.extend_from_slice(payload);
        out
    }
    pub(crate) fn skip(&self) -> &'static str {
        if self.skip { SKIP_PREAMBLE } else { "" }
    }
}

/// How an installer run ended, as the runner maps it to an error kind.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub exit_code: Option<u32>,
    pub signal: Option<String>,
    pub cancelled: bool,
    /// The client-side deadline passed (the remote `timeout` should have fired first).
    pub timed_out: bool,
}

impl RunOutcome {
    pub fn error_kind(&self) -> Option<ErrorKind> {
        if self.cancelled {
            return Some(ErrorKind::Cancelled);
        }
        if self.timed_out {
            return Some(ErrorKind::Timeout);
        }
        match self.exit_code {
            Some(c) => ErrorKind::from_exit_code(c),
            None => Some(ErrorKind::Installation),
        }
    }
}

pub fn valid_env_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(x) if x.is_ascii_uppercase() || x == '_')
        && c.all(|x| x.is_ascii_uppercase() || x.is_ascii_digit() || x == '_')
}

/// NUL-separated `KEY=VALUE` records for the wrapper's stdin.
pub fn encode_env(env: &[(String, Secret)]) -> Result<Vec<u8>, KindError> {
    let mut out = Vec::new();
    for (k, v) in env {
        if !valid_env_name(k) {
            return Err(KindError::new(
                ErrorKind::Validation,
                format!("invalid variable name {k:?}"),
            ));
        }
        if v.expose().contains('\0') {
            return Err(KindError::new(
                ErrorKind::Validation,
                format!("value of {k} contains a NUL byte"),
            ));
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.expose().as_bytes());
        out.push(0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_records_are_nul_separated_and_names_checked() {
        let env = vec![
            ("A".to_string(), Secret::new("x y")),
            ("B_2".into(), Secret::new("$(id)\n")),
        ];
        assert_eq!(encode_env(&env).unwrap(), b"A=x y\0B_2=$(id)\n\0");
        assert!(encode_env(&[("a".into(), Secret::new("1"))]).is_err());
        assert!(encode_env(&[("A;B".into(), Secret::new("1"))]).is_err());
        assert!(encode_env(&[("A".into(), Secret::new("1\x002"))]).is_err());
    }

    #[test]
    fn outcome_kinds() {
        let mut o = RunOutcome {
            exit_code: Some(0),
            signal: None,
            cancelled: false,
            timed_out: false,
        };
        assert_eq!(o.error_kind(), None);
        o.exit_code = Some(124);
        assert_eq!(o.error_kind(), Some(ErrorKind::Timeout));
        o.cancelled = true;
        assert_eq!(o.error_kind(), Some(ErrorKind::Cancelled));
    }
}
