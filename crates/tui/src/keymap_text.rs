//! How bindings are written: key names, footer hints, help titles and the Markdown table of
//! the README and docs/TUI.md (from the same tables as the keys).

use super::keymap::{Action, Binding, Ctx, GLOBAL, Key, active, bindings};
use crossterm::event::{KeyCode, KeyModifiers};

/// How a key is written in hints and help.
pub fn key_name(key: &Key) -> String {
    let base = match key.0 {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "S-Tab".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        other => format!("{other:?}"),
    };
    if key.1.contains(KeyModifiers::CONTROL) {
        format!("C-{base}")
    } else {
        base
    }
}

pub fn keys_text(bnd: &Binding) -> String {
    bnd.keys.iter().map(key_name).collect::<Vec<_>>().join("/")
}

/// Footer hints: (first key, words) for the context's hinted bindings, then global hints.
pub fn hints(ctx: Ctx) -> Vec<(String, &'static str)> {
    let mut v: Vec<Binding> = active(ctx).into_iter().filter(|b| b.hint).collect();
    // `?` first: whatever the width, the way to every other key stays visible.
    v.sort_by_key(|b| b.action != Action::Help);
    v.iter()
        .map(|b| (key_name(&b.keys[0]), footer_word(b)))
        .collect()
}

/// The footer's shorter words for the longest descriptions, so a 120-column footer holds
/// every hinted key (help and the README keep the full description).
fn footer_word(b: &Binding) -> &'static str {
    match b.action {
        Action::Sort => "sort",
        Action::Enter if b.desc == "details" => "open",
        Action::AddServer => "add",
        Action::Trust => "trust",
        Action::SetStatus => "status",
        Action::Install => "install",
        Action::Import => "import",
        Action::Ack => "ack",
        Action::FanConcurrency => "at once",
        Action::FanBatch => "batch",
        Action::FanBudget => "fail budget",
        Action::Maintenance => "maint",
        Action::Policy => "policy",
        Action::Edit => "edit",
        Action::Shell => "shell",
        Action::CheckNow => "check",
        Action::Rerun => "re-run",
        Action::Export => "export",
        Action::FanoutView => "fan-out",
        Action::Uninstall => "uninstall",
        Action::Upgrade => "upgrade",
        Action::Note => "note",
        _ => b.desc,
    }
}

/// The context's title in help and docs.
pub fn ctx_name(ctx: Ctx) -> &'static str {
    match ctx {
        Ctx::Fleet => "Fleet",
        Ctx::Detail => "Server detail",
        Ctx::Catalog => "Catalog",
        Ctx::Form => "Install / add-server form",
        Ctx::Review => "Review",
        Ctx::Jobs => "Jobs",
        Ctx::Log => "Job log",
        Ctx::Incidents => "Incidents",
        Ctx::IncidentDetail => "Incident detail",
        Ctx::Fanout => "Fan-out progress",
        Ctx::Audit => "Audit",
        Ctx::Confirm => "Confirm dialog",
        Ctx::QuitJobs => "Quit with jobs running",
        Ctx::HostKey => "Host key dialog",
        Ctx::HostKeyChanged => "Changed host key alert",
        Ctx::Picker => "Status picker",
        Ctx::Prompt => "Filter / search prompt",
        Ctx::SudoPassword => "Sudo password dialog",
        Ctx::Palette => "Command palette",
        Ctx::Help => "Help",
    }
}

pub const ALL_CTX: [Ctx; 20] = [
    Ctx::Fleet,
    Ctx::Detail,
    Ctx::Catalog,
    Ctx::Form,
    Ctx::Review,
    Ctx::Jobs,
    Ctx::Log,
    Ctx::Incidents,
    Ctx::IncidentDetail,
    Ctx::Fanout,
    Ctx::Audit,
    Ctx::Confirm,
    Ctx::QuitJobs,
    Ctx::HostKey,
    Ctx::HostKeyChanged,
    Ctx::Picker,
    Ctx::Prompt,
    Ctx::SudoPassword,
    Ctx::Palette,
    Ctx::Help,
];

/// A Markdown table of every binding (README and docs/TUI.md; a test keeps them in sync).
pub fn markdown() -> String {
    let mut out = String::from("| Where | Keys | Does |\n|---|---|---|\n");
    for g in GLOBAL {
        out.push_str(&format!(
            "| Any screen | `{}` | {} |\n",
            keys_text(g).replace('|', "\\|"),
            g.desc
        ));
    }
    for ctx in ALL_CTX {
        for bnd in bindings(ctx) {
            out.push_str(&format!(
                "| {} | `{}` | {} |\n",
                ctx_name(ctx),
                keys_text(bnd).replace('|', "\\|"),
                bnd.desc
            ));
        }
    }
    out
}
