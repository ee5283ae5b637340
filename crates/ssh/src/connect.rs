//! Connecting: host key check, authentication (agent, key file, password), jump hosts.
//! A target behind a jump host is tunnelled over the hop's session taken from a `JumpHosts`:
//! the pool's (`pool::Hops`) shares one connection per hop; a one-off connection dials its own.

use super::known_hosts::{HostKeyVerdict, KnownHosts, fingerprint};
use ptui_types::config::SshSettings;
use ptui_types::error::{ErrorKind, KindError};
use ptui_types::hostkey::{describe_all, user_file_note};
use ptui_types::secret::Secret;
use russh::client::{self, AuthResult, Handle};
use russh::kex;
use russh::keys::PrivateKeyWithHashAlg;
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::{Algorithm, PublicKey};
use std::borrow::Cow;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::time::timeout;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// Server name, for messages.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity: Option<PathBuf>,
    /// Environment variable holding the password, when password auth is configured.
    pub password_env: Option<String>,
    pub jump: Option<Box<SshTarget>>,
    /// How commands escalate on this server.
    pub sudo: SudoMode,
}

/// Privilege escalation for non-root logins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SudoMode {
    /// `sudo -n`: password-less sudo, failing fast when a password would be needed.
    #[default]
    NoPassword,
    /// `sudo -S` with the password from this environment variable, sent on stdin only.
    PasswordEnv(String),
    /// `sudo -S` with a password the operator typed (TUI dialog or CLI prompt), held in the
    /// engine's memory only; `None` when nobody has given it in this process yet.
    PasswordPrompt(Option<Secret>),
    /// Run as the login user, without sudo.
    Never,
}

impl SshTarget {
    pub fn label(&self) -> String {
        format!("{} ({}@{}:{})", self.name, self.user, self.host, self.port)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Verify,
    Scan,
}

struct Client {
    host: String,
    port: u16,
    known: KnownHosts,
    mode: Mode,
    seen: Arc<Mutex<Option<(PublicKey, HostKeyVerdict)>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            // We never advertise certificate algorithms, so this is unexpected: refuse.
            return Ok(false);
        };
        let verdict = self.known.check(&self.host, self.port, key);
        let ok = verdict == HostKeyVerdict::Trusted && self.mode == Mode::Verify;
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((key.clone(), verdict));
        }
        Ok(ok)
    }
}

/// A connected, authenticated session. Keeps its jump session alive: the transport is a
/// channel on it, and the jump session may be shared with other targets behind the same hop.
pub struct Session {
    pub handle: Handle<ClientHandler>,
    pub target: SshTarget,
    _jump: Option<Arc<Session>>,
    /// The connection's remote shell for short commands (`shell.rs`), started on first use.
    pub(crate) shell: tokio::sync::Mutex<Option<crate::shell::Shell>>,
    /// An idle shell for the next job's agent stream.
    pub(crate) job_shell: crate::shell::JobShellSlot,
    /// Whether this server runs the remote shell; shared by its connections (see `Pool`).
    shell_memo: Arc<std::sync::atomic::AtomicU8>,
}

impl Session {
    pub(crate) fn shell_memo(&self) -> u8 {
        self.shell_memo.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_shell_memo(&self, v: u8) {
        self.shell_memo
            .store(v, std::sync::atomic::Ordering::Relaxed);
    }

    /// Shares what is known about the server's remote shell with its other connections.
    pub(crate) fn share_shell_memo(&mut self, memo: Arc<std::sync::atomic::AtomicU8>) {
        self.shell_memo = memo;
    }
}

/// The handler type behind every session (opaque to callers).
pub struct ClientHandler(Client);

impl client::Handler for ClientHandler {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        self.0.check_server_key(key).await
    }
}

/// russh client settings: Nagle off (it adds ~40 ms per round trip), keepalive on,
/// curve25519 key exchange preferred over the costlier hybrid post-quantum one.
/// A configured KEX list (`PROVISION_TUI_KEX`) replaces the default order; unknown names are
/// ignored with a warning, and the strict-kex/ext-info markers are always kept.
/// Host key types in `recorded` (what known_hosts has for this host) are asked for first, as
/// OpenSSH does: a server that gained a key type still shows the one we know.
pub fn client_config(s: &SshSettings, recorded: &[Algorithm]) -> Arc<client::Config> {
    let mut kexes: Vec<kex::Name> = vec![kex::CURVE25519, kex::CURVE25519_PRE_RFC_8731];
    let chosen: Vec<kex::Name> = s
        .kex
        .iter()
        .filter_map(|n| {
            let k = kex::Name::try_from(n.as_str()).ok();
            if k.is_none() {
                tracing::warn!("PROVISION_TUI_KEX: unknown key exchange {n:?} ignored");
            }
            k
        })
        .collect();
    if chosen.is_empty() {
        let rest: Vec<kex::Name> = russh::Preferred::DEFAULT
            .kex
            .iter()
            .copied()
            .filter(|k| !kexes.contains(k))
            .collect();
        kexes.extend(rest);
    } else {
        kexes = chosen;
        let markers =
            russh::Preferred::DEFAULT.kex.iter().copied().filter(|k| {
                k.as_ref().starts_with("ext-info") || k.as_ref().starts_with("kex-strict")
            });
        kexes.extend(markers);
    }
    let same_type = |a: &Algorithm, b: &Algorithm| {
        a == b || (matches!(a, Algorithm::Rsa { .. }) && matches!(b, Algorithm::Rsa { .. }))
    };
    let (mut keys, rest): (Vec<Algorithm>, Vec<Algorithm>) = russh::Preferred::DEFAULT
        .key
        .iter()
        .cloned()
        .partition(|a| recorded.iter().any(|r| same_type(a, r)));
    keys.extend(rest);
    let preferred = russh::Preferred {
        kex: Cow::Owned(kexes),
        key: Cow::Owned(keys),
        ..russh::Preferred::DEFAULT
    };
    Arc::new(client::Config {
        nodelay: true,
        keepalive_interval: Some(s.keepalive_interval),
        keepalive_max: 3,
        inactivity_timeout: Some(s.inactivity_timeout),
        preferred,
        ..Default::default()
    })
}

fn connect_error(t: &SshTarget, e: impl std::fmt::Display) -> KindError {
    let text = e.to_string();
    let hint = if text.contains("refused") {
        "is sshd running and is the port right?"
    } else if text.contains("Disconnect") || text.contains("reset") {
        "the server dropped the connection (sshd MaxStartups or a firewall?)"
    } else {
        "check the address and the network"
    };
    KindError::new(
        ErrorKind::SshConnect,
        format!("cannot connect to {}: {text}; {hint}", t.label()),
    )
}

fn host_key_error(t: &SshTarget, verdict: &HostKeyVerdict) -> Option<KindError> {
    match verdict {
        HostKeyVerdict::Trusted => None,
        HostKeyVerdict::Unknown {
            fingerprint,
            key_type,
        } => Some(KindError::new(
            ErrorKind::HostKey,
            format!(
                "host key of {} is not known ({key_type} {fingerprint}); verify it and run `provision-tui server trust {}`",
                t.label(),
                t.name
            ),
        )),
        HostKeyVerdict::Changed {
            fingerprint,
            key_type,
            recorded,
        } => {
            let note = user_file_note(verdict)
                .map(|n| format!(" Note: {n}."))
                .unwrap_or_default();
            Some(KindError::new(
                ErrorKind::HostKey,
                format!(
                    "HOST KEY CHANGED for {}: it now offers {key_type} {fingerprint}, but known_hosts records {}. \
                     This may be an attack. If the server was rebuilt, check the new key out of band, then run \
                     `provision-tui server trust {} --replace`.{note}",
                    t.label(),
                    describe_all(recorded),
                    t.name
                ),
            ))
        }
    }
}

type Seen = Option<(PublicKey, HostKeyVerdict)>;

/// What a handshake produced: the handle (if the key was accepted), the jump session that
/// carries the transport, and the host key the server showed.
struct Handshake {
    result: Result<Handle<ClientHandler>, KindError>,
    jump: Option<Arc<Session>>,
    seen: Seen,
}

/// Where a connection gets the authenticated sessions of its jump hosts. Implemented by the
/// pool's shared hops, and here for one-off connections; this keeps `connect` independent of
/// the pool.
pub(crate) trait JumpHosts: Sync {
    fn session<'a>(
        &'a self,
        jump: &'a SshTarget,
        s: &'a SshSettings,
        known: &'a KnownHosts,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<Session>, KindError>> + Send + 'a>>;
}

/// The jump hosts of a one-off connection: dialled for it, living only as long as it.
struct OwnHops;

impl JumpHosts for OwnHops {
    fn session<'a>(
        &'a self,
        jump: &'a SshTarget,
        s: &'a SshSettings,
        known: &'a KnownHosts,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<Session>, KindError>> + Send + 'a>> {
        // Boxed: connect_via -> session recurses along a chain of jump hosts.
        Box::pin(async move { connect_via(jump, s, known, self).await.map(Arc::new) })
    }
}

/// Opens the TCP (or jump-host tunnel) transport and runs the SSH handshake, checking the
/// host key in `mode`. The jump host itself is fully verified and authenticated; its session
/// comes from `hops` (shared, or dialled for this connection only).
async fn handshake(
    t: &SshTarget,
    s: &SshSettings,
    known: &KnownHosts,
    mode: Mode,
    hops: &dyn JumpHosts,
) -> Handshake {
    let seen = Arc::new(Mutex::new(None));
    let handler = ClientHandler(Client {
        host: t.host.clone(),
        port: t.port,
        known: known.clone(),
        mode,
        seen: seen.clone(),
    });
    let cfg = client_config(s, &known.recorded_algorithms(&t.host, t.port));
    let mut jump = None;
    let res = match &t.jump {
        None => {
            timeout(
                s.connect_timeout,
                client::connect(cfg, (t.host.as_str(), t.port), handler),
            )
            .await
        }
        Some(j) => {
            let tunnel = async {
                let js = hops.session(j, s, known).await.map_err(|e| {
                    KindError::new(e.kind, format!("via jump host {}: {}", j.name, e.message))
                })?;
                // No lease: tunnels are direct-tcpip channels, which sshd's MaxSessions does
                // not count. A dead hop is noticed by `is_closed` and re-dialled by the pool.
                let ch = timeout(
                    s.connect_timeout,
                    js.handle.channel_open_direct_tcpip(
                        t.host.clone(),
                        t.port as u32,
                        "127.0.0.1",
                        0,
                    ),
                )
                .await
                .map_err(|_| {
                    connect_error(
                        t,
                        format!("jump host {} did not open a tunnel in time", j.name),
                    )
                })?
                .map_err(|e| {
                    connect_error(t, format!("jump host {} refused the tunnel: {e}", j.name))
                })?;
                Ok::<_, KindError>((js, ch))
            };
            match tunnel.await {
                Ok((js, ch)) => {
                    jump = Some(js);
                    timeout(
                        s.connect_timeout,
                        client::connect_stream(cfg, ch.into_stream(), handler),
                    )
                    .await
                }
                Err(e) => {
                    return Handshake {
                        result: Err(e),
                        jump: None,
                        seen: None,
                    };
                }
            }
        }
    };
    let seen: Seen = seen.lock().ok().and_then(|g| g.clone());
    let result = match res {
        Err(_) => Err(KindError::new(
            ErrorKind::SshConnect,
            format!(
                "cannot connect to {}: no answer within {:?}",
                t.label(),
                s.connect_timeout
            ),
        )),
        Ok(Ok(h)) => Ok(h),
        Ok(Err(e)) => Err(
            match seen.as_ref().and_then(|(_, v)| host_key_error(t, v)) {
                Some(host_key) => host_key,
                None => connect_error(t, e),
            },
        ),
    };
    Handshake { result, jump, seen }
}

/// Connects and authenticates. Unknown and changed host keys are refused; nothing prompts.
/// Jump hosts are dialled for this connection alone (the pool shares them: `connect_via`).
pub async fn connect(
    t: &SshTarget,
    s: &SshSettings,
    known: &KnownHosts,
) -> Result<Session, KindError> {
    connect_via(t, s, known, &OwnHops).await
}

/// Like `connect`, taking jump host sessions from (and adding them to) `hops`.
pub(crate) async fn connect_via(
    t: &SshTarget,
    s: &SshSettings,
    known: &KnownHosts,
    hops: &dyn JumpHosts,
) -> Result<Session, KindError> {
    let hs = handshake(t, s, known, Mode::Verify, hops).await;
    let mut handle = hs.result?;
    timeout(s.auth_timeout, authenticate(&mut handle, t))
        .await
        .map_err(|_| {
            KindError::new(
                ErrorKind::Auth,
                format!(
                    "authentication to {} took longer than {:?}",
                    t.label(),
                    s.auth_timeout
                ),
            )
        })??;
    Ok(Session {
        handle,
        target: t.clone(),
        _jump: hs.jump,
        shell: tokio::sync::Mutex::new(None),
        job_shell: Default::default(),
        shell_memo: Default::default(),
    })
}

/// Connects only far enough to see the host key, for `server trust`.
/// Returns the key and what our known_hosts files say about it.
pub async fn scan_host_key(
    t: &SshTarget,
    s: &SshSettings,
    known: &KnownHosts,
) -> Result<(PublicKey, String, HostKeyVerdict), KindError> {
    let hs = handshake(t, s, known, Mode::Scan, &OwnHops).await;
    match (hs.seen, hs.result) {
        (Some((key, verdict)), _) => {
            let fp = fingerprint(&key);
            Ok((key, fp, verdict))
        }
        (None, Err(e)) => Err(e),
        (None, Ok(_)) => Err(connect_error(t, "the server sent no host key")),
    }
}

fn default_identities() -> Vec<PathBuf> {
    let ssh = ptui_types::config::home_dir().join(".ssh");
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| ssh.join(n))
        .filter(|p| p.exists())
        .collect()
}

async fn authenticate(h: &mut Handle<ClientHandler>, t: &SshTarget) -> Result<(), KindError> {
    let mut tried: Vec<String> = Vec::new();
    let auth_err = |e: russh::Error| {
        KindError::new(
            ErrorKind::SshConnect,
            format!(
                "connection to {} failed during authentication: {e}",
                t.label()
            ),
        )
    };
    let rsa_hash = h.best_supported_rsa_hash().await.ok().flatten().flatten();

    // 1. ssh-agent
    if std::env::var_os("SSH_AUTH_SOCK").is_some()
        && let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
    {
        let ids = agent.request_identities().await.unwrap_or_default();
        tried.push(format!("agent ({} keys)", ids.len()));
        for id in ids {
            let key = id.public_key().into_owned();
            let hash = if key.algorithm().is_rsa() {
                rsa_hash
            } else {
                None
            };
            if let Ok(AuthResult::Success) = h
                .authenticate_publickey_with(t.user.clone(), key, hash, &mut agent)
                .await
            {
                return Ok(());
            }
        }
    }

    // 2. key files: the server's identity, else the usual defaults
    let files = match &t.identity {
        Some(p) => vec![p.clone()],
        None => default_identities(),
    };
    let passphrase = std::env::var("PROVISION_TUI_KEY_PASSPHRASE").ok();
    for path in files {
        let key = match russh::keys::load_secret_key(&path, passphrase.as_deref()) {
            Ok(k) => k,
            Err(e) => {
                tried.push(format!("key {} (unreadable: {e})", path.display()));
                continue;
            }
        };
        tried.push(format!("key {}", path.display()));
        let hash = if key.algorithm().is_rsa() {
            rsa_hash
        } else {
            None
        };
        match h
            .authenticate_publickey(
                t.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
        {
            Ok(AuthResult::Success) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(auth_err(e)),
        }
    }

    // 3. password from an environment variable (never argv)
    if let Some(var) = &t.password_env {
        match std::env::var(var) {
            Ok(pw) => {
                tried.push(format!("password from ${var}"));
                match h.authenticate_password(t.user.clone(), pw).await {
                    Ok(AuthResult::Success) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(auth_err(e)),
                }
            }
            Err(_) => tried.push(format!("password (${var} is not set)")),
        }
    }

    Err(KindError::new(
        ErrorKind::Auth,
        format!(
            "authentication as {} to {} failed; tried: {}. Add your public key to the server's authorized_keys, \
             pass --identity, or load the key into ssh-agent",
            t.user,
            t.label(),
            if tried.is_empty() {
                "nothing (no agent, no key file, no password)".into()
            } else {
                tried.join(", ")
            }
        ),
    ))
}
