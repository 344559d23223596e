//! `minicloud restore --repository PATH|s3:...`: the whole-box restore, run on a new server
//! with minicloud stopped. Brings the repository's backups into `<data-dir>/backups` (when
//! they are elsewhere), the state store back from the newest platform backup, and records
//! for each app the backup its data comes back from when minicloud starts (see
//! `backups::wholebox`); then says what the start will do.

use std::io::BufRead;
use std::time::{Duration, Instant};

use super::args::RestoreArgs;
use crate::backups::wholebox::{parse_source, prepare, Prepared};
use crate::backups::BackupError;
use crate::config::ConfigError;
use crate::model::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("{0}")]
    Password(String),
    #[error("cannot start the restore's runtime: {0}")]
    Runtime(std::io::Error),
}

pub fn run(args: RestoreArgs) -> Result<(), RestoreError> {
    let config = super::serve::settings(args.config.as_deref(), [])?;
    let password = password(args.password_stdin)?;
    let source = parse_source(&args.repository, config.backup_s3.as_deref(), aws_env)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RestoreError::Runtime)?;
    let started = Instant::now();
    let prepared = runtime.block_on(prepare(
        &source,
        password,
        &config.data_dir,
        &config.state_path(),
        args.force,
    ))?;
    print!("{}", describe(&prepared, started.elapsed()));
    Ok(())
}

/// The S3 keys when no `backup_s3_*` setting gives them: the names restic and the AWS tools
/// read, not minicloud settings, so they are not in the config key table.
#[allow(clippy::disallowed_methods)]
fn aws_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// From standard input's first line: never an argument, which other users of the server
/// could read in the process list.
fn password(from_stdin: bool) -> Result<Secret, RestoreError> {
    let missing = || {
        RestoreError::Password(
            "no repository password: give it on standard input with --password-stdin \
             (`minicloud backups key` showed it on the old server)"
                .into(),
        )
    };
    if !from_stdin {
        return Err(missing());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| RestoreError::Password(format!("cannot read the password: {e}")))?;
    let text = line.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        return Err(missing());
    }
    Ok(Secret::new(text))
}

/// What was restored, and what the next start does.
fn describe(p: &Prepared, took: Duration) -> String {
    let r = &p.platform;
    let mut out = String::new();
    if let Some((from, snapshots)) = &p.copied {
        out.push_str(&format!(
            "Copied the backups of {from} into {} ({snapshots} snapshot(s) there now).\n",
            p.local.display()
        ));
    }
    out.push_str(&format!(
        "Restored minicloud's state from platform backup {} (snapshot {}) into {}{}.\n",
        r.run,
        r.snapshot,
        r.state_path.display(),
        if r.replaced {
            " (the store that was there is replaced)"
        } else {
            ""
        }
    ));
    out.push_str(&format!(
        "  {} app(s), {} route(s), {} certificate(s), with users, tokens, alert channels and \
         the backup records ({:.1} s)\n",
        r.apps.len(),
        r.routes,
        r.certificates,
        took.as_secs_f64()
    ));
    if !p.apps.is_empty() {
        out.push_str(
            "\nWhen minicloud starts, it brings each app back, one at a time (out of service \
             until then):\n",
        );
    }
    for app in &p.apps {
        let deploy = match app.revision {
            Some(rev) => format!("deployed at {} (revision {rev})", app.image),
            None => "never deployed, so not started".into(),
        };
        match &app.restore {
            Ok((id, parts)) => out.push_str(&format!(
                "  {}: its {} from backup {id}, then {deploy}\n",
                app.name,
                parts.join(", ")
            )),
            Err(why) => out.push_str(&format!(
                "  {}: no data to bring back ({why}); {deploy} without it\n",
                app.name
            )),
        }
    }
    out.push_str(
        "\nNext: start minicloud (`minicloud serve`, with the old server's settings: they are \
         not in the backup).\n\
         Follow each app in the log or with `minicloud apps show APP`: an app whose data did \
         not come back stays out of service and shows why, with the command to try again.\n",
    );
    out
}
