//! The command line. `args` holds the clap definitions; `main.rs` parses them and hands
//! `serve` to [`serve::run`] (settings and logging, then the platform) and every other command
//! to [`run`], the client side, which talks to a running minicloud's API and prints for
//! people. Each command's work lives in its module (`apps` for apps and domains, `routes`,
//! `certs`, `manifest` for `manifest check`), with pure helpers (`format`, `sse`, `table`)
//! beside them. The API's answers are read through this module's own lenient `view` types,
//! never the server's.

pub mod admin;
pub mod alerts;
pub mod apps;
pub mod args;
pub mod backups;
pub mod certs;
pub mod client;
mod error;
pub mod format;
pub mod manifest;
pub mod manifest_init;
pub mod progress;
pub mod restore;
pub mod routes;
mod run;
pub mod serve;
pub mod sse;
pub mod table;
pub mod tokens;
pub mod view;

pub use client::{ApiClient, ClientError};
pub use error::CliError;
pub use run::run;

/// A value made safe to be one segment of an API path (`/api/routes/{host}`). Readable where
/// it can be (`blog-2`, `shop.example.com`); a segment of dots alone is encoded whole, so it
/// reaches the server (which refuses it) instead of being resolved as `.` or `..`.
pub fn encode_segment(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b == b'.') {
        return "%2E".repeat(s.len());
    }
    crate::model::url_component(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_segment_stays_readable_and_dots_alone_cannot_climb() {
        assert_eq!(super::encode_segment("blog-2"), "blog-2");
        assert_eq!(super::encode_segment("a/b"), "a%2Fb");
        assert_eq!(super::encode_segment(".."), "%2E%2E");
        assert_eq!(super::encode_segment("."), "%2E");
        assert_eq!(super::encode_segment("..a"), "..a");
    }
}
