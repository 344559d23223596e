//! What happens to apps, as events: deploy steps, pull progress, outcomes. Sent on one
//! broadcast channel that the API streams (server-sent events) and the log records.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::model::name::AppName;

/// One thing that happened to an app.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum AppEvent {
    /// A step of a deploy, in words.
    Step { app: AppName, message: String },
    /// Image pull progress, summed over layers.
    Pull {
        app: AppName,
        layers_done: usize,
        layers_total: usize,
        bytes_done: u64,
        bytes_total: u64,
    },
    /// A deploy finished and this revision serves.
    Deployed { app: AppName, revision: u64 },
    /// A deploy found nothing new to run.
    Unchanged { app: AppName, revision: u64 },
    /// A deploy failed; what served before still serves.
    Failed { app: AppName, reason: String },
}

impl AppEvent {
    pub fn app(&self) -> &AppName {
        match self {
            Self::Step { app, .. }
            | Self::Pull { app, .. }
            | Self::Deployed { app, .. }
            | Self::Unchanged { app, .. }
            | Self::Failed { app, .. } => app,
        }
    }

    /// Whether this ends a deploy.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Deployed { .. } | Self::Unchanged { .. } | Self::Failed { .. }
        )
    }
}

/// The sending side; cheap to clone. Nobody listening is fine: events are then dropped.
#[derive(Clone)]
pub struct Events {
    sender: broadcast::Sender<AppEvent>,
}

impl Default for Events {
    fn default() -> Self {
        // Pull progress is frequent; a slow listener that falls this far behind skips some.
        let (sender, _) = broadcast::channel(1024);
        Self { sender }
    }
}

impl Events {
    pub fn send(&self, event: AppEvent) {
        if !matches!(event, AppEvent::Pull { .. }) {
            tracing::info!(app = %event.app(), event = ?event, "app event");
        }
        let _ = self.sender.send(event);
    }

    pub fn step(&self, app: &AppName, message: impl Into<String>) {
        self.send(AppEvent::Step {
            app: app.clone(),
            message: message.into(),
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<AppEvent> {
        self.sender.subscribe()
    }
}
