//! `minicloud serve`: opens the store, publishes what it holds to the edge, then runs the edge
//! and the control plane in one process until SIGTERM, or until SIGQUIT hands the listening
//! sockets to a successor (`serve --upgrade`, started beside it on the same data dir).
//!
//! The hand-over, in order: the successor receives the sockets before it touches the data dir
//! (both now accept from the same queues, so none is refused); the predecessor's control plane
//! stops at once and lets go of the store and the data dir; the successor takes them, binds
//! the API, and serves; the predecessor's edge accepts for 5 s more (Pingora's), then drains
//! its in-flight requests for the shutdown grace from its in-memory snapshot, and exits.

use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use minicloud_proxy::{
    BackgroundService, Edge, EdgeConfig, EdgeError, EdgeServer, Handover, ProxySettings,
    ShutdownWatch,
};

use crate::apps::{AppSettings, Apps};
use crate::auth::passwords::{self, AdminBootstrap};
use crate::auth::{self, Bootstrap};
use crate::config::Config;
use crate::ctx::Ctx;
use crate::model::{now, Actor};
use crate::store::{Owner, OwnerLock, Store, StoreError, TakeOver};
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
    #[error(
        "taking over from the running minicloud (pid {pid}): {source}; this one stops, and that \
         one stops too once it has drained: start minicloud again when it has exited"
    )]
    TakeOver { pid: String, source: StoreError },
}

/// How long `serve --upgrade` waits for the minicloud it takes over from to let go of the
/// data dir after it sent its sockets (it does once its control plane has stopped, about a
/// second; its edge drains on beside).
const HANDOVER_PATIENCE: Duration = Duration::from_secs(60);

/// How long, once the data dir is free, the successor waits for redb's lock and the API's
/// port, which the predecessor lets go of just before.
const RELEASE_PATIENCE: Duration = Duration::from_secs(10);

/// Runs minicloud until it is told to stop. With `upgrade`, it takes over from the `serve`
/// running on the same data dir, if one is: it receives that one's listening sockets (sent
/// when it gets SIGQUIT), then waits for it to let go of the data dir; no connection is
/// refused meanwhile. With none running, it starts as usual.
pub fn run(config: Config, upgrade: bool) -> Result<(), ServeError> {
    let state_path = config.state_path();
    // The lock is held until the control plane stops: no `minicloud restore` meanwhile
    // (see `store::owner`), and a successor gets the data dir as soon as it can.
    let (owner, predecessor) = if upgrade {
        match OwnerLock::take_over(&state_path)? {
            TakeOver::Free(lock) => {
                tracing::info!(
                    "no minicloud runs on this data dir: nothing to take over, starting as usual"
                );
                (Some(lock), None)
            }
            TakeOver::FromServe { pid } => (None, Some(pid)),
        }
    } else {
        (Some(OwnerLock::take(&state_path, Owner::Serve)?), None)
    };

    let http_addr = SocketAddr::new(config.listen, config.http_port);
    let https_addr = SocketAddr::new(config.listen, config.https_port);
    let edge = Edge::new();
    let edge_config = EdgeConfig {
        http_addr,
        https_addr,
        threads: config.threads,
        shutdown_grace: config.shutdown_grace,
        limits: config.limits,
        upgrade_sock: config.upgrade_socket_path().display().to_string(),
        pid_file: config.pid_file_path().display().to_string(),
        take_over: predecessor.is_some(),
        proxy: ProxySettings {
            public_https_port: config.https_port,
            access_log: config.access_log,
            sni_bound: vec![config.admin_host().to_string()],
            control_plane_hosts: vec![config.admin_host().to_string()],
            ..ProxySettings::default()
        },
    };
    let mut server = EdgeServer::new(edge.clone(), &edge_config)?;
    let handover = server.handover();
    let (owner, store) = match &predecessor {
        None => (owner, Store::open(&state_path)?),
        Some(pid) => {
            // Its sockets first: from here on the kernel queues what neither accepts yet.
            tracing::info!(
                pid = %pid,
                socket = %config.upgrade_socket_path().display(),
                "taking over from the running minicloud: waiting for its listening sockets"
            );
            // On stderr at once: when none come, Pingora ends the process before the log's
            // writer thread has written its last lines.
            eprintln!(
                "minicloud: waiting for the listening sockets of the running minicloud (pid {pid}): \
                 send it SIGQUIT now; if none come within about 6 s, this one exits with status 1 \
                 and that one goes on serving"
            );
            server.bootstrap();
            tracing::info!(pid = %pid, "listening sockets received; waiting for the data dir");
            let lock = OwnerLock::wait_for(&state_path, Owner::Serve, HANDOVER_PATIENCE).map_err(
                |source| ServeError::TakeOver {
                    pid: pid.clone(),
                    source,
                },
            )?;
            let store = open_when_free(&state_path).map_err(|source| ServeError::TakeOver {
                pid: pid.clone(),
                source,
            })?;
            (Some(lock), store)
        }
    };
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

    let api_listener = if predecessor.is_some() {
        // The predecessor closed it just before it let go of the data dir.
        bind_when_free(config.api_listen, "control plane API")?
    } else {
        // Pingora binds later and only logs a failure; check now so a taken or privileged
        // port is a clear error before anything starts. Taken over, they are open already.
        probe_bind(http_addr, "HTTP")?;
        probe_bind(https_addr, "HTTPS")?;
        bind(config.api_listen, "control plane API")?
    };
    let api_addr = api_listener
        .local_addr()
        .map_err(|source| ServeError::Bind {
            addr: config.api_listen,
            what: "control plane API",
            source,
            hint: "",
        })?;

    let app_settings = AppSettings {
        health_timeout: config.health_timeout,
        networks: config.app_networks.clone(),
        pull_timeout: config.pull_timeout,
        min_free_mb: config.min_free_mb,
    };
    let ctx = Ctx::new(config, store, edge);
    ctx.publish_stored_state(api_addr)?;
    crate::certs::publish_stored(&ctx)?;
    let certs = crate::certs::Manager::new(ctx.clone())?;
    let apps = Apps::new(ctx.clone(), app_settings)?;
    if predecessor.is_some() {
        // The predecessor's edge accepts for 5 s after it sent the sockets: routing the running
        // apps first costs no connection, and spares this edge's first requests a 503.
        find_serving(&apps);
    }

    tracing::info!(
        http = %http_addr,
        https = %https_addr,
        api = %api_addr,
        admin = %format!("https://{}:{}/", ctx.config.admin_host(), ctx.config.https_port),
        routes = ctx.edge.snapshot().routes.len(),
        taken_over_from = predecessor.as_deref().unwrap_or("-"),
        "minicloud starting"
    );
    server.add_background(
        "control plane",
        ControlPlane {
            parts: Mutex::new(Some(Parts {
                state: WebState::new(ctx, apps),
                listener: api_listener,
                certs,
                owner,
                handover,
            })),
        },
    );
    server.run();
    tracing::info!("minicloud stopped");
    Ok(())
}

/// Routes the apps whose containers run ([`Apps::find_serving`]) on a runtime of its own,
/// before the server's starts; a failure is logged, the start-up reconcile routes them later.
fn find_serving(apps: &Apps) {
    let started = std::time::Instant::now();
    let found = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            // The timer is made inside: it needs the runtime's clock.
            rt.block_on(async {
                tokio::time::timeout(FIND_SERVING_PATIENCE, apps.find_serving()).await
            })
            .map_err(|_| "timed out".to_owned())
            .and_then(|found| found.map_err(|e| e.to_string()))
        });
    match found {
        Ok(routed) => tracing::info!(
            apps = routed,
            ms = started.elapsed().as_millis() as u64,
            "running apps routed before the edge accepts"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "cannot route the running apps before the edge accepts; the start-up reconcile will"
        ),
    }
}

/// Well within the 5 s the predecessor's edge goes on accepting.
const FIND_SERVING_PATIENCE: Duration = Duration::from_secs(3);

/// The store, once the predecessor has closed it (just before it let go of the data dir).
fn open_when_free(state_path: &std::path::Path) -> Result<Store, StoreError> {
    let deadline = std::time::Instant::now() + RELEASE_PATIENCE;
    loop {
        match Store::open(state_path) {
            Err(StoreError::InUse { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            opened => return opened,
        }
    }
}

/// Binds `addr`, trying again while it is in use, for up to [`RELEASE_PATIENCE`].
fn bind_when_free(addr: SocketAddr, what: &'static str) -> Result<TcpListener, ServeError> {
    let deadline = std::time::Instant::now() + RELEASE_PATIENCE;
    loop {
        match bind(addr, what) {
            Err(ServeError::Bind { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            bound => return bound,
        }
    }
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

/// What the control plane owns, handed over once to `start`.
struct Parts {
    state: WebState,
    /// Bound before start so the edge's admin route is known.
    listener: TcpListener,
    /// The certificate manager (`None` when ACME is off).
    certs: Option<crate::certs::Manager>,
    /// The data dir's lock (see `store::owner`), let go of when the control plane stops.
    owner: Option<OwnerLock>,
    /// When the sockets went to a successor: the control plane stops then, not 5 s later.
    handover: Handover,
}

/// The control plane as a Pingora background service: serves the API until shutdown or until
/// the edge has handed its sockets to a successor, then lets go of the data dir while the
/// edge drains on from its in-memory snapshot.
struct ControlPlane {
    /// Taken once by `start`.
    parts: Mutex<Option<Parts>>,
}

#[async_trait]
impl BackgroundService for ControlPlane {
    async fn start(&self, shutdown: ShutdownWatch) {
        let taken = self
            .parts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(parts) = taken else {
            return;
        };
        let Parts {
            state,
            listener,
            certs,
            owner,
            handover,
        } = parts;
        let store = state.ctx.store.clone();
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                let stop = stop_signal(shutdown, handover);
                run_control_plane(state, listener, certs, stop).await;
            }
            Err(e) => tracing::error!(error = %e, "control plane API listener unusable"),
        }
        // Whatever still holds a clone (a request or an operation cut short) finds it
        // closed: redb's lock goes now, then the data dir's, for a successor waiting for them.
        store.close();
        drop(owner);
        tracing::info!("control plane stopped; the data dir is free");
    }
}

/// The control plane's stop signal: the server's shutdown, or the hand-over of the sockets
/// (Pingora's own shutdown comes 5 s after that, while both servers accept).
fn stop_signal(mut shutdown: ShutdownWatch, handover: Handover) -> ShutdownWatch {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.wait_for(|down| *down) => {}
            () = handover.sockets_sent() => tracing::info!(
                "listening sockets handed to the successor: the control plane stops and lets go of the data dir"
            ),
        }
        let _ = stop.send(true);
    });
    stopped
}

/// The control plane proper: starts the background tasks (certificate manager, start-up
/// reconcile), serves the API on `listener` until `shutdown`, then stops the tasks. Public so
/// tests can run it in process on a port-0 listener.
pub async fn run_control_plane(
    state: WebState,
    listener: tokio::net::TcpListener,
    certs: Option<crate::certs::Manager>,
    shutdown: ShutdownWatch,
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
    let serving = std::future::IntoFuture::into_future(
        axum::serve(listener, app).with_graceful_shutdown(stopped(shutdown.clone())),
    );
    // The listener closes at the signal; a connection still open past the grace (a
    // progress stream) is left behind rather than holding up the stop.
    let cut_off = async {
        stopped(shutdown).await;
        tokio::time::sleep(TASKS_GRACE).await;
    };
    tokio::select! {
        served = serving => if let Err(e) = served {
            tracing::error!(error = %e, "control plane API stopped");
        },
        () = cut_off => tracing::warn!("control plane API connections still open after the grace; left behind"),
    }
    tasks.stop(TASKS_GRACE).await;
}

/// Resolves when `shutdown` turns true or its sender is gone.
async fn stopped(mut shutdown: ShutdownWatch) {
    let _ = shutdown.wait_for(|down| *down).await;
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
        let err = run(config, false).unwrap_err().to_string();
        assert!(
            err.contains("`minicloud restore` (pid") && err.contains("let it finish"),
            "{err}"
        );
        // Refused before the store was opened (the restore replaces it).
        assert!(!state_path.exists());
        drop(restoring);
    }
}
