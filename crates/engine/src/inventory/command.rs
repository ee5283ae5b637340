//! `import command CMD`: dynamic inventory. The command (run with `sh -c`) prints JSON on
//! stdout; the schema is in docs/INVENTORY.md:
//!
//! ```json
//! {"servers": [{"name": "web-1", "host": "10.0.0.7", "port": 22, "user": "deploy",
//!               "identity": "~/.ssh/id_ed25519", "jump": "bastion", "tags": ["web"], "escalate": true}]}
//! ```
//! Only `name` and `host` are required. A bare array of servers is accepted too, and so is
//! Ansible's dynamic-inventory JSON (`ansible-inventory -i aws_ec2.yml --list`), told apart by
//! its shape (see `ansible::json`).

use super::{ImportEntry, ParseError, local_user};
use ptui_types::server::ServerSpec;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynServer {
    pub name: String,
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default)]
    pub jump: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Ansible-style `become`.
    #[serde(default, rename = "become")]
    pub escalate: Option<bool>,
    /// The site whose bastions reach the server (default: `default`).
    #[serde(default)]
    pub site: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped {
    servers: Vec<DynServer>,
}

/// Parses the command's output. Errors carry the line of the JSON text.
pub fn parse(json: &str, label: &Path) -> Result<Vec<ImportEntry>, ParseError> {
    let trimmed = json.trim_start();
    if trimmed.starts_with('{') {
        // Ansible's `--list` JSON, told apart by its shape (no `servers` key).
        let doc: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| ParseError::new(label, Some(e.line()), e.to_string()))?;
        if super::ansible::json::looks_like_ansible(&doc) {
            return super::ansible::json::entries(&doc, label);
        }
    }
    let servers = if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<DynServer>>(json)
    } else {
        serde_json::from_str::<Wrapped>(json).map(|w| w.servers)
    }
    .map_err(|e| ParseError::new(label, Some(e.line()), e.to_string()))?;
    Ok(servers
        .into_iter()
        .enumerate()
        .map(|(i, s)| ImportEntry {
            spec: ServerSpec {
                name: s.name,
                host: s.host,
                port: s.port.unwrap_or(22),
                user: s.user.unwrap_or_else(local_user),
                identity: s.identity,
                jump: s.jump,
                tags: s.tags,
                password_env: None,
                site: s.site,
            },
            escalate: s.escalate,
            origin: format!("{}[{i}]", label.display()),
        })
        .collect())
}

/// The most the command may print on stdout. An inventory of thousands of servers is a few
/// MiB; past this the command is broken (or `cat /dev/zero`), and buffering it would eat memory.
pub const MAX_OUTPUT: usize = 16 << 20;
/// How much of the command's stderr an error shows: the end, where the reason usually is.
const STDERR_TAIL: usize = 4096;

/// Runs the command with a timeout and parses what it prints. The command runs in its own
/// process group, and the whole group is killed when the timeout or the output cap is hit,
/// so nothing it started outlives it (except what left the group itself, with `setsid`).
pub async fn run(cmd: &str, timeout: Duration) -> Result<Vec<ImportEntry>, ParseError> {
    run_capped(cmd, timeout, MAX_OUTPUT).await
}

async fn run_capped(
    cmd: &str,
    timeout: Duration,
    cap: usize,
) -> Result<Vec<ImportEntry>, ParseError> {
    let label = Path::new("(command output)");
    let fail = |msg: String| ParseError::new(label, None, msg);
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run `{cmd}`: {e}")))?;
    let group = child.id();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill_group(group);
        return Err(fail(format!("`{cmd}`: no pipe to read its output")));
    };
    // Its own task: a command that fills stderr must not block on a pipe nobody reads.
    let stderr = tokio::spawn(read_tail(stderr, STDERR_TAIL));
    let finished = tokio::time::timeout(timeout, async {
        let out = read_capped(stdout, cap).await?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((out, status))
    })
    .await;
    let (out, status) = match finished {
        Ok(Ok((Some(out), status))) => (out, status),
        Ok(Ok((None, _))) => {
            kill_group(group);
            return Err(fail(format!(
                "`{cmd}` printed more than {} MiB; nothing imported (an inventory is far \
                 smaller: check what the command prints){}",
                cap >> 20,
                tail_note(stderr).await
            )));
        }
        Ok(Err(e)) => {
            kill_group(group);
            return Err(fail(format!("`{cmd}`: {e}")));
        }
        Err(_) => {
            kill_group(group);
            return Err(fail(format!(
                "`{cmd}` did not finish within {timeout:?} (it and its children were killed; \
                 raise --timeout if it is just slow){}",
                tail_note(stderr).await
            )));
        }
    };
    if !status.success() {
        return Err(fail(format!(
            "`{cmd}` exited with {status}{}",
            tail_note(stderr).await
        )));
    }
    let text = String::from_utf8(out).map_err(|_| fail("the output is not UTF-8".into()))?;
    parse(&text, label)
}

/// SIGKILL to the command's process group (its id: it was made the group's leader).
fn kill_group(group: Option<u32>) {
    if let Some(pgid) = group.and_then(|g| i32::try_from(g).ok()).filter(|g| *g > 0) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Everything `r` yields, or `None` as soon as it passes `cap` bytes.
async fn read_capped(
    mut r: impl tokio::io::AsyncRead + Unpin,
    cap: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(Some(out));
        }
        if out.len() + n > cap {
            return Ok(None);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The last `keep` bytes `r` yields before it ends.
async fn read_tail(mut r: impl tokio::io::AsyncRead + Unpin, keep: usize) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut tail = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > keep {
            tail.drain(..tail.len() - keep);
        }
    }
    tail
}

/// `: <stderr tail>` for an error message, or nothing. Waits briefly: a process that left
/// the group may still hold the pipe open.
async fn tail_note(stderr: tokio::task::JoinHandle<Vec<u8>>) -> String {
    let tail = match tokio::time::timeout(Duration::from_secs(1), stderr).await {
        Ok(Ok(t)) => t,
        _ => return String::new(),
    };
    let text = String::from_utf8_lossy(&tail);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!("; its stderr ends with: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema() {
        let e = parse(
            r#"{"servers":[{"name":"a","host":"h","tags":["x"],"become":true}]}"#,
            Path::new("o"),
        )
        .unwrap();
        assert_eq!(e[0].spec.port, 22);
        assert_eq!(e[0].escalate, Some(true));
        assert_eq!(
            parse(r#"[{"name":"a","host":"h"}]"#, Path::new("o"))
                .unwrap()
                .len(),
            1
        );
        let err = parse(
            "{\"servers\":[\n{\"name\":\"a\",\"hots\":\"h\"}]}",
            Path::new("o"),
        )
        .unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn ansible_json_is_told_apart_by_its_shape() {
        // An inventory script's style: a group as a bare list of hosts, vars in _meta.
        let e = parse(
            r#"{"web": ["w1", "w2"], "db": {"hosts": ["d1"], "vars": {"ansible_port": 2200}},
                "_meta": {"hostvars": {"w1": {"ansible_host": "10.0.0.1"}}}}"#,
            Path::new("o"),
        )
        .unwrap();
        let names: Vec<&str> = e.iter().map(|x| x.spec.name.as_str()).collect();
        assert_eq!(names, ["d1", "w1", "w2"]);
        assert_eq!(e[0].spec.port, 2200);
        assert_eq!(e[1].spec.host, "10.0.0.1");
        assert_eq!(e[2].spec.tags, ["web"]);
        // Our own schema keeps its strictness: an unknown key is still an error.
        let err = parse(r#"{"servers": [], "extra": 1}"#, Path::new("o")).unwrap_err();
        assert!(err.message.contains("unknown field `extra`"), "{err}");
    }

    #[tokio::test]
    async fn output_past_the_cap_is_refused_and_stderr_is_bounded() {
        let err = run_capped(
            "echo oops >&2; cat /dev/zero",
            Duration::from_secs(20),
            1 << 20,
        )
        .await
        .unwrap_err();
        assert!(err.message.contains("more than 1 MiB"), "{err}");
        assert!(err.message.contains("oops"), "stderr tail shown: {err}");
        let err = run_capped(
            "head -c 100000 /dev/zero | tr '\\0' x >&2; echo END >&2; exit 3",
            Duration::from_secs(20),
            1 << 20,
        )
        .await
        .unwrap_err();
        assert!(err.message.ends_with("END"), "{err}");
        assert!(
            err.message.len() < STDERR_TAIL + 200,
            "bounded: {}",
            err.message.len()
        );
        let ok = run_capped(
            r#"echo '[{"name":"a","host":"h"}]'"#,
            Duration::from_secs(20),
            1 << 20,
        )
        .await
        .unwrap();
        assert_eq!(ok.len(), 1);
    }
}
