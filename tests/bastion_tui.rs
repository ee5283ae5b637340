//! The dashboard on a bastion, in tmux (its own tmux server, so `set-clipboard` touches no
//! other test): read-only keys explain instead of acting, and `y` copies a log line with
//! OSC 52 into tmux's buffer.

mod common;

use common::tmux::Tmux;
use common::{Sshd, TestEnv};
use std::process::Command;
use std::time::{Duration, Instant};

/// The tmux buffer `y` set last (waits a little for the terminal's write to arrive).
fn buffer(t: &Tmux) -> String {
    std::thread::sleep(Duration::from_millis(300));
    String::from_utf8_lossy(&t.tmux(&["show-buffer"]).stdout).into_owned()
}

fn dump(env: &TestEnv) -> String {
    let out = Command::new("sqlite3")
        .arg(env.db())
        .arg(".dump")
        .output()
        .expect("sqlite3");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn readonly_dashboard_keys_explain_and_change_nothing() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("web1", &sshd);
    let before = dump(&env);
    let t = Tmux::start(&env, &["--readonly"]);
    t.wait_for("the fleet", 20, |s| s.contains("web1"));
    t.keys(&["D"]);
    let s = t.wait_for("the explanation", 10, |s| {
        s.contains("read-only: removing a server")
    });
    assert!(!s.contains("Remove web1"), "a confirm dialog opened:\n{s}");
    t.keys(&["i"]);
    t.wait_for("install explained", 10, |s| {
        s.contains("read-only: running an installer")
    });
    t.keys(&["a"]);
    t.wait_for("add explained", 10, |s| {
        s.contains("read-only: adding a server")
    });
    // The help marks what is refused and says why; what only looks is not marked.
    t.keys(&["?"]);
    let s = t.wait_for("the help", 10, |s| s.contains("Keys: Fleet"));
    for refused in [
        "add server ✗",
        "remove server ✗",
        "edit server ✗",
        "trust host key ✗",
    ] {
        assert!(s.contains(refused), "{refused} not marked:\n{s}");
    }
    assert!(s.contains("✗ read-only: looking only"), "{s}");
    assert!(!s.contains("filter ✗") && !s.contains("details ✗"), "{s}");
    t.keys(&["Escape"]);
    // Looking still works: the jobs screen opens.
    t.keys(&["3"]);
    t.wait_for("jobs screen", 10, |s| s.contains("Jobs"));
    t.keys(&["q"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        dump(&env),
        before,
        "the read-only dashboard wrote to the database"
    );
}

#[test]
fn y_copies_the_log_line_into_tmux_buffer_with_osc52() {
    let sshd = Sshd::start();
    let env = TestEnv::new();
    env.add_server("web1", &sshd);
    env.install_echo_ok("web1", &["message=copy-me-please"]);
    let t = Tmux::start(&env, &[]);
    t.wait_for("the fleet", 20, |s| s.contains("web1"));
    t.keys(&["3"]);
    t.wait_for("the job", 10, |s| s.contains("echo-ok"));
    t.keys(&["Enter", "/"]);
    t.text("copy-me");
    t.keys(&["Enter"]);
    t.keys(&["y"]);
    t.wait_for("the copy", 10, |s| s.contains("copied the log line"));
    let deadline = Instant::now() + Duration::from_secs(5);
    let buf = loop {
        let out = t.tmux(&["show-buffer"]);
        if out.status.success() || Instant::now() > deadline {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(buf, "message: copy-me-please", "tmux buffer");

    // On the Jobs list, `y` copies the job's whole log.
    t.keys(&["Escape", "y"]);
    t.wait_for("the log copy", 10, |s| s.contains("copied the job's log"));
    let buf = buffer(&t);
    assert!(
        buf.contains("message: copy-me-please") && buf.lines().count() > 2,
        "the whole log: {buf:?}"
    );
    // On the Fleet, the server's address.
    t.keys(&["1", "y"]);
    t.wait_for("the address copy", 10, |s| {
        s.contains("copied the server's address")
    });
    assert_eq!(
        buffer(&t),
        format!("{}@127.0.0.1:{}", sshd.user, sshd.port),
        "the address"
    );
    // In the host-key dialog of a server not trusted yet, the fingerprint it shows.
    let other = Sshd::start();
    env.register("web2", &other, &other.user, &[]);
    t.wait_for("web2 listed", 20, |s| s.contains("web2"));
    t.keys(&["j", "t"]);
    let s = t.wait_for("the host key dialog", 20, |s| {
        s.contains("offered a host key we have not seen")
    });
    let shown = s
        .lines()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("SHA256:")))
        .expect("a fingerprint on screen")
        .to_string();
    t.keys(&["y"]);
    t.wait_for("the fingerprint copy", 10, |s| {
        s.contains("copied the fingerprint")
    });
    assert!(
        buffer(&t).ends_with(&shown) || buffer(&t) == shown,
        "fingerprint {shown:?} vs buffer {:?}",
        buffer(&t)
    );
    t.keys(&["r"]);

    // Turned off in config.yml: `y` says so and copies nothing new.
    let cfg = env.path().join("config/provision-tui");
    std::fs::create_dir_all(&cfg).expect("config dir");
    std::fs::write(cfg.join("config.yml"), "clipboard: false\n").expect("config");
    drop(t);
    let t = Tmux::start(&env, &[]);
    t.wait_for("the fleet", 20, |s| s.contains("web1"));
    t.keys(&["y"]);
    t.wait_for("off", 10, |s| s.contains("copying is off"));
    assert!(
        !t.tmux(&["show-buffer"]).status.success(),
        "a buffer was set"
    );
}
