//! `AppError`: how an app operation fails, in words a person can act on.

use crate::docker::DockerError;
use crate::model::manifest::ManifestError;
use crate::services::ServiceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no app named '{0}'")]
    NotFound(String),
    #[error("an app named '{0}' already exists")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    /// Another operation on the same app holds its lock.
    #[error("{app} is busy: {operation} is in progress; try again when it has finished")]
    Busy { app: String, operation: String },
    /// The deploy ran and failed; the previous revision (if any) keeps serving.
    #[error("{0}")]
    DeployFailed(String),
    #[error("'{host}' is already served by {owner}")]
    HostTaken { host: String, owner: String },
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A provisioner failed outside a deploy (removal with data, rotation).
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// A manifest that does not validate is bad input, whoever reads it.
impl From<ManifestError> for AppError {
    fn from(e: ManifestError) -> Self {
        AppError::Invalid(e.to_string())
    }
}
