//! Assembles the Pingora server: one proxy service listening on the HTTP and HTTPS ports,
//! plus whatever background services the caller adds (the control plane is one).
//!
//! It also owns the hand-over of the listening sockets to a successor (Pingora's graceful
//! upgrade): a server built with [`EdgeConfig::take_over`] receives them from the running one in
//! [`EdgeServer::bootstrap`]; the running one sends them on SIGQUIT, and [`Handover`] tells its
//! background services the moment they are sent.
//!
//! It also owns the few Pingora settings the edge changes from Pingora's defaults ([`tuning`]).
//! Each has a `bench-*` cargo feature that puts Pingora's default back, so the benchmark can
//! measure each change alone against the default build (`benches/README.md`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::ListenerConfig;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::{ExecutionPhase, RunArgs, Server};
use pingora_core::services::background::{background_service, BackgroundService};
use pingora_core::services::listening::Service;

use crate::guard::{Guarded, HeadDeadline, Limits};
use crate::keepalive::KeepAlive;
use crate::service::{EdgeProxy, ProxySettings};
use crate::tls::SniResolver;
use crate::Edge;

/// Where and how the edge listens.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub http_addr: SocketAddr,
    pub https_addr: SocketAddr,
    /// Worker threads of the proxy service.
    pub threads: usize,
    /// On SIGTERM: how long in-flight requests get to finish before the process exits.
    pub shutdown_grace: Duration,
    pub proxy: ProxySettings,
    /// Connection caps and the handshake and request-head deadlines.
    pub limits: Limits,
    /// Pingora's graceful-upgrade socket and pid file (its defaults are in `/tmp`).
    pub upgrade_sock: String,
    pub pid_file: String,
    /// Take the listening sockets over from the minicloud running on `upgrade_sock` instead
    /// of binding them: [`EdgeServer::bootstrap`] waits for them (it sends them on SIGQUIT).
    pub take_over: bool,
}

/// Why the edge could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("could not set up the TLS listener: {0}")]
    Tls(String),
}

/// The edge's Pingora server, ready to run.
pub struct EdgeServer {
    server: Server,
}

impl EdgeServer {
    pub fn new(edge: Edge, config: &EdgeConfig) -> Result<Self, EdgeError> {
        let grace = config.shutdown_grace.as_secs();
        let conf = ServerConf {
            threads: config.threads.max(1),
            work_stealing: tuning::WORK_STEALING,
            upstream_keepalive_pool_size: tuning::UPSTREAM_KEEPALIVE_POOL_SIZE,
            // Pingora waits `grace_period` after SIGTERM while listeners are closed and
            // in-flight requests finish, then gives runtimes `graceful_shutdown_timeout`.
            grace_period_seconds: Some(grace),
            graceful_shutdown_timeout_seconds: Some(1),
            upgrade_sock: config.upgrade_sock.clone(),
            pid_file: config.pid_file.clone(),
            ..ServerConf::default()
        };
        let opt = config.take_over.then(|| Opt {
            upgrade: true,
            ..Opt::default()
        });
        let mut server = Server::new_with_opt_and_conf(opt, conf);
        let proxy = EdgeProxy::new(edge.clone(), config.proxy.clone());
        let proxy = pingora_proxy::http_proxy(&server.configuration, proxy);
        let limits = config.limits;
        // Outside in: the caps count the connection, the keep-alive loop waits for each
        // request's first byte, the head deadline runs from there, then Pingora's proxy.
        let app = Guarded::new(
            KeepAlive::new(
                HeadDeadline::new(proxy, limits.head_timeout),
                limits.head_timeout,
            ),
            limits,
        );
        let handshakes = app.handshake_watch();
        let mut service = Service::new("edge".to_owned(), app);
        // Runs on TLS listeners only, just before each handshake.
        service
            .endpoints()
            .set_pre_tls_callback(Arc::new(handshakes));
        let l4 = tuning::l4_buffer();
        service.add_listener(ListenerConfig::tcp(config.http_addr.to_string()).l4_buffer(l4));
        // Records each connection's SNI, for hosts bound to it (`ProxySettings::sni_bound`).
        let mut tls = TlsSettings::with_callbacks(Box::new(crate::sni::RecordSni))
            .map_err(|e| EdgeError::Tls(e.to_string()))?;
        let resolver = SniResolver::new(edge).map_err(|e| EdgeError::Tls(e.to_string()))?;
        tls.set_cert_resolver(Arc::new(resolver));
        tls.enable_h2();
        service.add_listener(
            ListenerConfig::tcp(config.https_addr.to_string())
                .tls(tls)
                .l4_buffer(l4),
        );
        server.add_service(service);
        Ok(Self { server })
    }

    /// Runs `task` on its own small runtime beside the proxy; it is told to stop on shutdown.
    pub fn add_background<T>(&mut self, name: &str, task: T)
    where
        T: BackgroundService + Send + Sync + 'static,
    {
        let mut service = background_service(name, task);
        service.threads = Some(1);
        self.server.add_service(service);
    }

    /// Tells when this server has handed its sockets to a successor (after SIGQUIT).
    /// Subscribe before [`EdgeServer::run`]: a phase sent earlier is not seen.
    pub fn handover(&self) -> Handover {
        Handover(self.server.watch_execution_phase())
    }

    /// With [`EdgeConfig::take_over`]: receives the listening sockets from the running
    /// minicloud, which sends them when it gets SIGQUIT. Pingora waits about 6 s for them
    /// and ends the process (status 1, its log says why) when none come. Otherwise it does
    /// nothing; [`EdgeServer::run`] binds the sockets.
    pub fn bootstrap(&mut self) {
        self.server.bootstrap();
    }

    /// Binds the listeners (or uses the ones taken over) and serves until SIGTERM (drain,
    /// then exit), SIGQUIT (hand the sockets to a successor, then drain and exit) or SIGINT
    /// (exit now).
    pub fn run(mut self) {
        self.server.bootstrap();
        self.server.run(RunArgs::default());
    }
}

/// The hand-over of the listening sockets, as a background service sees it.
pub struct Handover(tokio::sync::broadcast::Receiver<ExecutionPhase>);

impl Handover {
    /// Resolves once the sockets went to a successor (or Pingora gave up sending them: the
    /// server stops either way). After SIGQUIT, Pingora keeps accepting on them for 5 s
    /// before it drains; what depends on this server alone (its data dir) can go now.
    pub async fn sockets_sent(mut self) {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match self.0.recv().await {
                Ok(ExecutionPhase::GracefulUpgradeCloseTimeout) => return,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                // The server is gone; its shutdown signal says the rest.
                Err(RecvError::Closed) => std::future::pending().await,
            }
        }
    }
}

/// The Pingora settings the edge changes, sized for a box with one or two small cores. Each
/// `bench-*` feature of this crate puts one back to Pingora's default, for an A/B benchmark.
pub(crate) mod tuning {
    use pingora_core::listeners::{
        L4BufferSettings, DEFAULT_L4_READ_BUFFER_SIZE, DEFAULT_L4_WRITE_BUFFER_SIZE,
    };

    /// The listeners' L4 read buffer. Pingora's default, 64 KiB per connection, is a second
    /// copy of what is read: rustls keeps its own receive buffer under TLS, and Pingora's HTTP
    /// layer reads into its own head and body buffers. Off, reads go to the socket directly.
    /// The 1,460-byte write buffer stays: it joins a response's header and body into one send.
    pub const L4_READ_BUFFER: usize = if cfg!(feature = "bench-l4-read-buffer") {
        DEFAULT_L4_READ_BUFFER_SIZE
    } else {
        0
    };

    pub fn l4_buffer() -> L4BufferSettings {
        L4BufferSettings::new(L4_READ_BUFFER, DEFAULT_L4_WRITE_BUFFER_SIZE)
    }

    /// One `current_thread` runtime per worker thread instead of a work-stealing pool: with one
    /// or two threads there is nothing to steal, only the pool's cross-thread bookkeeping.
    /// Nothing in minicloud blocks a runtime thread (no `block_in_place`).
    pub const WORK_STEALING: bool = cfg!(feature = "bench-work-stealing");

    /// Idle upstream connections kept per worker thread (Pingora's default is 128). Above 128
    /// requests in flight the default pool closed and reopened upstream connections; the
    /// benchmark gives nginx, Caddy and HAProxy the same 1,024.
    pub const UPSTREAM_KEEPALIVE_POOL_SIZE: usize = if cfg!(feature = "bench-upstream-pool") {
        128
    } else {
        1024
    };

    /// Pingora's default downstream modules (a response-compression module, disabled, whose
    /// context is still built and whose filters still run on every request).
    pub const DEFAULT_DOWNSTREAM_MODULES: bool = cfg!(feature = "bench-downstream-modules");

    /// Kept-alive HTTP/1 connections wait for their next request in the edge's small loop
    /// (`keepalive.rs`), not inside Pingora's 14 KB per-request future. Off, Pingora's own
    /// loop serves them, and with it no write coalescing either (that lives in the loop).
    pub const IDLE_LOOP: bool = !cfg!(feature = "bench-idle-loop");

    /// A response's header and body are buffered (4 KiB) above TLS, so a small response is one
    /// TLS record instead of two (`keepalive.rs`, `Coalesce`).
    pub const COALESCE_WRITES: bool = !cfg!(feature = "bench-write-coalescing");
}
