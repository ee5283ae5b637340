//! The installer catalog: bundled installers (compiled in) plus directories that add or override.

pub mod include;
pub mod lint;
mod locate;
pub mod manifest;
pub mod nesting;
pub mod pins;
pub use ptui_types::script;
mod source;
pub mod validate;

pub use source::MAX_MANIFEST_BYTES;
use source::{Bundled, FileSource, OnDisk, ReadProblem, human_size};

pub use manifest::{InputSpec, InputType, Manifest, Role};
pub use validate::{
    InputError, ResolvedInputs, check_value, describe_rules, resolve_inputs, visibility,
};

use include_dir::{Dir, include_dir};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

static BUNDLED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../installers");

/// Which script of an installer a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    Install,
    Uninstall,
    Upgrade,
}

impl ScriptKind {
    /// The script a job with this action runs (a rollback re-runs the install script).
    pub fn of(action: ptui_types::job::JobAction) -> ScriptKind {
        use ptui_types::job::JobAction;
        match action {
            JobAction::Install | JobAction::Rollback => ScriptKind::Install,
            JobAction::Uninstall => ScriptKind::Uninstall,
            JobAction::Upgrade => ScriptKind::Upgrade,
        }
    }
}

/// A loaded, checked installer.
#[derive(Debug, Clone)]
pub struct Installer {
    pub manifest: Manifest,
    /// `bundled` or the manifest's path, for messages.
    pub source: String,
    /// The manifest as written, to give findings about it a line.
    manifest_text: String,
    scripts: BTreeMap<String, String>,
    /// Where the lines of scripts assembled with the shared library came from.
    line_maps: BTreeMap<String, include::LineMap>,
    /// Whether its files match its catalog's `catalog.lock` (`pins.rs`).
    pub pin: pins::PinStatus,
}

impl Installer {
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// The script text for an action, if the installer has one.
    pub fn script(&self, kind: ScriptKind) -> Option<&str> {
        self.scripts
            .get(self.script_path(kind)?)
            .map(String::as_str)
    }

    /// The script's path inside the installer directory, as the manifest names it.
    pub fn script_path(&self, kind: ScriptKind) -> Option<&str> {
        match kind {
            ScriptKind::Install => Some(&self.manifest.install_script),
            ScriptKind::Uninstall => self.manifest.uninstall_script.as_ref(),
            ScriptKind::Upgrade => self.manifest.upgrade_script.as_ref(),
        }
        .map(String::as_str)
    }

    /// The manifest's YAML text.
    pub fn manifest_text(&self) -> &str {
        &self.manifest_text
    }

    /// Whether the script for `kind` mentions the input's variable at all (`$NAME`, `${NAME…}`,
    /// `printenv NAME`...): a word match, so a script that might read it counts as reading it.
    pub fn script_reads(&self, kind: ScriptKind, input: &InputSpec) -> bool {
        let env = input.env_name();
        self.script(kind).is_some_and(|body| {
            body.match_indices(&env).any(|(at, _)| {
                let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
                !body[..at].chars().next_back().is_some_and(word)
                    && !body[at + env.len()..].chars().next().is_some_and(word)
            })
        })
    }

    /// The required secrets a run of `kind` would lack: sensitive, required, shown (see
    /// `visible_if`), with no default, not in `given`, and mentioned by the script. Secrets are
    /// never recorded, so an upgrade cannot reuse the install's value; it must be given again.
    pub fn missing_secrets(
        &self,
        kind: ScriptKind,
        given: &BTreeMap<String, String>,
    ) -> Vec<&InputSpec> {
        let shown = visibility(&self.manifest, given);
        self.manifest
            .inputs
            .iter()
            .filter(|i| i.is_sensitive() && i.required && i.default.is_none())
            .filter(|i| !given.contains_key(&i.name))
            .filter(|i| shown.get(&i.name).copied().unwrap_or(true))
            .filter(|i| self.script_reads(kind, i))
            .collect()
    }

    /// The file (relative to the installer directory) and line that line `line` of the
    /// assembled script `path` came from: the script itself or a shared library file.
    pub fn script_origin(&self, path: &str, line: usize) -> (String, usize) {
        match self.line_maps.get(path).map(|m| m.origin(line)) {
            Some((Some(lib), l)) => (format!("../{lib}"), l),
            Some((None, l)) => (path.to_string(), l),
            None => (path.to_string(), line),
        }
    }

    /// Every script with its manifest path (for the linter).
    pub fn scripts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.scripts.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A manifest that could not be loaded, with where and why.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogProblem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for CatalogProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    installers: BTreeMap<String, Installer>,
    pub problems: Vec<CatalogProblem>,
}

/// Script paths must stay inside the installer directory.
fn check_script_path(p: &str) -> Result<(), String> {
    let path = Path::new(p);
    if p.is_empty() {
        return Err("script path is empty".into());
    }
    if path.is_absolute() {
        return Err(format!(
            "script path {p:?} is absolute; give a path inside the installer directory"
        ));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!(
            "script path {p:?} escapes the installer directory with `..`"
        ));
    }
    Ok(())
}

fn yaml_problem(file: String, text: &str, e: &yaml_serde::Error) -> CatalogProblem {
    let mut message = e.to_string();
    // The location is already in the prefix.
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    let (line, column) = match e.location() {
        Some(l) => (l.line(), l.column()),
        // libyaml gives an alias bomb no position: name the first alias.
        None if message.contains("repetition limit") => {
            message = "its aliases expand to too many nodes; write the values out instead of \
                       nesting aliases (`*name`)"
                .into();
            nesting::scan(text).first_alias.unwrap_or((1, 1))
        }
        None => (1, 1),
    };
    CatalogProblem {
        file,
        line,
        column,
        message,
    }
}

fn problem(file: &str, p: ReadProblem) -> CatalogProblem {
    CatalogProblem {
        file: file.to_string(),
        line: p.line,
        column: p.column,
        message: p.message,
    }
}

/// Reads and parses a manifest: size first (unread), then UTF-8, then nesting, then serde.
fn parse_manifest(src: &dyn FileSource, file: &str) -> Result<(Manifest, String), CatalogProblem> {
    let too_big = |size: u64| {
        format!(
            "manifest.yml is {}; manifests are limited to {}: move long text and data out of \
             the manifest",
            human_size(size),
            human_size(MAX_MANIFEST_BYTES)
        )
    };
    let text = src
        .read_limited("manifest.yml", MAX_MANIFEST_BYTES, &too_big)
        .map_err(|p| problem(file, p))?;
    if let Some(deep) = nesting::scan(&text).too_deep {
        return Err(CatalogProblem {
            file: file.to_string(),
            line: deep.line,
            column: deep.column,
            message: format!(
                "nested more than {} levels deep; flatten the structure (manifests need about 5)",
                nesting::MAX_NESTING
            ),
        });
    }
    let manifest = yaml_serde::from_str(&text).map_err(|e| yaml_problem(file.into(), &text, &e))?;
    Ok((manifest, text))
}

fn load_one(
    src: &dyn FileSource,
    dir_name: Option<&str>,
    source: String,
) -> Result<Installer, Vec<CatalogProblem>> {
    let file = src.label("manifest.yml");
    let (manifest, text) = parse_manifest(src, &file).map_err(|p| vec![p])?;
    let mut problems: Vec<CatalogProblem> = validate::check_manifest(&manifest, &text, dir_name)
        .into_iter()
        .map(|i| CatalogProblem {
            file: file.clone(),
            line: i.line,
            column: i.column,
            message: i.message,
        })
        .collect();
    let mut scripts = BTreeMap::new();
    let mut line_maps = BTreeMap::new();
    let script_fields = [
        ("install_script", Some(&manifest.install_script)),
        ("uninstall_script", manifest.uninstall_script.as_ref()),
        ("upgrade_script", manifest.upgrade_script.as_ref()),
    ];
    let too_big = |size: u64| script::size_problem(size).unwrap_or_default();
    for (field, path) in script_fields {
        let Some(path) = path else { continue };
        if scripts.contains_key(path) {
            continue; // e.g. upgrade_script naming install.sh
        }
        // A path that is wrong or leads nowhere is the manifest's fault: point at the field.
        if let Err(message) =
            check_script_path(path).and_then(|_| src.size(path).map(|_| ()).map_err(|p| p.message))
        {
            let (line, column) = locate::locate(&text, &[locate::Seg::Key(field)]);
            problems.push(CatalogProblem {
                file: file.clone(),
                line,
                column,
                message: format!("{field}: {message}"),
            });
            continue;
        }
        let assembled = src
            .read_limited(path, script::MAX_SCRIPT_BYTES as u64, &too_big)
            .and_then(|body| include::expand(&body, &|name| src.library(name)))
            .and_then(
                |(body, map)| match script::size_problem(body.len() as u64) {
                    Some(m) => Err(ReadProblem::whole(format!(
                        "with its included library: {m}"
                    ))),
                    None => Ok((body, map)),
                },
            );
        match assembled {
            Ok((body, map)) => {
                line_maps.insert(path.clone(), map);
                if let Err(message) = script::interpreter(&body) {
                    problems.push(CatalogProblem {
                        file: src.label(path),
                        line: 1,
                        column: 1,
                        message,
                    });
                }
                scripts.insert(path.clone(), body);
            }
            Err(p) => problems.push(problem(&src.label(path), p)),
        }
    }
    if problems.is_empty() {
        Ok(Installer {
            manifest,
            source,
            manifest_text: text,
            scripts,
            line_maps,
            pin: pins::PinStatus::Unpinned,
        })
    } else {
        Err(problems)
    }
}

impl Catalog {
    /// Bundled installers, then each directory in order (later ones override by id).
    pub fn load(dirs: &[PathBuf]) -> Self {
        let mut cat = Catalog::default();
        for d in BUNDLED.dirs() {
            let name = d.path().file_name().and_then(|n| n.to_str()).unwrap_or("");
            if d.get_file(d.path().join("manifest.yml")).is_none() {
                continue;
            }
            cat.insert(load_one(&Bundled(d), Some(name), "bundled".into()));
        }
        let lock = BUNDLED
            .get_file(pins::LOCK_FILE)
            .map(|f| String::from_utf8_lossy(f.contents()).into_owned());
        let actual = pins::hash_bundled(&BUNDLED);
        let ids: Vec<String> = cat.installers.keys().cloned().collect();
        cat.apply_pins(
            &ids,
            lock.as_deref(),
            "bundled:installers/catalog.lock",
            actual,
            &|r| format!("bundled:installers/{r}"),
        );
        for dir in dirs {
            cat.load_dir_into(dir);
        }
        cat
    }

    /// Only the installers found under one directory (for `catalog validate DIR`).
    pub fn load_dir(dir: &Path) -> Self {
        let mut cat = Catalog::default();
        if !dir.is_dir() {
            cat.problems.push(CatalogProblem {
                file: dir.display().to_string(),
                line: 1,
                column: 1,
                message: "not a directory; give the directory that holds <id>/manifest.yml".into(),
            });
        }
        cat.load_dir_into(dir);
        cat
    }

    fn load_dir_into(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let mut loaded = Vec::new();
        for p in paths {
            if !p.join("manifest.yml").exists() {
                continue;
            }
            let name = p.file_name().and_then(|n| n.to_str()).map(str::to_string);
            let source = p.join("manifest.yml").display().to_string();
            let one = load_one(&OnDisk(p.clone()), name.as_deref(), source);
            if let (Ok(i), Some(n)) = (&one, &name)
                && i.manifest.id == *n
            {
                loaded.push(n.clone());
            }
            self.insert(one);
        }
        let lock_path = dir.join(pins::LOCK_FILE);
        let Ok(lock) = std::fs::read_to_string(&lock_path) else {
            return; // unpinned directory (a missing lock is not a mismatch)
        };
        let actual = pins::hash_dir(dir).unwrap_or_default();
        let label = |r: &str| dir.join(r).display().to_string();
        self.apply_pins(
            &loaded,
            Some(&lock),
            &lock_path.display().to_string(),
            actual,
            &label,
        );
    }

    /// Sets the pin status of the installers `ids` (directory name = id) of one catalog
    /// directory. Script files are hashed as they are on disk, before the shared library is
    /// assembled in: the library's files are pinned too, so together they fix what is sent.
    fn apply_pins(
        &mut self,
        ids: &[String],
        lock: Option<&str>,
        lock_label: &str,
        mut actual: BTreeMap<String, String>,
        label: &dyn Fn(&str) -> String,
    ) {
        let Some(lock) = lock else { return };
        let parsed = pins::parse_lock(lock, lock_label);
        for id in ids {
            let Some(i) = self.installers.get_mut(id) else {
                continue;
            };
            actual.insert(
                format!("{id}/manifest.yml"),
                pins::sha256_hex(i.manifest_text.as_bytes()),
            );
            i.pin = match &parsed {
                Ok(locked) => {
                    let m = pins::mismatches_for(id, ids, locked, &actual, label);
                    if m.is_empty() {
                        pins::PinStatus::Pinned
                    } else {
                        pins::PinStatus::Mismatch(m)
                    }
                }
                Err(e) => pins::PinStatus::Mismatch(vec![pins::PinMismatch {
                    file: e.clone(),
                    expected: None,
                    found: None,
                }]),
            };
        }
    }

    fn insert(&mut self, r: Result<Installer, Vec<CatalogProblem>>) {
        match r {
            Ok(i) => {
                self.installers.insert(i.manifest.id.clone(), i);
            }
            Err(p) => self.problems.extend(p),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Installer> {
        self.installers.get(id)
    }

    /// Looks up an installer, with an error that lists what exists.
    pub fn require(&self, id: &str) -> Result<&Installer, String> {
        self.get(id).ok_or_else(|| {
            let ids: Vec<&str> = self.installers.keys().map(String::as_str).collect();
            format!(
                "no installer {id:?} in the catalog; available: {}",
                ids.join(", ")
            )
        })
    }

    pub fn installers(&self) -> impl Iterator<Item = &Installer> {
        self.installers.values()
    }

    pub fn len(&self) -> usize {
        self.installers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.installers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installer(files: &[(&str, &str)]) -> Installer {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("demo");
        std::fs::create_dir(&d).expect("mkdir");
        for (name, body) in files {
            std::fs::write(d.join(name), body).expect("write");
        }
        let cat = Catalog::load_dir(dir.path());
        assert!(cat.problems.is_empty(), "{:?}", cat.problems);
        cat.get("demo").expect("demo loads").clone()
    }

    #[test]
    fn an_upgrade_lacks_the_required_secrets_its_script_reads() {
        let inst = installer(&[
            (
                "manifest.yml",
                "id: demo\nname: D\nversion: '1'\ninstall_script: install.sh\nupgrade_script: upgrade.sh\ninputs:\n  - {name: api_key, type: password, required: true}\n  - {name: root_pw, type: password, required: true}\n  - {name: opt_pw, type: password}\n  - {name: site, type: string, required: true}\n",
            ),
            ("install.sh", "echo \"$API_KEY $ROOT_PW $OPT_PW $SITE\"\n"),
            // Reads API_KEY; ROOT_PW only as part of a longer name.
            (
                "upgrade.sh",
                "curl -H \"k: ${API_KEY}\" x\necho $ROOT_PW_FILE\n",
            ),
        ]);
        let names = |given: &[(&str, &str)]| -> Vec<String> {
            let given = given
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            inst.missing_secrets(ScriptKind::Upgrade, &given)
                .iter()
                .map(|i| i.name.clone())
                .collect()
        };
        assert_eq!(names(&[]), ["api_key"]);
        assert!(names(&[("api_key", "longenough")]).is_empty());
        // The install script reads both required secrets.
        let all: Vec<&str> = inst
            .missing_secrets(ScriptKind::Install, &BTreeMap::new())
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(all, ["api_key", "root_pw"]);
    }

    #[test]
    fn oversized_files_are_refused_unread_with_their_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("big");
        std::fs::create_dir(&d).expect("mkdir");
        let f = std::fs::File::create(d.join("manifest.yml")).expect("create");
        // Sparse: the loader must refuse it from its size alone.
        f.set_len(300 * 1024 * 1024).expect("set_len");
        let cat = Catalog::load_dir(dir.path());
        let p = &cat.problems[0];
        assert_eq!((p.line, p.column), (1, 1), "{p}");
        assert!(
            p.message.contains("300.0 MiB") && p.message.contains("1.0 MiB"),
            "{p}"
        );
        let d = dir.path().join("big-script");
        std::fs::create_dir(&d).expect("mkdir");
        std::fs::write(
            d.join("manifest.yml"),
            "id: big-script\nname: B\nversion: '1'\ninstall_script: install.sh\n",
        )
        .expect("write");
        let f = std::fs::File::create(d.join("install.sh")).expect("create");
        f.set_len(50 * 1024 * 1024).expect("set_len");
        let cat = Catalog::load_dir(dir.path());
        let p = cat
            .problems
            .iter()
            .find(|p| p.file.ends_with("install.sh"))
            .unwrap_or_else(|| panic!("{:?}", cat.problems));
        assert!(p.message.contains("51200 KiB; at most 120 KiB"), "{p}");
    }

    #[test]
    fn every_bundled_installer_matches_catalog_lock() {
        // Fails when a bundled file changed without `provision-tui catalog pin installers`.
        let cat = Catalog::load(&[]);
        for i in cat.installers() {
            assert_eq!(
                i.pin,
                pins::PinStatus::Pinned,
                "{}: run `provision-tui catalog pin installers` after reviewing the change",
                i.id()
            );
        }
    }
}

#[cfg(test)]
mod library_tests {
    use super::*;

    /// A catalog directory with its own `_lib/` uses it; an include it cannot resolve is a
    /// problem at the script's line.
    #[test]
    fn an_installer_directory_brings_its_own_library() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("_lib")).expect("mkdir");
        std::fs::write(dir.path().join("_lib/mine.sh"), "mine() { echo mine; }\n").expect("lib");
        for (id, include) in [("ok", "mine.sh"), ("bad", "absent.sh")] {
            let d = dir.path().join(id);
            std::fs::create_dir(&d).expect("mkdir");
            std::fs::write(
                d.join("manifest.yml"),
                format!("id: {id}\nname: x\nversion: '1'\ninstall_script: install.sh\n"),
            )
            .expect("manifest");
            std::fs::write(
                d.join("install.sh"),
                format!("#!/usr/bin/env bash\nset -euo pipefail\n# ptui:include {include}\nmine\n"),
            )
            .expect("script");
        }
        let cat = Catalog::load_dir(dir.path());
        let ok = cat.get("ok").expect("ok loads");
        let text = ok.script(ScriptKind::Install).expect("script");
        assert!(text.contains("mine() { echo mine; }"), "{text}");
        assert_eq!(
            ok.script_origin("install.sh", 3),
            ("../_lib/mine.sh".into(), 1)
        );
        assert_eq!(ok.script_origin("install.sh", 4), ("install.sh".into(), 4));
        let p = &cat.problems[0];
        assert!(p.file.ends_with("bad/install.sh") && p.line == 3, "{p}");
        assert!(p.message.contains("_lib/absent.sh"), "{p}");
    }

    /// The shared helpers exist once (in `installers/_lib`), and every bundled script that runs
    /// apt gets them assembled in: dpkg repair and lock waiting before any package step.
    #[test]
    fn bundled_scripts_get_the_shared_library_assembled_in() {
        let cat = Catalog::load(&[]);
        assert!(cat.problems.is_empty(), "{:?}", cat.problems);
        for inst in cat.installers() {
            for (path, text) in inst.scripts() {
                let at = format!("{}/{path}", inst.id());
                assert!(
                    !text
                        .lines()
                        .any(|l| l.starts_with(include::INCLUDE_DIRECTIVE)),
                    "{at}: include left"
                );
                if text.contains("apt-get") {
                    assert!(
                        text.contains("apt_prepare() {"),
                        "{at}: no shared apt library"
                    );
                    // Every apt call goes through the library's lock wait and repair.
                    for (n, l) in text.lines().enumerate() {
                        let l = l.trim_start();
                        assert!(
                            !l.starts_with("apt-get ")
                                || l.contains("-s ")
                                || l.contains("Lock::Timeout"),
                            "{at}:{}: apt-get without apt_get: {l}",
                            n + 1
                        );
                    }
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../installers");
        for d in std::fs::read_dir(&root).expect("installers/") {
            let d = d.expect("entry").path();
            if d.ends_with(include::LIBRARY_DIR) || !d.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&d).expect("installer dir") {
                let f = f.expect("entry").path();
                let text = std::fs::read_to_string(&f).unwrap_or_default();
                for helper in ["fail() {", "put() {", "pkg_install() {", "apt_ready() {"] {
                    assert!(
                        !text.contains(helper),
                        "{}: defines {helper} again; include apt.sh instead",
                        f.display()
                    );
                }
            }
        }
    }
}
