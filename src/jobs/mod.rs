//! Jobs: the queue, the per-server lease, retries, and the log stream.

pub mod fanout;
pub mod job;
pub mod runner;

pub use job::{Job, JobAction, JobStatus, LogLine, LogStream};
