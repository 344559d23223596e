//! The platform backup: minicloud's own state, as one restic snapshot tagged `platform`, and
//! its restore into a fresh install's store (the first step of the whole-box restore, see
//! `wholebox`).
//!
//! The snapshot holds one file, `state.redb`: a copy of the state store written from one read
//! transaction (`Store::copy_to`), never the file while it is written. The store holds all of
//! minicloud's state: apps and their revisions, routes, certificates and their keys, ACME
//! accounts, users, tokens, alert channels, backup records and the repository password.
//! Settings are not state: they are the operator's config file and `MINICLOUD_*` variables,
//! outside the data dir, and a restored box starts with its own.
//!
//! A platform run is a run like an app's (`Backups::run` with [`AppName::platform`]): the same
//! states, the same S3 copy, the same retention and schedule; its records are kept under the
//! reserved name `minicloud`, which no app can have.

use std::path::{Path, PathBuf};

use crate::model::{now, AppName};
use crate::store::{BackupPart, BackupRecord, BackupState, Destination, Store};

use super::{BackupError, Backups, Repository};

/// The tag of every platform snapshot (app snapshots have `app:<name>`).
pub const TAG: &str = "platform";
/// The store's file inside a platform snapshot.
pub const STORE_FILE: &str = "state.redb";
/// The part of a platform run.
pub const PART: &str = "store";

/// The tag that tells a subject's snapshots from the others: `platform`, or `app:<name>`.
pub fn subject_tag(subject: &AppName) -> String {
    if subject.is_platform() {
        TAG.to_owned()
    } else {
        format!("app:{subject}")
    }
}

impl Backups {
    /// The platform's runs, newest first.
    pub fn list_platform(&self) -> Result<Vec<BackupRecord>, BackupError> {
        let mut runs = self.ctx.store.backups(&AppName::platform())?;
        runs.reverse();
        Ok(runs)
    }

    /// Writes the store's copy into the repository: the one part of a platform run.
    pub(super) async fn back_up_platform(
        &self,
        id: &str,
        repo: &Repository,
        parts: &mut Vec<BackupPart>,
    ) -> Result<(), BackupError> {
        let store = self.ctx.store.clone();
        // Beside the store: the same disk and the same private directory, not a tmpfs.
        let state = self.ctx.config.state_path();
        let dir = state.parent().unwrap_or(Path::new("."));
        let copy = dir.join(format!(".platform-backup-{id}.redb"));
        let io = |path: &Path, e: &dyn std::fmt::Display| BackupError::Io {
            path: path.to_path_buf(),
            why: e.to_string(),
        };
        let made = copy.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_file(&made);
            let copied = store.copy_to(&made).map_err(|e| io(&made, &e));
            let bytes = copied.and_then(|_| std::fs::read(&made).map_err(|e| io(&made, &e)));
            let _ = std::fs::remove_file(&made);
            bytes
        })
        .await
        .map_err(|e| io(&copy, &e))??;
        let tags = vec![TAG.to_owned(), format!("run:{id}"), format!("part:{PART}")];
        let c = repo.backup_bytes(bytes, STORE_FILE, &tags).await?;
        parts.push(BackupPart {
            part: PART.to_owned(),
            snapshot: c.snapshot,
            bytes: c.bytes,
            added: c.added,
        });
        Ok(())
    }
}

/// What a whole-box restore brought back.
#[derive(Debug, Clone)]
pub struct PlatformRestored {
    /// The platform run restored, and its snapshot.
    pub run: String,
    pub snapshot: String,
    pub state_path: PathBuf,
    /// Each app with its image (pinned to its digest when it has a serving revision).
    pub apps: Vec<RestoredApp>,
    pub routes: usize,
    pub certificates: usize,
    /// A store was there and was replaced (`--force`, or it had no apps).
    pub replaced: bool,
}

#[derive(Debug, Clone)]
pub struct RestoredApp {
    pub name: AppName,
    pub image: String,
    pub revision: Option<u64>,
}

/// Refuses when a store with apps is at `state_path`, unless `force`: a restore would replace
/// them. Opening it also refuses while a minicloud has it open.
pub fn check_replaceable(state_path: &Path, force: bool) -> Result<(), BackupError> {
    if !state_path.exists() {
        return Ok(());
    }
    let existing = Store::open(state_path)?;
    let apps = existing.apps()?;
    if !apps.is_empty() && !force {
        let names: Vec<String> = apps.iter().map(|a| a.name.to_string()).collect();
        return Err(BackupError::Invalid(format!(
            "{} already holds a store with {} app(s) ({}): a restore would replace them; \
             pass --force to replace it anyway",
            state_path.display(),
            apps.len(),
            names.join(", ")
        )));
    }
    Ok(())
}

/// Restores the newest platform snapshot of `repo` into the store at `state_path`, with
/// minicloud stopped. Refuses when a store with apps is there, unless `force`. The restored
/// platform run is recorded as succeeded (the snapshot read is its proof); any run the copy
/// caught while running is recorded as failed, since nothing will finish it.
pub async fn restore_platform(
    repo: &Repository,
    state_path: &Path,
    force: bool,
) -> Result<PlatformRestored, BackupError> {
    let io = |path: &Path, e: std::io::Error| BackupError::Io {
        path: path.to_path_buf(),
        why: e.to_string(),
    };
    let replaced = state_path.exists();
    check_replaceable(state_path, force)?;
    let newest = repo
        .snapshots(TAG)
        .await?
        .into_iter()
        .filter_map(|s| {
            let run = s
                .tags
                .iter()
                .find_map(|t| t.strip_prefix("run:"))?
                .to_owned();
            Some((run, s.short_id))
        })
        // Run ids start with their time, ten digits: the greatest is the newest.
        .max();
    let Some((run, snapshot)) = newest else {
        return Err(BackupError::Invalid(format!(
            "the repository {} has no platform backup (snapshots tagged '{TAG}')",
            repo.describe()
        )));
    };
    let bytes = repo.read_file(&snapshot, STORE_FILE).await?;
    let dir = state_path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let fresh = dir.join(".restoring-state.redb");
    let _ = std::fs::remove_file(&fresh);
    write_synced(&fresh, &bytes).map_err(|e| io(&fresh, e))?;
    let size = bytes.len() as u64;
    let settled = settle_runs(&fresh, &run, &snapshot, size, &repo.describe());
    if let Err(e) = settled {
        let _ = std::fs::remove_file(&fresh);
        return Err(e);
    }
    std::fs::rename(&fresh, state_path).map_err(|e| io(state_path, e))?;

    let store = Store::open(state_path)?;
    let mut apps = Vec::new();
    for app in store.apps()? {
        let revision = app.current;
        let image = match revision {
            Some(rev) => store
                .deploy(&app.name, rev)?
                .map(|d| format!("{}@{}", d.image, d.digest))
                .unwrap_or_else(|| app.image.to_string()),
            None => app.image.to_string(),
        };
        apps.push(RestoredApp {
            name: app.name,
            image,
            revision,
        });
    }
    Ok(PlatformRestored {
        run,
        snapshot,
        state_path: state_path.to_path_buf(),
        apps,
        routes: store.routes()?.len(),
        certificates: store.certificates()?.len(),
        replaced,
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// In the restored store: the platform run it came from succeeded (it was `running` when its
/// copy was taken), and runs caught running are failed.
fn settle_runs(
    path: &Path,
    run: &str,
    snapshot: &str,
    size: u64,
    location: &str,
) -> Result<(), BackupError> {
    let store = Store::open(path)?;
    let mut subjects = vec![AppName::platform()];
    subjects.extend(store.apps()?.into_iter().map(|a| a.name));
    for subject in subjects {
        for mut record in store.backups(&subject)? {
            if record.state != BackupState::Running {
                continue;
            }
            if subject.is_platform() && record.id == run {
                record.state = BackupState::Succeeded;
                record.parts = vec![BackupPart {
                    part: PART.to_owned(),
                    snapshot: snapshot.to_owned(),
                    bytes: size,
                    added: 0,
                }];
                record.destinations = vec![Destination {
                    kind: "local".into(),
                    location: location.to_owned(),
                    confirmed: true,
                    snapshots: vec![snapshot.to_owned()],
                    error: None,
                }];
            } else {
                record.state = BackupState::Failed {
                    reason: "interrupted: the platform backup restored was taken while this \
                             run was in progress"
                        .into(),
                };
            }
            record.finished_at.get_or_insert(now());
            store.put_backup(&record)?;
        }
    }
    Ok(())
}
