//! The admin app's users: argon2id password hashes, the first `admin` account, and the local
//! password reset. A password is never logged, stored or compared in the clear.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;

use crate::model::secret::Secret;
use crate::store::{Store, StoreError, UserRecord};

/// The account made at first start.
pub const ADMIN_USER: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("there is no user {0}")]
    NoSuchUser(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An argon2id hash (default parameters: 19 MiB, 2 passes) with a fresh random salt.
// Neither step can fail: 16 random bytes are a valid salt, and argon2 limits a password only
// at 4 GiB, far beyond any request body minicloud accepts.
#[allow(clippy::expect_used)]
pub fn hash_password(password: &Secret) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .expect("argon2 accepts any password with default parameters")
        .to_string()
}

/// Whether `password` matches `hash`; an unreadable hash matches nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A new random password: 24 characters of letters and digits (about 143 bits).
pub fn generate_password() -> Secret {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    Secret::new(
        (0..24)
            .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
            .collect::<String>(),
    )
}

/// What start-up did about the `admin` account.
#[derive(Debug)]
pub enum AdminBootstrap {
    /// `MINICLOUD_ADMIN_PASSWORD` was set; it is now admin's password.
    FromConfig,
    /// Users exist already; nothing to do.
    Existing,
    /// None existed: `admin` was made with this password, to be shown once.
    Generated(Secret),
}

/// Makes sure somebody can sign in: sets admin's password from the configuration, or makes
/// `admin` with a generated one when the store has no user.
pub fn ensure_admin_user(
    store: &Store,
    configured: Option<&Secret>,
    now: i64,
) -> Result<AdminBootstrap, StoreError> {
    let existing = store.user(ADMIN_USER)?;
    if let Some(password) = configured {
        let current = existing
            .as_ref()
            .is_some_and(|u| verify_password(&u.password_hash, password.expose()));
        if !current {
            store.put_user(&UserRecord {
                name: ADMIN_USER.into(),
                password_hash: hash_password(password),
                created_at: existing.map_or(now, |u| u.created_at),
            })?;
        }
        return Ok(AdminBootstrap::FromConfig);
    }
    if !store.users()?.is_empty() {
        return Ok(AdminBootstrap::Existing);
    }
    let password = generate_password();
    store.put_user(&UserRecord {
        name: ADMIN_USER.into(),
        password_hash: hash_password(&password),
        created_at: now,
    })?;
    Ok(AdminBootstrap::Generated(password))
}

/// Gives `user` a new random password and ends all of their sessions; returns the password.
pub fn reset_password(store: &Store, user: &str) -> Result<Secret, UserError> {
    let mut record = store
        .user(user)?
        .ok_or_else(|| UserError::NoSuchUser(user.to_owned()))?;
    let password = generate_password();
    record.password_hash = hash_password(&password);
    store.put_user(&record)?;
    store.delete_sessions_where(|s| s.user == user)?;
    Ok(password)
}

/// The user whose password this is, or `None` for an unknown name or a wrong password. An
/// unknown name costs the same hash as a known one, so timing does not tell which names exist.
pub fn check_password(
    store: &Store,
    user: &str,
    password: &str,
) -> Result<Option<UserRecord>, StoreError> {
    // A valid hash of nothing anybody can type, to spend the same time on unknown users.
    static DUMMY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_password(&generate_password()));
    match store.user(user)? {
        Some(record) if verify_password(&record.password_hash, password) => Ok(Some(record)),
        Some(_) => Ok(None),
        None => {
            verify_password(&DUMMY, password);
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn first_start_makes_admin_with_a_generated_password_once() {
        let (_dir, store) = store();
        let AdminBootstrap::Generated(pw) = ensure_admin_user(&store, None, 5).unwrap() else {
            panic!("a new store has no user");
        };
        assert_eq!(pw.expose().len(), 24);
        let hash = store.user(ADMIN_USER).unwrap().unwrap().password_hash;
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains(pw.expose()));
        assert!(check_password(&store, ADMIN_USER, pw.expose())
            .unwrap()
            .is_some());
        assert!(check_password(&store, ADMIN_USER, "wrong")
            .unwrap()
            .is_none());
        assert!(check_password(&store, "nobody", pw.expose())
            .unwrap()
            .is_none());
        assert!(matches!(
            ensure_admin_user(&store, None, 6).unwrap(),
            AdminBootstrap::Existing
        ));
    }

    #[test]
    fn a_configured_password_replaces_the_stored_one_and_a_reset_ends_sessions() {
        let (_dir, store) = store();
        ensure_admin_user(&store, None, 0).unwrap();
        let configured = Secret::new("correct horse battery");
        ensure_admin_user(&store, Some(&configured), 0).unwrap();
        assert!(check_password(&store, ADMIN_USER, configured.expose())
            .unwrap()
            .is_some());
        store
            .put_session(
                "h",
                &crate::store::SessionRecord {
                    user: ADMIN_USER.into(),
                    csrf: "c".into(),
                    created_at: 0,
                    last_seen: 0,
                },
            )
            .unwrap();
        let new = reset_password(&store, ADMIN_USER).unwrap();
        assert!(check_password(&store, ADMIN_USER, new.expose())
            .unwrap()
            .is_some());
        assert!(check_password(&store, ADMIN_USER, configured.expose())
            .unwrap()
            .is_none());
        assert!(store.session("h").unwrap().is_none());
        assert!(matches!(
            reset_password(&store, "nobody"),
            Err(UserError::NoSuchUser(_))
        ));
    }
}
