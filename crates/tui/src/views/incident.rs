//! An incident's detail page: what it is, the affected deployments, recovery and why it
//! stopped, and the timeline (entries with a job open its log).

use super::{age, block, clean, stamp};
use crate::app::App;
use crate::incidents::{IncidentPage, recovery_words};
use ptui_engine::queries::IncidentDetail;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

/// The timeline entry that explains where recovery stands: the last one that is not an
/// operator's acknowledgement or note.
pub fn recovery_reason(d: &IncidentDetail) -> Option<&str> {
    d.timeline
        .iter()
        .rev()
        .map(|e| e.message.as_str())
        .find(|m| !m.starts_with("acknowledged by") && !m.starts_with("note by"))
}

pub fn state_style(app: &App, state: &str, resolved: bool) -> Style {
    let t = &app.theme;
    match (resolved, state) {
        (true, _) => t.ok,
        (false, "recovering") => t.warn,
        _ => t.error,
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App, p: &IncidentPage) {
    let t = &app.theme;
    let r = &p.row;
    let app_part = r
        .app_id
        .as_deref()
        .map(|a| format!(" ({a})"))
        .unwrap_or_default();
    let title = format!(
        " Incident #{} {} on {}{} ",
        r.id,
        r.kind,
        clean(&r.server),
        clean(&app_part)
    );
    let mut lines = vec![Line::from(vec![
        Span::styled(
            r.state.clone(),
            state_style(app, &r.state, r.resolved_at.is_some()),
        ),
        Span::styled(
            format!(
                "  opened {} ({} ago)",
                stamp(app, r.opened_at, "%Y-%m-%d %H:%M:%S"),
                age(app.now_ms, r.opened_at)
            ),
            t.muted,
        ),
        Span::styled(
            match r.resolved_at {
                Some(at) => format!("  resolved {}", stamp(app, at, "%Y-%m-%d %H:%M:%S")),
                None => String::new(),
            },
            t.ok,
        ),
    ])];
    lines.push(match &r.acked_by {
        Some(who) => Line::styled(format!("acknowledged by {}", clean(who)), t.ok),
        None if r.resolved_at.is_none() => {
            Line::styled("not acknowledged (a acknowledges: reminders stop)", t.warn)
        }
        None => Line::raw(""),
    });
    if !r.details.is_empty() {
        lines.push(Line::raw(clean(&r.details)));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("Recovery  ", t.accent),
        Span::raw(recovery_words(r, app.now_ms)),
    ]));
    let Some(d) = &p.detail else {
        lines.push(Line::styled("loading the timeline…", t.muted));
        return paint(f, area, app, title, lines, 0);
    };
    let stopped = r.resolved_at.is_none() && r.state != "recovering";
    if let Some(why) = recovery_reason(d).filter(|_| stopped) {
        let head = if r.next_attempt_at.is_some() {
            "waiting: "
        } else if r.attempts > 0 || r.state == "failed" {
            "why it stopped: "
        } else {
            "last: "
        };
        lines.push(Line::from(vec![
            Span::styled(format!("  {head}"), t.muted),
            Span::styled(clean(why), t.warn),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Affected deployments", t.accent));
    let affected: Vec<String> = d
        .incident
        .affected
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    format!(
                        "  {} {}",
                        v["app_id"].as_str().unwrap_or("?"),
                        v["app_version"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if affected.is_empty() {
        lines.push(Line::styled("  none recorded", t.muted));
    }
    lines.extend(affected.into_iter().map(|a| Line::raw(clean(&a))));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Timeline (Enter on a job opens its log)",
        t.accent,
    ));
    let first_row = lines.len();
    for (i, e) in d.timeline.iter().enumerate() {
        let job = e
            .job_id
            .map(|j| format!("  [job #{j}]"))
            .unwrap_or_default();
        let line = Line::from(vec![
            Span::styled(
                format!("  {}  ", stamp(app, e.ts, "%m-%d %H:%M:%S")),
                t.muted,
            ),
            Span::raw(clean(&e.message)),
            Span::styled(job, t.accent),
        ]);
        lines.push(if i == p.sel {
            line.style(t.selection)
        } else {
            line
        });
    }
    if d.timeline.is_empty() {
        lines.push(Line::styled("  nothing recorded", t.muted));
    }
    let sel_line = first_row + p.sel;
    paint(f, area, app, title, lines, sel_line)
}

fn paint(f: &mut Frame, area: Rect, app: &App, title: String, lines: Vec<Line>, keep: usize) {
    let h = area.height.saturating_sub(2) as usize;
    let scroll = keep.saturating_sub(h.saturating_sub(1));
    let p = Paragraph::new(lines)
        .block(block(title, &app.theme, true))
        .wrap(Wrap { trim: false })
        .scroll((scroll as u16, 0));
    f.render_widget(p, area);
}
