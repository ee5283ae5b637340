//! The remote shell of a pooled connection (short commands such as health checks): framing
//! that nothing a command prints can break, the login shell run once per connection, and the
//! fallbacks. Real sshd on loopback, through `ptui_ssh` itself.

mod common;

use common::Sshd;
use ptui_ssh::{KnownHosts, Session, SshTarget, SudoMode};
use ptui_types::config::SshSettings;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

async fn session(sshd: &Sshd, dir: &std::path::Path) -> Session {
    session_as(sshd, dir, &sshd.user).await
}

async fn session_as(sshd: &Sshd, dir: &std::path::Path, user: &str) -> Session {
    let kh = dir.join("known_hosts");
    let key = sshd.host_public_key();
    let mut fields = key.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}\n",
        sshd.port,
        fields.next().expect("key type"),
        fields.next().expect("key data")
    );
    std::fs::write(&kh, line).expect("known_hosts");
    let target = SshTarget {
        name: "s".into(),
        host: "127.0.0.1".into(),
        port: sshd.port,
        user: user.to_string(),
        identity: Some(sshd.client_key.clone()),
        password_env: None,
        jump: None,
        sudo: SudoMode::default(),
    };
    ptui_ssh::connect(&target, &SshSettings::default(), &KnownHosts::new(kh, None))
        .await
        .expect("connect")
}

/// A login whose `~/.bashrc` counts its runs (a heavy rc file such as pyenv's would cost
/// seconds each time), logging in to `sshd` with the test key. None when not root.
const RC_USER: &str = "ptui-rc";

fn rc_counting_login(sshd: &Sshd) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n");
    if !root.unwrap_or(false) {
        eprintln!("skipping the rc count: needs root to create {RC_USER}");
        return None;
    }
    if !Command::new("id")
        .arg(RC_USER)
        .status()
        .is_ok_and(|s| s.success())
    {
        let made = Command::new("useradd")
            .args(["-m", "-s", "/bin/bash", RC_USER])
            .status()
            .is_ok_and(|s| s.success());
        assert!(made, "useradd {RC_USER}");
    }
    // Not locked (sshd refuses locked accounts even with a key), no usable password.
    assert!(
        Command::new("usermod")
            .args(["-p", "*", RC_USER])
            .status()
            .is_ok_and(|s| s.success())
    );
    let home = std::path::PathBuf::from(format!("/home/{RC_USER}"));
    let runs = home.join("rc-runs");
    let _ = std::fs::remove_file(&runs);
    std::fs::write(
        home.join(".bashrc"),
        format!("echo run >> {}\n", runs.display()),
    )
    .expect(".bashrc");
    std::fs::set_permissions(&sshd.dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ak = sshd.dir.join(format!("authorized_keys.{RC_USER}"));
    std::fs::copy(sshd.dir.join("client_key.pub"), &ak).expect("authorized key");
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    Some(runs)
}

fn runs(file: &std::path::Path) -> usize {
    std::fs::read_to_string(file)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_shell_runs_once_per_connection_not_once_per_command() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sshd = Sshd::start();
    let Some(counter) = rc_counting_login(&sshd) else {
        return;
    };
    let s = session_as(&sshd, tmp.path(), RC_USER).await;
    for i in 0..5 {
        let c = s
            .run_repeatable(&format!("echo check {i}"), LIMIT)
            .await
            .expect("run");
        assert_eq!(c.stdout, format!("check {i}\n"));
        assert_eq!(c.exit_code, Some(0));
    }
    assert_eq!(runs(&counter), 1, "five commands, one login shell");
    // One exec per command, the way without the shell, pays it every time.
    for _ in 0..3 {
        ptui_ssh::exec::exec_capture(&s, "true", b"")
            .await
            .expect("exec");
    }
    assert_eq!(runs(&counter), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_command_prints_breaks_the_framing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sshd = Sshd::start();
    let s = session(&sshd, tmp.path()).await;

    // Fake answer ends, the ready line, and the nonce variable (unset for the command).
    let c = s
        .run_repeatable(
            r#"printf '\0ptui0000000000000000 0\n__PTUI_SHELL_READY 1\n'; printf '\0ptuiX\n' >&2; echo "n=${__ptui_n-unset}"; exit 7"#,
            LIMIT,
        )
        .await
        .expect("run");
    assert_eq!(
        c.stdout,
        "\0ptui0000000000000000 0\n__PTUI_SHELL_READY 1\nn=unset\n"
    );
    assert_eq!(c.stderr, "\0ptuiX\n");
    assert_eq!(c.exit_code, Some(7));

    // Binary and invalid UTF-8, no newline at the end.
    let c = s
        .run_repeatable(r"printf '\377\376\0abc'; printf 'e\200' >&2", LIMIT)
        .await
        .expect("run");
    assert_eq!(c.stdout, "\u{fffd}\u{fffd}\0abc");
    assert_eq!(c.stderr, "e\u{fffd}");

    // A command that closes its stdout early, or exits, or reads stdin, leaves the shell as
    // it was: the next request is answered on the same shell.
    let c = s
        .run_repeatable(
            "exec >&-; echo gone >&2; read -r x; echo \"read $?\" >&2",
            LIMIT,
        )
        .await
        .expect("run");
    assert_eq!(
        (c.stdout.as_str(), c.stderr.as_str()),
        ("", "gone\nread 1\n")
    );
    let c = s.run_repeatable("echo $$", LIMIT).await.expect("run");
    let first_pid = c.stdout.clone();
    let c = s
        .run_repeatable("set -e; false; echo no", LIMIT)
        .await
        .expect("run");
    assert_eq!((c.stdout.as_str(), c.exit_code), ("", Some(1)));
    let c = s.run_repeatable("echo $$", LIMIT).await.expect("run");
    assert_eq!(c.stdout, first_pid, "the same remote shell answered");
}

/// The health probe's way: a function defined in the shell by its first request, then run in
/// the shell itself (no fork: `$BASHPID` is the loop's `$$`), its `local` variables kept in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_function_runs_in_the_shell_and_keeps_its_variables() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sshd = Sshd::start();
    let s = session(&sshd, tmp.path()).await;
    let body = "local x=inside\n__ptui_o=\"pid $BASHPID $$ x=$x\n\"";
    let first = s.run_resident(body, LIMIT).await.expect("run");
    let w: Vec<&str> = first.stdout.split_whitespace().collect();
    assert_eq!(w.len(), 4, "{:?}", first.stdout);
    assert_eq!(
        w[1], w[2],
        "ran in the shell, not a subshell: {:?}",
        first.stdout
    );
    assert_eq!(w[3], "x=inside");
    assert_eq!(first.exit_code, Some(0));
    let again = s.run_resident(body, LIMIT).await.expect("run");
    assert_eq!(
        again.stdout, first.stdout,
        "the same shell, the same function"
    );
    let c = s
        .run_resident(
            "__ptui_o=\"x=${x-unset} f=$(type -t __ptui_missing || echo none)\"",
            LIMIT,
        )
        .await
        .expect("run");
    assert_eq!(c.stdout, "x=unset f=none", "local stayed local");
    // An answer that holds a fake end, and a failing status, come back whole.
    let c = s
        .run_resident("__ptui_o=\"$(printf 'a\\nptui0000 0\\n')\"; false", LIMIT)
        .await
        .expect("run");
    assert_eq!((c.stdout.as_str(), c.exit_code), ("a\nptui0000 0", Some(1)));
    // Subshell requests still work on the same shell afterwards.
    let c = s.run_repeatable("echo $$", LIMIT).await.expect("run");
    assert_eq!(c.stdout.trim(), w[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_killed_mid_request_is_replaced_and_the_request_run_again() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sshd = Sshd::start();
    let s = session(&sshd, tmp.path()).await;
    let mark = tmp.path().join("killed-once");
    // In the shell ($$ is the loop) the first run kills it; the re-run, by exec, survives.
    let script = format!(
        "if [ ! -e {m} ]; then touch {m}; kill -9 $$; sleep 5; fi; echo survived",
        m = mark.display()
    );
    let c = s.run_repeatable(&script, LIMIT).await.expect("run");
    assert!(mark.exists(), "the first run went through the shell");
    assert_eq!(c.stdout, "survived\n");
    // A new shell serves the next request.
    let c = s.run_repeatable("echo again", LIMIT).await.expect("run");
    assert_eq!(c.stdout, "again\n");
    // The same for a resident function, which runs in the loop's own process.
    let mark = tmp.path().join("resident-killed-once");
    let body = format!(
        "if [ ! -e {m} ]; then : >{m}; kill -9 $$; fi\n__ptui_o=survived",
        m = mark.display()
    );
    let c = s.run_resident(&body, LIMIT).await.expect("run");
    assert!(mark.exists(), "the first run went through the shell");
    assert_eq!(c.stdout, "survived");
    let c = s.run_resident("__ptui_o=next", LIMIT).await.expect("run");
    assert_eq!(c.stdout, "next");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_requests_on_one_connection_all_answer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sshd = Sshd::start();
    let s = Arc::new(session(&sshd, tmp.path()).await);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.run_repeatable(&format!("echo {i}; echo e{i} >&2"), LIMIT)
                .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let c = t.await.expect("join").expect("run");
        assert_eq!((c.stdout, c.stderr), (format!("{i}\n"), format!("e{i}\n")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_command_server_gets_one_exec_per_command() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Allows `sh -s` only, as a restricted account might; refuses our shell's command.
    let gate = tmp.path().join("gate.sh");
    std::fs::write(
        &gate,
        format!(
            "#!/bin/sh\ncase \"$SSH_ORIGINAL_COMMAND\" in\n  'sh -s') exec sh -s ;;\n  *) echo refused >> {}; echo refused >&2; exit 1 ;;\nesac\n",
            tmp.path().join("refusals").display()
        ),
    )
    .expect("gate");
    std::fs::set_permissions(&gate, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let sshd = Sshd::start_with(&format!("ForceCommand {}\n", gate.display()));
    let s = session(&sshd, tmp.path()).await;
    for i in 0..3 {
        let c = s
            .run_repeatable(&format!("echo via exec {i}"), LIMIT)
            .await
            .expect("run");
        assert_eq!(c.stdout, format!("via exec {i}\n"));
        let c = s
            .run_resident(&format!("local v={i}\n__ptui_o=\"resident $v\""), LIMIT)
            .await
            .expect("run");
        assert_eq!((c.stdout, c.exit_code), (format!("resident {i}"), Some(0)));
    }
    let refusals = std::fs::read_to_string(tmp.path().join("refusals")).unwrap_or_default();
    assert_eq!(
        refusals.lines().count(),
        1,
        "the shell is tried once, then remembered"
    );
}
