//! Who may act: API tokens (made and hashed here; named, expiring, checked and revoked in
//! [`tokens`]), the admin app's users and their passwords ([`passwords`]), their second factor
//! ([`totp`]), sessions ([`sessions`]) and the sign-in throttle ([`throttle`]).
//!
//! A token is 32 random bytes, shown once when made; the store keeps only its SHA-256. A
//! token has that much entropy, so a fast hash is enough (argon2 is for passwords people pick).

pub mod passwords;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod totp;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::model::secret::Secret;
use crate::store::{Store, StoreError, TokenRecord};

/// Every token starts with this, so a leaked one is easy to recognise and grep for.
const TOKEN_PREFIX: &str = "mc_";
/// The name of the token given by `MINICLOUD_ADMIN_TOKEN` or generated at first start.
pub const BOOTSTRAP_TOKEN: &str = "bootstrap";

/// A new random token.
pub fn generate_token() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
}

/// The key a token is stored under.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What start-up did about the bootstrap token.
#[derive(Debug)]
pub enum Bootstrap {
    /// `MINICLOUD_ADMIN_TOKEN` was set; it is now the bootstrap token.
    FromConfig,
    /// Tokens already exist; nothing to do.
    Existing,
    /// None existed: this one was made and must be shown to the person, once.
    Generated(Secret),
}

/// Makes sure the API can be reached: installs the configured token, or generates one if the
/// store has none.
pub fn ensure_bootstrap_token(
    store: &Store,
    configured: Option<&Secret>,
    now: i64,
) -> Result<Bootstrap, StoreError> {
    let record = TokenRecord {
        name: BOOTSTRAP_TOKEN.into(),
        created_at: now,
        ..TokenRecord::default()
    };
    if let Some(token) = configured {
        let hash = token_hash(token.expose());
        if store.token(&hash)?.is_none() {
            store.replace_token(&hash, &record)?;
        }
        return Ok(Bootstrap::FromConfig);
    }
    if !store.tokens()?.is_empty() {
        return Ok(Bootstrap::Existing);
    }
    let token = generate_token();
    store.replace_token(&token_hash(token.expose()), &record)?;
    Ok(Bootstrap::Generated(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::verify;

    #[test]
    fn a_generated_token_verifies_and_a_wrong_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let Bootstrap::Generated(token) = ensure_bootstrap_token(&store, None, 0).unwrap() else {
            panic!("first start must generate a token");
        };
        assert!(token.expose().starts_with("mc_"));
        assert_eq!(
            verify(&store, token.expose(), 0).unwrap().as_deref(),
            Some("bootstrap")
        );
        assert_eq!(verify(&store, "mc_wrong", 0).unwrap(), None);
        assert!(matches!(
            ensure_bootstrap_token(&store, None, 0).unwrap(),
            Bootstrap::Existing
        ));
    }

    #[test]
    fn a_configured_token_replaces_the_generated_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let Bootstrap::Generated(old) = ensure_bootstrap_token(&store, None, 0).unwrap() else {
            panic!()
        };
        let configured = Secret::new("a-configured-token-123");
        ensure_bootstrap_token(&store, Some(&configured), 0).unwrap();
        assert!(verify(&store, configured.expose(), 0).unwrap().is_some());
        assert!(verify(&store, old.expose(), 0).unwrap().is_none());
    }
}
