//! The engine of provision-tui: one cloneable `Engine` that owns the store, the catalog, the SSH
//! pool, jobs and fan-out, health checks, incidents, recovery, notifications and inventory
//! import. Front ends call its methods and subscribe to its events; it knows nothing about
//! terminals.

pub mod access;
pub mod change_plan;
mod database;
pub use database::{CopyReport, DatabaseInfo};
mod context;
pub mod engine;
pub mod events;
pub mod health;
mod import;
pub mod inventory;
pub mod jobs;
mod package_manager;
pub mod queries;
pub mod secrets;
mod shell;
pub mod sites;
mod ssh_targets;

pub use engine::*;
