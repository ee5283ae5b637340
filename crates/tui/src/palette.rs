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
    (
        "server",
        "add | trust NAME | edit NAME  add, trust its key, edit it",
    ),
    ("import", "import the hosts of ~/.ssh/config"),
    ("cancel", "JOB_ID  cancel a job"),
    ("uninstall", "APP [SERVER...]  open the uninstall form"),
    ("upgrade", "APP [SERVER...]  open the upgrade form"),
    (
        "rollback",
        "APP [SERVER]  back to the previous recorded deployment (asks first)",
    ),
    (
        "maintenance",
        "on [SERVER...|all] [for 2h] [REASON] | off [SERVER...|all] | list",
    ),
    (
        "policy",
        "SERVER [recovery notify|auto] [interval 30s|default]  health policy",
    ),
    ("theme", "NAME  switch theme (dark, light, high-contrast)"),
    ("fanout", "the progress of the last fan-out started here"),
    ("mouse", "toggle mouse support"),
    ("help", "show key bindings"),
    ("q", "quit"),
];

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Screen(u8),
    Install {
        app: String,
        servers: Vec<String>,
    },
    /// Install, uninstall or upgrade: the form for `app` with that action.
    Action {
        action: ptui_types::job::JobAction,
        app: String,
        servers: Vec<String>,
    },
    /// Servers (empty: the marked or selected ones; `all`: the fleet), a duration, a reason.
    MaintenanceOn {
        servers: Vec<String>,
        all: bool,
        duration: Option<String>,
        reason: String,
    },
    MaintenanceOff {
        servers: Vec<String>,
        all: bool,
    },
    MaintenanceList,
    /// `rollback APP [SERVER]` (none: the one selected server).
    Rollback {
        app: String,
        server: Option<String>,
    },
    Policy {
        server: String,
        recovery: Option<String>,
        interval: Option<String>,
    },
    ServerAdd,
    /// The edit form of this server.
    ServerEdit(String),
    Import,
    Trust(String),
    Cancel(i64),
    Theme(String),
    Mouse,
    Fanout,
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
        (verb @ ("uninstall" | "upgrade"), [app, servers @ ..]) => Command::Action {
            action: if verb == "uninstall" {
                ptui_types::job::JobAction::Uninstall
            } else {
                ptui_types::job::JobAction::Upgrade
            },
            app: app.to_string(),
            servers: servers.iter().map(|s| s.to_string()).collect(),
        },
        (verb @ ("uninstall" | "upgrade"), []) => {
            return Err(format!("usage: {verb} APP [SERVER...]"));
        }
        ("maintenance" | "maint", ["on", rest @ ..]) => maintenance_on(rest),
        ("maintenance" | "maint", ["off", rest @ ..]) => Command::MaintenanceOff {
            all: rest.contains(&"all"),
            servers: rest
                .iter()
                .filter(|w| **w != "all")
                .map(|s| s.to_string())
                .collect(),
        },
        ("maintenance" | "maint", ["list"] | []) => Command::MaintenanceList,
        ("maintenance" | "maint", _) => {
            return Err(
                "usage: maintenance on [SERVER...|all] [for 2h] [REASON] | off [SERVER...|all] | list"
                    .into(),
            );
        }
        ("rollback", [app]) => Command::Rollback {
            app: app.to_string(),
            server: None,
        },
        ("rollback", [app, server]) => Command::Rollback {
            app: app.to_string(),
            server: Some(server.to_string()),
        },
        ("rollback", _) => return Err("usage: rollback APP [SERVER]".into()),
        ("policy", [server, rest @ ..]) => policy(server, rest)?,
        ("policy", []) => {
            return Err(
                "usage: policy SERVER [recovery notify|auto] [interval 30s|default]".into(),
            );
        }
        ("server", ["add"]) => Command::ServerAdd,
        ("import", _) => Command::Import,
        ("server", ["trust", name]) => Command::Trust(name.to_string()),
        ("server", ["edit", name]) => Command::ServerEdit(name.to_string()),
        ("server", _) => {
            return Err("usage: server add | server trust NAME | server edit NAME".into());
        }
        ("cancel", [id]) => Command::Cancel(
            id.trim_start_matches('#')
                .parse()
                .map_err(|_| format!("cancel: {id:?} is not a job id"))?,
        ),
        ("theme", [name]) => Command::Theme(name.to_string()),
        ("mouse", _) => Command::Mouse,
        ("fanout", _) => Command::Fanout,
        ("help", _) => Command::Help,
        ("q" | "quit" | "q!", _) => Command::Quit,
        (other, _) => return Err(format!("unknown command {other:?}; Tab lists commands")),
    })
}

/// `maintenance on web1 web2 for 2h kernel upgrade`: server names until `for` or a word that
/// is not a name is not knowable here, so the reason starts after `for DURATION`, or after
/// `reason`; without either, every word is a server.
fn maintenance_on(rest: &[&str]) -> Command {
    let mut servers = Vec::new();
    let mut duration = None;
    let mut reason = Vec::new();
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        match *w {
            "for" if duration.is_none() => duration = it.next().map(|d| d.to_string()),
            "reason" => {
                reason.extend(it.by_ref().map(|s| s.to_string()));
            }
            _ if duration.is_some() => reason.push(w.to_string()),
            _ => servers.push(w.to_string()),
        }
    }
    let all = servers.iter().any(|s| s == "all");
    servers.retain(|s| s != "all");
    Command::MaintenanceOn {
        servers,
        all,
        duration,
        reason: reason.join(" "),
    }
}

fn policy(server: &str, rest: &[&str]) -> Result<Command, String> {
    let (mut recovery, mut interval) = (None, None);
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        let v = it.next().map(|v| v.to_string());
        match (*w, v) {
            ("recovery", Some(v)) => recovery = Some(v),
            ("interval", Some(v)) => interval = Some(v),
            (w, _) => {
                return Err(format!(
                    "policy: {w:?} needs a value: recovery notify|auto, interval 30s|default"
                ));
            }
        }
    }
    if recovery.is_none() && interval.is_none() {
        return Err(
            "policy: say what to change: recovery notify|auto, interval 30s|default".into(),
        );
    }
    Ok(Command::Policy {
        server: server.to_string(),
        recovery,
        interval,
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
        ["install" | "uninstall" | "upgrade"] => words.apps.iter().map(|s| s.to_string()).collect(),
        ["maintenance"] => ["on", "off", "list"].map(String::from).to_vec(),
        ["maintenance", "on" | "off", ..] | ["policy"] => words
            .servers
            .iter()
            .map(|s| s.to_string())
            .chain(["all".to_string()])
            .collect(),
        ["policy", _] | ["policy", _, _, _] => ["recovery", "interval"].map(String::from).to_vec(),
        ["policy", _, "recovery"] | ["policy", _, _, _, "recovery"] => {
            ["notify", "auto"].map(String::from).to_vec()
        }
        ["install" | "uninstall" | "upgrade", _, given @ ..] => words
            .servers
            .iter()
            .filter(|s| !given.contains(s))
            .map(|s| s.to_string())
            .collect(),
        ["server"] => vec!["add".into(), "trust".into(), "edit".into()],
        ["server", "trust" | "edit"] => words.servers.iter().map(|s| s.to_string()).collect(),
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
        assert_eq!(
            parse("server edit web1"),
            Ok(Command::ServerEdit("web1".into()))
        );
        assert!(parse("server edit").is_err());
        assert_eq!(parse("q"), Ok(Command::Quit));
        assert_eq!(parse("cancel #7"), Ok(Command::Cancel(7)));
        assert!(parse("bogus").is_err());
        assert!(parse("install").is_err());
        assert_eq!(
            parse("maintenance on web1 web2 for 2h kernel upgrade"),
            Ok(Command::MaintenanceOn {
                servers: vec!["web1".into(), "web2".into()],
                all: false,
                duration: Some("2h".into()),
                reason: "kernel upgrade".into(),
            })
        );
        assert_eq!(
            parse("maintenance on all reason disk swap"),
            Ok(Command::MaintenanceOn {
                servers: vec![],
                all: true,
                duration: None,
                reason: "disk swap".into(),
            })
        );
        assert_eq!(
            parse("maintenance off web1"),
            Ok(Command::MaintenanceOff {
                servers: vec!["web1".into()],
                all: false
            })
        );
        assert_eq!(parse("maintenance list"), Ok(Command::MaintenanceList));
        assert_eq!(
            parse("policy web1 recovery auto interval 30s"),
            Ok(Command::Policy {
                server: "web1".into(),
                recovery: Some("auto".into()),
                interval: Some("30s".into()),
            })
        );
        assert!(parse("policy web1").is_err());
        assert!(parse("policy web1 recovery").is_err());
        assert!(matches!(
            parse("uninstall nginx web1"),
            Ok(Command::Action {
                action: ptui_types::job::JobAction::Uninstall,
                ..
            })
        ));
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
