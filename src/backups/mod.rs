//! Backups: each app's database, queue definitions, storage and record into one
//! restic-format repository (`<data-dir>/backups`), copied to an S3 bucket when one is
//! configured, restored into the same app or a clone on request, downloaded as one
//! `.tar.zst`, verified in a scratch database, daily on a schedule with a retention policy.
//!
//! Owns: runs and their honest status (a run succeeds only once every destination confirmed
//! every snapshot of it; it is partial when the local repository did and S3 did not; a
//! failed run's snapshots are forgotten at once; a daily slot minicloud was down for is
//! recorded as missed), restores, verifications, the repository password (made once, kept
//! in the store; the S3 repository has the same). Does not own: the app lifecycle (`apps`
//! makes a clone, takes an app down and brings it back), the accounts (`services`).
//!
//! The S3 copy is `restic copy` of the run's local snapshots, not a second backup: the
//! database is dumped once (both destinations hold the same transaction, and MariaDB is read
//! once), the S3 repository is made with the local one's chunker parameters so the copy
//! deduplicates as well, and restores always read the local repository.
//!
//! A run is up to four restic snapshots tagged `minicloud`, `app:<name>`, `run:<id>` and
//! `part:<record|database|queues|storage>`: restic cannot put a stream and a directory in
//! one snapshot, and the stock tool lists and restores each by those tags.
//!
//! The whole-box restore (a new server brought back, apps' data and all) is `platform` (the
//! state store) and `wholebox` (the repository brought in, each app's data at the next start).
//!
//! Locking: a backup does not take the app's operation lock, so a deploy is never refused
//! because a backup runs (the dump is one consistent transaction whatever the app does);
//! runs, verifications and restores of one app are serialized among themselves by a lock of
//! their own. A restore takes the app's operation lock too, for all of its length.

pub mod archive;
pub mod database;
mod offsite;
pub mod plan;
pub mod platform;
pub mod restic;
pub mod s3;
mod sigv4;
pub mod sql;
pub mod verify;
pub mod wholebox;

use std::path::PathBuf;
use std::sync::Arc;

use rand::Rng;

use crate::apps::{AppError, Apps, NewApp};
use crate::bus::{EventKind, Op};
use crate::ctx::Ctx;
use crate::locks::{AppLocks, Busy};
use crate::model::{now, AppName, Operation, Secret, ServiceKind};
use crate::services::{ServiceError, ServiceName, Services};
use crate::store::{
    AppRecord, BackupPart, BackupRecord, BackupState, DeployRecord, Destination, RepositoryKey,
    StoreError,
};

pub use database::Loaded;
pub use restic::Repository;

/// The trigger of scheduled runs (and of the slots they missed).
const SCHEDULE: &str = "schedule";
/// The trigger of the run before a new image replaces a serving one.
const DEPLOY: &str = "deploy";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{app} has no backup '{id}'")]
    NotFound { app: String, id: String },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{app} is busy: a backup or restore of it is in progress; try again when it has finished"
    )]
    Busy { app: AppName },
    #[error("{tool} {action} failed: {why}")]
    Tool {
        tool: &'static str,
        action: &'static str,
        why: String,
    },
    #[error("MariaDB at {address}: {why}")]
    Database { address: String, why: String },
    #[error("{path}: {why}")]
    Io { path: PathBuf, why: String },
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which parts a restore brings back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Database,
    Storage,
    /// The message bus's definitions: exchanges, queues, bindings, policies.
    Queues,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Storage => "storage",
            Self::Queues => "queues",
        }
    }
}

/// The file of the app's record inside its snapshot.
pub const RECORD_FILE: &str = "app.json";
/// The file of the queue definitions inside their snapshot.
pub const QUEUES_FILE: &str = "queues.json";

/// A finished run, and the repository password when this run made the repository: shown
/// this once, for the person to keep (`GET /api/backups/key` shows it again).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    #[serde(flatten)]
    pub backup: BackupRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_key: Option<String>,
}

/// The app's record as a backup keeps it (`app.json`): what a clone or a whole-box restore
/// deploys again.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedApp {
    format: String,
    app: AppRecord,
    /// The serving revision: its image pinned to the digest, its manifest and env.
    revision: Option<DeployRecord>,
}

impl SavedApp {
    const FORMAT: &'static str = "minicloud-app/1";
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    pub app: AppName,
    pub backup: String,
    /// The backup of the state before, taken first.
    pub safety_backup: String,
    pub parts: Vec<Part>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<Loaded>,
}

/// The backup operations. Cheap to clone.
#[derive(Clone)]
pub struct Backups {
    ctx: Ctx,
    apps: Apps,
    /// Serializes runs and restores of one app (not deploys: see the module docs).
    running: AppLocks,
    /// Made when first needed.
    repo: Arc<tokio::sync::OnceCell<Repository>>,
    /// Serializes the look for the S3 repository (and making it), so two first runs do not
    /// both make it. Held across that one short restic call, never across a copy.
    offsite_made: Arc<tokio::sync::Mutex<()>>,
    /// Set when this process made the repository, until the run that made it has shown its
    /// key.
    key_unshown: Arc<std::sync::atomic::AtomicBool>,
    /// When this process started: the platform's first scheduled run is at its first slot
    /// after it (as an app's is after the app was made).
    started_at: i64,
}

impl Backups {
    pub fn new(ctx: Ctx, apps: Apps) -> Self {
        Self {
            ctx,
            apps,
            running: AppLocks::default(),
            repo: Arc::default(),
            offsite_made: Arc::default(),
            key_unshown: Arc::default(),
            started_at: now(),
        }
    }

    /// A new operation started by `actor`.
    pub fn begin(&self, actor: crate::model::Actor) -> Op {
        self.ctx.begin(actor)
    }

    pub fn bus(&self) -> crate::bus::Bus {
        self.ctx.bus.clone()
    }

    /// `<data-dir>/backups`.
    pub fn repository_path(&self) -> PathBuf {
        self.ctx.config.data_dir.join("backups")
    }

    /// The repository, made (with its password) on first use.
    async fn repository(&self) -> Result<Repository, BackupError> {
        let repo = self
            .repo
            .get_or_try_init(|| async {
                let repo = Repository::new(self.repository_path(), self.key()?);
                if repo.ensure().await? {
                    self.key_unshown
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok::<_, BackupError>(repo)
            })
            .await?;
        Ok(repo.clone())
    }

    /// The repository password, for the person to keep: made and kept on first use.
    pub fn key(&self) -> Result<Secret, BackupError> {
        let (key, _) = self.ctx.store.ensure_repository_key(|| RepositoryKey {
            password: crate::services::new_password(),
            created_at: now(),
        })?;
        Ok(key.password)
    }

    fn services(&self) -> &Services {
        self.apps.services()
    }

    /// An app's runs, newest first.
    pub fn list(&self, app: &AppName) -> Result<Vec<BackupRecord>, BackupError> {
        self.apps.app_record(app)?;
        let mut runs = self.ctx.store.backups(app)?;
        runs.reverse();
        Ok(runs)
    }

    /// Every app's runs and the platform's, newest first.
    pub fn list_all(&self) -> Result<Vec<BackupRecord>, BackupError> {
        let mut runs = self.ctx.store.backups(&AppName::platform())?;
        for app in self.ctx.store.apps()? {
            runs.extend(self.ctx.store.backups(&app.name)?);
        }
        runs.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        Ok(runs)
    }

    fn hold(&self, app: &AppName) -> Result<crate::locks::AppLock, BackupError> {
        self.running
            .lock(app, Operation::Restore)
            .map_err(|Busy { app, .. }| BackupError::Busy { app })
    }

    /// Backs an app (or, given [`AppName::platform`], the platform: see [`platform`]) up
    /// now: one run, stored with its outcome whatever it is.
    pub async fn run(
        &self,
        op: &Op,
        app: &AppName,
        trigger: &str,
    ) -> Result<RunResult, BackupError> {
        if !app.is_platform() {
            self.apps.app_record(app)?;
        }
        let _running = self.hold(app)?;
        let repo = self.repository().await?;
        let backup = self.run_held(op, app, trigger, &repo).await?;
        // The run that made the repository shows its key, once, whatever its outcome.
        let show = self
            .key_unshown
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        let recovery_key = show
            .then(|| self.key().map(|k| k.expose().to_owned()))
            .transpose()?;
        Ok(RunResult {
            backup,
            recovery_key,
        })
    }

    async fn run_held(
        &self,
        op: &Op,
        app: &AppName,
        trigger: &str,
        repo: &Repository,
    ) -> Result<BackupRecord, BackupError> {
        let started_at = now();
        let mut record = BackupRecord {
            app: app.clone(),
            id: format!("{started_at:010}-{:04x}", rand::rng().random::<u16>()),
            trigger: trigger.to_owned(),
            started_at,
            finished_at: None,
            state: BackupState::Running,
            parts: Vec::new(),
            verified: None,
            destinations: Vec::new(),
        };
        self.ctx.store.put_backup(&record)?;
        self.ctx
            .bus
            .step(op, app, format!("backing up {app} ({})", record.id));
        let outcome = if app.is_platform() {
            self.back_up_platform(&record.id, repo, &mut record.parts)
                .await
        } else {
            self.back_up_parts(op, app, &record.id, repo, &mut record.parts)
                .await
        };
        match outcome {
            Ok(()) => {
                let snapshots: Vec<String> =
                    record.parts.iter().map(|p| p.snapshot.clone()).collect();
                record.destinations.push(Destination {
                    kind: "local".into(),
                    location: repo.describe(),
                    confirmed: true,
                    snapshots: snapshots.clone(),
                    error: None,
                });
                if let Some(offsite) = self
                    .copy_offsite(op, app, &record.id, &snapshots, repo)
                    .await
                {
                    record.destinations.push(offsite);
                }
                let unconfirmed: Vec<String> = record
                    .destinations
                    .iter()
                    .filter_map(|d| d.error.clone())
                    .collect();
                record.finished_at = Some(now());
                record.state = if unconfirmed.is_empty() {
                    BackupState::Succeeded
                } else {
                    BackupState::Partial {
                        reason: format!(
                            "the local repository has the backup; {}",
                            unconfirmed.join("; ")
                        ),
                    }
                };
                self.ctx.store.put_backup(&record)?;
                let event = match &record.state {
                    BackupState::Partial { reason } => EventKind::BackupFailed {
                        app: app.clone(),
                        backup: record.id.clone(),
                        reason: format!("partial: {reason}"),
                    },
                    _ => EventKind::BackedUp {
                        app: app.clone(),
                        backup: record.id.clone(),
                    },
                };
                self.ctx.bus.send(op, event);
            }
            Err(e) => {
                record.finished_at = Some(now());
                // Nothing of a failed run may look like a backup: forget what it wrote.
                let written: Vec<String> = record.parts.drain(..).map(|p| p.snapshot).collect();
                if let Err(forget) = repo.forget(&written).await {
                    tracing::warn!(%app, error = %forget, "cannot forget the snapshots of a failed backup");
                }
                let reason = e.to_string();
                record.state = BackupState::Failed {
                    reason: reason.clone(),
                };
                self.ctx.store.put_backup(&record)?;
                self.ctx.bus.send(
                    op,
                    EventKind::BackupFailed {
                        app: app.clone(),
                        backup: record.id.clone(),
                        reason,
                    },
                );
            }
        }
        Ok(record)
    }

    async fn back_up_parts(
        &self,
        op: &Op,
        app: &AppName,
        id: &str,
        repo: &Repository,
        parts: &mut Vec<BackupPart>,
    ) -> Result<(), BackupError> {
        let tags = |part: &str| {
            vec![
                format!("app:{app}"),
                format!("run:{id}"),
                format!("part:{part}"),
            ]
        };
        let progress = |part: &'static str| {
            let bus = self.ctx.bus.clone();
            let op = op.clone();
            let app = app.clone();
            move |bytes_done| {
                bus.send(
                    &op,
                    EventKind::BackupProgress {
                        app: app.clone(),
                        part: part.to_owned(),
                        bytes_done,
                    },
                )
            }
        };
        let mut add = |part: &str, c: restic::Confirmed| {
            parts.push(BackupPart {
                part: part.to_owned(),
                snapshot: c.snapshot,
                bytes: c.bytes,
                added: c.added,
            })
        };

        // The record: what to deploy again, secrets included (the repository is encrypted).
        let record = self.app_record_json(app)?;
        add(
            "record",
            repo.backup_bytes(record, RECORD_FILE, &tags("record"))
                .await?,
        );

        if self.ctx.store.service(app, ServiceKind::Mariadb)?.is_some() {
            let Some(mariadb) = self.services().mariadb() else {
                return Err(BackupError::Invalid(format!(
                    "{app} has a database but minicloud has no MariaDB configured"
                )));
            };
            self.ctx.bus.step(op, app, "dumping the database");
            let db = ServiceName::for_app(app)?;
            let c = database::back_up(
                repo,
                mariadb.settings(),
                &db,
                &tags("database"),
                progress("database"),
            )
            .await?;
            add("database", c);
        }

        if self
            .ctx
            .store
            .service(app, ServiceKind::Rabbitmq)?
            .is_some()
        {
            let Some(rabbitmq) = self.services().rabbitmq() else {
                return Err(BackupError::Invalid(format!(
                    "{app} has a message bus but minicloud has no RabbitMQ configured"
                )));
            };
            self.ctx
                .bus
                .step(op, app, "exporting the queue definitions");
            let definitions = rabbitmq.definitions(app).await?;
            // A JSON value: serde_json cannot fail on it.
            #[allow(clippy::expect_used)]
            let bytes = serde_json::to_vec_pretty(&definitions).expect("JSON serializes");
            add(
                "queues",
                repo.backup_bytes(bytes, QUEUES_FILE, &tags("queues"))
                    .await?,
            );
        }

        let dir = self.services().storage().dir(app);
        // restic refuses an empty snapshot; a restore makes an empty directory of no part.
        let has_files = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
        if has_files {
            self.ctx.bus.step(op, app, "backing up the storage");
            let c = repo
                .backup_dir(&dir, &tags("storage"), progress("storage"))
                .await?;
            add("storage", c);
        }
        Ok(())
    }

    /// The app's record and its serving revision (image digest, manifest, env), as JSON.
    fn app_record_json(&self, app: &AppName) -> Result<Vec<u8>, BackupError> {
        let record = self.apps.app_record(app)?;
        let revision = match record.current {
            Some(rev) => self.ctx.store.deploy(app, rev)?,
            None => None,
        };
        let saved = SavedApp {
            format: SavedApp::FORMAT.to_owned(),
            app: record,
            revision,
        };
        // Records with string keys: serde_json cannot fail on them.
        #[allow(clippy::expect_used)]
        let bytes = serde_json::to_vec_pretty(&saved).expect("records serialize");
        Ok(bytes)
    }

    /// Restores the newest good dump of the app into a scratch database and checks it (see
    /// [`verify`]); the outcome is kept on that run. Answers the run.
    pub async fn verify(&self, op: &Op, app: &AppName) -> Result<BackupRecord, BackupError> {
        self.apps.app_record(app)?;
        // Retention cannot forget the snapshot while it is read.
        let _running = self.hold(app)?;
        let newest = self
            .ctx
            .store
            .backups(app)?
            .into_iter()
            .rev()
            .find_map(|b| {
                let snapshot = b
                    .parts
                    .iter()
                    .find(|p| p.part == Part::Database.as_str())?
                    .snapshot
                    .clone();
                b.state.is_restorable().then_some((b, snapshot))
            });
        let Some((mut backup, snapshot)) = newest else {
            return Err(BackupError::Invalid(format!(
                "{app} has no good backup of a database to verify"
            )));
        };
        let mariadb = self
            .services()
            .mariadb()
            .ok_or_else(|| BackupError::Invalid("minicloud has no MariaDB configured".into()))?;
        let repo = self.repository().await?;
        self.ctx.bus.step(
            op,
            app,
            format!("loading backup {} into a scratch database", backup.id),
        );
        let verification = verify::check(&repo, &snapshot, mariadb).await?;
        if let Some(problem) = &verification.problem {
            tracing::warn!(%app, backup = %backup.id, %problem, "a backup failed its verification");
        }
        backup.verified = Some(verification);
        self.ctx.store.put_backup(&backup)?;
        Ok(backup)
    }

    /// Backup `id` as one `.tar.zst` stream: the dump as plain SQL, the queue definitions,
    /// the record and the files under `storage/`.
    pub async fn download(
        &self,
        app: &AppName,
        id: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<archive::Chunk>, BackupError> {
        let backup = self.good_backup(app, id)?;
        let repo = self.repository().await?;
        let entries = backup
            .parts
            .iter()
            .map(|p| archive::Entry {
                place: if p.part == Part::Storage.as_str() {
                    PathBuf::from("storage")
                } else {
                    PathBuf::new()
                },
                snapshot: p.snapshot.clone(),
            })
            .collect();
        Ok(archive::stream(repo, entries))
    }

    /// The run `id` of `app` whose local copy is whole (succeeded or partial): the only kind
    /// anything can be taken from.
    fn good_backup(&self, app: &AppName, id: &str) -> Result<BackupRecord, BackupError> {
        self.apps.app_record(app)?;
        self.ctx
            .store
            .backup(app, id)?
            .filter(|b| b.state.is_restorable())
            .ok_or_else(|| BackupError::NotFound {
                app: app.to_string(),
                id: id.to_owned(),
            })
    }

    /// Restores `parts` of backup `id` into the app, or into a new app `clone` made from the
    /// backup's record (the original is not touched): a safety backup of the current state
    /// first, the app out of service meanwhile, and what was there put back if it fails.
    pub async fn restore(
        &self,
        op: &Op,
        app: &AppName,
        id: &str,
        parts: &[Part],
        clone: Option<&AppName>,
    ) -> Result<Restored, BackupError> {
        let backup = self.good_backup(app, id)?;
        let target = match clone {
            Some(new) => {
                self.make_clone(op, &backup, new).await?;
                new
            }
            None => app,
        };
        let chosen = self.plan_parts(&backup, target, parts);
        let parts: Vec<Part> = chosen.iter().map(|(p, _)| *p).collect();
        let _running = self.hold(target)?;
        let repo = self.repository().await?;
        self.ctx
            .bus
            .step(op, target, format!("taking {target} out of service"));
        let why = format!(
            "The app {target} is being restored from a backup and will be back in a few minutes"
        );
        let down = self
            .apps
            .take_down(op, target, Operation::Restore, why)
            .await?;
        let result = self.restore_down(op, target, &repo, &chosen).await;
        self.ctx
            .bus
            .step(op, target, format!("serving {target} again"));
        let back = self.apps.bring_back(op, down).await;
        let (safety, loaded) = result?;
        back?;
        if clone.is_none() {
            // Its data is back: what a whole-box restore still owed it is settled.
            if let Err(e) = self.ctx.store.delete_pending_restore(target) {
                tracing::warn!(app = %target, error = %e, "cannot clear the pending restore");
            }
        }
        self.ctx.bus.send(
            op,
            EventKind::Restored {
                app: target.clone(),
                backup: id.to_owned(),
            },
        );
        Ok(Restored {
            app: target.clone(),
            backup: id.to_owned(),
            safety_backup: safety,
            parts,
            database: loaded,
        })
    }

    /// What a restore of `backup` into `target` brings back, each part with its snapshot:
    /// `parts`, or (none asked) everything the backup holds, and storage the target has now
    /// but the backup had none of, which goes back to empty.
    fn plan_parts(
        &self,
        backup: &BackupRecord,
        target: &AppName,
        parts: &[Part],
    ) -> Vec<(Part, Option<String>)> {
        let parts: Vec<Part> = if parts.is_empty() {
            let has_storage = self.services().storage().dir(target).is_dir();
            [Part::Database, Part::Queues, Part::Storage]
                .into_iter()
                .filter(|p| {
                    backup.parts.iter().any(|b| b.part == p.as_str())
                        || (*p == Part::Storage && has_storage)
                })
                .collect()
        } else {
            parts.to_vec()
        };
        let snapshot = |part: Part| {
            backup
                .parts
                .iter()
                .find(|p| p.part == part.as_str())
                .map(|p| p.snapshot.clone())
        };
        parts.iter().map(|&p| (p, snapshot(p))).collect()
    }

    /// Makes the app `new` from the record in `backup`: the image at the digest it served,
    /// its variables, limits and registry login (not its custom domains, which stay the
    /// original's); deployed with accounts and storage of its own.
    async fn make_clone(
        &self,
        op: &Op,
        backup: &BackupRecord,
        new: &AppName,
    ) -> Result<(), BackupError> {
        let snapshot = backup
            .parts
            .iter()
            .find(|p| p.part == "record")
            .ok_or_else(|| {
                BackupError::Invalid(format!(
                    "backup {} has no record of the app to make a clone from",
                    backup.id
                ))
            })?;
        let repo = self.repository().await?;
        let bytes = repo.read_file(&snapshot.snapshot, RECORD_FILE).await?;
        let saved: SavedApp = serde_json::from_slice(&bytes).map_err(|e| {
            BackupError::Invalid(format!(
                "the app's record in backup {} cannot be read: {e}",
                backup.id
            ))
        })?;
        let image = saved.revision.map_or(saved.app.image, |r| r.image);
        let (registry_username, registry_password) = match saved.app.registry_auth {
            Some(auth) => (Some(auth.username), Some(auth.password)),
            None => (None, None),
        };
        self.ctx.bus.step(
            op,
            new,
            format!("making {new} from the record of {}", saved.app.name),
        );
        self.apps
            .create(
                op,
                NewApp {
                    image,
                    name: Some(new.clone()),
                    registry_username,
                    registry_password,
                    env: saved.app.env,
                    memory_mb: Some(saved.app.memory_mb),
                    pids_limit: saved.app.pids_limit,
                    cpu_shares: saved.app.cpu_shares,
                    added_services: saved.app.added_services,
                    // A clone gets only its own address: custom domains stay with the original.
                    domains: Vec::new(),
                },
            )
            .await?;
        Ok(())
    }

    /// The restore proper, with the app down and locked.
    async fn restore_down(
        &self,
        op: &Op,
        app: &AppName,
        repo: &Repository,
        parts: &[(Part, Option<String>)],
    ) -> Result<(String, Option<Loaded>), BackupError> {
        self.ctx
            .bus
            .step(op, app, "taking a safety backup of the current state");
        let safety = self.run_held(op, app, "safety", repo).await?;
        if let BackupState::Failed { reason } = &safety.state {
            return Err(BackupError::Invalid(format!(
                "the safety backup failed, so nothing was restored: {reason}"
            )));
        }
        let safety_snapshot = |part: &str| {
            safety
                .parts
                .iter()
                .find(|p| p.part == part)
                .map(|p| p.snapshot.clone())
        };
        let mut swapped = None;
        let mut loaded = None;
        let mut queues_loaded = false;
        let mut result = Ok(());
        for (part, snapshot) in parts {
            let step = match (part, snapshot) {
                (Part::Storage, snapshot) => {
                    self.ctx.bus.step(op, app, "restoring the storage");
                    self.swap_storage(app, repo, snapshot.as_deref())
                        .await
                        .map(|old| {
                            swapped = Some(old);
                        })
                }
                (Part::Database, Some(snapshot)) => {
                    self.ctx.bus.step(op, app, "restoring the database");
                    self.load_database(app, repo, snapshot).await.map(|l| {
                        loaded = Some(l);
                    })
                }
                (Part::Database, None) => Err(BackupError::Invalid(format!(
                    "backup has no database of {app} to restore"
                ))),
                (Part::Queues, Some(snapshot)) => {
                    self.ctx
                        .bus
                        .step(op, app, "restoring the queue definitions");
                    self.load_queues(app, repo, snapshot).await.map(|()| {
                        queues_loaded = true;
                    })
                }
                (Part::Queues, None) => Err(BackupError::Invalid(format!(
                    "backup has no queue definitions of {app} to restore"
                ))),
            };
            if let Err(e) = step {
                result = Err(e);
                break;
            }
        }
        let storage_dir = self.services().storage().dir(app);
        match result {
            Ok(()) => {
                if let Some(old) = swapped.flatten() {
                    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(old)).await;
                }
                Ok((safety.id, loaded))
            }
            Err(e) => {
                self.ctx
                    .bus
                    .step(op, app, "the restore failed: putting back what was there");
                if let Some(old) = swapped {
                    put_back_dir(&storage_dir, old);
                }
                if queues_loaded {
                    if let Some(snapshot) = safety_snapshot("queues") {
                        if let Err(again) = self.load_queues(app, repo, &snapshot).await {
                            tracing::error!(%app, error = %again, "cannot put the queue definitions back from the safety backup");
                        }
                    }
                }
                if loaded.is_some() || matches!(e, BackupError::Database { .. }) {
                    if let Some(snapshot) = safety_snapshot("database") {
                        if let Err(again) = self.load_database(app, repo, &snapshot).await {
                            tracing::error!(%app, error = %again, "cannot put the database back from the safety backup");
                            return Err(BackupError::Invalid(format!(
                                "the restore failed ({e}) and putting the database back failed too ({again}); \
                                 the safety backup {} holds it", safety.id
                            )));
                        }
                    }
                }
                Err(e)
            }
        }
    }

    /// Gives the app's vhost the queue definitions of `snapshot`.
    async fn load_queues(
        &self,
        app: &AppName,
        repo: &Repository,
        snapshot: &str,
    ) -> Result<(), BackupError> {
        let rabbitmq = self
            .services()
            .rabbitmq()
            .ok_or_else(|| BackupError::Invalid("minicloud has no RabbitMQ configured".into()))?;
        let bytes = repo.read_file(snapshot, QUEUES_FILE).await?;
        let definitions: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            BackupError::Invalid(format!(
                "the queue definitions in snapshot {snapshot} are not JSON: {e}"
            ))
        })?;
        rabbitmq.restore_definitions(app, &definitions).await?;
        Ok(())
    }

    /// Empties the app's database and loads the dump of `snapshot` into it.
    async fn load_database(
        &self,
        app: &AppName,
        repo: &Repository,
        snapshot: &str,
    ) -> Result<Loaded, BackupError> {
        let mariadb = self
            .services()
            .mariadb()
            .ok_or_else(|| BackupError::Invalid("minicloud has no MariaDB configured".into()))?;
        let account = self
            .ctx
            .store
            .service(app, ServiceKind::Mariadb)?
            .ok_or_else(|| BackupError::Invalid(format!("{app} has no database account")))?;
        let db = ServiceName::for_app(app)?;
        mariadb.recreate_database(app).await?;
        database::load(
            repo,
            snapshot,
            mariadb.settings(),
            &database::Target::app(&db, &account),
        )
        .await
    }

    /// Restores the storage snapshot (or, without one, an empty directory) beside the app's
    /// directory and swaps it in with renames. Returns where the old directory went (`None`
    /// when there was none).
    async fn swap_storage(
        &self,
        app: &AppName,
        repo: &Repository,
        snapshot: Option<&str>,
    ) -> Result<Option<PathBuf>, BackupError> {
        let dir = self.services().storage().dir(app);
        // The storage directory is `<data-dir>/apps/<app>`: it always has a parent.
        #[allow(clippy::expect_used)]
        let parent = dir
            .parent()
            .expect("storage is under <data-dir>/apps")
            .to_path_buf();
        let stamp = now();
        // App names never start with a dot: these cannot be another app's directory.
        let fresh = parent.join(format!(".restore-{app}-{stamp}"));
        let old = parent.join(format!(".before-restore-{app}-{stamp}"));
        let io = |path: &PathBuf, e: std::io::Error| BackupError::Io {
            path: path.clone(),
            why: e.to_string(),
        };
        match snapshot {
            Some(snapshot) => repo.restore(snapshot, &fresh).await?,
            None => std::fs::create_dir_all(&fresh).map_err(|e| io(&fresh, e))?,
        }
        // The app's container runs as any user: keep the directory open to it, as made.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir)
                .map(|m| m.permissions().mode())
                .unwrap_or(0o777);
            let _ = std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(mode));
        }
        let had = dir.exists();
        if had {
            std::fs::rename(&dir, &old).map_err(|e| io(&dir, e))?;
        }
        if let Err(e) = std::fs::rename(&fresh, &dir) {
            if had {
                let _ = std::fs::rename(&old, &dir);
            }
            return Err(io(&dir, e));
        }
        Ok(had.then_some(old))
    }

    /// Every app with something to back up (a database or storage), and when it was made.
    pub fn apps_with_data(&self) -> Result<Vec<(AppName, i64)>, BackupError> {
        let mut out = Vec::new();
        for app in self.ctx.store.apps()? {
            let has_db = self
                .ctx
                .store
                .service(&app.name, ServiceKind::Mariadb)?
                .is_some();
            if has_db || self.services().storage().dir(&app.name).is_dir() {
                out.push((app.name, app.created_at));
            }
        }
        Ok(out)
    }

    /// Drops the runs `policy` does not keep (records and snapshots), then prunes; then
    /// makes the S3 repository hold the succeeded runs kept, and nothing else (see
    /// [`plan::plan_retention`]: partial and failed runs never count).
    pub async fn apply_retention(
        &self,
        app: &AppName,
        policy: plan::Retention,
    ) -> Result<usize, BackupError> {
        let runs = self.ctx.store.backups(app)?;
        let planned: Vec<plan::Run> = runs
            .iter()
            .filter(|r| r.state != BackupState::Running)
            .map(|r| plan::Run {
                id: r.id.clone(),
                at: r.started_at,
                good: r.state == BackupState::Succeeded,
                partial: matches!(r.state, BackupState::Partial { .. }),
            })
            .collect();
        let drop_ids = plan::plan_retention(&planned, policy);
        if !drop_ids.is_empty() {
            let repo = self.repository().await?;
            let snapshots: Vec<String> = runs
                .iter()
                .filter(|r| drop_ids.contains(&r.id))
                .flat_map(|r| r.parts.iter().map(|p| p.snapshot.clone()))
                .collect();
            repo.forget(&snapshots).await?;
            for id in &drop_ids {
                self.ctx.store.delete_backup(app, id)?;
            }
            repo.prune().await?;
        }
        if let Some(remote) = self.offsite_repository()? {
            let forgotten = self.sweep_offsite(app, &remote).await.map_err(|e| {
                BackupError::Invalid(format!("retention in S3 at {}: {e}", remote.describe()))
            })?;
            if forgotten > 0 {
                tracing::info!(%app, forgotten, "retention forgot snapshots in S3");
            }
        }
        Ok(drop_ids.len())
    }

    /// The scheduler: every minute, each app with data whose daily slot has come gets a run,
    /// then retention. Ends on `shutdown`.
    pub async fn run_schedule(self, mut shutdown: minicloud_proxy::ShutdownWatch) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            self.schedule_tick().await;
        }
    }

    /// One look of the scheduler. A slot long past (minicloud was down then) is recorded as
    /// missed before the run that catches up.
    async fn schedule_tick(&self) {
        let apps = match self.apps_with_data() {
            Ok(apps) => apps,
            Err(e) => {
                tracing::warn!(error = %e, "backup schedule: cannot list apps");
                return;
            }
        };
        // The platform's daily run goes with the apps' (its slot spread by its name too).
        let subjects = std::iter::once((AppName::platform(), self.started_at)).chain(apps);
        for (app, created_at) in subjects {
            let minute = plan::daily_minute(app.as_str());
            // A new app's first scheduled run is at its first slot after it was made.
            let last = self
                .ctx
                .store
                .backups(&app)
                .ok()
                .and_then(|runs| {
                    runs.iter()
                        .rev()
                        .find(|r| {
                            r.trigger == SCHEDULE && !matches!(r.state, BackupState::Missed { .. })
                        })
                        .map(|r| r.started_at)
                })
                .or(Some(created_at));
            let at = now();
            if !plan::is_due(at, minute, last) {
                continue;
            }
            let slot = plan::latest_slot(at, minute);
            if plan::is_missed(at, slot) {
                if let Err(e) = self.record_missed(&app, slot) {
                    tracing::warn!(%app, error = %e, "cannot record a missed backup");
                }
            }
            let op = self.ctx.begin(crate::model::Actor::System);
            match self.run(&op, &app, SCHEDULE).await {
                Ok(done) => {
                    if let Err(e) = self.apply_retention(&app, plan::Retention::default()).await {
                        tracing::warn!(%app, error = %e, "backup retention failed");
                    }
                    tracing::info!(%app, backup = %done.backup.id, state = ?done.backup.state, "scheduled backup ran");
                }
                Err(e) => tracing::warn!(%app, error = %e, "scheduled backup not run"),
            }
            if !app.is_platform() {
                self.verify_weekly(&op, &app).await;
            }
        }
    }

    /// Verifies the app's newest dump when no dump of it was verified in the last week.
    async fn verify_weekly(&self, op: &Op, app: &AppName) {
        let Ok(runs) = self.ctx.store.backups(app) else {
            return;
        };
        let has_dump = runs.iter().any(|r| {
            r.state.is_restorable() && r.parts.iter().any(|p| p.part == Part::Database.as_str())
        });
        let last = runs
            .iter()
            .filter_map(|r| r.verified.as_ref())
            .map(|v| v.at)
            .max();
        if has_dump && plan::verification_due(now(), last) {
            match self.verify(op, app).await {
                Ok(run) => tracing::info!(%app, backup = %run.id, "backup verified"),
                Err(e) => tracing::warn!(%app, error = %e, "backup not verified"),
            }
        }
    }

    /// Records that the scheduled run of `slot` did not happen. Its id is the slot's, so
    /// recording it again (the catch-up was refused as busy) keeps one record.
    fn record_missed(&self, app: &AppName, slot: i64) -> Result<(), BackupError> {
        self.ctx.store.put_backup(&BackupRecord {
            app: app.clone(),
            id: format!("{slot:010}-0000"),
            trigger: SCHEDULE.to_owned(),
            started_at: slot,
            finished_at: None,
            state: BackupState::Missed {
                reason: format!(
                    "minicloud was not running at {}, when this backup was due; a backup was started when it was back",
                    crate::model::format_time(slot)
                ),
            },
            parts: Vec::new(),
            verified: None,
            destinations: Vec::new(),
        })?;
        Ok(())
    }
}

/// Before a new image replaces a serving one: a backup of an app with a database (setting
/// `backup_before_deploy`), so a rollback can take the data back too. A failed or refused
/// backup is said in the deploy's progress and the deploy goes on.
#[async_trait::async_trait]
impl crate::apps::BeforeNewImage for Backups {
    async fn before_new_image(&self, op: &Op, app: &AppName) {
        if !self.ctx.config.backup_before_deploy {
            return;
        }
        if !matches!(
            self.ctx.store.service(app, ServiceKind::Mariadb),
            Ok(Some(_))
        ) {
            return;
        }
        self.ctx
            .bus
            .step(op, app, "backing up before the new image");
        let failed = match self.run(op, app, DEPLOY).await {
            Ok(done) => match done.backup.state {
                BackupState::Failed { reason } => Some(reason),
                _ => None,
            },
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = failed {
            tracing::warn!(%app, error = %why, "the backup before a deploy failed");
            self.ctx.bus.step(
                op,
                app,
                format!("the backup before the deploy failed ({why}); deploying anyway"),
            );
        }
    }
}

/// Puts the app's old storage directory back after a failed restore.
fn put_back_dir(dir: &std::path::Path, old: Option<PathBuf>) {
    let Some(old) = old else {
        let _ = std::fs::remove_dir_all(dir);
        return;
    };
    let aside = dir.with_file_name(format!(
        ".failed-restore-{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("app")
    ));
    let _ = std::fs::remove_dir_all(&aside);
    if std::fs::rename(dir, &aside).is_ok() || !dir.exists() {
        if let Err(e) = std::fs::rename(&old, dir) {
            tracing::error!(dir = %dir.display(), error = %e, "cannot put the storage back; it is at {}", old.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&aside);
    }
}
