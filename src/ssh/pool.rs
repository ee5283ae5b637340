//! One SSH connection per server, shared by jobs and health checks.
//!
//! - At most `MAX_CHANNELS` leases per connection, so one of sshd's default 10 session slots
//!   always stays free for a kill channel.
//! - A connection is recycled for age by replacing it in the map; leases keep the old one alive
//!   (it is an `Arc`) until they finish, so a running job never loses its connection.
//! - Idle connections close after `idle_timeout`: `get` reaps, and so does the engine's
//!   periodic reaper, so they close even if the pool is never used again. Dead ones
//!   (keepalive failure, network drop) are noticed by `is_closed` and re-dialled.

use super::connect::{Session, SshTarget, connect};
use super::known_hosts::KnownHosts;
use crate::config::SshSettings;
use crate::error::KindError;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Leases per connection; sshd's MaxSessions defaults to 10 and a kill needs one more.
pub const MAX_CHANNELS: usize = 9;

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
}

pub struct Pool {
    settings: SshSettings,
    known: KnownHosts,
    idle_timeout: Duration,
    max_age: Duration,
    conns: Mutex<HashMap<String, Arc<Pooled>>>,
    /// One dial at a time per server: concurrent jobs wait for the first connection.
    dialing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
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
        }
    }

    fn lookup(&self, key: &str, fp: &str) -> Option<Arc<Pooled>> {
        let conns = self.conns.lock().ok()?;
        let c = conns.get(key)?;
        (c.alive() && c.fingerprint == fp && c.created.elapsed() < self.max_age).then(|| c.clone())
    }

    /// A lease on the server's connection, dialling it if needed. `key` names the server.
    pub async fn get(&self, key: &str, target: &SshTarget) -> Result<Lease, KindError> {
        self.reap();
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
        let session = connect(target, &self.settings, &self.known).await?;
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

    /// Drops connections that are dead, or idle past the timeout with no lease.
    pub fn reap(&self) {
        let Ok(mut m) = self.conns.lock() else { return };
        m.retain(|_, c| {
            if !c.alive() {
                return false;
            }
            let idle = c.last_used.lock().map(|t| t.elapsed()).unwrap_or_default();
            c.in_use() || idle < self.idle_timeout
        });
    }

    /// Closes every idle connection now.
    pub fn clear_idle(&self) {
        if let Ok(mut m) = self.conns.lock() {
            m.retain(|_, c| c.in_use());
        }
    }

    pub fn stats(&self) -> PoolStats {
        let Ok(m) = self.conns.lock() else {
            return PoolStats::default();
        };
        PoolStats {
            open: m.len(),
            in_use: m.values().filter(|c| c.in_use()).count(),
        }
    }
}

fn poisoned() -> KindError {
    KindError::new(
        crate::error::ErrorKind::SshConnect,
        "connection pool is shutting down",
    )
}
