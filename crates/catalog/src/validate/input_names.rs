//! Which input names a manifest may declare. An input `foo` is exported to the installer as
//! `$FOO`, before the interpreter and `timeout` start, so a name is an allow-list rule
//! (`[a-z][a-z0-9_]*`) minus every variable the dynamic loader, glibc, the shells, coreutils,
//! sudo, OpenSSH or provision-tui itself read or set. docs/INSTALLERS.md ("Input names") lists
//! the rule for authors; keep the two in step.

/// Env-name prefixes: whole families, so members added in later releases stay covered.
const RESERVED_PREFIXES: &[(&str, &str)] = &[
    ("LD_", "the dynamic loader"),
    ("GCONV", "glibc"),
    ("GLIBC", "glibc"),
    ("MALLOC_", "glibc"),
    ("LC_", "the locale"),
    ("LANG", "the locale"),
    ("POSIXLY", "coreutils and glibc"),
    ("BASH", "bash"),
    ("SHELLOPTS", "bash"),
    ("HIST", "bash"),
    ("MAIL", "the shells"),
    ("COMP_", "bash"),
    ("FUNCNEST", "bash"),
    ("TMOUT", "bash"),
    ("SUDO_", "sudo"),
    ("PROVISION_TUI_", "provision-tui"),
    ("PTUI_", "provision-tui"),
];

/// Exact env names the shells, glibc, coreutils, apt or OpenSSH give meaning to.
const RESERVED_NAMES: &[(&str, &str)] = &[
    // POSIX shells (sh, dash, bash, ksh, zsh).
    ("PATH", "the shells"),
    ("HOME", "the shells"),
    ("USER", "the login"),
    ("USERNAME", "the login"),
    ("LOGNAME", "the login"),
    ("SHELL", "the login"),
    ("PWD", "the shells"),
    ("OLDPWD", "the shells"),
    ("IFS", "the shells"),
    ("ENV", "the shells"),
    ("CDPATH", "the shells"),
    ("FPATH", "ksh and zsh"),
    ("ZDOTDIR", "zsh"),
    ("GLOBIGNORE", "bash"),
    ("EXECIGNORE", "bash"),
    ("FIGNORE", "bash"),
    ("PS1", "the shells"),
    ("PS2", "the shells"),
    ("PS3", "the shells"),
    ("PS4", "the shells"),
    ("OPTIND", "the shells"),
    ("OPTARG", "the shells"),
    ("OPTERR", "the shells"),
    ("SECONDS", "the shells"),
    ("RANDOM", "the shells"),
    ("SRANDOM", "bash"),
    ("LINENO", "the shells"),
    ("REPLY", "the shells"),
    ("PPID", "the shells"),
    ("UID", "bash"),
    ("EUID", "bash"),
    ("GROUPS", "bash"),
    ("HOSTNAME", "bash"),
    ("HOSTTYPE", "bash"),
    ("MACHTYPE", "bash"),
    ("OSTYPE", "bash"),
    ("DIRSTACK", "bash"),
    ("PIPESTATUS", "bash"),
    ("FUNCNAME", "bash"),
    ("EPOCHSECONDS", "bash"),
    ("EPOCHREALTIME", "bash"),
    ("TIMEFORMAT", "bash"),
    ("PROMPT_COMMAND", "bash"),
    ("IGNOREEOF", "bash"),
    ("INPUTRC", "readline"),
    ("COLUMNS", "the shells"),
    ("LINES", "the shells"),
    ("TERM", "the terminal"),
    ("TMPDIR", "mktemp and the shells"),
    // glibc: time zone, message catalogues, resolver, getconf.
    ("TZ", "glibc"),
    ("TZDIR", "glibc"),
    ("NLSPATH", "glibc"),
    ("LOCPATH", "glibc"),
    ("HOSTALIASES", "the glibc resolver"),
    ("LOCALDOMAIN", "the glibc resolver"),
    ("RES_OPTIONS", "the glibc resolver"),
    ("GETCONF_DIR", "glibc"),
    // apt/debconf, which most installers run.
    ("DEBIAN_FRONTEND", "apt and debconf"),
    ("DEBCONF_FRONTEND", "debconf"),
    ("DEBIAN_PRIORITY", "debconf"),
    // What sshd sets and OpenSSH clients read. Not the whole `SSH_` family: the bundled
    // base-setup takes `ssh_public_key` and `ssh_user`, which nothing reads.
    ("SSH_CONNECTION", "sshd"),
    ("SSH_CLIENT", "sshd and bash"),
    ("SSH2_CLIENT", "bash"),
    ("SSH_TTY", "sshd"),
    ("SSH_ORIGINAL_COMMAND", "sshd"),
    ("SSH_USER_AUTH", "sshd"),
    ("SSH_AUTH_SOCK", "ssh and ssh-agent"),
    ("SSH_AGENT_PID", "ssh-agent"),
    ("SSH_ASKPASS", "ssh"),
    ("SSH_ASKPASS_REQUIRE", "ssh"),
    ("SSH_SK_PROVIDER", "ssh"),
    // The one-exec wrapper's own variables (crates/ssh/src/exec.rs). They are lower case, so an
    // upper-case export cannot clash today; reserved so a change of the wrapper never can.
    ("S", "the provision-tui wrapper"),
    ("KV", "the provision-tui wrapper"),
    ("T", "the provision-tui wrapper"),
    ("N", "the provision-tui wrapper"),
    ("FIRST", "the provision-tui wrapper"),
];

/// Why a name is not allowed, as a message that says what to do; `None` when it is fine.
pub fn input_name_problem(name: &str) -> Option<String> {
    let mut cs = name.chars();
    let allowed = matches!(cs.next(), Some(c) if c.is_ascii_lowercase())
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !allowed {
        return Some(format!(
            "input name {name:?} must match [a-z][a-z0-9_]* (a lower-case letter, then lower-case \
             letters, digits and `_`); it becomes the installer's environment variable"
        ));
    }
    let env = name.to_ascii_uppercase();
    let reader = RESERVED_NAMES
        .iter()
        .find(|(n, _)| *n == env)
        .or_else(|| RESERVED_PREFIXES.iter().find(|(p, _)| env.starts_with(p)))
        .map(|(_, who)| *who)?;
    Some(format!(
        "input name {name:?} is reserved: it would set ${env}, which {reader} reads or sets; \
         pick another name (e.g. prefix it with the installer's id)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_loader_glibc_shells_or_sshd_read_are_refused() {
        for name in [
            "ld_audit",
            "ld_debug",
            "ld_preload",
            "gconv_path",
            "glibc_tunables",
            "malloc_check_",
            "posixly_correct",
            "bash_compat",
            "bash_env",
            "bashopts",
            "funcnest",
            "tmout",
            "ssh_connection",
            "ssh_auth_sock",
            "path",
            "ifs",
            "env",
            "ps4",
            "shellopts",
            "home",
            "user",
            "lang",
            "language",
            "lc_all",
            "cdpath",
            "optind",
            "histfile",
            "mailpath",
            "tz",
            "tzdir",
            "hostaliases",
            "sudo_askpass",
            "provision_tui_job_id",
            "s",
            "kv",
            "first",
        ] {
            let p = input_name_problem(name).unwrap_or_else(|| panic!("{name} must be refused"));
            assert!(p.contains("is reserved"), "{name}: {p}");
            assert!(p.contains(&format!("${}", name.to_uppercase())), "{p}");
        }
    }

    #[test]
    fn only_lower_case_names_starting_with_a_letter_are_allowed() {
        for name in ["", "_x", "1x", "Token", "my-key", "tök", "a b"] {
            let p = input_name_problem(name).unwrap_or_else(|| panic!("{name:?} must be refused"));
            assert!(p.contains("[a-z][a-z0-9_]*"), "{p}");
        }
        // What the bundled and fixture installers use stays valid.
        for name in [
            "ssh_public_key",
            "ssh_user",
            "env_vars",
            "db_password",
            "timezone",
            "host_name",
            "path_prefix",
            "token",
            "a1_b2",
        ] {
            assert_eq!(input_name_problem(name), None, "{name}");
        }
    }
}
