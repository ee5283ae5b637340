//! Pinned installers: a catalog directory's `catalog.lock` holds the sha256 of every file an
//! install can send (each installer's manifest and scripts, and any shared file beside them),
//! in `sha256sum` format (`sha256sum -c catalog.lock` works in the directory). An installer
//! whose files differ from their pins is refused at install; `catalog pin DIR` rewrites the
//! lock after a reviewed change. The bundled catalog carries its lock, checked by a test.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub const LOCK_FILE: &str = "catalog.lock";

/// Files that are never sent, so never pinned.
fn pinned(rel: &str) -> bool {
    rel != LOCK_FILE && !rel.ends_with(".md") && !rel.split('/').any(|c| c.starts_with('.'))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Relative path → sha256 of every pinnable file under `dir`.
pub fn hash_dir(dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            let Ok(rel) = p.strip_prefix(dir) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            if !pinned(&rel) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.is_file() {
                out.insert(rel, sha256_hex(&std::fs::read(&p)?));
            }
        }
    }
    Ok(out)
}

/// The same for the compiled-in catalog.
pub fn hash_bundled(dir: &include_dir::Dir<'static>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(d: &include_dir::Dir<'static>, out: &mut BTreeMap<String, String>) {
        for f in d.files() {
            let rel = f.path().to_string_lossy().replace('\\', "/");
            if pinned(&rel) {
                out.insert(rel, sha256_hex(f.contents()));
            }
        }
        for sub in d.dirs() {
            walk(sub, out);
        }
    }
    walk(dir, &mut out);
    out
}

/// The lock's text for `hashes`.
pub fn render_lock(hashes: &BTreeMap<String, String>) -> String {
    let mut s = String::from(
        "# sha256 of every file an install sends. After reviewing a change: provision-tui catalog pin DIR\n",
    );
    for (rel, h) in hashes {
        s.push_str(&format!("{h}  {rel}\n"));
    }
    s
}

/// Parses a lock; an error names the line.
pub fn parse_lock(text: &str, file: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            format!(
                "{file}:{}: expected `SHA256  PATH`; rewrite it with `provision-tui catalog pin`",
                n + 1
            )
        };
        let (h, rel) = line.split_once("  ").ok_or_else(bad)?;
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) || rel.is_empty() {
            return Err(bad());
        }
        out.insert(rel.to_string(), h.to_ascii_lowercase());
    }
    Ok(out)
}

/// One file that does not match its catalog's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinMismatch {
    /// The file, as a path a person can open (or `bundled:installers/...`).
    pub file: String,
    pub expected: Option<String>,
    pub found: Option<String>,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.expected, &self.found) {
            (Some(e), Some(g)) => write!(f, "{}: sha256 {g} does not match its pin {e}", self.file),
            (None, Some(_)) => write!(
                f,
                "{}: not pinned (a file added since the last pin)",
                self.file
            ),
            (Some(_), None) => write!(f, "{}: pinned but missing", self.file),
            (None, None) => write!(f, "{}", self.file),
        }
    }
}

/// Whether an installer's files match their pins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PinStatus {
    /// Its directory has no catalog.lock.
    #[default]
    Unpinned,
    Pinned,
    Mismatch(Vec<PinMismatch>),
}

/// The mismatches between `lock` and `actual` that concern installer `id`: its own files and
/// the shared ones (outside every installer directory), which are sent with every script.
pub fn mismatches_for(
    id_dir: &str,
    installer_dirs: &[String],
    lock: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
    label: &dyn Fn(&str) -> String,
) -> Vec<PinMismatch> {
    let concerns = |rel: &str| {
        rel.starts_with(&format!("{id_dir}/"))
            || !installer_dirs
                .iter()
                .any(|d| rel.starts_with(&format!("{d}/")))
    };
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = lock.keys().chain(actual.keys()).collect();
    for rel in keys {
        if !concerns(rel) {
            continue;
        }
        let (e, g) = (lock.get(rel), actual.get(rel));
        if e != g {
            out.push(PinMismatch {
                file: label(rel),
                expected: e.cloned(),
                found: g.cloned(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_byte_change_is_a_mismatch_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/install.sh"), "#!/bin/sh\necho hi\n").unwrap();
        std::fs::write(d.path().join("lib.sh"), "x=1\n").unwrap();
        std::fs::write(d.path().join("README.md"), "not sent").unwrap();
        let lock = hash_dir(d.path()).unwrap();
        assert_eq!(lock.len(), 2, "{lock:?}");
        let parsed = parse_lock(&render_lock(&lock), "catalog.lock").unwrap();
        assert_eq!(parsed, lock);
        std::fs::write(d.path().join("a/install.sh"), "#!/bin/sh\necho hI\n").unwrap();
        let now = hash_dir(d.path()).unwrap();
        let label = |r: &str| format!("DIR/{r}");
        let m = mismatches_for("a", &["a".into()], &parsed, &now, &label);
        assert_eq!(m.len(), 1);
        assert!(
            m[0].to_string().starts_with("DIR/a/install.sh: sha256 "),
            "{}",
            m[0]
        );
        // A changed shared file concerns every installer.
        std::fs::write(d.path().join("lib.sh"), "x=2\n").unwrap();
        let now = hash_dir(d.path()).unwrap();
        assert_eq!(
            mismatches_for("b", &["a".into(), "b".into()], &parsed, &now, &label).len(),
            1
        );
        assert!(
            parse_lock("zz  a/x\n", "L")
                .unwrap_err()
                .starts_with("L:1:")
        );
    }
}
