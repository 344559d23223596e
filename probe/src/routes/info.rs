//! `/`, `/env`, `/headers`: what the probe is and what it was given.

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::http::{self, Request, Response};

pub fn root(config: &Config) -> Response {
    http::json(&json!({
        "version": config.version,
        "app": config.app,
        "hostname": hostname(),
        "pid": std::process::id(),
    }))
}

pub fn env() -> Response {
    http::json(&Value::Object(env_json()))
}

/// All environment variables, sorted by name (non-UTF-8 bytes replaced).
pub fn env_json() -> Map<String, Value> {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                Value::String(v.to_string_lossy().into_owned()),
            )
        })
        .collect()
}

/// Request headers by lower-case name; a repeated header's values are joined with ", ".
pub fn headers(req: &Request) -> Response {
    let mut map = Map::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                map.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    http::json(&Value::Object(map))
}

/// The kernel's hostname (the container id in Docker), read without libc.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}
