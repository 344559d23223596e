//! The app operations the API, UI and CLI call: create, deploy, roll back, restart, stop,
//! start, env, domains, remove, status. Each takes the [`Op`] it runs as (its id and actor)
//! and a typed request, validates it itself (so every face gets the same answer), and holds
//! the app's lock from `ctx.locks` while it runs: one operation per app at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use minicloud_proxy::{HostPattern, Hostname, Upstream};
use rand::RngCore;

use super::deploy::{pull_auth, web_container, Deployed, Source};
use super::error::AppError;
use super::retire::{Retirements, STOP_TIMEOUT};
use super::spawn::{BeforeFirstDeploy, Undo};
use crate::bus::{EventKind, Op};
use crate::ctx::hosts::{self, Owner};
use crate::ctx::Ctx;
use crate::docker::{AppNetworks, Docker, DockerError, RegistryAuth};
use crate::locks::AppLock;
use crate::model::{
    now, Actor, AppName, ImageRef, Manifest, Need, Operation, Secret, ServiceKind, Trigger,
};
use crate::services::{Provisioner, ServiceView, Services};
use crate::store::{AppRecord, DeployOutcome, DeployRecord, RegistryCredentials, StoreError};

/// Default memory limit of an app's containers.
pub const DEFAULT_MEMORY_MB: u64 = 256;
/// The memory limits a person may choose, in MB.
pub const MEMORY_RANGE_MB: std::ops::RangeInclusive<u64> = 16..=65536;
/// Default limit on an app container's processes and threads.
pub const DEFAULT_PIDS_LIMIT: u64 = 256;
pub const PIDS_RANGE: std::ops::RangeInclusive<u64> = 16..=65536;
/// Default CPU weight of an app container: half of Docker's 1024, which minicloud, MariaDB and
/// RabbitMQ keep, so the platform wins a contended CPU over any one app.
pub const DEFAULT_CPU_SHARES: u64 = 512;
pub const CPU_SHARES_RANGE: std::ops::RangeInclusive<u64> = 2..=262144;
/// How long a person's operation waits for a background reconcile that holds the app (a route
/// moved after a container came back, the drift plan) before it is refused as busy.
const RECONCILE_PATIENCE: Duration = Duration::from_secs(10);

/// Settings of the app lifecycle.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// How long a new revision may take to answer its health probe.
    pub health_timeout: Duration,
    /// Where each app's own network takes its subnet, and who joins it.
    pub networks: AppNetworks,
    /// The longest an image pull may take.
    pub pull_timeout: Duration,
    /// Free space (MiB) a deploy that pulls needs on the data dir's and the engine's disk.
    pub min_free_mb: u64,
}

/// The app lifecycle owner. Cheap to clone.
#[derive(Clone)]
pub struct Apps {
    pub(super) ctx: Ctx,
    pub(super) settings: AppSettings,
    /// The provisioners: database, message bus, storage.
    pub(super) services: Services,
    /// Old revisions being drained and removed after a deploy (see `retire`).
    pub(super) retirements: Retirements,
    /// The serving containers' last CPU samples (see `usage`).
    pub(super) usage: super::usage::UsageSamples,
    /// Labels this minicloud's containers (see `docker::labels::INSTANCE`).
    instance: Arc<str>,
    /// Set by the first connect that succeeds; a failed one leaves it empty for the next call.
    docker: Arc<tokio::sync::OnceCell<Docker>>,
    /// Set once at start (see [`Apps::set_before_new_image`]).
    pub(super) before_new_image: Arc<std::sync::OnceLock<Arc<dyn BeforeNewImage>>>,
}

/// Called before a deploy replaces an app's serving image with a new one (the backups take
/// a quick backup, so a rollback can take the data back too). It cannot fail the deploy.
#[async_trait::async_trait]
pub trait BeforeNewImage: Send + Sync {
    async fn before_new_image(&self, op: &Op, app: &AppName);
}

/// What a person asks for when adding an app.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub image: ImageRef,
    /// Without one, the name the image's manifest declares.
    pub name: Option<AppName>,
    /// A private registry's login: both or neither.
    pub registry_username: Option<String>,
    pub registry_password: Option<Secret>,
    pub env: BTreeMap<String, String>,
    pub memory_mb: Option<u64>,
    /// Processes and threads (default [`DEFAULT_PIDS_LIMIT`]).
    pub pids_limit: Option<u64>,
    /// CPU weight (default [`DEFAULT_CPU_SHARES`]).
    pub cpu_shares: Option<u64>,
    /// Services to give the app beyond what its manifest asks for.
    pub added_services: BTreeSet<Need>,
    /// Domains besides `<app>.<domain>`, added once the first deploy serves.
    pub domains: Vec<String>,
}

/// A deploy of a new image, or of the app's own reference again.
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    pub image: Option<ImageRef>,
    /// Deploy even when the digest is the one already serving.
    pub force: bool,
}

/// An app out of service and locked, from [`Apps::take_down`] to [`Apps::bring_back`].
pub struct TakenDown {
    lock: AppLock,
    name: AppName,
}

/// Variables to set and to unset, in one change.
#[derive(Debug, Clone, Default)]
pub struct EnvChange {
    pub set: BTreeMap<String, String>,
    /// Names, or patterns with `*` (`FEATURE_*`, `*` for all); applied after `set`.
    pub unset: Vec<String>,
}

impl Apps {
    pub fn new(ctx: Ctx, settings: AppSettings) -> Result<Self, StoreError> {
        let instance = ctx.store.instance_id()?.into();
        Ok(Self {
            services: Services::new(ctx.config.services(), ctx.store.clone()),
            ctx,
            settings,
            retirements: Retirements::default(),
            usage: Default::default(),
            instance,
            docker: Arc::default(),
            before_new_image: Arc::default(),
        })
    }

    /// Sets what runs before a new image replaces a serving one (once; later calls are
    /// ignored).
    pub fn set_before_new_image(&self, hook: Arc<dyn BeforeNewImage>) {
        let _ = self.before_new_image.set(hook);
    }

    /// The engine handle, connecting on first use; an unreachable engine is an error for
    /// this operation and is tried again by the next.
    /// Once connected, no lock is taken; callers that arrive during a connect wait for it.
    pub async fn docker(&self) -> Result<Docker, DockerError> {
        self.docker
            .get_or_try_init(|| async {
                Ok::<_, DockerError>(
                    Docker::connect()
                        .await?
                        .with_instance(&*self.instance)
                        .with_pull_timeout(self.settings.pull_timeout),
                )
            })
            .await
            .cloned()
    }

    /// Takes the app's lock for `operation`, or says what holds it.
    /// The app's lock for a person's operation: a short background reconcile holding it is
    /// waited out ([`crate::locks::AppLocks::lock_after_reconcile`]).
    pub(super) async fn lock(
        &self,
        app: &AppName,
        operation: Operation,
    ) -> Result<AppLock, AppError> {
        Ok(self
            .ctx
            .locks
            .lock_after_reconcile(app, operation, RECONCILE_PATIENCE)
            .await?)
    }

    /// The app's lock for a background task, which never waits: the task tries again later.
    pub(super) fn try_lock(
        &self,
        app: &AppName,
        operation: Operation,
    ) -> Result<AppLock, AppError> {
        Ok(self.ctx.locks.lock(app, operation)?)
    }

    /// Where the operations' events go.
    pub fn bus(&self) -> &crate::bus::Bus {
        &self.ctx.bus
    }

    /// The provisioners (database, message bus, storage), shared with the backups.
    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn app_record(&self, name: &AppName) -> Result<AppRecord, AppError> {
        self.ctx
            .store
            .app(name)?
            .ok_or_else(|| AppError::NotFound(name.to_string()))
    }

    /// `<app>.<domain>`.
    pub fn default_host(&self, app: &AppName) -> Hostname {
        // The domain leaves room for the longest app name (`config::parse::domain`).
        #[allow(clippy::expect_used)]
        self.ctx
            .config
            .domain
            .child(app.as_str())
            .expect("a valid app name under a valid domain is a valid host")
    }

    pub fn app_url(&self, app: &AppName) -> String {
        self.ctx.config.https_url(&self.default_host(app))
    }

    /// Every host an app answers at.
    pub fn hosts(&self, record: &AppRecord) -> Vec<Hostname> {
        std::iter::once(self.default_host(&record.name))
            .chain(record.domains.iter().cloned())
            .collect()
    }

    /// Serves the app's hosts from `upstream` (or stops serving them). What the edge serves is
    /// computed from the store (see `ctx::hosts`), so a stopped app stays unrouted.
    pub(super) fn route_app(
        &self,
        op: &Op,
        record: &AppRecord,
        upstream: Option<Upstream>,
    ) -> Result<(), AppError> {
        self.ctx.set_serving(&record.name, upstream)?;
        if upstream.is_some() {
            // New hosts may need a CA certificate.
            self.ctx.routes_changed(op);
        }
        Ok(())
    }

    /// Where the app's serving revision gets traffic, if it serves.
    pub fn serving_upstream(&self, app: &AppName) -> Option<Upstream> {
        self.ctx.serving(app)
    }

    pub(super) fn ensure_storage(&self, app: &AppName) -> Result<PathBuf, AppError> {
        Ok(self.services.storage().ensure_dir(app)?)
    }

    pub fn storage_dir(&self, app: &AppName) -> PathBuf {
        self.services.storage().dir(app)
    }

    // --- operations

    /// Adds an app and runs its first deploy. A first deploy that fails leaves nothing.
    pub async fn create(&self, op: &Op, new: NewApp) -> Result<(AppRecord, Deployed), AppError> {
        let registry_auth = match (new.registry_username, new.registry_password) {
            (Some(username), Some(password)) => Some(RegistryCredentials {
                username,
                password,
                registry: Some(new.image.registry().to_owned()),
            }),
            (None, None) => None,
            _ => {
                return Err(AppError::Invalid(
                    "give both registry_username and registry_password, or neither".into(),
                ))
            }
        };
        if let Some(memory) = new.memory_mb {
            check_range("the memory limit", memory, &MEMORY_RANGE_MB, " MB")?;
        }
        if let Some(pids) = new.pids_limit {
            check_range("the pids limit", pids, &PIDS_RANGE, " processes")?;
        }
        if let Some(shares) = new.cpu_shares {
            check_range("the CPU shares", shares, &CPU_SHARES_RANGE, "")?;
        }
        super::env::check_admin_env(&new.env).map_err(AppError::Invalid)?;
        // Every domain is checked before anything runs.
        let config = &self.ctx.config;
        for domain in &new.domains {
            hosts::check_custom_domain(domain, &config.domain, &config.admin_host())
                .map_err(AppError::Invalid)?;
        }
        let name = match new.name {
            Some(n) => n,
            None => {
                let auth = pull_auth(registry_auth.as_ref(), &new.image, &new.image);
                self.image_manifest(&new.image, auth.as_ref()).await?.name
            }
        };
        let lock = self.lock(&name, Operation::Create).await?;
        let before = BeforeFirstDeploy {
            had_accounts: !self.ctx.store.services(&name)?.is_empty(),
            had_storage: self.storage_dir(&name).exists(),
        };
        if self.ctx.store.app(&name)?.is_some() {
            return Err(AppError::Exists(name.to_string()));
        }
        let record = AppRecord {
            name: name.clone(),
            image: new.image.clone(),
            registry_auth,
            env: new.env,
            env_before: None,
            domains: BTreeSet::new(),
            memory_mb: new.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
            pids_limit: new.pids_limit,
            cpu_shares: new.cpu_shares,
            webhook_secret: new_webhook_secret(),
            stopped: false,
            current: None,
            created_at: now(),
            added_services: new.added_services,
        };
        let host = HostPattern::Exact(self.default_host(&name));
        self.ctx
            .claim_hosts(&[host], &Owner::App(name.clone()), || {
                self.ctx.store.put_app(&record).map_err(AppError::from)
            })?;
        let source = Source::Pull {
            image: new.image,
            force: false,
        };
        let deployed = self
            .spawn_deploy(
                lock,
                op,
                &name,
                source,
                Trigger::Create,
                Undo::FirstDeploy(before),
            )
            .await?;
        for domain in &new.domains {
            self.add_domain(op, &name, domain).await?;
        }
        Ok((self.app_record(&name)?, deployed))
    }

    /// What an image's manifest declares (name, port, needs, runners, health), read from the
    /// image without running it: the preview before adding an app. Pulls the image.
    pub async fn preview(&self, image: &ImageRef) -> Result<Manifest, AppError> {
        self.image_manifest(image, None).await
    }

    async fn image_manifest(
        &self,
        image: &ImageRef,
        auth: Option<&RegistryAuth>,
    ) -> Result<Manifest, AppError> {
        let docker = self.docker().await?;
        docker.pull(image, auth, |_| {}).await?;
        let (file, text) = match docker.read_manifest(image).await {
            // Another app's prune took it since the pull.
            Err(DockerError::ImageMissing { .. }) => {
                docker.pull(image, auth, |_| {}).await?;
                docker.read_manifest(image).await?
            }
            other => other?,
        };
        Ok(crate::model::manifest::parse(&file, &text)?)
    }

    /// Deploys the requested image (or the app's own reference again). A registry's webhook
    /// deploys as [`Trigger::Webhook`], everyone else as [`Trigger::Api`].
    pub async fn deploy(
        &self,
        op: &Op,
        name: &AppName,
        request: DeployRequest,
    ) -> Result<Deployed, AppError> {
        let lock = self.lock(name, Operation::Deploy).await?;
        let record = self.running_record(name)?;
        // The app's own reference changes only when a deploy of the new one succeeds.
        let source = Source::Pull {
            image: request.image.unwrap_or(record.image),
            force: request.force,
        };
        let trigger = match op.actor {
            Actor::Webhook(_) => Trigger::Webhook,
            _ => Trigger::Api,
        };
        let deployed = self
            .spawn_deploy(lock, op, name, source, trigger, Undo::Nothing)
            .await?;
        self.give_up_pending_restore(name);
        Ok(deployed)
    }

    /// Runs an earlier revision's image again as a new revision (the default: the last
    /// successful revision before the serving one).
    pub async fn rollback(
        &self,
        op: &Op,
        name: &AppName,
        to: Option<u64>,
    ) -> Result<Deployed, AppError> {
        let lock = self.lock(name, Operation::Rollback).await?;
        let record = self.running_record(name)?;
        let deploys = self.ctx.store.deploys(name)?;
        let target = match to {
            Some(rev) => {
                let served = |d: &&DeployRecord| d.outcome == DeployOutcome::Succeeded;
                let found = deploys.iter().find(|d| d.revision == rev);
                match found {
                    Some(d) if served(&d) => d,
                    _ => {
                        let can: Vec<String> = deploys
                            .iter()
                            .filter(served)
                            .map(|d| d.revision.to_string())
                            .collect();
                        let why = match found {
                            Some(_) => format!("revision {rev} of {name} never served"),
                            None => format!("{name} has no revision {rev}"),
                        };
                        return Err(AppError::Invalid(format!(
                            "{why}; it can roll back to revision {}",
                            can.join(", ")
                        )));
                    }
                }
            }
            None => {
                let current = record.current.unwrap_or(u64::MAX);
                let current_digest = deploys
                    .iter()
                    .find(|d| d.revision == current)
                    .map(|d| d.digest.clone());
                deploys
                    .iter()
                    .rev()
                    .filter(|d| d.revision < current && d.outcome == DeployOutcome::Succeeded)
                    .find(|d| Some(&d.digest) != current_digest.as_ref())
                    .ok_or_else(|| {
                        AppError::Invalid(format!(
                            "{name} has no earlier successful revision with another image to roll back to"
                        ))
                    })?
            }
        };
        let trigger = Trigger::Rollback {
            to: target.revision,
        };
        let source = Source::Revision {
            revision: target.revision,
        };
        self.spawn_deploy(lock, op, name, source, trigger, Undo::Nothing)
            .await
    }

    /// Replaces the serving revision's containers with fresh ones, without downtime.
    pub async fn restart(&self, op: &Op, name: &AppName) -> Result<Deployed, AppError> {
        let lock = self.lock(name, Operation::Restart).await?;
        self.running_record(name)?;
        let revision = self.current_revision(name)?;
        let source = Source::Revision { revision };
        let deployed = self
            .spawn_deploy(lock, op, name, source, Trigger::Restart, Undo::Nothing)
            .await?;
        self.give_up_pending_restore(name);
        Ok(deployed)
    }

    /// Stops serving and stops the containers; they stay for `start` and their logs.
    pub async fn stop(&self, op: &Op, name: &AppName) -> Result<(), AppError> {
        let _lock = self.lock(name, Operation::Stop).await?;
        let mut record = self.app_record(name)?;
        record.stopped = true;
        self.ctx.store.put_app(&record)?;
        self.stop_serving(op, &record).await?;
        self.ctx
            .bus
            .send(op, EventKind::Stopped { app: name.clone() });
        Ok(())
    }

    /// Takes an app out of service for `operation` (a restore) and keeps it locked until
    /// [`Apps::bring_back`]: no route (its hosts answer a 503 page saying `why`), containers
    /// stopped, the record unchanged (a restart of minicloud meanwhile serves it again).
    pub async fn take_down(
        &self,
        op: &Op,
        name: &AppName,
        operation: Operation,
        why: String,
    ) -> Result<TakenDown, AppError> {
        let lock = self.lock(name, operation).await?;
        let record = self.app_record(name)?;
        // Marked before the route goes, so the page never says "failing" meanwhile.
        self.ctx.set_maintenance(name, Some(why))?;
        if let Err(e) = self.stop_serving(op, &record).await {
            self.ctx.set_maintenance(name, None)?;
            return Err(e);
        }
        Ok(TakenDown {
            lock,
            name: name.clone(),
        })
    }

    /// Serves an app taken down again (fresh containers of its serving revision), unless the
    /// admin had stopped it; frees its lock.
    pub async fn bring_back(&self, op: &Op, down: TakenDown) -> Result<(), AppError> {
        self.ctx.set_maintenance(&down.name, None)?;
        let record = self.app_record(&down.name)?;
        if record.stopped || record.current.is_none() {
            return Ok(());
        }
        let source = Source::Revision {
            revision: self.current_revision(&down.name)?,
        };
        self.spawn_deploy(
            down.lock,
            op,
            &down.name,
            source,
            Trigger::Restart,
            Undo::Nothing,
        )
        .await
        .map(drop)
    }

    /// Leaves an app taken down out of service (a whole-box restore that could not bring its
    /// data back): its hosts answer the "not running" page; its lock is freed.
    pub fn leave_down(&self, down: TakenDown) -> Result<(), AppError> {
        self.ctx.set_maintenance(&down.name, None)?;
        Ok(())
    }

    /// A person served the app by hand: the data a whole-box restore still owed it is given
    /// up, or the next start would restore it over what the app writes from now on.
    fn give_up_pending_restore(&self, name: &AppName) {
        match self.ctx.store.delete_pending_restore(name) {
            Ok(true) => {
                tracing::info!(app = %name, "served by hand: its pending restore is given up")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(app = %name, error = %e, "cannot clear the pending restore"),
        }
    }

    async fn stop_serving(&self, op: &Op, record: &AppRecord) -> Result<(), AppError> {
        let name = &record.name;
        self.route_app(op, record, None)?;
        let docker = self.docker().await?;
        for c in docker.list_managed().await? {
            // A retiring container is being stopped and removed already.
            let mine = c.managed.as_ref().is_some_and(|l| l.app == *name);
            if mine && !self.retirements.is_claimed(name, &c.id) {
                match docker.stop(&c.name, STOP_TIMEOUT).await {
                    // Retired and removed since the list was taken: as stopped as it gets.
                    Ok(()) | Err(DockerError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Starts a stopped app again: its serving revision, with fresh containers.
    pub async fn start(&self, op: &Op, name: &AppName) -> Result<Deployed, AppError> {
        let lock = self.lock(name, Operation::Start).await?;
        let mut record = self.app_record(name)?;
        let revision = self.current_revision(name)?;
        record.stopped = false;
        self.ctx.store.put_app(&record)?;
        let source = Source::Revision { revision };
        let deployed = self
            .spawn_deploy(lock, op, name, source, Trigger::Start, Undo::Nothing)
            .await?;
        self.give_up_pending_restore(name);
        Ok(deployed)
    }

    /// Sets and unsets variables, then redeploys the serving revision with them. A change
    /// that changes nothing deploys nothing.
    pub async fn set_env(
        &self,
        op: &Op,
        name: &AppName,
        change: EnvChange,
    ) -> Result<Option<Deployed>, AppError> {
        super::env::check_admin_env(&change.set).map_err(AppError::Invalid)?;
        for pattern in &change.unset {
            super::env::check_unset(pattern).map_err(AppError::Invalid)?;
        }
        let lock = self.lock(name, Operation::EnvChange).await?;
        let mut record = self.app_record(name)?;
        let before = record.env.clone();
        record.env.extend(change.set);
        for pattern in &change.unset {
            record
                .env
                .retain(|key, _| !super::env::unset_matches(pattern, key));
        }
        if record.env == before {
            return Ok(None);
        }
        super::env::check_admin_env(&record.env).map_err(AppError::Invalid)?;
        match record.current {
            Some(revision) if !record.stopped => {
                // Stored with the change: a redeploy that fails puts it back (`spawn_deploy`),
                // and so does start-up reconcile after a crash mid-way.
                record.env_before.get_or_insert(before);
                self.ctx.store.put_app(&record)?;
                let source = Source::Revision { revision };
                self.spawn_deploy(lock, op, name, source, Trigger::EnvChange, Undo::Nothing)
                    .await
                    .map(Some)
            }
            // A stopped app gets the variables when it starts.
            _ => {
                self.ctx.store.put_app(&record)?;
                Ok(None)
            }
        }
    }

    pub async fn add_domain(
        &self,
        op: &Op,
        name: &AppName,
        domain: &str,
    ) -> Result<AppRecord, AppError> {
        let config = &self.ctx.config;
        let host = hosts::check_custom_domain(domain, &config.domain, &config.admin_host())
            .map_err(AppError::Invalid)?;
        let _lock = self.lock(name, Operation::DomainChange).await?;
        let mut record = self.app_record(name)?;
        if record.domains.contains(&host) {
            return Ok(record);
        }
        record.domains.insert(host.clone());
        let claimant = Owner::Domain(name.clone());
        self.ctx
            .claim_hosts(&[HostPattern::Exact(host)], &claimant, || {
                self.ctx.store.put_app(&record).map_err(AppError::from)
            })?;
        self.ctx.routes_changed(op);
        Ok(record)
    }

    pub async fn remove_domain(
        &self,
        op: &Op,
        name: &AppName,
        domain: &str,
    ) -> Result<AppRecord, AppError> {
        let host = Hostname::parse(domain).map_err(|e| AppError::Invalid(e.to_string()))?;
        let _lock = self.lock(name, Operation::DomainChange).await?;
        let mut record = self.app_record(name)?;
        if !record.domains.remove(&host) {
            return Err(AppError::Invalid(format!("{name} has no domain {host}")));
        }
        self.ctx.store.put_app(&record)?;
        self.ctx.publish_routes()?;
        self.ctx.routes_changed(op);
        Ok(record)
    }

    /// Removes the app's routes, containers, images (those no other app keeps) and record;
    /// with `with_data`, also its database, vhost, their users and its storage. The data goes
    /// before the record, so a removal that fails there (MariaDB down) says what it kept and
    /// can be asked for again.
    pub async fn remove(&self, op: &Op, name: &AppName, with_data: bool) -> Result<(), AppError> {
        let _lock = self.lock(name, Operation::Remove).await?;
        let record = self.app_record(name)?;
        self.route_app(op, &record, None)?;
        self.retirements.supersede(name).await;
        self.remove_all(name).await;
        if with_data {
            // Marked stopped first: if removing the data fails half-way, a restart of
            // minicloud does not bring the app back up without it.
            self.ctx.store.put_app(&AppRecord {
                stopped: true,
                ..record
            })?;
            let removal = self.services.remove(name).await;
            if !removal.kept.is_empty() {
                let app = name.clone();
                return Err(super::error::PartlyRemoved { app, removal }.into());
            }
        }
        // Its containers are gone; its history still names its images.
        if let Ok(docker) = self.docker().await {
            super::prune::prune_removed_app_images(&self.ctx.store, &docker, name).await;
        }
        self.ctx.store.delete_app(name)?;
        self.ctx.publish_routes()?;
        self.ctx
            .bus
            .send(op, EventKind::Removed { app: name.clone() });
        Ok(())
    }

    /// New credentials for the app's database and message bus, then a redeploy of the
    /// serving revision with them. Connections the old revision already holds keep working
    /// until it is drained; new ones need the new password.
    pub async fn rotate_credentials(&self, op: &Op, name: &AppName) -> Result<Deployed, AppError> {
        let lock = self.lock(name, Operation::RotateCredentials).await?;
        let record = self.running_record(name)?;
        let revision = self.current_revision(name)?;
        let (deploy, manifest) = self.revision(name, revision)?;
        if !manifest
            .needs
            .iter()
            .any(|n| matches!(n, Need::Database | Need::Messagebus))
        {
            return Err(AppError::Invalid(format!(
                "{name} has no service accounts (no database, no message bus) to rotate"
            )));
        }
        if let Err(e) = self.services.rotate(name, &manifest.needs).await {
            let reason = format!("rotating the credentials failed: {e}");
            self.record_failed_attempt(&record, &deploy, Trigger::CredentialRotation, &reason)?;
            return Err(e.into());
        }
        let source = Source::Revision { revision };
        self.spawn_deploy(
            lock,
            op,
            name,
            source,
            Trigger::CredentialRotation,
            Undo::Nothing,
        )
        .await
    }

    /// A new webhook secret: the old webhook URL answers 404 from now on. Returns the record
    /// with the new secret (see [`Apps::webhook_url`]).
    pub async fn rotate_webhook(&self, _op: &Op, name: &AppName) -> Result<AppRecord, AppError> {
        let _lock = self.lock(name, Operation::RotateWebhook).await?;
        let mut record = self.app_record(name)?;
        record.webhook_secret = new_webhook_secret();
        self.ctx.store.put_app(&record)?;
        tracing::info!(app = %name, "webhook secret rotated");
        Ok(record)
    }

    /// Makes every app's MariaDB account agree with the store again (`ensure`), which revokes
    /// the wide grants of versions before the escaping. Run once at start; an app busy with
    /// another operation is skipped (its deploy ensures the same). Returns how many were done.
    pub async fn narrow_database_grants(&self) -> Result<usize, AppError> {
        let Some(db) = self.services.mariadb() else {
            return Ok(0);
        };
        let mut done = 0;
        for app in self.ctx.store.apps()? {
            if self
                .ctx
                .store
                .service(&app.name, ServiceKind::Mariadb)?
                .is_none()
            {
                continue;
            }
            let Ok(_lock) = self.try_lock(&app.name, Operation::Reconcile) else {
                continue;
            };
            match db.ensure(&app.name).await {
                Ok(_) => done += 1,
                Err(e) => {
                    tracing::warn!(app = %app.name, error = %e, "cannot narrow the app's database grant; its next deploy tries again")
                }
            }
        }
        Ok(done)
    }

    /// The app's service accounts; passwords masked unless `reveal`.
    pub fn service_accounts(
        &self,
        name: &AppName,
        reveal: bool,
    ) -> Result<Vec<ServiceView>, AppError> {
        self.app_record(name)?;
        Ok(self.services.view(name, reveal)?)
    }

    /// A recorded revision and its manifest, parsed again from the stored text, with the
    /// services the admin added among its needs.
    pub(super) fn revision(
        &self,
        app: &AppName,
        revision: u64,
    ) -> Result<(DeployRecord, crate::model::manifest::Manifest), AppError> {
        let deploy = self
            .ctx
            .store
            .deploy(app, revision)?
            .ok_or_else(|| AppError::Invalid(format!("{app} has no revision {revision}")))?;
        let mut manifest =
            crate::model::manifest::parse(&deploy.manifest_file, &deploy.manifest_text)?;
        if let Some(record) = self.ctx.store.app(app)? {
            manifest.needs.extend(&record.added_services);
        }
        Ok((deploy, manifest))
    }

    /// The app's history, newest first.
    pub fn deploys(&self, name: &AppName) -> Result<Vec<DeployRecord>, AppError> {
        self.app_record(name)?;
        let mut deploys = self.ctx.store.deploys(name)?;
        deploys.reverse();
        Ok(deploys)
    }

    /// The app's record, refused when the app is stopped: a stopped app stays stopped until
    /// `start`, whatever asks to deploy it (a person, a rollback, a registry's webhook).
    fn running_record(&self, name: &AppName) -> Result<AppRecord, AppError> {
        let record = self.app_record(name)?;
        match record.stopped {
            true => Err(AppError::Stopped(name.clone())),
            false => Ok(record),
        }
    }

    fn current_revision(&self, name: &AppName) -> Result<u64, AppError> {
        self.app_record(name)?
            .current
            .ok_or_else(|| AppError::Invalid(format!("{name} has no running revision yet")))
    }

    /// The web container's name of the serving revision.
    pub fn serving_container(&self, record: &AppRecord) -> Option<String> {
        record.current.map(|rev| web_container(&record.name, rev))
    }
}

/// A limit a person chose, checked against its range; `what` names it for every face (no
/// field or flag name), `unit` follows the numbers.
fn check_range(
    what: &str,
    value: u64,
    range: &std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<(), AppError> {
    if range.contains(&value) {
        Ok(())
    } else {
        // Worded for every face: `--memory` in the CLI, `memory_mb` in the API.
        Err(AppError::Invalid(format!(
            "{what} must be between {} and {}{unit}",
            range.start(),
            range.end()
        )))
    }
}

/// 192 random bits, hex: the secret in an app's webhook URL.
fn new_webhook_secret() -> Secret {
    let mut secret = [0u8; 24];
    rand::rng().fill_bytes(&mut secret);
    Secret::new(hex::encode(secret))
}
