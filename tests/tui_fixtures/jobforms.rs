//! Issue 14's jobs and forms: re-run, prefill from the deployment, Esc on a filled form,
//! maintenance refused at the form's start, export of a job's log.

use crate::tui_fixtures::*;
use crossterm::event::KeyCode;
use ptui_tui::app::{Cmd, Modal, Screen};

#[test]
fn esc_on_a_filled_form_asks_first() {
    let mut a = full();
    a.open_install("echo-ok", vec!["web1".into()]);
    key(&mut a, KeyCode::Esc);
    assert!(
        a.modal.is_none() && a.ctx() == ptui_tui::keymap::Ctx::Fleet,
        "untouched: closes"
    );
    a.open_install("echo-ok", vec!["web1".into()]);
    typ(&mut a, " there");
    key(&mut a, KeyCode::Esc);
    assert!(
        matches!(a.modal, Some(Modal::Confirm { .. })),
        "filled: asks"
    );
    let text = render(&mut a, 80, 24).backend().to_string();
    assert!(text.contains("Discard the form?"), "{text}");
    key(&mut a, KeyCode::Char('n'));
    assert_eq!(a.ctx(), ptui_tui::keymap::Ctx::Form, "n keeps the form");
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('y'));
    assert_eq!(a.ctx(), ptui_tui::keymap::Ctx::Fleet, "y discards");
}

#[test]
fn maintenance_refuses_the_install_before_the_form() {
    let mut a = full();
    a.open_install("echo-ok", vec!["db-01".into(), "web1".into()]);
    assert_eq!(a.ctx(), ptui_tui::keymap::Ctx::Fleet, "no form opened");
    let (msg, err) = a.flash.clone().expect("a message");
    assert!(err, "{msg}");
    assert!(msg.contains("db-01 is maintenance"), "{msg}");
    assert!(
        msg.contains("S sets another status") && !msg.contains("provision-tui"),
        "{msg}"
    );
}

#[test]
fn r_reruns_a_job_with_its_inputs_and_asks_secrets_again() {
    let mut a = full();
    a.screen = Screen::Jobs;
    a.jobs.jobs[1].inputs = serde_json::json!({"message": "again", "token": "***", "port": 9090});
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Char('r'));
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(text.contains("Install Echo OK 1.0 on web2"), "{text}");
    assert!(text.contains("again") && text.contains("9090"), "{text}");
    assert!(text.contains("re-run of job #2"), "{text}");
    let ptui_tui::app::Page::Form(f) = a.page_mut().expect("form") else {
        panic!("not a form")
    };
    let v = f.values();
    assert_eq!(
        v.get("token").map(String::as_str),
        Some(""),
        "the secret is asked again"
    );
}

#[test]
fn a_recorded_deployment_prefills_an_untouched_form() {
    let mut a = full();
    a.open_install("echo-ok", vec!["web1".into()]);
    a.on_prefill(
        "web1",
        "echo-ok",
        Some(serde_json::json!({"message": "deployed", "verbose": true})),
    );
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(
        text.contains("deployed") && text.contains("[x] true"),
        "{text}"
    );
    assert!(
        text.contains("filled from the deployment of echo-ok on web1"),
        "{text}"
    );
    // Once the operator typed, a late answer changes nothing.
    let mut a = full();
    a.open_install("echo-ok", vec!["web1".into()]);
    typ(&mut a, "!");
    a.on_prefill(
        "web1",
        "echo-ok",
        Some(serde_json::json!({"message": "deployed"})),
    );
    assert!(
        render(&mut a, 120, 40)
            .backend()
            .to_string()
            .contains("hello!")
    );
}

#[test]
fn x_exports_the_log_off_the_loop() {
    let mut a = full();
    a.screen = Screen::Jobs;
    a.jobs.focus_log = true;
    key(&mut a, KeyCode::Char('x'));
    assert!(
        a.cmds.iter().any(|c| matches!(c, Cmd::ExportLog(3))),
        "{:?}",
        a.cmds
    );
}

#[test]
fn a_multi_line_paste_lands_whole_in_the_focused_field() {
    let mut a = full();
    a.open_install("echo-ok", vec!["web1".into()]);
    for _ in 0.."hello".len() {
        key(&mut a, KeyCode::Backspace);
    }
    a.paste("-----BEGIN KEY-----\r\nMIIB\r\n-----END KEY-----\r\n");
    let ptui_tui::app::Page::Form(f) = a.page_mut().expect("form") else {
        panic!("not a form")
    };
    assert_eq!(
        f.values().get("message").map(String::as_str),
        Some("-----BEGIN KEY-----\nMIIB\n-----END KEY-----\n"),
        "line ends kept, as LF"
    );
    assert_eq!(a.ctx(), ptui_tui::keymap::Ctx::Form, "no Enter was pressed");
    // In the palette a paste is one line.
    let mut a = full();
    key(&mut a, KeyCode::Char(':'));
    a.paste("jobs\n");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.screen, Screen::Jobs);
}

#[test]
fn a_public_key_field_is_offered_the_operators_keys() {
    use crossterm::event::{KeyEvent, KeyModifiers};
    let mut a = full();
    let m: ptui_catalog::Manifest = yaml_serde::from_str(
        r#"
id: keys
name: Keys
version: "1"
install_script: install.sh
inputs:
  - name: ssh_public_key
    type: string
    label: SSH public key
    required: true
"#,
    )
    .expect("manifest");
    a.catalog.items.push(m);
    a.open_install("keys", vec!["web1".into()]);
    a.on_pubkeys(vec![
        (
            "~/.ssh/id_ed25519.pub".into(),
            "ssh-ed25519 AAAAone op@laptop".into(),
        ),
        ("the SSH agent".into(), "ssh-rsa AAAAtwo op@yubikey".into()),
    ]);
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(text.contains("ssh-ed25519 AAAAone op@laptop"), "{text}");
    assert!(
        text.contains("public key from ~/.ssh/id_ed25519.pub; Ctrl-o picks another (2 found)"),
        "{text}"
    );
    a.key(KeyEvent::new(KeyCode::Char('o'), KeyModifiers::CONTROL));
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(text.contains("ssh-rsa AAAAtwo op@yubikey"), "{text}");
    assert!(text.contains("public key from the SSH agent"), "{text}");
}

#[test]
fn a_pattern_error_is_said_in_words_once() {
    let mut a = full();
    let m: ptui_catalog::Manifest = yaml_serde::from_str(
        r#"
id: users
name: Users
version: "1"
install_script: install.sh
inputs:
  - name: ssh_user
    type: string
    label: Login name
    description: a Linux user name (lower case, digits, - and _)
    validation: { pattern: '[a-z_][a-z0-9_-]{0,31}' }
"#,
    )
    .expect("manifest");
    a.catalog.items.push(m);
    a.open_install("users", vec!["web1".into()]);
    typ(&mut a, "Bad User");
    key(&mut a, KeyCode::Tab);
    let text = render(&mut a, 120, 40).backend().to_string();
    assert!(
        text.contains("not in the expected form: a Linux user name (lower case, digits, - and _)"),
        "{text}"
    );
    let error_line = text.lines().find(|l| l.contains('✗')).unwrap_or_default();
    assert!(!error_line.contains("[a-z_]"), "no raw regex: {error_line}");
}

/// A list input checked per item, as the installer checks it: the form refuses a port over
/// 65535 the old whole-value regex let through, in the manifest's words.
#[test]
fn a_list_input_is_checked_item_by_item_in_the_manifests_words() {
    let mut a = full();
    let m: ptui_catalog::Manifest = yaml_serde::from_str(
        r#"
id: fw
name: Firewall
version: "1"
install_script: install.sh
inputs:
  - name: extra_ports
    type: string
    label: Extra open ports
    validation:
      message: ports like 8080, 5432/tcp or 51820/udp (1-65535), separated by commas
      items: { type: port, protocols: [tcp, udp] }
"#,
    )
    .expect("manifest");
    a.catalog.items.push(m);
    a.open_install("fw", vec!["web1".into()]);
    typ(&mut a, "8080,99999/udp");
    key(&mut a, KeyCode::Tab);
    let text = render(&mut a, 120, 40).backend().to_string();
    // The message, wrapped under the field: read whole.
    let error_line: String = text
        .lines()
        .skip_while(|l| !l.contains('✗'))
        .take(3)
        .map(|l| l.trim_matches(|c: char| matches!(c, '│' | '✗' | '"') || c.is_whitespace()))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        error_line.starts_with(
            "item 2 \"99999/udp\" must be a port between 1 and 65535, got 99999; expected ports like 8080, 5432/tcp or 51820/udp (1-65535)"
        ),
        "{error_line}"
    );
    insta::assert_snapshot!("form_list_items_80x24", render(&mut a, 80, 24).backend());
    // A valid list passes to the review.
    let mut b = full();
    b.catalog.items = a.catalog.items.clone();
    b.open_install("fw", vec!["web1".into()]);
    typ(&mut b, "8080, 51820/udp");
    b.key(crossterm::event::KeyEvent::new(
        KeyCode::Char('s'),
        crossterm::event::KeyModifiers::CONTROL,
    ));
    let text = render(&mut b, 120, 40).backend().to_string();
    assert!(text.contains("Review before starting"), "{text}");
}

/// The cancel dialog as the package-manager check answered (the tmux test does it for real).
#[test]
fn the_cancel_dialog_says_what_runs_on_the_server() {
    let mut a = full();
    a.screen = Screen::Jobs;
    let id = a.jobs.selected().map(|j| j.id).expect("a job");
    key(&mut a, KeyCode::Char('c'));
    assert!(
        matches!(a.modal, Some(Modal::Confirm { .. })),
        "{:?}",
        a.modal
    );
    a.apply(ptui_tui::work::Msg::PackageNote(
        id,
        Ok(Some(
            "a package manager is running on web1: 4242 /usr/bin/dpkg --configure -a; it gets up to 30s after TERM to finish before it is killed, and the next run of an installer repairs an interrupted dpkg".into(),
        )),
    ));
    let text = render(&mut a, 80, 24).backend().to_string();
    assert!(text.contains("4242 /usr/bin/dpkg"), "{text}");
    insta::assert_snapshot!(
        "cancel_package_manager_80x24",
        render(&mut a, 80, 24).backend()
    );
}
