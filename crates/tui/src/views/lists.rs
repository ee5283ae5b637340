//! Incidents and Audit: plain filtered tables.

use super::{age, block, clean, scroll_to, stamp};
use crate::app::App;
use crate::incidents::recovery_words;
use ptui_types::records::IncidentRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

pub fn incidents(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let all = app.incidents.items.len();
    let items = app.incidents.shown();
    let mut title = format!(" Incidents ({}", items.len());
    if items.len() != all {
        title.push_str(&format!(" of {all}"));
    }
    title.push_str(if all > 0 { ", open first) " } else { ") " });
    if !app.incidents.filter.is_empty() {
        title.push_str(&format!("filter: {} ", app.incidents.filter));
    }
    let b = block(title, t, true);
    if all > 0 && items.is_empty() {
        let msg = "  No incident matches the filter (Esc clears it).";
        f.render_widget(Paragraph::new(Line::styled(msg, t.muted)).block(b), area);
        return;
    }
    if items.is_empty() {
        let text = vec![
            Line::raw(""),
            Line::styled("  No incidents.", t.title),
            Line::raw(""),
            Line::raw("  When health checks run, a server that fails one opens an incident here:"),
            Line::raw(
                "  the server, what failed (unreachable, disk, memory, app health), its state",
            ),
            Line::raw("  (detected, recovering, resolved, failed) and when it started."),
            Line::styled("  Open incidents are counted in the header.", t.muted),
        ];
        f.render_widget(Paragraph::new(text).block(b), area);
        return;
    }
    let h = area.height.saturating_sub(3) as usize;
    // A reload under a filter can shrink the list below the selection.
    let sel = app.incidents.sel.min(items.len() - 1);
    let off = scroll_to(sel, 0, h);
    let rows: Vec<Row> = items[off..(off + h).min(items.len())]
        .iter()
        .map(|i| {
            let state = super::incident::state_style(app, &i.state, i.resolved_at.is_some());
            // `✓` marks an acknowledged open incident (someone is on it).
            let ack = if i.acked_by.is_some() && i.resolved_at.is_none() {
                " ✓"
            } else {
                ""
            };
            Row::new(vec![
                Cell::from(format!("#{}", i.id)),
                Cell::from(clean(&i.server)),
                Cell::from(i.kind.clone()),
                Cell::from(clean(i.app_id.as_deref().unwrap_or("-"))),
                Cell::from(format!("{}{ack}", i.state)).style(state),
                Cell::from(age(app.now_ms, i.opened_at)),
                Cell::from(recovery_words(i, app.now_ms)),
                Cell::from(clean(&i.details)).style(t.muted),
            ])
        })
        .collect();
    let mut st = TableState::default().with_selected(Some(sel - off));
    // Server, kind and app as wide as the longest shown (capped), so kinds are not cut at 80
    // columns.
    let widest = |f: &dyn Fn(&IncidentRow) -> usize, head: usize, cap: usize| {
        items
            .iter()
            .map(|i| f(i))
            .max()
            .unwrap_or(0)
            .clamp(head, cap) as u16
    };
    let w = [
        Constraint::Length(widest(&|i| i.id.to_string().len() + 1, 2, 8)),
        Constraint::Length(widest(&|i| i.server.chars().count(), 6, 16)),
        Constraint::Length(widest(&|i| i.kind.len(), 4, 19)),
        Constraint::Length(widest(
            &|i| i.app_id.as_deref().map_or(1, |a| a.chars().count()),
            3,
            14,
        )),
        Constraint::Length(12),
        Constraint::Length(4),
        Constraint::Length(11),
        Constraint::Fill(1),
    ];
    f.render_stateful_widget(
        Table::new(rows, w)
            .header(
                Row::new([
                    "ID", "SERVER", "KIND", "APP", "STATE", "AGE", "RECOVERY", "DETAILS",
                ])
                .style(t.title),
            )
            .row_highlight_style(t.selection)
            .block(b),
        area,
        &mut st,
    );
}

pub fn audit(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let items = &app.audit.items;
    let mut title = format!(" Audit ({}, newest first) ", items.len());
    if !app.audit.filter.is_empty() {
        title.push_str(&format!("filter: {} ", app.audit.filter));
    }
    let mut b = block(title, t, true);
    if let Some(chain) = &app.audit_chain {
        b = b.title_bottom(chain_line(chain, t));
    }
    if items.is_empty() {
        let msg = if app.audit.filter.is_empty() {
            "  Nothing recorded yet. Every change (servers, trust, jobs, cancels) is logged here."
        } else {
            "  No entry matches the filter (Esc clears it)."
        };
        f.render_widget(Paragraph::new(Line::styled(msg, t.muted)).block(b), area);
        return;
    }
    let h = area.height.saturating_sub(3) as usize;
    let off = scroll_to(app.audit.sel, 0, h);
    let rows: Vec<Row> = items[off..(off + h).min(items.len())]
        .iter()
        .map(|e| {
            Row::new(vec![
                Cell::from(stamp(app, e.ts, "%m-%d %H:%M:%S")).style(t.muted),
                Cell::from(clean(&e.operator)),
                Cell::from(e.action.clone()).style(t.accent),
                Cell::from(clean(&e.target)),
                Cell::from(clean(&plain_details(&e.details))),
            ])
        })
        .collect();
    let mut st = TableState::default().with_selected(Some(app.audit.sel - off));
    let w = [
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Fill(1),
        Constraint::Fill(3),
    ];
    f.render_stateful_widget(
        Table::new(rows, w)
            .header(Row::new(["TIME", "OPERATOR", "ACTION", "TARGET", "DETAILS"]).style(t.title))
            .row_highlight_style(t.selection)
            .block(b),
        area,
        &mut st,
    );
}

/// The chain's state under the Audit table: intact with its head (keep it elsewhere to detect a
/// removed tail), or where it breaks.
fn chain_line<'a>(chain: &crate::lists::AuditChain, t: &crate::theme::Theme) -> Line<'a> {
    use crate::lists::AuditChain;
    match chain {
        AuditChain::Intact { rows, head } => Line::styled(
            format!(
                " chain intact: {rows} rows, head {} ",
                head.as_deref()
                    .map(|h| h.chars().take(16).collect::<String>())
                    .unwrap_or_else(|| "-".into())
            ),
            t.ok,
        ),
        AuditChain::Broken(why) => Line::styled(
            format!(
                " chain BROKEN: {} (provision-tui audit verify) ",
                clean(why)
            ),
            t.error,
        ),
        AuditChain::Unverified(why) => {
            Line::styled(format!(" chain not verified: {} ", clean(why)), t.warn)
        }
    }
}

/// Audit details as words: rows written before the engine said `interval=15.0s` read
/// `interval_ms=Some(15000)`; the `Some(..)` wrapper goes and `None` reads `-`.
pub fn plain_details(d: &str) -> String {
    let mut out = String::with_capacity(d.len());
    let mut rest = d;
    while let Some(i) = rest.find("=Some(") {
        out.push_str(&rest[..=i]);
        let after = &rest[i + 6..];
        match after.find(')') {
            Some(j) => {
                out.push_str(&after[..j]);
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("=None", "=-")
}

#[cfg(test)]
mod tests {
    #[test]
    fn audit_details_lose_the_option_wrapper() {
        assert_eq!(
            super::plain_details("recovery=on base=- interval_ms=Some(15000)"),
            "recovery=on base=- interval_ms=15000"
        );
        assert_eq!(
            super::plain_details("interval_ms=None x"),
            "interval_ms=- x"
        );
        assert_eq!(super::plain_details("a=Some(1"), "a=1");
    }
}
