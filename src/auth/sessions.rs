//! Sessions of the admin app: a random cookie value the browser keeps, known to the store only
//! by its SHA-256; an idle and an absolute expiry; a CSRF token per session.

use rand::RngCore;

use super::token_hash;
use crate::model::secret::{constant_time_eq, Secret};
use crate::store::{SessionRecord, Store, StoreError};

/// A session unused this long is over.
pub const IDLE_EXPIRY_SECS: i64 = 8 * 3600;
/// A session is over this long after sign-in, however busy.
pub const ABSOLUTE_EXPIRY_SECS: i64 = 7 * 24 * 3600;
/// `last_seen` is written at most this often, so browsing is not a disk write per page.
const TOUCH_EVERY_SECS: i64 = 60;

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A signed-in session as a request sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    /// The store key (hash of the cookie), to end it.
    pub key: String,
}

impl Session {
    /// Whether `presented` is this session's CSRF token.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), presented.as_bytes())
    }
}

/// Whether a session is still alive at `now`.
pub fn is_live(session: &SessionRecord, now: i64) -> bool {
    now - session.last_seen < IDLE_EXPIRY_SECS && now - session.created_at < ABSOLUTE_EXPIRY_SECS
}

/// Signs `user` in: returns the cookie value (shown to the browser only) and the session.
pub fn start(store: &Store, user: &str, now: i64) -> Result<(Secret, Session), StoreError> {
    let cookie = Secret::new(random_hex());
    let record = SessionRecord {
        user: user.to_owned(),
        csrf: random_hex(),
        created_at: now,
        last_seen: now,
    };
    let key = token_hash(cookie.expose());
    store.put_session(&key, &record)?;
    Ok((
        cookie,
        Session {
            user: record.user,
            csrf: record.csrf,
            key,
        },
    ))
}

/// The live session behind `cookie`; an expired one is deleted and is `None`.
pub fn resume(store: &Store, cookie: &str, now: i64) -> Result<Option<Session>, StoreError> {
    let key = token_hash(cookie);
    let Some(mut record) = store.session(&key)? else {
        return Ok(None);
    };
    if !is_live(&record, now) {
        store.delete_session(&key)?;
        return Ok(None);
    }
    if now - record.last_seen >= TOUCH_EVERY_SECS {
        record.last_seen = now;
        store.put_session(&key, &record)?;
    }
    Ok(Some(Session {
        user: record.user,
        csrf: record.csrf,
        key,
    }))
}

/// Signs one session out.
pub fn end(store: &Store, session: &Session) -> Result<(), StoreError> {
    store.delete_session(&session.key).map(drop)
}

/// Signs `user` out everywhere: every one of their sessions ends. Returns how many.
pub fn end_all(store: &Store, user: &str) -> Result<usize, StoreError> {
    store.delete_sessions_where(|s| s.user == user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_resumes_until_idle_or_absolute_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let (cookie, session) = start(&store, "admin", 1000).unwrap();
        assert!(!store
            .session(&session.key)
            .unwrap()
            .unwrap()
            .csrf
            .is_empty());
        // The store knows only the hash.
        assert!(store.session(cookie.expose()).unwrap().is_none());
        let resumed = resume(&store, cookie.expose(), 1000 + IDLE_EXPIRY_SECS - 1)
            .unwrap()
            .unwrap();
        assert_eq!(resumed.user, "admin");
        assert!(resumed.csrf_matches(&session.csrf));
        assert!(!resumed.csrf_matches("x"));
        // Touched just now: the idle clock restarted.
        let later = 1000 + 2 * IDLE_EXPIRY_SECS - 2;
        assert!(resume(&store, cookie.expose(), later).unwrap().is_some());
        // Idle too long: over, and gone from the store.
        assert!(resume(&store, cookie.expose(), later + IDLE_EXPIRY_SECS)
            .unwrap()
            .is_none());
        assert!(store.session(&session.key).unwrap().is_none());
        assert!(resume(&store, "unknown", 0).unwrap().is_none());
    }

    #[test]
    fn the_absolute_expiry_holds_however_busy() {
        let record = SessionRecord {
            user: "a".into(),
            csrf: "c".into(),
            created_at: 0,
            last_seen: ABSOLUTE_EXPIRY_SECS,
        };
        assert!(!is_live(&record, ABSOLUTE_EXPIRY_SECS));
        assert!(is_live(&record, ABSOLUTE_EXPIRY_SECS - 1));
    }

    #[test]
    fn ending_a_session_signs_it_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let (cookie, session) = start(&store, "admin", 0).unwrap();
        end(&store, &session).unwrap();
        assert!(resume(&store, cookie.expose(), 0).unwrap().is_none());
        let (a, _) = start(&store, "admin", 0).unwrap();
        let (b, _) = start(&store, "admin", 0).unwrap();
        let (other, _) = start(&store, "ann", 0).unwrap();
        assert_eq!(end_all(&store, "admin").unwrap(), 2);
        assert!(resume(&store, a.expose(), 0).unwrap().is_none());
        assert!(resume(&store, b.expose(), 0).unwrap().is_none());
        assert!(resume(&store, other.expose(), 0).unwrap().is_some());
    }
}
