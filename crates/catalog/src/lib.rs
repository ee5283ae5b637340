//! The installer catalog: bundled installers (compiled in) plus directories that add or override.

pub mod lint;
mod locate;
pub mod manifest;
pub use ptui_types::script;
pub mod validate;

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

/// A loaded, checked installer.
#[derive(Debug, Clone)]
pub struct Installer {
    pub manifest: Manifest,
    /// `bundled` or the manifest's path, for messages.
    pub source: String,
    scripts: BTreeMap<String, String>,
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

/// Where an installer's files come from.
trait FileSource {
    fn read(&self, rel: &str) -> Result<String, String>;
    fn label(&self, rel: &str) -> String;
}

struct Bundled<'a>(&'a Dir<'static>);

impl FileSource for Bundled<'_> {
    fn read(&self, rel: &str) -> Result<String, String> {
        let path = self.0.path().join(rel);
        let file = BUNDLED
            .get_file(&path)
            .ok_or_else(|| format!("{rel} does not exist"))?;
        file.contents_utf8()
            .map(str::to_string)
            .ok_or_else(|| format!("{rel} is not UTF-8"))
    }
    fn label(&self, rel: &str) -> String {
        format!("bundled:installers/{}", self.0.path().join(rel).display())
    }
}

struct OnDisk(PathBuf);

impl FileSource for OnDisk {
    fn read(&self, rel: &str) -> Result<String, String> {
        let full = self.0.join(rel);
        // Symlinks may not lead out of the installer directory.
        let base = self
            .0
            .canonicalize()
            .map_err(|e| format!("{}: {e}", self.0.display()))?;
        let real = full
            .canonicalize()
            .map_err(|_| format!("{rel} does not exist in {}", self.0.display()))?;
        if !real.starts_with(&base) {
            return Err(format!(
                "{rel} resolves to {} outside the installer directory",
                real.display()
            ));
        }
        if !real.is_file() {
            return Err(format!("{rel} is not a regular file"));
        }
        std::fs::read_to_string(&real).map_err(|e| format!("{rel}: {e}"))
    }
    fn label(&self, rel: &str) -> String {
        self.0.join(rel).display().to_string()
    }
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
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    let _ = text;
    let mut message = e.to_string();
    // The location is already in the prefix.
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    CatalogProblem {
        file,
        line,
        column,
        message,
    }
}

fn load_one(
    src: &dyn FileSource,
    dir_name: Option<&str>,
    source: String,
) -> Result<Installer, Vec<CatalogProblem>> {
    let file = src.label("manifest.yml");
    let text = src.read("manifest.yml").map_err(|m| {
        vec![CatalogProblem {
            file: file.clone(),
            line: 0,
            column: 0,
            message: m,
        }]
    })?;
    let manifest: Manifest =
        yaml_serde::from_str(&text).map_err(|e| vec![yaml_problem(file.clone(), &text, &e)])?;
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
    let script_fields = [
        ("install_script", Some(&manifest.install_script)),
        ("uninstall_script", manifest.uninstall_script.as_ref()),
        ("upgrade_script", manifest.upgrade_script.as_ref()),
    ];
    for (field, path) in script_fields {
        let Some(path) = path else { continue };
        let res = check_script_path(path).and_then(|_| src.read(path));
        match res {
            Ok(body) => {
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
            Err(message) => {
                let (line, column) = locate::locate(&text, &[locate::Seg::Key(field)]);
                problems.push(CatalogProblem {
                    file: file.clone(),
                    line,
                    column,
                    message: format!("{field}: {message}"),
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(Installer {
            manifest,
            source,
            scripts,
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
                line: 0,
                column: 0,
                message: "not a directory".into(),
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
        for p in paths {
            if !p.join("manifest.yml").exists() {
                continue;
            }
            let name = p.file_name().and_then(|n| n.to_str()).map(str::to_string);
            let source = p.join("manifest.yml").display().to_string();
            self.insert(load_one(&OnDisk(p.clone()), name.as_deref(), source));
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
