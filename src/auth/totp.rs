//! The second factor: time-based one-time codes (RFC 6238: HMAC-SHA1, 30-second steps, six
//! digits, the form every authenticator app reads from an `otpauth://` URI) and recovery
//! codes for the day the phone is lost.
//!
//! Set-up is two steps, so nobody is locked out by a secret their app never got: [`begin`]
//! stores a new secret unconfirmed (sign-in does not ask for codes yet), [`confirm`] turns it
//! on once a code from the app matches and hands out the recovery codes, once. A code is
//! accepted one step early or late (clock drift) and only once.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};

use super::passwords::UserError;
use crate::model::secret::{constant_time_eq, Secret};
use crate::store::{Store, TotpRecord};

/// Seconds per code.
pub const STEP_SECS: i64 = 30;
const DIGITS: u32 = 6;
/// Recovery codes handed out when the second factor is turned on.
const RECOVERY_CODES: usize = 10;

/// The code for `secret` (raw bytes) at time step `step` (RFC 4226, 5.3).
fn hotp(secret: &[u8], step: u64) -> u32 {
    // HMAC takes a key of any length.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(DIGITS)
}

fn step_at(unix: i64) -> u64 {
    (unix.max(0) / STEP_SECS) as u64
}

/// The six-digit code a person's app shows for `secret` (base32) at `unix` seconds; `None` for
/// a secret that is not base32.
pub fn code_at(secret: &str, unix: i64) -> Option<String> {
    let key = BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    Some(format!("{:06}", hotp(&key, step_at(unix))))
}

/// The step of the one step early, on time or late whose code is `code`, if any.
fn matching_step(secret: &str, code: &str, unix: i64) -> Option<u64> {
    let key = BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    let now = step_at(unix);
    [now.saturating_sub(1), now, now + 1]
        .into_iter()
        .find(|&step| {
            constant_time_eq(
                format!("{:06}", hotp(&key, step)).as_bytes(),
                code.as_bytes(),
            )
        })
}

/// A new random 160-bit secret, base32 (the size RFC 4226 recommends).
fn new_secret() -> Secret {
    let mut bytes = [0u8; 20];
    rand::rng().fill(&mut bytes);
    Secret::new(BASE32_NOPAD.encode(&bytes))
}

/// The URI an authenticator app takes (by QR code or pasted), naming the account and site.
pub fn otpauth_uri(secret: &Secret, user: &str, issuer: &str) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(user),
        secret.expose(),
        enc(issuer)
    )
}

fn recovery_hash(code: &str) -> String {
    hex::encode(Sha256::digest(normalize(code).as_bytes()))
}

/// What a person types, as compared: no spaces or dashes, lower case.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Ten codes of ten letters and digits (`xxxxx-xxxxx`), about 50 bits each.
fn new_recovery_codes() -> Vec<Secret> {
    const CHARS: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            let c: String = (0..10)
                .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
                .collect();
            Secret::new(format!("{}-{}", &c[..5], &c[5..]))
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("that code is not right: enter the six digits your authenticator app shows now")]
    WrongCode,
    #[error("start the set-up again: there is no second factor waiting to be confirmed")]
    NothingToConfirm,
    #[error(transparent)]
    User(#[from] UserError),
}

/// Stores a new, unconfirmed secret for `user` (replacing one not yet confirmed) and returns
/// it. A confirmed second factor must be turned off first.
pub fn begin(store: &Store, user: &str) -> Result<Secret, UserError> {
    let mut record = store
        .user(user)?
        .ok_or_else(|| UserError::NoSuchUser(user.to_owned()))?;
    if record.totp.as_ref().is_some_and(|t| t.confirmed) {
        return Err(UserError::Refused(
            "two-factor sign-in is already on; turn it off first to set up a new app".into(),
        ));
    }
    let secret = new_secret();
    record.totp = Some(TotpRecord {
        secret: secret.clone(),
        confirmed: false,
        recovery: Vec::new(),
        last_step: 0,
    });
    store.put_user(&record)?;
    Ok(secret)
}

/// Turns the waiting secret on when `code` matches it; returns the recovery codes, to be
/// shown once.
pub fn confirm(store: &Store, user: &str, code: &str, now: i64) -> Result<Vec<Secret>, TotpError> {
    let mut record = store
        .user(user)
        .map_err(UserError::from)?
        .ok_or_else(|| UserError::NoSuchUser(user.to_owned()))?;
    let Some(totp) = record.totp.as_mut().filter(|t| !t.confirmed) else {
        return Err(TotpError::NothingToConfirm);
    };
    let step = matching_step(totp.secret.expose(), code.trim(), now).ok_or(TotpError::WrongCode)?;
    let codes = new_recovery_codes();
    totp.confirmed = true;
    totp.last_step = step;
    totp.recovery = codes.iter().map(|c| recovery_hash(c.expose())).collect();
    store.put_user(&record).map_err(UserError::from)?;
    Ok(codes)
}

/// Whether `user` must give a code to sign in.
pub fn required(store: &Store, user: &str) -> Result<bool, UserError> {
    Ok(store
        .user(user)?
        .and_then(|u| u.totp)
        .is_some_and(|t| t.confirmed))
}

/// Checks a sign-in's code: a current code not used before, or an unused recovery code (which
/// is then spent). A user without a confirmed second factor passes.
pub fn check(store: &Store, user: &str, code: &str, now: i64) -> Result<bool, UserError> {
    let Some(mut record) = store.user(user)? else {
        return Ok(false);
    };
    let Some(totp) = record.totp.as_mut().filter(|t| t.confirmed) else {
        return Ok(true);
    };
    let code = code.trim();
    if let Some(step) = matching_step(totp.secret.expose(), code, now) {
        if step <= totp.last_step {
            return Ok(false);
        }
        totp.last_step = step;
    } else {
        let hash = recovery_hash(code);
        let before = totp.recovery.len();
        totp.recovery
            .retain(|h| !constant_time_eq(h.as_bytes(), hash.as_bytes()));
        if normalize(code).is_empty() || totp.recovery.len() == before {
            return Ok(false);
        }
        tracing::warn!(user, left = totp.recovery.len(), "a recovery code was used");
    }
    store.put_user(&record)?;
    Ok(true)
}

/// Turns the second factor off (settings page, or `minicloud admin reset-2fa` on the server).
pub fn remove(store: &Store, user: &str) -> Result<(), UserError> {
    let mut record = store
        .user(user)?
        .ok_or_else(|| UserError::NoSuchUser(user.to_owned()))?;
    record.totp = None;
    store.put_user(&record)?;
    Ok(())
}

/// How a user's second factor stands, for the settings page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpState {
    Off,
    /// A secret waits for its first code.
    Pending,
    On {
        recovery_left: usize,
    },
}

pub fn state(store: &Store, user: &str) -> Result<TotpState, UserError> {
    Ok(match store.user(user)?.and_then(|u| u.totp) {
        None => TotpState::Off,
        Some(t) if !t.confirmed => TotpState::Pending,
        Some(t) => TotpState::On {
            recovery_left: t.recovery.len(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::passwords::{ensure_admin_user, ADMIN_USER};

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        // RFC 6238, appendix B, SHA-1 key "12345678901234567890"; the last six of eight digits.
        let secret = BASE32_NOPAD.encode(b"12345678901234567890");
        for (t, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code_at(&secret, t).unwrap(), eight[2..], "at {t}");
        }
    }

    #[test]
    fn setting_up_signing_in_and_recovering() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        ensure_admin_user(&store, None, 0).unwrap();
        let now = 1_700_000_000;
        let secret = begin(&store, ADMIN_USER).unwrap();
        // Not confirmed: sign-in asks nothing yet.
        assert!(!required(&store, ADMIN_USER).unwrap());
        assert_eq!(state(&store, ADMIN_USER).unwrap(), TotpState::Pending);
        assert!(matches!(
            confirm(&store, ADMIN_USER, "000000", now),
            Err(TotpError::WrongCode)
        ));
        let code = code_at(secret.expose(), now).unwrap();
        let recovery = confirm(&store, ADMIN_USER, &code, now).unwrap();
        assert_eq!(recovery.len(), RECOVERY_CODES);
        assert!(required(&store, ADMIN_USER).unwrap());
        // The confirming code is spent; the next step's works once; a wrong one never.
        assert!(!check(&store, ADMIN_USER, &code, now).unwrap());
        let next = code_at(secret.expose(), now + STEP_SECS).unwrap();
        assert!(check(&store, ADMIN_USER, &next, now + STEP_SECS).unwrap());
        assert!(!check(&store, ADMIN_USER, &next, now + STEP_SECS).unwrap());
        assert!(!check(&store, ADMIN_USER, "", now).unwrap());
        // A recovery code works once, typed loosely.
        let typed = recovery[0].expose().to_uppercase().replace('-', " ");
        assert!(check(&store, ADMIN_USER, &typed, now).unwrap());
        assert!(!check(&store, ADMIN_USER, recovery[0].expose(), now).unwrap());
        assert_eq!(
            state(&store, ADMIN_USER).unwrap(),
            TotpState::On { recovery_left: 9 }
        );
        assert!(begin(&store, ADMIN_USER).is_err(), "on: turn it off first");
        remove(&store, ADMIN_USER).unwrap();
        assert!(!required(&store, ADMIN_USER).unwrap());
    }

    #[test]
    fn the_uri_names_the_site_and_account() {
        let uri = otpauth_uri(&Secret::new("ABC"), "ann", "admin.example.com");
        assert_eq!(
            uri,
            "otpauth://totp/admin%2Eexample%2Ecom:ann?secret=ABC&issuer=admin%2Eexample%2Ecom\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
