//! The crate graph documented in docs/ARCHITECTURE.md is the one cargo builds, and the layer
//! rules hold: front ends reach SSH and SQL only through the engine, the plain-data crate depends
//! on nothing, and no source file grows past the size limit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Workspace package → the workspace packages it depends on (normal dependencies only).
type Graph = BTreeMap<String, BTreeSet<String>>;

const FRONT_ENDS: &[&str] = &["ptui-tui", "provision-tui"];
/// What a front end must not use directly: it goes through the engine.
const BEHIND_THE_ENGINE: &[&str] = &["ptui-store", "ptui-ssh"];
/// Terminal libraries: only the dashboard, its benchmarks and the binary may use them.
const TERMINAL_CRATES: &[&str] = &["ratatui", "crossterm", "tui-input"];
const TERMINAL_FREE: &[&str] = &[
    "ptui-types",
    "ptui-store",
    "ptui-ssh",
    "ptui-catalog",
    "ptui-engine",
];
const MAX_LINES: usize = 700;
/// The fenced block in docs/ARCHITECTURE.md that this test parses.
const GRAPH_FENCE: &str = "```crate-graph";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every workspace package with all its normal dependencies (workspace or not), by name.
fn cargo_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let manifest = root().join("Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages array");
    packages
        .iter()
        .map(|p| {
            let name = p["name"].as_str().expect("package name").to_string();
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies array")
                .iter()
                // `kind` is null for normal dependencies, "dev" or "build" otherwise
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().expect("dependency name").to_string())
                .collect();
            (name, deps)
        })
        .collect()
}

/// The graph of workspace packages, as cargo sees it.
fn cargo_graph() -> Graph {
    let all = cargo_dependencies();
    let members: BTreeSet<String> = all.keys().cloned().collect();
    all.into_iter()
        .map(|(name, deps)| (name, deps.intersection(&members).cloned().collect()))
        .collect()
}

/// The documented graph, in the documented order: `name -> dep, dep` lines.
fn documented_graph() -> Vec<(String, BTreeSet<String>)> {
    let path = root().join("docs/ARCHITECTURE.md");
    let text = std::fs::read_to_string(&path).expect("docs/ARCHITECTURE.md readable");
    let mut lines = text.lines().skip_while(|l| l.trim() != GRAPH_FENCE);
    assert!(
        lines.next().is_some(),
        "{} has no {GRAPH_FENCE} block",
        path.display()
    );
    lines
        .take_while(|l| l.trim() != "```")
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, deps) = l
                .split_once("->")
                .unwrap_or_else(|| panic!("not `name -> deps`: {l:?}"));
            let deps = deps
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect();
            (name.trim().to_string(), deps)
        })
        .collect()
}

fn render(g: &Graph) -> BTreeSet<String> {
    g.iter()
        .map(|(name, deps)| {
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            format!("{name} -> {}", deps.join(", "))
        })
        .collect()
}

#[test]
fn documented_crate_graph_matches_cargo_metadata() {
    let documented = documented_graph();
    let mut names = BTreeSet::new();
    for (name, _) in &documented {
        assert!(names.insert(name), "{name} is listed twice in the doc");
    }
    let documented: Graph = documented.into_iter().collect();
    let (doc, real) = (render(&documented), render(&cargo_graph()));
    if doc != real {
        let only_doc: Vec<_> = doc.difference(&real).map(|l| format!("- {l}")).collect();
        let only_real: Vec<_> = real.difference(&doc).map(|l| format!("+ {l}")).collect();
        panic!(
            "docs/ARCHITECTURE.md's crate graph differs from `cargo metadata`\n\
             (- only in the doc, + only in Cargo.toml):\n{}\n{}",
            only_doc.join("\n"),
            only_real.join("\n")
        );
    }
}

/// `package depends on dependency` for each listed package that has one of `forbidden`.
fn forbidden_edges(
    deps: &BTreeMap<String, BTreeSet<String>>,
    packages: &[&str],
    forbidden: &[&str],
) -> Vec<String> {
    let mut broken = Vec::new();
    for package in packages {
        let of = deps
            .get(*package)
            .unwrap_or_else(|| panic!("{package} is not a workspace package"));
        for dep in forbidden {
            if of.contains(*dep) {
                broken.push(format!("{package} depends on {dep}"));
            }
        }
    }
    broken
}

#[test]
fn front_ends_use_neither_the_store_nor_ssh() {
    let broken = forbidden_edges(&cargo_graph(), FRONT_ENDS, BEHIND_THE_ENGINE);
    assert!(
        broken.is_empty(),
        "front ends must go through ptui-engine:\n{}",
        broken.join("\n")
    );
}

#[test]
fn types_depend_on_no_workspace_package() {
    let graph = cargo_graph();
    let deps = graph
        .get("ptui-types")
        .expect("ptui-types is a workspace package");
    assert!(deps.is_empty(), "ptui-types depends on {deps:?}");
}

#[test]
fn below_the_front_ends_nothing_knows_about_terminals() {
    let broken = forbidden_edges(&cargo_dependencies(), TERMINAL_FREE, TERMINAL_CRATES);
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn each_crate_depends_only_on_crates_documented_before_it() {
    let documented = documented_graph();
    let graph = cargo_graph();
    let mut before = BTreeSet::new();
    let mut broken = Vec::new();
    for (name, _) in &documented {
        if let Some(deps) = graph.get(name) {
            for d in deps.difference(&before) {
                broken.push(format!("{name} -> {d}, but {d} is listed after it"));
            }
        }
        before.insert(name.clone());
    }
    assert!(
        broken.is_empty(),
        "the documented order is not a layering:\n{}",
        broken.join("\n")
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_is_over_the_line_limit() {
    let root = root();
    let mut files = Vec::new();
    for dir in ["crates", "src", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    assert!(files.len() > 10, "found only {files:?}");
    let offenders: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).expect("source file readable");
            let lines = text.lines().count();
            let rel = f.strip_prefix(&root).unwrap_or(f);
            (lines > MAX_LINES).then(|| format!("{}: {lines} lines", rel.display()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "files over {MAX_LINES} lines (split them by responsibility):\n{}",
        offenders.join("\n")
    );
}
