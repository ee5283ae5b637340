//! A detached job's end as its stream saw it, holding the channel until the output is stored
//! (then the agent removes the spool).

use super::detached::RemoteEnd;
use super::exec::RunOutcome;
use super::shell::Borrowed;
use russh::ChannelMsg;
use std::time::Duration;

/// A job's end, with the channel still open so the spool can be removed once stored.
pub struct Ended {
    pub end: RemoteEnd,
    /// A cancel was asked for and the process group was killed.
    pub cancelled: bool,
    /// The client-side deadline passed and the process group was killed.
    pub timed_out: bool,
    pub(crate) channel: Option<russh::Channel<russh::client::Msg>>,
    /// The remote shell the agent ran on, given back once the agent exits.
    pub(crate) borrowed: Option<Borrowed>,
}

impl Drop for Ended {
    /// Not collected (left detached): the channel is closed, so the agent stops waiting for
    /// its acknowledgement and no session slot stays taken on the server.
    fn drop(&mut self) {
        if let Some(ch) = self.channel.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = ch.close().await;
            });
        }
    }
}

impl Ended {
    pub fn outcome(&self) -> RunOutcome {
        RunOutcome {
            exit_code: match self.end {
                RemoteEnd::Exited(c) => c,
                _ => None,
            },
            signal: None,
            cancelled: self.cancelled,
            timed_out: self.timed_out,
        }
    }

    /// Tells the agent the output is stored: it removes the spool. Best effort: a spool left
    /// behind is swept after its age.
    pub async fn remove_spool(mut self) {
        let Some(ch) = self.channel.take() else {
            return;
        };
        if let Some(borrowed) = self.borrowed.take() {
            // No EOF: the shell reads its next request from the same stream.
            if ch.data(&b"rm\n"[..]).await.is_ok() {
                borrowed.give_back(ch).await;
            }
            return;
        }
        if ch.data(&b"rm\n"[..]).await.is_err() || ch.eof().await.is_err() {
            return;
        }
        let mut ch = ch;
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(msg) = ch.wait().await {
                if matches!(msg, ChannelMsg::Close) {
                    break;
                }
            }
        })
        .await;
    }
}
