//! The off-site destination's side of the backup operations: the copy of each run to the S3
//! repository, the S3 test action, and retention there. The S3 settings, the object test and
//! restic's S3 repository are in `s3` and `restic`.

use crate::bus::Op;
use crate::model::AppName;
use crate::store::{BackupState, Destination};

use super::{plan, s3, BackupError, Backups, Repository};

impl Backups {
    /// The S3 destination's repository, when one is configured.
    pub(super) fn offsite_repository(&self) -> Result<Option<Repository>, BackupError> {
        match &self.ctx.config.backup_s3 {
            Some(s3) => Ok(Some(Repository::s3(s3.clone(), self.key()?))),
            None => Ok(None),
        }
    }

    /// The S3 repository as restic names it (`s3:https://host/bucket/prefix`), when one is
    /// configured.
    pub fn s3_repository(&self) -> Option<String> {
        self.ctx.config.backup_s3.as_ref().map(|s3| s3.repository())
    }

    /// Copies the run's local snapshots to S3, when it is configured (`None` otherwise), and
    /// says whether S3 confirmed each. The S3 repository is made on first use.
    pub(super) async fn copy_offsite(
        &self,
        op: &Op,
        app: &AppName,
        id: &str,
        snapshots: &[String],
        local: &Repository,
    ) -> Option<Destination> {
        let s3 = self.ctx.config.backup_s3.as_ref()?;
        let location = s3.describe();
        self.ctx
            .bus
            .step(op, app, format!("copying the backup to S3 at {location}"));
        let copied = async {
            let Some(remote) = self.offsite_repository()? else {
                return Ok(Vec::new());
            };
            // Every run looks first (one small request): an S3 server gone silent shows here
            // within the probe's time, not after restic's retries of a whole copy.
            let making = self.offsite_made.lock().await;
            if probe(remote.ensure_copy_of(local)).await? {
                tracing::info!(destination = %location, "made the S3 backup repository");
            }
            drop(making);
            remote
                .copy_from(local, snapshots, &format!("run:{id}"))
                .await
        }
        .await;
        Some(match copied {
            Ok(copies) => Destination {
                kind: "s3".into(),
                location,
                confirmed: true,
                snapshots: copies,
                error: None,
            },
            Err(e) => {
                tracing::warn!(%app, backup = %id, destination = %location, error = %e, "the copy to S3 failed");
                Destination {
                    kind: "s3".into(),
                    error: Some(format!("the copy to S3 at {location} failed: {e}")),
                    location,
                    confirmed: false,
                    snapshots: Vec::new(),
                }
            }
        })
    }

    /// The S3 destination's test: writes, reads back and deletes one object, then opens the
    /// restic repository there (if there is one yet) with the password.
    pub async fn test_s3(&self) -> Result<s3::S3Check, BackupError> {
        let Some(s3) = &self.ctx.config.backup_s3 else {
            return Err(BackupError::Invalid(
                "no S3 destination is configured: set backup_s3_endpoint, backup_s3_bucket, \
                 backup_s3_access_key and backup_s3_secret_key (see the README's Configuration)"
                    .into(),
            ));
        };
        let mut check = s3::check_objects(s3).await;
        if !check.ok {
            return Ok(check);
        }
        let remote = Repository::s3(s3.clone(), self.key()?);
        match probe(remote.exists()).await {
            Ok(true) => check.passed(
                "repository",
                "a restic repository is there and opens with this minicloud's password",
            ),
            Ok(false) => check.passed(
                "repository",
                "no restic repository there yet: the next backup makes it",
            ),
            Err(e) => {
                let advice = if e.to_string().contains("wrong password") {
                    "a restic repository of another password is at this place: choose another \
                     backup_s3_prefix, or use this minicloud's own place"
                } else {
                    "restic cannot open the repository there: see the detail"
                };
                check.failed("repository", e.to_string(), advice.into());
            }
        }
        Ok(check)
    }

    /// Forgets the app's snapshots in S3 whose run is no longer a succeeded run (dropped by
    /// retention, or the leftovers of a partial copy), then prunes. A running run's are kept.
    pub(super) async fn sweep_offsite(
        &self,
        app: &AppName,
        remote: &Repository,
    ) -> Result<usize, BackupError> {
        // No run has reached S3 yet: nothing there to forget.
        if !probe(remote.exists()).await? {
            return Ok(0);
        }
        let runs = self.ctx.store.backups(app)?;
        let keep: Vec<&str> = runs
            .iter()
            .filter(|r| matches!(r.state, BackupState::Succeeded | BackupState::Running))
            .map(|r| r.id.as_str())
            .collect();
        let there: Vec<plan::Copied> = remote
            .snapshots(&super::platform::subject_tag(app))
            .await?
            .into_iter()
            .map(|s| plan::Copied {
                run: s
                    .tags
                    .iter()
                    .find_map(|t| t.strip_prefix("run:"))
                    .map(str::to_owned),
                snapshot: s.short_id,
            })
            .collect();
        let stale = plan::plan_offsite_forget(&keep, &there);
        if stale.is_empty() {
            return Ok(0);
        }
        remote.forget(&stale).await?;
        remote.prune().await?;
        Ok(stale.len())
    }
}

/// How long looking for the S3 repository (or making it) may take: a second when the
/// server answers; restic's own retries against one that does not would take many minutes.
const S3_PROBE: std::time::Duration = std::time::Duration::from_secs(60);

/// `look` within [`S3_PROBE`]; the restic child is killed when it is dropped at the end.
async fn probe<T>(
    look: impl std::future::Future<Output = Result<T, BackupError>>,
) -> Result<T, BackupError> {
    tokio::time::timeout(S3_PROBE, look)
        .await
        .unwrap_or_else(|_| {
            Err(BackupError::Tool {
                tool: "restic",
                action: "cat config",
                why: format!(
                    "no answer from the S3 server within {} s",
                    S3_PROBE.as_secs()
                ),
            })
        })
}
