//! `import ssh-config`: OpenSSH client config via the ssh2-config crate (Include, ProxyJump lists).
//!
//! Every `Host` alias without wildcards or negation becomes a server. `HostName` (with `%h`),
//! `User`, `Port`, the first `IdentityFile` and `ProxyJump` are honoured. A ProxyJump chain
//! `a,b` registers `a` and `b` as servers too, `b` jumping through `a`, and the target through `b`.

use super::{ImportEntry, ParseError, local_user, name_from};
use ptui_types::server::ServerSpec;
use ssh2_config::{ParseRule, SshConfig};
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The home whose `.ssh` relative `Include`s resolve against: the parent of a `.ssh` directory
/// holding the file, else `$HOME` (as OpenSSH does for the user config).
fn home_for(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if dir.file_name().is_some_and(|n| n == ".ssh") => dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(ptui_types::config::home_dir),
        _ => ptui_types::config::home_dir(),
    }
}

const RULES: ParseRule = ParseRule::ALLOW_UNKNOWN_FIELDS.union(ParseRule::ALLOW_UNSUPPORTED_FIELDS);

fn parse_text(text: &str, home: &Path) -> Result<SshConfig, ssh2_config::SshParserError> {
    SshConfig::default()
        .home_dir(home)
        .parse(&mut BufReader::new(text.as_bytes()), RULES)
}

/// Parses the file; on error, finds the first line whose prefix fails (the parser gives none).
pub fn load(path: &Path) -> Result<SshConfig, ParseError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ParseError::new(path, None, format!("cannot read: {e}")))?;
    let home = home_for(path);
    match parse_text(&text, &home) {
        Ok(c) => Ok(c),
        Err(e) => {
            let lines: Vec<&str> = text.lines().collect();
            let line =
                (1..=lines.len()).find(|&n| parse_text(&lines[..n].join("\n"), &home).is_err());
            Err(ParseError::new(path, line, e.to_string()))
        }
    }
}

/// A `[user@]host[:port]` (or `ssh://…`) ProxyJump hop.
#[derive(Debug, Clone, PartialEq)]
struct Hop {
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

fn parse_hop(s: &str) -> Option<Hop> {
    let s = s.strip_prefix("ssh://").unwrap_or(s);
    let (user, rest) = match s.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, s),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (h, after) = inner.split_once(']')?;
        (
            h.to_string(),
            after.strip_prefix(':').and_then(|p| p.parse().ok()),
        )
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p.parse().ok()?)),
            _ => (rest.to_string(), None),
        }
    };
    (!host.is_empty()).then_some(Hop { user, host, port })
}

fn is_literal(pattern: &str) -> bool {
    !pattern.is_empty() && !pattern.contains(['*', '?', '!'])
}

struct Ctx<'a> {
    cfg: &'a SshConfig,
    aliases: Vec<String>,
    origin: String,
    out: Vec<ImportEntry>,
}

impl Ctx<'_> {
    /// The server spec for an alias or hop host, as OpenSSH would resolve it.
    fn spec_for(
        &self,
        name: &str,
        alias: &str,
        user: Option<String>,
        port: Option<u16>,
    ) -> ServerSpec {
        let p = self.cfg.query(alias);
        let host = p
            .host_name
            .clone()
            .map(|h| h.replace("%h", alias).replace("%%", "%"))
            .unwrap_or_else(|| alias.to_string());
        ServerSpec {
            name: name.to_string(),
            host,
            port: port.or(p.port).unwrap_or(22),
            user: user.or(p.user.clone()).unwrap_or_else(local_user),
            identity: p
                .identity_file
                .as_ref()
                .and_then(|v| v.first())
                .map(|p| p.display().to_string()),
            jump: None,
            tags: vec!["ssh-config".into()],
            password_env: None,
            site: None,
        }
    }

    /// The ProxyJump list of an alias, `none` meaning none.
    fn jumps_of(&self, alias: &str) -> Vec<String> {
        match self.cfg.query(alias).proxy_jump {
            Some(v) if !v.iter().any(|j| j.eq_ignore_ascii_case("none")) => v,
            _ => Vec::new(),
        }
    }

    /// Registers (or reuses) the servers of a jump chain; returns the last hop's name.
    fn chain(&mut self, hops: &[String], depth: usize) -> Result<Option<String>, String> {
        if depth > 8 {
            return Err("ProxyJump chain is longer than 8 or loops".into());
        }
        let mut prev: Option<String> = None;
        for (i, raw) in hops.iter().enumerate() {
            let hop = parse_hop(raw).ok_or_else(|| format!("cannot read ProxyJump hop {raw:?}"))?;
            let plain = hop.user.is_none() && hop.port.is_none();
            let mut name = if plain {
                name_from(&hop.host)
            } else {
                name_from(raw)
            };
            // The first hop is reached as its own config entry says (its own ProxyJump included).
            let jump = if i == 0 {
                let own = self.jumps_of(&hop.host);
                if own.is_empty() {
                    None
                } else {
                    self.chain(&own, depth + 1)?
                }
            } else {
                prev.clone()
            };
            let mut spec = self.spec_for(&name, &hop.host, hop.user.clone(), hop.port);
            spec.jump = jump;
            spec.tags.push("jump-host".into());
            // A hop reached differently than the server of the same name: give it its own name.
            if let Some(existing) = self.out.iter().find(|e| e.spec.name == name)
                && existing.spec.jump != spec.jump
            {
                name = format!("{name}.via.{}", spec.jump.as_deref().unwrap_or("direct"));
                spec.name = name.clone();
            }
            if !self.out.iter().any(|e| e.spec.name == name) {
                self.out.push(ImportEntry {
                    spec,
                    escalate: None,
                    origin: format!("{} (ProxyJump {raw})", self.origin),
                });
            } else if let Some(e) = self.out.iter_mut().find(|e| e.spec.name == name)
                && !e.spec.tags.iter().any(|t| t == "jump-host")
            {
                e.spec.tags.push("jump-host".into());
            }
            prev = Some(name);
        }
        Ok(prev)
    }
}

/// (alias, why it was not imported)
pub type Skipped = Vec<(String, String)>;

/// Reads the file and returns the entries plus skipped aliases with their reason.
pub fn entries(path: &Path) -> Result<(Vec<ImportEntry>, Skipped), ParseError> {
    let cfg = load(path)?;
    let origin = path.display().to_string();
    let mut aliases = Vec::new();
    let mut skipped = Vec::new();
    for h in cfg.get_hosts() {
        for clause in &h.pattern {
            if clause.negated || !is_literal(&clause.pattern) {
                if clause.pattern != "*" {
                    skipped.push((
                        clause.pattern.clone(),
                        "a pattern, not a host (wildcards or negation)".into(),
                    ));
                }
                continue;
            }
            if !aliases.contains(&clause.pattern) {
                aliases.push(clause.pattern.clone());
            }
        }
    }
    let mut ctx = Ctx {
        cfg: &cfg,
        aliases: aliases.clone(),
        origin: origin.clone(),
        out: Vec::new(),
    };
    for alias in &ctx.aliases.clone() {
        let name = name_from(alias);
        let mut spec = ctx.spec_for(&name, alias, None, None);
        let hops = ctx.jumps_of(alias);
        match ctx.chain(&hops, 0) {
            Ok(j) => spec.jump = j,
            Err(why) => {
                skipped.push((alias.clone(), why));
                continue;
            }
        }
        if let Some(existing) = ctx.out.iter_mut().find(|e| e.spec.name == name) {
            // Already registered as a hop: the alias's own entry is the same server.
            if existing.spec.jump == spec.jump {
                existing.origin = format!("{origin} (Host {alias})");
                continue;
            }
        }
        ctx.out.push(ImportEntry {
            spec,
            escalate: None,
            origin: format!("{origin} (Host {alias})"),
        });
    }
    Ok((ctx.out, skipped))
}

/// What an ssh-config import will apply: its label, the entries, and a report holding the
/// skipped `Host` patterns. New servers start as `pending_setup`.
pub fn plan(path: &Path) -> Result<(String, Vec<ImportEntry>, super::ImportReport), ParseError> {
    let (entries, skipped) = entries(path)?;
    let mut report = super::ImportReport::default();
    for (alias, why) in skipped {
        report.skip(&alias, &path.display().to_string(), why);
    }
    Ok((format!("ssh-config {}", path.display()), entries, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops() {
        assert_eq!(
            parse_hop("admin@bastion:2222"),
            Some(Hop {
                user: Some("admin".into()),
                host: "bastion".into(),
                port: Some(2222)
            })
        );
        assert_eq!(parse_hop("b").map(|h| h.port), Some(None));
        assert_eq!(parse_hop("[::1]:22").map(|h| h.host), Some("::1".into()));
        assert_eq!(parse_hop("ssh://u@h:23").map(|h| h.port), Some(Some(23)));
        assert_eq!(parse_hop("h:notaport"), None);
    }
}
