//! Themes: semantic style slots loaded from YAML. Built-ins are embedded; user themes live under
//! `$XDG_CONFIG_HOME/provision-tui/themes/NAME.yaml`. `NO_COLOR` yields a monochrome theme.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::path::PathBuf;

const BUILTIN: [(&str, &str); 3] = [
    ("dark", include_str!("../../../themes/dark.yaml")),
    ("light", include_str!("../../../themes/light.yaml")),
    (
        "high-contrast",
        include_str!("../../../themes/high-contrast.yaml"),
    ),
];

/// Styles named by meaning, never by hue.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub ok: Style,
    pub warn: Style,
    pub error: Style,
    pub pending: Style,
    pub muted: Style,
    pub accent: Style,
    pub selection: Style,
    pub border: Style,
    pub title: Style,
    pub header: Style,
    pub key: Style,
    pub stderr: Style,
    pub system: Style,
    pub matched: Style,
    pub mark: Style,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    text: Option<String>,
    ok: Option<String>,
    warn: Option<String>,
    error: Option<String>,
    pending: Option<String>,
    muted: Option<String>,
    accent: Option<String>,
    selection: Option<String>,
    border: Option<String>,
    title: Option<String>,
    header: Option<String>,
    key: Option<String>,
    stderr: Option<String>,
    system: Option<String>,
    #[serde(rename = "match")]
    matched: Option<String>,
    mark: Option<String>,
}

/// A theme file that could not be used, with where and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ThemeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "theme {}:{}: {}; using the dark theme",
            self.file, self.line, self.message
        )
    }
}

fn color(word: &str) -> Option<Color> {
    let w = word.to_ascii_lowercase();
    if let Some(hex) = w.strip_prefix('#') {
        if hex.len() != 6 {
            return None;
        }
        let v = u32::from_str_radix(hex, 16).ok()?;
        return Some(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
    }
    Some(match w.as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return None,
    })
}

/// Parses `"[modifiers] [fg] [on bg]"`.
pub fn parse_style(spec: &str) -> Result<Style, String> {
    let mut style = Style::default();
    let mut words = spec.split_whitespace();
    let mut fg_set = false;
    while let Some(w) = words.next() {
        let m = match w.to_ascii_lowercase().as_str() {
            "bold" => Some(Modifier::BOLD),
            "dim" => Some(Modifier::DIM),
            "italic" => Some(Modifier::ITALIC),
            "underlined" | "underline" => Some(Modifier::UNDERLINED),
            "reversed" | "reverse" => Some(Modifier::REVERSED),
            _ => None,
        };
        if let Some(m) = m {
            style = style.add_modifier(m);
            continue;
        }
        if w.eq_ignore_ascii_case("on") {
            let bg = words
                .next()
                .ok_or_else(|| format!("{spec:?}: `on` needs a background colour"))?;
            style = style.bg(color(bg).ok_or_else(|| format!("unknown colour {bg:?}"))?);
            continue;
        }
        if fg_set {
            return Err(format!("{spec:?}: two foreground colours"));
        }
        style = style.fg(color(w).ok_or_else(|| format!("unknown colour or modifier {w:?}"))?);
        fg_set = true;
    }
    Ok(style)
}

fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(&format!("{key}:")))
        .map(|i| i + 1)
        .unwrap_or(1)
}

/// Parses a theme file's text; `file` names it in errors. Missing slots come from dark.
pub fn parse(file: &str, text: &str) -> Result<Theme, ThemeError> {
    let raw: Raw = yaml_serde::from_str(text).map_err(|e| {
        let mut message = e.to_string();
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        ThemeError {
            file: file.to_string(),
            line: e.location().map(|l| l.line()).unwrap_or(1),
            message,
        }
    })?;
    let mut t = dark();
    let slots: [(&str, &Option<String>, &mut Style); 16] = [
        ("text", &raw.text, &mut t.text),
        ("ok", &raw.ok, &mut t.ok),
        ("warn", &raw.warn, &mut t.warn),
        ("error", &raw.error, &mut t.error),
        ("pending", &raw.pending, &mut t.pending),
        ("muted", &raw.muted, &mut t.muted),
        ("accent", &raw.accent, &mut t.accent),
        ("selection", &raw.selection, &mut t.selection),
        ("border", &raw.border, &mut t.border),
        ("title", &raw.title, &mut t.title),
        ("header", &raw.header, &mut t.header),
        ("key", &raw.key, &mut t.key),
        ("stderr", &raw.stderr, &mut t.stderr),
        ("system", &raw.system, &mut t.system),
        ("match", &raw.matched, &mut t.matched),
        ("mark", &raw.mark, &mut t.mark),
    ];
    for (key, value, slot) in slots {
        if let Some(v) = value {
            *slot = parse_style(v).map_err(|message| ThemeError {
                file: file.to_string(),
                line: line_of(text, key),
                message: format!("{key}: {message}"),
            })?;
        }
    }
    t.name = raw.name.unwrap_or_else(|| file.to_string());
    Ok(t)
}

/// The default theme. Built-in text is known good; a failure would be a build bug caught by tests.
pub fn dark() -> Theme {
    let s = |spec: &str| parse_style(spec).unwrap_or_default();
    Theme {
        name: "dark".into(),
        text: Style::default(),
        ok: s("green"),
        warn: s("yellow"),
        error: s("bold lightred"),
        pending: s("cyan"),
        muted: s("darkgray"),
        accent: s("bold lightblue"),
        selection: s("black on lightblue"),
        border: s("darkgray"),
        title: s("bold white"),
        header: s("white on #1f2a3a"),
        key: s("bold yellow"),
        stderr: s("lightred"),
        system: s("magenta"),
        matched: s("black on yellow"),
        mark: s("bold lightmagenta"),
    }
}

/// Monochrome: only modifiers, for `NO_COLOR`.
pub fn mono() -> Theme {
    let m = |m: Modifier| Style::default().add_modifier(m);
    Theme {
        name: "mono".into(),
        text: Style::default(),
        ok: Style::default(),
        warn: m(Modifier::BOLD),
        error: m(Modifier::BOLD | Modifier::UNDERLINED),
        pending: m(Modifier::ITALIC),
        muted: m(Modifier::DIM),
        accent: m(Modifier::BOLD),
        selection: m(Modifier::REVERSED),
        border: Style::default(),
        title: m(Modifier::BOLD),
        header: m(Modifier::REVERSED),
        key: m(Modifier::BOLD),
        stderr: m(Modifier::ITALIC),
        system: m(Modifier::DIM),
        matched: m(Modifier::REVERSED | Modifier::UNDERLINED),
        mark: m(Modifier::BOLD),
    }
}

pub fn user_dir() -> PathBuf {
    ptui_types::config::config_dir().join("themes")
}

/// The `theme:` key of `$XDG_CONFIG_HOME/provision-tui/config.yaml`, if any.
pub fn configured() -> Option<String> {
    #[derive(Deserialize)]
    struct Cfg {
        theme: Option<String>,
    }
    let text =
        std::fs::read_to_string(ptui_types::config::config_dir().join("config.yaml")).ok()?;
    yaml_serde::from_str::<Cfg>(&text).ok()?.theme
}

/// Remembers `name` as the `theme:` of `config.yaml` (the other keys and lines are kept), so
/// the next start uses it. Returns the file written.
pub fn save_configured(name: &str) -> Result<std::path::PathBuf, String> {
    let path = ptui_types::config::config_dir().join("config.yaml");
    save_theme_in(&path, name)?;
    Ok(path)
}

/// Writes `theme: NAME` into the config file at `path`, keeping its other lines.
pub fn save_theme_in(path: &std::path::Path, name: &str) -> Result<(), String> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let line = format!("theme: {name}");
    let mut found = false;
    let mut lines: Vec<String> = old
        .lines()
        .map(|l| {
            if l.starts_with("theme:") {
                found = true;
                line.clone()
            } else {
                l.to_string()
            }
        })
        .collect();
    if !found {
        lines.push(line);
    }
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, lines.join("\n") + "\n")
    };
    write().map_err(|e| format!("{}: {e}; the theme applies until you quit", path.display()))
}

/// Picks the theme: NO_COLOR wins, then `name` (flag/env/config), then dark. A user file with
/// the same name as a built-in overrides it. Returns a warning to show when falling back.
pub fn load(name: Option<&str>) -> (Theme, Option<ThemeError>) {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return (mono(), None);
    }
    let name = name.unwrap_or("dark");
    let user = user_dir().join(format!("{name}.yaml"));
    if let Ok(text) = std::fs::read_to_string(&user) {
        return match parse(&user.display().to_string(), &text) {
            Ok(t) => (t, None),
            Err(e) => (dark(), Some(e)),
        };
    }
    if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) {
        return match parse(&format!("themes/{name}.yaml"), text) {
            Ok(t) => (t, None),
            Err(e) => (dark(), Some(e)),
        };
    }
    let err = ThemeError {
        file: user.display().to_string(),
        line: 0,
        message: format!(
            "no theme {name:?}; built-in themes: dark, light, high-contrast, or put {name}.yaml in {}",
            user_dir().display()
        ),
    };
    (dark(), Some(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chosen_theme_is_saved_beside_the_other_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/config.yaml");
        super::save_theme_in(&path, "light").expect("save");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "theme: light\n"
        );
        std::fs::write(&path, "# mine\ntheme: dark\nother: 1\n").expect("write");
        super::save_theme_in(&path, "high-contrast").expect("save");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "# mine\ntheme: high-contrast\nother: 1\n"
        );
    }

    #[test]
    fn builtins_parse() {
        for (name, text) in BUILTIN {
            let t = parse(name, text).expect(name);
            assert_eq!(t.name, name);
        }
        assert_eq!(parse("dark", BUILTIN[0].1).map(|t| t.ok), Ok(dark().ok));
    }

    #[test]
    fn bad_colour_names_file_and_line() {
        let e = parse("x.yaml", "name: x\nok: green\nwarn: purpleish\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("purpleish"), "{}", e.message);
        assert!(e.to_string().starts_with("theme x.yaml:3:"));
    }

    #[test]
    fn unknown_slot_and_bad_yaml_are_errors() {
        let e = parse("y.yaml", "name: y\nokk: green\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse("z.yaml", "name: [\n").is_err());
    }

    #[test]
    fn styles() {
        let s = parse_style("bold black on #ff0000").unwrap();
        assert_eq!(s.fg, Some(Color::Black));
        assert_eq!(s.bg, Some(Color::Rgb(255, 0, 0)));
        assert!(parse_style("on").is_err());
    }
}
