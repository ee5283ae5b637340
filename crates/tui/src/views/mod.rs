//! Drawing. One file per screen; this one lays out header, body, footer and overlays.

pub mod catalog;
pub mod dialogs;
pub mod fanout;
pub mod fleet;
pub mod form;
pub mod incident;
pub mod jobs;
pub mod lists;

use super::app::{App, Page, Screen};
use super::keymap;
use super::theme::Theme;
use ptui_types::job::JobStatus;
use ptui_types::server::ServerStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};

/// Below this the layout cannot work; a message replaces it.
pub const MIN_W: u16 = 60;
pub const MIN_H: u16 = 15;

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width < MIN_W || area.height < MIN_H {
        let msg = format!(
            "terminal too small: {}x{}, needs {MIN_W}x{MIN_H}",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).style(app.theme.warn), area);
        return;
    }
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    header(f, head, app);
    match &app.page {
        Some(Page::Form(_)) => form::draw(f, body, app),
        Some(Page::Detail(_)) => fleet::detail(f, body, app),
        Some(Page::Incident(p)) => incident::draw(f, body, app, p),
        Some(Page::Fanout) => fanout::draw(f, body, app),
        None => match app.screen {
            Screen::Fleet => fleet::draw(f, body, app),
            Screen::Catalog => catalog::draw(f, body, app),
            Screen::Jobs => jobs::draw(f, body, app),
            Screen::Incidents => lists::incidents(f, body, app),
            Screen::Audit => lists::audit(f, body, app),
        },
    }
    footer(f, foot, app);
    dialogs::draw(f, area, app);
}

pub fn block<'a>(title: impl Into<Line<'a>>, t: &Theme, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(if focused { t.accent } else { t.border })
        .title(title.into().style(t.title))
}

pub fn server_style(t: &Theme, s: ServerStatus) -> Style {
    use ServerStatus::*;
    match s {
        Ready | InUse => t.ok,
        Discovered | PendingSetup | Provisioning => t.pending,
        Error => t.error,
        Maintenance | Reserved | ForceRebuild => t.warn,
        Decommissioned => t.muted,
    }
}

pub fn job_style(t: &Theme, s: JobStatus) -> Style {
    match s {
        JobStatus::Succeeded => t.ok,
        JobStatus::Queued | JobStatus::Running => t.pending,
        JobStatus::Failed => t.error,
        JobStatus::Cancelled
        | JobStatus::Interrupted
        | JobStatus::Detached
        | JobStatus::RolledBack => t.warn,
    }
}

/// A rough age like `42s`, `5m`, `3h`, `2d`.
pub fn age(now_ms: i64, then_ms: i64) -> String {
    let s = ((now_ms - then_ms) / 1000).max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// A timestamp in local time, or UTC when the app says so.
pub fn stamp(app: &App, ms: i64, fmt: &str) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return "-".into();
    };
    if app.utc {
        t.format(fmt).to_string()
    } else {
        t.with_timezone(&chrono::Local).format(fmt).to_string()
    }
}

/// Text from outside as one row: the CLI's sanitiser (`ptui_types::sanitize`), so remote
/// output cannot drive the terminal and shows the same in both front ends.
/// A trailing newline (a catalog description's last line end) shows as nothing.
pub fn clean(s: &str) -> String {
    ptui_types::sanitize::terminal_line(s.trim_end_matches(['\n', '\r'])).into_owned()
}

/// `s` cut to `w` columns, its end replaced by `…` when cut (a cut name says it is cut).
pub fn fit(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(w - 1).collect();
    out.push('…');
    out
}

/// The widths a table lays its columns out at (one space between columns), so cells can be
/// cut with an ellipsis to exactly what is shown.
pub fn column_widths(constraints: &[Constraint], width: u16) -> Vec<u16> {
    Layout::horizontal(constraints.iter().copied())
        .flex(ratatui::layout::Flex::Start)
        .spacing(1)
        .split(Rect::new(0, 0, width, 1))
        .iter()
        .map(|r| r.width)
        .collect()
}

/// First row of a scrolled list that keeps `sel` in a window of `height` rows.
pub fn scroll_to(sel: usize, offset: usize, height: usize) -> usize {
    let h = height.max(1);
    if sel < offset {
        sel
    } else if sel >= offset + h {
        sel + 1 - h
    } else {
        offset
    }
}

/// A status's name in a tight header; its colour still tells the meaning.
fn short_status(s: ServerStatus) -> &'static str {
    use ServerStatus::*;
    match s {
        Discovered => "disc",
        PendingSetup => "pending",
        Provisioning => "prov",
        ForceRebuild => "rebuild",
        Maintenance => "maint",
        Reserved => "resv",
        Decommissioned => "decom",
        other => other.as_str(),
    }
}

/// Lower is more urgent: the order of the tightest header.
fn urgency(s: ServerStatus) -> u8 {
    use ServerStatus::*;
    match s {
        Error => 0,
        Maintenance => 1,
        ForceRebuild => 2,
        Provisioning => 3,
        PendingSetup => 4,
        Discovered => 5,
        Ready => 6,
        InUse => 7,
        Reserved => 8,
        Decommissioned => 9,
    }
}

/// `path` with the home directory written `~` (not when home is `/`, the fallback).
pub fn tilde(path: &str, home: &str) -> String {
    let home = home.trim_end_matches('/');
    match path.strip_prefix(home) {
        Some(rest) if !home.is_empty() && rest.starts_with('/') => format!("~{rest}"),
        _ => path.to_string(),
    }
}

/// `s` cut to `max` columns with `…` in the middle, keeping more of the end: the whole file
/// name when it fits (`…/state.db` says more than `/va…ate.db`).
pub fn middle_ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let keep = max - 1;
    let file = s.rsplit('/').next().map_or(0, |f| f.chars().count() + 1);
    let tail = (keep - keep / 3).max(file).min(keep);
    let head = keep - tail;
    let h: String = s.chars().take(head).collect();
    let t: String = s.chars().skip(n - tail).collect();
    format!("{h}…{t}")
}

fn width(spans: &[Span]) -> usize {
    spans.iter().map(|s| s.width()).sum()
}

/// The fleet summary at one of three densities: 0 full, 1 short status names, 2 also without
/// the total, queued jobs and spaces around `·`. Returns (servers part, jobs and incidents).
fn summary<'a>(
    app: &App,
    counts: &[(ServerStatus, usize)],
    level: u8,
) -> (Vec<Span<'a>>, Vec<Span<'a>>) {
    let t = &app.theme;
    let mut counts = counts.to_vec();
    if level == 2 {
        // Tightest form: statuses needing attention first, so a cut drops the calm ones.
        counts.sort_by_key(|(st, _)| urgency(*st));
    }
    let mut head = vec![Span::raw(if level < 2 {
        format!(" servers {}", app.fleet.servers.len())
    } else {
        " servers".to_string()
    })];
    for (i, (st, n)) in counts.iter().enumerate() {
        head.push(Span::raw(match (i, level) {
            (0, 2) => " ",
            (0, _) => ": ",
            (_, 2) => "·",
            _ => " · ",
        }));
        let name = if level == 0 {
            st.as_str()
        } else {
            short_status(*st)
        };
        head.push(Span::styled(format!("{n} {name}"), server_style(t, *st)));
    }
    let mut tail = vec![
        Span::styled(" │ ", t.muted),
        Span::styled(
            format!("jobs {} running", app.summary.running),
            if app.summary.running > 0 {
                t.pending
            } else {
                t.text
            },
        ),
    ];
    if app.summary.queued > 0 && level < 2 {
        tail.push(Span::raw(format!(", {} queued", app.summary.queued)));
    }
    if app.pending_checks() > 0 {
        tail.push(Span::styled(" │ ", t.muted));
        tail.push(Span::styled(
            format!("checks {} pending", app.pending_checks()),
            t.pending,
        ));
    }
    if !app.summary.unserved_sites.is_empty() {
        let sites = app.summary.unserved_sites.join(",");
        tail.push(Span::styled(" │ ", t.muted));
        tail.push(Span::styled(
            match level {
                2 => format!("unserved {}", clean(&sites)),
                _ => format!("site {}: no live process", clean(&sites)),
            },
            t.error,
        ));
    }
    tail.push(Span::styled(" │ ", t.muted));
    tail.push(Span::styled(
        format!("incidents {} open", app.summary.incidents_open),
        if app.summary.incidents_open > 0 {
            t.error
        } else {
            t.text
        },
    ));
    (head, tail)
}

/// Tabs with the database path on the right, then the fleet summary. At 80 columns the summary
/// tightens rather than lose a part: running jobs and open incidents always show; the server
/// statuses are cut last. The path is shortened in the middle, or left out when there is no room.
fn header(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let w = area.width as usize;
    let mut tabs = vec![Span::styled(" provision-tui ", t.accent)];
    for (i, s) in Screen::ALL.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, s.title());
        tabs.push(if *s == app.screen {
            Span::styled(label, t.selection)
        } else {
            Span::raw(label)
        });
    }
    // " db " before the path and a space after it; a path cut below 10 columns says nothing.
    let room = w.saturating_sub(width(&tabs) + 5);
    if room >= 10 && !app.db_path.is_empty() {
        let path = middle_ellipsis(&app.db_path, room);
        let pad = room - path.chars().count();
        tabs.push(Span::raw(" ".repeat(pad)));
        tabs.push(Span::styled(" db ", t.muted));
        tabs.push(Span::styled(path, t.muted));
    }
    let [top, bottom] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    f.render_widget(Paragraph::new(Line::from(tabs)).style(t.header), top);
    let mut counts: Vec<(ServerStatus, usize)> = Vec::new();
    for s in &app.fleet.servers {
        match counts.iter_mut().find(|(k, _)| *k == s.status) {
            Some(c) => c.1 += 1,
            None => counts.push((s.status, 1)),
        }
    }
    counts.sort();
    let mut line = Vec::new();
    for level in 0..=2 {
        let (mut head, tail) = summary(app, &counts, level);
        let fits = width(&head) + width(&tail) <= w;
        if fits || level == 2 {
            if !fits {
                // Still too wide: cut the statuses, never the jobs and incidents.
                let keep = w.saturating_sub(width(&tail) + 1);
                let mut used = 0;
                head.retain(|s| {
                    used += s.width();
                    used <= keep
                });
                head.push(Span::raw("…"));
            }
            line = head;
            line.extend(tail);
            break;
        }
    }
    f.render_widget(Paragraph::new(Line::from(line)), bottom);
}

fn footer(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    if let Some(p) = &app.prompt {
        let label = format!("/{} ", p.label);
        let w = label.chars().count() as u16;
        let line = Line::from(vec![
            Span::styled(label, t.accent),
            Span::raw(p.input.value().to_string()),
        ]);
        f.render_widget(Paragraph::new(line), area);
        let x = area.x + w + p.input.visual_cursor() as u16;
        if x < area.right() {
            f.set_cursor_position((x, area.y));
        }
        return;
    }
    if let Some((msg, is_err)) = &app.flash {
        let style = if *is_err { t.error } else { t.ok };
        f.render_widget(Paragraph::new(Span::styled(clean(msg), style)), area);
        return;
    }
    let mut spans = Vec::new();
    let mut used = 0usize;
    for (k, d) in keymap::hints(app.ctx()) {
        let n = k.chars().count() + d.chars().count() + 3;
        if used + n > area.width as usize {
            break;
        }
        used += n;
        // Keys the engine would refuse (read-only, role) are dimmed; pressing one explains.
        let off = crate::bastion::greyed(app, app.ctx(), d);
        let key_style = if off {
            t.muted.add_modifier(ratatui::style::Modifier::DIM)
        } else {
            t.key
        };
        spans.push(Span::styled(format!(" {k}"), key_style));
        spans.push(Span::styled(format!(" {d} "), t.muted));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_shows_controls_and_progress_like_the_cli() {
        assert_eq!(
            clean("\x1b]0;t\x07a\tb\u{9b}c"),
            "\\u{1b}]0;t\\u{7}a b\\u{9b}c"
        );
        assert_eq!(clean("10%\r100%"), "100%");
        // The log pane's wrapped height counts the visible form: `\u{1b}` is six columns.
        assert_eq!(crate::logview::rows_for("\x1b\x1b", 6), 2);
    }

    #[test]
    fn home_becomes_tilde_only_at_a_path_boundary() {
        assert_eq!(tilde("/home/al/.local/x.db", "/home/al"), "~/.local/x.db");
        assert_eq!(tilde("/home/al/.local/x.db", "/home/al/"), "~/.local/x.db");
        assert_eq!(tilde("/home/alice/x.db", "/home/al"), "/home/alice/x.db");
        // HOME unset falls back to `/`: nothing to shorten.
        assert_eq!(tilde("/var/lib/x.db", "/"), "/var/lib/x.db");
    }

    #[test]
    fn middle_ellipsis_keeps_the_file_name() {
        let p = "/var/lib/provision-tui/state.db";
        assert_eq!(middle_ellipsis(p, 40), p);
        let short = middle_ellipsis(p, 20);
        assert_eq!(short.chars().count(), 20);
        assert!(
            short.starts_with("/var/") && short.ends_with("/state.db"),
            "{short}"
        );
        assert!(short.contains('…'));
        assert_eq!(middle_ellipsis(p, 10), "…/state.db");
        assert_eq!(middle_ellipsis(p, 5), "…e.db");
        assert_eq!(middle_ellipsis(p, 1), "…");
        assert_eq!(middle_ellipsis(p, 0), "");
    }
}
