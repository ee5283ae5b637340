//! A hostile server, manifest or inventory cannot drive the operator's terminal through the
//! CLI: every control it sends is shown visibly (`\u{1b}`), never emitted; JSON escapes C1;
//! hostile connection fields are refused; output into a closed pipe ends quietly. Real sshd,
//! real binary.

mod common;

use common::{Sshd, TestEnv, repo_root};
use std::process::{Command, Output};

/// Every byte the command wrote, stdout then stderr.
fn all_output(out: &Output) -> Vec<u8> {
    let mut b = out.stdout.clone();
    b.extend_from_slice(&out.stderr);
    b
}

/// Asserts no ESC, no BEL, no other C0 control but tab/newline, no DEL and no UTF-8 C1
/// control (C2 80..C2 9F) reached the terminal.
fn assert_no_controls(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for (i, &b) in bytes.iter().enumerate() {
        let c1 = b == 0xc2 && bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
        let c0 = (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f;
        assert!(
            !c0 && !c1,
            "{what}: control byte {b:#04x} at {i} in:\n{text}"
        );
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What the hostile-escapes installer prints, as the CLI must show it.
const VISIBLE: &[&str] = &[
    r"osc52 \u{1b}]52;c;cHduZWQ=\u{7} end",
    r"title \u{1b}]0;pwned\u{7} end",
    r"reset \u{1b}c end",
    r"dsr \u{1b}[6n end",
    r"da \u{1b}[c end",
    r"c1csi \u{9b}1;31m end",
    r"bell \u{7} end",
    r"stderr \u{1b}]0;err-title\u{7} end",
];

fn assert_hostile_lines_shown(what: &str, out: &Output) {
    let bytes = all_output(out);
    assert_no_controls(what, &bytes);
    let shown = text(&bytes);
    for v in VISIBLE {
        assert!(shown.contains(v), "{what}: {v:?} missing in:\n{shown}");
    }
    // The carriage-return progress line shows its final state only.
    assert!(shown.contains("progress 100%"), "{what}:\n{shown}");
    assert!(
        !shown.contains("10%") && !shown.contains("50%"),
        "{what}:\n{shown}"
    );
}

#[test]
fn install_and_logs_show_a_servers_escapes_visibly_and_never_emit_them() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    let install = env.run(&["install", "hostile-escapes", "--on", "s"]);
    assert!(install.status.success(), "{}", text(&install.stderr));
    assert_hostile_lines_shown("install", &install);
    let job = env.jobs_json()[0]["id"]
        .as_i64()
        .expect("job id")
        .to_string();

    for args in [
        vec!["logs", &job],
        vec!["logs", &job, "--follow"],
        vec!["logs", &job, "--timestamps"],
    ] {
        let out = env.run(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_hostile_lines_shown(&format!("{args:?}"), &out);
    }
    // A prefix before the text survives the text's carriage returns.
    let stamped = text(&env.run(&["logs", &job, "--timestamps"]).stdout);
    assert!(
        stamped
            .lines()
            .any(|l| l.ends_with("stdout progress 100%") && l.len() > 30),
        "{stamped}"
    );

    // --json: C1 escaped as JSON, and the text parses back to exactly what the server sent.
    for args in [
        vec!["logs", &job, "--json"],
        vec!["install", "hostile-escapes", "--on", "s", "--json"],
    ] {
        let out = env.run(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_no_controls(&format!("{args:?}"), &all_output(&out));
        let stdout = text(&out.stdout);
        assert!(stdout.contains(r"c1csi \u009b1;31m end"), "{stdout}");
        let texts: Vec<String> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "log")
            .filter_map(|v| v["text"].as_str().map(str::to_string))
            .collect();
        assert!(
            texts.contains(&"c1csi \u{9b}1;31m end".to_string()),
            "{texts:?}"
        );
        assert!(texts.contains(&"osc52 \x1b]52;c;cHduZWQ=\x07 end".to_string()));
    }
}

#[test]
fn fanout_prefixes_survive_a_lines_carriage_returns() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("a", &sshd);
    env.add_server("b", &sshd);
    let out = env.run(&["install", "hostile-escapes", "--on", "a,b"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_no_controls("fan-out install", &all_output(&out));
    let stdout = text(&out.stdout);
    let prefixed = stdout
        .lines()
        .filter(|l| l.starts_with("[#") && l.ends_with("] progress 100%"))
        .count();
    assert_eq!(prefixed, 2, "{stdout}");
}

/// `--installers` for the fixture catalog whose manifest fields carry escapes.
fn hostile_catalog() -> String {
    repo_root()
        .join("tests/fixtures/hostile-catalog")
        .display()
        .to_string()
}

#[test]
fn a_manifests_escapes_are_shown_visibly_in_the_catalog_and_the_running_line() {
    let env = TestEnv::new();
    let dir = hostile_catalog();
    let run = |args: &[&str]| {
        let out = env
            .cmd()
            .arg("--installers")
            .arg(&dir)
            .args(args)
            .output()
            .expect("run");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_no_controls(&format!("{args:?}"), &all_output(&out));
        text(&out.stdout)
    };
    let list = run(&["catalog", "list"]);
    assert!(
        list.contains(r"Evil \u{1b}]52;c;cHduZWQ=\u{7} description \u{9b}1m end"),
        "{list}"
    );
    assert!(list.contains(r"6\u{1b}[6n"), "{list}");
    let show = run(&["catalog", "show", "hostile-manifest"]);
    assert!(
        show.contains(r"Evil \u{1b}]0;name-title\u{7} name"),
        "{show}"
    );
    assert!(show.contains(r"Greeting \u{1b}c label"), "{show}");
    let json = run(&["catalog", "list", "--json"]);
    assert!(json.contains(r"\u009b1m end"), "{json}");

    // The `==> running` line quotes the manifest's version.
    let sshd = Sshd::start();
    env.add_server("s", &sshd);
    let out = env
        .cmd()
        .arg("--installers")
        .arg(&dir)
        .args(["install", "hostile-manifest", "--on", "s"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_no_controls("install hostile-manifest", &all_output(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r"==> running hostile-manifest install v6\u{1b}[6n"),
        "{stderr}"
    );
}

#[test]
fn hostile_connection_fields_are_refused_naming_the_flag() {
    let env = TestEnv::new();
    let cases: &[(&[&str], &str)] = &[
        (&["--host", "a "], "--host"),
        (&["--host", "h\x1b]0;t\x07"], "--host"),
        (&["--host", "h", "--port", "0"], "--port"),
        (&["--host", "h", "--tag", "a,b"], "--tag"),
        (&["--host", "h", "--tag", "x\x1b[6n"], "--tag"),
        (
            &["--host", "h", "--user", "root\x1b]52;c;eA==\x07"],
            "--user",
        ),
        (&["--host", "h", "--user", "u\u{9b}1m"], "--user"),
    ];
    for (extra, flag) in cases {
        let mut args = vec!["server", "add", "evil"];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        assert!(!out.status.success(), "{extra:?} was accepted");
        assert_no_controls(&format!("{extra:?}"), &all_output(&out));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(flag), "{extra:?}: {stderr}");
    }
    let list = env.run(&["server", "list"]);
    assert_no_controls("server list", &all_output(&list));
    assert!(text(&list.stdout).contains("no servers yet"));
}

#[test]
fn imports_skip_hostile_entries_and_report_them_visibly() {
    let env = TestEnv::new();
    let inv = env.path().join("inv.json");
    std::fs::write(
        &inv,
        r#"{"servers":[
            {"name":"good","host":"10.0.0.1"},
            {"name":"e1","host":"h\u001b]0;t\u0007"},
            {"name":"e2","host":"h2","user":"u\u009b1m"},
            {"name":"e3","host":"h3","tags":["a,b"]},
            {"name":"e4","host":"h4","port":0}]}"#,
    )
    .expect("write");
    let out = env.run(&["import", "command", &format!("cat {}", inv.display())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_no_controls("import report", &all_output(&out));
    let report = text(&out.stdout);
    for want in [
        r#"skipped: host "h\u{1b}]0;t\u{7}""#,
        r#"skipped: user "u\u{9b}1m""#,
        r#"skipped: tag "a,b""#,
        r#"skipped: port "0""#,
    ] {
        assert!(report.contains(want), "{want}: {report}");
    }
    let servers: serde_json::Value =
        serde_json::from_str(&env.ok(&["server", "list", "--json"])).expect("json");
    let names: Vec<&str> = servers
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["good"]);

    // A source that fails to parse: its name and its bad line are quoted in the error and in
    // the audit log.
    let ini = env.path().join("inv\x1b]0;t\x07\u{9b}.ini");
    std::fs::write(&ini, "[web]\nw1\n[bad\x1bc\u{9b}6n\n").expect("write");
    let failed = env.run(&["import", "ansible", &ini.display().to_string()]);
    assert!(!failed.status.success());
    assert_no_controls("import error", &all_output(&failed));
    assert!(
        text(&failed.stderr).contains(r"[bad\u{1b}c\u{9b}6n"),
        "{}",
        text(&failed.stderr)
    );
    assert!(text(&failed.stderr).contains(r"inv\u{1b}]0;t\u{7}\u{9b}.ini"));
    let audit = env.run(&["audit"]);
    assert_no_controls("audit", &all_output(&audit));
    let shown = text(&audit.stdout);
    assert!(shown.contains(r"[bad\u{1b}c\u{9b}6n"), "{shown}");
    assert!(shown.contains(r"inv\u{1b}]0;t\u{7}\u{9b}.ini"), "{shown}");
    let audit_json = env.run(&["audit", "--json"]);
    assert_no_controls("audit --json", &all_output(&audit_json));
    assert!(text(&audit_json.stdout).contains(r"inv\u001b]0;t\u0007\u009b.ini"));
}

/// Runs the binary as `provision-tui ARGS | head -1` in bash; returns its own exit status
/// (PIPESTATUS) and its stderr.
fn through_head(env: &TestEnv, args: &[&str]) -> (i32, String) {
    let bin = env.cmd();
    let err_file = env.path().join("pipe.err");
    let mut sh = Command::new("bash");
    sh.arg("-c")
        .arg(r#""$@" 2>"$ERR_FILE" | head -1 >/dev/null; exit "${PIPESTATUS[0]}""#)
        .arg("bash")
        .arg(bin.get_program())
        .args(bin.get_args())
        .args(args)
        .env("ERR_FILE", &err_file);
    for (k, v) in bin.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let status = sh.status().expect("bash");
    let stderr = std::fs::read_to_string(&err_file).unwrap_or_default();
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("s", &sshd);
    // Well over a pipe's 64 KiB, so the writer is still writing when `head` leaves.
    env.ok(&[
        "install",
        "hostile-escapes",
        "--on",
        "s",
        "--set",
        "filler_lines=20000",
    ]);
    let inv = env.path().join("many.json");
    let servers: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                r#"{{"name":"host-{i:05}","host":"10.1.{}.{}"}}"#,
                i / 250,
                i % 250
            )
        })
        .collect();
    std::fs::write(&inv, format!(r#"{{"servers":[{}]}}"#, servers.join(","))).expect("write");
    env.ok(&["import", "command", &format!("cat {}", inv.display())]);

    for args in [
        vec!["logs", "1"],
        vec!["logs", "1", "--json"],
        vec!["server", "list"],
        vec!["server", "list", "--json"],
    ] {
        let (code, stderr) = through_head(&env, &args);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert!(code == 0 || code == 141, "{args:?}: exit {code}, {stderr}");
    }
}

/// Every print of the CLI goes through `src/cli/out.rs`, so a new one cannot skip the
/// sanitiser: no print macro, raw stdout/stderr writer or JSON serialisation elsewhere.
#[test]
fn cli_prints_only_through_the_out_module() {
    let forbidden = regex::Regex::new(
        r"\b(e?print(ln)?!|execute!|queue!|io::stdout\(\)|io::stderr\(\)\.lock|serde_json::to_string|rpassword::)",
    )
    .expect("regex");
    let mut files = vec![repo_root().join("src/main.rs")];
    for e in std::fs::read_dir(repo_root().join("src/cli")).expect("src/cli") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("out.rs") {
            files.push(p);
        }
    }
    let mut found = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).expect("read");
        for (n, line) in src.lines().enumerate() {
            if forbidden.is_match(line) && !line.trim_start().starts_with("//") {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(files.len() > 5, "{files:?}");
    assert!(
        found.is_empty(),
        "print through src/cli/out.rs (outln!/errln!/out::json) instead:\n{}",
        found.join("\n")
    );
}
