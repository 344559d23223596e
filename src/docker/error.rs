//! `DockerError`: what can go wrong talking to the engine, said so a person can act on it.
//!
//! Messages name the image, container or network involved and what the engine said. They never
//! contain registry credentials or container environment values: the engine does not echo
//! those back, and this module never formats them.

/// Errors of the `docker` module.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "cannot reach the Docker engine at {endpoint}: {reason} (is the Docker engine running? \
         is the socket mounted?)"
    )]
    Unreachable { endpoint: String, reason: String },

    #[error("cannot pull {image}: {reason}")]
    Pull { image: String, reason: String },

    #[error("{image} has no app manifest: looked for {looked_for} at the image root")]
    NoManifest { image: String, looked_for: String },

    #[error("cannot read the app manifest {file} from {image}: {reason}")]
    ManifestUnreadable {
        image: String,
        file: String,
        reason: String,
    },

    /// A container was to be made from an image the engine no longer has (pruned meanwhile).
    #[error("the image {image} is not on this engine")]
    ImageMissing { image: String },

    #[error("{kind} '{name}' not found")]
    NotFound { kind: &'static str, name: String },

    /// Any other engine answer, with what we were doing.
    #[error("cannot {action} {target}: {reason}")]
    Engine {
        action: &'static str,
        target: String,
        reason: String,
    },
}

impl DockerError {
    /// Wraps a bollard error with what we were doing to what.
    pub(crate) fn engine(
        action: &'static str,
        target: impl Into<String>,
        err: bollard::errors::Error,
    ) -> Self {
        DockerError::Engine {
            action,
            target: target.into(),
            reason: reason(&err),
        }
    }

    /// Like [`DockerError::engine`] for a call on one container, where "no such container"
    /// becomes [`DockerError::NotFound`].
    pub(crate) fn container(
        action: &'static str,
        name: impl Into<String>,
        err: bollard::errors::Error,
    ) -> Self {
        if is_not_found(&err) {
            DockerError::NotFound {
                kind: "container",
                name: name.into(),
            }
        } else {
            DockerError::engine(action, name, err)
        }
    }
}

/// The engine's own message when it sent one, else bollard's description (transport errors).
pub(crate) fn reason(err: &bollard::errors::Error) -> String {
    use bollard::errors::Error as B;
    match err {
        B::DockerResponseServerError { message, .. } => message.trim().to_owned(),
        B::DockerStreamError { error } => error.trim().to_owned(),
        other => other.to_string(),
    }
}

/// The HTTP status the engine answered with, if it answered.
pub(crate) fn status(err: &bollard::errors::Error) -> Option<u16> {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

pub(crate) fn is_not_found(err: &bollard::errors::Error) -> bool {
    status(err) == Some(404)
}
