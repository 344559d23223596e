//! The control plane's shared handle: configuration, state store and the edge, together.
//! Operations (routes, later apps, backups) take a `&Plane`; the API, UI and CLI call those
//! operations and nothing below them.

use std::sync::Arc;

use minicloud_proxy::{Edge, HostPattern, Upstream};

use crate::certs::CertsHandle;
use crate::config::Config;
use crate::store::{Store, StoreError};

/// Cheap to clone; every clone is the same control plane.
#[derive(Clone)]
pub struct Plane {
    pub config: Arc<Config>,
    pub store: Store,
    pub edge: Edge,
    /// Wakes the certificate manager (a host was added, a renewal was asked for).
    pub certs: CertsHandle,
}

impl Plane {
    pub fn new(config: Config, store: Store, edge: Edge) -> Self {
        Self {
            config: Arc::new(config),
            store,
            edge,
            certs: CertsHandle::default(),
        }
    }

    /// Publishes everything the store says should be served, plus the admin host, in one
    /// snapshot. Called once at start, before the listeners open.
    pub fn publish_stored_state(&self, api_addr: std::net::SocketAddr) -> Result<(), StoreError> {
        let routes = self.store.routes()?;
        let admin = HostPattern::Exact(self.config.admin_host());
        self.edge.update(|draft| {
            draft.set_route(admin, Upstream(api_addr));
            for route in routes {
                draft.set_route(route.host, route.upstream);
            }
        });
        Ok(())
    }
}
