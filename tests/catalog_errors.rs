//! `catalog validate` names the file, line and column of every kind of bad manifest,
//! and one bad manifest never hides the good ones.

mod common;

use common::TestEnv;
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
