//! Tests of the form model (kept apart: form.rs is near the file-size limit).
use super::*;
use crossterm::event::KeyModifiers;

const YAML: &str = r#"
id: demo
name: Demo
version: "1.0"
install_script: install.sh
inputs:
  - name: port
    type: port
    required: true
    default: 8080
  - name: tls
    type: boolean
    default: false
  - name: cert_email
    type: email
    required: true
    visible_if: { input: tls, equals: true }
  - name: mode
    type: select
    default: fast
    validation: { allowed_values: [fast, safe] }
  - name: admin_password
    type: password
    required: true
    validation: { min_length: 8 }
"#;

fn form() -> Form {
    let m: Manifest = yaml_serde::from_str(YAML).expect("fixture manifest");
    Form::new(
        FormKind::Install {
            app: "demo".into(),
            servers: vec!["web1".into()],
        },
        "Install Demo".into(),
        m,
    )
}

use crossterm::event::KeyCode;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn typ(f: &mut Form, s: &str) {
    for c in s.chars() {
        f.key(key(KeyCode::Char(c)));
    }
}

fn focus(f: &mut Form, name: &str) {
    f.focus = f
        .fields
        .iter()
        .position(|x| x.spec.name == name)
        .expect(name);
}

#[test]
fn defaults_prefilled_and_visible_if_live() {
    let mut f = form();
    assert_eq!(f.fields[0].value(), "8080");
    assert_eq!(f.fields[3].value(), "fast");
    assert!(
        !f.visible().contains(&2),
        "cert_email hidden while tls=false"
    );
    focus(&mut f, "tls");
    f.toggle();
    assert!(f.visible().contains(&2), "cert_email shown once tls=true");
}

#[test]
fn port_refuses_non_digits() {
    let mut f = form();
    focus(&mut f, "port");
    typ(&mut f, "9x1");
    assert_eq!(f.fields[0].value(), "808091");
    assert!(f.fields[0].error().is_some_and(|e| e.contains("1-65535")));
}

#[test]
fn validation_states_the_rule() {
    let mut f = form();
    focus(&mut f, "admin_password");
    typ(&mut f, "short");
    let e = f.fields[4].error().expect("too short");
    assert!(e.contains("8"), "{e}");
    assert!(!f.submit());
    assert!(!f.review);
    typ(&mut f, "enough!");
    assert!(f.submit());
    assert!(f.review);
}

#[test]
fn secrets_masked_everywhere_but_reveal() {
    let mut f = form();
    focus(&mut f, "admin_password");
    typ(&mut f, "hunter22secret");
    assert_eq!(f.fields[4].shown(false), "*".repeat(14));
    assert_eq!(f.fields[4].shown(true), "hunter22secret");
    let review = f.review_lines();
    assert!(review.iter().all(|(_, v)| !v.contains("hunter22")));
    assert!(
        review
            .iter()
            .any(|(l, v)| l == "admin_password" && v == "***")
    );
    assert_eq!(
        f.values().get("admin_password").map(String::as_str),
        Some("hunter22secret")
    );
}

#[test]
fn hidden_fields_are_not_sent_or_required() {
    let mut f = form();
    focus(&mut f, "admin_password");
    typ(&mut f, "longenough");
    assert!(f.submit(), "cert_email is hidden, so not required");
    assert!(!f.values().contains_key("cert_email"));
}

#[test]
fn select_cycles() {
    let mut f = form();
    focus(&mut f, "mode");
    f.left_right(true);
    assert_eq!(f.fields[3].value(), "safe");
    f.left_right(true);
    assert_eq!(f.fields[3].value(), "fast");
}

#[test]
fn server_form_builds_a_spec() {
    let mut f = Form::new(FormKind::AddServer, "Add".into(), server_manifest());
    typ(&mut f, "web1");
    f.next();
    typ(&mut f, "10.0.0.5");
    assert!(f.submit());
    let spec = server_spec(&f.values());
    assert_eq!(
        (spec.name.as_str(), spec.port, spec.user.as_str()),
        ("web1", 22, "root")
    );
}
