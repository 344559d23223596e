//! The admin app's people and their sessions. A user is known by name and an argon2id hash
//! of their password; a session by the SHA-256 of its cookie (the cookie itself is never
//! stored, so a copy of the state file signs nobody in).

use redb::{ReadableTable, ReadableTableMetadata};

use super::table::{Keyed, Record};
use super::{Store, StoreError};

/// A person who may sign in to the admin app.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// The argon2id hash in PHC string form (salt and parameters included).
    pub password_hash: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The second factor, once the person has set one up (left out of the JSON when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<TotpRecord>,
}

/// A user's TOTP second factor (RFC 6238): the shared secret, whether a code has confirmed
/// that the person's authenticator holds it, and their unused recovery codes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TotpRecord {
    /// The shared secret, base32 as authenticator apps take it.
    pub secret: crate::model::Secret,
    /// Sign-in asks for a code only once one has been entered right on the settings page.
    pub confirmed: bool,
    /// SHA-256 (hex) of each recovery code not used yet; one is spent per use.
    pub recovery: Vec<String>,
    /// The last time step a code was accepted for: a code is good once (RFC 6238, 5.2).
    pub last_step: u64,
}

/// One signed-in browser. Keyed by the SHA-256 (hex) of the session cookie.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub user: String,
    /// The token every state-changing form of this session must carry.
    pub csrf: String,
    /// Unix seconds: the absolute expiry counts from here.
    pub created_at: i64,
    /// Unix seconds: the idle expiry counts from here.
    pub last_seen: i64,
}

/// Keyed by the user's name.
impl Record for UserRecord {
    const NAME: &'static str = "users";
}
impl Keyed for UserRecord {
    fn key(&self) -> String {
        self.name.clone()
    }
}

/// Keyed by the hash of the session cookie.
impl Record for SessionRecord {
    const NAME: &'static str = "sessions";
}

impl Store {
    pub fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.get(name)
    }

    pub fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.list()
    }

    pub fn put_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.put(user)
    }

    /// Removes `name` and ends their sessions, in one transaction, unless they are the last
    /// user (somebody must be able to sign in). `Ok(None)`: no such user; `Ok(Some(false))`:
    /// the last one, kept.
    pub fn delete_user_unless_last(&self, name: &str) -> Result<Option<bool>, StoreError> {
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(super::db_err)?;
            {
                let mut users = txn.open_table(UserRecord::TABLE).map_err(super::db_err)?;
                if users.get(name).map_err(super::db_err)?.is_none() {
                    return Ok(None);
                }
                if users.len().map_err(super::db_err)? <= 1 {
                    return Ok(Some(false));
                }
                users.remove(name).map_err(super::db_err)?;
                let mut sessions = txn
                    .open_table(SessionRecord::TABLE)
                    .map_err(super::db_err)?;
                let theirs: Vec<String> = sessions
                    .iter()
                    .map_err(super::db_err)?
                    .filter_map(|entry| {
                        let (k, v) = entry.ok()?;
                        let s: SessionRecord = super::table::decode(k.value(), v.value()).ok()?;
                        (s.user == name).then(|| k.value().to_owned())
                    })
                    .collect();
                for key in theirs {
                    sessions.remove(key.as_str()).map_err(super::db_err)?;
                }
            }
            txn.commit().map_err(super::db_err)?;
            Ok(Some(true))
        })
    }

    pub fn session(&self, hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.get(hash)
    }

    pub fn put_session(&self, hash: &str, session: &SessionRecord) -> Result<(), StoreError> {
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(super::db_err)?;
            super::table::insert_at(&txn, hash, session)?;
            txn.commit().map_err(super::db_err)
        })
    }

    /// Returns whether the session existed.
    pub fn delete_session(&self, hash: &str) -> Result<bool, StoreError> {
        self.delete::<SessionRecord>(hash)
    }

    /// Ends every session of `user` (and any that `expired` says is over); returns how many.
    pub fn delete_sessions_where(
        &self,
        mut doomed: impl FnMut(&SessionRecord) -> bool,
    ) -> Result<usize, StoreError> {
        let keys: Vec<String> = self
            .list_keyed::<SessionRecord>()?
            .into_iter()
            .filter(|(_, s)| doomed(s))
            .map(|(k, _)| k)
            .collect();
        for key in &keys {
            self.delete::<SessionRecord>(key)?;
        }
        Ok(keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_sessions_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let session = |user: &str| SessionRecord {
            user: user.into(),
            csrf: "c".into(),
            created_at: 1,
            last_seen: 2,
        };
        {
            let store = Store::open(&path).unwrap();
            store
                .put_user(&UserRecord {
                    name: "admin".into(),
                    password_hash: "$argon2id$x".into(),
                    created_at: 1,
                    totp: None,
                })
                .unwrap();
            store.put_session("h1", &session("admin")).unwrap();
            store.put_session("h2", &session("bob")).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.user("admin").unwrap().unwrap().password_hash,
            "$argon2id$x"
        );
        assert_eq!(store.users().unwrap().len(), 1);
        assert_eq!(store.session("h1").unwrap(), Some(session("admin")));
        assert_eq!(
            store.delete_sessions_where(|s| s.user == "admin").unwrap(),
            1
        );
        assert!(store.session("h1").unwrap().is_none());
        assert!(store.delete_session("h2").unwrap());
        assert!(!store.delete_session("h2").unwrap());
        // The last user stays; another goes, with their sessions.
        assert_eq!(store.delete_user_unless_last("admin").unwrap(), Some(false));
        assert_eq!(store.delete_user_unless_last("nobody").unwrap(), None);
        store
            .put_user(&UserRecord {
                name: "bob".into(),
                password_hash: "$argon2id$y".into(),
                created_at: 1,
                totp: None,
            })
            .unwrap();
        store.put_session("h3", &session("bob")).unwrap();
        assert_eq!(store.delete_user_unless_last("bob").unwrap(), Some(true));
        assert!(store.user("bob").unwrap().is_none());
        assert!(store.session("h3").unwrap().is_none());
    }
}
