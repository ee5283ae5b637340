//! Overlays: confirm, host key, status picker, help and the command palette.

use super::block;
use crate::app::{App, Modal, SudoAsk};
use crate::form::FormKind;
use crate::keymap;
use crate::palette::COMMANDS;
use ptui_types::hostkey::HostKeyVerdict;
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, BorderType, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap,
};

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(r);
    r
}

/// Rows a bordered box `w` wide needs for `lines` once wrapped (word wrap may need one more
/// row per long line than this estimate, so each long line gets one spare).
fn wrapped_height(lines: &[Line], w: u16) -> u16 {
    let inner = usize::from(w.saturating_sub(2)).max(1);
    let rows: usize = lines
        .iter()
        .map(|l| match l.width() {
            n if n <= inner => 1,
            n => n.div_ceil(inner) + 1,
        })
        .sum();
    u16::try_from(rows + 2).unwrap_or(u16::MAX)
}

fn keys_line<'a>(app: &App, pairs: &[(&'a str, &'a str)]) -> Line<'a> {
    let mut s = Vec::new();
    for (k, d) in pairs {
        s.push(Span::styled(format!(" [{k}] "), app.theme.key));
        s.push(Span::raw(format!("{d}  ")));
    }
    Line::from(s)
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    if matches!(app.modal, Some(Modal::Help { .. })) {
        return help(f, area, app);
    }
    let t = &app.theme;
    let Some(m) = &app.modal else { return };
    match m {
        Modal::Confirm { title, text, .. } => {
            // Paragraphs of the text on lines of their own (clean() would show a newline).
            let mut lines: Vec<Line> = text
                .split('\n')
                .map(|p| Line::raw(super::clean(p)))
                .collect();
            lines.push(Line::raw(""));
            lines.push(keys_line(app, &[("y", "yes"), ("n/Esc", "no")]));
            let r = centered(area, 64, wrapped_height(&lines, 64).max(8));
            f.render_widget(Clear, r);
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: true })
                    .block(block(format!(" {title} "), t, true).border_style(t.warn)),
                r,
            );
        }
        Modal::QuitJobs { running } => {
            let r = centered(area, 66, 9);
            f.render_widget(Clear, r);
            let lines = vec![
                Line::raw(format!(
                    "{running} job(s) followed by this dashboard are still running. Left running, they go on on their servers and the next dashboard or `provision-tui jobs reattach` collects them."
                )),
                Line::raw(""),
                keys_line(
                    app,
                    &[
                        ("Enter/l", "leave them running"),
                        ("c", "cancel them"),
                        ("Esc", "stay"),
                    ],
                ),
            ];
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: true })
                    .block(block(" Quit? ".to_string(), t, true).border_style(t.warn)),
                r,
            );
        }
        Modal::HostKey(scan) => {
            let r = centered(area, 72, 12);
            f.render_widget(Clear, r);
            let addr = app
                .fleet
                .servers
                .iter()
                .find(|s| s.name == scan.server)
                .map(|s| s.address())
                .unwrap_or_default();
            let lines = vec![
                Line::raw(format!(
                    "{} ({addr}) offered a host key we have not seen:",
                    scan.server
                )),
                Line::raw(""),
                Line::styled(format!("  {}", scan.fingerprint), t.accent),
                Line::raw(""),
                Line::raw("Compare it with the server's own key, e.g."),
                Line::styled(
                    "  ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
                    t.muted,
                ),
                Line::raw(""),
                keys_line(app, &[("a", "accept and trust"), ("r/Esc", "reject")]),
            ];
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(block(" Unknown host key ", t, true)),
                r,
            );
        }
        Modal::HostKeyChanged(scan) => {
            let (key_type, recorded) = match &scan.verdict {
                HostKeyVerdict::Changed {
                    key_type, recorded, ..
                } => (key_type.as_str(), recorded.as_slice()),
                _ => ("", &[][..]),
            };
            let note = ptui_types::hostkey::user_file_note(&scan.verdict);
            let mut lines = vec![
                Line::styled(
                    format!(
                        "HOST KEY OF {} HAS CHANGED. Nothing will run on it.",
                        scan.server
                    ),
                    t.error,
                ),
                Line::raw(""),
            ];
            for rk in recorded {
                lines.push(Line::raw(format!(
                    "recorded  {} {}",
                    rk.key_type, rk.fingerprint
                )));
                lines.push(Line::styled(
                    format!("          ({}:{})", rk.file.display(), rk.line),
                    t.muted,
                ));
            }
            lines.extend([
                Line::raw(format!("now       {key_type} {}", scan.fingerprint)),
                Line::raw(""),
                Line::raw("Someone may be intercepting the connection, or the server was rebuilt."),
                Line::raw("Only after verifying the new key out of band: R (then y), or"),
                Line::styled(
                    format!("  provision-tui server trust {} --replace", scan.server),
                    t.accent,
                ),
            ]);
            if let Some(n) = note {
                lines.push(Line::raw(""));
                lines.push(Line::styled(format!("Note: {n}."), t.muted));
            }
            lines.push(Line::raw(""));
            lines.push(keys_line(app, &[("Esc", "close"), ("R", "replace…")]));
            let r = centered(area, 76, wrapped_height(&lines, 76));
            f.render_widget(Clear, r);
            let b = Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Thick)
                .border_style(t.error)
                .title(Span::styled(" HOST KEY CHANGED ", t.error));
            f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(b), r);
        }
        Modal::Picker {
            targets,
            items,
            sel,
        } => {
            let r = centered(area, 44, items.len() as u16 + 4);
            f.render_widget(Clear, r);
            let list: Vec<ListItem> = items
                .iter()
                .map(|s| ListItem::new(Span::styled(s.as_str(), super::server_style(t, *s))))
                .collect();
            let mut st = ListState::default().with_selected(Some(*sel));
            f.render_stateful_widget(
                List::new(list).highlight_style(t.selection).block(block(
                    format!(" Set status of {} ", targets.join(",")),
                    t,
                    true,
                )),
                r,
                &mut st,
            );
        }
        Modal::Help { .. } => {}
        Modal::SudoPassword(ask) => sudo_password(f, area, app, ask),
        Modal::Palette(p) => {
            let h = (p.suggestions.len() as u16 + 3).min(14);
            let w = area.width.saturating_sub(10).min(80);
            let [_, r] =
                Layout::vertical([Constraint::Length(3), Constraint::Length(h)]).areas(area);
            let r = centered(Rect { height: h, ..r }, w, h);
            f.render_widget(Clear, r);
            let b = block(" Command ", t, true);
            let inner = b.inner(r);
            f.render_widget(b, r);
            let [line, rest] =
                Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
            f.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::styled(":", t.accent),
                    Span::raw(p.input.value().to_string()),
                ])),
                line,
            );
            f.set_cursor_position((line.x + 1 + p.input.visual_cursor() as u16, line.y));
            let items: Vec<ListItem> = p
                .suggestions
                .iter()
                .map(|s| {
                    let desc = COMMANDS
                        .iter()
                        .find(|(c, _)| c == s)
                        .map(|x| x.1)
                        .unwrap_or("");
                    ListItem::new(Line::from(vec![
                        Span::raw(format!("{s:<12}")),
                        Span::styled(desc, t.muted),
                    ]))
                })
                .collect();
            let mut st =
                ListState::default().with_selected((!p.suggestions.is_empty()).then_some(p.sel));
            f.render_stateful_widget(List::new(items).highlight_style(t.selection), rest, &mut st);
        }
    }
}

/// The masked password field of a `--prompt` server, over the install review.
fn sudo_password(f: &mut Frame, area: Rect, app: &App, ask: &SudoAsk) {
    let t = &app.theme;
    let form = &ask.form;
    let r = centered(area, 66, 9);
    f.render_widget(Clear, r);
    let b = block(format!(" {} ", super::clean(&form.title)), t, true).border_style(t.warn);
    let inner = b.inner(r);
    f.render_widget(b, r);
    let server = match &form.kind {
        FormKind::SudoPassword { server } => server.as_str(),
        _ => "",
    };
    let Some(fld) = form.focused() else { return };
    let label = "Password: ";
    let mut lines = vec![
        Line::raw(format!(
            "{} runs installs with sudo, which asks for a password.",
            super::clean(server)
        )),
        Line::styled(
            "Kept in this process's memory only; sent to sudo on stdin.",
            t.muted,
        ),
        Line::raw(""),
        Line::from(vec![
            Span::styled(label, t.accent),
            Span::styled(super::clean(&fld.shown(form.reveal)), t.selection),
        ]),
    ];
    match &form.message {
        Some(_) if fld.value().is_empty() => {
            lines.push(Line::styled("✗ enter the password, or Esc", t.error))
        }
        _ => lines.push(Line::raw("")),
    }
    if !ask.rest.is_empty() {
        lines.push(Line::styled(
            format!("then {} more server(s)", ask.rest.len()),
            t.muted,
        ));
    } else {
        lines.push(Line::raw(""));
    }
    let reveal = if form.reveal { "hide" } else { "reveal" };
    lines.push(keys_line(
        app,
        &[("Enter", "give"), ("C-v", reveal), ("Esc", "back")],
    ));
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    let x = inner.x + (label.len() + fld.input.visual_cursor()) as u16;
    if x < inner.x + inner.width && inner.height > 3 {
        f.set_cursor_position((x, inner.y + 3));
    }
}

/// How the help overlay lays out `n` bindings of `colw` columns each in `area`: one column
/// when it fits, else two side by side; (columns, rows per column, rows visible).
pub fn help_layout(n: usize, colw: usize, area: Rect) -> (usize, usize, usize) {
    // Borders plus the closing line.
    let max_rows = (area.height as usize).saturating_sub(3).max(1);
    let max_w = (area.width as usize).saturating_sub(2);
    let cols = if n > max_rows && 2 * colw <= max_w {
        2
    } else {
        1
    };
    let rows = n.div_ceil(cols);
    (cols, rows, rows.min(max_rows))
}

/// Every binding of the context under the overlay, straight from the keymap. When even two
/// columns do not fit, j/k/PgUp/PgDn scroll and the last line says what is hidden.
fn help(f: &mut Frame, area: Rect, app: &App) {
    let ctx = app.base_ctx();
    let binds = keymap::active(ctx);
    let n = binds.len();
    let keys: Vec<String> = binds.iter().map(keymap::keys_text).collect();
    let kw = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0) + 2;
    let refused: Vec<bool> = binds
        .iter()
        .map(|b| crate::bastion::refusal(app, ctx, b.action).is_some())
        .collect();
    // Room for the mark after a refused key's words.
    let dw = binds
        .iter()
        .map(|b| b.desc.chars().count())
        .max()
        .unwrap_or(0)
        + if refused.contains(&true) { 2 } else { 0 };
    // A leading space, the keys, the words and a gap before the next column.
    let colw = 1 + kw + dw + 2;
    let why = refused
        .contains(&true)
        .then(|| crate::bastion::refused_line(app))
        .flatten();
    let extra = why.is_some() as u16;
    let below = Rect {
        height: area.height.saturating_sub(extra),
        ..area
    };
    let (cols, rows, visible) = help_layout(n, colw, below);
    let max_scroll = rows - visible;
    let scroll = match &app.modal {
        Some(Modal::Help { scroll }) => (*scroll).min(max_scroll),
        _ => 0,
    };
    app.help_max_scroll.set(Some(max_scroll));
    let t = &app.theme;
    let title = format!(" Keys: {} ", keymap::ctx_name(ctx));
    let last = if max_scroll > 0 {
        format!(
            " rows {}-{} of {rows} {}{} · j/k PgUp/PgDn scroll · Esc closes",
            scroll + 1,
            scroll + visible,
            if scroll > 0 { "↑" } else { "" },
            if scroll < max_scroll { "↓" } else { "" },
        )
    } else {
        " Esc/?/q closes this help".to_string()
    };
    let w = (cols * colw)
        .max(title.chars().count() + 2)
        .max(last.chars().count())
        .max(why.as_ref().map_or(0, |w| w.chars().count()))
        + 2;
    let r = centered(area, w as u16, visible as u16 + 3 + extra);
    f.render_widget(Clear, r);
    let mut lines: Vec<Line> = (scroll..scroll + visible)
        .map(|row| {
            let mut spans = Vec::new();
            for c in 0..cols {
                let Some(b) = binds.get(c * rows + row) else {
                    continue;
                };
                // A key the engine would refuse here (read-only, the role) is dimmed and
                // marked, the reason on the last line.
                if refused[c * rows + row] {
                    spans.push(Span::styled(
                        format!(" {:<kw$}", keys[c * rows + row]),
                        t.muted,
                    ));
                    spans.push(Span::styled(
                        format!("{:<w$}", format!("{} ✗", b.desc), w = dw + 2),
                        t.muted,
                    ));
                    continue;
                }
                spans.push(Span::styled(
                    format!(" {:<kw$}", keys[c * rows + row]),
                    t.key,
                ));
                spans.push(Span::raw(format!("{:<w$}", b.desc, w = dw + 2)));
            }
            Line::from(spans)
        })
        .collect();
    if let Some(why) = why {
        lines.push(Line::styled(why, t.warn));
    }
    lines.push(Line::styled(last, t.muted));
    f.render_widget(Paragraph::new(lines).block(block(title, t, true)), r);
}
