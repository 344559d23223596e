//! Backups: each app's database, queue definitions, storage and record into one
//! restic-format repository (`<data-dir>/backups`), copied to an S3 bucket when one is
//! configured, restored into the same app or a clone on request, downloaded as one
//! `.tar.zst`, verified in a scratch database, daily on a schedule with a retention policy.
//!
//! Owns: runs and their honest status (a run succeeds only once every destination confirmed
//! every snapshot of it; it is partial when the local repository did and S3 did not; a
//! failed run's snapshots are forgotten at once; a daily slot minicloud was down for is
//! recorded as missed), restores, verifications, the repository password (made once, kept
//! in the store; the S3 repository has the same), each app's backup policy (when it is
//! backed up, how many runs retention keeps). Does not own: the app lifecycle (`apps`
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
mod policy;
pub mod restic;
mod restore;
#[cfg(test)]
mod retention_tests;
mod run;
pub mod s3;
mod schedule;
mod sigv4;
pub mod sql;
pub mod verify;
pub mod wholebox;

use std::path::PathBuf;
use std::sync::Arc;

use crate::apps::{AppError, Apps};
use crate::bus::Op;
use crate::ctx::Ctx;
use crate::locks::{AppLocks, Busy};
use crate::model::{now, AppName, Operation, Secret};
use crate::services::{ServiceError, Services};
use crate::store::{AppRecord, BackupRecord, DeployRecord, RepositoryKey, StoreError};

pub use database::Loaded;
pub use policy::PolicyView;
pub use restic::Repository;
pub use restore::Restored;

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
    /// Its backup policy, when an admin set one (a clone takes it over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup_policy: Option<crate::model::BackupPolicy>,
}

impl SavedApp {
    const FORMAT: &'static str = "minicloud-app/1";
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
}
