//! A web container's last lines, kept as the app's [`RemovedLog`] just before minicloud
//! removes it: the engine forgets a removed container's log, and "why did the old revision
//! crash?" is asked after the deploy that replaced it, or after the container was recreated.
//! Best effort on the way out: a log that cannot be read or kept is logged and never holds up
//! the removal.

use super::error::AppError;
use super::Apps;
use crate::docker::{Docker, Role};
use crate::model::{format_time, now, AppName};
use crate::store::{RemovedLog, Store, REMOVED_LOG_BYTES, REMOVED_LOG_LINES};

impl Apps {
    /// The app's most recently removed web container and its last lines, if minicloud has
    /// removed one since the app was added.
    pub fn removed_log(&self, name: &AppName) -> Result<Option<RemovedLog>, AppError> {
        self.app_record(name)?;
        Ok(self.ctx.store.removed_log(name)?)
    }
}

/// One line saying which container it was, when and why it went, and how it had ended.
pub fn removed_log_heading(log: &RemovedLog) -> String {
    let ended = match log.exit_code {
        Some(code) => format!("; it last exited with code {code}"),
        None => String::new(),
    };
    format!(
        "revision {} ({}), removed {}: {}{ended}",
        log.revision,
        log.container,
        format_time(log.removed_at),
        log.why
    )
}

/// Keeps the last lines of container `id` as its app's removed log, when it is a web
/// container of an app that still exists. Call before removing it.
pub(super) async fn keep_removed_log(store: &Store, docker: &Docker, id: &str, why: &str) {
    let info = match docker.inspect(id).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(container = id, error = %e, "no log kept of a container being removed");
            return;
        }
    };
    let Some(labels) = info.managed.as_ref().filter(|l| l.role == Role::Web) else {
        return;
    };
    // An app being removed, or one this store never had: nobody to show it to.
    if !matches!(store.app(&labels.app), Ok(Some(_))) {
        return;
    }
    let text = match docker.last_log_lines(id, REMOVED_LOG_LINES).await {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(container = %info.name, error = %e, "cannot read the log of a container being removed");
            return;
        }
    };
    let log = RemovedLog {
        app: labels.app.clone(),
        revision: labels.rev,
        container: info.name.clone(),
        removed_at: now(),
        exit_code: info.exit_code,
        why: why.to_owned(),
        lines: newest_within(text.lines().map(str::to_owned).collect(), REMOVED_LOG_BYTES),
    };
    if let Err(e) = store.put_removed_log(&log) {
        tracing::warn!(container = %info.name, error = %e, "cannot keep the log of a container being removed");
    }
}

/// The newest of `lines` that fit in `budget` bytes, in their order.
fn newest_within(mut lines: Vec<String>, budget: usize) -> Vec<String> {
    let mut used = 0;
    let keep = lines
        .iter()
        .rev()
        .take_while(|l| {
            used += l.len() + 1;
            used <= budget
        })
        .count();
    lines.drain(..lines.len() - keep);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_lines_that_fit_are_kept_in_order() {
        let lines: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
        assert_eq!(newest_within(lines.clone(), 1_000), lines);
        // Each line is 6 bytes and a newline: 3 fit in 21.
        assert_eq!(
            newest_within(lines.clone(), 21),
            ["line 7", "line 8", "line 9"]
        );
        assert_eq!(newest_within(lines.clone(), 20), ["line 8", "line 9"]);
        assert!(newest_within(vec!["x".repeat(100)], 50).is_empty());
    }
}
