//! Host key verification: provision-tui's own known_hosts (read and written) and the user's
//! OpenSSH known_hosts (read only).
//!
//! Keys are compared by host, not by key type: every entry naming host:port (plain,
//! `[host]:port`, wildcard or hashed `|1|salt|hash`) counts, in either file. The offered key
//! is trusted when it is one of them, changed when entries exist but none is it. We parse the
//! files ourselves because russh's `check_known_hosts_path` only compares keys of the same
//! type (so a server that switched from ed25519 to RSA looked "unknown") and its line numbers
//! skip comment lines.

use hmac::{Hmac, KeyInit, Mac};
use ptui_types::hostkey::RecordedKey;
use ptui_types::private_files;
use russh::keys::ssh_key::known_hosts::{Entry, HostPatterns};
use russh::keys::ssh_key::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use ptui_types::hostkey::HostKeyVerdict;

#[derive(Debug, Clone)]
pub struct KnownHosts {
    /// Ours: trusted keys are written here.
    pub own: PathBuf,
    /// The user's `~/.ssh/known_hosts`: consulted, never written.
    pub user: Option<PathBuf>,
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// A key recorded for the host, with where it was found.
struct Found {
    key: PublicKey,
    file: PathBuf,
    line: usize,
    ours: bool,
}

/// How known_hosts names a host: `host` on port 22, else `[host]:port`; lower case, as
/// OpenSSH compares and hashes it.
fn host_port(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// `*` and `?` wildcards, as in OpenSSH's `match_pattern`.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Whether an entry's host field names `name` (already in `host_port` form). A matching
/// negated pattern (`!pattern`) excludes the host whatever else matches.
fn names_host(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => Hmac::<Sha1>::new_from_slice(salt)
            .map(|mac| mac.chain_update(name.as_bytes()).verify_slice(hash).is_ok())
            .unwrap_or(false),
        HostPatterns::Patterns(list) => {
            let mut hit = false;
            for p in list {
                let p = p.to_ascii_lowercase();
                match p.strip_prefix('!') {
                    Some(neg) if glob(neg.as_bytes(), name.as_bytes()) => return false,
                    Some(_) => {}
                    None => hit |= glob(p.as_bytes(), name.as_bytes()),
                }
            }
            hit
        }
    }
}

/// The plain keys `text` records for `name`, with their 1-based line numbers. Malformed
/// lines are skipped with a warning; `@cert-authority` and `@revoked` lines are not keys of
/// the host (we neither use certificates nor accept a revoked key listed elsewhere).
fn entries_for(text: &str, name: &str, file: &Path) -> Vec<(usize, PublicKey)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // The parser wants single spaces between fields; OpenSSH allows any whitespace.
        let line = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
        match line.parse::<Entry>() {
            Ok(e) if e.marker().is_none() && names_host(e.host_patterns(), name) => {
                out.push((i + 1, e.public_key().clone()));
            }
            Ok(_) => {}
            Err(err) => tracing::warn!("{}:{}: unreadable entry ({err})", file.display(), i + 1),
        }
    }
    out
}

impl KnownHosts {
    /// Our file and the user's; tightens ours to 0600 if it was readable by others.
    pub fn new(own: PathBuf, user: Option<PathBuf>) -> Self {
        match private_files::tighten(&own) {
            Ok(true) => tracing::warn!("{} was readable by others; set it to 0600", own.display()),
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot set {} to 0600: {e}", own.display()),
        }
        KnownHosts { own, user }
    }

    fn files(&self) -> impl Iterator<Item = (&PathBuf, bool)> {
        std::iter::once((&self.own, true)).chain(self.user.iter().map(|u| (u, false)))
    }

    /// Every key either file records for host:port. An unreadable file cannot vouch for a
    /// key, nor report a change: it is skipped with a warning.
    fn found(&self, host: &str, port: u16) -> Vec<Found> {
        let name = host_port(host, port);
        let mut out = Vec::new();
        for (file, ours) in self.files() {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!("known_hosts {}: {e}", file.display());
                    continue;
                }
            };
            for (line, key) in entries_for(&text, &name, file) {
                out.push(Found {
                    key,
                    file: file.clone(),
                    line,
                    ours,
                });
            }
        }
        out
    }

    /// The key types recorded for host:port, so the handshake asks for those first (as
    /// OpenSSH does) and a server that merely added a key type is not reported as changed.
    pub fn recorded_algorithms(&self, host: &str, port: u16) -> Vec<Algorithm> {
        let mut algs: Vec<Algorithm> = Vec::new();
        for f in self.found(host, port) {
            let a = f.key.algorithm();
            if !algs.contains(&a) {
                algs.push(a);
            }
        }
        algs
    }

    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> HostKeyVerdict {
        let found = self.found(host, port);
        // Key data only: the comment on a recorded line is not part of the key.
        if found.iter().any(|f| f.key.key_data() == key.key_data()) {
            return HostKeyVerdict::Trusted;
        }
        let fingerprint = fingerprint(key);
        let key_type = key.algorithm().as_str().to_string();
        if found.is_empty() {
            return HostKeyVerdict::Unknown {
                fingerprint,
                key_type,
            };
        }
        HostKeyVerdict::Changed {
            fingerprint,
            key_type,
            recorded: found
                .into_iter()
                .map(|f| RecordedKey {
                    key_type: f.key.algorithm().as_str().to_string(),
                    fingerprint: self::fingerprint(&f.key),
                    file: f.file,
                    line: f.line,
                    ours: f.ours,
                })
                .collect(),
        }
    }

    /// Records a key in our own file (created 0600). With `replace`, first drops every entry
    /// of ours naming host:port, of any key type; the user's file is never edited.
    pub fn learn(
        &self,
        host: &str,
        port: u16,
        key: &PublicKey,
        replace: bool,
    ) -> color_eyre::Result<()> {
        let own = &self.own;
        let cannot = |e: &dyn std::fmt::Display| {
            color_eyre::eyre::eyre!(
                "cannot write {}: {e}; check the permissions of the file and its directory",
                own.display()
            )
        };
        let entry = format!(
            "{} {}\n",
            host_port(host, port),
            key.to_openssh().map_err(|e| cannot(&e))?
        );
        // Tightened when opened (`new`); this creates it 0600 if it is not there yet.
        private_files::ensure_file(own).map_err(|e| cannot(&e))?;
        let text = std::fs::read_to_string(own).map_err(|e| cannot(&e))?;
        if replace {
            let drop: Vec<usize> = entries_for(&text, &host_port(host, port), own)
                .into_iter()
                .map(|(line, _)| line)
                .collect();
            let mut out: String = text
                .lines()
                .enumerate()
                .filter(|(i, _)| !drop.contains(&(i + 1)))
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            out.push_str(&entry);
            // A new file renamed over the old one: a crash leaves the old or the new, whole.
            let tmp = own.with_extension(format!("tmp-{}", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            private_files::ensure_file(&tmp).map_err(|e| cannot(&e))?;
            std::fs::write(&tmp, out).map_err(|e| cannot(&e))?;
            std::fs::rename(&tmp, own).map_err(|e| cannot(&e))?;
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(own)
            .map_err(|e| cannot(&e))?;
        let sep = if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        f.write_all(format!("{sep}{entry}").as_bytes())
            .map_err(|e| cannot(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    /// 1024 bits: only its type matters here.
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDFZntfT2g7JtEOOBtWlrsZzvz0BBTJqLUT1tnWf8cUhHyjNqb5VQegnfivwSi52AJ/HZTWKtO3KRF4YifiAidyFVpCZcndnOSONHCRqDaxLCDM066yBgfuh78zKAc1I741HXjp4KKuo5XxqyWxMH2/D8l1zjnzTDjo3dtJv/GCZQ==";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn hosts(own: &str) -> (tempfile::TempDir, KnownHosts) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, own).unwrap();
        (dir, KnownHosts::new(path, None))
    }

    #[test]
    fn wildcards_and_negation_follow_openssh() {
        assert!(glob(b"*.example.com", b"web.example.com"));
        assert!(glob(b"web?", b"web1"));
        assert!(!glob(b"web?", b"web12"));
        assert!(glob(b"[10.0.0.*]:2222", b"[10.0.0.7]:2222"));
        let p = |s: &str| HostPatterns::Patterns(s.split(',').map(str::to_string).collect());
        assert!(names_host(
            &p("*.example.com,!db.example.com"),
            "web.example.com"
        ));
        assert!(!names_host(
            &p("*.example.com,!db.example.com"),
            "db.example.com"
        ));
        assert!(names_host(&p("WEB1"), "web1"), "case-insensitive");
    }

    #[test]
    fn line_numbers_count_comments_and_blank_lines() {
        let text = format!("# note\n\nother {ED}\n  [h]:2222   {ED2} a comment\n");
        let found = entries_for(&text, &host_port("H", 2222), Path::new("f"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 4);
    }

    #[test]
    fn a_hashed_entry_names_its_host_and_port() {
        // `ssh-keygen -H` form for "[127.0.0.1]:2222", computed with the same HMAC-SHA1.
        let salt = [7u8; 20];
        let mac = Hmac::<Sha1>::new_from_slice(&salt)
            .unwrap()
            .chain_update(b"[127.0.0.1]:2222")
            .finalize()
            .into_bytes();
        use russh::keys::ssh_key::known_hosts::HostPatterns as H;
        let hashed = H::HashedName {
            salt: salt.to_vec(),
            hash: mac.into(),
        };
        let line = format!("{} {ED}\n", hashed.to_string());
        let (_d, kh) = hosts(&line);
        assert_eq!(
            kh.check("127.0.0.1", 2222, &key(ED)),
            HostKeyVerdict::Trusted
        );
        assert!(matches!(
            kh.check("127.0.0.1", 2223, &key(ED)),
            HostKeyVerdict::Unknown { .. }
        ));
        match kh.check("127.0.0.1", 2222, &key(ED2)) {
            HostKeyVerdict::Changed { recorded, .. } => assert_eq!(recorded[0].line, 1),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn another_key_type_is_a_change_and_replace_drops_every_type() {
        let (_d, kh) = hosts(&format!("# mine\n[h]:2222 {ED}\nkeep {ED}\n"));
        let offered = key(RSA);
        match kh.check("h", 2222, &offered) {
            HostKeyVerdict::Changed {
                recorded, key_type, ..
            } => {
                assert_eq!(recorded.len(), 1);
                assert_eq!(recorded[0].key_type, "ssh-ed25519");
                assert_eq!(recorded[0].line, 2);
                assert!(recorded[0].ours);
                assert_eq!(key_type, "ssh-rsa");
            }
            v => panic!("{v:?}"),
        }
        kh.learn("h", 2222, &offered, true).unwrap();
        let text = std::fs::read_to_string(&kh.own).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("# mine") && text.contains("keep "), "{text}");
        assert_eq!(kh.check("h", 2222, &offered), HostKeyVerdict::Trusted);
        assert_eq!(kh.check("keep", 22, &key(ED)), HostKeyVerdict::Trusted);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kh.own).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
