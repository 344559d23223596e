//! The records the store keeps. Plain data with serde; validation happens in the newtypes
//! they are made of (`HostPattern`, `Upstream`), so a record read back is already valid.

use minicloud_proxy::{HostPattern, Upstream};

/// An external route: a host served by a process on this machine rather than an app.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteRecord {
    pub host: HostPattern,
    pub upstream: Upstream,
    /// Unix seconds.
    pub created_at: i64,
}

/// An API token's metadata; the token itself is known only by its hash (the record's key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenRecord {
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// The ACME account minicloud uses with one CA directory (its key is in `key`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct AcmeAccountRecord {
    pub directory: String,
    pub email: String,
    pub key: minicloud_proxy::acme::AccountKey,
    /// Unix seconds.
    pub created_at: i64,
}
