//! Remote execution in ONE exec: a fixed wrapper reads the script and then the inputs as
//! NUL-separated records on stdin (nothing touches the disk), prints its PID and runs
//! `exec timeout ... INTERPRETER -c SCRIPT NAME`; output streams back line by line, and on
//! timeout or cancel the process group is killed from a second channel.

use super::connect::{Session, SudoMode};
use super::lines::LineSplitter;
use ptui_types::error::{ErrorKind, KindError};
use ptui_types::job::LogStream;
use ptui_types::secret::Secret;
use russh::ChannelMsg;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    open_exec_staged(s, cmd, stdin).await.map_err(|e| e.error)
}

/// `open_exec`, telling whether the failure came before any stdin was sent. Without stdin the
/// wrapper has no script, so nothing can have run on the server: safe to retry elsewhere.
async fn open_exec_staged(
    s: &Session,
    cmd: &str,
    stdin: &[u8],
) -> Result<russh::Channel<russh::client::Msg>, RunError> {
    let before = |error| RunError {
        error,
        nothing_ran: true,
    };
    let ch = s
        .handle
        .channel_open_session()
        .await
        .map_err(|e| before(channel_error(s, "open channel", e)))?;
    ch.exec(true, cmd)
        .await
        .map_err(|e| before(channel_error(s, "exec", e)))?;
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

/// Why `run_installer` failed.
#[derive(Debug)]
pub struct RunError {
    pub error: KindError,
    /// The channel or the exec request failed before any stdin (the script) was sent, so the
    /// installer cannot have started: a retry on a fresh connection cannot run it twice.
    pub nothing_ran: bool,
}

impl From<KindError> for RunError {
    fn from(error: KindError) -> Self {
        RunError {
            error,
            nothing_ran: false,
        }
    }
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

pub(crate) fn escalation(s: &Session) -> Result<Escalation, KindError> {
    let none = Escalation {
        prefix: "",
        preamble: Secret::new(""),
        skip: false,
    };
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
    /// The bytes to send first on stdin for a command that reads stdin.
    fn stdin(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = self.preamble.expose().as_bytes().to_vec();
        if self.skip {
            out.extend_from_slice(BEGIN_MARKER);
        }
        out.extend_from_slice(payload);
        out
    }
    fn skip(&self) -> &'static str {
        if self.skip { SKIP_PREAMBLE } else { "" }
    }
}

/// What to run and how.
pub struct RunSpec<'a> {
    pub script: &'a str,
    /// `installer/script.sh`, the script's `$0` (for its own error messages).
    pub name: &'a str,
    /// (ENV_NAME, value) pairs; names are validated as `[A-Z_][A-Z0-9_]*`.
    pub env: Vec<(String, Secret)>,
    pub timeout: Duration,
    /// Extra client-side wait past `timeout` before we kill from our side.
    pub timeout_slack: Duration,
    pub kill_grace: Duration,
}

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

/// The fixed wrapper, run in ONE exec (every extra exec costs a remote login shell, which runs
/// the user's rc files). stdin holds the script as the first NUL-terminated record, then the
/// `KEY=VALUE` records, read by shell builtins and exported. Then the wrapper prints its PID
/// and execs `timeout`, which keeps that PID and leads the process group (sshd made the login
/// shell a session leader, or timeout calls setpgid itself): that is the group to kill. The
/// script runs as `INTERPRETER [FLAG] -c SCRIPT NAME` with stdin=/dev/null, in the login
/// user's home directory, as `ssh host cmd` would. No temporary file, no helper processes:
/// on a busy 2-core bastion every remote exec counts. Arguments: TIMEOUT NAME INTERPRETER...
const WRAPPER: &str = r#"IFS= read -r -d "" s || { echo "provision-tui: no script on stdin" >&2; exit 3; }; while IFS= read -r -d "" kv; do export "$kv"; done; t=$1; n=$2; shift 2; echo __PTUI_PGID=$$; exec timeout -k 30 "$t" "$@" -c "$s" "$n" </dev/null"#;

pub const PGID_MARKER: &str = "__PTUI_PGID=";

async fn kill_group(
    s: &Session,
    esc: &Escalation,
    pgid: u32,
    grace: Duration,
) -> Result<(), KindError> {
    let steps = (grace.as_millis() / 200).max(1);
    let cmd = format!(
        "{}bash --norc -c 'g() {{ kill -$1 -- -{pgid} 2>/dev/null || kill -$1 {pgid} 2>/dev/null; }}; g TERM; i=0; while g 0; do i=$((i+1)); if [ $i -gt {steps} ]; then g KILL; break; fi; sleep 0.2; done; exit 0'",
        esc.prefix
    );
    exec_capture_timeout(s, &cmd, &esc.stdin(b""), grace + HELPER_TIMEOUT)
        .await
        .map(|_| ())
}

/// Runs an installer script. Each output line goes to `on_line` as it arrives.
pub async fn run_installer(
    s: &Session,
    spec: &RunSpec<'_>,
    cancel: &CancellationToken,
    mut on_line: impl FnMut(LogStream, String),
) -> Result<RunOutcome, RunError> {
    let esc = escalation(s)?;
    let interpreter = ptui_types::script::interpreter(spec.script)
        .map_err(|m| KindError::new(ErrorKind::Validation, format!("{}: {m}", spec.name)))?;
    let mut payload = spec.script.as_bytes().to_vec();
    payload.push(0);
    payload.extend_from_slice(&encode_env(&spec.env)?);
    let stdin = esc.stdin(&payload);
    // Only safe characters reach the command line; the name is cosmetic ($0 in messages).
    let name: String = spec
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "/_.-".contains(*c))
        .collect();
    let cmd = format!(
        "{}bash --norc -c '{}{WRAPPER}' provision-tui {} {} {}",
        esc.prefix,
        esc.skip(),
        spec.timeout.as_secs().max(1),
        if name.is_empty() { "installer" } else { &name },
        interpreter.join(" ")
    );
    let mut early: Vec<String> = Vec::new();
    let (outcome, started) = run_in(s, &esc, &cmd, &stdin, spec, cancel, &mut |st, line| {
        if st == LogStream::Stderr && early.len() < 20 {
            early.push(line.clone());
        }
        on_line(st, line)
    })
    .await?;
    // The installer never started: sudo refused, or there is no bash.
    if !started && !outcome.cancelled && !outcome.timed_out && outcome.exit_code != Some(0) {
        let err = early.join(" ");
        let (kind, hint) = if err.contains("sudo") {
            (
                ErrorKind::Auth,
                format!(
                    "; give {} password-less sudo (NOPASSWD), set a sudo password variable \
                     (`server sudo {n} --password-env VAR`), have it asked for \
                     (`server sudo {n} --prompt`) or log in as root",
                    s.target.user,
                    n = s.target.name
                ),
            )
        } else {
            (
                ErrorKind::Configuration,
                "; installers need bash and coreutils on the server".to_string(),
            )
        };
        return Err(KindError::new(
            kind,
            format!(
                "{}: cannot start the installer: {}{hint}",
                s.target.label(),
                err.trim()
            ),
        )
        .into());
    }
    Ok(outcome)
}

async fn run_in(
    s: &Session,
    esc: &Escalation,
    cmd: &str,
    stdin: &[u8],
    spec: &RunSpec<'_>,
    cancel: &CancellationToken,
    on_line: &mut impl FnMut(LogStream, String),
) -> Result<(RunOutcome, bool), RunError> {
    let mut ch = open_exec_staged(s, cmd, stdin).await?;

    let deadline = tokio::time::Instant::now() + spec.timeout + spec.timeout_slack;
    let (mut out, mut err) = (LineSplitter::default(), LineSplitter::default());
    let mut pgid: Option<u32> = None;
    let mut outcome = RunOutcome {
        exit_code: None,
        signal: None,
        cancelled: false,
        timed_out: false,
    };
    let mut killed = false;
    // After a kill, the server closes the channel once the group is gone; never wait forever.
    let mut drain_deadline = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let handle_out =
        |line: String, pgid: &mut Option<u32>, on_line: &mut dyn FnMut(LogStream, String)| {
            if pgid.is_none()
                && let Some(v) = line.strip_prefix(PGID_MARKER)
            {
                *pgid = v.trim().parse().ok();
                return;
            }
            on_line(LogStream::Stdout, line);
        };
    loop {
        tokio::select! {
            msg = ch.wait() => {
                let Some(msg) = msg else { break };
                match msg {
                    ChannelMsg::Data { data } => {
                        for l in out.push(&data) { handle_out(l, &mut pgid, on_line); }
                    }
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        for l in err.push(&data) { on_line(LogStream::Stderr, l); }
                    }
                    ChannelMsg::ExitStatus { exit_status } => outcome.exit_code = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => outcome.signal = Some(format!("{signal_name:?}")),
                    _ => {}
                }
            }
            _ = cancel.cancelled(), if !killed => {
                killed = true;
                outcome.cancelled = true;
                kill_group_of(s, esc, pgid, spec.kill_grace).await;
                drain_deadline = tokio::time::Instant::now() + spec.kill_grace + Duration::from_secs(10);
            }
            _ = tokio::time::sleep_until(deadline), if !killed => {
                killed = true;
                outcome.timed_out = true;
                kill_group_of(s, esc, pgid, spec.kill_grace).await;
                drain_deadline = tokio::time::Instant::now() + spec.kill_grace + Duration::from_secs(10);
            }
            _ = tokio::time::sleep_until(drain_deadline), if killed => {
                tracing::warn!("{}: channel still open after the kill; leaving it", s.target.label());
                let _ = ch.close().await;
                break;
            }
        }
    }
    if let Some(l) = out.finish() {
        handle_out(l, &mut pgid, on_line);
    }
    if let Some(l) = err.finish() {
        on_line(LogStream::Stderr, l);
    }
    Ok((outcome, pgid.is_some()))
}

/// Kills the installer's process group from a second channel. Closing the run channel would
/// kill nothing (the remote process survives it), so we keep reading it until sshd closes it.
async fn kill_group_of(s: &Session, esc: &Escalation, pgid: Option<u32>, grace: Duration) {
    match pgid {
        Some(p) => {
            if let Err(e) = kill_group(s, esc, p, grace).await {
                tracing::warn!(
                    "kill of process group {p} on {} failed: {e}",
                    s.target.label()
                );
            }
        }
        None => tracing::warn!(
            "{}: no process group known yet; only the remote timeout can stop it",
            s.target.label()
        ),
    }
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
