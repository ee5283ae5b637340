//! Jobs: starting them (launch), fan-outs over many servers, and the runner (the queue, the
//! per-server lease, retries, and the log stream).

pub mod adopt;
pub mod config_guard;
mod durable;
pub mod fanout;
pub mod launch;
mod logsink;
mod remote;
pub mod rollback;
pub(crate) mod runner;
mod upgrade_inputs;
