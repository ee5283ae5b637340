//! Jobs: the list, and the live log pane of the selected job (only visible lines are built).

use super::{age, block, clean, job_style, scroll_to};
use crate::app::App;
use crate::logview::{LogView, char_width};
use crate::theme::Theme;
use ptui_types::job::{LogLine, LogStream};
use ptui_types::time::human_ms;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let n = app.jobs.shown().len();
    let list_h = ((n as u16).saturating_add(3)).clamp(5, (area.height * 2 / 5).max(5));
    let [top, bottom] =
        Layout::vertical([Constraint::Length(list_h), Constraint::Fill(1)]).areas(area);
    list(f, top, app);
    log_pane(f, bottom, app);
}

fn list(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let shown = app.jobs.shown();
    let mut title = format!(" Jobs ({}) ", shown.len());
    if !app.jobs.filter.is_empty() {
        title.push_str(&format!("filter: {} ", app.jobs.filter));
    }
    let b = block(title, t, !app.jobs.focus_log);
    if shown.is_empty() {
        let msg = if app.jobs.jobs.is_empty() {
            " No jobs yet. Pick an installer in the Catalog (2) and press Enter."
        } else {
            " No job matches the filter (Esc clears it)."
        };
        f.render_widget(Paragraph::new(Span::styled(msg, t.muted)).block(b), area);
        return;
    }
    let h = area.height.saturating_sub(3) as usize;
    let offset = scroll_to(app.jobs.sel, 0, h);
    let rows: Vec<Row> = shown[offset..(offset + h).min(shown.len())]
        .iter()
        .map(|j| {
            Row::new(vec![
                Cell::from(format!("#{}", j.id)),
                Cell::from(j.status.as_str()).style(job_style(t, j.status)),
                Cell::from(format!("{} {}", j.action.as_str(), j.app_id)),
                Cell::from(j.server_name.clone()),
                Cell::from(
                    j.started_at
                        .map(|s| format!("{} ago", age(app.now_ms, s)))
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::from(
                    j.duration_ms(app.now_ms)
                        .map(human_ms)
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::from(j.error_kind.map(|k| k.as_str()).unwrap_or("")).style(t.error),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(6),
        Constraint::Length(11),
        Constraint::Fill(2),
        Constraint::Fill(2),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    let mut state = TableState::default().with_selected(Some(app.jobs.sel - offset));
    f.render_stateful_widget(
        Table::new(rows, widths)
            .header(
                Row::new(["ID", "STATUS", "APP", "SERVER", "STARTED", "TOOK", "ERROR"])
                    .style(t.title),
            )
            .row_highlight_style(if app.jobs.focus_log {
                t.border
            } else {
                t.selection
            })
            .block(b),
        area,
        &mut state,
    );
}

/// Styled spans of one log line: optional time, text by stream, search matches highlighted.
fn spans(l: &LogLine, log: &LogView, t: &Theme, utc: bool) -> Vec<Span<'static>> {
    let mut out = Vec::new();
    if log.timestamps {
        let ts = chrono::DateTime::from_timestamp_millis(l.ts)
            .map(|d| {
                if utc {
                    d.format("%H:%M:%S%.3f ").to_string()
                } else {
                    d.with_timezone(&chrono::Local)
                        .format("%H:%M:%S%.3f ")
                        .to_string()
                }
            })
            .unwrap_or_default();
        out.push(Span::styled(ts, t.muted));
    }
    let base: Style = match l.stream {
        LogStream::Stdout => t.text,
        LogStream::Stderr => t.stderr,
        LogStream::System => t.system,
    };
    let text = clean(&l.text);
    match log.search.as_deref().filter(|s| !s.is_empty()) {
        Some(needle) if text.contains(needle) => {
            let hit = if log.hit == Some(l.seq) {
                t.matched.add_modifier(ratatui::style::Modifier::BOLD)
            } else {
                t.matched
            };
            let mut rest = text.as_str();
            while let Some(i) = rest.find(needle) {
                out.push(Span::styled(rest[..i].to_string(), base));
                out.push(Span::styled(needle.to_string(), hit));
                rest = &rest[i + needle.len()..];
            }
            out.push(Span::styled(rest.to_string(), base));
        }
        _ => out.push(Span::styled(text, base)),
    }
    out
}

/// Splits spans into rows of `width` columns (char wrap, matching the height cache).
fn wrap_spans(spans: Vec<Span<'static>>, width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut lines = vec![Vec::new()];
    let mut used = 0usize;
    for s in spans {
        let mut buf = String::new();
        for c in s.content.chars() {
            let w = char_width(c);
            if used + w > width && used > 0 {
                if let Some(cur) = lines.last_mut() {
                    cur.push(Span::styled(std::mem::take(&mut buf), s.style));
                }
                lines.push(Vec::new());
                used = 0;
            }
            buf.push(c);
            used += w;
        }
        if let Some(cur) = lines.last_mut() {
            cur.push(Span::styled(buf, s.style));
        }
    }
    lines.into_iter().map(Line::from).collect()
}

fn log_pane(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let utc = app.utc;
    let job = app.jobs.selected().cloned();
    let now = app.now_ms;
    let log = &app.jobs.log;
    let title = match &job {
        Some(j) => format!(" Log #{} {} on {} ", j.id, j.app_id, j.server_name),
        None => " Log ".into(),
    };
    let b = block(title, t, app.jobs.focus_log);
    let inner = b.inner(area);
    f.render_widget(b, area);
    if inner.height < 2 {
        return;
    }
    let [text_area, strip] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
    let Some(j) = job else {
        f.render_widget(
            Paragraph::new(Span::styled(" Select a job to see its log.", t.muted)),
            text_area,
        );
        return;
    };
    let vis = log.visible(text_area.height, text_area.width);
    let mut lines: Vec<Line> = Vec::with_capacity(text_area.height as usize);
    for (seq, _) in &vis {
        let Some(l) = log.get(*seq) else { continue };
        let sp = spans(l, log, t, utc);
        if log.wrap {
            lines.extend(wrap_spans(sp, text_area.width as usize));
        } else {
            lines.push(Line::from(sp));
        }
        if lines.len() >= text_area.height as usize {
            break;
        }
    }
    lines.truncate(text_area.height as usize);
    if lines.is_empty() {
        lines.push(Line::styled(
            if log.loading() {
                " loading…"
            } else if j.status.is_running() {
                " waiting for output…"
            } else {
                " (no output)"
            },
            t.muted,
        ));
    }
    f.render_widget(Paragraph::new(lines), text_area);
    // Status strip: state, elapsed, exit, position, toggles.
    let onoff = |b: bool| if b { "on" } else { "off" };
    let first = vis.first().map(|x| x.0).unwrap_or(0);
    let last = vis.last().map(|x| x.0).unwrap_or(0);
    let mut s = vec![
        Span::styled(format!(" {} ", j.status.as_str()), job_style(t, j.status)),
        Span::raw(format!(
            "{} ",
            j.duration_ms(now)
                .map(human_ms)
                .unwrap_or_else(|| "-".into())
        )),
    ];
    if j.status.is_terminal() {
        let exit = match (j.error_kind, j.exit_code) {
            (Some(k), Some(c)) => format!("│ {} (exit {c}) ", k.as_str()),
            (Some(k), None) => format!("│ {} ", k.as_str()),
            (None, Some(c)) => format!("│ exit {c} "),
            (None, None) => "│ ok ".into(),
        };
        s.push(Span::styled(
            exit,
            if j.error_kind.is_some() {
                t.error
            } else {
                t.ok
            },
        ));
    }
    // Which bastion runs it: its process, or the site whose processes will claim it.
    match (&j.owner, &j.site) {
        (Some(o), Some(_)) => s.push(Span::styled(format!("│ by {} ", clean(o)), t.muted)),
        (None, Some(site)) => s.push(Span::styled(
            format!("│ queued for site {} ", clean(site)),
            t.pending,
        )),
        _ => {}
    }
    s.push(Span::styled(
        format!("│ lines {first}-{last}/{} ", log.last_seq),
        t.muted,
    ));
    s.push(Span::styled(
        format!("│ follow {} ", onoff(log.follow)),
        if log.follow { t.ok } else { t.warn },
    ));
    s.push(Span::styled(
        format!(
            "│ wrap {} │ time {} ",
            onoff(log.wrap),
            onoff(log.timestamps)
        ),
        t.muted,
    ));
    if let Some(q) = &log.search {
        let at = log.hit.map(|h| format!(" @{h}")).unwrap_or_default();
        s.push(Span::styled(format!("│ /{}{at} ", clean(q)), t.accent));
    }
    f.render_widget(Paragraph::new(Line::from(s)), strip);
}
