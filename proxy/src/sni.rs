//! The name a TLS client asked for (SNI), kept with its connection, so a host that must only
//! be reached on a connection made for it (the admin host) can tell.
//!
//! Without this, a client could open TLS to any name this edge serves (or to its bare IP, which
//! gets the fallback certificate) and then send `Host: admin.<domain>`: the admin API would
//! answer whatever SNI-based filtering sits in front of the box.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use pingora_core::listeners::TlsAccept;
use pingora_core::protocols::tls::TlsRef;
use pingora_core::protocols::Digest;

/// The SNI of one TLS connection, lower-cased; `None` when the client sent none.
#[derive(Debug)]
struct ClientSni(Option<String>);

/// Pingora's post-handshake hook that records the SNI in the connection's digest.
pub(crate) struct RecordSni;

#[async_trait]
impl TlsAccept for RecordSni {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let name = tls.server_name().map(str::to_ascii_lowercase);
        Some(Arc::new(ClientSni(name)))
    }
}

/// Whether a request for `host` arrived on a TLS connection whose SNI was `host`.
pub(crate) fn sni_is(digest: Option<&Digest>, host: &str) -> bool {
    digest
        .and_then(|d| d.ssl_digest.as_ref())
        .and_then(|s| s.extension.get::<ClientSni>())
        .and_then(|sni| sni.0.as_deref())
        .is_some_and(|sni| sni.trim_end_matches('.') == host)
}
