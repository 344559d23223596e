//! Each app's backup policy (schedule and retention, see [`BackupPolicy`]): read with the
//! defaults filled in, changed (the API, the CLI and the pages all call [`Backups::set_policy`]),
//! and applied as retention after each run. The schedule itself is read by `schedule`.

use super::{plan, BackupError, Backups};
use crate::model::{now, AppName, BackupPolicy, PolicyChange};
use crate::store::BackupPolicyRecord;

/// An app's policy as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyView {
    pub app: AppName,
    #[serde(flatten)]
    pub policy: BackupPolicy,
    /// The time of day (UTC, `HH:MM`) that `daily` stands for: spread by the app's name.
    pub daily_at: String,
    /// Whether the app has anything to back up (a database or storage): the scheduler
    /// passes over an app that has not.
    pub has_data: bool,
    /// Unix seconds: when the scheduler next backs the app up (a time past means within the
    /// minute). `None`: its schedule is off, or it has nothing to back up.
    pub next_run: Option<i64>,
    /// When an admin last changed the policy; `None`: the defaults, never changed.
    pub updated_at: Option<i64>,
}

impl Backups {
    /// `app`'s policy (the defaults when nobody changed it).
    pub fn policy(&self, app: &AppName) -> Result<PolicyView, BackupError> {
        let created_at = self.apps.app_record(app)?.created_at;
        let (policy, since) = self.schedule_of(app, created_at)?;
        let updated_at = self.ctx.store.backup_policy(app)?.map(|r| r.updated_at);
        let has_data = self.has_data(app)?;
        let next_run = has_data
            .then(|| plan::next_scheduled(now(), policy.schedule, app.as_str(), since))
            .flatten();
        let spread = plan::daily_minute(app.as_str());
        Ok(PolicyView {
            app: app.clone(),
            policy,
            daily_at: format!("{:02}:{:02}", spread / 60, spread % 60),
            has_data,
            next_run,
            updated_at,
        })
    }

    /// Changes `app`'s policy: what `change` names replaces, the rest stays. Bad input is
    /// refused whole (nothing changes) with a sentence that says what is accepted.
    pub fn set_policy(
        &self,
        app: &AppName,
        change: &PolicyChange,
    ) -> Result<PolicyView, BackupError> {
        self.apps.app_record(app)?;
        let stored = self.ctx.store.backup_policy(app)?;
        let current = stored.as_ref().map(|r| r.policy).unwrap_or_default();
        let next = change.apply_to(current).map_err(|e| {
            BackupError::Invalid(format!("The backup policy of {app} was not changed: {e}."))
        })?;
        if next != current {
            let at = now();
            // Only a new schedule moves the scheduler's reference time (see `schedule_of`).
            let schedule_changed_at = if next.schedule != current.schedule {
                at
            } else {
                stored.map_or(0, |r| r.schedule_changed_at)
            };
            self.ctx.store.put_backup_policy(&BackupPolicyRecord {
                app: app.clone(),
                policy: next,
                updated_at: at,
                schedule_changed_at,
            })?;
            tracing::info!(%app, schedule = %next.schedule, keep_last = next.keep_last,
                keep_daily = next.keep_daily, keep_weekly = next.keep_weekly,
                keep_monthly = next.keep_monthly, "backup policy changed");
        }
        self.policy(app)
    }

    /// Gives `app` (a clone just made) the policy a backup's record held.
    pub(super) fn adopt_policy(
        &self,
        app: &AppName,
        policy: BackupPolicy,
    ) -> Result<(), BackupError> {
        policy
            .validate()
            .map_err(|e| BackupError::Invalid(e.to_string()))?;
        let at = now();
        self.ctx.store.put_backup_policy(&BackupPolicyRecord {
            app: app.clone(),
            policy,
            updated_at: at,
            schedule_changed_at: at,
        })?;
        Ok(())
    }

    /// Retention by `app`'s policy (the platform's: the defaults). Logged, never fatal: the
    /// run before it stands, and the next run's retention tries again.
    pub(super) async fn retain(&self, app: &AppName) {
        let policy = match self.ctx.store.backup_policy(app) {
            Ok(record) => record.map(|r| r.policy).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(%app, error = %e, "backup retention skipped: cannot read the app's policy");
                return;
            }
        };
        match self
            .apply_retention(app, plan::Retention::from(&policy))
            .await
        {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(%app, dropped, "backup retention dropped old runs"),
            Err(e) => tracing::warn!(%app, error = %e, "backup retention failed"),
        }
    }
}
