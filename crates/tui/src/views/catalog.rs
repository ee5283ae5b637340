//! Catalog: installers on the left, the selected one's details on the right.

use super::{block, clean};
use crate::app::App;
use ptui_catalog::describe_rules;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let shown = app.catalog.shown();
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(35), Constraint::Fill(1)]).areas(area);
    let mut title = format!(" Catalog ({}) ", shown.len());
    if !app.catalog.filter.is_empty() {
        title.push_str(&format!("filter: {} ", app.catalog.filter));
    }
    if app.catalog.problems > 0 {
        title.push_str(&format!(
            "· {} broken, see `catalog validate` ",
            app.catalog.problems
        ));
    }
    if shown.is_empty() {
        let msg = vec![
            Line::raw(""),
            Line::styled(" No installers.", t.title),
            Line::raw(" Add directories with --installers DIR or put them in"),
            Line::styled(" ~/.config/provision-tui/installers/", t.accent),
        ];
        f.render_widget(Paragraph::new(msg).block(block(title, t, true)), area);
        return;
    }
    let items: Vec<ListItem> = shown
        .iter()
        .map(|m| {
            ListItem::new(Line::from(vec![
                Span::raw(format!("{} ", m.id)),
                Span::styled(m.version.clone(), t.muted),
            ]))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.catalog.sel.min(shown.len() - 1)));
    f.render_stateful_widget(
        List::new(items)
            .block(block(title, t, true))
            .highlight_style(t.selection),
        left,
        &mut state,
    );
    let Some(m) = shown.get(app.catalog.sel) else {
        return;
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(m.name.clone(), t.title),
            Span::styled(format!("  {} v{}", m.id, m.version), t.muted),
        ]),
        Line::raw(clean(&m.description)),
        Line::raw(""),
        Line::from(vec![
            Span::styled("category ", t.muted),
            Span::raw(if m.category.is_empty() {
                "-".to_string()
            } else {
                m.category.clone()
            }),
            Span::styled("   os ", t.muted),
            Span::raw(if m.os_requirements.family.is_empty() {
                "any".to_string()
            } else {
                m.os_requirements.family.join(", ")
            }),
            Span::styled("   timeout ", t.muted),
            Span::raw(format!("{}s", m.timeout_seconds)),
        ]),
        Line::raw(""),
        Line::styled(format!("Inputs ({})", m.inputs.len()), t.accent),
    ];
    if m.inputs.is_empty() {
        lines.push(Line::styled("  none", t.muted));
    }
    for i in &m.inputs {
        let mut spans = vec![
            Span::styled(if i.required { "* " } else { "  " }, t.warn),
            Span::raw(format!("{} ", i.name)),
            Span::styled(i.kind.as_str(), t.pending),
        ];
        if let Some(d) = &i.default {
            let v = if i.is_sensitive() {
                "***".to_string()
            } else {
                d.as_text()
            };
            spans.push(Span::styled(format!("  default {v}"), t.muted));
        }
        if let Some(v) = &i.visible_if {
            spans.push(Span::styled(format!("  if {}", v.describe()), t.muted));
        }
        lines.push(Line::from(spans));
        let rules = describe_rules(i);
        if !rules.is_empty() {
            lines.push(Line::styled(format!("    {}", rules.join("; ")), t.muted));
        }
    }
    lines.push(Line::raw(""));
    let targets = app.fleet.targets();
    lines.push(Line::styled(
        if targets.is_empty() {
            "Enter: install (select or mark a server on Fleet first)".to_string()
        } else {
            format!("Enter: install on {}", targets.join(", "))
        },
        t.accent,
    ));
    f.render_widget(
        Paragraph::new(lines)
            .block(block(" Details ", t, false))
            .wrap(Wrap { trim: false }),
        right,
    );
}
