//! `catalog validate` names the file, line and column of every kind of bad manifest,
//! and one bad manifest never hides the good ones.

mod common;

use common::{Sshd, TestEnv};
use std::path::Path;

const GOOD: &str = "id: NAME\nname: Good\nversion: '1'\ninstall_script: install.sh\n";

fn write_installer(root: &Path, dir: &str, manifest: &str) {
    let d = root.join(dir);
    std::fs::create_dir_all(&d).expect("mkdir");
    std::fs::write(d.join("manifest.yml"), manifest).expect("manifest");
    std::fs::write(
        d.join("install.sh"),
        "#!/usr/bin/env bash\nset -euo pipefail\necho ok\n",
    )
    .expect("script");
}

fn validate(env: &TestEnv, dir: &Path) -> (i32, String) {
    let out = env.run(&["catalog", "validate", &dir.display().to_string()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// (directory, manifest, expected "line:col", expected message part)
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "unknown-field",
        "id: unknown-field\nname: x\nversion: '1'\ninstall_script: install.sh\nprot: 22\n",
        ":5:1:",
        "unknown field `prot`",
    ),
    (
        "wrong-type",
        "id: wrong-type\nname: x\nversion: '1'\ninstall_script: install.sh\ntimeout_seconds: twenty\n",
        ":5:18:",
        "invalid type",
    ),
    (
        "missing-field",
        "id: missing-field\nname: x\ninstall_script: install.sh\n",
        ":1:1:",
        "missing field `version`",
    ),
    (
        "bad-regex",
        "id: bad-regex\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: a\n    type: string\n    validation:\n      pattern: '(['\n",
        ":9:7:",
        "invalid regex",
    ),
    (
        "visible-unknown",
        "id: visible-unknown\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: a\n    type: string\n    visible_if:\n      input: nope\n      equals: x\n",
        ":9:7:",
        "unknown input \"nope\"",
    ),
    (
        "visible-short-unknown",
        "id: visible-short-unknown\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: a\n    type: string\n    visible_if:\n      nope: x\n",
        ":9:7:",
        "unknown input \"nope\"",
    ),
    (
        "visible-short-type",
        "id: visible-short-type\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: n\n    type: integer\n  - name: a\n    type: string\n    visible_if:\n      n: [1, many]\n",
        ":11:7:",
        "visible_if n \"many\": n is an integer",
    ),
    (
        "visible-rich-field",
        "id: visible-rich-field\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: n\n    type: integer\n  - name: a\n    type: string\n    visible_if:\n      input: n\n      mode: x\n",
        ":11:7:",
        "unknown field `mode` in visible_if",
    ),
    (
        "dup-input",
        "id: dup-input\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: a\n    type: string\n  - name: a\n    type: integer\n",
        ":8:5:",
        "duplicate input name",
    ),
    (
        "bad-default",
        "id: bad-default\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: port\n    type: port\n    default: 70000\n",
        ":8:5:",
        "default \"70000\"",
    ),
    (
        "select-empty",
        "id: select-empty\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: mode\n    type: select\n",
        ":7:5:",
        "allowed_values",
    ),
    (
        "escape-dotdot",
        "id: escape-dotdot\nname: x\nversion: '1'\ninstall_script: ../../etc/passwd\n",
        ":4:1:",
        "escapes the installer directory",
    ),
    (
        "escape-absolute",
        "id: escape-absolute\nname: x\nversion: '1'\ninstall_script: /etc/passwd\n",
        ":4:1:",
        "is absolute",
    ),
    (
        "bad-id",
        "id: Bad_Id\nname: x\nversion: '1'\ninstall_script: install.sh\n",
        ":1:1:",
        "must match [a-z0-9-]+",
    ),
    (
        "reserved-input",
        "id: reserved-input\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: path\n    type: string\n",
        ":6:5:",
        "is reserved",
    ),
    (
        "bad-bool",
        "id: bad-bool\nname: x\nversion: '1'\ninstall_script: install.sh\nidempotent: yes\n",
        ":5:13:",
        "invalid type",
    ),
];

#[test]
fn every_bad_manifest_is_reported_with_its_position() {
    let env = TestEnv::new();
    for (dir, manifest, pos, msg) in CASES {
        let root = env.path().join("cases").join(dir);
        write_installer(&root, dir, manifest);
        let (code, text) = validate(&env, &root);
        assert_eq!(code, 1, "{dir}: must fail\n{text}");
        let line = text
            .lines()
            .find(|l| l.contains(msg))
            .unwrap_or_else(|| panic!("{dir}: no {msg:?} in\n{text}"));
        assert!(
            line.contains(&format!("{dir}/manifest.yml{pos}")),
            "{dir}: expected position {pos} in {line:?}"
        );
    }
}

#[test]
fn symlinked_script_escaping_the_directory_is_refused() {
    let env = TestEnv::new();
    let root = env.path().join("sym");
    write_installer(&root, "sym", &GOOD.replace("NAME", "sym"));
    let outside = env.path().join("outside.sh");
    std::fs::write(&outside, "echo owned\n").expect("outside");
    let script = root.join("sym/install.sh");
    std::fs::remove_file(&script).expect("rm");
    std::os::unix::fs::symlink(&outside, &script).expect("symlink");
    let (code, text) = validate(&env, &root);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("outside the installer directory"), "{text}");
}

#[test]
fn scripts_must_name_a_shell_interpreter() {
    let env = TestEnv::new();
    let root = env.path().join("interp");
    write_installer(&root, "py", &GOOD.replace("NAME", "py"));
    std::fs::write(
        root.join("py/install.sh"),
        "#!/usr/bin/env python3\nprint(1)\n",
    )
    .expect("script");
    let (code, text) = validate(&env, &root);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("py/install.sh:1:1"), "{text}");
    assert!(
        text.contains("unsupported interpreter line `#!/usr/bin/env python3`"),
        "{text}"
    );
}

#[test]
fn one_bad_manifest_does_not_hide_the_good_ones() {
    let env = TestEnv::new();
    let root = env.path().join("mixed");
    write_installer(&root, "good-one", &GOOD.replace("NAME", "good-one"));
    write_installer(&root, "broken", "id: broken\nname: [\n");
    let (code, text) = validate(&env, &root);
    assert_eq!(code, 1);
    assert!(text.contains("ok  good-one"), "{text}");
    assert!(text.contains("broken/manifest.yml:"), "{text}");
    // The same through the running catalog: list shows the good ones and reports the bad.
    let out = env
        .cmd()
        .arg("--installers")
        .arg(&root)
        .args(["catalog", "list"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("good-one") && stdout.contains("echo-ok"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken/manifest.yml"));
}

#[test]
fn fixture_and_bundled_catalogs_are_clean() {
    let env = TestEnv::new();
    let (code, text) = validate(&env, &common::fixtures());
    assert_eq!(code, 0, "{text}");
    let out = env.run(&["catalog", "validate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Item 8 of issue 13: inputs that became variables the loader, glibc, bash or sshd read.
#[test]
fn input_names_that_the_loader_glibc_bash_or_sshd_read_are_refused() {
    let env = TestEnv::new();
    let root = env.path().join("reserved");
    let names = [
        "ld_audit",
        "ld_debug",
        "gconv_path",
        "glibc_tunables",
        "posixly_correct",
        "bash_compat",
        "funcnest",
        "tmout",
        "ssh_connection",
    ];
    for name in names {
        let dir = format!("r-{}", name.replace('_', "-"));
        let manifest = format!(
            "id: {dir}\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: {name}\n    type: string\n"
        );
        write_installer(&root, &dir, &manifest);
    }
    let (code, text) = validate(&env, &root);
    assert_eq!(code, 1, "{text}");
    for name in names {
        let dir = format!("r-{}", name.replace('_', "-"));
        let line = text
            .lines()
            .find(|l| l.contains(&format!("{dir}/manifest.yml:6:5:")))
            .unwrap_or_else(|| panic!("{name}: no error at its line in\n{text}"));
        let env_name = format!("${}", name.to_uppercase());
        assert!(
            line.contains("is reserved")
                && line.contains(&env_name)
                && line.contains("pick another"),
            "{line}"
        );
    }
    assert!(!text.contains("ok  r-"), "none of them loads:\n{text}");
}

/// Item 9: 400 KB of nested `[` used to take over a minute to refuse.
#[test]
fn a_deeply_nested_manifest_is_refused_with_its_position() {
    let env = TestEnv::new();
    let root = env.path().join("nested");
    let manifest = format!(
        "id: deep\nname: x\nversion: '1'\ninstall_script: install.sh\ndescription: {}\n",
        "[".repeat(400_000)
    );
    write_installer(&root, "deep", &manifest);
    write_installer(&root, "good-one", &GOOD.replace("NAME", "good-one"));
    let (code, text) = validate(&env, &root);
    assert_eq!(code, 1, "{text}");
    // `description:` is one level, so the 64th `[` (column 14 + 63) is one too many.
    assert!(
        text.contains("deep/manifest.yml:5:77: nested more than 64 levels deep; flatten"),
        "{text}"
    );
    assert!(text.contains("ok  good-one"), "{text}");
    // Commands that need no installers do not read the directory at all.
    let out = env
        .cmd()
        .arg("--installers")
        .arg(&root)
        .args(["server", "list", "--json"])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("deep/manifest.yml"));
}

#[test]
fn an_oversized_manifest_is_refused_unread_with_its_size() {
    let env = TestEnv::new();
    let root = env.path().join("huge");
    write_installer(&root, "huge", "");
    // Sparse: 300 MiB that would cost 1 GiB of memory to parse.
    let f = std::fs::File::create(root.join("huge/manifest.yml")).expect("create");
    f.set_len(300 * 1024 * 1024).expect("set_len");
    let (code, text) = validate(&env, &root);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "huge/manifest.yml:1:1: manifest.yml is 300.0 MiB; manifests are limited to 1.0 MiB"
        ),
        "{text}"
    );
}

/// Item 15: no `0:0`, no `1:1` for a fault elsewhere, no `manifest.yml:0`.
#[test]
fn every_problem_names_a_real_line() {
    let env = TestEnv::new();
    let root = env.path().join("lines");
    write_installer(&root, "bad-utf8", "");
    std::fs::write(
        root.join("bad-utf8/manifest.yml"),
        b"id: bad-utf8\nname: caf\xe9\nversion: '1'\ninstall_script: install.sh\n",
    )
    .expect("write");
    let mut bomb = String::from(
        "id: bomb\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: a\n    type: string\n    default: [\n      &a [lol, lol, lol, lol, lol, lol, lol, lol, lol],\n",
    );
    for (n, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip("abcdefgh".chars())
    {
        bomb.push_str(&format!(
            "      &{n} [{}],\n",
            vec![format!("*{prev}"); 9].join(", ")
        ));
    }
    bomb.push_str("    ]\n");
    write_installer(&root, "bomb", &bomb);
    // Loads, with warnings about the manifest as a whole: no uninstall script, no health check.
    write_installer(&root, "warns", &GOOD.replace("NAME", "warns"));
    let (code, text) = validate(&env, &root);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("bad-utf8/manifest.yml:2:10: manifest.yml is not UTF-8 (an invalid byte at line 2, column 10); save it as UTF-8"),
        "{text}"
    );
    // The first alias, not 1:1.
    assert!(
        text.contains(
            "bomb/manifest.yml:10:11: its aliases expand to too many nodes; write the values out"
        ),
        "{text}"
    );
    assert!(
        text.contains("warns/manifest.yml:4: warning: no uninstall_script")
            && text.contains("warns/manifest.yml:1: warning: no health check"),
        "{text}"
    );
    for l in text.lines().filter(|l| l.contains("manifest.yml")) {
        assert!(!l.contains(".yml:0"), "line 0 in {l:?}");
    }
}

/// Item 11: a 1-3 character secret was masked inside every word that contained it.
#[test]
fn a_short_secret_is_refused_before_anything_runs() {
    let env = TestEnv::new();
    env.ok(&["server", "add", "s", "--host", "127.0.0.1", "--port", "1"]);
    let out = env
        .cmd()
        .env("SHORT_TOKEN", "ab3cd7f")
        .args([
            "install",
            "echo-ok",
            "--on",
            "s",
            "--set-env",
            "token=SHORT_TOKEN",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(18));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("input token: is a secret shorter than 8 characters")
            && err.contains("allow_short: true"),
        "{err}"
    );
    assert!(!err.contains("ab3cd7f"), "the value is not echoed: {err}");
    assert!(env.jobs_json().as_array().expect("array").is_empty());
}

/// Item 12: secrets are not recorded, so an upgrade used to run with them unset.
#[test]
fn upgrade_refuses_to_run_without_a_required_secret_its_script_reads() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let root = env.path().join("upgrades");
    write_installer(
        &root,
        "keyed",
        "id: keyed\nname: x\nversion: '1'\ninstall_script: install.sh\nupgrade_script: upgrade.sh\ninputs:\n  - name: api_key\n    type: password\n    required: true\n",
    );
    std::fs::write(
        root.join("keyed/upgrade.sh"),
        "#!/usr/bin/env bash\nset -euo pipefail\necho \"upgrade has a key: ${API_KEY:+yes}\"\n",
    )
    .expect("upgrade.sh");
    let run = |args: &[&str]| {
        env.cmd()
            .arg("--installers")
            .arg(&root)
            .env("KEYED_KEY", "k3y-for-the-upgrade")
            .args(args)
            .output()
            .expect("run")
    };
    let out = run(&[
        "install",
        "keyed",
        "--on",
        "s",
        "--set-env",
        "api_key=KEYED_KEY",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The install's key is sealed at rest: an upgrade without it reuses it.
    let out = run(&["upgrade", "keyed", "--on", "s"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("upgrade has a key: yes"), "{stdout}");
    // Without the secrets key (a database copied alone), nothing recorded can be used.
    std::fs::remove_file(env.db().with_file_name("secrets.key")).expect("secrets.key");
    let out = run(&["upgrade", "keyed", "--on", "s"]);
    assert_eq!(out.status.code(), Some(18));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("input api_key: is a required secret upgrade.sh reads")
            && err.contains("--set-env api_key=VAR"),
        "{err}"
    );
    assert_eq!(
        env.jobs_json().as_array().expect("array").len(),
        2,
        "no second upgrade job"
    );
    let out = run(&[
        "upgrade",
        "keyed",
        "--on",
        "s",
        "--set-env",
        "api_key=KEYED_KEY",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("upgrade has a key: yes"), "{stdout}");
}

/// The shorthand the installer platform publishes (`visible_if: {other: value}`) validates,
/// and `catalog show` states the condition.
#[test]
fn published_visible_if_shorthand_validates_and_shows() {
    let env = TestEnv::new();
    let root = env.path().join("short");
    write_installer(
        &root,
        "short",
        "id: short\nname: x\nversion: '1'\ninstall_script: install.sh\ninputs:\n  - name: other_field\n    type: select\n    default: value\n    validation: {allowed_values: [value, other]}\n  - name: tls\n    type: boolean\n    default: false\n  - name: shown\n    type: string\n    visible_if:\n      other_field: \"value\"\n      tls: true\n  - name: either\n    type: string\n    visible_if: {other_field: [value, other]}\n",
    );
    write_installer(&root, "good-one", &GOOD.replace("NAME", "good-one"));
    let (code, text) = validate(&env, &root);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("ok  short") && text.contains("ok  good-one"),
        "{text}"
    );
    let out = env
        .cmd()
        .arg("--installers")
        .arg(&root)
        .args(["catalog", "show", "short"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("shown if other_field = value and tls = true"),
        "{stdout}"
    );
    assert!(
        stdout.contains("shown if other_field in [value, other]"),
        "{stdout}"
    );
}
