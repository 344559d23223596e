//! `minicloud alerts …` and `minicloud incidents`: alert channels and what went wrong,
//! printed for people.

use serde::Deserialize;

use super::apps::read_secret_stdin;
use super::error::CliError;
use super::{encode_segment, table, ApiClient};
use crate::model::format_time;

/// `GET /api/alerts/channels`, leniently.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelView {
    pub id: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub health: ChannelHealthView,
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChannelHealthView {
    #[serde(default)]
    pub last_error: Option<String>,
}

/// `GET /api/incidents`, leniently.
#[derive(Debug, Clone, Deserialize)]
pub struct IncidentView {
    pub id: u64,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub opened_at: i64,
    #[serde(default)]
    pub resolved_at: Option<i64>,
    #[serde(default)]
    pub timeline: Vec<TimelineView>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TimelineView {
    pub at: i64,
    pub text: String,
}

pub async fn channels(api: &ApiClient) -> Result<(), CliError> {
    let list: Vec<ChannelView> = api.get("/api/alerts/channels").await?;
    if list.is_empty() {
        println!("No alert channels. Add one with: minicloud alerts add webhook URL");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let state = match (&c.health.last_error, c.state.as_str()) {
                (Some(e), "failing") => format!("failing: {e}"),
                _ => c.state.clone(),
            };
            vec![c.id.clone(), c.kind.clone(), c.target.clone(), state]
        })
        .collect();
    print!(
        "{}",
        table::render(&["id", "kind", "target", "state"], &rows)
    );
    Ok(())
}

pub async fn add(api: &ApiClient, body: serde_json::Value) -> Result<(), CliError> {
    let channel: ChannelView = api.post("/api/alerts/channels", &body).await?;
    println!(
        "added {} channel {} → {}",
        channel.kind, channel.id, channel.target
    );
    if let Some(secret) = channel.secret {
        println!(
            "signing key (shown only this once; check X-Minicloud-Signature = sha256=HMAC-SHA256(key, body)):\n    {secret}"
        );
    }
    println!("send a test with: minicloud alerts test {}", channel.id);
    Ok(())
}

/// The body of `alerts add webhook`.
pub fn webhook_body(url: &str, secret_stdin: bool) -> Result<serde_json::Value, CliError> {
    let mut body = serde_json::json!({ "kind": "webhook", "url": url });
    if secret_stdin {
        let secret = read_secret_stdin("--secret-stdin", "could not read the key from stdin")?;
        body["secret"] = secret.expose().into();
    }
    Ok(body)
}

/// The body of `alerts add ntfy`.
pub fn ntfy_body(url: &str, token_stdin: bool) -> Result<serde_json::Value, CliError> {
    let mut body = serde_json::json!({ "kind": "ntfy", "url": url });
    if token_stdin {
        let token = read_secret_stdin("--token-stdin", "could not read the token from stdin")?;
        body["token"] = token.expose().into();
    }
    Ok(body)
}

/// The body of `alerts add telegram`: the bot's token comes from stdin, never the command line.
pub fn telegram_body(
    chat_id: &str,
    api_url: Option<String>,
) -> Result<serde_json::Value, CliError> {
    let token = read_secret_stdin("the bot token on stdin", "could not read the bot token")?;
    Ok(serde_json::json!({
        "kind": "telegram",
        "bot_token": token.expose(),
        "chat_id": chat_id,
        "api_url": api_url,
    }))
}

/// The parts of `alerts add email`.
pub struct EmailArgs {
    pub host: String,
    pub port: Option<u16>,
    pub security: Option<String>,
    pub user: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

pub fn email_body(args: EmailArgs) -> Result<serde_json::Value, CliError> {
    let mut body = serde_json::json!({
        "kind": "email",
        "host": args.host,
        "port": args.port,
        "security": args.security,
        "from": args.from,
        "to": args.to,
    });
    if let Some(user) = args.user {
        let password = read_secret_stdin(
            "--smtp-password-stdin",
            "could not read the SMTP password from stdin",
        )?;
        body["username"] = user.into();
        body["password"] = password.expose().into();
    }
    Ok(body)
}

pub async fn remove(api: &ApiClient, id: &str) -> Result<(), CliError> {
    api.delete(&format!("/api/alerts/channels/{}", encode_segment(id)))
        .await?;
    println!("removed alert channel {id}");
    Ok(())
}

pub async fn test(api: &ApiClient, id: &str) -> Result<(), CliError> {
    let path = format!("/api/alerts/channels/{}/test", encode_segment(id));
    let channel: ChannelView = api.post(&path, &serde_json::json!({})).await?;
    println!(
        "test message delivered through {} ({})",
        channel.id, channel.target
    );
    Ok(())
}

pub async fn incidents(api: &ApiClient, only_open: bool) -> Result<(), CliError> {
    let list: Vec<IncidentView> = api.get("/api/incidents").await?;
    print!("{}", incidents_text(&list, only_open));
    Ok(())
}

fn incidents_text(list: &[IncidentView], only_open: bool) -> String {
    let shown: Vec<&IncidentView> = list
        .iter()
        .filter(|i| !only_open || i.resolved_at.is_none())
        .collect();
    if shown.is_empty() {
        return "No incidents.\n".into();
    }
    let mut out = String::new();
    for i in shown {
        let state = match i.resolved_at {
            Some(at) => format!("recovered {}", format_time(at)),
            None => "OPEN".to_owned(),
        };
        out.push_str(&format!(
            "#{} {} [{}] opened {}, {state}\n",
            i.id,
            i.title,
            i.kind,
            format_time(i.opened_at)
        ));
        for entry in &i.timeline {
            out.push_str(&format!("    {}  {}\n", format_time(entry.at), entry.text));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn incidents_show_their_timeline_and_state() {
        let list: Vec<IncidentView> = serde_json::from_value(json!([
            {"id": 2, "kind": "crash-loop", "title": "blog: its web container is crash-looping",
             "opened_at": 0, "resolved_at": null, "some_new_field": true,
             "timeline": [{"at": 0, "text": "stopped (exit code 1)"}]},
            {"id": 1, "kind": "container-exited", "title": "shop: its web container stopped",
             "opened_at": 0, "resolved_at": 60, "timeline": []}
        ]))
        .unwrap();
        let all = incidents_text(&list, false);
        assert!(
            all.contains("#2 blog: its web container is crash-looping [crash-loop]"),
            "{all}"
        );
        assert!(all.contains("OPEN\n    "), "{all}");
        assert!(
            all.contains("    1970-01-01T00:00:00Z  stopped (exit code 1)\n"),
            "{all}"
        );
        assert!(all.contains("#1 shop"), "{all}");
        let open = incidents_text(&list, true);
        assert!(!open.contains("#1 shop"), "{open}");
        assert_eq!(incidents_text(&[], false), "No incidents.\n");
    }
}
