//! Everything the probe reads from its environment, read once at start.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub app: String,
    pub version: String,
    /// `PROBE_UNHEALTHY=1`: never listen (a deploy of it must fail its health check).
    pub unhealthy: bool,
    /// `PROBE_EXIT=1`: exit 1 at start (a deploy of it must fail fast).
    pub exit_at_once: bool,
    /// `PROBE_IGNORE_SIGTERM=1`: install no SIGTERM handler, like many small apps. As PID 1
    /// such a process ignores SIGTERM and is killed only at the stop timeout; behind an init
    /// process SIGTERM's default action ends it.
    pub ignore_sigterm: bool,
    /// Where `/file/{name}` lives: the storage volume, `/data`; `PROBE_DATA_DIR` overrides it
    /// for running the probe outside a container.
    pub data_dir: PathBuf,
}

impl Config {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let port = match var("PORT") {
            None => 8080,
            Some(p) => p.parse().unwrap_or_else(|_| {
                eprintln!("probe: PORT={p:?} is not a port number, using 8080");
                8080
            }),
        };
        Config {
            port,
            app: var("APP_NAME").unwrap_or_else(|| "probe".to_owned()),
            version: var("PROBE_VERSION").unwrap_or_else(|| "dev".to_owned()),
            unhealthy: var("PROBE_UNHEALTHY").as_deref() == Some("1"),
            exit_at_once: var("PROBE_EXIT").as_deref() == Some("1"),
            ignore_sigterm: var("PROBE_IGNORE_SIGTERM").as_deref() == Some("1"),
            data_dir: var("PROBE_DATA_DIR").map_or_else(|| PathBuf::from("/data"), PathBuf::from),
        }
    }
}
