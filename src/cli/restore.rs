//! `minicloud restore --repository PATH`: the whole-box restore, run on a new server with
//! minicloud stopped. Brings back the state store from the newest platform backup (see
//! `backups::platform`) and says what comes next; it does not start minicloud, nor restore
//! any app's data (each app's own backups do that, once minicloud runs).

use std::io::BufRead;

use super::args::RestoreArgs;
use crate::backups::platform::{restore_platform, PlatformRestored};
use crate::backups::{BackupError, Repository};
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
    let repo = Repository::new(args.repository.clone(), password);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RestoreError::Runtime)?;
    let restored = runtime.block_on(restore_platform(&repo, &config.state_path(), args.force))?;
    let local = config.data_dir.join("backups");
    print!("{}", describe(&restored, &repo.describe(), &local));
    Ok(())
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

/// What was restored and what to do next.
fn describe(r: &PlatformRestored, repository: &str, local: &std::path::Path) -> String {
    let mut out = format!(
        "Restored minicloud's state from platform backup {} (snapshot {}) of {repository}\n\
         into {}{}.\n\n",
        r.run,
        r.snapshot,
        r.state_path.display(),
        if r.replaced {
            " (the store that was there is replaced)"
        } else {
            ""
        }
    );
    out.push_str(&format!(
        "  {} app(s), {} route(s), {} certificate(s), with users, tokens, alert channels and \
         the backup records\n",
        r.apps.len(),
        r.routes,
        r.certificates
    ));
    for app in &r.apps {
        let revision = app
            .revision
            .map(|rev| format!("revision {rev}"))
            .unwrap_or_else(|| "never deployed".into());
        out.push_str(&format!("    {}: {}, {}\n", app.name, revision, app.image));
    }
    out.push_str(
        "\nNext:\n  1. Start minicloud (`minicloud serve`, with the old server's settings: they \
         are not in the backup).\n     \
         At start-up it deploys every app again at its recorded revision.\n",
    );
    if r.apps.is_empty() {
        return out;
    }
    let same = std::path::Path::new(repository) == local;
    out.push_str("  2. Bring back each app's data from its newest backup:\n");
    if !same {
        out.push_str(&format!(
            "     (app backups are read from {}: copy the repository there first)\n",
            local.display()
        ));
    }
    for app in &r.apps {
        match &app.newest_backup {
            Some(id) => out.push_str(&format!(
                "     minicloud backups restore {} {id}\n",
                app.name
            )),
            None => out.push_str(&format!(
                "     {}: no backup of its own was recorded before this platform backup\n",
                app.name
            )),
        }
    }
    out
}
