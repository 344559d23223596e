//! The audit log: who changed what, when, from where, and how it ended.
//!
//! Two sources fill it, so nothing that changes state goes unrecorded:
//! - every state-changing request to the admin host (API, pages, the CLI through the API, the
//!   registry webhook), with its caller, address and answer: the web layer calls [`record`]
//!   once per request, after its handler ran;
//! - the facts on the event bus ([`Recorder`]): what operations finished doing, whoever
//!   started them, minicloud itself included (start-up reconcile, schedules, the watcher).
//!
//! Sign-ins (good and failed) and the server-side resets are recorded by their code through
//! [`record`]. Entries older than the configured retention are dropped hourly.

use minicloud_proxy::ShutdownWatch;
use tokio::sync::broadcast;

use crate::bus::{Event, EventKind};
use crate::ctx::Ctx;
use crate::model::{now, Actor};
use crate::store::{AuditRecord, Store};

pub use crate::store::AuditFilter;

/// How often old entries are dropped.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Writes one entry. A store that cannot write loses the entry, never the action: the log
/// line says so (and the store's health already reports why).
pub fn record(
    store: &Store,
    actor: Actor,
    ip: Option<String>,
    what: impl Into<String>,
    ok: bool,
    outcome: impl Into<String>,
) {
    let entry = AuditRecord {
        at: now(),
        actor,
        ip,
        what: what.into(),
        ok,
        outcome: outcome.into(),
    };
    if let Err(e) = store.add_audit(&entry) {
        tracing::error!(error = %e, what = %entry.what, "cannot write the audit log");
    }
}

/// A fact as an entry's `what`, whether it went well, and its outcome; `None` for progress
/// and for facts that only tell subscribers to look again.
pub fn describe(event: &Event) -> Option<(String, bool, String)> {
    let op = event.op;
    let done = |what: String| Some((format!("{what} ({op})"), true, "done".to_owned()));
    match &event.kind {
        EventKind::Deployed { app, revision } => {
            done(format!("deployed {app} revision {revision}"))
        }
        EventKind::Unchanged { app, revision } => {
            done(format!("deploy of {app}: revision {revision} unchanged"))
        }
        EventKind::Failed { app, reason } => Some((
            format!("deploy of {app} ({op})"),
            false,
            format!("failed: {reason}"),
        )),
        EventKind::Stopped { app } => done(format!("stopped {app}")),
        EventKind::Removed { app } => done(format!("removed {app}")),
        EventKind::BackedUp { app, backup } => done(format!("backed up {app} as {backup}")),
        EventKind::BackupFailed {
            app,
            backup,
            reason,
        } => Some((
            format!("backup {backup} of {app} ({op})"),
            false,
            format!("failed: {reason}"),
        )),
        EventKind::Restored { app, backup } => done(format!("restored {app} from {backup}")),
        EventKind::Step { .. }
        | EventKind::Pull { .. }
        | EventKind::BackupProgress { .. }
        | EventKind::RoutesChanged
        | EventKind::RenewalRequested { .. } => None,
    }
}

/// The most entries one read returns, and the default.
pub const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 200;

/// What a reader asks for, as the page's filter form and `GET /api/audit` send it; every
/// field may be empty.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    /// A user, token or app name, or `system`.
    pub actor: String,
    /// A piece of what was done (`deploy`, `/api/tokens`, an app's name).
    pub what: String,
    /// `true`: only what failed or was refused.
    pub failed: String,
    /// Only the last this many days.
    pub days: String,
    /// At most this many entries (up to [`MAX_LIMIT`]).
    pub limit: String,
}

impl AuditQuery {
    /// The store's filter and the limit; an error says which field is wrong and how.
    pub fn filter(&self, now: i64) -> Result<(AuditFilter, usize), String> {
        let given = |v: &str| Some(v.trim()).filter(|v| !v.is_empty()).map(str::to_owned);
        let days = given(&self.days)
            .map(|d| {
                d.parse::<u32>()
                    .map_err(|_| format!("days must be a whole number, not {d:?}"))
            })
            .transpose()?;
        let limit = given(&self.limit)
            .map(|l| match l.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(format!("limit must be a number from 1 to {MAX_LIMIT}")),
            })
            .transpose()?
            .unwrap_or(DEFAULT_LIMIT);
        Ok((
            AuditFilter {
                actor: given(&self.actor),
                what: given(&self.what),
                failed_only: matches!(self.failed.trim(), "true" | "on" | "1" | "yes"),
                since: days.map(|d| now - i64::from(d) * 86_400),
            },
            limit,
        ))
    }
}

/// The bus subscriber that writes facts to the log, and drops entries past their time.
pub struct Recorder {
    ctx: Ctx,
    events: broadcast::Receiver<Event>,
}

impl Recorder {
    /// Subscribes now, so nothing sent after this is missed.
    pub fn new(ctx: Ctx) -> Self {
        let events = ctx.bus.subscribe();
        Self { ctx, events }
    }

    pub async fn run(mut self, mut shutdown: ShutdownWatch) {
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = prune.tick() => self.prune(),
                received = self.events.recv() => match received {
                    Ok(event) => self.write(&event),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the audit log fell behind the event bus");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    fn write(&self, event: &Event) {
        if let Some((what, ok, outcome)) = describe(event) {
            let store = &self.ctx.store;
            record(store, event.actor.clone(), None, what, ok, outcome);
        }
    }

    fn prune(&self) {
        let days = i64::from(self.ctx.config.audit_retention_days);
        match self.ctx.store.prune_audit(now() - days * 86_400) {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, days, "old audit entries dropped"),
            Err(e) => tracing::warn!(error = %e, "cannot drop old audit entries"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppName, OpId};

    #[test]
    fn a_query_becomes_a_filter_or_says_what_is_wrong() {
        let query = AuditQuery {
            actor: " ann ".into(),
            failed: "on".into(),
            days: "2".into(),
            ..AuditQuery::default()
        };
        let (filter, limit) = query.filter(1_000_000).unwrap();
        assert_eq!(filter.actor.as_deref(), Some("ann"));
        assert!(filter.failed_only);
        assert_eq!(filter.since, Some(1_000_000 - 2 * 86_400));
        assert_eq!(filter.what, None);
        assert_eq!(limit, DEFAULT_LIMIT);
        let bad = AuditQuery {
            limit: "0".into(),
            ..AuditQuery::default()
        };
        assert!(bad.filter(0).unwrap_err().contains("limit"));
    }

    #[test]
    fn facts_are_described_and_progress_is_not() {
        let app = AppName::try_new("blog").unwrap();
        let event = |kind| Event {
            op: OpId(7),
            actor: Actor::System,
            kind,
        };
        let (what, ok, outcome) = describe(&event(EventKind::Failed {
            app: app.clone(),
            reason: "no port".into(),
        }))
        .unwrap();
        assert_eq!(what, "deploy of blog (op-7)");
        assert!(!ok);
        assert_eq!(outcome, "failed: no port");
        let (what, ok, _) = describe(&event(EventKind::Deployed {
            app: app.clone(),
            revision: 3,
        }))
        .unwrap();
        assert_eq!(what, "deployed blog revision 3 (op-7)");
        assert!(ok);
        assert!(describe(&event(EventKind::Step {
            app,
            message: "pulling".into()
        }))
        .is_none());
        assert!(describe(&event(EventKind::RoutesChanged)).is_none());
    }
}
