//! `AppError`: how an app operation fails, in words a person can act on.

use serde::Serialize;

use crate::docker::DockerError;
use crate::locks::Busy;
use crate::model::manifest::ManifestError;
use crate::model::AppName;
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
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The deploy ran and failed; the previous revision (if any) keeps serving.
    #[error(transparent)]
    DeployFailed(#[from] DeployFailure),
    /// Another owner (the admin UI, an app, a route) has the host.
    #[error(transparent)]
    HostTaken(#[from] crate::ctx::hosts::HostTaken),
    /// The app was stopped on purpose: only `start` brings it back.
    #[error("{0} is stopped; start it first (`minicloud apps start {0}`), then deploy")]
    Stopped(AppName),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A provisioner failed outside a deploy (removal with data, rotation).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Too little disk left to pull an image; nothing was started or changed.
    #[error(
        "only {free_mib} MiB free under {dir}; a deploy that pulls needs {min_mib} MiB \
         (min_free_mb): free some space (old images: docker image prune) and deploy again"
    )]
    LowOnSpace {
        dir: String,
        free_mib: u64,
        min_mib: u64,
    },
}

/// A manifest that does not validate is bad input, whoever reads it.
impl From<ManifestError> for AppError {
    fn from(e: ManifestError) -> Self {
        AppError::Invalid(e.to_string())
    }
}

/// A deploy that ran and failed, with what a person needs to act on it: which revision
/// failed, why, the last lines it logged, and which revision keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployFailure {
    pub app: AppName,
    /// The revision that was tried; `None` when it failed before one was recorded.
    pub revision: Option<u64>,
    pub reason: String,
    /// The failed container's last log lines (repeats folded), when it logged any.
    pub log_tail: Option<String>,
    /// The revision that serves as before, if any.
    pub still_serving: Option<u64>,
}

impl DeployFailure {
    /// The reason with the log lines, as a deploy's history records it.
    pub fn recorded_reason(&self) -> String {
        match &self.log_tail {
            Some(logs) => format!("{}; its last log lines:\n{logs}", self.reason),
            None => self.reason.clone(),
        }
    }
}

impl std::fmt::Display for DeployFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "deploy of {}", self.app)?;
        if let Some(rev) = self.revision {
            write!(f, " revision {rev}")?;
        }
        write!(f, " failed: {}", self.recorded_reason())?;
        if let Some(rev) = self.still_serving {
            write!(f, "; revision {rev} keeps serving")?;
        }
        Ok(())
    }
}

impl std::error::Error for DeployFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reads_as_one_sentence_with_its_log_lines() {
        let failure = DeployFailure {
            app: AppName::try_new("blog").unwrap(),
            revision: Some(2),
            reason: "no answer in 20s".into(),
            log_tail: Some("boom".into()),
            still_serving: Some(1),
        };
        assert_eq!(
            failure.to_string(),
            "deploy of blog revision 2 failed: no answer in 20s; its last log lines:\nboom; revision 1 keeps serving"
        );
    }
}
