//! Fleet: the server table (only visible rows are built) and a server's detail page.

use super::{age, block, clean, column_widths, fit, job_style, scroll_to, server_style, stamp};
use crate::app::{App, FLEET_SORTS, Health, Page};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A text sparkline of recent latencies; `-` until health checks feed it.
pub fn spark(h: Option<&Health>, width: usize) -> String {
    let Some(h) = h.filter(|h| !h.history.is_empty()) else {
        return "-".into();
    };
    let max = h.history.iter().copied().max().unwrap_or(1).max(1);
    h.history
        .iter()
        .rev()
        .take(width)
        .rev()
        .map(|v| SPARK[((*v * 7) / max) as usize])
        .collect()
}

fn opt<T: std::fmt::Display>(v: Option<T>, suffix: &str) -> String {
    v.map(|v| format!("{v}{suffix}"))
        .unwrap_or_else(|| "-".into())
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let fl = &app.fleet;
    let sort = format!(
        "{}{}",
        FLEET_SORTS[fl.sort],
        if fl.rev { " ↑" } else { " ↓" }
    );
    let mut title = format!(" Fleet ({}", fl.order.len());
    if fl.order.len() != fl.servers.len() {
        title.push_str(&format!(" of {}", fl.servers.len()));
    }
    title.push_str(&format!(") sort: {sort} "));
    if !fl.filter.is_empty() {
        title.push_str(&format!("filter: {} ", fl.filter));
    }
    if !fl.marks.is_empty() {
        title.push_str(&format!("marked: {} ", fl.marks.len()));
    }
    let b = block(title, t, true);
    if fl.servers.is_empty() {
        let text = vec![
            Line::raw(""),
            Line::styled("  No servers yet.", t.title),
            Line::raw(""),
            Line::raw("  Press a to add one (name, host, port, user), or run"),
            Line::styled("  provision-tui server add NAME --host HOST", t.accent),
            Line::raw("  Its host key is shown for you to accept before anything runs."),
        ];
        f.render_widget(Paragraph::new(text).block(b), area);
        return;
    }
    let inner_h = area.height.saturating_sub(3) as usize;
    let offset = scroll_to(fl.sel, fl.offset.get(), inner_h);
    fl.offset.set(offset);
    let wide = area.width >= 110;
    // A fleet over several sites shows each server's site (only its processes reach it).
    let sites = fl.servers.iter().any(|x| x.site != fl.servers[0].site);
    let mut head = vec!["", "NAME", "ADDRESS", "STATUS", "!"];
    if sites {
        head.push("SITE");
    }
    let tags_col = head.len();
    if wide {
        head.push("TAGS");
    }
    head.extend(["AGE", "LAT", "LOAD", "MEM%", "DISK%"]);
    if wide {
        head.push("TREND");
    }
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Fill(2),
        Constraint::Fill(3),
        Constraint::Length(14),
        Constraint::Length(3),
    ];
    if sites {
        let longest = fl.servers.iter().map(|x| x.site.chars().count()).max();
        widths.push(Constraint::Length(longest.unwrap_or(4).clamp(4, 12) as u16));
    }
    if wide {
        widths.push(Constraint::Fill(2));
    }
    widths.extend([
        Constraint::Length(4),
        // `hostkey` is the longest failure word.
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(5),
    ]);
    if wide {
        widths.push(Constraint::Length(16));
    }
    // Fixed lengths from here: the name and address cells are cut to them with `…`.
    let cols = column_widths(&widths, area.width.saturating_sub(2));
    let widths: Vec<Constraint> = cols.iter().map(|w| Constraint::Length(*w)).collect();
    let col = |i: usize| cols.get(i).copied().unwrap_or(0) as usize;
    let rows: Vec<Row> = fl.order[offset..(offset + inner_h).min(fl.order.len())]
        .iter()
        .map(|i| {
            let s = &fl.servers[*i];
            let h = fl.health.get(&s.name);
            let last = h.and_then(|h| h.last.as_ref());
            let marked = fl.marks.contains(&s.name);
            let mut cells = vec![
                Cell::from(if marked { "●" } else { " " }).style(t.mark),
                Cell::from(fit(&clean(&s.name), col(1))),
                Cell::from(fit(&clean(&s.address()), col(2))),
                Cell::from(s.status.as_str()).style(server_style(t, s.status)),
                marker(app, &s.name),
            ];
            if sites {
                cells.push(Cell::from(fit(&clean(&s.site), col(5))).style(t.muted));
            }
            if wide {
                cells
                    .push(Cell::from(fit(&clean(&s.tags.join(",")), col(tags_col))).style(t.muted));
            }
            cells.extend([
                Cell::from(
                    last.map(|l| age(app.now_ms, l.at_ms))
                        .unwrap_or_else(|| "-".into()),
                ),
                match last.and_then(|l| l.failure.as_deref()) {
                    // The last check failed: say so where the latency would be.
                    Some(kind) => Cell::from(short_failure(kind)).style(t.error),
                    None => Cell::from(opt(last.and_then(|l| l.latency_ms), "ms")),
                },
                Cell::from(opt(last.and_then(|l| l.load), "")),
                Cell::from(opt(last.and_then(|l| l.mem_pct), "")),
                Cell::from(opt(last.and_then(|l| l.disk_pct), "")),
            ]);
            if wide {
                cells.push(Cell::from(spark(h, 16)).style(t.accent));
            }
            let row = Row::new(cells);
            if marked { row.style(t.mark) } else { row }
        })
        .collect();
    let mut state = ratatui::widgets::TableState::default().with_selected(Some(fl.sel - offset));
    let table = Table::new(rows, widths)
        .header(Row::new(head).style(t.title))
        .row_highlight_style(t.selection)
        .block(b);
    f.render_stateful_widget(table, area, &mut state);
}

pub fn detail(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let Some(Page::Detail(d)) = &app.page else {
        return;
    };
    let s = &d.server;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{}  ", s.name), t.title),
            Span::styled(s.status.as_str(), super::server_style(t, s.status)),
            Span::styled(format!("  site {}", clean(&s.site)), t.muted),
        ]),
        Line::raw(format!(
            "address {}   jump {}   tags {}",
            s.address(),
            s.jump.as_deref().unwrap_or("-"),
            if s.tags.is_empty() {
                "-".into()
            } else {
                s.tags.join(",")
            }
        )),
    ];
    health_lines(app, d, &mut lines);
    lines.extend([Line::raw(""), Line::styled("Status history", t.accent)]);
    if d.events.is_empty() {
        lines.push(Line::styled("  none", t.muted));
    }
    for e in &d.events {
        lines.push(Line::from(vec![
            Span::styled(
                format!("  {}  ", stamp(app, e.ts, "%Y-%m-%d %H:%M")),
                t.muted,
            ),
            Span::raw(format!(
                "{} → ",
                e.from_status.map(|s| s.as_str()).unwrap_or("(new)")
            )),
            Span::styled(e.to_status.as_str(), server_style(t, e.to_status)),
            Span::styled(format!("  {}", clean(&e.reason)), t.muted),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Deployments", t.accent));
    if d.deployments.is_empty() {
        lines.push(Line::styled(
            "  nothing installed by provision-tui",
            t.muted,
        ));
    }
    for dep in &d.deployments {
        lines.push(Line::raw(format!(
            "  {} {}  installed {}  job #{}",
            dep.app_id,
            dep.app_version,
            stamp(app, dep.installed_at, "%Y-%m-%d %H:%M"),
            dep.job_id
                .map(|j| j.to_string())
                .unwrap_or_else(|| "-".into())
        )));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Jobs", t.accent));
    if d.jobs.is_empty() {
        lines.push(Line::styled("  none", t.muted));
    }
    for j in &d.jobs {
        lines.push(Line::from(vec![
            Span::raw(format!("  #{:<5} ", j.id)),
            Span::styled(format!("{:<11}", j.status.as_str()), job_style(t, j.status)),
            Span::raw(format!(" {} {}", j.action.as_str(), j.app_id)),
            Span::styled(format!("  {} ago", age(app.now_ms, j.created_at)), t.muted),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Incidents", t.accent));
    if d.incidents.is_empty() {
        lines.push(Line::styled(
            "  none (health checks open incidents here when this server fails them)",
            t.muted,
        ));
    }
    for i in &d.incidents {
        lines.push(Line::raw(format!(
            "  #{} {} {}  since {}",
            i.id,
            i.kind,
            i.state,
            stamp(app, i.opened_at, "%Y-%m-%d %H:%M")
        )));
    }
    let p = Paragraph::new(lines)
        .block(block(format!(" Server {} ", s.name), t, true))
        .wrap(Wrap { trim: false })
        .scroll((d.scroll, 0));
    f.render_widget(p, area);
}

/// The detail page's health: the last sample (filesystems, memory, load, docker, each app's
/// check) and uptime over 24 h and 7 d, for the server and per app.
fn health_lines<'a>(app: &App, d: &crate::app::Detail, lines: &mut Vec<Line<'a>>) {
    let t = &app.theme;
    lines.push(Line::raw(""));
    lines.push(Line::styled("Health", t.accent));
    let Some(h) = &d.health else {
        lines.push(Line::styled("  loading…", t.muted));
        return;
    };
    let pct = |u: &ptui_engine::queries::Uptime| {
        u.pct()
            .map(|p| format!("{p:.1}%"))
            .unwrap_or_else(|| "-".into())
    };
    lines.push(Line::raw(format!(
        "  uptime 24h {}  7d {}  ({} checks in 7d)",
        pct(&h.uptime_24h),
        pct(&h.uptime_7d),
        h.uptime_7d.total
    )));
    let Some(s) = &h.last else {
        lines.push(Line::styled(
            "  no check yet (c checks now; `provision-tui watch` checks on a schedule)",
            t.muted,
        ));
        return;
    };
    let verdict = match (s.ok, s.failure) {
        (true, _) => Span::styled("healthy", t.ok),
        (false, Some(k)) => Span::styled(k.as_str(), t.error),
        (false, None) => Span::styled("over a threshold", t.warn),
    };
    lines.push(Line::from(vec![
        Span::raw(format!("  last check {} ago: ", age(app.now_ms, s.ts))),
        verdict,
        Span::styled(
            s.error
                .as_deref()
                .map(|e| format!("  {}", clean(e)))
                .unwrap_or_default(),
            t.muted,
        ),
    ]));
    if s.failure.is_none() {
        let load = s
            .load
            .map(|l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]))
            .unwrap_or_else(|| "-".into());
        let f = |v: Option<f64>| v.map(|v| format!("{v:.0}%")).unwrap_or_else(|| "-".into());
        lines.push(Line::raw(format!(
            "  latency {}ms  load {load}  memory {}  disk / {}  docker {}",
            s.latency_ms,
            f(s.mem_pct),
            f(s.disk_pct),
            s.docker.as_deref().unwrap_or("not installed")
        )));
        for m in &s.mounts_over {
            lines.push(Line::styled(
                format!("  filesystem {} at {:.0}%", clean(&m.mount), m.pct),
                t.warn,
            ));
        }
    }
    for a in &s.apps {
        let up = h
            .apps
            .iter()
            .find(|(id, _, _)| *id == a.app_id)
            .map(|(_, d, w)| format!("  uptime 24h {} 7d {}", pct(d), pct(w)))
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::raw(format!("  app {} ", clean(&a.app_id))),
            if a.ok {
                Span::styled("ok", t.ok)
            } else {
                Span::styled("failing", t.error)
            },
            Span::styled(format!("  {}{up}", clean(&a.detail)), t.muted),
        ]));
    }
}

/// The `!` column: `!N` open incidents on the server, `…` while its check-now runs.
fn marker<'a>(app: &App, server: &str) -> Cell<'a> {
    match app.open_incidents_of(server) {
        _ if app.checking.contains(server) => Cell::from("…").style(app.theme.pending),
        0 => Cell::from(""),
        n => Cell::from(format!("!{n}")).style(app.theme.error),
    }
}

/// A failed check's kind, short enough for the latency column.
fn short_failure(kind: &str) -> &'static str {
    match kind {
        "server_unreachable" => "down",
        "auth_failed" => "auth",
        "host_key_changed" | "host_key_unknown" => "hostkey",
        _ => "fail",
    }
}
