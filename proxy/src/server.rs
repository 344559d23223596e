//! Assembles the Pingora server: one proxy service listening on the HTTP and HTTPS ports,
//! plus whatever background services the caller adds (the control plane is one).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pingora_core::listeners::tls::TlsSettings;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::{RunArgs, Server};
use pingora_core::services::background::{background_service, BackgroundService};
use pingora_core::services::listening::Service;

use crate::guard::{Guarded, HeadDeadline, Limits};
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
    /// Connection caps and the request-head deadline.
    pub limits: Limits,
    /// Pingora's graceful-upgrade socket and pid file (its defaults are in `/tmp`).
    pub upgrade_sock: String,
    pub pid_file: String,
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
            // Pingora waits `grace_period` after SIGTERM while listeners are closed and
            // in-flight requests finish, then gives runtimes `graceful_shutdown_timeout`.
            grace_period_seconds: Some(grace),
            graceful_shutdown_timeout_seconds: Some(1),
            upgrade_sock: config.upgrade_sock.clone(),
            pid_file: config.pid_file.clone(),
            ..ServerConf::default()
        };
        let mut server = Server::new_with_opt_and_conf(None, conf);
        let proxy = EdgeProxy::new(edge.clone(), config.proxy.clone());
        let proxy = pingora_proxy::http_proxy(&server.configuration, proxy);
        let limits = config.limits;
        let app = Guarded::new(HeadDeadline::new(proxy, limits.head_timeout), limits);
        let mut service = Service::new("edge".to_owned(), app);
        service.add_tcp(&config.http_addr.to_string());
        // Records each connection's SNI, for hosts bound to it (`ProxySettings::sni_bound`).
        let mut tls = TlsSettings::with_callbacks(Box::new(crate::sni::RecordSni))
            .map_err(|e| EdgeError::Tls(e.to_string()))?;
        let resolver = SniResolver::new(edge).map_err(|e| EdgeError::Tls(e.to_string()))?;
        tls.set_cert_resolver(Arc::new(resolver));
        tls.enable_h2();
        service.add_tls_with_settings(&config.https_addr.to_string(), None, tls);
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

    /// Binds the listeners and serves until SIGTERM (drain, then exit) or SIGINT (exit now).
    pub fn run(mut self) {
        self.server.bootstrap();
        self.server.run(RunArgs::default());
    }
}
