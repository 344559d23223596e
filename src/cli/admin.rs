//! `minicloud admin …`: local administration on the server's own state store, so nobody is
//! locked out for good. Needs no network and no running minicloud (the store allows one
//! process at a time, so minicloud must be stopped).

use super::args::AdminCommand;
use crate::auth::passwords::{self, UserError};
use crate::config::ConfigError;
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

pub fn run(command: AdminCommand) -> Result<(), AdminError> {
    match command {
        AdminCommand::ResetPassword { user, config } => {
            let config = super::serve::settings(config.as_deref(), [])?;
            let store = Store::open(&config.state_path())?;
            let password = passwords::reset_password(&store, &user)?;
            // On the terminal only, once; the store keeps the hash.
            println!(
                "New password for {user} (shown only this once; their sessions are ended):\n\n    {}\n",
                password.expose()
            );
            Ok(())
        }
    }
}
