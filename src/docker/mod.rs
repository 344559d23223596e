//! The Docker driver: the only module that talks to the Docker engine (through bollard).
//!
//! It owns the engine connection ([`Docker`], a cheap-to-clone handle), the networks (one per
//! app), image pulls with progress, reading the app manifest out of an image, and the
//! lifecycle of the containers minicloud manages (run, inspect, list by label, logs, stats,
//! stop, remove), removing images nothing uses, and the engine's event stream for them. It
//! speaks in minicloud's types (`ImageRef`, `AppName`, [`ContainerSpec`]) so nothing above it
//! sees bollard.
//!
//! It does not decide anything: which revision runs, what env an app gets, when to stop what —
//! that is `apps`. Every call here is one engine operation made idempotent where that is cheap
//! (`ensure_network`, `run` replacing a leftover container of the same name, `remove` of a
//! missing container).

mod containers;
mod error;
mod events;
mod images;
mod logs;
mod manifest;
pub mod networks;
mod pull;

pub use containers::{
    ContainerInfo, ContainerSpec, ContainerState, ManagedLabels, Role, RunningContainer, Stats,
};
pub use error::DockerError;
pub use events::{ContainerAction, ContainerEvent};
pub use manifest::MANIFEST_FILES;
pub use networks::{app_network, AppNetworks, LEGACY_NETWORK};
pub use pull::{PullProgress, PulledImage, RegistryAuth};

/// Where the engine listens when `DOCKER_HOST` is unset (bollard does not export its own).
pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// Label keys on managed containers. Reconcile at start-up finds apps by these.
pub mod labels {
    pub const APP: &str = "minicloud.app";
    pub const REV: &str = "minicloud.rev";
    pub const ROLE: &str = "minicloud.role";
    pub const RUNNER: &str = "minicloud.runner";
    /// Short-lived helper containers (manifest reads); anything carrying it can be removed.
    pub const TMP: &str = "minicloud.tmp";
    /// On networks minicloud created.
    pub const NETWORK: &str = "minicloud.network";
    /// Which minicloud made a container, so two minicloud data dirs on one engine (tests, a
    /// staging copy) never adopt or remove each other's containers.
    pub const INSTANCE: &str = "minicloud.instance";
}

/// A handle to the Docker engine. Clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Docker {
    api: bollard::Docker,
    /// Where we connected, for error messages.
    endpoint: String,
    /// When set, containers are labelled with it and only those are listed as managed.
    instance: Option<String>,
    /// The longest a pull may take, all layers together.
    pull_timeout: std::time::Duration,
}

/// A pull's time limit unless set: a registry that trickles bytes must not hold an app's
/// lock for ever.
pub const DEFAULT_PULL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Docker {
    /// Connects to `DOCKER_HOST`, or the default socket, and agrees on an API version.
    ///
    /// bollard 0.21 speaks API 1.53 by default; older engines (Debian's 20.10 speaks 1.41)
    /// refuse that, so the version is negotiated down here, which also proves the engine
    /// answers.
    // `DOCKER_HOST` is Docker's own convention, read as the docker CLI reads it; it is not a
    // minicloud setting, so it is not in the config key table.
    #[allow(clippy::disallowed_methods)]
    pub async fn connect() -> Result<Self, DockerError> {
        let endpoint = std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_SOCKET.to_owned());
        Self::connect_to(&endpoint).await
    }

    /// Connects to an explicit engine address (`unix:///…`, `tcp://…`, `http://…`).
    pub async fn connect_to(endpoint: &str) -> Result<Self, DockerError> {
        let unreachable = |e: bollard::errors::Error| DockerError::Unreachable {
            endpoint: endpoint.to_owned(),
            reason: error::reason(&e),
        };
        let api = bollard::Docker::connect_with_host(endpoint).map_err(unreachable)?;
        let api = api.negotiate_version().await.map_err(unreachable)?;
        Ok(Self {
            api,
            endpoint: endpoint.to_owned(),
            instance: None,
            pull_timeout: DEFAULT_PULL_TIMEOUT,
        })
    }

    /// Scopes this handle to one minicloud instance (see [`labels::INSTANCE`]).
    pub fn with_instance(mut self, id: impl Into<String>) -> Self {
        self.instance = Some(id.into());
        self
    }

    /// Sets how long a pull may take in all (see [`DEFAULT_PULL_TIMEOUT`]).
    pub fn with_pull_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.pull_timeout = timeout;
        self
    }

    /// Checks the engine answers; start-up calls this to fail early and clearly.
    pub async fn ping(&self) -> Result<(), DockerError> {
        self.api
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| DockerError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: error::reason(&e),
            })
    }

    /// Where the engine keeps images and containers (`DockerRootDir`), when it says.
    pub async fn root_dir(&self) -> Option<std::path::PathBuf> {
        self.api.info().await.ok()?.docker_root_dir.map(Into::into)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bollard client, for this module's submodules only.
    pub(crate) fn api(&self) -> &bollard::Docker {
        &self.api
    }
}
