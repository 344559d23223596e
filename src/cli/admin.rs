//! `minicloud admin reset-password|reset-2fa USER`: local administration on the server's own state store, so nobody is
//! locked out for good. Needs no network and no running minicloud (the store allows one
//! process at a time, so minicloud must be stopped).

use super::args::AdminCommand;
use crate::audit;
use crate::auth::passwords::{self, UserError};
use crate::auth::{sessions, totp};
use crate::config::ConfigError;
use crate::model::Actor;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    User(#[from] UserError),
}

/// The state store `serve` would open, found from the same settings.
fn open_store(config: Option<&std::path::Path>) -> Result<Store, AdminError> {
    let config = super::serve::settings(config, [])?;
    Ok(Store::open(&config.state_path())?)
}

/// Notes a reset in the audit log: done on the server, by whoever has its terminal.
fn audited(store: &Store, what: String) {
    audit::record(
        store,
        Actor::System,
        Some("local".into()),
        what,
        true,
        "done on the server",
    );
}

pub fn run(command: AdminCommand) -> Result<(), AdminError> {
    match command {
        AdminCommand::ResetPassword { user, config } => {
            let store = open_store(config.as_deref())?;
            let password = passwords::reset_password(&store, &user)?;
            audited(&store, format!("minicloud admin reset-password {user}"));
            // On the terminal only, once; the store keeps the hash.
            println!(
                "New password for {user} (shown only this once; their sessions are ended):\n\n    {}\n",
                password.expose()
            );
            Ok(())
        }
        AdminCommand::Reset2fa { user, config } => {
            let store = open_store(config.as_deref())?;
            totp::remove(&store, &user)?;
            sessions::end_all(&store, &user)?;
            audited(&store, format!("minicloud admin reset-2fa {user}"));
            println!(
                "Two-factor sign-in is off for {user} and their sessions are ended: they sign in \
                 with their password and can turn it on again under Settings."
            );
            Ok(())
        }
    }
}
