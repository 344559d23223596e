//! The API's answers as the CLI reads them. Separate from the server's types on purpose:
//! lenient (unknown fields ignored, missing ones defaulted), so a CLI and a server of
//! neighbouring versions still understand each other.

use serde::Deserialize;

/// `GET /api/apps/{name}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AppView {
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub revision: Option<u64>,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub serving_image: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub memory_limit_mb: Option<u64>,
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub env_not_deployed: bool,
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(default)]
    pub storage_bytes: Option<u64>,
    #[serde(default)]
    pub restarts: Option<i64>,
    #[serde(default)]
    pub last_exit_code: Option<i64>,
    #[serde(default)]
    pub out_of_memory: bool,
    #[serde(default)]
    pub crash_looping: bool,
    #[serde(default)]
    pub pending_restore: Option<PendingRestoreView>,
}

/// The data a whole-box restore still owes an app.
#[derive(Debug, Clone, Deserialize)]
pub struct PendingRestoreView {
    pub backup: String,
    #[serde(default)]
    pub failed: Option<RestoreFailureView>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RestoreFailureView {
    #[serde(default)]
    pub at: i64,
    #[serde(default)]
    pub reason: String,
}

/// `GET /api/apps/{name}/deploys`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeployView {
    pub revision: u64,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub trigger: String,
    pub started_at: i64,
    #[serde(default)]
    pub finished_at: Option<i64>,
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GET /api/routes`, one entry.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteView {
    pub host: String,
    pub upstream: String,
}

/// `GET /api/certificates`, one entry. `state` is kept as the server's word (`pending`,
/// `valid`, `renewing`, `failed`, `self-signed`, or one this CLI does not know yet).
#[derive(Debug, Clone, Deserialize)]
pub struct CertView {
    pub host: String,
    #[serde(default)]
    pub state: String,
    /// Unix seconds.
    #[serde(default)]
    pub not_after: Option<i64>,
    /// When the next certificate will be ordered (Unix seconds).
    #[serde(default)]
    pub renew_at: Option<i64>,
    /// The last failure.
    #[serde(default)]
    pub error: Option<String>,
    /// After a failure: when it is tried again (Unix seconds).
    #[serde(default)]
    pub next_retry: Option<i64>,
    /// Why a host has only a self-signed certificate.
    #[serde(default)]
    pub reason: Option<String>,
}
