//! Where alerts go: a signed JSON webhook, e-mail over SMTP, or a chat service ([`super::chat`]:
//! ntfy, Slack, Discord, Telegram). Adding a channel validates it here (every face gets the
//! same answer); delivering one message is one attempt, and its outcome is written to the
//! channel's health, never to the thing the message is about.

use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::chat::{self, Chat};
use super::AlertError;
use crate::ctx::Ctx;
use crate::model::{now, Secret};
use crate::store::{
    AlertEvent, AlertMessage, ChannelConfig, ChannelHealth, ChannelRecord, SmtpSecurity,
};

/// The header carrying the webhook's signature: `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Minicloud-Signature";

/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// What a person asks for when adding a channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum NewChannel {
    Webhook {
        url: String,
        /// The HMAC key; minicloud makes one when none is given.
        secret: Option<Secret>,
    },
    Email {
        host: String,
        port: Option<u16>,
        /// `plain`, `starttls` (the default) or `tls`.
        security: Option<SmtpSecurity>,
        username: Option<String>,
        password: Option<Secret>,
        from: String,
        to: Vec<String>,
    },
    Ntfy {
        /// The topic's URL: `https://ntfy.sh/my-alerts`.
        url: String,
        /// An access token, for a protected topic.
        token: Option<Secret>,
    },
    Slack {
        /// The incoming webhook's URL.
        url: Secret,
    },
    Discord {
        /// The channel webhook's URL.
        url: Secret,
    },
    Telegram {
        bot_token: Secret,
        /// A chat's number (`-100…` for groups and channels) or `@channelname`.
        chat_id: String,
        /// A self-hosted Bot API server; Telegram's own by default.
        api_url: Option<String>,
    },
}

/// Telegram's Bot API, unless a channel names its own server.
const TELEGRAM_API: &str = "https://api.telegram.org";

/// A channel as shown: its secrets masked, except the webhook key right after it was made.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelView {
    pub id: String,
    pub kind: &'static str,
    /// Where it delivers: the URL, `host:port → recipients`, or (for services whose URL is the
    /// secret) only the service's host.
    pub target: String,
    pub created_at: i64,
    pub health: ChannelHealth,
    /// `ok`, `failing` or `untried`.
    pub state: &'static str,
    /// The webhook's HMAC key: only in the answer to `add`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl ChannelView {
    pub fn of(record: &ChannelRecord) -> Self {
        let (kind, target) = match &record.config {
            ChannelConfig::Webhook { url, .. } => ("webhook", url.clone()),
            ChannelConfig::Email { host, port, to, .. } => {
                ("email", format!("{host}:{port} → {}", to.join(", ")))
            }
            ChannelConfig::Ntfy { url, .. } => ("ntfy", url.clone()),
            ChannelConfig::Slack { url } => ("slack", origin_only(url.expose())),
            ChannelConfig::Discord { url } => ("discord", origin_only(url.expose())),
            ChannelConfig::Telegram {
                chat_id, api_url, ..
            } => (
                "telegram",
                if api_url == TELEGRAM_API {
                    format!("chat {chat_id}")
                } else {
                    format!("chat {chat_id} via {}", origin_only(api_url))
                },
            ),
        };
        let state = if record.health.failing_since.is_some() {
            "failing"
        } else if record.health.last_ok.is_some() {
            "ok"
        } else {
            "untried"
        };
        Self {
            id: record.id.clone(),
            kind,
            target,
            created_at: record.created_at,
            health: record.health.clone(),
            state,
            secret: None,
        }
    }
}

impl AlertMessage {
    pub(super) fn subject(&self) -> String {
        let prefix = match self.event {
            AlertEvent::Recovered => "[minicloud] Recovered",
            AlertEvent::Reminder => "[minicloud] Still wrong",
            AlertEvent::Test => "[minicloud] Test",
            AlertEvent::Opened => "[minicloud] Problem",
        };
        format!("{prefix}: {}", self.title)
    }

    /// The body, and where to read more.
    pub(super) fn text(&self) -> String {
        match self.incident {
            Some(id) => format!("{}\n\nIncident #{id} (minicloud incidents).", self.body),
            None => self.body.clone(),
        }
    }
}

/// `https://hooks.slack.com/…`: where a secret URL goes, without the part that is the secret.
fn origin_only(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| format!("{}/…", u.origin().ascii_serialization()))
        .unwrap_or_else(|_| "(not a URL)".to_owned())
}

/// An http(s) URL with a host, or a sentence saying what is wrong with `field`.
fn http_url(url: &str, field: &str) -> Result<url::Url, AlertError> {
    // The URL may be a secret (Slack, Discord): the error does not repeat it.
    let parsed = url::Url::parse(url)
        .map_err(|e| AlertError::Invalid(format!("{field} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(AlertError::Invalid(format!(
            "{field} must be an http:// or https:// URL with a host"
        )));
    }
    Ok(parsed)
}

/// Checks a new channel and turns it into what the store keeps.
pub fn plan_channel(
    new: NewChannel,
    id: String,
    created_at: i64,
) -> Result<ChannelRecord, AlertError> {
    let config = match new {
        NewChannel::Webhook { url, secret } => {
            http_url(&url, &format!("url '{url}'"))?;
            let secret = match secret {
                Some(s) if s.expose().len() < 16 => {
                    return Err(AlertError::Invalid(
                        "secret must be at least 16 characters (or leave it out and minicloud makes one)".into(),
                    ))
                }
                Some(s) => s,
                None => {
                    let mut bytes = [0u8; 24];
                    rand::rng().fill_bytes(&mut bytes);
                    Secret::new(hex::encode(bytes))
                }
            };
            ChannelConfig::Webhook { url, secret }
        }
        NewChannel::Email {
            host,
            port,
            security,
            username,
            password,
            from,
            to,
        } => {
            let host = host.trim().to_owned();
            if host.is_empty()
                || !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
            {
                return Err(AlertError::Invalid(format!(
                    "host '{host}' is not a host name or address"
                )));
            }
            let security = security.unwrap_or(SmtpSecurity::Starttls);
            let port = port.unwrap_or(match security {
                SmtpSecurity::Tls => 465,
                SmtpSecurity::Starttls => 587,
                SmtpSecurity::Plain => 25,
            });
            if username.is_some() != password.is_some() {
                return Err(AlertError::Invalid(
                    "give both username and password, or neither".into(),
                ));
            }
            mailbox(&from, "from")?;
            if to.is_empty() {
                return Err(AlertError::Invalid("to needs at least one address".into()));
            }
            for address in &to {
                mailbox(address, "to")?;
            }
            ChannelConfig::Email {
                host,
                port,
                security,
                username,
                password,
                from,
                to,
            }
        }
        NewChannel::Ntfy { url, token } => {
            http_url(&url, &format!("url '{url}'"))?;
            chat::ntfy_split(&url).map_err(AlertError::Invalid)?;
            ChannelConfig::Ntfy { url, token }
        }
        NewChannel::Slack { url } => {
            http_url(url.expose(), "url (the incoming webhook's)")?;
            ChannelConfig::Slack { url }
        }
        NewChannel::Discord { url } => {
            http_url(url.expose(), "url (the channel webhook's)")?;
            ChannelConfig::Discord { url }
        }
        NewChannel::Telegram {
            bot_token,
            chat_id,
            api_url,
        } => {
            // `123456:ABC-def…`, as @BotFather gives it; it goes into a URL path.
            let token_ok = bot_token.expose().split_once(':').is_some_and(|(id, key)| {
                !id.is_empty()
                    && id.chars().all(|c| c.is_ascii_digit())
                    && !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            });
            if !token_ok {
                return Err(AlertError::Invalid(
                    "bot_token must be the token @BotFather gave, like 123456:ABC-def…".into(),
                ));
            }
            let numeric = chat_id
                .strip_prefix('-')
                .unwrap_or(&chat_id)
                .chars()
                .all(|c| c.is_ascii_digit());
            let named = chat_id.strip_prefix('@').is_some_and(|n| {
                !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if chat_id.trim_start_matches('-').is_empty() || !(numeric || named) {
                return Err(AlertError::Invalid(format!(
                    "chat_id '{chat_id}' must be a chat's number (-100… for groups) or @channelname"
                )));
            }
            let api_url = api_url
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| TELEGRAM_API.to_owned());
            http_url(&api_url, &format!("api_url '{api_url}'"))?;
            ChannelConfig::Telegram {
                bot_token,
                chat_id,
                api_url,
            }
        }
    };
    Ok(ChannelRecord {
        id,
        config,
        created_at,
        health: ChannelHealth::default(),
    })
}

fn mailbox(address: &str, field: &str) -> Result<Mailbox, AlertError> {
    address.parse().map_err(|e| {
        AlertError::Invalid(format!("{field} '{address}' is not an e-mail address: {e}"))
    })
}

/// Adds a channel; the answer holds the webhook's key, shown this once.
pub fn add_channel(ctx: &Ctx, new: NewChannel) -> Result<ChannelView, AlertError> {
    let mut id = [0u8; 4];
    rand::rng().fill_bytes(&mut id);
    let record = plan_channel(new, hex::encode(id), now())?;
    ctx.store.put_channel(&record)?;
    let mut view = ChannelView::of(&record);
    if let ChannelConfig::Webhook { secret, .. } = &record.config {
        view.secret = Some(secret.expose().to_owned());
    }
    Ok(view)
}

pub fn list_channels(ctx: &Ctx) -> Result<Vec<ChannelView>, AlertError> {
    Ok(ctx.store.channels()?.iter().map(ChannelView::of).collect())
}

pub fn remove_channel(ctx: &Ctx, id: &str) -> Result<(), AlertError> {
    if ctx.store.delete_channel(id)? {
        Ok(())
    } else {
        Err(AlertError::NotFound(format!(
            "alert channel '{id}' not found"
        )))
    }
}

/// Sends a test message through one channel now and says how it went (the channel's health
/// records it too).
pub async fn test_channel(ctx: &Ctx, id: &str) -> Result<ChannelView, AlertError> {
    let channel = ctx
        .store
        .channel(id)?
        .ok_or_else(|| AlertError::NotFound(format!("alert channel '{id}' not found")))?;
    let message = AlertMessage {
        event: AlertEvent::Test,
        incident: None,
        app: None,
        title: "test message".into(),
        body: format!(
            "This is a test from minicloud at {}. If you read this, alerts reach you here.",
            ctx.config.admin_host()
        ),
        at: now(),
    };
    let outcome = deliver(&channel.config, &message).await;
    let failed = outcome.as_ref().err().cloned();
    let updated = record_outcome(ctx, id, outcome)?;
    match failed {
        Some(reason) => Err(AlertError::Delivery(reason)),
        None => Ok(ChannelView::of(&updated.unwrap_or(channel))),
    }
}

/// Writes one delivery's outcome to the channel's health; `None` when the channel is gone.
pub(super) fn record_outcome(
    ctx: &Ctx,
    id: &str,
    outcome: Result<(), String>,
) -> Result<Option<ChannelRecord>, AlertError> {
    let Some(mut channel) = ctx.store.channel(id)? else {
        return Ok(None);
    };
    let at = now();
    match outcome {
        Ok(()) => {
            channel.health.last_ok = Some(at);
            channel.health.failing_since = None;
        }
        Err(reason) => {
            channel.health.failing_since.get_or_insert(at);
            channel.health.last_error = Some(reason);
        }
    }
    ctx.store.put_channel(&channel)?;
    Ok(Some(channel))
}

/// One delivery attempt. The error is a sentence for the channel's health; it never holds
/// the channel's secrets.
pub async fn deliver(config: &ChannelConfig, message: &AlertMessage) -> Result<(), String> {
    match config {
        ChannelConfig::Webhook { url, secret } => deliver_webhook(url, secret, message).await,
        ChannelConfig::Email {
            host,
            port,
            security,
            username,
            password,
            from,
            to,
        } => {
            let email = build_email(from, to, message)?;
            let builder = match security {
                SmtpSecurity::Plain => {
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                }
                SmtpSecurity::Starttls => {
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                        .tls(Tls::Required(tls_parameters(host)?))
                }
                SmtpSecurity::Tls => {
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                        .tls(Tls::Wrapper(tls_parameters(host)?))
                }
            };
            let mut builder = builder.port(*port).timeout(Some(ATTEMPT_TIMEOUT));
            if let (Some(user), Some(pass)) = (username, password) {
                builder =
                    builder.credentials(Credentials::new(user.clone(), pass.expose().to_owned()));
            }
            builder
                .build()
                .send(email)
                .await
                .map(drop)
                .map_err(|e| format!("SMTP {host}:{port}: {e}"))
        }
        ChannelConfig::Ntfy { url, token } => {
            let token = token.as_ref();
            chat::deliver(Chat::Ntfy { url, token }, message).await
        }
        ChannelConfig::Slack { url } => chat::deliver(Chat::Slack { url }, message).await,
        ChannelConfig::Discord { url } => chat::deliver(Chat::Discord { url }, message).await,
        ChannelConfig::Telegram {
            bot_token,
            chat_id,
            api_url,
        } => {
            let chat = Chat::Telegram {
                bot_token,
                chat_id,
                api_url,
            };
            chat::deliver(chat, message).await
        }
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, String> {
    TlsParameters::new(host.to_owned()).map_err(|e| format!("TLS for {host}: {e}"))
}

fn build_email(
    from: &str,
    to: &[String],
    message: &AlertMessage,
) -> Result<lettre::Message, String> {
    let mut builder = lettre::Message::builder()
        .from(from.parse().map_err(|e| format!("from '{from}': {e}"))?)
        .subject(message.subject());
    for address in to {
        builder = builder.to(address
            .parse()
            .map_err(|e| format!("to '{address}': {e}"))?);
    }
    builder
        .body(format!("{}\n\n{}\n", message.title, message.text()))
        .map_err(|e| format!("cannot build the e-mail: {e}"))
}

async fn deliver_webhook(url: &str, secret: &Secret, message: &AlertMessage) -> Result<(), String> {
    // Records are plain structs: serde_json cannot fail on them.
    #[allow(clippy::expect_used)]
    let body = serde_json::to_value(message).expect("a message serializes to JSON");
    // The signature covers exactly the bytes `post_json` sends (`to_vec` of the value).
    #[allow(clippy::expect_used)]
    let bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
    let signed = signature(secret, &bytes);
    post_json(
        url,
        None,
        &[(SIGNATURE_HEADER, &signed)],
        &body,
        &format!("POST {url}"),
    )
    .await
}

/// One JSON POST. `label` names the receiver in the error: never the URL when the URL is
/// the secret. A refusal carries the receiver's own words (Telegram's `description`).
pub(super) async fn post_json(
    url: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
    label: &str,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    // Records are plain structs: serde_json cannot fail on them.
    #[allow(clippy::expect_used)]
    let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(bytes);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{label}: {}", without_url(e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let said = response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| {
            ["description", "message", "error"]
                .iter()
                .find_map(|k| v[*k].as_str().map(str::to_owned))
        })
        .map(|words| format!(": {words}"))
        .unwrap_or_default();
    Err(format!("{label}: the receiver answered {status}{said}"))
}

/// reqwest's message without the URL it repeats (it may carry credentials in its query).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body): what the receiver recomputes to check.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str, secret: Option<&str>) -> NewChannel {
        NewChannel::Webhook {
            url: url.into(),
            secret: secret.map(Secret::new),
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let sig = signature(&Secret::new("Jefe"), b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn channels_are_checked_before_they_are_kept() {
        let ok = plan_channel(webhook("https://hooks.example/x", None), "ab".into(), 1).unwrap();
        let ChannelConfig::Webhook { secret, .. } = &ok.config else {
            panic!("{ok:?}")
        };
        assert_eq!(
            secret.expose().len(),
            48,
            "a key is made when none is given"
        );
        for (new, wanted) in [
            (webhook("ftp://x/y", None), "http:// or https://"),
            (webhook("not a url", None), "is not a URL"),
            (webhook("http://x/", Some("short")), "at least 16"),
        ] {
            let err = plan_channel(new, "ab".into(), 1).unwrap_err().to_string();
            assert!(err.contains(wanted), "{err}");
        }
        let email = |host: &str, from: &str, to: Vec<&str>, user: Option<&str>| NewChannel::Email {
            host: host.into(),
            port: None,
            security: None,
            username: user.map(Into::into),
            password: None,
            from: from.into(),
            to: to.into_iter().map(Into::into).collect(),
        };
        let ok = plan_channel(
            email("smtp.example", "mc@x.test", vec!["a@x.test"], None),
            "cd".into(),
            1,
        )
        .unwrap();
        assert!(matches!(
            ok.config,
            ChannelConfig::Email {
                port: 587,
                security: SmtpSecurity::Starttls,
                ..
            }
        ));
        for (new, wanted) in [
            (
                email("smtp.example", "nobody", vec!["a@x.test"], None),
                "from 'nobody'",
            ),
            (
                email("smtp.example", "mc@x.test", vec![], None),
                "at least one",
            ),
            (
                email("smtp/../x", "mc@x.test", vec!["a@x.test"], None),
                "not a host",
            ),
            (
                email("smtp.example", "mc@x.test", vec!["a@x.test"], Some("u")),
                "both username",
            ),
        ] {
            let err = plan_channel(new, "cd".into(), 1).unwrap_err().to_string();
            assert!(err.contains(wanted), "{err}");
        }
    }

    #[test]
    fn the_view_masks_secrets_and_says_how_deliveries_go() {
        let mut record = plan_channel(
            webhook("https://h.example/x", Some("0123456789abcdef!")),
            "ab".into(),
            1,
        )
        .unwrap();
        let view = serde_json::to_string(&ChannelView::of(&record)).unwrap();
        assert!(!view.contains("0123456789abcdef!"), "{view}");
        assert!(view.contains("\"state\":\"untried\""), "{view}");
        record.health.failing_since = Some(5);
        assert_eq!(ChannelView::of(&record).state, "failing");
    }

    #[test]
    fn the_email_says_what_happened() {
        let message = AlertMessage {
            event: AlertEvent::Opened,
            incident: Some(4),
            app: Some("blog".into()),
            title: "blog: its container stopped (exit code 137)".into(),
            body: "The engine restarts it.".into(),
            at: 1,
        };
        let email = build_email("mc@x.test", &["a@x.test".into()], &message).unwrap();
        let text = String::from_utf8(email.formatted()).unwrap();
        assert!(
            text.contains("Subject: [minicloud] Problem: blog: its container stopped"),
            "{text}"
        );
        assert!(text.contains("Incident #4"), "{text}");
    }
}
