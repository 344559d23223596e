//! minicloud's edge: routes HTTPS by host from an in-memory table, picks certificates by SNI,
//! and answers ACME challenges, on Pingora.
//!
//! This crate knows hosts, upstreams and certificates, nothing of Docker or apps. The control
//! plane holds an [`Edge`] handle and changes what is served through [`Edge::update`]; the
//! request path only reads the current [`Snapshot`]. The crate reads no files and parses no
//! configuration: the binary owns those.
#![forbid(unsafe_code)]

pub mod acme;
mod edge;
mod guard;
mod host;
mod keepalive;
pub mod metrics;
mod pages;
pub mod pingora_log;
mod routes;
mod server;
mod service;
mod sni;
mod tls;
mod tunnel;

pub use edge::{Draft, Edge, Snapshot};
pub use guard::Limits;
pub use host::{host_from_authority, HostError, HostPattern, Hostname};
pub use routes::{RouteTable, Upstream, UpstreamError};
pub use server::{EdgeConfig, EdgeError, EdgeServer, Handover};
pub use service::ProxySettings;
pub use tls::{CertError, CertInfo, CertPem, CertSource, CertTable, Certificate};

/// Pingora's hook for work beside the proxy, and the shutdown signal it receives.
pub use pingora_core::server::ShutdownWatch;
pub use pingora_core::services::background::BackgroundService;

/// An error with its sources joined by `: `. Connection errors (reqwest, hyper, rustls) hide
/// the useful part, "connection refused" or "unknown issuer", in their sources; one line with
/// all of them is what a person needs. Shared by the edge and the control plane.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    parts.join(": ")
}
