//! A PostgreSQL URL plus libpq's environment, as libpq reads them: `PGHOST`, `PGPORT`,
//! `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGPASSFILE` (else `~/.pgpass`, ignored unless 0600),
//! `PGSSLMODE`, `PGSSLROOTCERT`; `sslmode` as libpq spells it (disable, allow, prefer,
//! require, verify-ca, verify-full). The password never reaches a message: `shown` is the URL
//! with it replaced by `***`.

use super::pg::Target;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};

pub use ptui_types::config::is_postgres_url;

/// The URL with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut shown = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!(
                "{}{masked}@{}{}",
                &url[..scheme_end + 3],
                &authority[at + 1..],
                &rest[authority_end..]
            )
        }
        None => url.to_string(),
    };
    // `?password=` is allowed too.
    if let Some(q) = shown.find('?') {
        let (head, query) = shown.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k == "password" => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        shown = format!("{head}{}", query.join("&"));
    }
    shown
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Takes `sslmode` and `sslrootcert` out of the query string (tokio-postgres knows only three
/// modes, and no root certificate).
fn split_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let Some(q) = url.find('?') else {
        return (url.to_string(), None, None);
    };
    let (mut mode, mut root) = (None, None);
    let kept: Vec<&str> = url[q + 1..]
        .split('&')
        .filter(|kv| match kv.split_once('=') {
            Some(("sslmode", v)) => {
                mode = Some(v.to_string());
                false
            }
            Some(("sslrootcert", v)) => {
                root = Some(v.to_string());
                false
            }
            _ => !kv.is_empty(),
        })
        .collect();
    let base = if kept.is_empty() {
        url[..q].to_string()
    } else {
        format!("{}?{}", &url[..q], kept.join("&"))
    };
    (base, mode, root)
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// One pgpass line's field: `*` matches anything; `\:` and `\\` are escapes.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(last)) = (chars.next(), fields.last_mut()) {
                    last.push(n);
                }
            }
            ':' => fields.push(String::new()),
            c => {
                if let Some(last) = fields.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    fields
}

/// The password a pgpass file gives for this host, port, database and user.
pub fn pgpass_lookup(file: &Path, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "{} is readable by others and is ignored, as libpq does: chmod 0600 it",
            file.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let port = port.to_string();
    let wanted = [host, port.as_str(), db, user];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(pgpass_fields)
        .filter(|f| f.len() == 5)
        .find(|f| {
            f.iter()
                .zip(wanted)
                .all(|(have, want)| have == "*" || have == want)
        })
        .map(|f| f[4].clone())
}

/// The connection settings for `url`, with libpq's environment filling what it leaves out.
pub fn resolve(url: &str) -> Result<Target, String> {
    resolve_with(url, None)
}

/// As [`resolve`], with a pgpass file given instead of `PGPASSFILE` (the tests' own server).
pub fn resolve_with(url: &str, pgpass: Option<&Path>) -> Result<Target, String> {
    let shown = redact(url);
    let (base, mode, root) = split_tls_params(url);
    let mut config = tokio_postgres::Config::from_str(&base)
        .map_err(|e| format!("{shown} is not a PostgreSQL URL libpq would accept: {e}"))?;
    if config.get_hosts().is_empty() {
        match env("PGHOST") {
            Some(h) => {
                config.host(&h);
            }
            None => {
                config.host("localhost");
            }
        }
    }
    if config.get_ports().is_empty() {
        let port = match env("PGPORT") {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("PGPORT={p} is not a port number"))?,
            None => 5432,
        };
        config.port(port);
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".into());
        config.user(&user);
    }
    let user = config.get_user().unwrap_or("postgres").to_string();
    if config.get_dbname().is_none() {
        config.dbname(env("PGDATABASE").unwrap_or_else(|| user.clone()));
    }
    if config.get_password().is_none() {
        if let Some(p) = env("PGPASSWORD") {
            config.password(p);
        } else {
            let file = match pgpass {
                Some(f) => f.to_path_buf(),
                None => env("PGPASSFILE").map_or_else(|| home().join(".pgpass"), PathBuf::from),
            };
            let host = match config.get_hosts().first() {
                Some(Host::Tcp(h)) => h.clone(),
                _ => "localhost".to_string(),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            let db = config.get_dbname().unwrap_or("").to_string();
            if let Some(p) = pgpass_lookup(&file, &host, port, &db, &user) {
                config.password(p);
            }
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("provision-tui");
    }
    let mode = mode
        .or_else(|| env("PGSSLMODE"))
        .unwrap_or_else(|| "prefer".into());
    let root = root
        .or_else(|| env("PGSSLROOTCERT"))
        .map(PathBuf::from)
        .or_else(|| {
            let default = home().join(".postgresql/root.crt");
            default.exists().then_some(default)
        });
    let tls = match mode.as_str() {
        "disable" => {
            config.ssl_mode(SslMode::Disable);
            None
        }
        "allow" | "prefer" | "require" | "verify-ca" | "verify-full" => {
            // libpq: `require` with a root certificate present verifies it, as verify-ca.
            let verify_ca = mode.starts_with("verify") || (mode == "require" && root.is_some());
            let verify_host = mode == "verify-full";
            config.ssl_mode(if matches!(mode.as_str(), "allow" | "prefer") {
                SslMode::Prefer
            } else {
                SslMode::Require
            });
            let mut b = native_tls::TlsConnector::builder();
            b.danger_accept_invalid_certs(!verify_ca);
            b.danger_accept_invalid_hostnames(!verify_host);
            if verify_ca && let Some(root) = &root {
                let pem = std::fs::read(root).map_err(|e| {
                    format!("cannot read the root certificate {}: {e}", root.display())
                })?;
                let cert = native_tls::Certificate::from_pem(&pem)
                    .map_err(|e| format!("{} is not a PEM certificate: {e}", root.display()))?;
                b.add_root_certificate(cert);
            }
            Some(b.build().map_err(|e| format!("cannot set up TLS: {e}"))?)
        }
        other => {
            return Err(format!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ));
        }
    };
    Ok(Target { config, tls, shown })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn passwords_never_shown() {
        assert_eq!(
            redact("postgres://ops:s3cret@db.example:5432/ptui?sslmode=require"),
            "postgres://ops:***@db.example:5432/ptui?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://db/ptui?user=ops&password=s3cret"),
            "postgresql://db/ptui?user=ops&password=***"
        );
        assert_eq!(redact("postgres://ops@db/ptui"), "postgres://ops@db/ptui");
    }

    #[test]
    fn tls_params_come_out_of_the_url() {
        let (base, mode, root) = split_tls_params(
            "postgres://h/db?sslmode=verify-full&application_name=x&sslrootcert=/r.pem",
        );
        assert_eq!(base, "postgres://h/db?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/r.pem"));
    }

    #[test]
    fn unknown_sslmode_is_refused_by_name() {
        let err = resolve("postgres://u@h/db?sslmode=sometimes")
            .err()
            .unwrap();
        assert!(err.contains("sslmode=sometimes"), "{err}");
    }

    #[test]
    fn pgpass_matches_wildcards_and_escapes_and_needs_0600() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pgpass");
        std::fs::write(
            &f,
            "# comment\nother:5432:*:ops:nope\ndb.example:*:ptui:ops:pa\\:ss\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            pgpass_lookup(&f, "db.example", 6000, "ptui", "ops").as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            pgpass_lookup(&f, "x", 1, "y", "z").as_deref(),
            Some("fallback")
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(pgpass_lookup(&f, "db.example", 6000, "ptui", "ops"), None);
    }
}
