//! An app's database in and out of the repository: `mariadb-dump` streamed straight into
//! `restic backup --stdin` (no copy on disk), and a dump streamed out of `restic dump` into
//! the app's database, statement by statement, as the app's own account.

use std::collections::BTreeMap;
use std::process::Stdio;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use super::restic::{last_lines, Confirmed, Repository};
use super::sql::{check, Splitter, Tally};
use super::BackupError;
use crate::model::Secret;
use crate::services::{MariaDbSettings, ServiceName};
use crate::store::ServiceRecord;

/// The dump client; on `PATH` (Debian's `mariadb-client`, also in the image). Run where
/// minicloud runs, against the admin address, so no container is started per backup.
const DUMP: &str = "mariadb-dump";
/// The file name of the dump inside its snapshot.
pub const DUMP_FILE: &str = "database.sql";
/// How many skipped statements a restore reports by text.
const SKIPPED_SHOWN: usize = 20;

fn admin_opts(settings: &MariaDbSettings) -> Result<Opts, BackupError> {
    Opts::from_url(settings.admin_url.expose()).map_err(|_| BackupError::Database {
        address: settings.address.clone(),
        why: "the admin URL is invalid".into(),
    })
}

/// Dumps the app's database into a new snapshot. The run counts only when both the dump
/// and restic succeeded; a snapshot of a dump that failed halfway is forgotten at once.
pub async fn back_up(
    repo: &Repository,
    settings: &MariaDbSettings,
    db: &ServiceName,
    tags: &[String],
    progress: impl FnMut(u64),
) -> Result<Confirmed, BackupError> {
    let opts = admin_opts(settings)?;
    let mut cmd = Command::new(DUMP);
    cmd.arg(format!("--host={}", opts.ip_or_hostname()))
        .arg(format!("--port={}", opts.tcp_port()))
        .arg(format!("--user={}", opts.user().unwrap_or_default()))
        .args([
            "--protocol=TCP",
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            // Binary columns as hex: the dump stays text a restore can read line by line.
            "--hex-blob",
            "--default-character-set=utf8mb4",
            // No date in the last line: an unchanged database then dumps byte for byte the
            // same, and restic stores nothing new for it (the date made the dump's last
            // chunk new every run: 0.6 MB of a 256 MB table's second run).
            "--skip-dump-date",
        ])
        .arg(db.as_str())
        // The password by environment, never in the arguments others can list.
        .env("MYSQL_PWD", opts.pass().unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut dump = cmd.spawn().map_err(|e| BackupError::Tool {
        tool: DUMP,
        action: "dump",
        why: format!("cannot run it: {e} (is Debian's mariadb-client package installed?)"),
    })?;
    // Spawned with `Stdio::piped()` just above: the handle is there to take.
    #[allow(clippy::expect_used)]
    let stdout: Stdio =
        dump.stdout
            .take()
            .expect("piped")
            .try_into()
            .map_err(|e: std::io::Error| BackupError::Tool {
                tool: DUMP,
                action: "dump",
                why: e.to_string(),
            })?;
    // Spawned with `Stdio::piped()` just above: the handle is there to take.
    #[allow(clippy::expect_used)]
    let mut stderr = dump.stderr.take().expect("piped");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let stored = repo.backup_stdin(stdout, DUMP_FILE, tags, progress).await;
    let status = dump.wait().await;
    let errors = errors.await.unwrap_or_default();
    let dumped = match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{s}: {}", last_lines(&errors))),
        Err(e) => Err(e.to_string()),
    };
    match (stored, dumped) {
        (Ok(confirmed), Ok(())) => Ok(confirmed),
        (stored, Err(why)) => {
            if let Ok(confirmed) = stored {
                // A truncated dump must never look like a backup.
                if let Err(e) = repo.forget(&[confirmed.snapshot]).await {
                    tracing::warn!(error = %e, "cannot forget the snapshot of a failed dump");
                }
            }
            Err(BackupError::Database {
                address: settings.address.clone(),
                why: format!("mariadb-dump of {db} failed ({why})"),
            })
        }
        (Err(e), Ok(())) => Err(e),
    }
}

/// What loading a dump did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Loaded {
    pub statements: u64,
    /// Statements refused by the allowlist (see `sql`), the first few by text.
    pub skipped: u64,
    pub skipped_shown: Vec<String>,
    /// The tables the dump created and the rows it inserted into each (see `sql::tally`).
    #[serde(skip)]
    pub rows: BTreeMap<String, u64>,
}

/// Where a dump is loaded: a database and an account whose grants end at it.
pub struct Target<'a> {
    pub database: &'a str,
    pub user: &'a str,
    pub password: &'a Secret,
}

impl<'a> Target<'a> {
    /// The app's database, as its own account.
    pub fn app(db: &'a ServiceName, account: &'a ServiceRecord) -> Self {
        Self {
            database: db.as_str(),
            user: &account.user,
            password: &account.password,
        }
    }
}

/// Connects to MariaDB as `target`'s account, its database selected.
pub async fn connect(settings: &MariaDbSettings, target: &Target<'_>) -> Result<Conn, BackupError> {
    let opts = OptsBuilder::from_opts(admin_opts(settings)?)
        .user(Some(target.user.to_owned()))
        .pass(Some(target.password.expose().to_owned()))
        .db_name(Some(target.database.to_owned()));
    Conn::new(opts).await.map_err(|e| BackupError::Database {
        address: settings.address.clone(),
        why: format!("cannot connect as {}: {e}", target.user),
    })
}

/// Loads the dump of `snapshot` into the target's (empty) database, connected as the
/// target's account with its database selected: nothing the dump says can reach another
/// database.
pub async fn load(
    repo: &Repository,
    snapshot: &str,
    settings: &MariaDbSettings,
    target: &Target<'_>,
) -> Result<Loaded, BackupError> {
    let failed = |why: String| BackupError::Database {
        address: settings.address.clone(),
        why,
    };
    let db = target.database;
    let mut conn = connect(settings, target).await?;
    let mut child = repo.dump(snapshot, &format!("/{DUMP_FILE}"))?;
    // Spawned with `Stdio::piped()` just above: the handle is there to take.
    #[allow(clippy::expect_used)]
    let stdout = child.stdout.take().expect("piped");
    let mut reader = BufReader::new(stdout);
    let mut splitter = Splitter::default();
    let mut loaded = Loaded::default();
    let mut line = Vec::new();
    let mut result = Ok(());
    loop {
        line.clear();
        let statements = match reader.read_until(b'\n', &mut line).await {
            Ok(0) => std::mem::take(&mut splitter).finish(),
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                splitter.push_line(text.trim_end_matches(['\n', '\r']))
            }
            Err(e) => {
                result = Err(failed(format!("cannot read the dump: {e}")));
                break;
            }
        };
        let done = line.is_empty();
        for stmt in statements {
            if let Err(why) = check(&stmt) {
                loaded.skipped += 1;
                if loaded.skipped_shown.len() < SKIPPED_SHOWN {
                    loaded.skipped_shown.push(why);
                }
                continue;
            }
            match super::sql::tally(&stmt) {
                Some(Tally::Created(table)) => {
                    loaded.rows.insert(table, 0);
                }
                Some(Tally::Inserted(table, rows)) => {
                    *loaded.rows.entry(table).or_default() += rows;
                }
                Some(Tally::Dropped(table)) => {
                    loaded.rows.remove(&table);
                }
                None => {}
            }
            if let Err(e) = conn.query_drop(stmt.as_str()).await {
                result = Err(failed(format!(
                    "statement {} of the dump failed: {e}",
                    loaded.statements + 1
                )));
                break;
            }
            loaded.statements += 1;
        }
        if done || result.is_err() {
            break;
        }
    }
    let _ = conn.disconnect().await;
    drop(reader);
    let dumped = super::restic::finish(child, "dump").await;
    result?;
    dumped?;
    if loaded.skipped > 0 {
        tracing::warn!(database = %db, skipped = loaded.skipped, "a restore skipped statements of the dump");
    }
    Ok(loaded)
}
