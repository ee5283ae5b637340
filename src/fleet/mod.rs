//! The server inventory and its lifecycle.

pub mod server;

pub use server::{Server, ServerSpec, ServerStatus};
pub mod inventory;
