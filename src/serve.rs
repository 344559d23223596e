//! `minicloud serve`: opens the store, publishes what it holds to the edge, then runs the edge
//! and the control plane in one process until SIGTERM.

use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use minicloud_proxy::{
    BackgroundService, Edge, EdgeConfig, EdgeError, EdgeServer, ProxySettings, ShutdownWatch,
};

use crate::apps::{AppSettings, Apps};
use crate::auth::passwords::{self, AdminBootstrap};
use crate::auth::{self, Bootstrap};
use crate::config::Config;
use crate::ctx::Ctx;
use crate::model::{now, Actor};
use crate::store::{Owner, OwnerLock, Store, StoreError};
use crate::tasks::Tasks;
use crate::web::WebState;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Edge(#[from] EdgeError),
    #[error(transparent)]
    Certs(#[from] crate::certs::CertsError),
    #[error("cannot listen on {addr} ({what}): {source}{hint}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
        hint: &'static str,
    },
}

/// Runs minicloud until it is told to stop.
pub fn run(config: Config) -> Result<(), ServeError> {
    let state_path = config.state_path();
    // Held until the process ends: no `minicloud restore` meanwhile (see `store::owner`).
    let _owner = OwnerLock::take(&state_path, Owner::Serve)?;
    let store = Store::open(&state_path)?;
    match auth::ensure_bootstrap_token(&store, config.admin_token.as_ref(), now())? {
        Bootstrap::Generated(token) => {
            // Shown once, on the terminal only: the store keeps just its hash, and the log
            // must never carry a credential.
            eprintln!(
                "\nminicloud: created the admin API token (shown only this once, keep it safe):\n\n    {}\n\n\
                 Use it as MINICLOUD_TOKEN for the CLI, or set MINICLOUD_ADMIN_TOKEN to choose your own.\n",
                token.expose()
            );
        }
        Bootstrap::FromConfig | Bootstrap::Existing => {}
    }
    if let AdminBootstrap::Generated(password) =
        passwords::ensure_admin_user(&store, config.admin_password.as_ref(), now())?
    {
        // Like the token: on the terminal once, never in the log or the store.
        eprintln!(
            "\nminicloud: created the admin app's user 'admin' with this password (shown only this once):\n\n    {}\n\n\
             Sign in at https://{}/ ; set MINICLOUD_ADMIN_PASSWORD to choose your own, or run\n\
             'minicloud admin reset-password admin' with minicloud stopped.\n",
            password.expose(),
            config.admin_host()
        );
    }

    let http_addr = SocketAddr::new(config.listen, config.http_port);
    let https_addr = SocketAddr::new(config.listen, config.https_port);
    // Pingora binds later and only logs a failure; check now so a taken or privileged port
    // is a clear error before anything starts.
    probe_bind(http_addr, "HTTP")?;
    probe_bind(https_addr, "HTTPS")?;
    let api_listener = bind(config.api_listen, "control plane API")?;
    let api_addr = api_listener
        .local_addr()
        .map_err(|source| ServeError::Bind {
            addr: config.api_listen,
            what: "control plane API",
            source,
            hint: "",
        })?;

    let edge = Edge::new();
    let edge_config = EdgeConfig {
        http_addr,
        https_addr,
        threads: config.threads,
        shutdown_grace: config.shutdown_grace,
        limits: config.limits,
        upgrade_sock: config.upgrade_socket_path().display().to_string(),
        pid_file: config.pid_file_path().display().to_string(),
        proxy: ProxySettings {
            public_https_port: config.https_port,
            access_log: config.access_log,
            sni_bound: vec![config.admin_host().to_string()],
            ..ProxySettings::default()
        },
    };
    let app_settings = AppSettings {
        health_timeout: config.health_timeout,
        networks: config.app_networks.clone(),
        pull_timeout: config.pull_timeout,
        min_free_mb: config.min_free_mb,
    };
    let ctx = Ctx::new(config, store, edge.clone());
    ctx.publish_stored_state(api_addr)?;
    crate::certs::publish_stored(&ctx)?;
    let certs = crate::certs::Manager::new(ctx.clone())?;
    let apps = Apps::new(ctx.clone(), app_settings)?;

    let mut server = EdgeServer::new(edge, &edge_config)?;
    tracing::info!(
        http = %http_addr,
        https = %https_addr,
        api = %api_addr,
        admin = %format!("https://{}:{}/", ctx.config.admin_host(), ctx.config.https_port),
        routes = ctx.edge.snapshot().routes.len(),
        "minicloud starting"
    );
    server.add_background(
        "control plane",
        ControlPlane {
            state: WebState::new(ctx, apps),
            listener: Mutex::new(Some(api_listener)),
            certs: Mutex::new(certs),
        },
    );
    server.run();
    tracing::info!("minicloud stopped");
    Ok(())
}

fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, ServeError> {
    let bind_error = |source: std::io::Error| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => " (is another minicloud or web server running?)",
            std::io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE; or use ports like 8080/8443)"
            }
            _ => "",
        };
        ServeError::Bind {
            addr,
            what,
            source,
            hint,
        }
    };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    Ok(listener)
}

fn probe_bind(addr: SocketAddr, what: &'static str) -> Result<(), ServeError> {
    bind(addr, what).map(drop)
}

/// How long background tasks get to finish after the shutdown signal.
const TASKS_GRACE: Duration = Duration::from_secs(5);

/// The control plane as a Pingora background service: serves the API until shutdown.
struct ControlPlane {
    state: WebState,
    /// Bound before start so the edge's admin route is known; taken once by `start`.
    listener: Mutex<Option<TcpListener>>,
    /// The certificate manager (`None` when ACME is off); taken once by `start`.
    certs: Mutex<Option<crate::certs::Manager>>,
}

#[async_trait]
impl BackgroundService for ControlPlane {
    async fn start(&self, shutdown: ShutdownWatch) {
        let taken = self
            .listener
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(std_listener) = taken else {
            return;
        };
        let listener = match tokio::net::TcpListener::from_std(std_listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "control plane API listener unusable");
                return;
            }
        };
        let certs = self
            .certs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        run_control_plane(self.state.clone(), listener, certs, shutdown).await;
    }
}

/// The control plane proper: starts the background tasks (certificate manager, start-up
/// reconcile), serves the API on `listener` until `shutdown`, then stops the tasks. Public so
/// tests can run it in process on a port-0 listener.
pub async fn run_control_plane(
    state: WebState,
    listener: tokio::net::TcpListener,
    certs: Option<crate::certs::Manager>,
    mut shutdown: ShutdownWatch,
) {
    // Before anything answers: what a crash cut short is settled in the store first.
    match state.apps.settle_interrupted_changes() {
        Ok(0) => {}
        Ok(n) => tracing::info!(apps = n, "changes a restart interrupted were settled"),
        Err(e) => {
            tracing::error!(error = %e, "cannot settle the changes a restart interrupted; their apps show them as still pending")
        }
    }
    let mut tasks = Tasks::new(shutdown.clone());
    // First, so it is subscribed before any other task sends a fact.
    let recorder = crate::audit::Recorder::new(state.ctx.clone());
    tasks.spawn("audit log", |stop| recorder.run(stop));
    if let Some(manager) = certs {
        tasks.spawn("certificate manager", |stop| manager.run(stop));
    }
    let watcher = crate::alerts::Watcher::new(
        state.ctx.clone(),
        state.apps.clone(),
        crate::alerts::WatchSettings {
            remind_after: state.ctx.config.alert_remind_after,
            checks: crate::alerts::CheckSettings {
                interval: state.ctx.config.alert_check_interval,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    tasks.spawn("alert watcher", |stop| watcher.run(stop));
    let apps = state.apps.clone();
    tasks.spawn("usage sampler", |stop| apps.sample_usage(stop));
    if state.ctx.config.backup_schedule {
        let backups = state.backups.clone();
        tasks.spawn("backup schedule", |stop| backups.run_schedule(stop));
    }
    let metrics = state.metrics.clone();
    tasks.spawn("metrics sampler", |stop| metrics.run(stop));
    let apps = state.apps.clone();
    let backups = state.backups.clone();
    tasks.spawn("start-up reconcile", |_| async move {
        // Apps kept running while minicloud was down; find them and route to them again.
        let op = apps.bus().begin(Actor::System);
        match apps.reconcile(&op).await {
            Ok(done) => tracing::info!(
                served = done.served,
                created = done.created,
                removed = done.removed,
                failed = done.failed.len(),
                "apps reconciled"
            ),
            Err(e) => {
                tracing::error!(error = %e, "cannot reconcile apps; the edge keeps serving")
            }
        }
        match apps.narrow_database_grants().await {
            Ok(n) => tracing::debug!(accounts = n, "database grants narrowed"),
            Err(e) => tracing::warn!(error = %e, "cannot narrow the database grants"),
        }
        // After a whole-box restore: each app's data, then the app (the others serve already).
        let resumed = backups.resume_restores(&op).await;
        if !resumed.restored.is_empty() || !resumed.failed.is_empty() {
            tracing::info!(
                restored = resumed.restored.len(),
                failed = resumed.failed.len(),
                "whole-box restore: apps brought back"
            );
        }
    });
    tracing::info!(tasks = ?tasks.names(), "control plane started");
    let app = crate::web::router(state);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "control plane API stopped");
    }
    tasks.stop(TASKS_GRACE).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_refuses_to_start_while_a_restore_holds_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Sources::new()
            .flags([("data_dir", dir.path().to_str().unwrap())])
            .resolve()
            .unwrap();
        let state_path = config.state_path();
        let restoring = OwnerLock::take(&state_path, Owner::Restore).unwrap();
        let err = run(config).unwrap_err().to_string();
        assert!(
            err.contains("`minicloud restore` (pid") && err.contains("let it finish"),
            "{err}"
        );
        // Refused before the store was opened (the restore replaces it).
        assert!(!state_path.exists());
        drop(restoring);
    }
}
