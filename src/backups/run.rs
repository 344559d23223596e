//! A backup run: the app's record, its database dump, its queue definitions and its storage
//! as restic snapshots of one run, its honest outcome stored whatever it is, and the run
//! before a new image replaces a serving one.

use rand::Rng;

use super::restic::{self, Repository};
use super::{database, BackupError, Backups, RunResult, SavedApp, QUEUES_FILE, RECORD_FILE};
use crate::bus::{EventKind, Op};
use crate::model::{now, AppName, ServiceKind};
use crate::services::ServiceName;
use crate::store::{BackupPart, BackupRecord, BackupState, Destination};

/// The trigger of the run before a new image replaces a serving one.
const DEPLOY: &str = "deploy";

impl Backups {
    /// Backs an app (or, given [`AppName::platform`], the platform: see [`platform`]) up
    /// now: one run, stored with its outcome whatever it is; then, when it wrote a backup,
    /// retention by the app's policy (after manual and scheduled runs alike, so `keep_last`
    /// holds however the runs were started). A retention that fails is logged: the run
    /// stands, and the next run's retention tries again.
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
        // Not after the run before a deploy: the deploy waits for it, and a prune can take
        // long; the next manual or scheduled run's retention counts it.
        if backup.state.is_restorable() && trigger != DEPLOY {
            self.retain(app).await;
        }
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

    pub(super) async fn run_held(
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
            backup_policy: self.ctx.store.backup_policy(app)?.map(|r| r.policy),
        };
        // Records with string keys: serde_json cannot fail on them.
        #[allow(clippy::expect_used)]
        let bytes = serde_json::to_vec_pretty(&saved).expect("records serialize");
        Ok(bytes)
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
