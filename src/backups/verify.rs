//! Verification: a dump restored into a scratch database on the shared MariaDB, its tables
//! and row counts compared with what the dump holds, then dropped. A backup nobody tried to
//! restore is a hope; this makes it a fact, or says why not.

use mysql_async::prelude::Queryable;

use super::database::{self, Target};
use super::restic::Repository;
use super::{BackupError, Backups, Part};
use crate::bus::Op;
use crate::model::now;
use crate::model::AppName;
use crate::services::mariadb::Scratch;
use crate::services::{MariaDb, MariaDbSettings};
use crate::store::BackupRecord;
use crate::store::Verification;

/// How many problems a failed check names.
const PROBLEMS_SHOWN: usize = 5;

/// Loads the dump of `snapshot` into a scratch database and compares what is there with
/// what the dump holds; the scratch database is dropped whatever happened. An error is what
/// kept the check from running (MariaDB away); a dump that fails it is an answer, not an
/// error.
pub async fn check(
    repo: &Repository,
    snapshot: &str,
    mariadb: &MariaDb,
) -> Result<Verification, BackupError> {
    let scratch = mariadb.create_scratch().await?;
    let checked = load_and_compare(repo, snapshot, mariadb.settings(), &scratch).await;
    if let Err(e) = mariadb.drop_scratch(&scratch).await {
        tracing::warn!(database = %scratch.name, error = %e, "cannot drop a scratch database");
    }
    let at = now();
    Ok(match checked {
        Ok((tables, rows)) => Verification {
            at,
            ok: true,
            tables,
            rows,
            problem: None,
        },
        Err(problem) => Verification {
            at,
            ok: false,
            tables: 0,
            rows: 0,
            problem: Some(problem),
        },
    })
}

/// The tables and rows loaded, or what is wrong.
async fn load_and_compare(
    repo: &Repository,
    snapshot: &str,
    settings: &MariaDbSettings,
    scratch: &Scratch,
) -> Result<(u64, u64), String> {
    let target = Target {
        database: scratch.name.as_str(),
        user: scratch.name.as_str(),
        password: &scratch.password,
    };
    let loaded = database::load(repo, snapshot, settings, &target)
        .await
        .map_err(|e| format!("the dump does not load: {e}"))?;
    let mut problems = Vec::new();
    if loaded.skipped > 0 {
        problems.push(format!(
            "{} statements are not allowed in a restore",
            loaded.skipped
        ));
    }
    let mut conn = database::connect(settings, &target)
        .await
        .map_err(|e| e.to_string())?;
    let found: Vec<(String, String)> = conn
        .query("SHOW FULL TABLES")
        .await
        .map_err(|e| format!("cannot list the loaded tables: {e}"))?;
    let found: Vec<String> = found
        .into_iter()
        .filter(|(_, kind)| kind == "BASE TABLE")
        .map(|(name, _)| name)
        .collect();
    for table in found.iter().filter(|t| !loaded.rows.contains_key(*t)) {
        problems.push(format!("table {table} is not in the dump"));
    }
    let mut rows = 0;
    for (table, expected) in &loaded.rows {
        if !found.contains(table) {
            problems.push(format!("table {table} did not load"));
            continue;
        }
        let count: Option<u64> = conn
            .query_first(format!(
                "SELECT COUNT(*) FROM `{}`",
                table.replace('`', "``")
            ))
            .await
            .map_err(|e| format!("cannot count the rows of {table}: {e}"))?;
        let count = count.unwrap_or_default();
        if count != *expected {
            problems.push(format!(
                "table {table} has {count} rows, the dump holds {expected}"
            ));
        }
        rows += count;
    }
    let _ = conn.disconnect().await;
    if problems.is_empty() {
        Ok((loaded.rows.len() as u64, rows))
    } else {
        let more = problems.len().saturating_sub(PROBLEMS_SHOWN);
        problems.truncate(PROBLEMS_SHOWN);
        if more > 0 {
            problems.push(format!("{more} more"));
        }
        Err(problems.join("; "))
    }
}

impl Backups {
    /// Restores the newest good dump of the app into a scratch database and checks it (see
    /// [`check`]); the outcome is kept on that run. Answers the run.
    pub async fn verify(&self, op: &Op, app: &AppName) -> Result<BackupRecord, BackupError> {
        self.apps.app_record(app)?;
        // Retention cannot forget the snapshot while it is read.
        let _running = self.hold(app)?;
        let newest = self
            .ctx
            .store
            .backups(app)?
            .into_iter()
            .rev()
            .find_map(|b| {
                let snapshot = b
                    .parts
                    .iter()
                    .find(|p| p.part == Part::Database.as_str())?
                    .snapshot
                    .clone();
                b.state.is_restorable().then_some((b, snapshot))
            });
        let Some((mut backup, snapshot)) = newest else {
            return Err(BackupError::Invalid(format!(
                "{app} has no good backup of a database to verify"
            )));
        };
        let mariadb = self
            .services()
            .mariadb()
            .ok_or_else(|| BackupError::Invalid("minicloud has no MariaDB configured".into()))?;
        let repo = self.repository().await?;
        self.ctx.bus.step(
            op,
            app,
            format!("loading backup {} into a scratch database", backup.id),
        );
        let verification = check(&repo, &snapshot, mariadb).await?;
        if let Some(problem) = &verification.problem {
            tracing::warn!(%app, backup = %backup.id, %problem, "a backup failed its verification");
        }
        backup.verified = Some(verification);
        self.ctx.store.put_backup(&backup)?;
        Ok(backup)
    }
}
