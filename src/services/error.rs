//! `ServiceError`: how provisioning fails, naming the service, its address (never with
//! credentials) and what it said.

use std::path::PathBuf;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The app declared a need this minicloud has no service for.
    #[error("{app} needs {need}, but {service} is not configured: set {setting}")]
    NotConfigured {
        app: String,
        need: &'static str,
        service: &'static str,
        setting: &'static str,
    },
    /// No connection: down, wrong address, firewall, timeout.
    #[error("cannot reach {service} at {address}: {why}")]
    Unreachable {
        service: &'static str,
        address: String,
        why: String,
    },
    /// Connected, and the service said no (bad admin credentials, missing privilege, ...).
    #[error("{service} at {address} refused: {said}")]
    Refused {
        service: &'static str,
        address: String,
        said: String,
    },
    /// A name that would not be safe as an identifier; nothing was sent anywhere.
    #[error("'{name}' cannot name a database, vhost or user: {why}")]
    BadName { name: String, why: String },
    #[error("storage {path}: {why}")]
    Storage { path: PathBuf, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    /// The service is down or unreachable (as opposed to refusing or misconfigured).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// Replaces every occurrence of a secret in a message: a server quoting a statement back
/// ("... near 'IDENTIFIED BY ...'") must not carry a password into an error.
pub(super) fn scrub(message: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(message.to_owned(), |m, s| m.replace(s, "<redacted>"))
}

/// The innermost error: for a connection that failed, the operating system's words
/// (`Connection refused (os error 111)`) without the layers of wrappers around them.
pub(super) fn root_cause(e: &dyn std::error::Error) -> String {
    let mut last = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}
