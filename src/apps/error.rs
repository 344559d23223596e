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
    /// A provisioner failed outside a deploy (rotation).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// `rm --with-data` removed the containers but could not remove all of the data.
    #[error(transparent)]
    PartlyRemoved(#[from] PartlyRemoved),
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

/// An app removal with its data that could not remove all of it: what went, what was kept
/// and why. The app stays, stopped, so that asking again finishes the job.
#[derive(Debug)]
pub struct PartlyRemoved {
    pub app: AppName,
    pub removal: crate::services::Removal,
}

impl PartlyRemoved {
    /// Every part was kept only because its service could not be reached.
    pub fn is_unreachable(&self) -> bool {
        self.removal.kept.iter().all(|(_, e)| e.is_unreachable())
    }
}

impl std::fmt::Display for PartlyRemoved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let app = &self.app;
        let mut removed = vec!["its containers and routes"];
        removed.extend(&self.removal.removed);
        write!(f, "removed {}; ", removed.join(", "))?;
        let kept: Vec<String> = self
            .removal
            .kept
            .iter()
            .map(|(what, why)| format!("{what} ({why})"))
            .collect();
        write!(
            f,
            "kept {}. {app} stays, stopped: run `minicloud apps rm {app} --with-data` again once that is reachable",
            kept.join("; ")
        )
    }
}

impl std::error::Error for PartlyRemoved {}

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
    fn a_partial_removal_says_what_went_what_stays_and_what_to_do() {
        let removal = crate::services::Removal {
            removed: vec!["its storage"],
            kept: vec![(
                "its MariaDB database and user",
                ServiceError::Unreachable {
                    service: "MariaDB",
                    address: "127.0.0.1:3306".into(),
                    why: "no answer within 10s".into(),
                },
            )],
        };
        let partly = PartlyRemoved {
            app: AppName::try_new("blog").unwrap(),
            removal,
        };
        assert!(partly.is_unreachable());
        assert_eq!(
            partly.to_string(),
            "removed its containers and routes, its storage; kept its MariaDB database and user \
             (cannot reach MariaDB at 127.0.0.1:3306: no answer within 10s). blog stays, stopped: \
             run `minicloud apps rm blog --with-data` again once that is reachable"
        );
    }

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
