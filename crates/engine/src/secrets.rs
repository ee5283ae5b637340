//! Secrets at rest and the audit key. A deployment's sensitive inputs are sealed with
//! XChaCha20-Poly1305 under a 32-byte key kept in a 0600 file beside the database (or in
//! `PROVISION_TUI_SECRETS_KEY` / the file `PROVISION_TUI_SECRETS_KEY_FILE` names), created on
//! first use. A blob is `P1 || key id (8) || nonce (24) || ciphertext`, its associated data
//! the server id and app, so a blob moved to another row does not open.

use crate::engine::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use ptui_store::audit_chain::{AuditKey, hex};
/// The audit chain's read models, for front ends (which do not depend on the store).
pub use ptui_store::audit_chain::{AuditProblem, AuditRow, AuditVerdict, Tamper};
use ptui_types::private_files;
use rand::RngCore;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 2] = b"P1";
const ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;

/// A 32-byte key and its public id.
#[derive(Clone)]
pub(crate) struct Key {
    bytes: [u8; 32],
    id: [u8; ID_LEN],
}

impl Key {
    fn new(bytes: [u8; 32]) -> Key {
        let id_hex = ptui_store::audit_chain::key_id(&bytes);
        let mut id = [0u8; ID_LEN];
        for (i, b) in id.iter_mut().enumerate() {
            *b = u8::from_str_radix(id_hex.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
        }
        Key { bytes, id }
    }

    pub(crate) fn id_hex(&self) -> String {
        hex(&self.id)
    }

    fn generate() -> Key {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Key::new(bytes)
    }
}

fn parse_key(text: &str, from: &str) -> Result<Key> {
    let t = text.trim();
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{from}: a key is 64 hex digits (32 bytes); fix or replace it");
    }
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&t[2 * i..2 * i + 2], 16)?;
    }
    Ok(Key::new(bytes))
}

/// Reads a key file; None when it does not exist.
fn read_key(path: &Path) -> Result<Option<Key>> {
    match std::fs::read_to_string(path) {
        Ok(t) => {
            if private_files::tighten(path).unwrap_or(false) {
                tracing::warn!("{} was readable by others; set it to 0600", path.display());
            }
            parse_key(&t, &path.display().to_string()).map(Some)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(eyre!("cannot read the key file {}: {e}", path.display())),
    }
}

/// Writes a key to a new 0600 file (its directory 0700); refuses to overwrite one.
fn write_new_key(path: &Path, key: &Key) -> Result<()> {
    if let Some(dir) = path.parent() {
        private_files::create_dir(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_0600()
        .open(path)
        .wrap_err_with(|| format!("cannot create the key file {}", path.display()))?;
    writeln!(f, "{}", hex(&key.bytes))?;
    f.sync_all()?;
    Ok(())
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(private_files::FILE_MODE)
    }
}

fn read_or_create(path: &Path) -> Result<Key> {
    if let Some(k) = read_key(path)? {
        return Ok(k);
    }
    let key = Key::generate();
    match write_new_key(path, &key) {
        Ok(()) => Ok(key),
        // Another process created it first: use theirs.
        Err(_) if path.exists() => {
            read_key(path)?.ok_or_else(|| eyre!("{} vanished", path.display()))
        }
        Err(e) => Err(e),
    }
}

fn aad(server_id: i64, app_id: &str) -> Vec<u8> {
    format!("ptui-deployment-secrets/{server_id}/{app_id}").into_bytes()
}

pub(crate) fn seal(
    key: &Key,
    server_id: i64,
    app_id: &str,
    values: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let cipher =
        XChaCha20Poly1305::new_from_slice(&key.bytes).map_err(|_| eyre!("bad key length"))?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let plain = serde_json::to_vec(values)?;
    let aad = aad(server_id, app_id);
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .map_err(|_| eyre!("cannot seal the secrets of {app_id}"))?;
    let mut out = Vec::with_capacity(2 + ID_LEN + NONCE_LEN + ct.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key.id);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Why stored secrets cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsealable {
    /// No key file (the database was copied without it?).
    NoKey(String),
    /// Sealed with another key than the one in the key file.
    OtherKey(String),
    /// The bytes were changed, or moved from another deployment.
    Damaged,
}

impl std::fmt::Display for Unsealable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsealable::NoKey(path) => write!(
                f,
                "its secrets key {path} is missing (was the database copied without it?)"
            ),
            Unsealable::OtherKey(id) => write!(
                f,
                "its secrets were sealed with key {id}, not the one in the key file (restore that key file)"
            ),
            Unsealable::Damaged => write!(f, "its sealed secrets do not open (changed or moved)"),
        }
    }
}

pub(crate) fn blob_key_id(blob: &[u8]) -> Option<String> {
    (blob.len() > 2 + ID_LEN + NONCE_LEN && &blob[..2] == MAGIC).then(|| hex(&blob[2..2 + ID_LEN]))
}

pub(crate) fn unseal(
    key: &Key,
    server_id: i64,
    app_id: &str,
    blob: &[u8],
) -> Result<BTreeMap<String, String>, Unsealable> {
    let Some(id) = blob_key_id(blob) else {
        return Err(Unsealable::Damaged);
    };
    if id != key.id_hex() {
        return Err(Unsealable::OtherKey(id));
    }
    let cipher = XChaCha20Poly1305::new_from_slice(&key.bytes).map_err(|_| Unsealable::Damaged)?;
    let nonce: [u8; NONCE_LEN] = blob[2 + ID_LEN..2 + ID_LEN + NONCE_LEN]
        .try_into()
        .map_err(|_| Unsealable::Damaged)?;
    let aad = aad(server_id, app_id);
    let plain = cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &blob[2 + ID_LEN + NONCE_LEN..],
                aad: &aad,
            },
        )
        .map_err(|_| Unsealable::Damaged)?;
    serde_json::from_slice(&plain).map_err(|_| Unsealable::Damaged)
}

/// A deployment whose stored secrets cannot be used, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SecretsNeeded {
    pub server: String,
    pub app: String,
    pub reason: String,
}

/// What `secrets rotate-key` did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RotateReport {
    pub resealed: usize,
    /// Blobs sealed with another key, left as they were.
    pub left: usize,
    pub old_key_id: String,
    pub new_key_id: String,
    pub key_file: String,
}

/// Sets the store's audit key, creating the key file on first use.
pub(crate) fn install_audit_key(
    config: &ptui_types::config::Config,
    store: &ptui_store::Store,
    create: bool,
) -> Result<()> {
    let path = &config.audit_key_path;
    let key = match create {
        true => read_or_create(path),
        false => match read_key(path)? {
            Some(k) => Ok(k),
            None => return Ok(()),
        },
    }
    .wrap_err("the audit log's key")?;
    store.set_audit_key(AuditKey::new(&key.bytes))
}

impl Engine {
    /// The secrets key: `PROVISION_TUI_SECRETS_KEY` (64 hex digits), else the key file; with
    /// `create`, a missing file is created.
    pub(crate) fn secrets_key(&self, create: bool) -> Result<Option<Key>> {
        if let Ok(v) = std::env::var("PROVISION_TUI_SECRETS_KEY")
            && !v.is_empty()
        {
            return parse_key(&v, "PROVISION_TUI_SECRETS_KEY").map(Some);
        }
        let path = &self.config().secrets_key_path;
        if create {
            read_or_create(path).map(Some)
        } else {
            read_key(path)
        }
    }

    /// Seals the sensitive values of a job's inputs (None when it has none).
    pub(crate) fn seal_secrets(
        &self,
        server_id: i64,
        app_id: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<Option<Vec<u8>>> {
        if values.is_empty() {
            return Ok(None);
        }
        let key = self
            .secrets_key(true)?
            .ok_or_else(|| eyre!("no secrets key"))?;
        seal(&key, server_id, app_id, values).map(Some)
    }

    /// The recorded secrets of `app_id` on a server (empty when none were recorded).
    pub(crate) fn stored_secrets(
        &self,
        server_id: i64,
        app_id: &str,
    ) -> Result<BTreeMap<String, String>, Unsealable> {
        let Ok(Some(blob)) = self.store().deployment_sealed_secrets(server_id, app_id) else {
            return Ok(BTreeMap::new());
        };
        let path = self.config().secrets_key_path.display().to_string();
        match self.secrets_key(false) {
            Ok(Some(key)) => unseal(&key, server_id, app_id, &blob),
            _ => Err(Unsealable::NoKey(path)),
        }
    }

    /// Deployments whose stored secrets this database's key cannot open: they need their
    /// secrets again (`install APP --on SERVER --set-env NAME=VAR`).
    pub fn secrets_needed(&self) -> Result<Vec<SecretsNeeded>> {
        let mut out = Vec::new();
        for d in self.store().sealed_deployments()? {
            if let Err(why) = self.stored_secrets(d.server_id, &d.app_id) {
                out.push(SecretsNeeded {
                    server: d.server,
                    app: d.app_id,
                    reason: why.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// Names of `app`'s secrets recorded (and usable) for every one of `servers`: a front end
    /// need not ask for these again.
    pub fn secrets_recorded_on_all(
        &self,
        app: &str,
        servers: &[String],
    ) -> std::collections::BTreeSet<String> {
        let mut common: Option<std::collections::BTreeSet<String>> = None;
        for name in servers {
            let Ok(Some(s)) = self.store().server_by_name(name) else {
                return Default::default();
            };
            let have: std::collections::BTreeSet<String> = self
                .stored_secrets(s.id, app)
                .unwrap_or_default()
                .into_keys()
                .collect();
            common = Some(match common {
                None => have,
                Some(c) => c.intersection(&have).cloned().collect(),
            });
        }
        common.unwrap_or_default()
    }

    /// Number of deployments with stored secrets.
    pub fn sealed_deployment_count(&self) -> Result<usize> {
        Ok(self.store().sealed_deployments()?.len())
    }

    /// Generates a new secrets key and re-seals every stored secret with it, in one
    /// transaction; then the new key replaces the key file (the old one is kept as
    /// `<file>.old` until the next rotation).
    pub fn rotate_secrets_key(&self) -> Result<RotateReport> {
        self.permit(crate::access::Change::RotateKeys, "secrets key")?;
        if std::env::var("PROVISION_TUI_SECRETS_KEY").is_ok_and(|v| !v.is_empty()) {
            bail!(
                "the secrets key comes from PROVISION_TUI_SECRETS_KEY: rotate it where it is kept, or unset it to use a key file"
            );
        }
        let path = self.config().secrets_key_path.clone();
        let old = read_key(&path)?.ok_or_else(|| {
            eyre!("there is no secrets key {} to rotate (it is created by the first install with a secret)", path.display())
        })?;
        let new = Key::generate();
        let staged = path.with_extension("key.new");
        let _ = std::fs::remove_file(&staged);
        write_new_key(&staged, &new)?;
        let (resealed, left) = self.store().reseal_secrets(|server_id, app_id, blob| {
            let values = unseal(&old, server_id, app_id, blob).ok()?;
            seal(&new, server_id, app_id, &values).ok()
        })?;
        let backup = path.with_extension("key.old");
        std::fs::rename(&path, &backup)
            .wrap_err_with(|| format!("cannot move {} aside", path.display()))?;
        std::fs::rename(&staged, &path).wrap_err_with(|| {
            format!(
                "the secrets were re-sealed with the key in {}: move it to {} by hand",
                staged.display(),
                path.display()
            )
        })?;
        self.audit(
            "secrets.rotate_key",
            &path.display().to_string(),
            &format!("{} -> {}, {resealed} re-sealed", old.id_hex(), new.id_hex()),
        )?;
        Ok(RotateReport {
            resealed,
            left,
            old_key_id: old.id_hex(),
            new_key_id: new.id_hex(),
            key_file: path.display().to_string(),
        })
    }

    fn audit_key(&self) -> Result<AuditKey> {
        let path = &self.config().audit_key_path;
        let key = read_key(path)?.ok_or_else(|| {
            eyre!(
                "the audit key {} is missing: restore it to verify the log",
                path.display()
            )
        })?;
        Ok(AuditKey::new(&key.bytes))
    }

    /// Checks the audit chain; `expected_head` is a head hash kept elsewhere (a removed tail
    /// is only visible against it).
    pub fn verify_audit(&self, expected_head: Option<&str>) -> Result<AuditVerdict> {
        self.store().verify_audit(&self.audit_key()?, expected_head)
    }

    /// Every audit row with its chain fields, oldest first (for `audit export`).
    pub fn audit_rows(&self) -> Result<Vec<AuditRow>> {
        self.store().audit_rows()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_opens_only_with_its_key_and_in_its_row() {
        let k = Key::generate();
        let mut v = BTreeMap::new();
        v.insert("pw".to_string(), "hunter2-secret".to_string());
        let blob = seal(&k, 1, "app", &v).unwrap();
        assert!(
            !blob.windows(6).any(|w| w == b"hunter"),
            "plaintext in the blob"
        );
        assert_eq!(unseal(&k, 1, "app", &blob).unwrap(), v);
        assert_eq!(unseal(&k, 2, "app", &blob), Err(Unsealable::Damaged));
        assert!(matches!(
            unseal(&Key::generate(), 1, "app", &blob),
            Err(Unsealable::OtherKey(_))
        ));
        let mut bad = blob.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(unseal(&k, 1, "app", &bad), Err(Unsealable::Damaged));
    }

    #[test]
    fn key_files_are_0600_and_parsed_strictly() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/secrets.key");
        let k = read_or_create(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            read_or_create(&p).unwrap().id,
            k.id,
            "created once, then read"
        );
        std::fs::write(&p, "zz").unwrap();
        let e = read_key(&p).err().unwrap().to_string();
        assert!(
            e.contains("64 hex digits") && e.contains("secrets.key"),
            "{e}"
        );
    }
}
