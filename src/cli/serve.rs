//! `minicloud serve`'s start-up: the settings from their three sources, logging, then
//! [`crate::serve::run`].

use super::args::ServeArgs;
use crate::config::{Config, ConfigError, LogFormat, Sources};
use crate::serve::ServeError;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Reads the settings (file < `MINICLOUD_*` environment < flags), starts logging and runs
/// minicloud until it is stopped.
pub fn run(args: ServeArgs) -> Result<(), StartError> {
    let config = config(&args)?;
    // Held until minicloud stops: dropping it writes out the lines still queued.
    let _log_writer = init_logging(config.log_format);
    crate::serve::run(config, args.upgrade)?;
    Ok(())
}

fn config(args: &ServeArgs) -> Result<Config, ConfigError> {
    settings(args.config.as_deref(), args.flags())
}

/// The settings from a config file, the `MINICLOUD_*` environment and `flags`, in that order.
pub(super) fn settings<'a>(
    file: Option<&std::path::Path>,
    flags: impl IntoIterator<Item = (&'static str, &'a str)>,
) -> Result<Config, ConfigError> {
    let mut sources = Sources::new();
    if let Some(path) = file {
        sources = sources.read_file(path)?;
    }
    sources.process_env().flags(flags).resolve()
}

/// Most bytes of log lines gathered before one write to stdout, when lines come faster than
/// they are written (like nginx's `access_log ... buffer=64k`).
const LOG_BUFFER_BYTES: usize = 64 * 1024;

/// Starts the log on stdout. Lines (the access log's among them, one per request) are
/// formatted where they happen and written by a thread of their own: a request never waits on
/// a write to stdout. That thread writes whatever has queued up in one go, and as soon as the
/// queue is empty, so a quiet log is not held back. Returns the guard that flushes the queue
/// when it is dropped.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MINICLOUD_LOG")
        .unwrap_or_else(|_| "info,pingora_core=warn,pingora_proxy=warn".into());
    // Colours only on a terminal: a log file or `docker logs` gets no escape sequences.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Not lossy: a log that drops lines when stdout is slow would hide what happened (the
    // access log is an audit trail); when the queue is full, requests wait as nginx's do.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log writer")
        .finish(std::io::BufWriter::with_capacity(
            LOG_BUFFER_BYTES,
            std::io::stdout(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(writer);
    // Set without `init`, which would install `tracing_log::LogTracer` for Pingora's `log`
    // lines: `pingora_log` installs it, demoting the errors any client can cause.
    let set = match format {
        LogFormat::Text => tracing::subscriber::set_global_default(builder.finish()),
        LogFormat::Json => tracing::subscriber::set_global_default(builder.json().finish()),
    };
    if let Err(e) = set {
        eprintln!("minicloud: the log is already set up: {e}");
    }
    if let Err(e) = minicloud_proxy::pingora_log::install() {
        tracing::warn!(error = %e, "Pingora's log lines will not reach the log");
    }
    guard
}
