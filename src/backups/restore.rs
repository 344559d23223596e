//! Restores: parts of a run brought back into the app, or into a clone made from the run's
//! record, behind a 503 page, with a safety backup first and what was there put back when a
//! part fails.

use std::path::PathBuf;

use super::restic::Repository;
use super::{database, BackupError, Backups, Loaded, Part, SavedApp, QUEUES_FILE, RECORD_FILE};
use crate::apps::{NewApp, TakenDown};
use crate::bus::{EventKind, Op};
use crate::model::{now, AppName, Operation, ServiceKind};
use crate::services::ServiceName;
use crate::store::{BackupRecord, BackupState};

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

impl Backups {
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
        let down = self.take_down_for_restore(op, target).await?;
        let result = async {
            let safety = self.safety_backup(op, target, &repo).await?;
            let loaded = self
                .restore_down(op, target, &repo, &chosen, Some(&safety))
                .await?;
            Ok::<_, BackupError>((safety.id, loaded))
        }
        .await;
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
    pub(super) fn plan_parts(
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
    /// its variables, limits, backup policy and registry login (not its custom domains, which stay the
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
        if let Some(policy) = saved.backup_policy {
            self.adopt_policy(new, policy)?;
        }
        Ok(())
    }

    /// Takes `app` out of service for a restore, under its operation lock: its hosts answer
    /// a 503 page saying it is being restored.
    pub(super) async fn take_down_for_restore(
        &self,
        op: &Op,
        app: &AppName,
    ) -> Result<TakenDown, BackupError> {
        let why = format!(
            "The app {app} is being restored from a backup and will be back in a few minutes"
        );
        Ok(self
            .apps
            .take_down(op, app, Operation::Restore, why)
            .await?)
    }

    /// A backup of what the app holds before a restore (trigger `safety`), with the app
    /// down and locked; what a failed restore puts back from.
    pub(super) async fn safety_backup(
        &self,
        op: &Op,
        app: &AppName,
        repo: &Repository,
    ) -> Result<BackupRecord, BackupError> {
        self.ctx
            .bus
            .step(op, app, "taking a safety backup of the current state");
        let safety = self.run_held(op, app, "safety", repo).await?;
        if let BackupState::Failed { reason } = &safety.state {
            return Err(BackupError::Invalid(format!(
                "the safety backup failed, so nothing was restored: {reason}"
            )));
        }
        Ok(safety)
    }

    /// The restore proper, with the app down and locked. A failed part puts back what was
    /// there: the storage directory always, the database and queues from `safety` (none: the
    /// app had nothing to lose, as at the start of a whole-box restore).
    pub(super) async fn restore_down(
        &self,
        op: &Op,
        app: &AppName,
        repo: &Repository,
        parts: &[(Part, Option<String>)],
        safety: Option<&BackupRecord>,
    ) -> Result<Option<Loaded>, BackupError> {
        let safety_snapshot = |part: &str| {
            safety?
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
                Ok(loaded)
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
                                 the safety backup {} holds it", safety.map_or("", |s| s.id.as_str())
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
