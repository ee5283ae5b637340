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
/// The loop goes in the command line (our own code, never a secret): bash reads stdin a byte
/// at a time, the command line it gets whole. `env -u BASH_ENV`: the login shell has read its
/// rc files once; the loop reads none.
fn boot() -> String {
    format!(
        "env -u BASH_ENV bash --norc --noprofile -c '{}' provision-tui",
        LOOP.replace('\'', r"'\''")
    )
}
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
    /// The job agent is defined in it as a function (`__ptui_agent`).
    agent: bool,
    /// The resident commands defined in it (`run_resident`), by the hash of their body.
    defined: std::collections::HashSet<u64>,
}

/// What a repeatable request runs: a script in a subshell, or a resident function's body.
#[derive(Clone, Copy)]
enum Repeatable<'a> {
    Script(&'a str),
    Resident(&'a str),
}

fn body_hash(body: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

/// A resident body as a script for `sh -s`, for a server without the shell.
fn resident_by_exec(body: &str) -> String {
    format!(
        "__ptui_o=\n__ptui_f() {{\n{body}\n}}\n__ptui_f </dev/null 2>/dev/null\n__ptui_rc=$?\n\
         printf '%s' \"$__ptui_o\"\nexit $__ptui_rc\n"
    )
}

/// The command that runs the agent defined in the shell, with the login user's home as `$1`.
const RESIDENT_AGENT: &str = r#"__ptui_agent "$HOME""#;

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
        ch.exec(true, boot())
            .await
            .map_err(|e| ShellError::Broken(format!("exec: {e}")))?;
        let mut ch = ch;
        let mut seen = Vec::new();
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    seen.extend_from_slice(&data);
                    // Noise a login script prints before the loop starts is skipped.
                    if find(&seen, READY).is_some() {
                        return Ok(Shell {
                            ch,
                            agent: false,
                            defined: Default::default(),
                        });
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

    /// Sends one request; returns its nonce.
    async fn request(&mut self, kind: &str, script: &str) -> Result<String, ShellError> {
        let n = nonce();
        let mut req = Vec::with_capacity(script.len() + n.len() + kind.len() + 3);
        for field in [n.as_bytes(), kind.as_bytes(), script.as_bytes()] {
            req.extend_from_slice(field);
            req.push(0);
        }
        self.ch
            .data(&req[..])
            .await
            .map_err(|e| ShellError::Broken(format!("send: {e}")))?;
        Ok(n)
    }

    async fn run(&mut self, what: Repeatable<'_>) -> Result<Captured, ShellError> {
        let n = match what {
            Repeatable::Script(script) => {
                let n = self.request("run", script).await?;
                return self.answer(&n, true).await;
            }
            Repeatable::Resident(body) => {
                let h = body_hash(body);
                let name = format!("__ptui_f_{h:016x}");
                if self.defined.contains(&h) {
                    self.request("fact", &name).await?
                } else {
                    let n = self
                        .request("fact", &format!("{name}() {{\n{body}\n}}\n{name}"))
                        .await?;
                    self.defined.insert(h);
                    n
                }
            }
        };
        // Its stderr is /dev/null: only stdout's end comes.
        self.answer(&n, false).await
    }

    /// Reads the answer to request `n`; `with_err`: and its stderr, up to its own end.
    async fn answer(&mut self, n: &str, with_err: bool) -> Result<Captured, ShellError> {
        let out_mark = format!("\0{n} ").into_bytes();
        let err_mark = format!("\0{n}\n").into_bytes();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut status: Option<Option<u32>> = None;
        let mut err_done = !with_err;
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
        self.repeatable(Repeatable::Script(script), limit).await
    }

    /// Runs `body` as a function resident in the connection's remote shell: defined there by
    /// its first request, run in the shell itself (no fork of its own), its answer written at
    /// once. For the health probe: `body` must be POSIX sh that keeps its variables `local`,
    /// never exits, and leaves its output in `__ptui_o`. Without the shell, it runs by one
    /// exec of `sh -s`, as `run_repeatable` does.
    pub async fn run_resident(&self, body: &str, limit: Duration) -> Result<Captured, KindError> {
        self.repeatable(Repeatable::Resident(body), limit).await
    }

    async fn repeatable(
        &self,
        what: Repeatable<'_>,
        limit: Duration,
    ) -> Result<Captured, KindError> {
        let script = match what {
            Repeatable::Script(s) => s.to_string(),
            Repeatable::Resident(body) => resident_by_exec(body),
        };
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
        match tokio::time::timeout(left, sh.run(what)).await {
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

/// A connection's idle shell for job streams, shared with the jobs that borrow it.
pub(crate) type JobShellSlot = std::sync::Arc<std::sync::Mutex<Option<Shell>>>;

/// A job's stream running on a borrowed shell: the channel the agent speaks on, and how to
/// give the shell back once the agent has exited.
pub(crate) struct Borrowed {
    nonce: String,
    slot: JobShellSlot,
    agent: bool,
}

/// Starts `cmd` (a job agent command line) as a stream on one of the connection's shells,
/// opening one when none is idle. With `resident`, the agent runs as a function defined in the
/// shell instead (the third value says so: the request then leaves out the agent's text).
/// None when the server does not run the shell: the caller execs `cmd` on a channel of its
/// own, as before.
pub(crate) async fn stream(
    s: &Session,
    cmd: &str,
    resident: bool,
) -> Option<(russh::Channel<russh::client::Msg>, Borrowed, bool)> {
    if !enabled() || s.shell_memo() == SHELL_REFUSED {
        return None;
    }
    let idle = s.job_shell.lock().ok().and_then(|mut g| g.take());
    let mut sh = match idle {
        Some(sh) => sh,
        None => match tokio::time::timeout(Duration::from_secs(30), Shell::open(s)).await {
            Ok(Ok(sh)) => {
                s.set_shell_memo(SHELL_WORKS);
                sh
            }
            Ok(Err(ShellError::Refused(why))) => {
                tracing::info!(
                    "{}: no remote shell, one exec per job: {why}",
                    s.target.label()
                );
                s.set_shell_memo(SHELL_REFUSED);
                return None;
            }
            Ok(Err(ShellError::Broken(_))) | Err(_) => return None,
        },
    };
    // The first resident job defines the agent in the same request: no extra round trip.
    let nonce = if !resident {
        sh.request("stream", cmd).await
    } else if sh.agent {
        sh.request("stream", RESIDENT_AGENT).await
    } else {
        let def = format!("__ptui_agent() {{\n{}\n}}", crate::detached::AGENT);
        let n = sh.request("agent", &def).await;
        sh.agent = n.is_ok();
        n
    }
    .ok()?;
    Some((
        sh.ch,
        Borrowed {
            nonce,
            slot: s.job_shell.clone(),
            agent: sh.agent,
        },
        resident,
    ))
}

impl Borrowed {
    /// After the agent exited: reads the shell's answer to the stream request and, when it
    /// came whole, makes the shell idle again for the next job.
    pub(crate) async fn give_back(self, mut ch: russh::Channel<russh::client::Msg>) {
        let out_mark = format!("\0{} ", self.nonce).into_bytes();
        let err_mark = format!("\0{}\n", self.nonce).into_bytes();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let whole = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ch.wait().await {
                    Some(ChannelMsg::Data { data }) => out.extend_from_slice(&data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => err.extend_from_slice(&data),
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return false,
                    Some(_) => continue,
                }
                if out.len() + err.len() > 64 * 1024 {
                    return false;
                }
                if let Some(at) = find(&out, &out_mark)
                    && out[at..].ends_with(b"\n")
                    && find(&err, &err_mark).is_some()
                {
                    return true;
                }
            }
        })
        .await
        .unwrap_or(false);
        if whole
            && let Ok(mut idle) = self.slot.lock()
            && idle.is_none()
        {
            *idle = Some(Shell {
                ch,
                agent: self.agent,
                defined: Default::default(),
            });
            return;
        }
        let _ = ch.close().await;
    }
}

impl Borrowed {
    pub(crate) fn answer_ends(&self) -> AnswerEnds {
        AnswerEnds {
            out: AnswerEnd::new(format!("\0{} ", self.nonce)),
            err: AnswerEnd::new(format!("\0{}\n", self.nonce)),
        }
    }
}

/// The shell's own end of a stream request on stdout and stderr: seeing it means the agent
/// exited (as a channel's EOF would say), for instance when sudo refused before it started.
pub(crate) struct AnswerEnds {
    pub out: AnswerEnd,
    pub err: AnswerEnd,
}

pub(crate) struct AnswerEnd {
    mark: Vec<u8>,
    held: Vec<u8>,
    pub seen: bool,
    /// What follows the mark: the exit status and LF (on stdout).
    after: Vec<u8>,
}

impl AnswerEnd {
    fn new(mark: String) -> Self {
        AnswerEnd {
            mark: mark.into_bytes(),
            held: Vec::new(),
            seen: false,
            after: Vec::new(),
        }
    }

    /// The agent command's exit status, once the whole answer line is in.
    pub fn status(&self) -> Option<u32> {
        let line = self.after.split(|b| *b == b'\n').next()?;
        std::str::from_utf8(line).ok()?.trim().parse().ok()
    }

    /// The bytes of `data` that are the agent's, holding back what may begin the mark.
    pub fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        if self.seen {
            if self.after.len() < 64 {
                self.after.extend_from_slice(data);
            }
            return Vec::new();
        }
        self.held.extend_from_slice(data);
        let buf = std::mem::take(&mut self.held);
        if let Some(at) = find(&buf, &self.mark) {
            self.seen = true;
            self.after = buf[at + self.mark.len()..].to_vec();
            return buf[..at].to_vec();
        }
        let keep = match buf.iter().rposition(|b| *b == 0) {
            Some(p) if self.mark.starts_with(&buf[p..]) => p,
            _ => buf.len(),
        };
        self.held = buf[keep..].to_vec();
        buf[..keep].to_vec()
    }
}
