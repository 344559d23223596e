//! The backup records: one per run of one app, the repository's password, the restores a
//! whole-box restore still owes its apps, and each app's backup policy (schedule and
//! retention; no record: the defaults).

use redb::ReadableTable;

use crate::model::backup_policy::BackupPolicy;
use crate::model::name::AppName;
use crate::model::secret::Secret;

use super::table::{Keyed, Record};
use super::{app_range, Store, StoreError};

/// One backup run of one app. Its parts are restic snapshots tagged with the run's id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupRecord {
    /// The app, or `minicloud` for the platform's own runs ([`AppName::platform`]).
    #[serde(deserialize_with = "crate::model::name::deserialize_backup_subject")]
    pub app: AppName,
    /// Sortable: `<unix seconds, 10 digits>-<4 hex>`.
    pub id: String,
    /// `manual`, `schedule`, `safety` (taken before a restore) or `deploy` (before a new
    /// image replaced the serving one).
    pub trigger: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    #[serde(flatten)]
    pub state: BackupState,
    pub parts: Vec<BackupPart>,
    /// The last check of its dump in a scratch database (see `backups::verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verification>,
    /// Where the run was written, each with its confirmation: the local repository, then
    /// the S3 bucket when one is configured. Empty in runs recorded before there were
    /// several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Destination>,
}

/// One place a run was written to, and whether it confirmed every snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Destination {
    /// `local` or `s3`.
    pub kind: String,
    /// A path, or `https://host/bucket/prefix`.
    pub location: String,
    pub confirmed: bool,
    /// The snapshot ids there, in the order of `parts` (the local ones are the parts').
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<String>,
    /// Why it did not confirm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A dump restored into a scratch database and compared with what it holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verification {
    /// Unix seconds.
    pub at: i64,
    pub ok: bool,
    pub tables: u64,
    pub rows: u64,
    /// Why it is not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum BackupState {
    Running,
    /// Every part's snapshot was confirmed by every destination.
    Succeeded,
    /// The local repository confirmed every part, another destination (S3) did not: the
    /// run restores from the local copy, and does not count toward retention.
    Partial {
        reason: String,
    },
    Failed {
        reason: String,
    },
    /// The scheduled time passed with minicloud not running; nothing was written.
    Missed {
        reason: String,
    },
}

impl BackupState {
    /// Its local copy is whole: a restore, a download or a verification may read it.
    pub fn is_restorable(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Partial { .. })
    }
}

/// One part of a run, as the repository confirmed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupPart {
    /// `database`, `storage`, `queues` or `record`; `store` in a platform run.
    pub part: String,
    /// The restic snapshot id.
    pub snapshot: String,
    /// Bytes read.
    pub bytes: u64,
    /// Bytes the repository grew by (after deduplication and compression).
    pub added: u64,
}

impl Verification {
    /// In words: "verified <when>: 3 tables, 120 rows", or why the check failed.
    pub fn describe(&self) -> String {
        let at = crate::model::format_time(self.at);
        match &self.problem {
            None => format!("verified {at}: {} tables, {} rows", self.tables, self.rows),
            Some(problem) => format!("verification failed {at}: {problem}"),
        }
    }
}

/// The restic repository's password (one repository per minicloud).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RepositoryKey {
    pub password: Secret,
    pub created_at: i64,
}

/// Keyed `<app>/<id>` so one app's runs are one ordered range.
impl Record for BackupRecord {
    const NAME: &'static str = "backups";
}
impl Keyed for BackupRecord {
    fn key(&self) -> String {
        format!("{}/{}", self.app, self.id)
    }
}

/// One row, keyed `repository`.
impl Record for RepositoryKey {
    const NAME: &'static str = "backup_keys";
}

const REPOSITORY: &str = "repository";

/// What a whole-box restore still owes one app: at minicloud's next start its data comes back
/// from `backup`, before it is deployed (see `backups::wholebox`). Kept until that restore, or
/// one a person starts, succeeds; a failed try is recorded here and tried again at each start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingRestore {
    pub app: AppName,
    /// The app's run to restore.
    pub backup: String,
    /// The platform run the store came back from.
    pub platform_run: String,
    pub requested_at: i64,
    /// The last try, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<RestoreFailure>,
}

/// Why a pending restore's last try failed, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestoreFailure {
    pub at: i64,
    pub reason: String,
}

/// Keyed by the app's name: one pending restore per app.
impl Record for PendingRestore {
    const NAME: &'static str = "pending_restores";
}
impl Keyed for PendingRestore {
    fn key(&self) -> String {
        self.app.to_string()
    }
}

/// An app's backup policy as its admin set it. Apps without one have the defaults
/// ([`BackupPolicy::default`]), so no record is written until someone changes it. Deleted
/// with the app; a whole-box restore brings it back with the rest of the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupPolicyRecord {
    pub app: AppName,
    #[serde(flatten)]
    pub policy: BackupPolicy,
    /// Unix seconds: when an admin last changed it.
    pub updated_at: i64,
    /// Unix seconds: when its schedule last changed (0: never). The scheduler's first run
    /// after that is at the first slot after it (a slot passed before was not missed); a
    /// change of retention alone moves nothing.
    #[serde(default)]
    pub schedule_changed_at: i64,
}

/// Keyed by the app's name.
impl Record for BackupPolicyRecord {
    const NAME: &'static str = "backup_policies";
}
impl Keyed for BackupPolicyRecord {
    fn key(&self) -> String {
        self.app.to_string()
    }
}

impl Store {
    /// The policy `app`'s admin set; `None`: the defaults.
    pub fn backup_policy(&self, app: &AppName) -> Result<Option<BackupPolicyRecord>, StoreError> {
        self.get(app.as_str())
    }

    pub fn put_backup_policy(&self, record: &BackupPolicyRecord) -> Result<(), StoreError> {
        self.put(record)
    }

    /// Every run of `app`, oldest first.
    pub fn backups(&self, app: &AppName) -> Result<Vec<BackupRecord>, StoreError> {
        self.list_range(app_range(app))
    }

    pub fn backup(&self, app: &AppName, id: &str) -> Result<Option<BackupRecord>, StoreError> {
        self.get(&format!("{app}/{id}"))
    }

    pub fn put_backup(&self, record: &BackupRecord) -> Result<(), StoreError> {
        self.put(record)
    }

    pub fn delete_backup(&self, app: &AppName, id: &str) -> Result<bool, StoreError> {
        self.delete::<BackupRecord>(&format!("{app}/{id}"))
    }

    /// The repository's password, made by `make` and kept on first use. Returns it and
    /// whether it was made now.
    pub fn ensure_repository_key(
        &self,
        make: impl FnOnce() -> RepositoryKey,
    ) -> Result<(RepositoryKey, bool), StoreError> {
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(super::db_err)?;
            let found = {
                let table = txn
                    .open_table(RepositoryKey::TABLE)
                    .map_err(super::db_err)?;
                let value = table.get(REPOSITORY).map_err(super::db_err)?;
                value
                    .map(|v| super::table::decode::<RepositoryKey>(REPOSITORY, v.value()))
                    .transpose()?
            };
            if let Some(key) = found {
                return Ok((key, false));
            }
            let key = make();
            super::table::insert_at(&txn, REPOSITORY, &key)?;
            txn.commit().map_err(super::db_err)?;
            Ok((key, true))
        })
    }

    pub fn repository_key(&self) -> Result<Option<RepositoryKey>, StoreError> {
        self.get(REPOSITORY)
    }

    /// Every app's pending restore (see [`PendingRestore`]), by app name.
    pub fn pending_restores(&self) -> Result<Vec<PendingRestore>, StoreError> {
        self.list()
    }

    pub fn pending_restore(&self, app: &AppName) -> Result<Option<PendingRestore>, StoreError> {
        self.get(app.as_str())
    }

    pub fn put_pending_restore(&self, record: &PendingRestore) -> Result<(), StoreError> {
        self.put(record)
    }

    /// Returns whether there was one.
    pub fn delete_pending_restore(&self, app: &AppName) -> Result<bool, StoreError> {
        self.delete::<PendingRestore>(app.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_per_app_in_order_and_the_key_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let run = |app: &str, id: &str| BackupRecord {
            app: AppName::try_new(app).unwrap(),
            id: id.into(),
            trigger: "manual".into(),
            started_at: 1,
            finished_at: None,
            state: BackupState::Running,
            parts: vec![],
            verified: None,
            destinations: vec![],
        };
        for r in [
            run("a", "0000000002-aa"),
            run("a", "0000000001-bb"),
            run("a-b", "0000000001-cc"),
        ] {
            store.put_backup(&r).unwrap();
        }
        let a = AppName::try_new("a").unwrap();
        let ids: Vec<_> = store
            .backups(&a)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["0000000001-bb", "0000000002-aa"]);
        let (first, made) = store
            .ensure_repository_key(|| RepositoryKey {
                password: Secret::new("one"),
                created_at: 1,
            })
            .unwrap();
        assert!(made);
        let (again, made) = store
            .ensure_repository_key(|| RepositoryKey {
                password: Secret::new("two"),
                created_at: 2,
            })
            .unwrap();
        assert!(!made);
        assert_eq!(again.password, first.password);
        assert_eq!(
            store.repository_key().unwrap().unwrap().password.expose(),
            "one"
        );
    }

    #[test]
    fn a_policy_is_kept_per_app_and_goes_with_the_app() {
        use crate::model::{BackupPolicy, Schedule};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let a = AppName::try_new("a").unwrap();
        let record = BackupPolicyRecord {
            app: a.clone(),
            policy: BackupPolicy {
                schedule: Schedule::At(90),
                keep_last: 1,
                ..BackupPolicy::default()
            },
            updated_at: 5,
            schedule_changed_at: 5,
        };
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.backup_policy(&a).unwrap(), None);
            store.put_backup_policy(&record).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.backup_policy(&a).unwrap(), Some(record));
        let other = AppName::try_new("a-b").unwrap();
        assert_eq!(store.backup_policy(&other).unwrap(), None);
        store.delete_app(&a).unwrap();
        assert_eq!(store.backup_policy(&a).unwrap(), None);
    }
}
