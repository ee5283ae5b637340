//! Backpressure between reading a job's output and storing it: the reader pauses while the
//! store holds too many bytes it has not written yet, so a server that floods its output
//! fills the SSH window (and slows the job), not the client's memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// Bytes read but not yet stored (or dropped by the output cap).
#[derive(Debug)]
pub struct Backlog {
    bytes: AtomicUsize,
    limit: usize,
    drained: Notify,
}

impl Backlog {
    pub fn new(limit: usize) -> Self {
        Backlog {
            bytes: AtomicUsize::new(0),
            limit,
            drained: Notify::new(),
        }
    }

    /// Bytes handed on to be stored.
    pub fn add(&self, n: usize) {
        self.bytes.fetch_add(n, Ordering::AcqRel);
    }

    /// Bytes stored or dropped.
    pub fn done(&self, n: usize) {
        // Saturating: a miscount must not wrap to "full forever".
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(n))
            });
        self.drained.notify_waiters();
    }

    pub fn over(&self) -> bool {
        self.bytes.load(Ordering::Acquire) > self.limit
    }

    /// Resolves once the backlog is at or under its limit.
    pub async fn room(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if !self.over() {
                return;
            }
            drained.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn room_waits_until_enough_is_stored() {
        let b = Arc::new(Backlog::new(10));
        b.add(25);
        assert!(b.over());
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.room().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "room() returned while over the limit"
        );
        b.done(10);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "15 bytes are still over 10");
        b.done(10);
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("room() after the backlog drained")
            .expect("join");
        b.done(100);
        assert!(!b.over());
    }
}
