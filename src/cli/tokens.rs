//! `minicloud tokens …` (API tokens: list, create, revoke) and `minicloud audit` (who changed
//! what), printed for people.

use serde::Deserialize;

use super::error::CliError;
use super::format::ago;
use super::table;
use super::{encode_segment, ApiClient};
use crate::model::{format_time, now};

/// `GET /api/tokens`, leniently.
#[derive(Debug, Deserialize)]
struct TokenView {
    name: String,
    #[serde(default)]
    created_at: i64,
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    last_used: Option<i64>,
    #[serde(default)]
    expired: bool,
}

pub async fn list(api: &ApiClient) -> Result<(), CliError> {
    let tokens: Vec<TokenView> = api.get("/api/tokens").await?;
    let now = now();
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                ago(now, t.created_at),
                match t.expires_at {
                    None => "never".into(),
                    Some(_) if t.expired => "expired".into(),
                    Some(at) => format_time(at),
                },
                t.last_used
                    .map_or_else(|| "never".into(), |at| ago(now, at)),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["name", "created", "expires", "last used"], &rows)
    );
    Ok(())
}

#[derive(Debug, Deserialize)]
struct NewToken {
    name: String,
    token: String,
    #[serde(default)]
    expires_at: Option<i64>,
}

pub async fn create(api: &ApiClient, name: &str, days: Option<u32>) -> Result<(), CliError> {
    let body = serde_json::json!({ "name": name, "expires_in_days": days });
    let made: NewToken = api.post("/api/tokens", &body).await?;
    let until = made.expires_at.map_or_else(
        || "never expires".into(),
        |at| format!("expires {}", format_time(at)),
    );
    // The token alone on stdout, so a script can capture it; the rest on stderr.
    eprintln!("token {} ({until}), shown only this once:", made.name);
    println!("{}", made.token);
    Ok(())
}

pub async fn revoke(api: &ApiClient, name: &str) -> Result<(), CliError> {
    api.delete(&format!("/api/tokens/{}", encode_segment(name)))
        .await?;
    println!("revoked {name}");
    Ok(())
}

/// `minicloud audit`'s filters.
pub struct AuditArgs {
    pub actor: Option<String>,
    pub what: Option<String>,
    pub failed: bool,
    pub days: Option<u32>,
    pub limit: Option<usize>,
}

/// `GET /api/audit`, leniently.
#[derive(Debug, Deserialize)]
struct AuditEntry {
    at: i64,
    actor: Actor,
    #[serde(default)]
    ip: Option<String>,
    what: String,
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    outcome: String,
}

#[derive(Debug, Deserialize)]
struct Actor {
    kind: String,
    #[serde(default)]
    name: Option<String>,
}

pub async fn audit(api: &ApiClient, args: &AuditArgs) -> Result<(), CliError> {
    let mut query = Vec::new();
    let mut add = |key: &str, value: String| {
        query.push(format!("{key}={}", encode_segment(&value)));
    };
    if let Some(a) = &args.actor {
        add("actor", a.clone());
    }
    if let Some(w) = &args.what {
        add("what", w.clone());
    }
    if args.failed {
        add("failed", "true".into());
    }
    if let Some(d) = args.days {
        add("days", d.to_string());
    }
    if let Some(l) = args.limit {
        add("limit", l.to_string());
    }
    let entries: Vec<AuditEntry> = api.get(&format!("/api/audit?{}", query.join("&"))).await?;
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                format_time(e.at),
                match &e.actor.name {
                    Some(name) => format!("{} {name}", e.actor.kind),
                    None => e.actor.kind.clone(),
                },
                e.ip.clone().unwrap_or_default(),
                e.what.clone(),
                format!("{} {}", if e.ok { "ok" } else { "FAILED" }, e.outcome),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["time", "who", "from", "what", "outcome"], &rows)
    );
    Ok(())
}
