//! The alerting records: where alerts go ([`ChannelRecord`]), what went wrong
//! ([`IncidentRecord`], with its timeline) and what a channel has not had yet
//! ([`PendingDelivery`], the outbox). The rules (when an incident opens, folds, resolves; how a
//! channel delivers and retries) are `alerts`'s; this file only keeps them.

use crate::model::name::AppName;
use crate::model::secret::Secret;

use super::table::{Keyed, Record};
use super::{Store, StoreError};

/// One place alerts are sent to, and how its deliveries have gone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelRecord {
    /// Short lowercase hex, made by minicloud.
    pub id: String,
    pub config: ChannelConfig,
    /// Unix seconds.
    pub created_at: i64,
    #[serde(default)]
    pub health: ChannelHealth,
}

/// A channel's kind and its settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChannelConfig {
    /// A JSON POST, signed with HMAC-SHA256 of the body under `secret`.
    Webhook { url: String, secret: Secret },
    /// E-mail over SMTP.
    Email {
        host: String,
        port: u16,
        security: SmtpSecurity,
        username: Option<String>,
        password: Option<Secret>,
        from: String,
        to: Vec<String>,
    },
    /// A topic on an ntfy server (`url` is the topic's URL), with an access token if the
    /// topic is protected.
    Ntfy { url: String, token: Option<Secret> },
    /// A Slack incoming webhook: its URL is what lets anyone post, so it is kept as a secret.
    Slack { url: Secret },
    /// A Discord channel webhook; its URL is a secret too.
    Discord { url: Secret },
    /// A Telegram chat, through a bot's `sendMessage` (at `api_url`: Telegram's, or a
    /// self-hosted Bot API server).
    Telegram {
        bot_token: Secret,
        chat_id: String,
        api_url: String,
    },
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// No TLS at all (a relay on the same machine or network).
    Plain,
    /// Plain connection upgraded with STARTTLS, which must succeed.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// How a channel's deliveries have gone: a failing channel shows here, and only here.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelHealth {
    /// Unix seconds of the last delivery that worked.
    pub last_ok: Option<i64>,
    /// Since when deliveries fail (unset once one works again).
    pub failing_since: Option<i64>,
    pub last_error: Option<String>,
}

/// Something that went wrong, from the first sign to its recovery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IncidentRecord {
    pub id: u64,
    /// What the incident is about; events with the same key fold into the one open incident
    /// (`app/blog/web`: [`web_incident_key`]).
    pub key: String,
    pub app: Option<AppName>,
    pub kind: IncidentKind,
    pub title: String,
    /// Unix seconds.
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
    /// The exit code the container last ended with, while this incident was open.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// When the last "still wrong" reminder went out (Unix seconds).
    #[serde(default)]
    pub reminded_at: Option<i64>,
    pub timeline: Vec<TimelineEntry>,
}

/// The key of incidents about an app's web container.
pub fn web_incident_key(app: &AppName) -> String {
    format!("app/{app}/web")
}

/// What kind of trouble an incident is; it may grow worse while open (exited → crash loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentKind {
    /// An app's container stopped without being asked to.
    ContainerExited,
    /// ... killed by the kernel for memory.
    OutOfMemory,
    /// ... and keeps failing after each restart.
    CrashLoop,
    /// An app's health path keeps failing while its container runs.
    Unhealthy,
    /// A shared service (MariaDB, RabbitMQ) does not answer minicloud's admin login.
    ServiceDown,
    /// A filesystem minicloud writes to is filling up.
    DiskFull,
    /// A certificate expires soon.
    CertificateExpiring,
    /// A certificate cannot be renewed.
    CertificateRenewal,
    /// An app's last deploy failed (by hand, webhook or rollback).
    DeployFailed,
    /// An app's last backup run failed.
    BackupFailed,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimelineEntry {
    /// Unix seconds.
    pub at: i64,
    pub text: String,
}

/// One alert, as every channel sends it (the webhook's JSON body is this, serialized).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertMessage {
    pub event: AlertEvent,
    pub incident: Option<u64>,
    pub app: Option<String>,
    /// One line a person understands.
    pub title: String,
    /// More lines: what happened, what minicloud did.
    pub body: String,
    /// Unix seconds.
    pub at: i64,
}

/// What an alert says about its incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertEvent {
    Opened,
    /// Still wrong, told again.
    Reminder,
    Recovered,
    /// A person's "send a test".
    Test,
}

impl AlertEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Reminder => "reminder",
            Self::Recovered => "recovered",
            Self::Test => "test",
        }
    }
}

/// A message one channel has not had yet. It is written before the first attempt and removed
/// when the channel has it or retrying ends, so retries outlive a restart of minicloud.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingDelivery {
    /// Made by [`PendingDelivery::new`]: the message's time first, so the table is oldest first.
    pub id: String,
    /// The channel's id.
    pub channel: String,
    pub message: AlertMessage,
    /// Attempts made so far.
    pub attempts: u32,
    /// Unix seconds: when the next attempt is due.
    pub next_at: i64,
}

impl PendingDelivery {
    /// A delivery of `message` to `channel`, due now.
    pub fn new(channel: &str, message: AlertMessage) -> Self {
        Self {
            id: format!(
                "{:012}-{channel}-{:08x}",
                message.at.max(0),
                rand::random::<u32>()
            ),
            channel: channel.to_owned(),
            next_at: message.at,
            message,
            attempts: 0,
        }
    }
}

/// Keyed by the channel's id.
impl Record for ChannelRecord {
    const NAME: &'static str = "alert_channels";
}
impl Keyed for ChannelRecord {
    fn key(&self) -> String {
        self.id.clone()
    }
}

/// Keyed by the id, 10 digits, so the table is in the order incidents opened.
impl Record for IncidentRecord {
    const NAME: &'static str = "incidents";
}
impl Keyed for IncidentRecord {
    fn key(&self) -> String {
        format!("{:010}", self.id)
    }
}

impl Record for PendingDelivery {
    const NAME: &'static str = "alert_outbox";
}
impl Keyed for PendingDelivery {
    fn key(&self) -> String {
        self.id.clone()
    }
}

/// Creates the alerting tables (called by `Store::open`).
pub(super) fn create_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    super::table::create::<ChannelRecord>(txn)?;
    super::table::create::<IncidentRecord>(txn)?;
    super::table::create::<PendingDelivery>(txn)
}

impl Store {
    pub fn channels(&self) -> Result<Vec<ChannelRecord>, StoreError> {
        self.list()
    }

    pub fn channel(&self, id: &str) -> Result<Option<ChannelRecord>, StoreError> {
        self.get(id)
    }

    pub fn put_channel(&self, channel: &ChannelRecord) -> Result<(), StoreError> {
        self.put(channel)
    }

    /// Returns whether the channel existed.
    pub fn delete_channel(&self, id: &str) -> Result<bool, StoreError> {
        self.delete::<ChannelRecord>(id)
    }

    /// Every incident, oldest first.
    pub fn incidents(&self) -> Result<Vec<IncidentRecord>, StoreError> {
        self.list()
    }

    /// The incidents about `key` (see [`IncidentRecord::key`]), newest first.
    pub fn incidents_about(&self, key: &str) -> Result<Vec<IncidentRecord>, StoreError> {
        let mut found: Vec<IncidentRecord> = self
            .incidents()?
            .into_iter()
            .filter(|i| i.key == key)
            .collect();
        found.reverse();
        Ok(found)
    }

    pub fn put_incident(&self, incident: &IncidentRecord) -> Result<(), StoreError> {
        self.put(incident)
    }

    /// Every message a channel has not had yet, oldest first.
    pub fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, StoreError> {
        self.list()
    }

    pub fn put_pending_delivery(&self, pending: &PendingDelivery) -> Result<(), StoreError> {
        self.put(pending)
    }

    /// Returns whether it was still there.
    pub fn delete_pending_delivery(&self, id: &str) -> Result<bool, StoreError> {
        self.delete::<PendingDelivery>(id)
    }
}
