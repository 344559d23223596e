//! The schedule: each app with data (and the platform) backed up daily at the time its
//! policy says (by default a minute spread by its name; never when its schedule is off), a
//! slot missed while minicloud was down recorded as missed, retention after each run (by
//! the app's policy), and a weekly verification (not for an app whose schedule is off).

use super::{plan, BackupError, Backups, Part};
use crate::bus::Op;
use crate::model::{now, AppName, ServiceKind};
use crate::store::{BackupRecord, BackupState};

/// The trigger of scheduled runs (and of the slots they missed).
const SCHEDULE: &str = "schedule";

impl Backups {
    /// Every app with something to back up (a database or storage), and when it was made.
    pub fn apps_with_data(&self) -> Result<Vec<(AppName, i64)>, BackupError> {
        let mut out = Vec::new();
        for app in self.ctx.store.apps()? {
            if self.has_data(&app.name)? {
                out.push((app.name, app.created_at));
            }
        }
        Ok(out)
    }

    /// Whether `app` has a database or storage.
    pub(super) fn has_data(&self, app: &AppName) -> Result<bool, BackupError> {
        let has_db = self.ctx.store.service(app, ServiceKind::Mariadb)?.is_some();
        Ok(has_db || self.services().storage().dir(app).is_dir())
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

    /// One look of the scheduler: each app's policy says whether and when (see
    /// [`plan::plan_tick`]). A slot long past (minicloud was down then) is recorded as missed
    /// before the run that catches up; retention follows the run (see [`Backups::run`]).
    async fn schedule_tick(&self) {
        let apps = match self.apps_with_data() {
            Ok(apps) => apps,
            Err(e) => {
                tracing::warn!(error = %e, "backup schedule: cannot list apps");
                return;
            }
        };
        // The platform's daily run goes with the apps' (its slot spread by its name too,
        // and its policy always the default: it has no settings of its own).
        let subjects = std::iter::once((AppName::platform(), self.started_at)).chain(apps);
        for (app, created_at) in subjects {
            let (policy, since) = match self.schedule_of(&app, created_at) {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(%app, error = %e, "backup schedule: cannot read the app's policy");
                    continue;
                }
            };
            let plan::Tick::Run { slot, missed } =
                plan::plan_tick(now(), policy.schedule, app.as_str(), since)
            else {
                continue;
            };
            if missed {
                if let Err(e) = self.record_missed(&app, slot) {
                    tracing::warn!(%app, error = %e, "cannot record a missed backup");
                }
            }
            let op = self.ctx.begin(crate::model::Actor::System);
            match self.run(&op, &app, SCHEDULE).await {
                Ok(done) => {
                    tracing::info!(%app, backup = %done.backup.id, state = ?done.backup.state, "scheduled backup ran");
                }
                Err(e) => tracing::warn!(%app, error = %e, "scheduled backup not run"),
            }
            if !app.is_platform() {
                self.verify_weekly(&op, &app).await;
            }
        }
    }

    /// `app`'s policy, and the time after which its next scheduled slot counts (see
    /// [`plan::plan_tick`]): its last scheduled run's start (none yet: when it was made,
    /// `created_at`), or when its schedule changed if that is later.
    pub(super) fn schedule_of(
        &self,
        app: &AppName,
        created_at: i64,
    ) -> Result<(crate::model::BackupPolicy, i64), BackupError> {
        let record = self.ctx.store.backup_policy(app)?;
        let last_scheduled = self
            .ctx
            .store
            .backups(app)?
            .iter()
            .rev()
            .find(|r| r.trigger == SCHEDULE && !matches!(r.state, BackupState::Missed { .. }))
            .map(|r| r.started_at);
        // A new app's (and a just-started platform's) first scheduled run is at its first
        // slot after it was made.
        let since = last_scheduled
            .unwrap_or(created_at)
            .max(record.as_ref().map_or(i64::MIN, |r| r.schedule_changed_at));
        Ok((record.map(|r| r.policy).unwrap_or_default(), since))
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
