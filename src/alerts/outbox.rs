//! The outbox: every alert waits here, one entry per channel, until that channel has it.
//!
//! An entry ([`PendingDelivery`]) is written to the store before the first attempt and removed
//! when the channel has the message, when retrying ends (the channel then shows as failing),
//! or when the channel is removed. Between attempts the wait doubles, so a channel that is down
//! for an hour is not hammered, and a restart of minicloud resumes every entry at the attempt
//! it had reached: a message told while the receiver was down arrives once it is back, even
//! across a restart, and is never sent twice by a resume after it was delivered.

use std::time::Duration;

use tokio::task::JoinSet;

use super::channels;
use crate::ctx::Ctx;
use crate::model::now;
use crate::store::{AlertMessage, PendingDelivery};

/// Retries: the wait after the first failed attempt, its cap, and how many attempts in all
/// (about an hour and a half of trying, then the channel is left failing).
const FIRST_WAIT: Duration = Duration::from_secs(2);
const MAX_WAIT: Duration = Duration::from_secs(300);
const ATTEMPTS: u32 = 20;

/// The deliveries in flight, one task per message and channel.
pub(super) struct Outbox {
    ctx: Ctx,
    tasks: JoinSet<()>,
}

impl Outbox {
    pub(super) fn new(ctx: Ctx) -> Self {
        Self {
            ctx,
            tasks: JoinSet::new(),
        }
    }

    /// Picks up the deliveries a previous run of minicloud left unfinished.
    pub(super) fn resume(&mut self) {
        match self.ctx.store.pending_deliveries() {
            Ok(pending) => {
                if !pending.is_empty() {
                    tracing::info!(
                        deliveries = pending.len(),
                        "alerts: resuming undelivered messages"
                    );
                }
                for entry in pending {
                    self.spawn(entry);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the alerts not yet delivered"),
        }
    }

    /// Queues `message` for every channel. Returns how many channels it went to.
    pub(super) fn send(&mut self, message: &AlertMessage) -> usize {
        let channels = match self.ctx.store.channels() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the alert channels");
                return 0;
            }
        };
        for channel in &channels {
            let entry = PendingDelivery::new(&channel.id, message.clone());
            if let Err(e) = self.ctx.store.put_pending_delivery(&entry) {
                // Still tried now; only a restart before it is delivered would lose it.
                tracing::warn!(error = %e, channel = %channel.id, "cannot keep an alert in the outbox");
            }
            self.spawn(entry);
        }
        channels.len()
    }

    /// Forgets the tasks that have finished.
    pub(super) fn reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    fn spawn(&mut self, entry: PendingDelivery) {
        self.tasks
            .spawn(deliver_until_done(self.ctx.clone(), entry));
    }
}

/// Tries `entry` until its channel has it, retrying ends, or the channel is gone.
async fn deliver_until_done(ctx: Ctx, mut entry: PendingDelivery) {
    let due_in = entry.next_at - now();
    if due_in > 0 {
        tokio::time::sleep(Duration::from_secs(due_in.unsigned_abs())).await;
    }
    loop {
        // Read each time: a channel edited or removed meanwhile is honoured.
        let channel = match ctx.store.channel(&entry.channel) {
            Ok(Some(channel)) => channel,
            Ok(None) => return forget(&ctx, &entry),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read an alert channel; will retry");
                tokio::time::sleep(MAX_WAIT).await;
                continue;
            }
        };
        let outcome = channels::deliver(&channel.config, &entry.message).await;
        entry.attempts += 1;
        let delivered = outcome.is_ok();
        if let Err(reason) = &outcome {
            tracing::warn!(channel = %entry.channel, attempt = entry.attempts, %reason, "alert not delivered");
        }
        match channels::record_outcome(&ctx, &entry.channel, outcome) {
            // Removed meanwhile: nobody wants it any more.
            Ok(None) => return forget(&ctx, &entry),
            Ok(Some(_)) => {}
            Err(e) => tracing::warn!(error = %e, "cannot record a channel's health"),
        }
        if delivered {
            return forget(&ctx, &entry);
        }
        if entry.attempts >= ATTEMPTS {
            tracing::error!(channel = %entry.channel, attempts = entry.attempts, title = %entry.message.title, "alert given up: the channel stays failing");
            return forget(&ctx, &entry);
        }
        let wait = jitter(retry_wait(entry.attempts));
        entry.next_at = now() + wait.as_secs_f64().ceil() as i64;
        if let Err(e) = ctx.store.put_pending_delivery(&entry) {
            tracing::warn!(error = %e, "cannot record an alert's next attempt");
        }
        tokio::time::sleep(wait).await;
    }
}

fn forget(ctx: &Ctx, entry: &PendingDelivery) {
    if let Err(e) = ctx.store.delete_pending_delivery(&entry.id) {
        // A restart would send it once more: better than never.
        tracing::warn!(error = %e, "cannot remove a finished alert from the outbox");
    }
}

/// The wait after `failed` attempts: 2 s, doubling, at most 5 minutes.
fn retry_wait(failed: u32) -> Duration {
    FIRST_WAIT
        .saturating_mul(1u32 << failed.saturating_sub(1).min(16))
        .min(MAX_WAIT)
}

/// Up to a quarter more, so channels retried together spread out.
fn jitter(wait: Duration) -> Duration {
    let quarter = wait.as_millis() as u64 / 4;
    wait + Duration::from_millis(rand::random_range(0..=quarter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_two_seconds_up_to_five_minutes() {
        let waits: Vec<u64> = (1..=10).map(|n| retry_wait(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(retry_wait(u32::MAX), MAX_WAIT);
        let total: u64 = (1..ATTEMPTS).map(|n| retry_wait(n).as_secs()).sum();
        assert!(
            (3_600..3 * 3_600).contains(&total),
            "a channel is tried for between one and three hours: {total} s"
        );
    }

    #[test]
    fn jitter_adds_at_most_a_quarter() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(8));
            assert!(
                j >= Duration::from_secs(8) && j <= Duration::from_secs(10),
                "{j:?}"
            );
        }
    }
}
