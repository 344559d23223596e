//! The control plane's one context: site configuration, the state store, the edge, the event
//! bus and the app locks. Operations (apps, routes, certificates, later backups) take a
//! `&Ctx`; the API, the web pages and the CLI call those operations and nothing below them.

pub mod hosts;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use minicloud_proxy::{Edge, HostPattern, Upstream};

use crate::bus::{Bus, EventKind, Op};
use crate::config::Config;
use crate::locks::AppLocks;
use crate::model::{Actor, AppName};
use crate::store::{Store, StoreError};
use hosts::{HostTaken, Owner, Owners};

/// Cheap to clone; every clone is the same control plane.
#[derive(Clone)]
pub struct Ctx {
    pub config: Arc<Config>,
    pub store: Store,
    pub edge: Edge,
    pub bus: Bus,
    pub locks: AppLocks,
    /// Where hosts go that the store cannot say: the API's address and the upstream of each
    /// app's serving revision. Held while hosts are claimed and while the edge is published,
    /// so claims and publishes happen one at a time, in order.
    served: Arc<Mutex<Served>>,
}

#[derive(Default)]
struct Served {
    admin: Option<Upstream>,
    apps: BTreeMap<AppName, Upstream>,
    /// Why an app is out of service on purpose (a restore), for the page its hosts answer.
    maintenance: BTreeMap<AppName, String>,
}

impl Ctx {
    pub fn new(config: Config, store: Store, edge: Edge) -> Self {
        Self {
            config: Arc::new(config),
            store,
            edge,
            bus: Bus::default(),
            locks: AppLocks::default(),
            served: Arc::default(),
        }
    }

    /// Publishes everything the store says should be served, plus the admin host, in one
    /// snapshot. Called once at start, before the listeners open.
    pub fn publish_stored_state(&self, api_addr: std::net::SocketAddr) -> Result<(), StoreError> {
        self.lock_served().admin = Some(Upstream(api_addr));
        self.publish_routes()
    }

    /// Records where `app`'s serving revision listens (or that none serves), then publishes.
    pub fn set_serving(&self, app: &AppName, upstream: Option<Upstream>) -> Result<(), StoreError> {
        let mut served = self.lock_served();
        match upstream {
            Some(up) => served.apps.insert(app.clone(), up),
            None => served.apps.remove(app),
        };
        self.publish_with(&served)
    }

    /// Marks `app` as out of service on purpose, and why (or clears the mark), then
    /// publishes: while nothing serves it, its hosts answer a 503 saying so.
    pub fn set_maintenance(&self, app: &AppName, why: Option<String>) -> Result<(), StoreError> {
        let mut served = self.lock_served();
        match why {
            Some(why) => served.maintenance.insert(app.clone(), why),
            None => served.maintenance.remove(app),
        };
        self.publish_with(&served)
    }

    /// Where `app`'s serving revision listens, if one serves.
    pub fn serving(&self, app: &AppName) -> Option<Upstream> {
        self.lock_served().apps.get(app).copied()
    }

    /// Makes the edge serve exactly what the store's owners say, in one snapshot. Call it
    /// after any change to apps, their domains or routes.
    pub fn publish_routes(&self) -> Result<(), StoreError> {
        let served = self.lock_served();
        self.publish_with(&served)
    }

    /// Runs `f` on the owners as the store holds them now.
    fn with_owners<T>(&self, f: impl FnOnce(&Owners<'_>) -> T) -> Result<T, StoreError> {
        let (apps, routes) = (self.store.apps()?, self.store.routes()?);
        let admin = self.config.admin_host();
        Ok(f(&Owners {
            admin: &admin,
            domain: &self.config.domain,
            apps: &apps,
            routes: &routes,
        }))
    }

    fn publish_with(&self, served: &Served) -> Result<(), StoreError> {
        let (plan, parked) = self.with_owners(|owners| {
            (
                hosts::plan_routes(owners, served.admin, &served.apps),
                hosts::plan_parked(owners, &served.apps, &served.maintenance),
            )
        })?;
        self.edge.update(|draft| {
            draft.set_parked(parked);
            let gone: BTreeSet<HostPattern> = draft
                .routes()
                .keys()
                .filter(|h| !plan.contains_key(*h))
                .cloned()
                .collect();
            for host in &gone {
                draft.remove_route(host);
            }
            for (host, upstream) in plan {
                draft.set_route(host, upstream);
            }
        });
        Ok(())
    }

    /// Claims `hosts` for `claimant` and runs `commit` (which stores the claim) while no other
    /// claim can run, then publishes what is served. A host someone else owns is refused
    /// with the owner's name, whoever asks: this is the one check for every kind of owner.
    pub fn claim_hosts<T, E>(
        &self,
        hosts: &[HostPattern],
        claimant: &Owner,
        commit: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<HostTaken> + From<StoreError>,
    {
        let served = self.lock_served();
        self.with_owners(|owners| {
            hosts
                .iter()
                .try_for_each(|host| owners.check_free(host, claimant))
        })??;
        let result = commit()?;
        self.publish_with(&served)?;
        Ok(result)
    }

    fn lock_served(&self) -> MutexGuard<'_, Served> {
        // Held only for in-memory edits and short store reads; a panic leaves it consistent.
        self.served
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
