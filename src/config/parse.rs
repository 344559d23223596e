//! Value parsers of the key table: text in, a typed value or why not out.

use std::path::PathBuf;
use std::time::Duration;

use super::{LETSENCRYPT, LETSENCRYPT_STAGING};
use crate::model::secret::Secret;

/// The base domain: a valid host name with room for `<app>.` in front of it, so every app's
/// default host (and `admin.<domain>`) is a valid host name too.
pub(super) fn domain(v: &str) -> Result<minicloud_proxy::Hostname, String> {
    let host = minicloud_proxy::Hostname::parse(v).map_err(|e| e.to_string())?;
    let room = 253 - crate::model::name::MAX_LEN - 1;
    if host.as_str().len() > room {
        return Err(format!(
            "is {} characters long; at most {room}, so that <app>.<domain> stays a valid host name",
            host.as_str().len()
        ));
    }
    Ok(host)
}

pub(super) fn port(v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err("expected a port number from 1 to 65535".into()),
    }
}

pub(super) fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// Whole seconds from `min` to an hour.
pub(super) fn seconds(v: &str, min: u64) -> Result<Duration, String> {
    match v.parse::<u64>() {
        Ok(n) if (min..=3600).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!("expected whole seconds from {min} to 3600")),
    }
}

/// Whole minutes up to a week; 0 is `None` (never).
pub(super) fn minutes_or_never(v: &str) -> Result<Option<Duration>, String> {
    match v.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(n) if n <= 7 * 24 * 60 => Ok(Some(Duration::from_secs(n * 60))),
        _ => Err("expected whole minutes from 0 (never) to 10080 (a week)".to_string()),
    }
}

pub(super) fn non_empty_path(v: &str) -> Result<PathBuf, String> {
    if v.is_empty() {
        Err("must not be empty".to_string())
    } else {
        Ok(PathBuf::from(v))
    }
}

/// The shortest configured admin token: 32 characters, so a guessable word or phrase is
/// refused (generated tokens are 256 random bits).
pub(super) const MIN_TOKEN_LEN: usize = 32;

pub(super) fn admin_token(v: &str) -> Result<Secret, String> {
    if v.chars().count() < MIN_TOKEN_LEN {
        Err(format!(
            "a token must be at least {MIN_TOKEN_LEN} characters (e.g. openssl rand -hex 24)"
        ))
    } else {
        Ok(Secret::new(v))
    }
}

pub(super) fn admin_password(v: &str) -> Result<Secret, String> {
    if v.chars().count() < crate::model::secret::MIN_PASSWORD_LEN {
        Err(format!(
            "a password must be at least {} characters",
            crate::model::secret::MIN_PASSWORD_LEN
        ))
    } else {
        Ok(Secret::new(v))
    }
}

/// A connection cap: from 1 to a million.
pub(super) fn connections(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err("expected a number of connections from 1 to 1000000".to_string()),
    }
}

pub(super) fn threads(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err("expected a number of threads from 1 to 64".to_string()),
    }
}

/// The pool app networks take their subnets from: IPv4, with room for at least one app.
pub(super) fn subnet_pool(v: &str) -> Result<ipnet::Ipv4Net, String> {
    let pool: ipnet::Ipv4Net = v
        .parse()
        .map_err(|_| "expected an IPv4 network, e.g. 10.213.0.0/16".to_string())?;
    if pool.prefix_len() > 28 {
        return Err("is too small: give a /28 or larger (each app takes a /26 of it)".into());
    }
    Ok(pool.trunc())
}

/// Docker container names, comma-separated (`minicloud,mariadb,rabbitmq`).
pub(super) fn container_names(v: &str) -> Result<Vec<String>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            let mut chars = n.chars();
            let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
            if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
                Ok(n.to_owned())
            } else {
                Err(format!(
                    "'{n}' is not a container name (letters, digits, '_', '.', '-')"
                ))
            }
        })
        .collect()
}

pub(super) fn acme_email(v: &str) -> Result<String, String> {
    let v = v.trim();
    match v.split_once('@') {
        Some((user, domain))
            if !user.is_empty() && domain.contains('.') && !v.contains(char::is_whitespace) =>
        {
            Ok(v.to_string())
        }
        _ => Err("expected an email address, e.g. you@example.com".into()),
    }
}

pub(super) fn acme_directory(v: &str) -> Result<String, String> {
    match v {
        "letsencrypt" | "letsencrypt-production" => Ok(LETSENCRYPT.into()),
        "letsencrypt-staging" => Ok(LETSENCRYPT_STAGING.into()),
        url if url.starts_with("https://") && url.len() > "https://".len() => Ok(url.into()),
        _ => Err(
            "expected 'letsencrypt', 'letsencrypt-staging' or an https:// ACME directory URL"
                .into(),
        ),
    }
}
