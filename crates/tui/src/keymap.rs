//! Key bindings per context. One table feeds key lookup, the footer hints and the `?` help, so
//! the three cannot drift apart.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Which screen or layer has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ctx {
    Fleet,
    Detail,
    Catalog,
    Form,
    Review,
    Jobs,
    Log,
    Incidents,
    /// An incident's detail page: timeline, recovery, acknowledgement.
    IncidentDetail,
    /// The progress view of a fan-out.
    Fanout,
    Audit,
    Confirm,
    /// Quitting with jobs running: leave them running (the default) or cancel them.
    QuitJobs,
    HostKey,
    HostKeyChanged,
    Picker,
    Prompt,
    /// The masked sudo password dialog of a `--prompt` server, before an install starts.
    SudoPassword,
    Palette,
    Help,
}

/// What a key asks for; `update` turns it into a state change and maybe an engine command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Back,
    Help,
    Palette,
    NextScreen,
    PrevScreen,
    Screen(u8),
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Enter,
    Mark,
    Filter,
    Sort,
    SortReverse,
    AddServer,
    Import,
    Trust,
    SetStatus,
    Remove,
    Install,
    Cancel,
    Wrap,
    Timestamps,
    Follow,
    NextMatch,
    PrevMatch,
    Mouse,
    Reload,
    Submit,
    NextField,
    PrevField,
    Toggle,
    Reveal,
    Left,
    Right,
    Complete,
    /// Maintenance on for the targets (opens the palette prefilled).
    Maintenance,
    /// The selected server's health policy (palette prefilled).
    Policy,
    Uninstall,
    Upgrade,
    /// Edit the server's connection fields and tags.
    Edit,
    /// A health check now.
    CheckNow,
    /// The selected job again (same app, server, inputs).
    Rerun,
    /// The job's log to a file.
    Export,
    /// The fan-out progress view.
    FanoutView,
    /// The next of the operator's public keys into a public-key field.
    NextKey,
    /// An interactive ssh shell on the server.
    Shell,
    /// The review's fan-out options: jobs at once, rolling batch, failure budget.
    FanConcurrency,
    FanBatch,
    FanBudget,
    /// Acknowledge an incident (with an optional note).
    Ack,
    /// Add a note to an incident's timeline.
    Note,
    Yes,
    No,
    /// Copy the selected thing to the clipboard (OSC 52).
    Copy,
    /// A key for a text field (typing).
    Input(KeyEvent),
}

/// A key as written in the tables: code plus modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(pub KeyCode, pub KeyModifiers);

const fn k(c: char) -> Key {
    Key(KeyCode::Char(c), KeyModifiers::NONE)
}
const fn ctrl(c: char) -> Key {
    Key(KeyCode::Char(c), KeyModifiers::CONTROL)
}
const fn code(c: KeyCode) -> Key {
    Key(c, KeyModifiers::NONE)
}

pub const UP: Key = code(KeyCode::Up);
pub const DOWN: Key = code(KeyCode::Down);
pub const ESC: Key = code(KeyCode::Esc);
pub const ENTER: Key = code(KeyCode::Enter);
pub const TAB: Key = code(KeyCode::Tab);
pub const BACKTAB: Key = Key(KeyCode::BackTab, KeyModifiers::SHIFT);

/// One binding: its keys, what it does, its words, and whether the footer shows it.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    pub desc: &'static str,
    pub hint: bool,
}

const fn b(keys: &'static [Key], action: Action, desc: &'static str, hint: bool) -> Binding {
    Binding {
        keys,
        action,
        desc,
        hint,
    }
}

const MOVE: [Binding; 4] = [
    b(&[k('j'), DOWN], Action::Down, "down", false),
    b(&[k('k'), UP], Action::Up, "up", false),
    b(
        &[code(KeyCode::PageDown), ctrl('d')],
        Action::PageDown,
        "page down",
        false,
    ),
    b(
        &[code(KeyCode::PageUp), ctrl('u')],
        Action::PageUp,
        "page up",
        false,
    ),
];
const ENDS: [Binding; 2] = [
    b(&[k('g'), code(KeyCode::Home)], Action::Top, "first", false),
    b(&[k('G'), code(KeyCode::End)], Action::Bottom, "last", false),
];

/// Screen switching and app-wide keys, active on every screen (not in dialogs or text fields).
pub const GLOBAL: &[Binding] = &[
    b(&[k('?')], Action::Help, "help", true),
    b(&[k(':')], Action::Palette, "command", true),
    b(&[TAB], Action::NextScreen, "next screen", false),
    b(&[BACKTAB], Action::PrevScreen, "previous screen", false),
    b(&[k('1')], Action::Screen(1), "fleet", false),
    b(&[k('2')], Action::Screen(2), "catalog", false),
    b(&[k('3')], Action::Screen(3), "jobs", false),
    b(&[k('4')], Action::Screen(4), "incidents", false),
    b(&[k('5')], Action::Screen(5), "audit", false),
    b(&[k('M')], Action::Mouse, "mouse on/off", false),
    b(&[ctrl('r')], Action::Reload, "reload from database", false),
    b(&[ESC], Action::Back, "back", false),
    b(&[k('q'), ctrl('c')], Action::Quit, "quit", true),
];

const FLEET: &[Binding] = &[
    MOVE[0],
    MOVE[1],
    MOVE[2],
    MOVE[3],
    ENDS[0],
    ENDS[1],
    b(&[ENTER], Action::Enter, "details", true),
    b(&[k(' ')], Action::Mark, "mark", true),
    b(&[k('/')], Action::Filter, "filter", true),
    b(&[k('o')], Action::Sort, "sort column", false),
    b(&[k('O')], Action::SortReverse, "reverse sort", false),
    b(&[k('a')], Action::AddServer, "add server", false),
    b(&[k('t')], Action::Trust, "trust host key", true),
    b(&[k('S')], Action::SetStatus, "set status", true),
    b(&[k('s')], Action::Shell, "shell (ssh)", true),
    b(&[k('i')], Action::Install, "install on marked", true),
    b(&[k('I')], Action::Import, "import ~/.ssh/config", true),
    b(
        &[k('m')],
        Action::Maintenance,
        "maintenance window on",
        false,
    ),
    b(
        &[k('P')],
        Action::Policy,
        "recovery policy, interval",
        false,
    ),
    b(&[k('e')], Action::Edit, "edit server", false),
    b(&[k('c')], Action::CheckNow, "check now (marked)", true),
    b(&[k('D')], Action::Remove, "remove server", false),
    b(&[k('y')], Action::Copy, "copy address", false),
];

const DETAIL: &[Binding] = &[
    MOVE[0],
    MOVE[1],
    b(&[ESC], Action::Back, "back to fleet", true),
    b(&[k('t')], Action::Trust, "trust host key", true),
    b(&[k('S')], Action::SetStatus, "set status", true),
    b(&[k('s')], Action::Shell, "shell (ssh)", true),
    b(&[k('i')], Action::Install, "install", true),
    b(&[k('y')], Action::Copy, "copy address", false),
    b(
        &[k('m')],
        Action::Maintenance,
        "maintenance window on",
        true,
    ),
    b(&[k('P')], Action::Policy, "recovery policy, interval", true),
    b(&[k('e')], Action::Edit, "edit server", true),
    b(&[k('c')], Action::CheckNow, "check now", true),
];

const CATALOG: &[Binding] = &[
    MOVE[0],
    MOVE[1],
    MOVE[2],
    MOVE[3],
    ENDS[0],
    ENDS[1],
    b(&[ENTER, k('i')], Action::Enter, "install form", true),
    b(&[k('u')], Action::Uninstall, "uninstall form", true),
    b(&[k('U')], Action::Upgrade, "upgrade form", true),
    b(&[k('/')], Action::Filter, "filter", true),
];

const FORM: &[Binding] = &[
    b(
        &[TAB, DOWN, ctrl('n')],
        Action::NextField,
        "next field",
        true,
    ),
    b(
        &[BACKTAB, UP, ctrl('p')],
        Action::PrevField,
        "previous field",
        false,
    ),
    b(
        &[k(' ')],
        Action::Toggle,
        "toggle/choose (bool, select)",
        false,
    ),
    b(
        &[code(KeyCode::Left)],
        Action::Left,
        "previous choice (select)",
        false,
    ),
    b(
        &[code(KeyCode::Right)],
        Action::Right,
        "next choice (select)",
        false,
    ),
    b(&[ctrl('v')], Action::Reveal, "reveal passwords", true),
    b(
        &[ctrl('o')],
        Action::NextKey,
        "next ~/.ssh/*.pub key",
        false,
    ),
    b(
        &[ENTER],
        Action::Enter,
        "next field / review on last",
        false,
    ),
    b(&[ctrl('s')], Action::Submit, "review", true),
    b(&[ESC], Action::Back, "cancel", true),
];

const REVIEW: &[Binding] = &[
    b(&[k('y'), ENTER], Action::Yes, "start jobs", true),
    b(&[k('e'), ESC], Action::Back, "edit", true),
    b(
        &[k('c')],
        Action::FanConcurrency,
        "fan-out: jobs at once",
        true,
    ),
    b(&[k('b')], Action::FanBatch, "fan-out: batch size", true),
    b(
        &[k('f')],
        Action::FanBudget,
        "fan-out: failure budget",
        true,
    ),
];

const SUDO_PASSWORD: &[Binding] = &[
    b(&[ENTER], Action::Submit, "give the password", true),
    b(&[ctrl('v')], Action::Reveal, "reveal the password", true),
    b(&[ESC], Action::Back, "back to the review", true),
];

const JOBS: &[Binding] = &[
    MOVE[0],
    MOVE[1],
    MOVE[2],
    MOVE[3],
    ENDS[0],
    ENDS[1],
    b(&[ENTER, k('l')], Action::Enter, "focus log", true),
    b(&[k('/')], Action::Filter, "filter", true),
    b(&[k('c')], Action::Cancel, "cancel job", true),
    b(&[k('y')], Action::Copy, "copy job log", false),
    b(&[k('r')], Action::Rerun, "re-run (same inputs)", true),
    b(&[k('x')], Action::Export, "export log to a file", false),
    b(&[k('F')], Action::FanoutView, "fan-out progress", true),
];

const FANOUT: &[Binding] = &[
    MOVE[0],
    MOVE[1],
    b(
        &[ENTER, k('l')],
        Action::Enter,
        "open this server's log",
        true,
    ),
    b(&[ESC], Action::Back, "back to jobs", true),
];

const LOG: &[Binding] = &[
    b(&[k('j'), DOWN], Action::Down, "scroll down", false),
    b(&[k('k'), UP], Action::Up, "scroll up", false),
    MOVE[2],
    MOVE[3],
    b(&[k('g'), code(KeyCode::Home)], Action::Top, "top", false),
    b(
        &[k('G'), code(KeyCode::End)],
        Action::Bottom,
        "bottom + follow",
        true,
    ),
    b(&[k('f')], Action::Follow, "follow on/off", true),
    b(&[k('w')], Action::Wrap, "wrap", true),
    b(&[k('t')], Action::Timestamps, "timestamps", true),
    b(&[k('/')], Action::Filter, "search", true),
    b(&[k('n')], Action::NextMatch, "next match", true),
    b(&[k('N')], Action::PrevMatch, "previous match", false),
    b(&[k('c')], Action::Cancel, "cancel job", false),
    b(&[k('y')], Action::Copy, "copy line", false),
    b(&[k('r')], Action::Rerun, "re-run (same inputs)", false),
    b(&[k('x')], Action::Export, "export log to a file", true),
    b(&[ESC], Action::Back, "back to list", true),
];

const LIST: &[Binding] = &[
    MOVE[0],
    MOVE[1],
    MOVE[2],
    MOVE[3],
    ENDS[0],
    ENDS[1],
    b(&[k('/')], Action::Filter, "filter", true),
];

const INCIDENTS: &[Binding] = &[
    MOVE[0],
    MOVE[1],
    MOVE[2],
    MOVE[3],
    ENDS[0],
    ENDS[1],
    b(&[ENTER], Action::Enter, "incident detail", true),
    b(&[k('/')], Action::Filter, "filter", true),
    b(&[k('a')], Action::Ack, "acknowledge, no reminders", true),
    b(&[k('n')], Action::Note, "add a note", true),
];

const INCIDENT_DETAIL: &[Binding] = &[
    b(&[k('j'), DOWN], Action::Down, "next timeline entry", false),
    b(&[k('k'), UP], Action::Up, "previous timeline entry", false),
    b(
        &[ENTER, k('l')],
        Action::Enter,
        "open the entry's job log",
        true,
    ),
    b(&[k('a')], Action::Ack, "acknowledge, no reminders", true),
    b(&[k('n')], Action::Note, "add a note", true),
    b(&[ESC], Action::Back, "back to incidents", true),
];

const CONFIRM: &[Binding] = &[
    b(&[k('y')], Action::Yes, "yes", true),
    b(&[k('n'), ESC], Action::No, "no", true),
];

const QUIT_JOBS: &[Binding] = &[
    b(
        &[ENTER, k('l')],
        Action::Yes,
        "quit, leave them running",
        true,
    ),
    b(&[k('c')], Action::Cancel, "cancel them, then quit", true),
    b(&[ESC], Action::No, "stay", true),
];

const HOSTKEY: &[Binding] = &[
    b(&[k('a')], Action::Yes, "accept and trust", true),
    b(&[k('r'), ESC], Action::No, "reject", true),
    b(&[k('y')], Action::Copy, "copy fingerprint", false),
];

const HOSTKEY_CHANGED: &[Binding] = &[
    b(&[ESC, ENTER], Action::No, "close", true),
    b(
        &[k('R')],
        Action::Yes,
        "replace the recorded key (asks first)",
        true,
    ),
];

const PICKER: &[Binding] = &[
    MOVE[0],
    MOVE[1],
    b(&[ENTER], Action::Yes, "choose", true),
    b(&[ESC], Action::No, "cancel", true),
];

const PROMPT: &[Binding] = &[
    b(&[ENTER], Action::Submit, "apply", true),
    b(&[ESC], Action::Back, "clear and close", true),
];

const PALETTE: &[Binding] = &[
    b(&[TAB], Action::Complete, "complete", true),
    b(&[DOWN, ctrl('n')], Action::Down, "next suggestion", false),
    b(&[UP, ctrl('p')], Action::Up, "previous suggestion", false),
    b(&[ENTER], Action::Submit, "run", true),
    b(&[ESC], Action::Back, "close", true),
];

const HELP: &[Binding] = &[
    b(&[k('j'), DOWN], Action::Down, "scroll down", false),
    b(&[k('k'), UP], Action::Up, "scroll up", false),
    MOVE[2],
    MOVE[3],
    b(&[ESC, k('?'), k('q')], Action::Back, "close help", true),
];

/// The context's own bindings (without the global ones).
pub fn bindings(ctx: Ctx) -> &'static [Binding] {
    match ctx {
        Ctx::Fleet => FLEET,
        Ctx::Detail => DETAIL,
        Ctx::Catalog => CATALOG,
        Ctx::Form => FORM,
        Ctx::Review => REVIEW,
        Ctx::Jobs => JOBS,
        Ctx::Log => LOG,
        Ctx::Incidents => INCIDENTS,
        Ctx::IncidentDetail => INCIDENT_DETAIL,
        Ctx::Fanout => FANOUT,
        Ctx::Audit => LIST,
        Ctx::Confirm => CONFIRM,
        Ctx::QuitJobs => QUIT_JOBS,
        Ctx::HostKey => HOSTKEY,
        Ctx::HostKeyChanged => HOSTKEY_CHANGED,
        Ctx::Picker => PICKER,
        Ctx::Prompt => PROMPT,
        Ctx::SudoPassword => SUDO_PASSWORD,
        Ctx::Palette => PALETTE,
        Ctx::Help => HELP,
    }
}

/// Whether the global table applies (not in dialogs, overlays or text entry).
pub fn has_global(ctx: Ctx) -> bool {
    matches!(
        ctx,
        Ctx::Fleet
            | Ctx::Detail
            | Ctx::Catalog
            | Ctx::Jobs
            | Ctx::Log
            | Ctx::Incidents
            | Ctx::IncidentDetail
            | Ctx::Fanout
            | Ctx::Audit
    )
}

/// Whether unbound printable keys type into a text field.
pub fn is_text(ctx: Ctx) -> bool {
    matches!(
        ctx,
        Ctx::Form | Ctx::Prompt | Ctx::SudoPassword | Ctx::Palette
    )
}

fn same(key: &Key, ev: &KeyEvent) -> bool {
    if key.0 != ev.code {
        return false;
    }
    // Shifted letters arrive as the upper-case char, sometimes with SHIFT set.
    let mods = ev.modifiers - KeyModifiers::SHIFT;
    let want = key.1 - KeyModifiers::SHIFT;
    mods == want || (matches!(key.0, KeyCode::BackTab) && ev.code == KeyCode::BackTab)
}

/// Every binding in force in a context, the context's own first.
pub fn active(ctx: Ctx) -> Vec<Binding> {
    let mut v = bindings(ctx).to_vec();
    if has_global(ctx) {
        for g in GLOBAL {
            if !v.iter().any(|x| x.keys.iter().any(|k| g.keys.contains(k))) {
                v.push(*g);
            }
        }
    }
    v
}

/// Looks a key up. In text contexts, printable keys without Ctrl/Alt type instead, except
/// for the keys the context binds itself (space toggles only on a bool or select).
pub fn lookup(ctx: Ctx, ev: &KeyEvent) -> Option<Action> {
    lookup_in(ctx, ev, true)
}

/// `lookup` where a text context's focus may be on a toggle or select (`typing` false): then
/// the bindings come first (Space toggles), and other keys still go to the field as input.
pub fn lookup_in(ctx: Ctx, ev: &KeyEvent, typing: bool) -> Option<Action> {
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    let typing = typing
        && is_text(ctx)
        && matches!(ev.code, KeyCode::Char(_))
        && !ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    if typing {
        return Some(Action::Input(*ev));
    }
    for bnd in bindings(ctx) {
        if bnd.keys.iter().any(|k| same(k, ev)) {
            return Some(bnd.action);
        }
    }
    if has_global(ctx) {
        for bnd in GLOBAL {
            if bnd.keys.iter().any(|k| same(k, ev)) {
                return Some(bnd.action);
            }
        }
    }
    if is_text(ctx) {
        return Some(Action::Input(*ev));
    }
    None
}

pub use super::keymap_text::{ALL_CTX, ctx_name, hints, key_name, keys_text, markdown};

#[cfg(test)]
#[path = "keymap_tests.rs"]
mod tests;
