//! Tests of the key tables (kept apart: keymap.rs is near the file-size limit).
use super::*;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

#[test]
fn space_toggles_a_choice_field_and_types_into_a_text_field() {
    let space = key(KeyCode::Char(' '));
    assert_eq!(lookup_in(Ctx::Form, &space, false), Some(Action::Toggle));
    assert_eq!(
        lookup_in(Ctx::Form, &space, true),
        Some(Action::Input(space))
    );
    // Letters on a toggle still reach the field (which ignores them), not a screen key.
    let q = key(KeyCode::Char('q'));
    assert_eq!(lookup_in(Ctx::Form, &q, false), Some(Action::Input(q)));
}

#[test]
fn vim_and_arrows_agree() {
    assert_eq!(
        lookup(Ctx::Fleet, &key(KeyCode::Char('j'))),
        Some(Action::Down)
    );
    assert_eq!(lookup(Ctx::Fleet, &key(KeyCode::Down)), Some(Action::Down));
    assert_eq!(
        lookup(Ctx::Jobs, &key(KeyCode::Char('k'))),
        Some(Action::Up)
    );
    assert_eq!(lookup(Ctx::Log, &key(KeyCode::End)), Some(Action::Bottom));
    assert_eq!(
        lookup(Ctx::Log, &key(KeyCode::Char('G'))),
        Some(Action::Bottom)
    );
}

#[test]
fn globals_apply_on_screens_not_in_dialogs() {
    assert_eq!(
        lookup(Ctx::Fleet, &key(KeyCode::Char('3'))),
        Some(Action::Screen(3))
    );
    assert_eq!(
        lookup(Ctx::Fleet, &key(KeyCode::Char('q'))),
        Some(Action::Quit)
    );
    assert_eq!(lookup(Ctx::Confirm, &key(KeyCode::Char('q'))), None);
    assert_eq!(
        lookup(Ctx::Confirm, &key(KeyCode::Char('y'))),
        Some(Action::Yes)
    );
    assert_eq!(
        lookup(Ctx::HostKey, &key(KeyCode::Char('a'))),
        Some(Action::Yes)
    );
}

#[test]
fn text_contexts_type_letters() {
    let q = key(KeyCode::Char('q'));
    assert_eq!(lookup(Ctx::Form, &q), Some(Action::Input(q)));
    assert_eq!(lookup(Ctx::Palette, &q), Some(Action::Input(q)));
    assert_eq!(lookup(Ctx::Form, &key(KeyCode::Esc)), Some(Action::Back));
    let save = KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert_eq!(lookup(Ctx::Form, &save), Some(Action::Submit));
    assert_eq!(
        lookup(Ctx::Form, &key(KeyCode::Backspace)),
        Some(Action::Input(key(KeyCode::Backspace)))
    );
}

#[test]
fn shifted_letters_match() {
    let ev = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
    assert_eq!(lookup(Ctx::Jobs, &ev), Some(Action::Bottom));
    assert_eq!(
        lookup(
            Ctx::Fleet,
            &KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)
        ),
        Some(Action::PrevScreen)
    );
}

#[test]
fn no_key_is_bound_twice_in_a_context() {
    for ctx in ALL_CTX {
        let all = active(ctx);
        let mut seen: Vec<Key> = Vec::new();
        for bnd in bindings(ctx) {
            for key in bnd.keys {
                assert!(!seen.contains(key), "{ctx:?}: {key:?} bound twice");
                seen.push(*key);
            }
        }
        assert!(!all.is_empty());
    }
}

#[test]
fn hints_come_from_the_table() {
    let h = hints(Ctx::Log);
    assert!(h.iter().any(|(k, d)| k == "/" && *d == "search"));
    assert!(h.iter().any(|(k, _)| k == "w"));
}
