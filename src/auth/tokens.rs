//! Named API tokens for the CLI and scripts: made with an optional expiry and shown once,
//! listed with their last use, revoked by name. The store keeps each one's SHA-256 only.

use serde::Serialize;

use super::passwords::{check_name, UserError};
use super::{generate_token, token_hash};
use crate::model::Secret;
use crate::store::{Store, StoreError, TokenRecord};

/// `last_used` is written at most this often, so a busy script is not a disk write per call.
const TOUCH_EVERY_SECS: i64 = 60;
/// The longest expiry a person can ask for, in days (about ten years).
pub const MAX_EXPIRY_DAYS: u32 = 3650;

/// A token as lists show it: never the token itself.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used: Option<i64>,
    pub expired: bool,
}

/// Makes the token `name`, valid for `days` days or until revoked; returns it, to be shown
/// once.
pub fn create(
    store: &Store,
    name: &str,
    days: Option<u32>,
    now: i64,
) -> Result<(Secret, TokenInfo), UserError> {
    check_name("token", name)?;
    if days.is_some_and(|d| d == 0 || d > MAX_EXPIRY_DAYS) {
        return Err(UserError::Refused(format!(
            "an expiry is 1 to {MAX_EXPIRY_DAYS} days, or none"
        )));
    }
    let record = TokenRecord {
        name: name.to_owned(),
        created_at: now,
        expires_at: days.map(|d| now + i64::from(d) * 86_400),
        last_used: None,
    };
    let token = generate_token();
    if !store.add_token(&token_hash(token.expose()), &record)? {
        return Err(UserError::Refused(format!(
            "there is already a token {name}: revoke it or pick another name"
        )));
    }
    Ok((token, info(&record, now)))
}

fn info(t: &TokenRecord, now: i64) -> TokenInfo {
    TokenInfo {
        name: t.name.clone(),
        created_at: t.created_at,
        expires_at: t.expires_at,
        last_used: t.last_used,
        expired: t.expires_at.is_some_and(|e| now >= e),
    }
}

/// Every token, by name.
pub fn list(store: &Store, now: i64) -> Result<Vec<TokenInfo>, StoreError> {
    let mut all: Vec<TokenInfo> = store.tokens()?.iter().map(|(_, t)| info(t, now)).collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

/// Revokes the token `name`: the next request carrying it is refused.
pub fn revoke(store: &Store, name: &str) -> Result<(), UserError> {
    if store.delete_token_named(name)? {
        Ok(())
    } else {
        Err(UserError::Refused(format!("there is no token {name}")))
    }
}

/// The name of the live token `presented`, noting its use; `None` for an unknown or expired
/// one.
pub fn verify(store: &Store, presented: &str, now: i64) -> Result<Option<String>, StoreError> {
    let hash = token_hash(presented);
    let Some(mut record) = store.token(&hash)? else {
        return Ok(None);
    };
    if record.expires_at.is_some_and(|e| now >= e) {
        return Ok(None);
    }
    if record
        .last_used
        .is_none_or(|last| now - last >= TOUCH_EVERY_SECS)
    {
        record.last_used = Some(now);
        store.put_token(&hash, &record)?;
    }
    Ok(Some(record.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_shown_once_works_until_it_expires_or_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let (token, made) = create(&store, "ci", Some(2), 1000).unwrap();
        assert_eq!(made.expires_at, Some(1000 + 2 * 86_400));
        assert!(
            create(&store, "ci", None, 1000).is_err(),
            "the name is taken"
        );
        assert!(create(&store, "CI!", None, 1000).is_err());
        assert!(create(&store, "x", Some(0), 1000).is_err());
        assert_eq!(
            verify(&store, token.expose(), 1100).unwrap().as_deref(),
            Some("ci")
        );
        let listed = list(&store, 1100).unwrap();
        assert_eq!(listed[0].last_used, Some(1100));
        // Nothing of the token itself is listed.
        assert!(!format!("{listed:?}").contains(token.expose()));
        assert_eq!(
            verify(&store, token.expose(), 1000 + 2 * 86_400).unwrap(),
            None,
            "expired"
        );
        assert!(list(&store, 1000 + 2 * 86_400).unwrap()[0].expired);
        let (forever, _) = create(&store, "deploy", None, 0).unwrap();
        assert!(verify(&store, forever.expose(), i64::MAX / 2)
            .unwrap()
            .is_some());
        revoke(&store, "deploy").unwrap();
        assert_eq!(verify(&store, forever.expose(), 1).unwrap(), None);
        assert!(revoke(&store, "deploy").is_err());
    }
}
