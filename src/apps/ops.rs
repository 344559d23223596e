//! The app operations the API, UI and CLI call: create, deploy, roll back, restart, stop,
//! start, env, domains, remove, status. One operation per app at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minicloud_proxy::{HostPattern, Hostname, Upstream};
use rand::RngCore;
use tokio::sync::OwnedMutexGuard;

use super::deploy::{web_container, Deployed, Source};
use super::error::AppError;
use super::events::Events;
use super::retire::{Retirements, STOP_TIMEOUT};
use crate::docker::{Docker, DockerError};
use crate::model::image_ref::ImageRef;
use crate::model::name::AppName;
use crate::model::now;
use crate::model::secret::Secret;
use crate::plane::Plane;
use crate::services::Services;
use crate::store::{AppRecord, DeployOutcome, DeployRecord, RegistryCredentials, StoreError};

/// Default memory limit of an app's containers.
pub const DEFAULT_MEMORY_MB: u64 = 256;

/// Settings of the app lifecycle.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// How long a new revision may take to answer its health probe.
    pub health_timeout: Duration,
}

/// The app lifecycle owner. Cheap to clone.
#[derive(Clone)]
pub struct Apps {
    pub(super) plane: Plane,
    pub(super) settings: AppSettings,
    pub events: Events,
    /// The provisioners: database, message bus, storage.
    pub services: Services,
    /// Old revisions being drained and removed after a deploy (see `retire`).
    pub retirements: Retirements,
    /// Labels this minicloud's containers (see `docker::labels::INSTANCE`).
    instance: Arc<str>,
    /// Set by the first connect that succeeds; a failed one leaves it empty for the next call.
    docker: Arc<tokio::sync::OnceCell<Docker>>,
    locks: Arc<Mutex<HashMap<AppName, Slot>>>,
}

/// One app's operation lock, and the operation holding it (for "busy" messages).
type Slot = (Arc<tokio::sync::Mutex<()>>, String);

/// Held while an operation runs on one app.
pub struct AppLock {
    _guard: OwnedMutexGuard<()>,
}

/// What existed of an app's name before its first deploy, so a failed one removes only what
/// it made itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct BeforeFirstDeploy {
    had_accounts: bool,
    had_storage: bool,
}

/// What a person asks for when adding an app.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub image: ImageRef,
    pub name: Option<AppName>,
    pub registry_auth: Option<RegistryCredentials>,
    pub env: BTreeMap<String, String>,
    pub memory_mb: Option<u64>,
}

impl Apps {
    pub fn new(plane: Plane, settings: AppSettings) -> Result<Self, StoreError> {
        let instance = plane.store.instance_id()?.into();
        Ok(Self {
            services: Services::new(&plane.config, plane.store.clone()),
            plane,
            settings,
            events: Events::default(),
            retirements: Retirements::default(),
            instance,
            docker: Arc::default(),
            locks: Arc::default(),
        })
    }

    /// The engine handle, connecting on first use; an unreachable engine is an error for
    /// this operation and is tried again by the next.
    /// Once connected, no lock is taken; callers that arrive during a connect wait for it.
    pub async fn docker(&self) -> Result<Docker, DockerError> {
        self.docker
            .get_or_try_init(|| async {
                let docker = Docker::connect().await?.with_instance(&*self.instance);
                docker
                    .ensure_network(crate::docker::DEFAULT_NETWORK)
                    .await?;
                Ok(docker)
            })
            .await
            .cloned()
    }

    /// Takes the app's lock, or says what holds it.
    pub fn lock(&self, app: &AppName, operation: &str) -> Result<AppLock, AppError> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        let entry = locks
            .entry(app.clone())
            .or_insert_with(|| (Arc::default(), String::new()));
        match Arc::clone(&entry.0).try_lock_owned() {
            Ok(guard) => {
                entry.1 = operation.to_owned();
                Ok(AppLock { _guard: guard })
            }
            Err(_) => Err(AppError::Busy {
                app: app.to_string(),
                operation: entry.1.clone(),
            }),
        }
    }

    /// Whether an operation is running on `app`, and which.
    pub fn busy(&self, app: &AppName) -> Option<String> {
        let locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        let (mutex, operation) = locks.get(app)?;
        let held = mutex.try_lock().is_err();
        held.then(|| operation.clone())
    }

    pub fn app_record(&self, name: &AppName) -> Result<AppRecord, AppError> {
        self.plane
            .store
            .app(name)?
            .ok_or_else(|| AppError::NotFound(name.to_string()))
    }

    /// `<app>.<domain>`.
    pub fn default_host(&self, app: &AppName) -> Hostname {
        self.plane
            .config
            .domain
            .child(app.as_str())
            .expect("a valid app name under a valid domain is a valid host")
    }

    pub fn app_url(&self, app: &AppName) -> String {
        self.plane.config.https_url(&self.default_host(app))
    }

    /// Every host an app answers at.
    pub fn hosts(&self, record: &AppRecord) -> Vec<Hostname> {
        std::iter::once(self.default_host(&record.name))
            .chain(record.domains.iter().cloned())
            .collect()
    }

    /// Points all of an app's hosts at `upstream` (or removes them), in one snapshot.
    pub(super) fn route_app(
        &self,
        record: &AppRecord,
        upstream: Option<Upstream>,
    ) -> Result<(), AppError> {
        let hosts = self.hosts(record);
        self.plane.edge.update(|draft| {
            for host in hosts {
                let pattern = HostPattern::Exact(host);
                match upstream {
                    Some(up) => draft.set_route(pattern, up),
                    None => draft.remove_route(&pattern),
                };
            }
        });
        if upstream.is_some() {
            // New hosts may need a CA certificate.
            self.plane.certs.hosts_changed();
        }
        Ok(())
    }

    /// Where the app's web container currently gets traffic, read back from the edge.
    pub fn serving_upstream(&self, app: &AppName) -> Option<Upstream> {
        self.plane
            .edge
            .routes()
            .get(&HostPattern::Exact(self.default_host(app)))
            .copied()
    }

    pub(super) fn ensure_storage(&self, app: &AppName) -> Result<PathBuf, AppError> {
        Ok(self.services.storage().ensure_dir(app)?)
    }

    pub fn storage_dir(&self, app: &AppName) -> PathBuf {
        self.services.storage().dir(app)
    }

    // --- operations

    /// Adds an app and runs its first deploy. A first deploy that fails leaves nothing.
    pub async fn create(&self, new: NewApp) -> Result<(AppRecord, Deployed), AppError> {
        let name = match new.name {
            Some(n) => n,
            None => self.name_from_image(&new.image).await?,
        };
        for key in new.env.keys() {
            super::env::check_admin_var(key).map_err(AppError::Invalid)?;
        }
        let lock = self.lock(&name, "the first deploy")?;
        let before = BeforeFirstDeploy {
            had_accounts: !self.plane.store.services(&name)?.is_empty(),
            had_storage: self.storage_dir(&name).exists(),
        };
        if self.plane.store.app(&name)?.is_some() {
            return Err(AppError::Exists(name.to_string()));
        }
        self.check_hosts_free(&name, &[self.default_host(&name)])?;
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut secret);
        let record = AppRecord {
            name: name.clone(),
            image: new.image.clone(),
            registry_auth: new.registry_auth,
            env: new.env,
            domains: BTreeSet::new(),
            memory_mb: new.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
            webhook_secret: Secret::new(hex::encode(secret)),
            stopped: false,
            current: None,
            created_at: now(),
        };
        self.plane.store.put_app(&record)?;
        let source = Source::Pull {
            image: new.image,
            force: false,
        };
        let deployed = self
            .spawn_deploy(lock, &name, source, "create", Some(before))
            .await?;
        Ok((self.app_record(&name)?, deployed))
    }

    /// The name an image's manifest declares, for `apps add IMAGE` without a name.
    async fn name_from_image(&self, image: &ImageRef) -> Result<AppName, AppError> {
        let docker = self.docker().await?;
        docker.pull(image, None, |_| {}).await?;
        let (file, text) = docker.read_manifest(image).await?;
        let manifest = crate::model::manifest::parse(&file, &text)?;
        Ok(manifest.name)
    }

    /// Deploys `image` (or the app's own reference again).
    pub async fn deploy(
        &self,
        name: &AppName,
        image: Option<ImageRef>,
        force: bool,
        trigger: &str,
    ) -> Result<Deployed, AppError> {
        let lock = self.lock(name, "a deploy")?;
        let record = self.app_record(name)?;
        // The app's own reference changes only when a deploy of the new one succeeds.
        let source = Source::Pull {
            image: image.unwrap_or(record.image),
            force,
        };
        self.spawn_deploy(lock, name, source, trigger, None).await
    }

    /// Runs an earlier revision's image again as a new revision (the default: the last
    /// successful revision before the serving one).
    pub async fn rollback(&self, name: &AppName, to: Option<u64>) -> Result<Deployed, AppError> {
        let lock = self.lock(name, "a rollback")?;
        let record = self.app_record(name)?;
        let deploys = self.plane.store.deploys(name)?;
        let target = match to {
            Some(rev) => deploys
                .iter()
                .find(|d| d.revision == rev)
                .ok_or_else(|| AppError::Invalid(format!("{name} has no revision {rev}")))?,
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
        let trigger = format!("rollback to revision {}", target.revision);
        let source = Source::Revision {
            revision: target.revision,
        };
        self.spawn_deploy(lock, name, source, &trigger, None).await
    }

    /// Replaces the serving revision's containers with fresh ones, without downtime.
    pub async fn restart(&self, name: &AppName) -> Result<Deployed, AppError> {
        let lock = self.lock(name, "a restart")?;
        let revision = self.current_revision(name)?;
        self.spawn_deploy(lock, name, Source::Revision { revision }, "restart", None)
            .await
    }

    /// Stops serving and stops the containers; they stay for `start` and their logs.
    pub async fn stop(&self, name: &AppName) -> Result<(), AppError> {
        let _lock = self.lock(name, "a stop")?;
        let mut record = self.app_record(name)?;
        record.stopped = true;
        self.plane.store.put_app(&record)?;
        self.route_app(&record, None)?;
        let docker = self.docker().await?;
        for c in docker.list_managed().await? {
            // A retiring container is being stopped and removed already.
            let mine = c.managed.as_ref().is_some_and(|l| l.app == *name);
            if mine && !self.retirements.is_claimed(name, &c.id) {
                docker.stop(&c.name, STOP_TIMEOUT).await?;
            }
        }
        Ok(())
    }

    /// Starts a stopped app again: its serving revision, with fresh containers.
    pub async fn start(&self, name: &AppName) -> Result<Deployed, AppError> {
        let lock = self.lock(name, "a start")?;
        let mut record = self.app_record(name)?;
        let revision = self.current_revision(name)?;
        record.stopped = false;
        self.plane.store.put_app(&record)?;
        self.spawn_deploy(lock, name, Source::Revision { revision }, "start", None)
            .await
    }

    /// Sets and unsets variables, then redeploys the serving revision with them.
    pub async fn set_env(
        &self,
        name: &AppName,
        set: BTreeMap<String, String>,
        unset: Vec<String>,
    ) -> Result<Option<Deployed>, AppError> {
        for key in set.keys() {
            super::env::check_admin_var(key).map_err(AppError::Invalid)?;
        }
        let lock = self.lock(name, "an environment change")?;
        let mut record = self.app_record(name)?;
        let before = record.env.clone();
        record.env.extend(set);
        for key in unset {
            record.env.remove(&key);
        }
        if record.env == before {
            return Ok(None);
        }
        self.plane.store.put_app(&record)?;
        match record.current {
            Some(revision) if !record.stopped => {
                let source = Source::Revision { revision };
                self.spawn_deploy(lock, name, source, "environment change", None)
                    .await
                    .map(Some)
            }
            _ => Ok(None),
        }
    }

    pub async fn add_domain(&self, name: &AppName, domain: &str) -> Result<AppRecord, AppError> {
        let host = Hostname::parse(domain).map_err(|e| AppError::Invalid(e.to_string()))?;
        let _lock = self.lock(name, "a domain change")?;
        let mut record = self.app_record(name)?;
        if record.domains.contains(&host) || host == self.default_host(name) {
            return Ok(record);
        }
        self.check_hosts_free(name, std::slice::from_ref(&host))?;
        record.domains.insert(host.clone());
        self.plane.store.put_app(&record)?;
        if let (Some(up), false) = (self.serving_upstream(name), record.stopped) {
            self.plane
                .edge
                .update(|d| d.set_route(HostPattern::Exact(host), up));
            self.plane.certs.hosts_changed();
        }
        Ok(record)
    }

    pub async fn remove_domain(&self, name: &AppName, domain: &str) -> Result<AppRecord, AppError> {
        let host = Hostname::parse(domain).map_err(|e| AppError::Invalid(e.to_string()))?;
        let _lock = self.lock(name, "a domain change")?;
        let mut record = self.app_record(name)?;
        if !record.domains.remove(&host) {
            return Err(AppError::Invalid(format!("{name} has no domain {host}")));
        }
        self.plane.store.put_app(&record)?;
        self.plane
            .edge
            .update(|d| d.remove_route(&HostPattern::Exact(host)));
        Ok(record)
    }

    /// Removes the app's routes, containers and record; with `with_data`, also its database,
    /// vhost, their users and its storage. The data goes before the record, so a removal that
    /// fails there (MariaDB down) can be asked for again.
    pub async fn remove(&self, name: &AppName, with_data: bool) -> Result<(), AppError> {
        let _lock = self.lock(name, "a removal")?;
        let record = self.app_record(name)?;
        self.route_app(&record, None)?;
        self.retirements.supersede(name).await;
        self.remove_containers(name, |_| true).await;
        if with_data {
            // Marked stopped first: if removing the data fails half-way, a restart of
            // minicloud does not bring the app back up without it.
            self.plane.store.put_app(&AppRecord {
                stopped: true,
                ..record
            })?;
            self.services.remove(name).await?;
        }
        self.plane.store.delete_app(name)?;
        Ok(())
    }

    /// New credentials for the app's database and message bus, then a redeploy of the
    /// serving revision with them. Connections the old revision already holds keep working
    /// until it is drained; new ones need the new password.
    pub async fn rotate_credentials(&self, name: &AppName) -> Result<Deployed, AppError> {
        let lock = self.lock(name, "a credential rotation")?;
        let revision = self.current_revision(name)?;
        let (_, manifest) = self.revision(name, revision)?;
        self.services.rotate(name, &manifest.needs).await?;
        let source = Source::Revision { revision };
        self.spawn_deploy(lock, name, source, "credential rotation", None)
            .await
    }

    /// A recorded revision and its manifest, parsed again from the stored text.
    pub(super) fn revision(
        &self,
        app: &AppName,
        revision: u64,
    ) -> Result<(DeployRecord, crate::model::manifest::Manifest), AppError> {
        let deploy = self
            .plane
            .store
            .deploy(app, revision)?
            .ok_or_else(|| AppError::Invalid(format!("{app} has no revision {revision}")))?;
        let manifest = crate::model::manifest::parse(&deploy.manifest_file, &deploy.manifest_text)?;
        Ok((deploy, manifest))
    }

    pub fn deploys(&self, name: &AppName) -> Result<Vec<DeployRecord>, AppError> {
        self.app_record(name)?;
        Ok(self.plane.store.deploys(name)?)
    }

    fn current_revision(&self, name: &AppName) -> Result<u64, AppError> {
        self.app_record(name)?
            .current
            .ok_or_else(|| AppError::Invalid(format!("{name} has no running revision yet")))
    }

    /// Refuses hosts that another app, an external route or the admin UI already uses.
    fn check_hosts_free(&self, app: &AppName, hosts: &[Hostname]) -> Result<(), AppError> {
        let admin = self.plane.config.admin_host();
        let external = self.plane.store.routes()?;
        let apps = self.plane.store.apps()?;
        for host in hosts {
            if *host == admin {
                return Err(AppError::HostTaken {
                    host: host.to_string(),
                    owner: "the admin UI".into(),
                });
            }
            if external
                .iter()
                .any(|r| r.host == HostPattern::Exact(host.clone()))
            {
                return Err(AppError::HostTaken {
                    host: host.to_string(),
                    owner: "an external route".into(),
                });
            }
            if let Some(other) = apps
                .iter()
                .find(|a| &a.name != app && self.hosts(a).contains(host))
            {
                return Err(AppError::HostTaken {
                    host: host.to_string(),
                    owner: format!("app {}", other.name),
                });
            }
        }
        Ok(())
    }

    /// Runs a deploy on its own task, which owns the app's lock: a client that disconnects
    /// can neither cancel a deploy halfway nor let a second operation start beside it.
    /// `first` marks an app's first deploy, whose failure removes the app again.
    async fn spawn_deploy(
        &self,
        lock: AppLock,
        name: &AppName,
        source: Source,
        trigger: &str,
        first: Option<BeforeFirstDeploy>,
    ) -> Result<Deployed, AppError> {
        let this = self.clone();
        let name = name.clone();
        let trigger = trigger.to_owned();
        tokio::spawn(async move {
            let _lock = lock;
            let result = this.run_deploy(&name, source, &trigger).await;
            if let (Err(_), Some(before)) = (&result, first) {
                // Nothing of a failed first deploy stays: no record, history or container,
                // and no account or directory this attempt made. What an earlier app of the
                // same name left on purpose (removed without its data) stays.
                this.remove_containers(&name, |_| true).await;
                if !before.had_accounts {
                    if let Err(e) = this.services.remove_accounts(&name).await {
                        tracing::warn!(app = %name, error = %e, "cannot remove the accounts of a failed first deploy");
                    }
                }
                if !before.had_storage {
                    if let Err(e) = this.services.storage().remove_dir(&name).await {
                        tracing::warn!(app = %name, error = %e, "cannot remove the storage of a failed first deploy");
                    }
                }
                this.plane.store.delete_app(&name)?;
            }
            result
        })
        .await
        .unwrap_or_else(|e| Err(AppError::DeployFailed(format!("the deploy task died: {e}"))))
    }

    /// The web container's name of the serving revision.
    pub fn serving_container(&self, record: &AppRecord) -> Option<String> {
        record.current.map(|rev| web_container(&record.name, rev))
    }
}
