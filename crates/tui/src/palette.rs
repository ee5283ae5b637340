//! The `:` command palette: parsing and completion. Pure; `update` acts on the parsed command.

use tui_input::Input;

/// Commands with their argument shape, for completion and help.
pub const COMMANDS: &[(&str, &str)] = &[
    ("fleet", "show the fleet"),
    ("catalog", "show the catalog"),
    ("jobs", "show jobs"),
    ("incidents", "show incidents"),
    ("audit", "show the audit log"),
    ("install", "APP [SERVER...]  open the install form"),
    ("server", "add | trust NAME  add a server or trust its key"),
    ("import", "import the hosts of ~/.ssh/config"),
    ("cancel", "JOB_ID  cancel a job"),
    ("theme", "NAME  switch theme (dark, light, high-contrast)"),
    ("mouse", "toggle mouse support"),
    ("help", "show key bindings"),
    ("q", "quit"),
];

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Screen(u8),
    Install { app: String, servers: Vec<String> },
    ServerAdd,
    Import,
    Trust(String),
    Cancel(i64),
    Theme(String),
    Mouse,
    Help,
    Quit,
}

#[derive(Debug, Default)]
pub struct Palette {
    pub input: Input,
    pub suggestions: Vec<String>,
    pub sel: usize,
}

/// What completion can draw from: installer ids and server names.
pub struct Words<'a> {
    pub apps: Vec<&'a str>,
    pub servers: Vec<&'a str>,
}

pub fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((head, rest)) = words.split_first() else {
        return Err("type a command; Tab completes".into());
    };
    Ok(match (*head, rest) {
        ("fleet" | "f", _) => Command::Screen(1),
        ("catalog", _) => Command::Screen(2),
        ("jobs" | "j", _) => Command::Screen(3),
        ("incidents", _) => Command::Screen(4),
        ("audit", _) => Command::Screen(5),
        ("install", [app, servers @ ..]) => Command::Install {
            app: app.to_string(),
            servers: servers.iter().map(|s| s.to_string()).collect(),
        },
        ("install", []) => return Err("usage: install APP [SERVER...]".into()),
        ("server", ["add"]) => Command::ServerAdd,
        ("import", _) => Command::Import,
        ("server", ["trust", name]) => Command::Trust(name.to_string()),
        ("server", _) => return Err("usage: server add | server trust NAME".into()),
        ("cancel", [id]) => Command::Cancel(
            id.trim_start_matches('#')
                .parse()
                .map_err(|_| format!("cancel: {id:?} is not a job id"))?,
        ),
        ("theme", [name]) => Command::Theme(name.to_string()),
        ("mouse", _) => Command::Mouse,
        ("help", _) => Command::Help,
        ("q" | "quit" | "q!", _) => Command::Quit,
        (other, _) => return Err(format!("unknown command {other:?}; Tab lists commands")),
    })
}

/// Candidates for the word being typed.
pub fn suggest(line: &str, words: &Words<'_>) -> Vec<String> {
    let ends_with_space = line.ends_with(' ');
    let parts: Vec<&str> = line.split_whitespace().collect();
    let (done, partial): (&[&str], &str) = if ends_with_space || parts.is_empty() {
        (&parts[..], "")
    } else {
        (&parts[..parts.len() - 1], parts[parts.len() - 1])
    };
    let pool: Vec<String> = match done {
        [] => COMMANDS.iter().map(|(c, _)| c.to_string()).collect(),
        ["install"] => words.apps.iter().map(|s| s.to_string()).collect(),
        ["install", _, given @ ..] => words
            .servers
            .iter()
            .filter(|s| !given.contains(s))
            .map(|s| s.to_string())
            .collect(),
        ["server"] => vec!["add".into(), "trust".into()],
        ["server", "trust"] => words.servers.iter().map(|s| s.to_string()).collect(),
        ["theme"] => ["dark", "light", "high-contrast"]
            .map(String::from)
            .to_vec(),
        _ => Vec::new(),
    };
    pool.into_iter()
        .filter(|c| c.starts_with(partial))
        .take(50)
        .collect()
}

/// The line with the word being typed replaced by `choice`, plus a space.
pub fn complete(line: &str, choice: &str) -> String {
    let keep = if line.ends_with(' ') || line.is_empty() {
        line.to_string()
    } else {
        match line.rfind(' ') {
            Some(i) => line[..=i].to_string(),
            None => String::new(),
        }
    };
    format!("{keep}{choice} ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Words<'static> {
        Words {
            apps: vec!["nginx", "redis"],
            servers: vec!["web1", "web2"],
        }
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse("jobs"), Ok(Command::Screen(3)));
        assert_eq!(
            parse("install nginx web1 web2"),
            Ok(Command::Install {
                app: "nginx".into(),
                servers: vec!["web1".into(), "web2".into()]
            })
        );
        assert_eq!(parse("server add"), Ok(Command::ServerAdd));
        assert_eq!(parse("q"), Ok(Command::Quit));
        assert_eq!(parse("cancel #7"), Ok(Command::Cancel(7)));
        assert!(parse("bogus").is_err());
        assert!(parse("install").is_err());
    }

    #[test]
    fn completes_commands_apps_and_servers() {
        let w = words();
        assert_eq!(suggest("ins", &w), vec!["install"]);
        assert_eq!(suggest("install ", &w), vec!["nginx", "redis"]);
        assert_eq!(suggest("install r", &w), vec!["redis"]);
        assert_eq!(suggest("install redis web1 ", &w), vec!["web2"]);
        assert_eq!(complete("install r", "redis"), "install redis ");
        assert_eq!(complete("", "jobs"), "jobs ");
    }
}
