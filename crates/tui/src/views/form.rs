//! The install / add-server form and its review step.

use super::block;
use crate::app::{App, Page};
use crate::form::{Form, FormKind};
use ptui_catalog::InputType;
use ptui_catalog::describe_rules;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

const LABEL_W: usize = 24;

/// The label column: as wide as the longest label plus a space, at most half the width, so
/// labels are not cut on a wide screen and a long one never runs into its value.
fn label_width<'a>(labels: impl Iterator<Item = &'a str>, width: usize) -> usize {
    let longest = labels.map(|l| l.chars().count()).max().unwrap_or(0);
    (longest + 1)
        .max(LABEL_W.min(width / 3))
        .min((width / 2).max(8))
}

/// `label` padded to `w` columns with at least one space after it, cut with `…` if longer.
fn pad_label(label: &str, w: usize) -> String {
    let w = w.max(2);
    if label.chars().count() + 1 > w {
        let cut: String = label.chars().take(w - 2).collect();
        format!("{cut}… ")
    } else {
        format!("{label:<w$}")
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let Some(Page::Form(form)) = &app.page else {
        return;
    };
    if form.review {
        review(f, area, app, form);
    } else {
        fields(f, area, app, form);
    }
}

fn fields(f: &mut Frame, area: Rect, app: &App, form: &Form) {
    let t = &app.theme;
    let b = block(format!(" {} ", form.title), t, true);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let [msg_area, body, hint_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(2),
    ])
    .areas(inner);
    if let Some(m) = &form.message {
        f.render_widget(
            Paragraph::new(Span::styled(super::clean(m), t.error)),
            msg_area,
        );
    } else {
        f.render_widget(
            Paragraph::new(Span::styled(
                "* required   Tab next field   Ctrl-s review",
                t.muted,
            )),
            msg_area,
        );
    }
    let mut lines: Vec<Line> = Vec::new();
    let mut cursor: Option<(u16, u16)> = None;
    let mut focus_line = 0usize;
    let width = body.width as usize;
    let labels: Vec<String> = form
        .visible()
        .into_iter()
        .map(|i| {
            let spec = &form.fields[i].spec;
            format!(
                "{}{}",
                if spec.required { "* " } else { "  " },
                spec.label()
            )
        })
        .collect();
    let lw = label_width(labels.iter().map(String::as_str), width);
    for i in form.visible() {
        let fld = &form.fields[i];
        let focused = i == form.focus;
        if focused {
            focus_line = lines.len();
        }
        let label = format!(
            "{}{}",
            if fld.spec.required { "* " } else { "  " },
            fld.spec.label()
        );
        let label = pad_label(&label, lw);
        let value = match fld.spec.kind {
            InputType::Boolean => format!("[{}] {}", if fld.on { "x" } else { " " }, fld.on),
            InputType::Select => format!("◂ {} ▸", fld.value()),
            _ => fld.shown(form.reveal),
        };
        let vstyle = if focused { t.selection } else { t.text };
        let pad = if fld.is_text() {
            " ".repeat(
                width
                    .saturating_sub(label.chars().count() + value.chars().count() + 1)
                    .min(30),
            )
        } else {
            String::new()
        };
        if focused && fld.is_text() {
            let x = label.chars().count() + fld.input.visual_cursor();
            cursor = Some((x as u16, lines.len() as u16));
        }
        lines.push(Line::from(vec![
            Span::styled(label, if focused { t.accent } else { t.text }),
            Span::styled(format!("{}{pad}", super::clean(&value)), vstyle),
        ]));
        if form.shows_error(i)
            && let Some(e) = fld.error()
        {
            // Wrapped under the value, so a long message is read whole, not cut at the edge.
            let room = width.saturating_sub(lw + 4).max(20);
            for (n, part) in word_wrap(&super::clean(&e), room).into_iter().enumerate() {
                let mark = if n == 0 { "✗" } else { " " };
                lines.push(Line::styled(format!("{:lw$}  {mark} {part}", ""), t.error));
            }
        }
    }
    if lines.is_empty() {
        lines.push(Line::styled(
            "  This installer takes no inputs. Press Ctrl-s to review.",
            t.muted,
        ));
    }
    let h = body.height as usize;
    let scroll = focus_line.saturating_sub(h.saturating_sub(2));
    f.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)), body);
    if let Some((x, y)) = cursor {
        let y = y as i64 - scroll as i64;
        if y >= 0 && (y as u16) < body.height && x < body.width {
            f.set_cursor_position((body.x + x, body.y + y as u16));
        }
    }
    if let Some(fld) = form.focused() {
        let mut hint = fld.spec.description.clone().unwrap_or_default();
        let rules = describe_rules(&fld.spec);
        if !rules.is_empty() {
            if !hint.is_empty() {
                hint.push_str(" · ");
            }
            hint.push_str(&format!("rule: {}", rules.join("; ")));
        }
        if let Some(v) = &fld.spec.visible_if {
            hint.push_str(&format!(" · shown when {}", v.describe()));
        }
        if fld.spec.is_sensitive() {
            hint.push_str(if form.reveal {
                " · shown (Ctrl-v hides)"
            } else {
                " · masked (Ctrl-v reveals)"
            });
        }
        match fld.spec.kind {
            InputType::Boolean => hint.push_str(" · Space toggles"),
            InputType::Select => hint.push_str(" · Space/←/→ choose"),
            _ => {}
        }
        f.render_widget(
            Paragraph::new(Span::styled(
                super::clean(hint.trim_start_matches(" · ")),
                t.muted,
            ))
            .wrap(Wrap { trim: true }),
            hint_area,
        );
    }
}

fn review(f: &mut Frame, area: Rect, app: &App, form: &Form) {
    let t = &app.theme;
    let mut lines = vec![
        Line::styled("Review before starting", t.title),
        Line::raw(""),
    ];
    let review = form.review_lines();
    let lw = label_width(
        review.iter().map(|(l, _)| l.as_str()),
        area.width.saturating_sub(2) as usize,
    );
    if let FormKind::Install { app: id, servers } = &form.kind {
        lines.push(Line::from(vec![
            Span::styled(pad_label("App", lw), t.muted),
            Span::raw(format!(
                "{} ({}) v{}",
                form.manifest.name, id, form.manifest.version
            )),
        ]));
        lines.push(Line::from(vec![
            Span::styled(pad_label("Servers", lw), t.muted),
            Span::raw(servers.join(", ")),
        ]));
    }
    if let FormKind::Install { servers, .. } = &form.kind
        && servers.len() > 1
    {
        let amount = |a: Option<ptui_engine::jobs::fanout::Amount>, none: &str| match a {
            Some(ptui_engine::jobs::fanout::Amount::Count(n)) => n.to_string(),
            Some(ptui_engine::jobs::fanout::Amount::Percent(p)) => format!("{p}%"),
            None => none.to_string(),
        };
        lines.push(Line::from(vec![
            Span::styled(pad_label("Fan-out", lw), t.muted),
            Span::raw(format!(
                "{} at once · batch {} · failure budget {}",
                form.fan
                    .concurrency
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| format!("{}", servers.len().min(50))),
                amount(form.fan.batch, "all"),
                amount(form.fan.max_fail, "none")
            )),
        ]));
    }
    if let FormKind::Install { .. } = &form.kind {
        plan_lines(app, form, lw, &mut lines);
    }
    lines.push(Line::raw(""));
    for (label, value) in review {
        lines.push(Line::from(vec![
            Span::styled(pad_label(&label, lw), t.muted),
            Span::raw(super::clean(&value)),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled(" y/Enter ", t.key),
        Span::raw("start the jobs and follow the log   "),
        Span::styled(" e/Esc ", t.key),
        Span::raw("back to the form"),
    ]));
    f.render_widget(
        Paragraph::new(lines)
            .block(block(format!(" {} · review ", form.title), t, true))
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// The plan under the review's header, as `--plan` prints it: the script and its checksum,
/// the batches, each server's change (with what differs from its deployment, secrets `***`),
/// and the servers skipped with the reason.
fn plan_lines<'a>(app: &App, form: &Form, lw: usize, lines: &mut Vec<Line<'a>>) {
    let t = &app.theme;
    let label = |l: &str| Span::styled(pad_label(l, lw), t.muted);
    let plan = match &form.plan {
        None if app.has_engine() => {
            lines.push(Line::from(vec![
                label("Plan"),
                Span::styled("computing…", t.muted),
            ]));
            return;
        }
        None => return,
        Some(Err(e)) => {
            lines.push(Line::from(vec![
                label("Plan"),
                Span::styled(format!("refused: {}", super::clean(e)), t.error),
            ]));
            return;
        }
        Some(Ok(p)) => p,
    };
    let short: String = plan.script_sha256.chars().take(12).collect();
    lines.push(Line::from(vec![
        label("Script"),
        Span::raw(format!("{} sha256 {short}… ({})", plan.script, plan.pin)),
    ]));
    let batches: Vec<String> = plan
        .batches
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{}: {}", i + 1, b.join(", ")))
        .collect();
    lines.push(Line::from(vec![
        label("Batches"),
        Span::raw(if batches.is_empty() {
            "none: no server would run".to_string()
        } else {
            batches.join(" · ")
        }),
    ]));
    for s in &plan.servers {
        let style = match s.change.as_str() {
            "no-op" | "absent" => t.muted,
            "changed" | "remove" => t.warn,
            _ => t.ok,
        };
        let mut spans = vec![
            label(&format!("  {}", s.name)),
            Span::styled(format!("{:<8}", s.change), style),
            Span::styled(format!(" {}", s.status), t.muted),
        ];
        let diff: Vec<String> = s
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{}: {} → {}",
                    c.input,
                    c.from.as_deref().unwrap_or("(unset)"),
                    c.to.as_deref().unwrap_or("(unset)")
                )
            })
            .collect();
        if !diff.is_empty() {
            spans.push(Span::raw(format!("  {}", super::clean(&diff.join(", ")))));
        }
        lines.push(Line::from(spans));
        // An upgrade fills each server's inputs from its own deployment: they are its own.
        if form.action == ptui_types::job::JobAction::Upgrade && !s.inputs.is_empty() {
            let inputs: Vec<String> = s.inputs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            lines.push(Line::from(vec![
                label(""),
                Span::styled(
                    format!("  inputs: {}", super::clean(&inputs.join(" "))),
                    t.muted,
                ),
            ]));
        }
    }
    for s in &plan.skipped {
        lines.push(Line::from(vec![
            label(&format!("  {}", s.name)),
            Span::styled(format!("skipped ({}): ", s.kind), t.warn),
            Span::styled(super::clean(&s.reason), t.muted),
        ]));
    }
}

/// `text` in lines of at most `w` columns, broken between words (a longer word is cut).
fn word_wrap(text: &str, w: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let fits = line.chars().count() + 1 + word.chars().count() <= w;
        if !line.is_empty() && !fits {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > w {
            let head: String = line.chars().take(w).collect();
            line = line.chars().skip(w).collect();
            out.push(head);
        }
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn word_wrap_breaks_between_words_and_cuts_only_a_longer_word() {
        assert_eq!(
            super::word_wrap("item 2 must be a port", 10),
            ["item 2", "must be a", "port"]
        );
        assert_eq!(
            super::word_wrap("abcdefghijkl", 5),
            ["abcde", "fghij", "kl"]
        );
        assert_eq!(super::word_wrap("", 5), [""]);
    }
}
