//! One SSH connection per server, shared by jobs and health checks.
//!
//! - At most `MAX_CHANNELS` leases per connection, so of sshd's default 10 session slots one
//!   stays for the connection's remote shell (`shell.rs`) and one for a kill channel.
//! - A connection is recycled for age by replacing it in the map; leases keep the old one alive
//!   (it is an `Arc`) until they finish, so a running job never loses its connection.
//! - Idle connections close after `idle_timeout`: `get` reaps, and so does the engine's
//!   periodic reaper, so they close even if the pool is never used again. Dead ones
//!   (keepalive failure, network drop) are noticed by `is_closed` and re-dialled.
//! - Jump hosts: one shared session per hop (`Hops`), dialled once and host-key checked like
//!   any connection. Each target tunnelled through it holds it (an `Arc`), so a hop lives as
//!   long as any session behind it; a dead hop is re-dialled. Tunnels are direct-tcpip
//!   channels, which sshd's MaxSessions does not count, so they take no leases.

use super::connect::{JumpHosts, Session, SshTarget, connect_via};
use super::known_hosts::KnownHosts;
use ptui_types::config::SshSettings;
use ptui_types::error::KindError;
use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Leases per connection; sshd's MaxSessions defaults to 10, the remote shell (`shell.rs`)
/// holds one and a kill needs one more.
pub const MAX_CHANNELS: usize = 8;

struct Pooled {
    session: Session,
    /// Which target this connection was made for; a changed server spec forces a new one.
    fingerprint: String,
    created: Instant,
    last_used: Mutex<Instant>,
    slots: Arc<Semaphore>,
}

impl Pooled {
    fn alive(&self) -> bool {
        !self.session.handle.is_closed()
    }
    fn in_use(&self) -> bool {
        self.slots.available_permits() < MAX_CHANNELS
    }
}

/// A borrowed connection. Derefs to the `Session`; dropping it returns the slot.
pub struct Lease {
    conn: Arc<Pooled>,
    _permit: OwnedSemaphorePermit,
    /// Whether this lease dialled a new connection (for stats and benches).
    pub fresh: bool,
}

impl Deref for Lease {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.conn.session
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut t) = self.conn.last_used.lock() {
            *t = Instant::now();
        }
    }
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub open: usize,
    pub in_use: usize,
    /// Open shared jump host sessions.
    pub hops: usize,
}

pub struct Pool {
    settings: SshSettings,
    known: KnownHosts,
    idle_timeout: Duration,
    max_age: Duration,
    conns: Mutex<HashMap<String, Arc<Pooled>>>,
    /// One dial at a time per server: concurrent jobs wait for the first connection.
    dialing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    hops: Hops,
    /// Per server: whether it runs the remote shell, learnt once and kept across connections.
    shell_memos: Mutex<HashMap<String, Arc<std::sync::atomic::AtomicU8>>>,
    /// When a lease last reaped: a sweep of 1,000 servers takes 1,000 leases, and reaping
    /// on each walked every connection (half the client's CPU per check).
    last_reap: Mutex<Instant>,
}

fn fingerprint(t: &SshTarget) -> String {
    let mut s = format!(
        "{}@{}:{}|{:?}|{:?}",
        t.user, t.host, t.port, t.identity, t.password_env
    );
    let mut j = &t.jump;
    while let Some(h) = j {
        s.push_str(&format!(">{}@{}:{}", h.user, h.host, h.port));
        j = &h.jump;
    }
    s
}

impl Pool {
    pub fn new(
        settings: SshSettings,
        known: KnownHosts,
        idle_timeout: Duration,
        max_age: Duration,
    ) -> Self {
        Pool {
            settings,
            known,
            idle_timeout,
            max_age,
            conns: Mutex::new(HashMap::new()),
            dialing: Mutex::new(HashMap::new()),
            hops: Hops::new(max_age),
            shell_memos: Mutex::new(HashMap::new()),
            last_reap: Mutex::new(Instant::now()),
        }
    }

    /// Reaps when the last reap is older than a quarter of the idle timeout (at most 1 s):
    /// a lease never returns a dead connection anyway (`lookup` checks), so this only bounds
    /// how long an idle or dead one stays open.
    fn reap_if_due(&self) {
        let every = (self.idle_timeout / 4).min(Duration::from_secs(1));
        let due = match self.last_reap.lock() {
            Ok(mut t) if t.elapsed() >= every => {
                *t = Instant::now();
                true
            }
            Ok(_) => false,
            Err(_) => true,
        };
        if due {
            self.reap();
        }
    }

    fn lookup(&self, key: &str, fp: &str) -> Option<Arc<Pooled>> {
        let conns = self.conns.lock().ok()?;
        let c = conns.get(key)?;
        (c.alive() && c.fingerprint == fp && c.created.elapsed() < self.max_age).then(|| c.clone())
    }

    /// A lease on the server's connection, dialling it if needed. `key` names the server.
    pub async fn get(&self, key: &str, target: &SshTarget) -> Result<Lease, KindError> {
        self.reap_if_due();
        let fp = fingerprint(target);
        if let Some(c) = self.lookup(key, &fp)
            && let Ok(permit) = c.slots.clone().try_acquire_owned()
        {
            return Ok(Lease {
                conn: c,
                _permit: permit,
                fresh: false,
            });
        }
        let gate = {
            let mut d = self.dialing.lock().map_err(|_| poisoned())?;
            d.entry(key.to_string()).or_default().clone()
        };
        let _g = gate.lock().await;
        // Someone else may have dialled while we waited; wait for a free slot on it.
        if let Some(c) = self.lookup(key, &fp) {
            let permit = c
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| poisoned())?;
            return Ok(Lease {
                conn: c,
                _permit: permit,
                fresh: false,
            });
        }
        let mut session = connect_via(target, &self.settings, &self.known, &self.hops).await?;
        if let Ok(mut m) = self.shell_memos.lock() {
            session.share_shell_memo(m.entry(fp.clone()).or_default().clone());
        }
        let conn = Arc::new(Pooled {
            session,
            fingerprint: fp,
            created: Instant::now(),
            last_used: Mutex::new(Instant::now()),
            slots: Arc::new(Semaphore::new(MAX_CHANNELS)),
        });
        let permit = conn
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| poisoned())?;
        if let Ok(mut m) = self.conns.lock() {
            // Replacing an old connection does not close it: its leases still hold it.
            m.insert(key.to_string(), conn.clone());
        }
        Ok(Lease {
            conn,
            _permit: permit,
            fresh: true,
        })
    }

    /// Forgets a server's connection (after an error on it, or when the server is removed).
    pub fn invalidate(&self, key: &str) {
        if let Ok(mut m) = self.conns.lock() {
            m.remove(key);
        }
    }

    /// Drops connections that are dead, or idle past the timeout with no lease, then the jump
    /// host sessions nothing tunnels through any more.
    pub fn reap(&self) {
        if let Ok(mut m) = self.conns.lock() {
            m.retain(|_, c| {
                if !c.alive() {
                    return false;
                }
                let idle = c.last_used.lock().map(|t| t.elapsed()).unwrap_or_default();
                c.in_use() || idle < self.idle_timeout
            });
        }
        self.hops.reap(self.idle_timeout);
    }

    /// Closes every idle connection now.
    pub fn clear_idle(&self) {
        if let Ok(mut m) = self.conns.lock() {
            m.retain(|_, c| c.in_use());
        }
        self.hops.reap(Duration::ZERO);
    }

    pub fn stats(&self) -> PoolStats {
        let Ok(m) = self.conns.lock() else {
            return PoolStats::default();
        };
        PoolStats {
            open: m.len(),
            in_use: m.values().filter(|c| c.in_use()).count(),
            hops: self.hops.len(),
        }
    }
}

struct Hop {
    session: Arc<Session>,
    created: Instant,
    last_used: Instant,
}

/// The last failed dial of a hop, shared with the targets that queued behind it.
type HopGate = Arc<tokio::sync::Mutex<Option<(Instant, KindError)>>>;

/// Shared jump host sessions, keyed by the hop's fingerprint (which includes its own chain).
pub(crate) struct Hops {
    max_age: Duration,
    conns: Mutex<HashMap<String, Hop>>,
    /// One dial at a time per hop: a fan-out behind one bastion dials it once.
    dialing: Mutex<HashMap<String, HopGate>>,
}

impl Hops {
    /// Hops past `max_age` are replaced for new tunnels; sessions already tunnelled through
    /// the old one keep it alive.
    pub fn new(max_age: Duration) -> Self {
        Hops {
            max_age,
            conns: Mutex::new(HashMap::new()),
            dialing: Mutex::new(HashMap::new()),
        }
    }

    fn lookup(&self, key: &str) -> Option<Arc<Session>> {
        let mut m = self.conns.lock().ok()?;
        let h = m.get_mut(key)?;
        if h.session.handle.is_closed() || h.created.elapsed() >= self.max_age {
            return None;
        }
        h.last_used = Instant::now();
        Some(h.session.clone())
    }

    /// The authenticated session to jump host `j`, dialling it (through its own hops) if
    /// there is no live one.
    pub(crate) async fn get(
        &self,
        j: &SshTarget,
        s: &SshSettings,
        known: &KnownHosts,
    ) -> Result<Arc<Session>, KindError> {
        let key = fingerprint(j);
        if let Some(h) = self.lookup(&key) {
            return Ok(h);
        }
        let gate = {
            let mut d = self.dialing.lock().map_err(|_| poisoned())?;
            d.entry(key.clone()).or_default().clone()
        };
        let asked = Instant::now();
        let mut failed = gate.lock().await;
        if let Some(h) = self.lookup(&key) {
            return Ok(h);
        }
        // The dial we queued behind failed: share its error instead of every target behind
        // an unreachable bastion dialling it again, one after another.
        if let Some((at, e)) = failed.as_ref()
            && *at >= asked
        {
            return Err(e.clone());
        }
        // Boxed: connect_via -> Hops::get recurses along a chain of jump hosts.
        match Box::pin(connect_via(j, s, known, self)).await {
            Ok(session) => {
                *failed = None;
                let session = Arc::new(session);
                if let Ok(mut m) = self.conns.lock() {
                    // Replacing an old hop does not close it: the sessions behind it hold it.
                    m.insert(
                        key,
                        Hop {
                            session: session.clone(),
                            created: Instant::now(),
                            last_used: Instant::now(),
                        },
                    );
                }
                Ok(session)
            }
            Err(e) => {
                *failed = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// Drops dead hops and those nothing tunnels through that were last used `idle` ago.
    fn reap(&self, idle: Duration) {
        let Ok(mut m) = self.conns.lock() else { return };
        // Repeat: dropping hop 2 of a chain leaves hop 1 unused in the same pass.
        loop {
            let before = m.len();
            m.retain(|_, h| {
                !h.session.handle.is_closed()
                    && (Arc::strong_count(&h.session) > 1 || h.last_used.elapsed() < idle)
            });
            if m.len() == before {
                break;
            }
        }
    }

    fn len(&self) -> usize {
        self.conns.lock().map(|m| m.len()).unwrap_or(0)
    }
}

impl JumpHosts for Hops {
    fn session<'a>(
        &'a self,
        jump: &'a SshTarget,
        s: &'a SshSettings,
        known: &'a KnownHosts,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Arc<Session>, KindError>> + Send + 'a>> {
        Box::pin(self.get(jump, s, known))
    }
}

fn poisoned() -> KindError {
    KindError::new(
        ptui_types::error::ErrorKind::SshConnect,
        "connection pool is shutting down",
    )
}
