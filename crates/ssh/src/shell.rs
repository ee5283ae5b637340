//! One long-lived remote shell per pooled connection for short, repeatable commands (health
//! checks): the login shell and its rc files run once per connection, not once per command.
//! The remote side is `shell.sh`, sent on stdin; the framing is described there. A server
//! that does not run it (a forced command, a restricted shell, no bash) is remembered per
//! server and gets one exec per command, as before.

use super::connect::Session;
use super::exec::{Captured, exec_capture_timeout};
use ptui_types::error::{ErrorKind, KindError};
use russh::ChannelMsg;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const LOOP: &str = include_str!("shell.sh");
const READY: &[u8] = b"__PTUI_SHELL_READY 1\n";
const BOOT: &str = r#"env -u BASH_ENV bash --norc --noprofile -c 'IFS= read -r -d "" c && eval "$c"' provision-tui"#;
/// A short command's answer is small; a bigger one ends the shell rather than the memory.
const MAX_ANSWER: usize = 8 << 20;

/// What a server's connection is known to do with the remote shell (0: not tried yet).
pub(crate) const SHELL_WORKS: u8 = 1;
pub(crate) const SHELL_REFUSED: u8 = 2;

static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// `PROVISION_TUI_REMOTE_SHELL=0` turns the remote shell off (one exec per command).
fn enabled() -> bool {
    std::env::var("PROVISION_TUI_REMOTE_SHELL").map_or(true, |v| v != "0")
}

pub(crate) struct Shell {
    ch: russh::Channel<russh::client::Msg>,
}

enum ShellError {
    /// The server does not run the loop: remembered, and commands go by exec.
    Refused(String),
    /// The shell died or misbehaved mid-request: the request may or may not have run.
    Broken(String),
}

fn nonce() -> String {
    let n = REQUESTS.fetch_add(1, Ordering::Relaxed);
    format!("ptui{:016x}{n:x}", rand::random::<u64>())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Shell {
    async fn open(s: &Session) -> Result<Shell, ShellError> {
        let ch = s
            .handle
            .channel_open_session()
            .await
            .map_err(|e| ShellError::Broken(format!("open channel: {e}")))?;
        ch.exec(true, BOOT)
            .await
            .map_err(|e| ShellError::Broken(format!("exec: {e}")))?;
        let mut boot = LOOP.as_bytes().to_vec();
        boot.push(0);
        ch.data(&boot[..])
            .await
            .map_err(|e| ShellError::Broken(format!("send: {e}")))?;
        let mut ch = ch;
        let mut seen = Vec::new();
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    seen.extend_from_slice(&data);
                    // Noise a login script prints before the loop starts is skipped.
                    if find(&seen, READY).is_some() {
                        return Ok(Shell { ch });
                    }
                    if seen.len() > 64 * 1024 {
                        break;
                    }
                }
                ChannelMsg::Eof | ChannelMsg::Close | ChannelMsg::ExitStatus { .. } => break,
                _ => {}
            }
        }
        let said = String::from_utf8_lossy(&seen[..seen.len().min(200)]).into_owned();
        Err(ShellError::Refused(format!(
            "the server ran something else (a forced command or a restricted shell?): {:?}",
            said.trim()
        )))
    }

    async fn run(&mut self, script: &str) -> Result<Captured, ShellError> {
        let n = nonce();
        let mut req = Vec::with_capacity(script.len() + n.len() + 2);
        req.extend_from_slice(n.as_bytes());
        req.push(0);
        req.extend_from_slice(script.as_bytes());
        req.push(0);
        self.ch
            .data(&req[..])
            .await
            .map_err(|e| ShellError::Broken(format!("send: {e}")))?;
        let out_mark = format!("\0{n} ").into_bytes();
        let err_mark = format!("\0{n}\n").into_bytes();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut status: Option<Option<u32>> = None;
        let mut err_done = false;
        while status.is_none() || !err_done {
            let Some(msg) = self.ch.wait().await else {
                return Err(ShellError::Broken("the shell's channel closed".into()));
            };
            match msg {
                ChannelMsg::Data { data } => out.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => err.extend_from_slice(&data),
                ChannelMsg::Eof | ChannelMsg::Close | ChannelMsg::ExitStatus { .. } => {
                    return Err(ShellError::Broken("the shell ended mid-request".into()));
                }
                _ => continue,
            }
            if out.len() + err.len() > MAX_ANSWER {
                return Err(ShellError::Broken("the answer passed 8 MiB".into()));
            }
            if status.is_none()
                && let Some(at) = find(&out, &out_mark)
                && let Some(nl) = out[at + out_mark.len()..].iter().position(|b| *b == b'\n')
            {
                let rc = &out[at + out_mark.len()..at + out_mark.len() + nl];
                status = Some(std::str::from_utf8(rc).ok().and_then(|t| t.parse().ok()));
                if at + out_mark.len() + nl + 1 != out.len() {
                    return Err(ShellError::Broken("output after the answer's end".into()));
                }
                out.truncate(at);
            }
            if !err_done && let Some(at) = find(&err, &err_mark) {
                err.truncate(at);
                err_done = true;
            }
        }
        Ok(Captured {
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            exit_code: status.flatten(),
            signal: None,
        })
    }
}

impl Session {
    /// Runs `script` (POSIX shell) on the server within `limit` and collects its output,
    /// through the connection's remote shell when the server allows it, else by one exec of
    /// `sh -s`. Only for commands that are safe to run twice: a request caught in a shell
    /// that died is run again by exec.
    pub async fn run_repeatable(
        &self,
        script: &str,
        limit: Duration,
    ) -> Result<Captured, KindError> {
        let by_exec = || exec_capture_timeout(self, "sh -s", script.as_bytes(), limit);
        if !enabled() || script.contains('\0') || self.shell_memo() == SHELL_REFUSED {
            return by_exec().await;
        }
        let timed_out = || {
            KindError::new(
                ErrorKind::Timeout,
                format!(
                    "{}: no answer within {}s",
                    self.target.label(),
                    limit.as_secs()
                ),
            )
        };
        let started = tokio::time::Instant::now();
        // One request at a time per shell; concurrent ones queue (each costs a fork there,
        // where an exec would cost a session and a login shell, and sshd limits sessions).
        let Ok(mut slot) = tokio::time::timeout(limit, self.shell.lock()).await else {
            return Err(timed_out());
        };
        if slot.is_none() {
            match tokio::time::timeout(limit, Shell::open(self)).await {
                Ok(Ok(sh)) => {
                    self.set_shell_memo(SHELL_WORKS);
                    *slot = Some(sh);
                }
                Ok(Err(ShellError::Refused(why))) => {
                    tracing::info!(
                        "{}: no remote shell, one exec per command: {why}",
                        self.target.label()
                    );
                    self.set_shell_memo(SHELL_REFUSED);
                    drop(slot);
                    return by_exec().await;
                }
                Ok(Err(ShellError::Broken(why))) => {
                    tracing::debug!("{}: remote shell not started: {why}", self.target.label());
                    drop(slot);
                    return by_exec().await;
                }
                Err(_) => return Err(timed_out()),
            }
        }
        let Some(sh) = slot.as_mut() else {
            return by_exec().await;
        };
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(timed_out());
        }
        match tokio::time::timeout(left, sh.run(script)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(ShellError::Broken(why) | ShellError::Refused(why))) => {
                tracing::info!(
                    "{}: remote shell lost ({why}); running the command by exec",
                    self.target.label()
                );
                *slot = None;
                drop(slot);
                by_exec().await
            }
            Err(_) => {
                // The command may still run there: this shell is not reused.
                *slot = None;
                Err(timed_out())
            }
        }
    }
}
