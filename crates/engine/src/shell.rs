//! The `ssh` command line that opens an interactive shell on a server (the dashboard's `s`):
//! its address, user, key and jump host, and the host key pinned to provision-tui's own
//! known_hosts (strict checking: a changed or unknown key refuses, nothing is written).

use crate::engine::Engine;
use color_eyre::eyre::Result;

/// One `ssh` hop's options: port, user, key, known_hosts pinning.
fn hop(t: &ptui_ssh::SshTarget, known_hosts: &str) -> Vec<String> {
    let mut v = vec![
        "-p".to_string(),
        t.port.to_string(),
        "-l".into(),
        t.user.clone(),
        "-o".into(),
        format!("UserKnownHostsFile={known_hosts}"),
        "-o".into(),
        "GlobalKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        "UpdateHostKeys=no".into(),
    ];
    if let Some(id) = &t.identity {
        v.extend(["-i".into(), id.display().to_string()]);
    }
    v
}

/// Quotes a word for the shell `ssh` runs a ProxyCommand with.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Engine {
    /// The argv (`ssh` first) of an interactive shell on `name`, and the audit of it.
    pub fn shell_command(&self, name: &str) -> Result<Vec<String>> {
        let server = self.server(name)?;
        let t = self.ssh_target(&server)?;
        let kh = self.config().known_hosts_path.display().to_string();
        let mut argv = vec!["ssh".to_string()];
        argv.extend(hop(&t, &kh));
        if let Some(j) = &t.jump {
            // ProxyJump's inner ssh would not get these options: spell the hop out.
            let mut inner = vec!["ssh".to_string(), "-W".into(), "%h:%p".into()];
            inner.extend(hop(j, &kh));
            inner.push(j.host.clone());
            let cmd: Vec<String> = inner
                .iter()
                .map(|w| if w == "%h:%p" { w.clone() } else { quote(w) })
                .collect();
            argv.extend(["-o".into(), format!("ProxyCommand={}", cmd.join(" "))]);
        }
        argv.push(t.host.clone());
        self.audit("server.shell", name, &server.address())?;
        Ok(argv)
    }
}
