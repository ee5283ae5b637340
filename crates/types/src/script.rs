//! How an installer script is started on a server. It travels on stdin and runs as
//! `INTERPRETER [FLAG] -c SCRIPT NAME`: no temporary file, no extra remote processes. So the
//! `#!` line must name a POSIX-style shell, and the script must fit in one argument.

/// Linux caps one argument at 128 KiB (MAX_ARG_STRLEN); leave room for the rest.
pub const MAX_SCRIPT_BYTES: usize = 120 * 1024;

/// The refusal for a script of `len` bytes, if it is too big. The catalog checks a file's size
/// with this before reading it.
pub fn size_problem(len: u64) -> Option<String> {
    (len > MAX_SCRIPT_BYTES as u64).then(|| {
        format!(
            "the script is {} KiB; at most {} KiB is accepted (it is passed as one argument); \
             move data into a download or a second installer",
            len.div_ceil(1024),
            MAX_SCRIPT_BYTES / 1024
        )
    })
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "ksh", "zsh"];

/// The interpreter argv for a script, from its `#!` line; no `#!` means bash.
/// Accepted: `#!/path/to/SHELL [-flags]` and `#!/usr/bin/env SHELL`, SHELL one of sh, bash,
/// dash, ksh, zsh. The error says what is wrong and what to write instead.
pub fn interpreter(body: &str) -> Result<Vec<String>, String> {
    if body.contains('\0') {
        return Err("the script contains a NUL byte".into());
    }
    if let Some(m) = size_problem(body.len() as u64) {
        return Err(m);
    }
    let Some(line) = body.lines().next().and_then(|l| l.strip_prefix("#!")) else {
        return Ok(vec!["bash".into(), "--norc".into()]);
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let bad = || {
        format!(
            "unsupported interpreter line `#!{}`; use `#!/usr/bin/env bash`, `#!/bin/bash [-eu]` \
             or `#!/bin/sh` (installers run under a POSIX shell)",
            line.trim()
        )
    };
    let is_shell = |w: &str| SHELLS.contains(&w);
    // Under sshd (SSH_CLIENT set) every bash at shell level 1 sources ~/.bashrc, and an exec
    // chain resets the level: without --norc the user's rc file would run again per script.
    let norc = |argv: Vec<String>| -> Vec<String> {
        if argv[0].rsplit('/').next() == Some("bash") {
            let mut v = vec![argv[0].clone(), "--norc".to_string()];
            v.extend(argv.into_iter().skip(1));
            v
        } else {
            argv
        }
    };
    let path_ok = |p: &str| {
        p.starts_with('/')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c))
    };
    let is_flag = |f: &str| {
        f.len() > 1
            && f.starts_with('-')
            && f[1..].chars().all(|c| c.is_ascii_alphabetic())
            // -c, -s and -i change where the shell reads commands from.
            && !f[1..].contains(['c', 's', 'i'])
    };
    match words.as_slice() {
        [env, shell] if env.ends_with("/env") && path_ok(env) && is_shell(shell) => {
            Ok(norc(vec![(*shell).to_string()]))
        }
        [path, rest @ ..] if path_ok(path) && is_shell(path.rsplit('/').next().unwrap_or("")) => {
            match rest {
                [] => Ok(norc(vec![(*path).to_string()])),
                [flag] if is_flag(flag) => Ok(norc(vec![(*path).to_string(), (*flag).to_string()])),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_map_to_an_interpreter() {
        assert_eq!(interpreter("echo hi\n").unwrap(), ["bash", "--norc"]);
        assert_eq!(
            interpreter("#!/usr/bin/env bash\nx").unwrap(),
            ["bash", "--norc"]
        );
        assert_eq!(interpreter("#!/bin/sh\nx").unwrap(), ["/bin/sh"]);
        assert_eq!(
            interpreter("#! /bin/bash -eu\nx").unwrap(),
            ["/bin/bash", "--norc", "-eu"]
        );
    }

    #[test]
    fn other_interpreters_and_odd_flags_are_refused() {
        for bad in [
            "#!/usr/bin/env python3\n",
            "#!/usr/bin/python3\n",
            "#!/bin/bash -c 'x'\n",
            "#!/bin/bash -e -u\n",
            "#!/bin/ba$(id)sh\n",
            "#!/usr/bin/env -S bash -e\n",
            "#!/bin/bash -s\n",
        ] {
            assert!(interpreter(bad).is_err(), "{bad}");
        }
        assert!(interpreter("a\0b").is_err());
        let big = format!("#!/bin/sh\n{}", "#".repeat(MAX_SCRIPT_BYTES));
        assert!(interpreter(&big).unwrap_err().contains("KiB"));
    }
}
