//! Backups: each app's database, storage and record into one restic-format repository
//! (`<data-dir>/backups`), restored into the same app on request, daily on a schedule with a
//! retention policy.
//!
//! Owns: runs and their honest status (a run succeeds only once restic confirmed every
//! snapshot of it; a failed run's snapshots are forgotten at once), restores, the repository
//! password (made once, kept in the store). Does not own: the app lifecycle (`apps` takes an
//! app down and brings it back), the accounts (`services`).
//!
//! A run is up to three restic snapshots tagged `minicloud`, `app:<name>`, `run:<id>` and
//! `part:<database|storage|record>`: restic cannot put a stream and a directory in one
//! snapshot, and the stock tool lists and restores each by those tags.
//!
//! Locking: a backup does not take the app's operation lock, so a deploy is never refused
//! because a backup runs (the dump is one consistent transaction whatever the app does);
//! runs and restores of one app are serialized among themselves by a lock of their own. A
//! restore takes the app's operation lock too, for all of its length.

pub mod database;
pub mod plan;
pub mod restic;
pub mod sql;

use std::path::PathBuf;
use std::sync::Arc;

use rand::Rng;

use crate::apps::{AppError, Apps};
use crate::bus::{EventKind, Op};
use crate::ctx::Ctx;
use crate::locks::{AppLocks, Busy};
use crate::model::{now, AppName, Operation, Secret, ServiceKind};
use crate::services::{ServiceError, ServiceName, Services};
use crate::store::{BackupPart, BackupRecord, BackupState, RepositoryKey, StoreError};

pub use database::Loaded;
pub use restic::Repository;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no app named '{0}'")]
    AppNotFound(String),
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
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Storage => "storage",
        }
    }
}

/// A finished run, and the repository password when this run made the repository: shown
/// this once, for the person to keep (`GET /api/backups/key` shows it again).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    #[serde(flatten)]
    pub backup: BackupRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_key: Option<String>,
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
    services: Services,
    /// Serializes runs and restores of one app (not deploys: see the module docs).
    running: AppLocks,
    /// Made when first needed.
    repo: Arc<tokio::sync::OnceCell<Repository>>,
    /// Set when this process made the repository, until one run has shown its key.
    key_unshown: Arc<std::sync::atomic::AtomicBool>,
}

impl Backups {
    pub fn new(ctx: Ctx, apps: Apps) -> Self {
        Self {
            services: Services::new(ctx.config.services(), ctx.store.clone()),
            ctx,
            apps,
            running: AppLocks::default(),
            repo: Arc::default(),
            key_unshown: Arc::default(),
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
                let (key, made) = self.ctx.store.ensure_repository_key(|| RepositoryKey {
                    password: crate::services::new_password(),
                    created_at: now(),
                })?;
                let repo = Repository::new(self.repository_path(), key.password);
                repo.ensure().await?;
                if made {
                    self.key_unshown
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok::<_, BackupError>(repo)
            })
            .await?;
        Ok(repo.clone())
    }

    /// The repository password, for the person to keep.
    pub fn key(&self) -> Result<Secret, BackupError> {
        let (key, _) = self.ctx.store.ensure_repository_key(|| RepositoryKey {
            password: crate::services::new_password(),
            created_at: now(),
        })?;
        Ok(key.password)
    }

    /// An app's runs, newest first.
    pub fn list(&self, app: &AppName) -> Result<Vec<BackupRecord>, BackupError> {
        self.app_exists(app)?;
        let mut runs = self.ctx.store.backups(app)?;
        runs.reverse();
        Ok(runs)
    }

    fn app_exists(&self, app: &AppName) -> Result<(), BackupError> {
        match self.ctx.store.app(app)? {
            Some(_) => Ok(()),
            None => Err(BackupError::AppNotFound(app.to_string())),
        }
    }

    fn hold(&self, app: &AppName) -> Result<crate::locks::AppLock, BackupError> {
        self.running
            .lock(app, Operation::Restore)
            .map_err(|Busy { app, .. }| BackupError::Busy { app })
    }

    /// Backs an app up now: one run, stored with its outcome whatever it is.
    pub async fn run(
        &self,
        op: &Op,
        app: &AppName,
        trigger: &str,
    ) -> Result<RunResult, BackupError> {
        self.app_exists(app)?;
        let _running = self.hold(app)?;
        let repo = self.repository().await?;
        let backup = self.run_held(op, app, trigger, &repo).await?;
        // The first good run after this process made the repository shows its key, once.
        let show = backup.state == BackupState::Succeeded
            && self
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
        };
        self.ctx.store.put_backup(&record)?;
        self.ctx
            .bus
            .step(op, app, format!("backing up {app} ({})", record.id));
        let outcome = self
            .back_up_parts(op, app, &record.id, repo, &mut record.parts)
            .await;
        record.finished_at = Some(now());
        match outcome {
            Ok(()) => {
                record.state = BackupState::Succeeded;
                self.ctx.store.put_backup(&record)?;
                self.ctx.bus.send(
                    op,
                    EventKind::BackedUp {
                        app: app.clone(),
                        backup: record.id.clone(),
                    },
                );
            }
            Err(e) => {
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
        let (reader, mut writer) = std::io::pipe().map_err(|e| BackupError::Io {
            path: self.repository_path(),
            why: e.to_string(),
        })?;
        let writing = std::thread::spawn(move || {
            use std::io::Write;
            writer.write_all(&record)
        });
        let confirmed = repo
            .backup_stdin(reader.into(), "app.json", &tags("record"), |_| {})
            .await;
        let _ = writing.join();
        add("record", confirmed?);

        if self.ctx.store.service(app, ServiceKind::Mariadb)?.is_some() {
            let Some(mariadb) = self.services.mariadb() else {
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

        let dir = self.services.storage().dir(app);
        if dir.is_dir() {
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
        let record = self
            .ctx
            .store
            .app(app)?
            .ok_or_else(|| BackupError::AppNotFound(app.to_string()))?;
        let revision = match record.current {
            Some(rev) => self.ctx.store.deploy(app, rev)?,
            None => None,
        };
        let value = serde_json::json!({
            "format": "minicloud-app/1",
            "app": record,
            "revision": revision,
        });
        // A JSON value of records with string keys: serde_json cannot fail on it.
        #[allow(clippy::expect_used)]
        let bytes = serde_json::to_vec_pretty(&value).expect("records serialize");
        Ok(bytes)
    }

    /// Restores `parts` of backup `id` into the app: a safety backup of the current state
    /// first, the app out of service meanwhile, and what was there put back if it fails.
    pub async fn restore(
        &self,
        op: &Op,
        app: &AppName,
        id: &str,
        parts: &[Part],
    ) -> Result<Restored, BackupError> {
        self.app_exists(app)?;
        let backup = self
            .ctx
            .store
            .backup(app, id)?
            .filter(|b| b.state == BackupState::Succeeded)
            .ok_or_else(|| BackupError::NotFound {
                app: app.to_string(),
                id: id.to_owned(),
            })?;
        let parts: Vec<Part> = if parts.is_empty() {
            vec![Part::Database, Part::Storage]
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
        let chosen: Vec<(Part, Option<String>)> = parts.iter().map(|&p| (p, snapshot(p))).collect();
        let _running = self.hold(app)?;
        let repo = self.repository().await?;
        self.ctx
            .bus
            .step(op, app, format!("taking {app} out of service"));
        let down = self.apps.take_down(op, app, Operation::Restore).await?;
        let result = self.restore_down(op, app, &repo, &chosen).await;
        self.ctx.bus.step(op, app, format!("serving {app} again"));
        let back = self.apps.bring_back(op, down).await;
        let (safety, loaded) = result?;
        back?;
        self.ctx.bus.send(
            op,
            EventKind::Restored {
                app: app.clone(),
                backup: id.to_owned(),
            },
        );
        Ok(Restored {
            app: app.clone(),
            backup: id.to_owned(),
            safety_backup: safety,
            parts,
            database: loaded,
        })
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
            };
            if let Err(e) = step {
                result = Err(e);
                break;
            }
        }
        let storage_dir = self.services.storage().dir(app);
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

    /// Empties the app's database and loads the dump of `snapshot` into it.
    async fn load_database(
        &self,
        app: &AppName,
        repo: &Repository,
        snapshot: &str,
    ) -> Result<Loaded, BackupError> {
        let mariadb = self
            .services
            .mariadb()
            .ok_or_else(|| BackupError::Invalid("minicloud has no MariaDB configured".into()))?;
        let account = self
            .ctx
            .store
            .service(app, ServiceKind::Mariadb)?
            .ok_or_else(|| BackupError::Invalid(format!("{app} has no database account")))?;
        let db = ServiceName::for_app(app)?;
        mariadb.recreate_database(app).await?;
        database::load(repo, snapshot, mariadb.settings(), &db, &account).await
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
        let dir = self.services.storage().dir(app);
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
            if has_db || self.services.storage().dir(&app.name).is_dir() {
                out.push((app.name, app.created_at));
            }
        }
        Ok(out)
    }

    /// Drops the good runs `policy` does not keep (records and snapshots), then prunes.
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
            })
            .collect();
        let drop_ids = plan::plan_retention(&planned, policy);
        if drop_ids.is_empty() {
            return Ok(0);
        }
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
            let apps = match self.apps_with_data() {
                Ok(apps) => apps,
                Err(e) => {
                    tracing::warn!(error = %e, "backup schedule: cannot list apps");
                    continue;
                }
            };
            for (app, created_at) in apps {
                // A new app's first scheduled run is at its first slot after it was made.
                let last = self
                    .ctx
                    .store
                    .backups(&app)
                    .ok()
                    .and_then(|runs| {
                        runs.iter()
                            .rev()
                            .find(|r| r.trigger == "schedule")
                            .map(|r| r.started_at)
                    })
                    .or(Some(created_at));
                if !plan::is_due(now(), plan::daily_minute(app.as_str()), last) {
                    continue;
                }
                let op = self.ctx.begin(crate::model::Actor::System);
                match self.run(&op, &app, "schedule").await {
                    Ok(done) => {
                        if let Err(e) = self.apply_retention(&app, plan::Retention::default()).await
                        {
                            tracing::warn!(%app, error = %e, "backup retention failed");
                        }
                        tracing::info!(%app, backup = %done.backup.id, state = ?done.backup.state, "scheduled backup ran");
                    }
                    Err(e) => tracing::warn!(%app, error = %e, "scheduled backup not run"),
                }
            }
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
