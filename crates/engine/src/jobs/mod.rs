//! Jobs: the queue, the per-server lease, retries, and the log stream.

pub mod fanout;
pub mod runner;
