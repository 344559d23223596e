//! External routes: a host served by a process on this machine (or anywhere reachable by
//! address) rather than by an app minicloud deploys.

use std::time::{Duration, Instant};

use minicloud_proxy::{HostPattern, Upstream};

use crate::bus::Op;
use crate::ctx::hosts::{HostTaken, Owner};
use crate::ctx::Ctx;
use crate::model::now;
use crate::store::{RouteRecord, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("{0}")]
    Invalid(String),
    #[error("'{host}' is reserved for minicloud's admin UI and API; choose another host")]
    Reserved { host: String },
    #[error(transparent)]
    HostTaken(#[from] HostTaken),
    #[error("no route for '{host}'")]
    NotFound { host: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses what a person typed; both errors say what a good value looks like.
pub fn parse_route(host: &str, upstream: &str) -> Result<(HostPattern, Upstream), RouteError> {
    let host = HostPattern::parse(host.trim()).map_err(|e| RouteError::Invalid(e.to_string()))?;
    let upstream = upstream
        .trim()
        .parse::<Upstream>()
        .map_err(|e| RouteError::Invalid(e.to_string()))?;
    Ok((host, upstream))
}

/// Adds or replaces the route for `host`, which no app and not the admin UI may own. Stored
/// first, then served: what is served never runs ahead of what a restart would restore.
/// Also returns the time from the store's commit to the edge serving the new snapshot.
pub fn set_route(
    ctx: &Ctx,
    op: &Op,
    host: HostPattern,
    upstream: Upstream,
) -> Result<(RouteRecord, Duration), RouteError> {
    let record = RouteRecord {
        host,
        upstream,
        created_at: now(),
    };
    let mut committed = None;
    ctx.claim_hosts(std::slice::from_ref(&record.host), &Owner::Route, || {
        ctx.store.put_route(&record)?;
        committed = Some(Instant::now());
        Ok::<_, RouteError>(())
    })?;
    let publish = committed.map_or(Duration::ZERO, |at| at.elapsed());
    ctx.routes_changed(op);
    Ok((record, publish))
}

/// Removes the route for `host`; returns the time from the store's commit to the edge
/// serving the new snapshot.
pub fn remove_route(ctx: &Ctx, op: &Op, host: &str) -> Result<Duration, RouteError> {
    let host = HostPattern::parse(host).map_err(|e| RouteError::Invalid(e.to_string()))?;
    if host == HostPattern::Exact(ctx.config.admin_host()) {
        return Err(RouteError::Reserved {
            host: host.to_string(),
        });
    }
    if !ctx.store.delete_route(&host)? {
        return Err(RouteError::NotFound {
            host: host.to_string(),
        });
    }
    let committed = Instant::now();
    ctx.publish_routes()?;
    let publish = committed.elapsed();
    ctx.routes_changed(op);
    Ok(publish)
}

pub fn list_routes(ctx: &Ctx) -> Result<Vec<RouteRecord>, RouteError> {
    Ok(ctx.store.routes()?)
}
