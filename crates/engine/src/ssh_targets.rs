//! How a server is reached: its SSH target (jump chain, sudo mode) from the store and the
//! sudo passwords this process holds.

use color_eyre::eyre::{Result, bail};
use ptui_ssh::{SshTarget, SudoMode};
use ptui_store::Store;
use ptui_types::secret::Secret;
use ptui_types::server::Server;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Sudo passwords typed for `--prompt` servers, by server id. Memory only: never written to
/// the database or a log, gone with the process.
#[derive(Clone, Default)]
pub(crate) struct SudoPasswords(Arc<Mutex<HashMap<i64, Secret>>>);

impl SudoPasswords {
    pub fn get(&self, server_id: i64) -> Option<Secret> {
        self.0.lock().ok().and_then(|m| m.get(&server_id).cloned())
    }

    pub fn set(&self, server_id: i64, password: Secret) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(server_id, password);
        }
    }

    pub fn forget(&self, server_id: i64) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&server_id);
        }
    }
}

/// Jump hosts followed before a chain counts as a loop.
const MAX_JUMP_DEPTH: usize = 8;

/// Builds the SSH target of a server, following its jump hosts recursively, with a loop guard.
pub(crate) fn ssh_target(
    store: &Store,
    sudo: &SudoPasswords,
    server: &Server,
) -> Result<SshTarget> {
    target_at_depth(store, sudo, server, 0)
}

fn target_at_depth(
    store: &Store,
    sudo: &SudoPasswords,
    server: &Server,
    depth: usize,
) -> Result<SshTarget> {
    if depth > MAX_JUMP_DEPTH {
        bail!("jump host chain of {} is too long or loops", server.name);
    }
    let jump = match &server.jump {
        Some(j) => {
            let js = store.require_server(j)?;
            Some(Box::new(target_at_depth(store, sudo, &js, depth + 1)?))
        }
        None => None,
    };
    let settings = store.server_sudo(server.id)?;
    let mode = match (settings.escalate, settings.password_env, settings.prompt) {
        (Some(false), _, _) => SudoMode::Never,
        (_, Some(var), _) => SudoMode::PasswordEnv(var),
        (_, None, true) => SudoMode::PasswordPrompt(sudo.get(server.id)),
        _ => SudoMode::NoPassword,
    };
    Ok(SshTarget {
        sudo: mode,
        name: server.name.clone(),
        host: server.host.clone(),
        port: server.port,
        user: server.user.clone(),
        identity: server.identity.as_deref().map(ptui_types::config::key_path),
        password_env: server.password_env.clone(),
        jump,
    })
}

/// Whether a job on this server would need a prompted sudo password this process lacks
/// (`--prompt` set, a non-root login, and no password given yet).
pub(crate) fn needs_sudo_password(
    store: &Store,
    sudo: &SudoPasswords,
    server: &Server,
) -> Result<bool> {
    if server.user == "root" {
        return Ok(false);
    }
    let s = store.server_sudo(server.id)?;
    Ok(s.prompt && s.escalate != Some(false) && sudo.get(server.id).is_none())
}
