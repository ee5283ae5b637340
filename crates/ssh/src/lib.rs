//! SSH: connect with verified host keys, run installers, stream output, kill on timeout or cancel.
//! Built on russh; see docs/ARCHITECTURE.md for the remote-execution protocol.

pub mod backlog;
pub mod connect;
pub mod detached;
mod ended;
pub mod exec;
pub mod known_hosts;
pub mod lines;
pub mod pool;
mod shell;

pub use backlog::Backlog;
pub use connect::{Session, SshTarget, SudoMode, connect, scan_host_key};
pub use detached::{DetachedSpec, Ended, RemoteEnd, SpoolPos, StreamError};
pub use exec::{Captured, RunOutcome};
pub use known_hosts::{HostKeyVerdict, KnownHosts};
pub use pool::{Lease, Pool};
