//! The Debian package on a real Debian 12 server with systemd (the lab, tests/lab/lab.sh):
//! `dpkg -i` installs it, `systemctl start provision-tui-watch` runs checks that land in its
//! database, `systemctl stop` stops it cleanly, `dpkg -r` leaves /var/lib/provision-tui.
//! The package is built with packaging/build-deb.sh from the debug binary cargo already
//! built (seconds, not a release build). Skipped with the reason where the lab cannot run;
//! `PROVISION_TUI_LAB=1` makes that a failure. `PTLAB_ID` picks the lab (as lab.sh does).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A lab server number the installer suite (tests/lab/run.sh) does not use.
const SERVER: &str = "41";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn lab(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(root().join("tests/lab/lab.sh"))
        .args(args)
        .output()
        .expect("lab.sh")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

struct Server {
    ip: String,
    key: String,
}

impl Server {
    fn ssh(&self, cmd: &str, stdin: Option<&Path>) -> Output {
        let mut c = Command::new("ssh");
        c.args([
            "-i",
            &self.key,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
        ])
        .arg(format!("root@{}", self.ip))
        .arg(cmd);
        if let Some(f) = stdin {
            c.stdin(std::fs::File::open(f).expect("stdin file"));
        }
        c.output().expect("ssh")
    }

    /// Runs and asserts success; returns stdout.
    fn ok(&self, cmd: &str) -> String {
        let o = self.ssh(cmd, None);
        assert!(
            o.status.success(),
            "on the lab server: {cmd}\nexit {:?}\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        stdout(&o)
    }
}

struct Down;
impl Drop for Down {
    fn drop(&mut self) {
        if std::env::var("PTLAB_KEEP").as_deref() != Ok("1") {
            let _ = lab(&["down", SERVER]);
        }
    }
}

/// The CLI as the watcher's user, with the unit's environment.
const AS_WATCHER: &str = "runuser -u provision-tui -- env HOME=/var/lib/provision-tui XDG_CONFIG_HOME=/etc XDG_DATA_HOME=/var/lib XDG_STATE_HOME=/var/lib/provision-tui/log PROVISION_TUI_DB=/var/lib/provision-tui/state.db provision-tui";

#[test]
fn the_package_installs_runs_the_watcher_and_leaves_the_data_on_removal() {
    let required = std::env::var("PROVISION_TUI_LAB").as_deref() == Ok("1");
    if std::env::var("PROVISION_TUI_LAB").as_deref() == Ok("0") {
        eprintln!("package test SKIPPED: PROVISION_TUI_LAB=0");
        return;
    }
    let check = lab(&["check"]);
    if !check.status.success() {
        let why = stdout(&check);
        assert!(
            !required,
            "PROVISION_TUI_LAB=1 but the lab cannot run: {why}"
        );
        eprintln!("package test SKIPPED: {why}");
        return;
    }
    let t0 = Instant::now();
    let out_dir = tempfile::tempdir().expect("tempdir");
    let built = Command::new("bash")
        .arg(root().join("packaging/build-deb.sh"))
        .arg(env!("CARGO_BIN_EXE_provision-tui"))
        .arg(out_dir.path())
        .output()
        .expect("build-deb.sh");
    assert!(
        built.status.success(),
        "build-deb.sh: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = PathBuf::from(stdout(&built));
    eprintln!("package built in {:?}", t0.elapsed());

    let up = lab(&["up", SERVER]);
    assert!(
        up.status.success(),
        "lab up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let _down = Down;
    let s = Server {
        ip: stdout(&lab(&["ip", SERVER])),
        key: stdout(&lab(&["key"])),
    };
    let copied = s.ssh("cat > /tmp/provision-tui.deb", Some(&deb));
    assert!(copied.status.success());
    s.ok("dpkg -i /tmp/provision-tui.deb");

    // What the package put in place.
    assert_eq!(
        s.ok("stat -c '%U %a' /var/lib/provision-tui"),
        "provision-tui 700"
    );
    assert!(
        s.ok("getent passwd provision-tui")
            .ends_with(":/var/lib/provision-tui:/usr/sbin/nologin")
    );
    s.ok("test -s /usr/share/man/man1/provision-tui.1.gz && test -s /usr/share/man/man1/provision-tui-watch.1.gz");
    s.ok("test -s /usr/share/zsh/vendor-completions/_provision-tui && test -s /usr/share/fish/vendor_completions.d/provision-tui.fish");
    let complete = s.ok("bash -c 'source /usr/share/bash-completion/completions/provision-tui && complete -p provision-tui'");
    assert!(complete.contains("provision-tui"), "{complete}");
    let unit = s.ok("systemctl show -p User,ProtectSystem,NoNewPrivileges,PrivateTmp,Restart,ReadWritePaths provision-tui-watch");
    for want in [
        "User=provision-tui",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "ReadWritePaths=/var/lib/provision-tui",
    ] {
        assert!(unit.contains(want), "{want} not in:\n{unit}");
    }

    // The watcher checks the server itself over its own sshd, with its own key; one config
    // file: fast checks and roles (the watcher's account is an operator, root an admin).
    s.ok("install -d -o provision-tui -g provision-tui -m 0700 /var/lib/provision-tui/.ssh && \
          runuser -u provision-tui -- ssh-keygen -q -t ed25519 -N '' -f /var/lib/provision-tui/.ssh/id_ed25519 && \
          cat /var/lib/provision-tui/.ssh/id_ed25519.pub >> /root/.ssh/authorized_keys");
    s.ok("printf 'health:\\n  interval: 1s\\nroles:\\n  users:\\n    provision-tui: operator\\n    root: admin\\n  default: viewer\\n' > /etc/provision-tui/config.yml");
    // Adding a server is an admin's: the watcher's account is refused, root (admin) adds it.
    let refused = s.ssh(
        &format!("{AS_WATCHER} server add self --host 127.0.0.1 --user root"),
        None,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs the admin role"));
    let root_cli = "env PROVISION_TUI_DB=/var/lib/provision-tui/state.db provision-tui";
    s.ok(&format!("{root_cli} server add self --host 127.0.0.1 --user root --identity /var/lib/provision-tui/.ssh/id_ed25519"));
    s.ok(&format!("{AS_WATCHER} server trust self --yes"));
    s.ok("chown -R provision-tui:provision-tui /var/lib/provision-tui");

    s.ok("systemctl start provision-tui-watch");
    let deadline = Instant::now() + Duration::from_secs(30);
    let checks = loop {
        let m = s.ok(&format!("{AS_WATCHER} metrics --json"));
        let v: serde_json::Value = serde_json::from_str(&m).unwrap_or_default();
        let n = v["checks_24h"].as_i64().unwrap_or(0);
        if n >= 2 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let journal = s.ok("journalctl -u provision-tui-watch --no-pager | tail -20");
    assert!(
        checks >= 2,
        "the watcher stored {checks} checks; journal:\n{journal}"
    );
    assert_eq!(s.ok("systemctl is-active provision-tui-watch"), "active");

    s.ok("systemctl stop provision-tui-watch");
    let state = s.ok("systemctl show -p ActiveState,Result,ExecMainStatus provision-tui-watch");
    assert!(
        state.contains("ActiveState=inactive") && state.contains("Result=success"),
        "not a clean stop:\n{state}"
    );
    assert!(
        s.ssh("pgrep -u provision-tui -f 'provision-tui watch'", None)
            .status
            .code()
            == Some(1)
    );

    s.ok("dpkg -r provision-tui");
    s.ok("test ! -e /usr/bin/provision-tui");
    s.ok("test -s /var/lib/provision-tui/state.db && test -s /var/lib/provision-tui/known_hosts");
    eprintln!("package test done in {:?}", t0.elapsed());
}
