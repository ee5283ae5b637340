//! The fan-out progress view: one row per server.

use super::{block, clean, fit, job_style, scroll_to};
use crate::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let Some(v) = &app.fanout else {
        let p = Paragraph::new(Line::styled("  no fan-out yet", t.muted));
        return f.render_widget(p.block(block(" Fan-out ", t, true)), area);
    };
    let job = |host: &str| {
        v.jobs
            .get(host)
            .and_then(|id| app.jobs.jobs.iter().find(|j| j.id == *id))
    };
    let finished = v
        .hosts
        .iter()
        .filter(|h| v.skipped.contains_key(*h) || job(h).is_some_and(|j| j.status.is_terminal()))
        .count();
    let title = format!(
        " Fan-out #{} {} · {finished}/{} done{} ",
        v.id,
        v.app,
        v.hosts.len(),
        if v.done { " · finished" } else { "" }
    );
    let h = area.height.saturating_sub(3) as usize;
    let sel = v.sel.min(v.hosts.len().saturating_sub(1));
    let off = scroll_to(sel, 0, h);
    let last_w = area.width.saturating_sub(2 + 16 + 11 + 8 + 14 + 5) as usize;
    let rows: Vec<Row> = v.hosts[off..(off + h).min(v.hosts.len())]
        .iter()
        .map(|host| {
            let (state, style, elapsed, exit, last) = match (job(host), v.skipped.get(host)) {
                (_, Some(why)) => (
                    "skipped".to_string(),
                    t.warn,
                    "-".into(),
                    fit(&clean(why), 14),
                    String::new(),
                ),
                (Some(j), _) => (
                    j.status.to_string(),
                    job_style(t, j.status),
                    j.duration_ms(app.now_ms)
                        .map(ptui_types::time::human_ms)
                        .unwrap_or_else(|| "-".into()),
                    match (j.error_kind, j.exit_code) {
                        (Some(k), _) => k.as_str().to_string(),
                        (None, Some(c)) => format!("exit {c}"),
                        (None, None) => String::new(),
                    },
                    v.last.get(&j.id).map(|l| clean(l)).unwrap_or_default(),
                ),
                (None, None) => (
                    "waiting".into(),
                    t.muted,
                    "-".into(),
                    String::new(),
                    String::new(),
                ),
            };
            Row::new(vec![
                Cell::from(fit(&clean(host), 16)),
                Cell::from(state).style(style),
                Cell::from(elapsed),
                Cell::from(exit),
                Cell::from(fit(&last, last_w)).style(t.muted),
            ])
        })
        .collect();
    let mut st = TableState::default().with_selected(Some(sel - off));
    let w = [
        Constraint::Length(16),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(14),
        Constraint::Fill(1),
    ];
    f.render_stateful_widget(
        Table::new(rows, w)
            .header(Row::new(["SERVER", "STATE", "ELAPSED", "EXIT", "LAST LINE"]).style(t.title))
            .row_highlight_style(t.selection)
            .block(block(title, t, true)),
        area,
        &mut st,
    );
}
