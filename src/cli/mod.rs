//! The client side of the CLI: talks to a running minicloud's API and prints for people.
//!
//! `main.rs` holds the clap definitions and dispatches here; each command's work lives in
//! its module (`apps` for apps and domains, `manifest` for `manifest check`), with pure helpers (`format`, `sse`, `table`)
//! beside them.

pub mod apps;
pub mod client;
pub mod format;
pub mod manifest;
pub mod progress;
pub mod sse;
pub mod table;
pub mod view;

pub use client::{ApiClient, ClientError};

/// A value made safe to be one segment of an API path (`/api/routes/{host}`).
pub fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
