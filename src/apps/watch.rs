//! What the app lifecycle does when the engine says one of its containers changed behind its
//! back (the watcher in `alerts` calls this on each event): route to where the web container
//! came back, or bring back what was removed.

use std::net::SocketAddr;

use minicloud_proxy::Upstream;

use super::deploy::web_container;
use super::error::AppError;
use super::Apps;
use crate::bus::Op;
use crate::docker::{ContainerState, DockerError};
use crate::model::{AppName, Operation};
use crate::store::AppRecord;

/// What following an app's serving container found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// Its web container runs where the edge already sends traffic.
    Serving,
    /// Its web container came back at a new address; the route moved there.
    Moved {
        from: Option<Upstream>,
        to: Upstream,
    },
    /// Its web container exists but does not run (it is restarting, or gave up).
    Down { state: ContainerState },
    /// A container of it was gone and the reconcile plan ran to recreate it.
    Recreated { created: usize },
    /// Nothing should serve (removed, stopped, never deployed): nothing to follow.
    NotServing,
}

/// What a look at the serving web container found.
enum Look {
    Done(Followed),
    Missing,
    Move {
        record: Box<AppRecord>,
        to: Upstream,
    },
}

impl Apps {
    /// Looks at the app's serving revision again and brings the edge in line with it: a web
    /// container that runs at a new address gets the route (one snapshot swap), a container
    /// removed behind minicloud's back is recreated by the reconcile plan. Only a change takes
    /// the app's lock (a look does not, so it never makes a person's call wait or fail); a
    /// busy app is an [`AppError::Busy`] the caller may try again shortly.
    pub async fn follow_container(&self, op: &Op, app: &AppName) -> Result<Followed, AppError> {
        if let Look::Done(followed) = self.look(app).await? {
            return Ok(followed);
        }
        {
            let _lock = self.try_lock(app, Operation::Reconcile)?;
            // Looked at again under the lock: an operation may have changed it meanwhile.
            match self.look(app).await? {
                Look::Done(followed) => return Ok(followed),
                Look::Move { record, to } => {
                    let from = self.serving_upstream(app);
                    self.route_app(op, &record, Some(to))?;
                    tracing::info!(%app, ?from, %to, "the web container came back at a new address; route moved");
                    return Ok(Followed::Moved { from, to });
                }
                Look::Missing => {}
            }
        }
        // Reconcile takes every app's lock itself.
        self.recreate(op).await
    }

    /// What the serving web container needs, without changing anything.
    async fn look(&self, app: &AppName) -> Result<Look, AppError> {
        let Some(record) = self.ctx.store.app(app)? else {
            return Ok(Look::Done(Followed::NotServing));
        };
        let Some(revision) = record.current.filter(|_| !record.stopped) else {
            return Ok(Look::Done(Followed::NotServing));
        };
        let docker = self.docker().await?;
        let info = match docker.inspect(&web_container(app, revision)).await {
            Ok(info) => info,
            Err(DockerError::NotFound { .. }) => return Ok(Look::Missing),
            Err(e) => return Err(e.into()),
        };
        let ip = info.app_ip(app);
        let (ContainerState::Running, Some(ip)) = (info.state, ip) else {
            return Ok(Look::Done(Followed::Down { state: info.state }));
        };
        let (_, manifest) = self.revision(app, revision)?;
        let to = Upstream(SocketAddr::new(ip, manifest.http_port()));
        if self.serving_upstream(app) == Some(to) {
            return Ok(Look::Done(Followed::Serving));
        }
        Ok(Look::Move {
            record: Box::new(record),
            to,
        })
    }

    /// The serving web container of `revision` stopped or went (the engine may restart it, or
    /// minicloud recreate it): its route goes now, so the edge answers at once with a 503 that
    /// says the app is not running, not a 502 after trying a dead address. Following the
    /// container when it starts again routes it back ([`Self::follow_container`]).
    pub fn web_container_down(
        &self,
        op: &Op,
        app: &AppName,
        revision: u64,
    ) -> Result<(), AppError> {
        let _lock = self.try_lock(app, Operation::Reconcile)?;
        let Some(record) = self.ctx.store.app(app)? else {
            return Ok(());
        };
        if record.stopped || record.current != Some(revision) {
            return Ok(());
        }
        if self.serving_upstream(app).is_some() {
            tracing::info!(%app, revision, "the serving web container is down; the edge says so until it is back");
            self.route_app(op, &record, None)?;
        }
        Ok(())
    }

    /// Runs the reconcile plan (as at start-up) to bring back what was removed.
    pub async fn recreate(&self, op: &Op) -> Result<Followed, AppError> {
        let done = self.reconcile(op).await?;
        Ok(Followed::Recreated {
            created: done.created,
        })
    }
}
