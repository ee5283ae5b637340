//! `import command CMD`: dynamic inventory. The command (run with `sh -c`) prints JSON on
//! stdout; the schema is in docs/INVENTORY.md:
//!
//! ```json
//! {"servers": [{"name": "web-1", "host": "10.0.0.7", "port": 22, "user": "deploy",
//!               "identity": "~/.ssh/id_ed25519", "jump": "bastion", "tags": ["web"], "escalate": true}]}
//! ```
//! Only `name` and `host` are required. A bare array of servers is accepted too.

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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped {
    servers: Vec<DynServer>,
}

/// Parses the command's output. Errors carry the line of the JSON text.
pub fn parse(json: &str, label: &Path) -> Result<Vec<ImportEntry>, ParseError> {
    let trimmed = json.trim_start();
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
            },
            escalate: s.escalate,
            origin: format!("{}[{i}]", label.display()),
        })
        .collect())
}

/// Runs the command with a timeout and parses what it prints.
pub async fn run(cmd: &str, timeout: Duration) -> Result<Vec<ImportEntry>, ParseError> {
    let label = Path::new("(command output)");
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ParseError::new(label, None, format!("cannot run `{cmd}`: {e}")))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            ParseError::new(
                label,
                None,
                format!("`{cmd}` did not finish within {timeout:?}"),
            )
        })?
        .map_err(|e| ParseError::new(label, None, format!("`{cmd}`: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(ParseError::new(
            label,
            None,
            format!("`{cmd}` exited with {}: {}", out.status, err.trim()),
        ));
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| ParseError::new(label, None, "the output is not UTF-8"))?;
    parse(&text, label)
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
}
