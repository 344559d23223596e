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
    init_logging(config.log_format);
    crate::serve::run(config)?;
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

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MINICLOUD_LOG")
        .unwrap_or_else(|_| "info,pingora_core=warn,pingora_proxy=warn".into());
    // Colours only on a terminal: a log file or `docker logs` gets no escape sequences.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
