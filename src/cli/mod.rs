//! The client side of the CLI: talks to a running minicloud's API and prints for people.

pub mod client;
pub mod manifest;
pub mod table;

pub use client::{ApiClient, ClientError};
