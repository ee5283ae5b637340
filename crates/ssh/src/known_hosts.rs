//! Host key verification: provision-tui's own known_hosts (read and written) and the user's
//! OpenSSH known_hosts (read only).

use russh::keys::check_known_hosts_path;
use russh::keys::known_hosts::{known_host_keys_path, learn_known_hosts_path};
use russh::keys::ssh_key::{HashAlg, PublicKey};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct KnownHosts {
    /// Ours: trusted keys are written here.
    pub own: PathBuf,
    /// The user's `~/.ssh/known_hosts`: consulted, never written.
    pub user: Option<PathBuf>,
}

pub use ptui_types::hostkey::HostKeyVerdict;

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn recorded_fingerprint(path: &Path, host: &str, port: u16, line: usize) -> String {
    known_host_keys_path(host, port, path)
        .ok()
        .and_then(|keys| {
            keys.into_iter()
                .find(|(l, _)| *l == line)
                .map(|(_, k)| fingerprint(&k))
        })
        .unwrap_or_else(|| "unknown".into())
}

impl KnownHosts {
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> HostKeyVerdict {
        let fp = fingerprint(key);
        let files = std::iter::once(&self.own).chain(self.user.iter());
        for file in files {
            if !file.exists() {
                continue;
            }
            match check_known_hosts_path(host, port, key, file) {
                Ok(true) => return HostKeyVerdict::Trusted,
                Ok(false) => {}
                Err(russh::keys::Error::KeyChanged { line }) => {
                    return HostKeyVerdict::Changed {
                        fingerprint: fp,
                        recorded: recorded_fingerprint(file, host, port, line),
                        file: file.clone(),
                        line,
                    };
                }
                // An unreadable or malformed file cannot vouch for a key.
                Err(e) => tracing::warn!("known_hosts {}: {e}", file.display()),
            }
        }
        HostKeyVerdict::Unknown { fingerprint: fp }
    }

    /// Records a key in our own file. With `replace`, drops our old entries for host:port first.
    pub fn learn(
        &self,
        host: &str,
        port: u16,
        key: &PublicKey,
        replace: bool,
    ) -> color_eyre::Result<()> {
        if let Some(dir) = self.own.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if replace && self.own.exists() {
            let lines: Vec<usize> = known_host_keys_path(host, port, &self.own)
                .unwrap_or_default()
                .into_iter()
                .map(|(l, _)| l)
                .collect();
            if !lines.is_empty() {
                let text = std::fs::read_to_string(&self.own)?;
                let kept: Vec<&str> = text
                    .lines()
                    .enumerate()
                    .filter(|(i, _)| !lines.contains(&(i + 1)))
                    .map(|(_, l)| l)
                    .collect();
                let mut out = kept.join("\n");
                if !out.is_empty() {
                    out.push('\n');
                }
                std::fs::write(&self.own, out)?;
            }
        }
        learn_known_hosts_path(host, port, key, &self.own)
            .map_err(|e| color_eyre::eyre::eyre!("cannot write {}: {e}", self.own.display()))?;
        Ok(())
    }
}
