//! The linter against small installers written to a temp directory, and the bundled catalog.

use super::*;
use crate::{Catalog, Installer};

const MANIFEST: &str = "id: demo\nname: Demo\nversion: '1'\ninstall_script: install.sh\nuninstall_script: uninstall.sh\nhealth:\n  command: 'true'\ninputs:\n  - {name: greeting, type: string}\n";
const GOOD: &str = "#!/usr/bin/env bash\nset -euo pipefail\nexport DEBIAN_FRONTEND=noninteractive\nGREETING=${GREETING:-hi}\necho \"$GREETING from $PROVISION_TUI_SERVER in $HOME\"\n";
const UNINSTALL: &str = "#!/usr/bin/env bash\nset -euo pipefail\necho bye\n";

fn installer(manifest: &str, install: &str) -> Installer {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("demo");
    std::fs::create_dir(&d).expect("mkdir");
    std::fs::write(d.join("manifest.yml"), manifest).expect("write");
    std::fs::write(d.join("install.sh"), install).expect("write");
    std::fs::write(d.join("uninstall.sh"), UNINSTALL).expect("write");
    let cat = Catalog::load_dir(dir.path());
    assert!(cat.problems.is_empty(), "{:?}", cat.problems);
    cat.get("demo").expect("demo loads").clone()
}

fn codes(f: &[LintFinding]) -> Vec<&str> {
    f.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn a_clean_installer_has_no_findings() {
    let f = lint_installer(&installer(MANIFEST, GOOD));
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn stdin_readers_are_flagged_with_their_line() {
    for (snippet, what) in [
        ("read -r answer", "read"),
        ("if read -r x; then :; fi", "read in if"),
        ("IFS=, read -r -a parts <<< \"$GREETING\"", "read with IFS"),
        ("x=$(cat)", "cat in $()"),
        ("cat | tr a b", "cat in a pipe"),
        ("cat - > /tmp/x", "cat -"),
        ("mapfile -t lines", "mapfile"),
        ("tr a b < /dev/stdin", "/dev/stdin"),
    ] {
        let script = format!("{GOOD}{snippet}\n");
        let f = lint_installer(&installer(MANIFEST, &script));
        let hit = f
            .iter()
            .find(|f| f.code == "reads-stdin")
            .unwrap_or_else(|| panic!("{what} not flagged: {f:?}"));
        assert_eq!(hit.line, 6, "{what}");
        assert_eq!(hit.file, "install.sh");
    }
}

#[test]
fn harmless_lookalikes_are_not_flagged() {
    for snippet in [
        "# read the docs first",
        "echo 'read me' \"cat\"",
        "cat /etc/os-release > /dev/null",
        "cat <<EOF > /tmp/x\nread this\ncat\nEOF",
        "mapfile -t pkgs < <(dpkg-query -W -f='${Package}\\n')\necho \"${pkgs[@]}\"",
        "thread=1; readonly_x=2; echo \"$thread $readonly_x\"",
    ] {
        let script = format!("{GOOD}{snippet}\n");
        let f = lint_installer(&installer(MANIFEST, &script));
        assert!(!codes(&f).contains(&"reads-stdin"), "{snippet:?}: {f:?}");
    }
}

#[test]
fn strict_mode_spellings() {
    for (set, ok) in [
        ("set -euo pipefail", true),
        ("set -Eeuo pipefail", true),
        ("set -e -u -o pipefail", true),
        ("set -o errexit -o nounset -o pipefail", true),
        ("set -eu", false),
        ("set -e", false),
        ("# set -euo pipefail", false),
    ] {
        let script = format!("#!/usr/bin/env bash\n{set}\necho \"$GREETING\"\n");
        let f = lint_installer(&installer(MANIFEST, &script));
        assert_eq!(!codes(&f).contains(&"strict-mode"), ok, "{set}: {f:?}");
    }
}

#[test]
fn posix_sh_scripts_need_eu_and_get_a_warning() {
    for (head, strict_ok) in [
        ("#!/bin/sh\nset -eu", true),
        ("#!/bin/sh -eu\n:", true),
        ("#!/bin/sh\nset -e", false),
        ("#!/bin/bash -eu\n:", false),
    ] {
        let script = format!("{head}\necho \"$GREETING\"\n");
        let f = lint_installer(&installer(MANIFEST, &script));
        let c = codes(&f);
        assert_eq!(!c.contains(&"strict-mode"), strict_ok, "{head}: {f:?}");
        assert_eq!(
            c.contains(&"posix-sh"),
            head.starts_with("#!/bin/sh"),
            "{head}"
        );
    }
}

#[test]
fn env_vars_against_inputs() {
    // uses an undeclared var; never reads the declared input
    let script = "#!/usr/bin/env bash\nset -euo pipefail\necho \"${GREETNG:-x}\"\nLOCAL_ONE=1\necho \"$LOCAL_ONE $PATH $PROVISION_TUI_JOB_ID ${BASH_REMATCH[1]:-}\"\nfor ITEM in a b; do echo \"$ITEM\"; done\necho '$NOT_EXPANDED'\ncat <<'EOF' > /tmp/x\n$QUOTED_HEREDOC\nEOF\n";
    let f = lint_installer(&installer(MANIFEST, script));
    let undeclared: Vec<_> = f.iter().filter(|f| f.code == "undeclared-env").collect();
    assert_eq!(undeclared.len(), 1, "{f:?}");
    assert!(undeclared[0].message.contains("$GREETNG"));
    assert_eq!(undeclared[0].line, 3);
    let unused = f
        .iter()
        .find(|f| f.code == "unused-input" && f.message.contains("greeting"))
        .unwrap_or_else(|| panic!("{f:?}"));
    // The input's own line in the manifest, not `manifest.yml:0`.
    assert_eq!((unused.file.as_str(), unused.line), ("manifest.yml", 9));
    // an unquoted here-document expands, so a var there counts as used
    let script =
        "#!/usr/bin/env bash\nset -euo pipefail\ncat <<EOF > /tmp/x\nhello $GREETING\nEOF\n";
    let f = lint_installer(&installer(MANIFEST, script));
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn manifest_completeness_and_apt_frontend() {
    let m = "id: demo\nname: Demo\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - {name: host_name, type: string}\n";
    let script =
        "#!/usr/bin/env bash\nset -euo pipefail\napt-get install -y x\necho \"$HOST_NAME\"\n";
    let f = lint_installer(&installer(m, script));
    let c = codes(&f);
    for want in ["no-uninstall", "no-health", "debian-frontend"] {
        assert!(c.contains(&want), "{want} missing: {f:?}");
    }
    assert_eq!(f.len(), 3, "{f:?}");
    let line = |code: &str| f.iter().find(|f| f.code == code).map(|f| f.line);
    assert_eq!(line("no-uninstall"), Some(4), "beside install_script");
    assert_eq!(line("no-health"), Some(1));
    assert!(f.iter().all(|f| f.line >= 1), "{f:?}");
}

#[test]
fn missing_shebang_is_an_error() {
    let f = lint_installer(&installer(
        MANIFEST,
        "set -euo pipefail\necho \"$GREETING\"\n",
    ));
    assert!(
        f.iter()
            .any(|f| f.code == "shebang" && f.severity == Severity::Error),
        "{f:?}"
    );
}

#[test]
fn shellcheck_findings_when_installed() {
    let inst = installer(MANIFEST, &format!("{GOOD}x=$GREETING\nls $x\n"));
    match shellcheck_installer(&inst) {
        None => eprintln!("shellcheck not installed: skipping its part of the test"),
        Some(f) => assert!(f.iter().any(|f| f.code == "SC2086" && f.line == 7), "{f:?}"),
    }
}

#[test]
fn every_bundled_installer_lints_clean() {
    let cat = Catalog::load(&[]);
    assert!(cat.problems.is_empty(), "{:?}", cat.problems);
    assert!(
        cat.len() >= 9,
        "expected the full catalog, got {}",
        cat.len()
    );
    for inst in cat.installers() {
        let mut f = lint_installer(inst);
        f.extend(shellcheck_installer(inst).unwrap_or_default());
        assert!(
            f.is_empty(),
            "{}:\n{}",
            inst.id(),
            f.iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
