//! The Docker driver: the only module that talks to the Docker engine (through bollard).
//!
//! It owns the engine connection ([`Docker`], a cheap-to-clone handle), the `minicloud` bridge
//! network, image pulls with progress, reading the app manifest out of an image, and the
//! lifecycle of the containers minicloud manages (run, inspect, list by label, logs, stats,
//! stop, remove), and the engine's event stream for them. It speaks in minicloud's types
//! (`ImageRef`, `AppName`, [`ContainerSpec`]) so nothing above it sees bollard.
//!
//! It does not decide anything: which revision runs, what env an app gets, when to stop what —
//! that is `apps`. Every call here is one engine operation made idempotent where that is cheap
//! (`ensure_network`, `run` replacing a leftover container of the same name, `remove` of a
//! missing container).

mod containers;
mod error;
mod events;
mod logs;
mod manifest;
mod pull;

use std::net::IpAddr;

use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::ListNetworksOptionsBuilder;

pub use containers::{
    ContainerInfo, ContainerSpec, ContainerState, ManagedLabels, Role, RunningContainer, Stats,
};
pub use error::DockerError;
pub use events::{ContainerAction, ContainerEvent};
pub use manifest::MANIFEST_FILES;
pub use pull::{PullProgress, PulledImage, RegistryAuth};

use error::is_not_found;

/// Where the engine listens when `DOCKER_HOST` is unset (bollard does not export its own).
pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// The network apps run on unless configured otherwise.
pub const DEFAULT_NETWORK: &str = "minicloud";

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
}

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
        })
    }

    /// Scopes this handle to one minicloud instance (see [`labels::INSTANCE`]).
    pub fn with_instance(mut self, id: impl Into<String>) -> Self {
        self.instance = Some(id.into());
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

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Makes sure a bridge network `name` exists and returns its gateway address: services on
    /// the host (MariaDB, RabbitMQ in a non-compose setup) are reachable from containers there.
    pub async fn ensure_network(&self, name: &str) -> Result<IpAddr, DockerError> {
        let net = match self.api.inspect_network(name, None).await {
            Ok(net) => net,
            Err(e) if is_not_found(&e) => {
                let req = NetworkCreateRequest {
                    name: name.to_owned(),
                    driver: Some("bridge".to_owned()),
                    labels: Some([(labels::NETWORK.to_owned(), "1".to_owned())].into()),
                    ..Default::default()
                };
                self.api
                    .create_network(req)
                    .await
                    .map_err(|e| DockerError::engine("create network", name, e))?;
                let id = self.dedupe_network(name).await?;
                self.api
                    .inspect_network(&id, None)
                    .await
                    .map_err(|e| DockerError::engine("inspect network", name, e))?
            }
            Err(e) => return Err(DockerError::engine("inspect network", name, e)),
        };
        net.ipam
            .and_then(|ipam| ipam.config)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c.gateway.as_deref()?.parse::<IpAddr>().ok())
            .find(IpAddr::is_ipv4)
            .ok_or_else(|| DockerError::Engine {
                action: "find the gateway of network",
                target: name.to_owned(),
                reason: "the network has no IPv4 gateway".to_owned(),
            })
    }

    /// Engines before API 1.44 create a second network of the same name when two creates race
    /// (the duplicate check was opt-in and bollard 0.21 no longer sends it). Every racer keeps
    /// the network with the smallest id and removes the others, so they all agree.
    async fn dedupe_network(&self, name: &str) -> Result<String, DockerError> {
        let filters = [("name", vec![name])].into_iter().collect();
        let opts = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let nets = self
            .api
            .list_networks(Some(opts))
            .await
            .map_err(|e| DockerError::engine("list networks", name, e))?;
        // The name filter matches substrings; keep exact names only.
        let mut ids: Vec<String> = nets
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| n.id)
            .collect();
        ids.sort();
        let Some(keep) = ids.first().cloned() else {
            return Err(DockerError::NotFound {
                kind: "network",
                name: name.to_owned(),
            });
        };
        for extra in &ids[1..] {
            // Best effort: a racer may have removed it already.
            let _ = self.api.remove_network(extra).await;
        }
        Ok(keep)
    }

    /// The bollard client, for this module's submodules only.
    pub(crate) fn api(&self) -> &bollard::Docker {
        &self.api
    }
}
