//! Plain data shared by every layer of provision-tui: servers and their lifecycle, jobs and log
//! lines, health samples and incident kinds, error kinds, secrets and their masking, the rows
//! front ends read, paths and settings, time formatting, and the one sanitiser for text shown
//! on a terminal (`sanitize`). No I/O beyond reading the environment and config paths, and
//! creating or tightening the private files under them (`private_files`); nothing here knows
//! about SQL or SSH.

pub mod config;
pub mod error;
pub mod health;
pub mod hostkey;
pub mod identity;
pub mod job;
pub mod private_files;
pub mod records;
pub mod sanitize;
pub mod script;
pub mod secret;
pub mod server;
pub mod time;
