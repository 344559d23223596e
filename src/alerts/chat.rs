//! The chat-shaped channels: ntfy, Slack, Discord and Telegram. Each gets one JSON POST in
//! the shape its service documents ([`request`] builds it, pure, so the payloads are tested
//! exactly); a failure is told without the URL or token, which are the channel's secrets.

use serde_json::{json, Value};

use super::channels::post_json;
use crate::model::Secret;
use crate::store::{AlertEvent, AlertMessage};

/// Discord refuses a `content` longer than this.
const DISCORD_MAX: usize = 2000;
/// Telegram refuses a `text` longer than this.
const TELEGRAM_MAX: usize = 4096;

/// One chat channel's settings, borrowed from its record.
#[derive(Debug, Clone, Copy)]
pub enum Chat<'a> {
    Ntfy {
        url: &'a str,
        token: Option<&'a Secret>,
    },
    Slack {
        url: &'a Secret,
    },
    Discord {
        url: &'a Secret,
    },
    Telegram {
        bot_token: &'a Secret,
        chat_id: &'a str,
        api_url: &'a str,
    },
}

/// What is sent: where, with which bearer token, and the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub url: String,
    pub bearer: Option<String>,
    pub body: Value,
}

/// The request `message` makes on `chat`; `Err` when a stored URL no longer parses.
pub fn request(chat: Chat<'_>, message: &AlertMessage) -> Result<Request, String> {
    let subject = message.subject();
    let text = message.text();
    Ok(match chat {
        // ntfy's JSON publishing: POST to the server's root with the topic in the body, so
        // the title and tags may hold any characters (headers may not).
        Chat::Ntfy { url, token } => {
            let (server, topic) = ntfy_split(url)?;
            let (priority, tag) = match message.event {
                AlertEvent::Opened | AlertEvent::Reminder => (4, "rotating_light"),
                AlertEvent::Recovered => (3, "white_check_mark"),
                AlertEvent::Test => (3, "bell"),
            };
            Request {
                url: server,
                bearer: token.map(|t| t.expose().to_owned()),
                body: json!({
                    "topic": topic,
                    "title": subject,
                    "message": text,
                    "priority": priority,
                    "tags": [tag],
                }),
            }
        }
        Chat::Slack { url } => Request {
            url: url.expose().to_owned(),
            bearer: None,
            body: json!({
                "text": format!("*{}*\n{}", slack_escape(&subject), slack_escape(&text)),
            }),
        },
        // No mention is ever parsed: an app's output in an alert must not ping @everyone.
        Chat::Discord { url } => Request {
            url: url.expose().to_owned(),
            bearer: None,
            body: json!({
                "username": "minicloud",
                "content": truncate(&format!("**{subject}**\n{text}"), DISCORD_MAX),
                "allowed_mentions": { "parse": [] },
            }),
        },
        // Plain text (no parse_mode): nothing in the message needs escaping.
        Chat::Telegram {
            bot_token,
            chat_id,
            api_url,
        } => Request {
            url: format!(
                "{}/bot{}/sendMessage",
                api_url.trim_end_matches('/'),
                bot_token.expose()
            ),
            bearer: None,
            body: json!({
                "chat_id": chat_id,
                "text": truncate(&format!("{subject}\n\n{text}"), TELEGRAM_MAX),
                "disable_web_page_preview": true,
            }),
        },
    })
}

/// Sends `message` on `chat`: one attempt.
pub async fn deliver(chat: Chat<'_>, message: &AlertMessage) -> Result<(), String> {
    let request = request(chat, message)?;
    let label = match chat {
        Chat::Ntfy { url, .. } => format!("ntfy {url}"),
        Chat::Slack { .. } => "Slack".to_owned(),
        Chat::Discord { .. } => "Discord".to_owned(),
        Chat::Telegram { .. } => "Telegram".to_owned(),
    };
    post_json(
        &request.url,
        request.bearer.as_deref(),
        &[],
        &request.body,
        &label,
    )
    .await
}

/// `https://ntfy.sh/alerts` → (`https://ntfy.sh/`, `alerts`): the topic is the last segment.
pub fn ntfy_split(url: &str) -> Result<(String, String), String> {
    let mut parsed = url::Url::parse(url).map_err(|e| format!("url '{url}' is not a URL: {e}"))?;
    let topic = parsed
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default()
        .to_owned();
    if topic.is_empty()
        || topic.len() > 64
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(format!(
            "url '{url}' must end in the topic: letters, digits, - and _ (https://ntfy.sh/my-alerts)"
        ));
    }
    if parsed.query().is_some() {
        return Err(format!("url '{url}' must not have a query"));
    }
    parsed
        .path_segments_mut()
        .map_err(|()| format!("url '{url}' cannot have a path"))?
        .pop()
        .push("");
    Ok((parsed.to_string(), topic))
}

/// Slack's mrkdwn treats these three as markup.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `max` characters, the cut marked.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(event: AlertEvent, body: &str) -> AlertMessage {
        AlertMessage {
            event,
            incident: Some(7),
            app: Some("blog".into()),
            title: "blog: its web container stopped (exit code 137)".into(),
            body: body.into(),
            at: 1,
        }
    }

    #[test]
    fn ntfy_posts_the_topic_to_the_server_root() {
        let token = Secret::new("tk_abc");
        let r = request(
            Chat::Ntfy {
                url: "https://ntfy.example/base/my-alerts",
                token: Some(&token),
            },
            &message(AlertEvent::Opened, "The engine restarts it."),
        )
        .unwrap();
        assert_eq!(r.url, "https://ntfy.example/base/");
        assert_eq!(r.bearer.as_deref(), Some("tk_abc"));
        assert_eq!(
            r.body,
            json!({
                "topic": "my-alerts",
                "title": "[minicloud] Problem: blog: its web container stopped (exit code 137)",
                "message": "The engine restarts it.\n\nIncident #7 (minicloud incidents).",
                "priority": 4,
                "tags": ["rotating_light"],
            })
        );
        for bad in [
            "https://ntfy.example/",
            "https://ntfy.example/a b",
            "https://n/x?y=1",
        ] {
            assert!(ntfy_split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slack_escapes_its_markup_and_discord_pings_nobody() {
        let url = Secret::new("https://hooks.slack.example/T/B/x");
        let r = request(
            Chat::Slack { url: &url },
            &message(AlertEvent::Recovered, "<!channel> & more"),
        )
        .unwrap();
        assert_eq!(
            r.body["text"],
            "*[minicloud] Recovered: blog: its web container stopped (exit code 137)*\n&lt;!channel&gt; &amp; more\n\nIncident #7 (minicloud incidents)."
        );
        let r = request(
            Chat::Discord { url: &url },
            &message(AlertEvent::Opened, &"@everyone ".repeat(400)),
        )
        .unwrap();
        assert_eq!(r.body["allowed_mentions"], json!({"parse": []}));
        let content = r.body["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), DISCORD_MAX);
        assert!(content.ends_with('…'));
    }

    #[test]
    fn telegram_sends_plain_text_to_the_bots_chat() {
        let token = Secret::new("123:abc");
        let r = request(
            Chat::Telegram {
                bot_token: &token,
                chat_id: "-100200",
                api_url: "https://api.telegram.org/",
            },
            &message(AlertEvent::Opened, "x"),
        )
        .unwrap();
        assert_eq!(r.url, "https://api.telegram.org/bot123:abc/sendMessage");
        assert_eq!(r.body["chat_id"], "-100200");
        assert_eq!(r.body["disable_web_page_preview"], true);
        assert!(r.body["text"]
            .as_str()
            .unwrap()
            .starts_with("[minicloud] Problem: blog"));
    }
}
