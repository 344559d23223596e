//! The admin app's users: argon2id password hashes, the first `admin` account, more users
//! added and removed (never the last), password changes and the local password reset. A
//! password is never logged, stored or compared in the clear.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;

use crate::model::secret::{Secret, MIN_PASSWORD_LEN};
use crate::store::{Store, StoreError, UserRecord};

/// The account made at first start.
pub const ADMIN_USER: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("there is no user {0}")]
    NoSuchUser(String),
    #[error("{0}")]
    Refused(String),
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
                created_at: existing.as_ref().map_or(now, |u| u.created_at),
                totp: existing.and_then(|u| u.totp),
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
        totp: None,
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

/// A name of a user or a token: 1 to 32 lower-case letters, digits, `.`, `_` or `-`,
/// starting with a letter or digit (it is shown on pages and in the log, and typed on the
/// server's terminal). `what` names it in the refusal.
pub fn check_name(what: &str, name: &str) -> Result<(), UserError> {
    let ok = (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(UserError::Refused(format!(
            "{name:?} is not a {what} name: use 1 to 32 lower-case letters, digits, '.', '_' or '-'"
        )))
    }
}

/// A password a person chose: long enough to be worth hashing.
fn check_new_password(password: &Secret) -> Result<(), UserError> {
    if password.expose().chars().count() < MIN_PASSWORD_LEN {
        return Err(UserError::Refused(format!(
            "a password must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// Adds a user with the password someone chose for them.
pub fn add_user(store: &Store, name: &str, password: &Secret, now: i64) -> Result<(), UserError> {
    check_name("user", name)?;
    check_new_password(password)?;
    if store.user(name)?.is_some() {
        return Err(UserError::Refused(format!(
            "there is already a user {name}: pick another name"
        )));
    }
    store.put_user(&UserRecord {
        name: name.to_owned(),
        password_hash: hash_password(password),
        created_at: now,
        totp: None,
    })?;
    Ok(())
}

/// Removes a user and ends their sessions; the last user cannot go.
pub fn remove_user(store: &Store, name: &str) -> Result<(), UserError> {
    match store.delete_user_unless_last(name)? {
        Some(true) => Ok(()),
        Some(false) => Err(UserError::Refused(format!(
            "{name} is the only user: add another before removing this one"
        ))),
        None => Err(UserError::NoSuchUser(name.to_owned())),
    }
}

/// Changes `user`'s password when `current` is right, and ends all their sessions (a stolen
/// one does not outlive the change; the caller starts a fresh one for the person).
pub fn change_password(
    store: &Store,
    user: &str,
    current: &str,
    new: &Secret,
) -> Result<(), UserError> {
    check_new_password(new)?;
    let Some(mut record) = check_password(store, user, current)? else {
        return Err(UserError::Refused(
            "the current password is not right: nothing was changed".into(),
        ));
    };
    record.password_hash = hash_password(new);
    store.put_user(&record)?;
    store.delete_sessions_where(|s| s.user == user)?;
    Ok(())
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
    fn users_are_added_checked_changed_and_removed_but_never_the_last() {
        let (_dir, store) = store();
        ensure_admin_user(&store, None, 0).unwrap();
        let pw = Secret::new("a-good-long-password");
        add_user(&store, "ann", &pw, 1).unwrap();
        assert!(check_password(&store, "ann", pw.expose())
            .unwrap()
            .is_some());
        assert!(add_user(&store, "ann", &pw, 1).is_err(), "taken");
        assert!(add_user(&store, "Ann<b>", &pw, 1).is_err(), "bad name");
        assert!(add_user(&store, "bob", &Secret::new("short"), 1).is_err());
        let new = Secret::new("another-long-password");
        assert!(change_password(&store, "ann", "wrong", &new).is_err());
        change_password(&store, "ann", pw.expose(), &new).unwrap();
        assert!(check_password(&store, "ann", new.expose())
            .unwrap()
            .is_some());
        remove_user(&store, ADMIN_USER).unwrap();
        assert!(matches!(
            remove_user(&store, "ann"),
            Err(UserError::Refused(_))
        ));
        assert!(matches!(
            remove_user(&store, "zed"),
            Err(UserError::NoSuchUser(_))
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
