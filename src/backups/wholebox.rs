//! The whole-box restore: a new server brought back from a repository, apps, data and all.
//!
//! Two halves, because one runs without minicloud and the other needs it:
//! - `minicloud restore` ([`prepare`], minicloud stopped): brings the repository's snapshots
//!   into `<data-dir>/backups` when it is elsewhere (another directory, or an S3 bucket:
//!   `restic copy`, so the new server's own repository is whole again and every later run,
//!   restore and retention works on it as before), puts the state store back from the newest
//!   platform backup ([`super::platform`]), and records for each app a [`PendingRestore`]
//!   naming its newest good run whose every part is in that repository.
//! - `minicloud serve` ([`Backups::resume_restores`], after the start-up reconcile): each
//!   app with a pending restore gets, under its lock, its services made (database, vhost,
//!   storage), the run's data through the ordinary restore path (`restore_down`: database,
//!   queues, storage, put back on failure; no safety backup, since the app's services are
//!   new and empty, unlike a restore a person starts), and then a deploy of its
//!   recorded revision, at its digest. The mark goes only once that succeeded; a failure is
//!   kept on it with the reason, the app stays out of service, and the other apps go on.
//!
//! The copy, not a restore straight from S3: a backup record names its local snapshots, the
//! restore path reads the local repository, and the server needs its own repository anyway;
//! the copy keeps each snapshot's `original`, so the records are mapped to the copies by it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bus::Op;
use crate::model::{now, AppName, Secret};
use crate::store::{BackupRecord, Owner, OwnerLock, PendingRestore, RestoreFailure, Store};

use super::platform::{restore_platform, PlatformRestored};
use super::restic::{Snapshot, TAG};
use super::s3::S3Settings;
use super::{BackupError, Backups, Repository};

/// Where `minicloud restore --repository` reads from.
#[derive(Debug, Clone)]
pub enum Source {
    Local(PathBuf),
    S3(Arc<S3Settings>),
}

/// Reads `--repository`: a directory, or restic's `s3:<endpoint>/<bucket>/<prefix>` (an
/// endpoint without a scheme is https). The keys, region and bucket style of an S3 source come
/// from the `backup_s3_*` settings when they are set, else from `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_DEFAULT_REGION` in `env`.
pub fn parse_source(
    arg: &str,
    configured: Option<&S3Settings>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Source, BackupError> {
    let Some(rest) = arg.strip_prefix("s3:") else {
        return Ok(Source::Local(PathBuf::from(arg)));
    };
    let invalid = |why: String| {
        BackupError::Invalid(format!(
            "--repository {arg}: {why}; expected s3:<endpoint>/<bucket>/<prefix>, e.g. \
             s3:https://s3.eu-central-1.amazonaws.com/my-bucket/minicloud"
        ))
    };
    let with_scheme = if rest.contains("://") {
        rest.to_owned()
    } else {
        format!("https://{rest}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| invalid(e.to_string()))?;
    let origin = url.origin().ascii_serialization();
    let endpoint = crate::config::s3::parse_endpoint(&origin).map_err(invalid)?;
    let path = url.path().trim_matches('/');
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    let bucket = crate::config::s3::parse_bucket(bucket).map_err(invalid)?;
    let prefix = crate::config::s3::parse_prefix(prefix).map_err(invalid)?;
    let settings = match configured {
        Some(s) => S3Settings {
            endpoint,
            bucket,
            prefix,
            ..s.clone()
        },
        None => {
            let key = |name: &str| env(name).filter(|v| !v.is_empty());
            let (Some(access_key), Some(secret_key)) =
                (key("AWS_ACCESS_KEY_ID"), key("AWS_SECRET_ACCESS_KEY"))
            else {
                return Err(BackupError::Invalid(format!(
                    "--repository {arg} needs the bucket's keys: set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY (or the backup_s3_access_key and \
                     backup_s3_secret_key settings)"
                )));
            };
            S3Settings {
                endpoint,
                region: key("AWS_DEFAULT_REGION").unwrap_or_else(|| "us-east-1".into()),
                bucket,
                prefix,
                access_key,
                secret_key: Secret::new(secret_key),
                // What minicloud's own setting defaults to: most servers but AWS need it.
                path_style: true,
            }
        }
    };
    Ok(Source::S3(Arc::new(settings)))
}

/// What `minicloud restore` did, and what the next start will do.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub platform: PlatformRestored,
    /// Where the snapshots came from when they were copied into the local repository, and
    /// how many the local repository holds now.
    pub copied: Option<(String, usize)>,
    pub local: PathBuf,
    pub apps: Vec<PlannedApp>,
}

/// One app of a whole-box restore.
#[derive(Debug, Clone)]
pub struct PlannedApp {
    pub name: AppName,
    /// Pinned to its digest when it has a serving revision.
    pub image: String,
    pub revision: Option<u64>,
    /// The run its data comes back from at the next start, with its parts; or why none.
    pub restore: Result<(String, Vec<String>), String>,
}

/// The offline half (see the module docs): with minicloud stopped.
pub async fn prepare(
    source: &Source,
    password: Secret,
    data_dir: &Path,
    state_path: &Path,
    force: bool,
) -> Result<Prepared, BackupError> {
    // Held to the end: no `minicloud serve` on this data dir meanwhile (see `store::owner`).
    let _owner = OwnerLock::take(state_path, Owner::Restore)?;
    let local_path = data_dir.join("backups");
    let local = Repository::new(local_path.clone(), password.clone());
    super::platform::check_replaceable(state_path, force)?;
    let from = match source {
        Source::Local(path) if same_dir(path, &local_path) => None,
        Source::Local(path) => Some(Repository::new(path.clone(), password)),
        Source::S3(s3) => Some(Repository::s3(s3.clone(), password)),
    };
    let copied_from = match &from {
        Some(from) => {
            // Opened first: a wrong password or an empty place says so before anything is
            // made here.
            if !from.exists().await? {
                return Err(BackupError::Invalid(format!(
                    "{} holds no backup repository",
                    from.describe()
                )));
            }
            local.ensure_copy_of(from).await?;
            local.copy_all_from(from).await?;
            Some(from.describe())
        }
        None => None,
    };
    let platform = restore_platform(&local, state_path, force).await?;
    let here = local.snapshots(TAG).await?;
    let store = Store::open(state_path)?;
    let mut subjects = vec![AppName::platform()];
    subjects.extend(platform.apps.iter().map(|a| a.name.clone()));
    for subject in &subjects {
        for mut record in store.backups(subject)? {
            if map_to_copies(&mut record, &here, &local.describe()) {
                store.put_backup(&record)?;
            }
        }
    }
    let mut apps = Vec::new();
    for app in &platform.apps {
        let runs = store.backups(&app.name)?;
        let restore = choose_run(&runs, &here).map(|run| {
            store
                .put_pending_restore(&PendingRestore {
                    app: app.name.clone(),
                    backup: run.id.clone(),
                    platform_run: platform.run.clone(),
                    requested_at: now(),
                    failed: None,
                })
                .map(|()| {
                    let parts = run
                        .parts
                        .iter()
                        .filter(|p| p.part != "record")
                        .map(|p| p.part.clone())
                        .collect();
                    (run.id.clone(), parts)
                })
        });
        let restore = match restore {
            Ok(done) => Ok(done?),
            Err(why) => Err(why),
        };
        apps.push(PlannedApp {
            name: app.name.clone(),
            image: app.image.clone(),
            revision: app.revision,
            restore,
        });
    }
    Ok(Prepared {
        platform,
        copied: copied_from.map(|from| (from, here.len())),
        local: local_path,
        apps,
    })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Points the record's parts at the snapshots `here` (a repository filled by `restic copy`
/// holds copies, new ids with the first one's as `original`). True when it changed.
fn map_to_copies(record: &mut BackupRecord, here: &[Snapshot], location: &str) -> bool {
    let mut changed = false;
    let mut mapped = BTreeMap::new();
    for part in &mut record.parts {
        if find(here, &part.snapshot).is_some() {
            continue;
        }
        let copy = here.iter().find(|s| {
            s.original
                .as_deref()
                .is_some_and(|o| o.starts_with(part.snapshot.as_str()))
        });
        if let Some(copy) = copy {
            mapped.insert(part.snapshot.clone(), copy.id.clone());
            part.snapshot = copy.id.clone();
            changed = true;
        }
    }
    if changed {
        for d in record.destinations.iter_mut().filter(|d| d.kind == "local") {
            d.location = location.to_owned();
            for s in &mut d.snapshots {
                if let Some(new) = mapped.get(s) {
                    *s = new.clone();
                }
            }
        }
    }
    changed
}

/// The snapshot `id` (full or short) among `here`.
fn find<'a>(here: &'a [Snapshot], id: &str) -> Option<&'a Snapshot> {
    here.iter()
        .find(|s| !id.is_empty() && (s.id.starts_with(id) || id.starts_with(&s.short_id)))
}

/// The newest good run (oldest first in `runs`) whose every part is in `here`; or why there
/// is none.
fn choose_run<'a>(runs: &'a [BackupRecord], here: &[Snapshot]) -> Result<&'a BackupRecord, String> {
    let good: Vec<&BackupRecord> = runs.iter().filter(|r| r.state.is_restorable()).collect();
    if good.is_empty() {
        return Err("no backup of it was recorded before the platform backup".into());
    }
    good.iter()
        .rev()
        .find(|r| r.parts.iter().all(|p| find(here, &p.snapshot).is_some()))
        .copied()
        .ok_or_else(|| {
            format!(
                "none of its {} backup(s) is whole in the repository (snapshots missing)",
                good.len()
            )
        })
}

/// What the start-up restores did.
#[derive(Debug, Default)]
pub struct Resumed {
    pub restored: Vec<AppName>,
    pub failed: Vec<(AppName, String)>,
}

impl Backups {
    /// The serving half (see the module docs): every pending restore, one app at a time.
    /// Never fails as a whole: each app's outcome is on its mark and in the log.
    pub async fn resume_restores(&self, op: &Op) -> Resumed {
        let mut done = Resumed::default();
        let pending = match self.ctx.store.pending_restores() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the pending restores");
                return done;
            }
        };
        for mut mark in pending {
            let app = mark.app.clone();
            if matches!(self.ctx.store.app(&app), Ok(None)) {
                let _ = self.ctx.store.delete_pending_restore(&app);
                continue;
            }
            let started = std::time::Instant::now();
            tracing::info!(%app, backup = %mark.backup, "whole-box restore: bringing back the app's data");
            match self.restore_pending(op, &mark).await {
                Ok(()) => {
                    if let Err(e) = self.ctx.store.delete_pending_restore(&app) {
                        tracing::warn!(%app, error = %e, "cannot clear the pending restore");
                    }
                    tracing::info!(%app, backup = %mark.backup, seconds = started.elapsed().as_secs_f64(), "whole-box restore: data back and serving");
                    done.restored.push(app);
                }
                Err(e) => {
                    let reason = e.to_string();
                    tracing::error!(%app, backup = %mark.backup, error = %reason,
                        "whole-box restore: the app's data did not come back; it stays out of service. \
                         Retry with `minicloud backups restore {app} {}` (or restart minicloud), or serve it without that data with `minicloud apps restart {app}`", mark.backup);
                    mark.failed = Some(RestoreFailure {
                        at: now(),
                        reason: reason.clone(),
                    });
                    if let Err(e) = self.ctx.store.put_pending_restore(&mark) {
                        tracing::warn!(%app, error = %e, "cannot record the failed restore");
                    }
                    done.failed.push((app, reason));
                }
            }
        }
        done
    }

    /// One app: services, data, then its recorded revision deployed again.
    async fn restore_pending(&self, op: &Op, mark: &PendingRestore) -> Result<(), BackupError> {
        let app = &mark.app;
        let backup = self.good_backup(app, &mark.backup)?;
        let chosen = self.plan_parts(&backup, app, &[]);
        let _running = self.hold(app)?;
        let repo = self.repository().await?;
        let down = self.take_down_for_restore(op, app).await?;
        let restored = async {
            self.ctx
                .bus
                .step(op, app, "making its database, message bus and storage");
            self.apps.ensure_services(app).await?;
            // No safety backup: the app's services were just made, empty; a backup of them
            // would only add a run that holds nothing.
            self.restore_down(op, app, &repo, &chosen, None).await
        }
        .await;
        match restored {
            Ok(_) => {
                self.ctx
                    .bus
                    .step(op, app, format!("deploying {app} at its recorded revision"));
                self.apps.bring_back(op, down).await?;
                Ok(())
            }
            Err(e) => {
                self.apps.leave_down(down)?;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BackupPart, BackupState, Destination};

    fn snapshot(id: &str, original: Option<&str>) -> Snapshot {
        Snapshot {
            id: id.into(),
            short_id: id[..8].into(),
            tags: vec![],
            original: original.map(str::to_owned),
        }
    }

    fn run(id: &str, state: BackupState, snapshots: &[&str]) -> BackupRecord {
        BackupRecord {
            app: AppName::try_new("shop").unwrap(),
            id: id.into(),
            trigger: "manual".into(),
            started_at: 1,
            finished_at: Some(2),
            state,
            parts: snapshots
                .iter()
                .map(|s| BackupPart {
                    part: "database".into(),
                    snapshot: (*s).into(),
                    bytes: 1,
                    added: 1,
                })
                .collect(),
            verified: None,
            destinations: vec![Destination {
                kind: "local".into(),
                location: "/old/backups".into(),
                confirmed: true,
                snapshots: snapshots.iter().map(|s| (*s).to_owned()).collect(),
                error: None,
            }],
        }
    }

    #[tokio::test]
    async fn a_restore_refuses_while_minicloud_serves_the_data_dir_and_changes_nothing() {
        let data = tempfile::tempdir().unwrap();
        let state_path = data.path().join("minicloud").join("state.redb");
        let _serving = OwnerLock::take(&state_path, Owner::Serve).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let err = prepare(
            &Source::Local(elsewhere.path().to_path_buf()),
            Secret::new("pw"),
            data.path(),
            &state_path,
            true,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("minicloud serve (pid") && err.contains("stop it first"),
            "{err}"
        );
        assert!(!data.path().join("backups").exists());
        assert!(!state_path.exists());
    }

    #[test]
    fn an_s3_repository_is_read_with_the_settings_keys_or_the_environment() {
        let none = |_: &str| None;
        assert!(matches!(
            parse_source("/srv/backups", None, none).unwrap(),
            Source::Local(p) if p == Path::new("/srv/backups")
        ));
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AK".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("SK".to_owned()),
            _ => None,
        };
        let Source::S3(s3) =
            parse_source("s3:http://127.0.0.1:9000/bucket/a/b", None, env).unwrap()
        else {
            panic!("an S3 source")
        };
        assert_eq!(s3.repository(), "s3:http://127.0.0.1:9000/bucket/a/b");
        assert_eq!(
            (s3.access_key.as_str(), s3.secret_key.expose()),
            ("AK", "SK")
        );
        assert_eq!(s3.region, "us-east-1");
        let Source::S3(s3) = parse_source("s3:s3.example.com/bucket", None, env).unwrap() else {
            panic!("an S3 source")
        };
        assert_eq!(s3.repository(), "s3:https://s3.example.com/bucket");
        let configured = S3Settings {
            region: "eu-1".into(),
            access_key: "CONF".into(),
            secret_key: Secret::new("conf"),
            path_style: false,
            ..(*s3).clone()
        };
        let Source::S3(s3) =
            parse_source("s3:http://h:1/other/p", Some(&configured), none).unwrap()
        else {
            panic!("an S3 source")
        };
        assert_eq!(s3.repository(), "s3:http://h:1/other/p");
        assert_eq!(
            (s3.access_key.as_str(), s3.region.as_str(), s3.path_style),
            ("CONF", "eu-1", false)
        );
        let err = parse_source("s3:http://h:1/bkt/p", None, none)
            .unwrap_err()
            .to_string();
        assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
        let err = parse_source("s3:http://h:1/", None, env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3:<endpoint>/<bucket>/<prefix>"), "{err}");
    }

    #[test]
    fn records_point_at_the_copies_and_the_newest_whole_run_is_chosen() {
        let a = "aaaaaaaa11111111";
        let b = "bbbbbbbb22222222";
        let here = [
            snapshot("cccccccc33333333", Some(a)),
            snapshot("dddddddd44444444", None),
        ];
        let mut copied = run("0000000001-aaaa", BackupState::Succeeded, &[a]);
        assert!(map_to_copies(&mut copied, &here, "/data/backups"));
        assert_eq!(copied.parts[0].snapshot, "cccccccc33333333");
        assert_eq!(copied.destinations[0].snapshots, ["cccccccc33333333"]);
        assert_eq!(copied.destinations[0].location, "/data/backups");
        let mut same = run("0000000002-bbbb", BackupState::Succeeded, &["dddddddd"]);
        assert!(!map_to_copies(&mut same, &here, "/data/backups"));

        let missing = run("0000000003-cccc", BackupState::Succeeded, &[b]);
        let failed = run(
            "0000000004-dddd",
            BackupState::Failed { reason: "x".into() },
            &[],
        );
        let runs = [copied.clone(), same.clone(), missing, failed];
        assert_eq!(choose_run(&runs, &here).unwrap().id, "0000000002-bbbb");
        let err = choose_run(&runs[2..], &here).unwrap_err();
        assert!(err.contains("snapshots missing"), "{err}");
        let err = choose_run(&runs[3..], &here).unwrap_err();
        assert!(err.contains("no backup"), "{err}");
    }
}
