//! The event bus: what happens in the control plane, as typed events on one broadcast channel.
//!
//! Every event belongs to one operation ([`Op`]: its [`OpId`] and the [`Actor`] who started it),
//! so a stream can follow exactly one operation and a log line says who did what. Two kinds
//! travel on it: *progress* (deploy steps, pull bytes), which a slow listener may miss, and
//! *facts* (deployed, failed, stopped, routes changed), which subscribers such as the
//! certificate manager act on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::model::{Actor, AppName, OpId};

/// One operation as it runs: the id its events carry and who asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub id: OpId,
    pub actor: Actor,
}

/// One thing that happened, in the operation that made it happen.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub op: OpId,
    #[serde(skip)]
    pub actor: Actor,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. Serialized with an `event` tag in kebab case (`step`, `pull`, `deployed`…).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    // Progress.
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
    // Facts.
    /// A deploy finished and this revision serves.
    Deployed { app: AppName, revision: u64 },
    /// A deploy found nothing new to run.
    Unchanged { app: AppName, revision: u64 },
    /// A deploy failed; what served before still serves.
    Failed { app: AppName, reason: String },
    /// An app stopped serving on request.
    Stopped { app: AppName },
    /// An app and its containers are gone.
    Removed { app: AppName },
    /// The hosts the edge serves changed: a certificate may be needed.
    RoutesChanged,
    /// A person asked for a new certificate for this host now.
    RenewalRequested { host: String },
    /// Bytes of one part of a backup read so far.
    BackupProgress {
        app: AppName,
        part: String,
        bytes_done: u64,
    },
    /// A backup run's every part was confirmed by the repository.
    BackedUp { app: AppName, backup: String },
    /// A backup run failed; nothing of it counts.
    BackupFailed {
        app: AppName,
        backup: String,
        reason: String,
    },
    /// An app's data was restored from a backup.
    Restored { app: AppName, backup: String },
}

impl EventKind {
    /// Progress may be dropped by a listener that falls behind; facts are worth logging.
    pub fn is_progress(&self) -> bool {
        matches!(
            self,
            Self::Step { .. } | Self::Pull { .. } | Self::BackupProgress { .. }
        )
    }
}

/// The sending side, and where operation ids come from. Cheap to clone; nobody listening is
/// fine (events are then dropped).
#[derive(Clone)]
pub struct Bus {
    sender: broadcast::Sender<Event>,
    next_op: Arc<AtomicU64>,
}

impl Default for Bus {
    fn default() -> Self {
        // Pull progress is frequent; a listener that falls this far behind skips some.
        let (sender, _) = broadcast::channel(1024);
        Self {
            sender,
            next_op: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl Bus {
    /// A new operation started by `actor`.
    pub fn begin(&self, actor: Actor) -> Op {
        Op {
            id: OpId(self.next_op.fetch_add(1, Ordering::Relaxed)),
            actor,
        }
    }

    pub fn send(&self, op: &Op, kind: EventKind) {
        if !kind.is_progress() {
            tracing::info!(op = %op.id, actor = %op.actor, event = ?kind, "event");
        }
        let _ = self.sender.send(Event {
            op: op.id,
            actor: op.actor.clone(),
            kind,
        });
    }

    /// A deploy step, in words.
    pub fn step(&self, op: &Op, app: &AppName, message: impl Into<String>) {
        self.send(
            op,
            EventKind::Step {
                app: app.clone(),
                message: message.into(),
            },
        );
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_get_distinct_ids_and_events_carry_them() {
        let bus = Bus::default();
        let mut rx = bus.subscribe();
        let a = bus.begin(Actor::System);
        let b = bus.begin(Actor::Token("ci".into()));
        assert_ne!(a.id, b.id);
        bus.send(&b, EventKind::RoutesChanged);
        let event = rx.try_recv().unwrap();
        assert_eq!(event.op, b.id);
        assert_eq!(event.actor, Actor::Token("ci".into()));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "routes-changed");
        assert_eq!(json["op"], b.id.0);
    }
}
