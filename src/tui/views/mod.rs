//! Drawing. One file per screen; this one lays out header, body, footer and overlays.

pub mod catalog;
pub mod dialogs;
pub mod fleet;
pub mod form;
pub mod jobs;
pub mod lists;

use super::app::{App, Page, Screen};
use super::keymap;
use super::theme::Theme;
use crate::fleet::ServerStatus;
use crate::jobs::JobStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};

/// Below this the layout cannot work; a message replaces it.
pub const MIN_W: u16 = 60;
pub const MIN_H: u16 = 15;

pub fn draw(f: &mut Frame, app: &mut App) {
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
        JobStatus::Cancelled | JobStatus::Interrupted => t.warn,
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

/// Replaces control characters so remote output cannot drive the terminal.
pub fn clean(s: &str) -> String {
    if s.chars().any(|c| c.is_control()) {
        s.chars()
            .map(|c| match c {
                '\t' => ' ',
                c if c.is_control() => '?',
                c => c,
            })
            .collect()
    } else {
        s.to_string()
    }
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

fn header(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let mut tabs = vec![Span::styled(" provision-tui ", t.accent)];
    for (i, s) in Screen::ALL.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, s.title());
        tabs.push(if *s == app.screen {
            Span::styled(label, t.selection)
        } else {
            Span::raw(label)
        });
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
    let mut spans = vec![Span::raw(format!(" servers {}", app.fleet.servers.len()))];
    for (i, (st, n)) in counts.iter().enumerate() {
        spans.push(Span::raw(if i == 0 { ": " } else { " · " }));
        spans.push(Span::styled(format!("{n} {st}"), server_style(t, *st)));
    }
    spans.push(Span::styled(" │ ", t.muted));
    spans.push(Span::styled(
        format!("jobs {} running", app.summary.running),
        if app.summary.running > 0 {
            t.pending
        } else {
            t.text
        },
    ));
    if app.summary.queued > 0 {
        spans.push(Span::raw(format!(", {} queued", app.summary.queued)));
    }
    spans.push(Span::styled(" │ ", t.muted));
    spans.push(Span::styled(
        format!("incidents {} open", app.summary.incidents_open),
        if app.summary.incidents_open > 0 {
            t.error
        } else {
            t.text
        },
    ));
    spans.push(Span::styled(" │ db ", t.muted));
    spans.push(Span::styled(app.db_path.clone(), t.muted));
    f.render_widget(Paragraph::new(Line::from(spans)), bottom);
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
        spans.push(Span::styled(format!(" {k}"), t.key));
        spans.push(Span::styled(format!(" {d} "), t.muted));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
