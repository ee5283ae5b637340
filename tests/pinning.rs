//! Pinned installers through the real binary: `catalog pin DIR` writes catalog.lock, a script
//! changed by one byte is reported by `catalog validate` and refused at install (naming the
//! file, nothing run on the real sshd), and a re-pin after review lets it run again.

mod common;

use common::{Sshd, TestEnv, fixtures};
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_one_byte_change_after_pinning_is_refused_naming_the_file() {
    let env = TestEnv::new();
    let sshd = Sshd::start();
    env.add_server("s", &sshd);
    let cat = env.path().join("reviewed");
    copy_dir(&fixtures().join("echo-ok"), &cat.join("echo-ok"));
    let cat_s = cat.display().to_string();
    let pinned = env.ok(&["catalog", "pin", &cat_s]);
    assert!(pinned.contains("pinned   echo-ok/install.sh"), "{pinned}");
    assert!(pinned.contains("3 files pinned in"), "{pinned}");
    let lock = std::fs::read_to_string(cat.join("catalog.lock")).unwrap();
    assert!(lock.contains("  echo-ok/manifest.yml\n"), "{lock}");
    env.ok(&["catalog", "validate", &cat_s]);

    // One byte: `hello` -> `hellO` in a comment-free spot of the script.
    let script = cat.join("echo-ok/install.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    std::fs::write(&script, text.replacen("echo \"done\"", "echo \"donE\"", 1)).unwrap();
    let out = env.run(&["catalog", "validate", &cat_s]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = script.display().to_string();
    assert!(
        err.contains(&format!("{file}: sha256 ")) && err.contains("does not match its pin"),
        "{err}"
    );

    let marker = format!("/tmp/ptui-pin-{}", sshd.port);
    let _ = std::fs::remove_file(&marker);
    let install = |extra: &[&str]| {
        let mut args = vec!["--installers", &cat_s, "install", "echo-ok", "--on", "s"];
        args.extend_from_slice(extra);
        let out = env
            .cmd()
            .args(&args)
            .args([
                "--set",
                "token=abcdef123",
                "--set",
                &format!("out_file={marker}"),
            ])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = install(&[]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("installer echo-ok does not match its pins") && err.contains(&file),
        "{err}"
    );
    assert!(err.contains("catalog pin"), "says what to do: {err}");
    assert!(!Path::new(&marker).exists(), "nothing ran on the server");
    assert_eq!(
        env.jobs_json().as_array().unwrap().len(),
        0,
        "no job was created"
    );

    let repinned = env.ok(&["catalog", "pin", &cat_s]);
    assert!(
        repinned.contains("repinned echo-ok/install.sh"),
        "{repinned}"
    );
    let (code, err) = install(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(Path::new(&marker).exists());
    let _ = std::fs::remove_file(&marker);
}

#[test]
fn a_shared_file_beside_the_installers_is_pinned_for_all_of_them() {
    let env = TestEnv::new();
    let cat = env.path().join("cat");
    copy_dir(&fixtures().join("echo-ok"), &cat.join("echo-ok"));
    copy_dir(&fixtures().join("whoami"), &cat.join("whoami"));
    std::fs::create_dir_all(cat.join("lib")).unwrap();
    std::fs::write(cat.join("lib/common.sh"), "log() { echo \"$*\"; }\n").unwrap();
    let cat_s = cat.display().to_string();
    env.ok(&["catalog", "pin", &cat_s]);
    std::fs::write(cat.join("lib/common.sh"), "log() { echo \"$@\"; }\n").unwrap();
    let out = env.run(&["catalog", "validate", &cat_s]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("lib/common.sh: sha256").count(),
        2,
        "both installers: {err}"
    );
}
