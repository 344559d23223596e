//! The control plane's one context: site configuration, the state store, the edge, the event
//! bus and the app locks. Operations (apps, routes, certificates, later backups) take a
//! `&Ctx`; the API, the web pages and the CLI call those operations and nothing below them.

use std::sync::Arc;

use minicloud_proxy::{Edge, HostPattern, Upstream};

use crate::bus::{Bus, EventKind, Op};
use crate::config::Config;
use crate::locks::AppLocks;
use crate::model::Actor;
use crate::store::{Store, StoreError};

/// Cheap to clone; every clone is the same control plane.
#[derive(Clone)]
pub struct Ctx {
    pub config: Arc<Config>,
    pub store: Store,
    pub edge: Edge,
    pub bus: Bus,
    pub locks: AppLocks,
}

impl Ctx {
    pub fn new(config: Config, store: Store, edge: Edge) -> Self {
        Self {
            config: Arc::new(config),
            store,
            edge,
            bus: Bus::default(),
            locks: AppLocks::default(),
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

    /// Tells the bus that the served hosts changed (so certificates are looked at now).
    pub fn routes_changed(&self, op: &Op) {
        self.bus.send(op, EventKind::RoutesChanged);
    }

    /// A new operation started by `actor`.
    pub fn begin(&self, actor: Actor) -> Op {
        self.bus.begin(actor)
    }
}
