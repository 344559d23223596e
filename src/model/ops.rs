//! Who does what: the actor behind an operation, the operation itself, what triggered a
//! deploy, and the id that ties an operation's events together.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::name::AppName;

/// Who started an operation. Recorded with its events (and, later, in the audit log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Actor {
    /// A caller holding an API token, by the token's name.
    Token(String),
    /// A person signed in to the admin app.
    User(String),
    /// A registry's webhook for this app.
    Webhook(AppName),
    /// minicloud itself: start-up reconcile, renewals, schedules.
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(name) => write!(f, "token {name}"),
            Self::User(name) => write!(f, "user {name}"),
            Self::Webhook(app) => write!(f, "the webhook of {app}"),
            Self::System => f.write_str("minicloud"),
        }
    }
}

/// What runs on an app while it holds the app's lock. Its `Display` completes "busy with …".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Create,
    Deploy,
    Rollback,
    Restart,
    Stop,
    Start,
    EnvChange,
    DomainChange,
    Remove,
    RotateCredentials,
    RotateWebhook,
    ServiceChange,
    Reconcile,
    Restore,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "the first deploy",
            Self::Deploy => "a deploy",
            Self::Rollback => "a rollback",
            Self::Restart => "a restart",
            Self::Stop => "a stop",
            Self::Start => "a start",
            Self::EnvChange => "an environment change",
            Self::DomainChange => "a domain change",
            Self::Remove => "a removal",
            Self::RotateCredentials => "a credential rotation",
            Self::RotateWebhook => "a webhook secret rotation",
            Self::ServiceChange => "attaching or detaching a service",
            Self::Reconcile => "start-up reconcile",
            Self::Restore => "a restore from a backup",
        })
    }
}

/// Why a revision was deployed, as its history shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The app's first deploy.
    Create,
    /// A deploy asked for through the API or CLI.
    Api,
    /// A registry's webhook.
    Webhook,
    /// A rollback to an earlier revision's image.
    Rollback {
        to: u64,
    },
    Restart,
    Start,
    EnvChange,
    CredentialRotation,
    /// A service attached or detached by the admin.
    ServiceChange,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create => f.write_str("create"),
            Self::Api => f.write_str("api"),
            Self::Webhook => f.write_str("webhook"),
            Self::Rollback { to } => write!(f, "rollback to revision {to}"),
            Self::Restart => f.write_str("restart"),
            Self::Start => f.write_str("start"),
            Self::EnvChange => f.write_str("environment change"),
            Self::CredentialRotation => f.write_str("credential rotation"),
            Self::ServiceChange => f.write_str("service change"),
        }
    }
}

/// One operation's id: every event it sends carries it, so a stream can follow exactly one
/// operation. Allocated by the event bus, unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpId(pub u64);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op-{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_read_as_the_history_shows_them() {
        assert_eq!(
            Trigger::Rollback { to: 3 }.to_string(),
            "rollback to revision 3"
        );
        assert_eq!(Trigger::EnvChange.to_string(), "environment change");
    }

    #[test]
    fn operations_complete_a_busy_sentence() {
        assert_eq!(
            format!("busy with {}", Operation::Create),
            "busy with the first deploy"
        );
    }

    #[test]
    fn actors_serialize_with_their_kind() {
        let json = serde_json::to_string(&Actor::Token("ci".into())).unwrap();
        assert_eq!(json, r#"{"kind":"token","name":"ci"}"#);
        assert_eq!(
            serde_json::to_string(&Actor::System).unwrap(),
            r#"{"kind":"system"}"#
        );
    }
}
