//! The vocabulary every layer speaks: pure types and rules, no I/O, and no `crate::` import
//! from outside this module (`tests/module_graph.rs` keeps it so).
//!
//! App names ([`AppName`]), image references ([`ImageRef`]), the app contract read from an
//! image ([`Manifest`], [`Need`]), the shared services ([`ServiceKind`]), credentials
//! ([`Secret`]), an app's backup schedule and retention ([`BackupPolicy`]), time ([`time`]),
//! and who does what ([`Actor`], [`Operation`], [`Trigger`], [`OpId`]).

pub mod backup_policy;
pub mod image_ref;
pub mod manifest;
pub mod name;
mod ops;
pub mod secret;
mod service;
mod text;
pub mod time;

pub use backup_policy::{BackupPolicy, PolicyChange, PolicyError, Schedule};
pub use image_ref::ImageRef;
pub use manifest::{Manifest, Need};
pub use name::AppName;
pub use ops::{Actor, OpId, Operation, Trigger};
pub use secret::Secret;
pub use service::ServiceKind;
pub use text::{short, url_component};
pub use time::{format_time, now};

/// The property tests' settings (`prop_tests` beside the parsers): 256 cases keep the unit
/// tests fast; `PROPTEST_CASES=100000` hunts longer (proptest's default reads it; a test
/// setting, not one of minicloud's, so not in the config key table).
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn prop_config() -> proptest::test_runner::Config {
    match std::env::var_os("PROPTEST_CASES") {
        Some(_) => proptest::test_runner::Config::default(),
        None => proptest::test_runner::Config::with_cases(256),
    }
}
