//! provision-tui: one engine (fleet, catalog, ssh, jobs, store) and two front ends (CLI, TUI).
//! The engine modules know nothing about the terminal.

pub mod audit;
pub mod bench;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod fleet;
pub mod health;
pub mod jobs;
pub mod secret;
pub mod ssh;
pub mod store;
pub mod tui;
