//! The records the store keeps. Plain data with serde; validation happens in the newtypes
//! they are made of (`HostPattern`, `Upstream`), so a record read back is already valid.

use std::collections::{BTreeMap, BTreeSet};

use minicloud_proxy::{HostPattern, Hostname, Upstream};

use crate::model::image_ref::ImageRef;
use crate::model::manifest::Need;
use crate::model::name::AppName;
use crate::model::secret::Secret;

/// An external route: a host served by a process on this machine rather than an app.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteRecord {
    pub host: HostPattern,
    pub upstream: Upstream,
    /// Unix seconds.
    pub created_at: i64,
}

/// An API token's metadata; the token itself is known only by its hash (the record's key).
/// The optional fields are left out of the JSON when unset, so older records read the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenRecord {
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the token is refused from then on. `None`: it never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Unix seconds, to the minute: when a request last carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<i64>,
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

/// An app: what the person asked for. What runs is in its [`DeployRecord`]s.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppRecord {
    pub name: AppName,
    /// The reference to deploy from (usually a tag); each deploy pins the digest it got.
    pub image: ImageRef,
    pub registry_auth: Option<RegistryCredentials>,
    /// Variables the admin set; they override the manifest's defaults.
    pub env: BTreeMap<String, String>,
    /// The variables before an env change whose redeploy has not served yet: written with the
    /// change, cleared with the deploy that serves it, put back by one that fails or that a
    /// crash interrupted (start-up reconcile), so `env` is always the serving one or the one
    /// being deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_before: Option<BTreeMap<String, String>>,
    /// Custom domains, besides `<app>.<domain>`.
    pub domains: BTreeSet<Hostname>,
    pub memory_mb: u64,
    /// The admin's limit on the app's processes and threads (`None`: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<u64>,
    /// The admin's CPU weight for the app (`None`: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// The secret part of the auto-deploy webhook URL.
    pub webhook_secret: Secret,
    /// Stopped by the admin: reconcile keeps it stopped.
    pub stopped: bool,
    /// The revision serving (or last served, when stopped).
    pub current: Option<u64>,
    pub created_at: i64,
    /// Services the admin added that the manifest does not ask for: every revision gets
    /// them as if it did.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub added_services: BTreeSet<Need>,
}

impl AppRecord {
    /// Takes back an env change that did not serve; false when none was pending.
    pub fn put_back_env(&mut self) -> bool {
        match self.env_before.take() {
            Some(before) => {
                self.env = before;
                true
            }
            None => false,
        }
    }
}

/// Credentials for a private registry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistryCredentials {
    pub username: String,
    pub password: Secret,
    /// The registry they were given for (e.g. `ghcr.io`); they go to no other. Records from
    /// before this field hold `None`: the registry of the app's reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
}

impl RegistryCredentials {
    /// The credentials, if `image` lives on the registry they were given for (`fallback`,
    /// the app's own reference's registry, for records that did not say).
    pub fn for_image(&self, image: &ImageRef, fallback: &str) -> Option<&Self> {
        let theirs = self.registry.as_deref().unwrap_or(fallback);
        (image.registry() == theirs).then_some(self)
    }
}

/// One revision of an app: what it ran and how the deploy ended.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeployRecord {
    pub app: AppName,
    pub revision: u64,
    /// Pinned to the digest: redeploying or recreating this revision runs exactly this image.
    pub image: ImageRef,
    pub digest: String,
    /// The manifest as read from the image (file name, text), parsed again when needed.
    pub manifest_file: String,
    pub manifest_text: String,
    /// The complete environment the containers got.
    pub env: BTreeMap<String, String>,
    pub trigger: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: DeployOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum DeployOutcome {
    InProgress,
    Succeeded,
    Failed { reason: String },
}

impl std::fmt::Debug for DeployRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The environment carries credentials: keys only.
        f.debug_struct("DeployRecord")
            .field("app", &self.app)
            .field("revision", &self.revision)
            .field("image", &self.image.canonical())
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("trigger", &self.trigger)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// An app's account on a shared service (MariaDB, RabbitMQ). The password lives here and
/// nowhere else minicloud keeps; the provisioners make the servers agree with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceRecord {
    pub app: AppName,
    pub kind: crate::model::ServiceKind,
    pub user: String,
    pub password: Secret,
    /// Unix seconds.
    pub created_at: i64,
    pub rotated_at: Option<i64>,
}
