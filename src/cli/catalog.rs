//! `provision-tui catalog ...`

use super::exit;
use super::out::{self, errln, outln};
use clap::Subcommand;
use color_eyre::eyre::{Result, eyre};
use ptui_catalog::{Catalog, describe_rules, lint};
use ptui_engine::Engine;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum CatalogCmd {
    /// List installers (and report manifests that failed to load).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show an installer's manifest: inputs, rules, health check.
    Show { id: String },
    /// Lint installers for authors: the whole catalog, or only DIR. Non-zero exit on errors
    /// (a file that does not match its pin in catalog.lock is one).
    Validate { dir: Option<PathBuf> },
    /// Writes DIR/catalog.lock: the sha256 of every file an install sends, after a review.
    Pin { dir: PathBuf },
}

fn print_problems(cat: &Catalog) {
    for p in &cat.problems {
        out::error(p);
    }
}

/// Runs the linter (and shellcheck when installed) on every loaded installer and prints the
/// findings. Returns the number of errors: warnings are shown but do not fail validation
/// (the bundled installers have none; a unit test keeps it so).
fn print_lint(cat: &Catalog) -> usize {
    let use_shellcheck = lint::shellcheck_available();
    if !use_shellcheck {
        errln!("note: shellcheck is not installed; scripts were not shellchecked");
    }
    let mut errors = 0;
    for i in cat.installers() {
        let mut findings = lint::lint_installer(i);
        if use_shellcheck {
            findings.extend(lint::shellcheck_installer(i).unwrap_or_default());
        }
        let pin_mismatches = match &i.pin {
            ptui_catalog::pins::PinStatus::Mismatch(m) => m.clone(),
            _ => Vec::new(),
        };
        let errs = findings
            .iter()
            .filter(|f| f.severity == lint::Severity::Error)
            .count()
            + pin_mismatches.len();
        let warns = findings.len() + pin_mismatches.len() - errs;
        if errs > 0 {
            outln!(
                "FAIL {} ({}): {errs} error(s), {warns} warning(s)",
                i.id(),
                i.source
            );
        } else if warns > 0 {
            outln!("ok  {} ({}) with {warns} warning(s)", i.id(), i.source);
        } else {
            outln!("ok  {} ({})", i.id(), i.source);
        }
        for f in &findings {
            errln!("{f}");
        }
        for m in &pin_mismatches {
            errln!("{m} (review it, then `provision-tui catalog pin DIR`)");
        }
        errors += errs;
    }
    errors
}

pub fn run(engine: &Engine, cmd: CatalogCmd) -> Result<i32> {
    let cat = engine.catalog();
    match cmd {
        CatalogCmd::List { json } => {
            if json {
                let list: Vec<_> = cat
                    .installers()
                    .map(|i| serde_json::json!({"id": i.id(), "name": i.manifest.name, "version": i.manifest.version, "category": i.manifest.category, "role": i.manifest.role, "source": i.source, "description": i.manifest.description}))
                    .collect();
                let problems: Vec<String> = cat.problems.iter().map(|p| p.to_string()).collect();
                out::json_pretty(&serde_json::json!({"installers": list, "problems": problems}))?;
            } else {
                outln!(
                    "{:<16} {:<10} {:<12} DESCRIPTION",
                    "ID",
                    "VERSION",
                    "CATEGORY"
                );
                for i in cat.installers() {
                    outln!(
                        "{:<16} {:<10} {:<12} {}",
                        i.id(),
                        i.manifest.version,
                        i.manifest.category,
                        i.manifest.description.lines().next().unwrap_or("")
                    );
                }
                print_problems(&cat);
            }
            Ok(if cat.problems.is_empty() {
                exit::OK
            } else {
                exit::ERROR
            })
        }
        CatalogCmd::Show { id } => {
            let i = cat.require(&id).map_err(|e| eyre!(e))?;
            let m = &i.manifest;
            outln!(
                "{} ({}) v{}  [{}]  from {}",
                m.name,
                m.id,
                m.version,
                m.category,
                i.source
            );
            if !m.description.is_empty() {
                outln!("{}", m.description.trim());
            }
            outln!(
                "role: {:?}  timeout: {}s  idempotent: {}",
                m.role,
                m.timeout_seconds,
                m.idempotent
            );
            if !m.os_requirements.family.is_empty() {
                outln!("os: {}", m.os_requirements.family.join(", "));
            }
            if !m.depends_on.is_empty() {
                outln!("depends on: {}", m.depends_on.join(", "));
            }
            outln!("inputs:");
            for inp in &m.inputs {
                let mut flags = vec![inp.kind.as_str().to_string()];
                if inp.required {
                    flags.push("required".into());
                }
                if inp.is_sensitive() {
                    flags.push("sensitive".into());
                }
                if let Some(d) = &inp.default {
                    flags.push(format!(
                        "default {}",
                        if inp.is_sensitive() {
                            "***".into()
                        } else {
                            d.as_text()
                        }
                    ));
                }
                if let Some(v) = &inp.visible_if {
                    flags.push(format!("shown if {}", v.describe()));
                }
                outln!("  {:<20} {}  ({})", inp.name, inp.label(), flags.join(", "));
                let rules = describe_rules(inp);
                if !rules.is_empty() {
                    outln!("  {:<20} rule: {}", "", rules.join("; "));
                }
            }
            if let Some(h) = &m.health {
                outln!(
                    "health: {}",
                    h.command.as_deref().or(h.url.as_deref()).unwrap_or("-")
                );
            }
            Ok(exit::OK)
        }
        CatalogCmd::Validate { dir: Some(dir) } => Ok(validate_dir(&dir)),
        CatalogCmd::Pin { dir } => pin_dir(&dir),
        CatalogCmd::Validate { dir: None } => {
            let findings = print_lint(&cat);
            print_problems(&cat);
            Ok(if cat.problems.is_empty() && findings == 0 {
                exit::OK
            } else {
                exit::ERROR
            })
        }
    }
}

/// Lints one directory of installers; prints `file:line:col: message` per problem.
pub fn validate_dir(dir: &Path) -> i32 {
    let cat = Catalog::load_dir(dir);
    let findings = print_lint(&cat);
    print_problems(&cat);
    if cat.is_empty() && cat.problems.is_empty() {
        errln!(
            "error: no installers (directories with a manifest.yml) under {}",
            dir.display()
        );
        return exit::ERROR;
    }
    if cat.problems.is_empty() && findings == 0 {
        exit::OK
    } else {
        exit::ERROR
    }
}

/// `catalog pin DIR`: rewrites DIR/catalog.lock and says what changed.
pub fn pin_dir(dir: &Path) -> Result<i32> {
    use ptui_catalog::pins;
    let cat = Catalog::load_dir(dir);
    if cat.is_empty() {
        print_problems(&cat);
        errln!(
            "error: no installers (directories with a manifest.yml) under {}: nothing pinned",
            dir.display()
        );
        return Ok(exit::ERROR);
    }
    let lock_path = dir.join(pins::LOCK_FILE);
    let hashes = pins::hash_dir(dir).map_err(|e| eyre!("cannot read {}: {e}", dir.display()))?;
    let old = std::fs::read_to_string(&lock_path)
        .ok()
        .and_then(|t| pins::parse_lock(&t, "").ok())
        .unwrap_or_default();
    for (rel, h) in &hashes {
        match old.get(rel) {
            None => outln!("pinned   {rel}"),
            Some(o) if o != h => outln!("repinned {rel}"),
            Some(_) => {}
        }
    }
    for rel in old.keys().filter(|r| !hashes.contains_key(*r)) {
        outln!("dropped  {rel}");
    }
    std::fs::write(&lock_path, pins::render_lock(&hashes))
        .map_err(|e| eyre!("cannot write {}: {e}", lock_path.display()))?;
    outln!("{} files pinned in {}", hashes.len(), lock_path.display());
    Ok(exit::OK)
}
