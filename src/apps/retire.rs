//! Retiring old revisions: once revision N serves, the containers of the revisions before it
//! drain and are stopped and removed on tasks of their own, so a deploy answers, and frees
//! the app's lock, as soon as N serves rather than after the old containers' stop timeout.
//!
//! What a retirement removes is fixed when it starts, under the app's lock: the containers
//! (by engine id, which is never reused) of other revisions that exist at that moment. So it
//! can never touch the serving revision or one started later, and two retirements never
//! claim the same container. The tasks are kept per app in [`Retirements`]: they can be
//! listed, `remove` supersedes them, and their failures are logged. If minicloud stops first,
//! the next start-up's reconcile removes what they left.
//!
//! The same task then prunes the app's images that no kept revision uses (see `prune`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinSet;

use super::removed_log::keep_removed_log;
use super::Apps;
use crate::bus::Op;
use crate::model::name::AppName;

/// How long the old revision keeps its containers after the route moved, so requests already
/// sent to it finish.
pub(super) const DRAIN: Duration = Duration::from_secs(2);
/// How long a container gets to stop on SIGTERM before it is killed.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The retirements under way, per app. Cheap to clone; dropping the last clone aborts them.
#[derive(Clone, Default)]
pub struct Retirements {
    inner: Arc<Mutex<HashMap<AppName, Pending>>>,
}

/// One app's retirements: the tasks, and the containers they claimed (id → name) and have
/// not removed yet.
#[derive(Default)]
struct Pending {
    tasks: JoinSet<()>,
    claimed: BTreeMap<String, String>,
}

impl Retirements {
    fn lock(&self) -> MutexGuard<'_, HashMap<AppName, Pending>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The names of `app`'s containers being drained and removed.
    pub fn retiring(&self, app: &AppName) -> Vec<String> {
        self.lock()
            .get(app)
            .map(|p| p.claimed.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the container with this engine id belongs to a retirement.
    pub fn is_claimed(&self, app: &AppName, id: &str) -> bool {
        self.lock()
            .get(app)
            .is_some_and(|p| p.claimed.contains_key(id))
    }

    /// Aborts `app`'s retirements and waits until they have stopped; the caller removes what
    /// they would have (app removal removes every container of the app).
    pub async fn supersede(&self, app: &AppName) {
        let pending = self.lock().remove(app);
        if let Some(mut pending) = pending {
            pending.tasks.shutdown().await;
        }
    }

    /// Waits until `app`'s retirements have finished.
    pub async fn wait(&self, app: &AppName) {
        let pending = self.lock().remove(app);
        if let Some(mut pending) = pending {
            while let Some(done) = pending.tasks.join_next().await {
                log_died(app, done);
            }
        }
    }

    /// Claims `containers` (id, name) that no retirement holds yet, returning those claimed.
    fn claim(&self, app: &AppName, containers: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut all = self.lock();
        let pending = all.entry(app.clone()).or_default();
        containers
            .into_iter()
            .filter(|(id, name)| {
                if pending.claimed.contains_key(id) {
                    return false;
                }
                pending.claimed.insert(id.clone(), name.clone());
                true
            })
            .collect()
    }

    fn spawn(&self, app: &AppName, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut all = self.lock();
        let pending = all.entry(app.clone()).or_default();
        // Reap the finished ones, so the set does not grow with every deploy.
        while let Some(done) = pending.tasks.try_join_next() {
            log_died(app, done);
        }
        pending.tasks.spawn(task);
    }

    fn release(&self, app: &AppName, id: &str) {
        if let Some(pending) = self.lock().get_mut(app) {
            pending.claimed.remove(id);
        }
    }
}

fn log_died(app: &AppName, done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if !e.is_cancelled() {
            tracing::error!(%app, error = %e, "a retirement task died");
        }
    }
}

impl Apps {
    /// Hands every container of `app` outside revision `serving` to a background task that
    /// waits [`DRAIN`] (when `drain`: something was serving before), then stops and removes
    /// them. The caller holds the app's lock, so the set is exactly the older revisions.
    pub(super) async fn retire_other_revisions(
        &self,
        op: &Op,
        app: &AppName,
        serving: u64,
        drain: bool,
    ) {
        let Some((docker, containers)) = self
            .app_containers(app, |rev| rev != serving, "retire")
            .await
        else {
            return;
        };
        let old: Vec<(String, String)> = containers.into_iter().map(|c| (c.id, c.name)).collect();
        let claimed = self.retirements.claim(app, old);
        // After the containers: the engine refuses to remove an image a container still uses.
        let prune = {
            let (store, docker, app) = (self.ctx.store.clone(), docker.clone(), app.clone());
            async move { super::prune::prune_images(&store, &docker, &app).await }
        };
        if claimed.is_empty() {
            self.retirements.spawn(app, prune);
            return;
        }
        let names: Vec<&str> = claimed.iter().map(|(_, n)| n.as_str()).collect();
        self.ctx.bus.step(
            op,
            app,
            format!(
                "{} drain and are removed in the background",
                names.join(", ")
            ),
        );
        let retirements = self.retirements.clone();
        let (task_app, store) = (app.clone(), self.ctx.store.clone());
        self.retirements.spawn(app, async move {
            if drain {
                tokio::time::sleep(DRAIN).await;
            }
            // Side by side: an app that ignores SIGTERM costs one stop timeout, not one per
            // container, and its memory comes back sooner.
            let why = format!("replaced by revision {serving}");
            let retire_one = |(id, name): (String, String)| {
                let (docker, retirements, app) = (&docker, &retirements, &task_app);
                let (store, why) = (&store, &why);
                async move {
                    if let Err(e) = docker.stop(&id, STOP_TIMEOUT).await {
                        tracing::debug!(container = %name, error = %e, "stop before remove");
                    }
                    keep_removed_log(store, docker, &id, why).await;
                    match docker.remove(&id).await {
                        Ok(()) => tracing::info!(%app, container = %name, "retired"),
                        // Left for the next deploy's retirement or reconcile at start.
                        Err(e) => {
                            tracing::warn!(%app, container = %name, error = %e, "cannot remove a retired container")
                        }
                    }
                    retirements.release(app, &id);
                }
            };
            futures_util::future::join_all(claimed.into_iter().map(retire_one)).await;
            prune.await;
        });
    }
}
