//! minicloud-probe: the app minicloud's integration tests deploy.
//!
//! It owns nothing but its answers: what it was started with (env, version, hostname), what a
//! request looked like on arrival (headers), and a few behaviours the platform must cope with
//! (slow answers, streams, WebSockets, files on the storage volume, never becoming healthy).
//! It is built as a static glibc binary for a `FROM scratch` image, so it must never rely on
//! NSS (no `getaddrinfo` for anything it needs): it binds a parsed `SocketAddr`, and endpoints
//! that connect out must take IP addresses or resolve names with a Rust resolver.
//!
//! Modes, from the command line and environment:
//! - `probe` — HTTP server on `0.0.0.0:$PORT` (default 8080);
//! - `probe worker` — no listener: prints `$APP_NAME worker $PROBE_VERSION` and its env as JSON
//!   once, then sleeps until SIGTERM (a runner container's env is checked through its logs);
//! - `PROBE_UNHEALTHY=1` — never listens, logs a line every second saying so;
//! - `PROBE_EXIT=1` — prints an error line and exits 1 at once;
//! - `PROBE_IGNORE_SIGTERM=1` — handles SIGINT only, so as PID 1 it ignores SIGTERM (the app
//!   Docker's init exists for);
//! - `probe check-tcp IP:PORT...` — connects to each address, prints ok/FAIL, exits 0 if all
//!   answered (the test environment's check that containers reach host services).
#![forbid(unsafe_code)]

mod check;
mod config;
mod http;
mod routes;
mod server;

use std::process::ExitCode;
use std::time::Duration;

use config::Config;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = Config::from_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("check-tcp") {
        return if check::run(&args[1..]).await {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    let worker = args.first().map(String::as_str) == Some("worker");
    // What an app might print at start: any text (PROBE_SAY, control characters and all) and
    // the value of one variable (PROBE_LOG_ENV, e.g. its DATABASE_URL).
    if let Ok(say) = std::env::var("PROBE_SAY") {
        println!("{say}");
    }
    if let Ok(name) = std::env::var("PROBE_LOG_ENV") {
        println!("{name}={}", std::env::var(&name).unwrap_or_default());
    }

    if config.exit_at_once {
        eprintln!(
            "probe {} ({}): error: PROBE_EXIT=1, exiting with status 1",
            config.version, config.app
        );
        return ExitCode::from(1);
    }

    let outcome = if worker {
        run_worker(&config).await
    } else if config.unhealthy {
        run_unhealthy(&config).await
    } else {
        run_server(config).await
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("probe: error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run_server(config: Config) -> std::io::Result<()> {
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    println!(
        "probe {} ({}): listening on {addr}",
        config.version, config.app
    );
    let shutdown = shutdown_signal(config.ignore_sigterm);
    server::run(listener, config, shutdown).await;
    println!("probe: SIGTERM received, exiting");
    Ok(())
}

async fn run_worker(config: &Config) -> std::io::Result<()> {
    println!("{} worker {}", config.app, config.version);
    println!("{}", serde_json::Value::Object(routes::info::env_json()));
    shutdown_signal(config.ignore_sigterm).await;
    println!("probe worker: SIGTERM received, exiting");
    Ok(())
}

async fn run_unhealthy(config: &Config) -> std::io::Result<()> {
    let shutdown = shutdown_signal(config.ignore_sigterm);
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => println!(
                "probe {} ({}): PROBE_UNHEALTHY=1, not listening on port {} (never healthy)",
                config.version, config.app, config.port
            ),
        }
    }
    println!("probe: SIGTERM received, exiting");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. As PID 1 in a container a signal without a handler is
/// ignored, so the probe must handle both itself to stop promptly. With `ignore_term` no
/// SIGTERM handler is installed at all: SIGTERM then does what it does to such an app.
async fn shutdown_signal(ignore_term: bool) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut int) = signal(SignalKind::interrupt()) else {
        eprintln!("probe: cannot install signal handlers");
        return std::future::pending().await;
    };
    if ignore_term {
        int.recv().await;
        return;
    }
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        eprintln!("probe: cannot install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
