//! Durable jobs: the installer runs on the server under the agent (`agent.sh`), detached from
//! the SSH connection, with its output spooled there. `start` launches it and streams it live
//! in the same exec; `follow` streams it again from stored positions after the client or the
//! connection died; `kill` stops its process group. Each stream ends with the agent's end
//! record; the spool is removed only when the caller says the output is stored.

use super::backlog::Backlog;
use super::connect::Session;
pub use super::ended::Ended;
use super::exec::{Escalation, HELPER_TIMEOUT, encode_env, escalation};
use super::lines::LineSplitter;
use super::shell::Borrowed;
use ptui_types::error::{ErrorKind, KindError};
use ptui_types::job::LogStream;
use ptui_types::secret::Secret;
use russh::ChannelMsg;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The agent, sent on stdin with every request (it is small, and nothing is installed).
pub const AGENT: &str = include_str!("agent.sh");

/// How the agent is run: it reads itself from stdin. `"$HOME"` is expanded by the login
/// shell, before any sudo, so the spool is always in the login user's home.
const BOOT: &str = r#"IFS= read -r -d "" c && eval "$c""#;

/// Positions in the spool's `out` and `err` files up to which the output is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolPos {
    pub out: u64,
    pub err: u64,
}

/// How the job ended on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteEnd {
    /// The installer's exit status (None when none was recorded).
    Exited(Option<u32>),
    /// No spool: the job never started there, or its spool was removed.
    Gone,
    /// The supervisor died without an exit status: the server rebooted or it was killed.
    Lost,
}

/// Why a stream stopped without the job's end.
#[derive(Debug)]
pub enum StreamError {
    /// Nothing was sent (the channel or exec failed first): safe to retry on a new connection.
    NotSent(KindError),
    /// The job may still run on the server, but the stream broke: follow it again.
    Disconnected(KindError),
    /// The request was refused (sudo, no bash, no disk space on the server): final.
    Failed(KindError),
}

impl StreamError {
    pub fn error(&self) -> &KindError {
        match self {
            StreamError::NotSent(e) | StreamError::Disconnected(e) | StreamError::Failed(e) => e,
        }
    }
}

/// Where a job's output goes as it is read.
pub struct Output<'a> {
    /// Each line, with the spool position just past it.
    pub on_line: &'a mut (dyn FnMut(LogStream, String, SpoolPos) + Send),
    /// Values (secrets) a line too long to keep whole is never cut inside.
    pub guards: &'a [Vec<u8>],
    /// Bytes handed to `on_line` and not yet stored: reading pauses while it is over its limit.
    pub backlog: Option<&'a Backlog>,
}

/// What to start.
pub struct DetachedSpec<'a> {
    /// Spool directory name: `[a-z0-9-]+`, unique per job.
    pub key: &'a str,
    pub script: &'a str,
    /// `installer/script.sh`, the script's `$0`.
    pub name: &'a str,
    pub env: Vec<(String, Secret)>,
    /// Env names whose values the agent masks before they reach the spool.
    pub masked: Vec<String>,
    pub timeout: Duration,
    /// Extra client-side wait past `timeout` before we kill from our side.
    pub timeout_slack: Duration,
    pub kill_grace: Duration,
    /// Spools older than this are swept from the server.
    pub spool_max_age: Duration,
}

fn record(out: &mut Vec<u8>, field: &str) {
    out.extend_from_slice(field.as_bytes());
    out.push(0);
}

fn command(esc: &Escalation) -> String {
    format!(
        "{}bash --norc -c '{}{BOOT}' provision-tui \"$HOME\"",
        esc.prefix(),
        esc.skip()
    )
}

/// The request's records after the agent's own text (see `with_agent`).
fn agent_request(mode: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    record(&mut out, mode);
    record(&mut out, key);
    out
}

/// The whole request for an agent started by exec: its text first.
fn with_agent(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(AGENT.len() + body.len() + 1);
    record(&mut out, AGENT);
    out.extend_from_slice(body);
    out
}

fn check_key(key: &str) -> Result<(), KindError> {
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(KindError::new(
            ErrorKind::Validation,
            format!("invalid spool key {key:?}"),
        ));
    }
    Ok(())
}

/// Starts a job detached and streams its output until it ends (or the stream breaks).
pub async fn start(
    s: &Session,
    spec: &DetachedSpec<'_>,
    cancel: &CancellationToken,
    out: Output<'_>,
) -> Result<Ended, StreamError> {
    check_key(spec.key).map_err(StreamError::Failed)?;
    let esc = escalation(s).map_err(StreamError::Failed)?;
    let interpreter = ptui_types::script::interpreter(spec.script).map_err(|m| {
        StreamError::Failed(KindError::new(
            ErrorKind::Validation,
            format!("{}: {m}", spec.name),
        ))
    })?;
    let name: String = spec
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "/_.-".contains(*c))
        .collect();
    let mut req = agent_request("start", spec.key);
    record(&mut req, &spec.timeout.as_secs().max(1).to_string());
    record(&mut req, &spec.kill_grace.as_secs().max(1).to_string());
    record(&mut req, if name.is_empty() { "installer" } else { &name });
    record(
        &mut req,
        &(spec.spool_max_age.as_secs() / 60).max(1).to_string(),
    );
    record(&mut req, &spec.masked.join(" "));
    record(&mut req, &interpreter.len().to_string());
    for part in &interpreter {
        record(&mut req, part);
    }
    record(&mut req, spec.script);
    req.extend_from_slice(&encode_env(&spec.env).map_err(StreamError::Failed)?);
    req.push(0);
    let deadline = tokio::time::Instant::now() + spec.timeout + spec.timeout_slack;
    // Not through the shell when sudo reads a password on stdin.
    let plain_stdin = esc.stdin(&[]).is_empty();
    let (ch, borrowed) = open(s, &esc, &req, plain_stdin).await?;
    let mut stream = Stream::new(spec.key, SpoolPos::default(), out.guards);
    stream.shell = borrowed.as_ref().map(Borrowed::answer_ends);
    let mut ended = stream
        .run(s, ch, cancel, deadline, spec.kill_grace, out)
        .await?;
    ended.borrowed = borrowed;
    Ok(ended)
}

/// Streams a detached job's output from `from` until it ends (or the stream breaks).
pub async fn follow(
    s: &Session,
    key: &str,
    from: SpoolPos,
    cancel: &CancellationToken,
    deadline: tokio::time::Instant,
    kill_grace: Duration,
    out: Output<'_>,
) -> Result<Ended, StreamError> {
    check_key(key).map_err(StreamError::Failed)?;
    let mut req = agent_request("follow", key);
    record(&mut req, &from.out.to_string());
    record(&mut req, &from.err.to_string());
    let plain = Escalation::none();
    let (ch, borrowed) = open(s, &plain, &req, true).await?;
    let mut stream = Stream::new(key, from, out.guards);
    stream.shell = borrowed.as_ref().map(Borrowed::answer_ends);
    let mut ended = stream.run(s, ch, cancel, deadline, kill_grace, out).await?;
    ended.borrowed = borrowed;
    Ok(ended)
}

/// Kills a detached job's process group: TERM, then KILL after `grace`.
pub async fn kill(s: &Session, key: &str, grace: Duration) -> Result<(), KindError> {
    check_key(key)?;
    let esc = escalation(s)?;
    let mut req = agent_request("kill", key);
    record(&mut req, &(grace.as_millis() / 200).max(1).to_string());
    let (mut ch, _) = open(s, &esc, &req, false)
        .await
        .map_err(|e| e.error().clone())?;
    let _ = ch.eof().await;
    let waited = tokio::time::timeout(grace + HELPER_TIMEOUT, async {
        while let Some(msg) = ch.wait().await {
            if matches!(msg, ChannelMsg::Close) {
                break;
            }
        }
    })
    .await;
    waited.map_err(|_| {
        KindError::new(
            ErrorKind::Timeout,
            format!("{}: the kill did not answer in time", s.target.label()),
        )
    })
}

/// Opens an exec channel and sends `stdin`, leaving stdin open (the agent waits for "rm").
/// The agent's channel: a borrowed remote shell of the connection when the server runs one
/// (no login shell per job), else an exec of its own. Not through the shell when sudo reads
/// a password on stdin (sudo's handling of that stream stays exactly as it was tested), nor
/// for a kill (the job's shell is busy with its stream).
async fn open(
    s: &Session,
    esc: &Escalation,
    body: &[u8],
    via_shell: bool,
) -> Result<(russh::Channel<russh::client::Msg>, Option<Borrowed>), StreamError> {
    let cmd = command(esc);
    let cmd = cmd.as_str();
    let fail = |what: &str, e: russh::Error| {
        KindError::new(
            ErrorKind::SshConnect,
            format!("{}: {what}: {e}", s.target.label()),
        )
    };
    if via_shell
        && let Some((ch, borrowed, resident)) = crate::shell::stream(s, cmd, esc.is_none()).await
    {
        let stdin = if resident {
            body.to_vec()
        } else {
            esc.stdin(&with_agent(body))
        };
        ch.data(&stdin[..])
            .await
            .map_err(|e| StreamError::Disconnected(fail("send the request", e)))?;
        return Ok((ch, Some(borrowed)));
    }
    let ch = s
        .handle
        .channel_open_session()
        .await
        .map_err(|e| StreamError::NotSent(fail("open channel", e)))?;
    ch.exec(true, cmd)
        .await
        .map_err(|e| StreamError::NotSent(fail("exec", e)))?;
    ch.data(&esc.stdin(&with_agent(body))[..])
        .await
        .map_err(|e| StreamError::Disconnected(fail("send the request", e)))?;
    Ok((ch, None))
}

const STARTED: &str = "__PTUI_STARTED ";

/// One stream from the agent: lines before the start marker, the spooled output with
/// positions, and the end record.
struct Stream {
    key: String,
    marker: Vec<u8>,
    /// Still waiting for the start marker on stdout, and on stderr.
    awaiting_start: bool,
    head: Vec<u8>,
    err_awaiting_start: bool,
    err_head: Vec<u8>,
    /// Stdout bytes held back because they may begin the end record.
    held: Vec<u8>,
    out: LineSplitter,
    err: LineSplitter,
    /// The end record.
    end: Option<RemoteEnd>,
    /// Stderr's end record (`NUL __PTUI_END_KEY LF`), and stderr bytes held back because
    /// they may begin it.
    err_marker: Vec<u8>,
    err_end: bool,
    err_held: Vec<u8>,
    /// On a borrowed remote shell: the shell's end of the request (the agent exited).
    shell: Option<super::shell::AnswerEnds>,
    end_tail: Vec<u8>,
    early_stderr: Vec<String>,
}

impl Stream {
    fn new(key: &str, from: SpoolPos, guards: &[Vec<u8>]) -> Self {
        Stream {
            key: key.to_string(),
            marker: format!("\0__PTUI_END_{key} ").into_bytes(),
            err_marker: format!("\0__PTUI_END_{key}\n").into_bytes(),
            err_end: false,
            err_held: Vec::new(),
            shell: None,
            awaiting_start: true,
            head: Vec::new(),
            err_awaiting_start: true,
            err_head: Vec::new(),
            held: Vec::new(),
            out: LineSplitter::starting_at(from.out).guarding(guards),
            err: LineSplitter::starting_at(from.err).guarding(guards),
            end: None,
            end_tail: Vec::new(),
            early_stderr: Vec::new(),
        }
    }

    fn pos(&self) -> SpoolPos {
        SpoolPos {
            out: self.out.position(),
            err: self.err.position(),
        }
    }

    fn stdout(
        &mut self,
        mut data: &[u8],
        on_line: &mut (dyn FnMut(LogStream, String, SpoolPos) + Send),
    ) {
        if self.awaiting_start {
            self.head.extend_from_slice(data);
            let want = format!("{STARTED}{}", self.key);
            // Lines before the marker (a login script's noise) are shown, not counted.
            while let Some(nl) = self.head.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.head.drain(..=nl).collect();
                let text = String::from_utf8_lossy(&line[..nl]).trim_end().to_string();
                if text == want {
                    self.awaiting_start = false;
                    let rest = std::mem::take(&mut self.head);
                    self.content(&rest, on_line);
                    return;
                }
                on_line(LogStream::Stdout, text, self.pos());
            }
            // Noise before the marker with no newline is shown in pieces, not held forever.
            if self.head.len() > super::lines::MAX_LINE_BYTES {
                let text = String::from_utf8_lossy(&self.head).into_owned();
                self.head.clear();
                on_line(LogStream::Stdout, text, self.pos());
            }
            return;
        }
        if self.end.is_some() {
            self.end_tail.extend_from_slice(data);
            data = &[];
        }
        self.content(data, on_line);
    }

    fn content(
        &mut self,
        data: &[u8],
        on_line: &mut (dyn FnMut(LogStream, String, SpoolPos) + Send),
    ) {
        if self.end.is_some() {
            return;
        }
        self.held.extend_from_slice(data);
        let buf = std::mem::take(&mut self.held);
        let (text, rest) = match find(&buf, &self.marker) {
            Some(i) => (&buf[..i], Some(&buf[i + self.marker.len()..])),
            None => {
                // Hold a NUL that may begin the marker; the marker has no other NUL.
                let keep = match buf.iter().rposition(|b| *b == 0) {
                    Some(p) if self.marker.starts_with(&buf[p..]) => p,
                    _ => buf.len(),
                };
                self.held = buf[keep..].to_vec();
                (&buf[..keep], None)
            }
        };
        for (line, at) in self.out.push_at(text) {
            let pos = SpoolPos {
                out: at,
                err: self.err.position(),
            };
            on_line(LogStream::Stdout, line, pos);
        }
        if let Some(rest) = rest {
            self.end_tail = rest.to_vec();
            self.end = Some(RemoteEnd::Lost);
            self.parse_end();
        }
    }

    /// Parses `STATE RC\n` once it is complete.
    fn parse_end(&mut self) {
        let Some(nl) = self.end_tail.iter().position(|b| *b == b'\n') else {
            return;
        };
        let text = String::from_utf8_lossy(&self.end_tail[..nl]).to_string();
        let f: Vec<&str> = text.split_whitespace().collect();
        let state = match f.first().copied() {
            Some("ended") => RemoteEnd::Exited(f.get(1).and_then(|v| v.parse().ok())),
            Some("gone") => RemoteEnd::Gone,
            _ => RemoteEnd::Lost,
        };
        self.end = Some(state);
        self.end_tail.clear();
    }

    fn end_complete(&self) -> bool {
        self.end.is_some() && self.end_tail.is_empty()
    }

    /// Stderr up to its end record: what follows it is not the job's.
    fn stderr(
        &mut self,
        data: &[u8],
        on_line: &mut (dyn FnMut(LogStream, String, SpoolPos) + Send),
    ) {
        if self.err_end {
            return;
        }
        self.err_held.extend_from_slice(data);
        let buf = std::mem::take(&mut self.err_held);
        let text = match find(&buf, &self.err_marker) {
            Some(i) => {
                self.err_end = true;
                &buf[..i]
            }
            None => {
                let keep = match buf.iter().rposition(|b| *b == 0) {
                    Some(p) if self.err_marker.starts_with(&buf[p..]) => p,
                    _ => buf.len(),
                };
                self.err_held = buf[keep..].to_vec();
                &buf[..keep]
            }
        };
        self.stderr_content(text, on_line);
    }

    fn stderr_content(
        &mut self,
        data: &[u8],
        on_line: &mut (dyn FnMut(LogStream, String, SpoolPos) + Send),
    ) {
        let rest;
        let data = if self.err_awaiting_start {
            match self.stderr_head(data, on_line) {
                Some(r) => {
                    rest = r;
                    &rest[..]
                }
                None => return,
            }
        } else {
            data
        };
        for (line, at) in self.err.push_at(data) {
            let pos = SpoolPos {
                out: self.out.position(),
                err: at,
            };
            on_line(LogStream::Stderr, line, pos);
        }
    }

    /// Stderr before the start marker (a login script's noise, or sudo's refusal): shown,
    /// never counted. Returns what follows the marker once it came.
    fn stderr_head(
        &mut self,
        data: &[u8],
        on_line: &mut (dyn FnMut(LogStream, String, SpoolPos) + Send),
    ) -> Option<Vec<u8>> {
        self.err_head.extend_from_slice(data);
        let want = format!("{STARTED}{}", self.key);
        while let Some(nl) = self.err_head.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.err_head.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..nl]).trim_end().to_string();
            if text == want {
                self.err_awaiting_start = false;
                return Some(std::mem::take(&mut self.err_head));
            }
            if self.early_stderr.len() < 20 {
                self.early_stderr.push(text.clone());
            }
            on_line(LogStream::Stderr, text, self.pos());
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    async fn run(
        &mut self,
        s: &Session,
        mut ch: russh::Channel<russh::client::Msg>,
        cancel: &CancellationToken,
        deadline: tokio::time::Instant,
        kill_grace: Duration,
        out: Output<'_>,
    ) -> Result<Ended, StreamError> {
        let Output {
            on_line, backlog, ..
        } = out;
        let mut exit_status = None;
        // Reading stops while the store is behind: the SSH window then slows the server.
        let mut paused = false;
        let (mut cancelled, mut timed_out) = (false, false);
        // After the end record the agent closes both streams; stderr may still be in flight
        // until the channel's EOF. Wait for it, not forever.
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let mut stderr_deadline = far;
        let mut eof = false;
        loop {
            // Both streams are complete at the channel's EOF, or at stderr's end record.
            if self.end_complete() && (eof || self.err_end) {
                break;
            }
            tokio::select! {
                msg = ch.wait(), if !paused => {
                    let Some(msg) = msg else { break };
                    match msg {
                        ChannelMsg::Data { data } => {
                            let data = match self.shell.as_mut() {
                                Some(sh) => sh.out.feed(&data),
                                None => data.to_vec(),
                            };
                            self.stdout(&data, on_line);
                            if self.end.is_some() && !self.end_tail.is_empty() {
                                self.parse_end();
                            }
                        }
                        ChannelMsg::ExtendedData { data, ext: 1 } => {
                            let data = match self.shell.as_mut() {
                                Some(sh) => sh.err.feed(&data),
                                None => data.to_vec(),
                            };
                            self.stderr(&data, on_line);
                        }
                        ChannelMsg::ExitStatus { exit_status: c } => exit_status = Some(c),
                        ChannelMsg::Eof => eof = true,
                        ChannelMsg::Close if self.end_complete() => break,
                        _ => {}
                    }
                    // The agent exited on the shell: as good as the channel's EOF.
                    if let Some(sh) = self.shell.as_ref().filter(|sh| sh.out.status().is_some() && sh.err.seen) {
                        eof = true;
                        exit_status = exit_status.or(sh.out.status());
                        if !self.end_complete() {
                            break;
                        }
                    }
                    if self.end_complete() && stderr_deadline == far {
                        stderr_deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                    }
                    paused = backlog.is_some_and(|b| b.over());
                }
                () = async { if let Some(b) = backlog { b.room().await } }, if paused => paused = false,
                _ = cancel.cancelled(), if !cancelled && !timed_out && !self.awaiting_start => {
                    cancelled = true;
                    self.kill_from_side(s, kill_grace).await;
                }
                _ = tokio::time::sleep_until(deadline), if !cancelled && !timed_out && !self.awaiting_start => {
                    timed_out = true;
                    self.kill_from_side(s, kill_grace).await;
                }
                _ = tokio::time::sleep_until(stderr_deadline), if stderr_deadline < far => {
                    tracing::warn!("{}: stderr of the job did not arrive in full", s.target.label());
                    break;
                }
            }
        }
        let Some(end) = self.end.clone().filter(|_| self.end_complete()) else {
            return Err(self.broken(s, exit_status));
        };
        // Unterminated last lines are part of the output too.
        if let Some((line, at)) = self.out.finish_at() {
            on_line(
                LogStream::Stdout,
                line,
                SpoolPos {
                    out: at,
                    err: self.err.position(),
                },
            );
        }
        if let Some((line, at)) = self.err.finish_at() {
            on_line(
                LogStream::Stderr,
                line,
                SpoolPos {
                    out: self.out.position(),
                    err: at,
                },
            );
        }
        Ok(Ended {
            end,
            cancelled,
            timed_out,
            channel: Some(ch),
            borrowed: None,
        })
    }

    async fn kill_from_side(&self, s: &Session, grace: Duration) {
        if let Err(e) = kill(s, &self.key, grace).await {
            tracing::warn!("{}: killing job {} failed: {e}", s.target.label(), self.key);
        }
    }

    /// The stream stopped before the end record.
    fn broken(&self, s: &Session, exit_status: Option<u32>) -> StreamError {
        let label = s.target.label();
        if self.awaiting_start {
            // The agent never started the job: sudo refused, no bash, or no space.
            let err = self.early_stderr.join(" ");
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
                    "; installers need bash, coreutils and setsid on the server, and space in \
                     the login user's home for the job's spool"
                        .to_string(),
                )
            };
            if exit_status.is_some() {
                return StreamError::Failed(KindError::new(
                    kind,
                    format!("{label}: cannot start the installer: {}{hint}", err.trim()),
                ));
            }
            // A borrowed shell of a connection that died unnoticed takes the request without
            // a round trip: nothing says the agent got it. Sending it again is safe (the
            // agent refuses a spool that exists), so it counts as not sent, as a failed exec.
            if self.shell.is_some() {
                return StreamError::NotSent(KindError::new(
                    ErrorKind::SshConnect,
                    format!("{label}: the connection's shell was gone before the job started"),
                ));
            }
        }
        StreamError::Disconnected(KindError::new(
            ErrorKind::SshConnect,
            format!("{label}: the connection broke while following the job"),
        ))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
#[path = "detached_tests.rs"]
mod tests;
