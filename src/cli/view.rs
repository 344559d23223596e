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
    pub operation: Option<String>,
    #[serde(default)]
    pub storage_bytes: Option<u64>,
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
