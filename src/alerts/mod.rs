//! Alerts: minicloud notices when something breaks, fixes what it can, and says so.
//!
//! It owns the watcher ([`Watcher`], a background task following the engine's event stream
//! for this instance's containers: no polling), incidents ([`incidents`]: one per thing that
//! went wrong, with its timeline, kept in the store) and the channels alerts go to
//! ([`channels`]: a signed webhook, e-mail over SMTP, ntfy, Slack, Discord, Telegram), with
//! their delivery and retries.
//!
//! It does not change apps itself: moving a route or recreating a container is the app
//! lifecycle's (`apps::Apps::follow_container`), under the app's lock like any operation. A
//! channel that cannot deliver is shown failing on the channel only; the incident, and the
//! thing it reports on, are not touched by it.

pub mod channels;
mod chat;
mod checks;
pub mod incidents;
mod outbox;
mod watch;

pub use channels::{
    add_channel, list_channels, remove_channel, test_channel, ChannelView, NewChannel,
    SIGNATURE_HEADER,
};
pub use checks::CheckSettings;
pub use incidents::list_incidents;
pub use watch::{WatchSettings, Watcher};

use crate::store::StoreError;

/// Errors of the `alerts` module.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// A channel could not deliver (a test message).
    #[error("the message could not be delivered: {0}")]
    Delivery(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
