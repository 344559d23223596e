//! Incidents, not log lines: one record per thing that went wrong, opened once, noted as it
//! goes on (a crash loop is one incident with a timeline), resolved once. Opening and
//! resolving each make one [`AlertMessage`]; notes make none.
//!
//! [`Fold`] is the pure part: given an app container's dies, it says whether this is new
//! trouble, more of the same, or has just become a crash loop.

use std::collections::VecDeque;

use super::AlertError;
use crate::ctx::Ctx;
use crate::model::{now, AppName};
use crate::store::{AlertEvent, AlertMessage, IncidentKind, IncidentRecord, TimelineEntry};

/// Every incident, newest first.
pub fn list_incidents(ctx: &Ctx) -> Result<Vec<IncidentRecord>, AlertError> {
    let mut all = ctx.store.incidents()?;
    all.reverse();
    Ok(all)
}

/// The open incident about `key`, if any.
pub(super) fn find_open(ctx: &Ctx, key: &str) -> Result<Option<IncidentRecord>, AlertError> {
    Ok(ctx
        .store
        .incidents_about(key)?
        .into_iter()
        .find(|i| i.resolved_at.is_none()))
}

/// Opens an incident and returns it with the message that tells of it.
pub(super) fn open(
    ctx: &Ctx,
    key: &str,
    app: Option<AppName>,
    kind: IncidentKind,
    title: String,
    text: String,
    exit_code: Option<i64>,
) -> Result<(IncidentRecord, AlertMessage), AlertError> {
    let at = now();
    let id = ctx.store.incidents()?.last().map_or(1, |i| i.id + 1);
    let incident = IncidentRecord {
        id,
        key: key.to_owned(),
        app,
        kind,
        title,
        opened_at: at,
        resolved_at: None,
        exit_code,
        reminded_at: None,
        timeline: vec![TimelineEntry {
            at,
            text: text.clone(),
        }],
    };
    ctx.store.put_incident(&incident)?;
    let message = message(&incident, AlertEvent::Opened, text);
    Ok((incident, message))
}

/// Adds a line to an open incident's timeline; `worse` also changes what it is.
pub(super) fn note(
    ctx: &Ctx,
    incident: &mut IncidentRecord,
    text: String,
    worse: Option<(IncidentKind, String)>,
) -> Result<(), AlertError> {
    incident.timeline.push(TimelineEntry { at: now(), text });
    if let Some((kind, title)) = worse {
        incident.kind = kind;
        incident.title = title;
    }
    ctx.store.put_incident(incident)?;
    Ok(())
}

/// Resolves an incident and returns the "recovered" message.
pub(super) fn resolve(
    ctx: &Ctx,
    incident: &mut IncidentRecord,
    text: String,
) -> Result<AlertMessage, AlertError> {
    let at = now();
    incident.resolved_at = Some(at);
    incident.timeline.push(TimelineEntry {
        at,
        text: text.clone(),
    });
    ctx.store.put_incident(incident)?;
    Ok(message(incident, AlertEvent::Recovered, text))
}

/// The open incidents whose reminder is due at `at`: told (or last reminded) `every` ago.
pub(super) fn due_reminders(
    ctx: &Ctx,
    every: i64,
    at: i64,
) -> Result<(Vec<IncidentRecord>, Option<i64>), AlertError> {
    let mut due = Vec::new();
    let mut next: Option<i64> = None;
    for incident in ctx.store.incidents()? {
        if incident.resolved_at.is_some() {
            continue;
        }
        let when = incident.reminded_at.unwrap_or(incident.opened_at) + every;
        if when <= at {
            due.push(incident);
        } else {
            next = Some(next.map_or(when, |n| n.min(when)));
        }
    }
    Ok((due, next))
}

/// Records a reminder and returns its "still wrong" message: since when, and the latest word.
pub(super) fn remind(ctx: &Ctx, incident: &mut IncidentRecord) -> Result<AlertMessage, AlertError> {
    incident.reminded_at = Some(now());
    ctx.store.put_incident(incident)?;
    let latest = incident
        .timeline
        .last()
        .map(|e| e.text.clone())
        .unwrap_or_default();
    let text = format!(
        "Still wrong, since {}. Latest: {latest}",
        crate::model::format_time(incident.opened_at)
    );
    Ok(message(incident, AlertEvent::Reminder, text))
}

fn message(incident: &IncidentRecord, event: AlertEvent, text: String) -> AlertMessage {
    AlertMessage {
        event,
        incident: Some(incident.id),
        app: incident.app.as_ref().map(ToString::to_string),
        title: incident.title.clone(),
        body: text,
        at: now(),
    }
}

/// What one more die of a container means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fold {
    /// Nothing was open: new trouble.
    New,
    /// The open incident goes on.
    Again,
    /// The open incident has just become a crash loop: more than the allowed restarts in
    /// the window.
    NowCrashLooping,
}

/// The dies of one container role, over a sliding window.
#[derive(Debug, Default)]
pub(super) struct Dies {
    times: VecDeque<i64>,
}

/// When restarts become a crash loop.
#[derive(Debug, Clone, Copy)]
pub(super) struct CrashLoopRule {
    /// More restarts than this inside the window...
    pub restarts: usize,
    /// ... seconds, is a crash loop.
    pub window_secs: i64,
}

impl Dies {
    /// Records a die at `at` (unix seconds). `open` says whether an incident is open for it,
    /// `looping` whether that one already is a crash loop.
    pub fn record(&mut self, at: i64, open: bool, looping: bool, rule: CrashLoopRule) -> Fold {
        self.times.push_back(at);
        while self
            .times
            .front()
            .is_some_and(|t| *t <= at - rule.window_secs)
        {
            self.times.pop_front();
        }
        // The first die is not a restart; each one after it is.
        let restarts = self.times.len().saturating_sub(1);
        if !open {
            Fold::New
        } else if !looping && restarts > rule.restarts {
            Fold::NowCrashLooping
        } else {
            Fold::Again
        }
    }

    pub fn in_window(&self) -> usize {
        self.times.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: CrashLoopRule = CrashLoopRule {
        restarts: 3,
        window_secs: 300,
    };

    #[test]
    fn restarts_past_the_rule_inside_the_window_are_one_crash_loop() {
        let mut dies = Dies::default();
        assert_eq!(dies.record(0, false, false, RULE), Fold::New);
        for t in 1..=3 {
            assert_eq!(dies.record(t * 10, true, false, RULE), Fold::Again);
        }
        assert_eq!(dies.record(40, true, false, RULE), Fold::NowCrashLooping);
        // Once a crash loop, further dies only go on the timeline.
        assert_eq!(dies.record(50, true, true, RULE), Fold::Again);
        assert_eq!(dies.in_window(), 6);
    }

    #[test]
    fn restarts_spread_wider_than_the_window_are_not_a_crash_loop() {
        let mut dies = Dies::default();
        assert_eq!(dies.record(0, false, false, RULE), Fold::New);
        for t in 1..=10 {
            assert_eq!(dies.record(t * 200, true, false, RULE), Fold::Again);
        }
        assert!(dies.in_window() <= 2);
    }
}
