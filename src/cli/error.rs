//! `CliError`: everything a command can fail with, each printed on one line by `main`.

use super::manifest::CheckError;
use super::manifest_init::InitError;
use super::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API could not be reached, or answered with an error.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// `manifest check` found a problem.
    #[error(transparent)]
    Manifest(#[from] CheckError),
    /// `manifest init` could not write the manifest asked for.
    #[error(transparent)]
    Init(#[from] InitError),
    /// An argument clap cannot check, or an operation that failed, in words for a person.
    #[error("{0}")]
    Message(String),
    /// Reading stdin or writing stdout failed.
    #[error("{what}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    pub fn message(text: impl Into<String>) -> Self {
        Self::Message(text.into())
    }
}
