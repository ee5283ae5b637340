//! Everything the CLI prints goes through here, so no print can forget what a hostile server
//! could put in its output or in stored fields. Text is shown with
//! `ptui_types::sanitize::terminal_text` (controls visible, never emitted; carriage-return
//! progress as its final state); `--json` with `sanitize::json_text` (DEL and C1 escaped).
//! A closed pipe (`provision-tui logs 1 | head -1`) ends the process quietly with
//! [`super::exit::BROKEN_PIPE`], as SIGPIPE ends other Unix tools. We do not restore SIGPIPE's
//! default action instead: it would also kill the process when a notification command or an
//! inventory command closes its stdin early.

use super::exit;
use ptui_types::sanitize::{json_text, terminal_line, terminal_text};
use std::io::{ErrorKind, Write};

/// `println!` for the CLI: formats, sanitises and writes a line to stdout.
macro_rules! outln {
    () => { $crate::cli::out::stdout_text("\n") };
    ($($arg:tt)*) => { $crate::cli::out::stdout_text(&format!("{}\n", format_args!($($arg)*))) };
}

/// `print!` for the CLI: formats, sanitises and writes to stdout.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out::stdout_text(&format!($($arg)*)) };
}

/// `eprintln!` for the CLI: formats, sanitises and writes a line to stderr.
macro_rules! errln {
    () => { $crate::cli::out::stderr_text("\n") };
    ($($arg:tt)*) => { $crate::cli::out::stderr_text(&format!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` for the CLI (a prompt): formats, sanitises and writes to stderr.
macro_rules! err {
    ($($arg:tt)*) => { $crate::cli::out::stderr_text(&format!($($arg)*)) };
}

pub(crate) use {err, errln, out, outln};

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Writes and flushes; a closed pipe ends the process quietly, any other failure on stdout
/// ends it with an error on stderr (stderr's own failures have nowhere to go).
fn write_bytes(stream: Stream, bytes: &[u8]) {
    let result = match stream {
        Stream::Stdout => {
            let mut w = std::io::stdout().lock();
            w.write_all(bytes).and_then(|()| w.flush())
        }
        Stream::Stderr => {
            let mut w = std::io::stderr().lock();
            w.write_all(bytes).and_then(|()| w.flush())
        }
    };
    match (result, stream) {
        (Ok(()), _) => {}
        (Err(e), _) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(exit::BROKEN_PIPE),
        (Err(e), Stream::Stdout) => {
            let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
            std::process::exit(exit::ERROR);
        }
        (Err(_), Stream::Stderr) => {}
    }
}

/// `error: ` and the report on stderr; the report is sanitised on its own first, so a `\r`
/// in quoted server output cannot hide the `error: ` before it.
pub fn error(report: impl std::fmt::Display) {
    let report = format!("{report:#}");
    stderr_text(&format!("error: {}\n", terminal_text(&report)));
}

/// Prints why the engine refused a request; returns the exit code (18 for inputs, else 1).
pub fn request_error(e: &ptui_engine::RequestError) -> i32 {
    error(e);
    match e {
        ptui_engine::RequestError::Inputs { .. } => {
            ptui_types::error::ErrorKind::Validation.cli_exit_code()
        }
        ptui_engine::RequestError::Invalid(_) => exit::ERROR,
    }
}

/// Text to stdout, sanitised.
pub fn stdout_text(s: &str) {
    write_bytes(Stream::Stdout, terminal_text(s).as_bytes());
}

/// Text to stderr, sanitised.
pub fn stderr_text(s: &str) {
    write_bytes(Stream::Stderr, terminal_text(s).as_bytes());
}

/// One compact JSON document and a newline on stdout (one event per line).
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<()> {
    let mut s = serde_json::to_string(value)?;
    s.push('\n');
    write_bytes(Stream::Stdout, json_text(&s).as_bytes());
    Ok(())
}

/// One indented JSON document and a newline on stdout.
pub fn json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<()> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    write_bytes(Stream::Stdout, json_text(&s).as_bytes());
    Ok(())
}

/// One log line as a JSON event (`install --json`, `logs --json`).
pub fn json_log_line(l: &ptui_types::job::LogLine) -> serde_json::Result<()> {
    json(
        &serde_json::json!({"event": "log", "job_id": l.job_id, "seq": l.seq, "stream": l.stream, "ts": l.ts, "text": l.text}),
    )
}

/// Redraws a block of lines on stderr in place: up `previous` lines, clear to the end, then
/// each line sanitised as one row. The only escape codes the CLI writes are these.
pub fn redraw_stderr(previous: u16, lines: &[String]) {
    use crossterm::{cursor, queue, terminal};
    let mut buf: Vec<u8> = Vec::new();
    if previous > 0 {
        let _ = queue!(buf, cursor::MoveUp(previous));
    }
    let _ = queue!(buf, terminal::Clear(terminal::ClearType::FromCursorDown));
    for l in lines {
        buf.extend_from_slice(terminal_line(l).as_bytes());
        buf.push(b'\n');
    }
    write_bytes(Stream::Stderr, &buf);
}

/// Asks for a secret on the terminal without echo; the prompt is sanitised (it quotes
/// manifest labels and stored logins).
pub fn prompt_password(prompt: &str) -> std::io::Result<String> {
    rpassword::prompt_password(terminal_line(prompt).as_ref())
}
