//! Pingora's log lines (it logs through the `log` crate) into `tracing`, with the ones any
//! client can cause at will demoted from error to debug.
//!
//! Pingora 0.9.1 logs every TLS handshake that fails or is cut off at `error!`
//! (`services/listening.rs`, `apps/mod.rs`): a port scan, a client that gives up, a
//! connection over a cap refused by the edge's pre-TLS hook, or a flood of stalled
//! handshakes would each fill the log with errors nobody can act on. Everything else Pingora
//! logs keeps its level (an `Accept() failed` is the box running out of file descriptors).
//!
//! Two more are demoted though no client causes them, because nothing went wrong:
//! - a successor (`serve --upgrade`) logs "No incoming socket transfer" each second it waits
//!   for its predecessor's sockets, once in every hand-over that goes well. Giving up is still
//!   an error ("Giving up reading socket", "Bootstrap failed");
//! - under load, "failed to acquire reusable stream" (`connectors/mod.rs`): a pooled upstream
//!   connection taken while the pool's idle watcher still holds it. Pingora then opens a new
//!   connection, and the request never notices.

use log::{Level, Log, Metadata, Record};

/// Pingora's error lines that are not errors of the box, by target and the start of the
/// message: the ones a client causes, and two of Pingora's own that end well.
const NOT_ERRORS: &[(&str, &str)] = &[
    (
        "pingora_core::services::listening",
        "Downstream handshake error",
    ),
    (
        "pingora_core::services::listening",
        "Downstream handshake timeout",
    ),
    ("pingora_core::apps", "H2 handshake error"),
    // Not a client's, and both end well (see the module's doc).
    (
        "pingora_core::server::transfer_fd",
        "No incoming socket transfer",
    ),
    (
        "pingora_core::connectors",
        "failed to acquire reusable stream",
    ),
];

/// The `log` logger to install in place of `tracing_log::LogTracer` (see [`install`]).
struct PingoraLog {
    tracer: tracing_log::LogTracer,
}

impl Log for PingoraLog {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.tracer.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !is_not_an_error(record) {
            return self.tracer.log(record);
        }
        let demoted = Record::builder()
            .args(*record.args())
            .level(Level::Debug)
            .target(record.target())
            .module_path(record.module_path())
            .file(record.file())
            .line(record.line())
            .build();
        if self.tracer.enabled(demoted.metadata()) {
            self.tracer.log(&demoted);
        }
    }

    fn flush(&self) {}
}

/// Whether `record` is one of Pingora's error lines that are not errors of the box.
fn is_not_an_error(record: &Record) -> bool {
    if record.level() != Level::Error {
        return false;
    }
    let mut prefixes = NOT_ERRORS
        .iter()
        .filter(|(target, _)| *target == record.target())
        .map(|(_, prefix)| prefix)
        .peekable();
    // Formatted only for Pingora's few error lines of those targets.
    if prefixes.peek().is_none() {
        return false;
    }
    let message = record.args().to_string();
    prefixes.any(|prefix| message.starts_with(prefix))
}

/// Why the logger could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("a logger for the `log` crate is already installed")]
pub struct LoggerTaken;

/// Sends Pingora's (and any other `log` user's) lines to the `tracing` subscriber already set
/// as the global default, at most at its current maximum level. Call once, after setting it,
/// and instead of `tracing_log::LogTracer::init`.
pub fn install() -> Result<(), LoggerTaken> {
    let max = match tracing::level_filters::LevelFilter::current().into_level() {
        None => log::LevelFilter::Off,
        Some(tracing::Level::ERROR) => log::LevelFilter::Error,
        Some(tracing::Level::WARN) => log::LevelFilter::Warn,
        Some(tracing::Level::INFO) => log::LevelFilter::Info,
        Some(tracing::Level::DEBUG) => log::LevelFilter::Debug,
        Some(tracing::Level::TRACE) => log::LevelFilter::Trace,
    };
    log::set_boxed_logger(Box::new(PingoraLog {
        tracer: tracing_log::LogTracer::new(),
    }))
    .map_err(|_| LoggerTaken)?;
    log::set_max_level(max);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caused(target: &str, level: Level, message: &str) -> bool {
        is_not_an_error(
            &Record::builder()
                .target(target)
                .level(level)
                .args(format_args!("{message}"))
                .build(),
        )
    }

    #[test]
    fn failed_and_cut_off_handshakes_are_client_caused() {
        let listening = "pingora_core::services::listening";
        assert!(caused(
            listening,
            Level::Error,
            "Downstream handshake error from 192.0.2.1:4711: TLS handshake failure"
        ));
        assert!(caused(
            listening,
            Level::Error,
            "Downstream handshake timeout"
        ));
        assert!(caused(
            "pingora_core::apps",
            Level::Error,
            "H2 handshake error connection reset"
        ));
    }

    #[test]
    fn an_upgrade_waiting_for_its_sockets_is_not_an_error_but_giving_up_is() {
        let transfer = "pingora_core::server::transfer_fd";
        assert!(caused(
            transfer,
            Level::Error,
            "No incoming socket transfer, sleep 1s and try again"
        ));
        assert!(!caused(
            transfer,
            Level::Error,
            "Giving up reading socket from: /data/minicloud/upgrade.sock, error: EAGAIN"
        ));
    }

    #[test]
    fn a_pooled_connection_pingora_replaces_is_not_an_error() {
        assert!(caused(
            "pingora_core::connectors",
            Level::Error,
            "failed to acquire reusable stream"
        ));
    }

    #[test]
    fn what_the_box_must_hear_about_keeps_its_level() {
        let listening = "pingora_core::services::listening";
        assert!(!caused(
            listening,
            Level::Error,
            "Accept() failed Too many open files"
        ));
        // The same words from another module are not Pingora's handshake.
        assert!(!caused(
            "minicloud::edge",
            Level::Error,
            "Downstream handshake error"
        ));
        // Already below error: nothing to demote.
        assert!(!caused(
            listening,
            Level::Warn,
            "Downstream handshake timeout"
        ));
    }
}
