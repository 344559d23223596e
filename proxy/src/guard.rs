//! The edge under hostile clients: caps on open connections (in total and per client IP), a
//! deadline for a whole request head, and a deadline for the TLS handshake, in front of
//! Pingora's HTTP handling.
//!
//! Pingora 0.9.1 has none of them as wanted: it reads a head with a per-read timeout only (a
//! client that sends one byte every minute holds a connection and up to 1 MiB of buffer for
//! ever), accepts connections without limit, and gives every TLS handshake a fixed 60 s. All
//! are added around Pingora's own app and listeners, without forking it: [`Guarded`] counts a
//! connection to its close and refuses one over a cap, a TLS connection from its accept
//! (in the pre-TLS hook, so stalled handshakes fill the caps too), a plain one from its first
//! step in the app; [`HeadDeadline`] races each request's handling, from the request's first byte (the
//! keep-alive loop in `keepalive.rs` waits for that, between the two), against the deadline
//! until the request filter says the head is complete (see [`head_complete`]); [`handshake::HandshakeWatch`],
//! Pingora's pre-TLS hook, shuts down a socket whose handshake has not finished in time
//! ([`Guarded`] tells it when one has).

mod handshake;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp};
use pingora_core::protocols::http::v2::server::H2Options;
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{SocketDigest, Stream};
use pingora_core::server::ShutdownWatch;

pub(crate) use handshake::HandshakeWatch;

/// How many connections the edge holds, and how long a TLS handshake and a request head may
/// take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections in total (HTTP and HTTPS together).
    pub max_connections: usize,
    /// Open connections from one client IP address.
    pub max_connections_per_ip: usize,
    /// From the first byte of a request to the end of its head (like nginx's
    /// `client_header_timeout`, for the whole head, not per read). The wait for a request's
    /// first byte on an open connection has the same bound (`keepalive.rs`).
    pub head_timeout: Duration,
    /// From the TLS listener's accept to the end of the handshake. Pingora's own deadline,
    /// 60 s, stays the upper bound.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    /// Sized for a 1 GB box: a connection that sends a large head can hold up to 1 MiB of
    /// Pingora's buffer, and the head deadline bounds how long it may. A handshake is a few
    /// round trips: 10 s leaves room for a slow mobile link, not for a client that stalls.
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_ip: 64,
            head_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Open connections, by client address. A plain mutex: it is held for a map update only.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One counted connection; dropping it gives the place back.
struct Permit {
    counts: Arc<Mutex<Counts>>,
    ip: Option<IpAddr>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(ip) = self.ip {
            if let Some(n) = c.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    c.per_ip.remove(&ip);
                }
            }
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Total,
    PerIp,
}

/// The client's address, from the socket's digest.
fn peer_ip(digest: Option<Arc<SocketDigest>>) -> Option<IpAddr> {
    digest.and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()))
}

fn admit(
    counts: &Arc<Mutex<Counts>>,
    limits: &Limits,
    ip: Option<IpAddr>,
) -> Result<Permit, Refused> {
    let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
    if c.total >= limits.max_connections {
        return Err(Refused::Total);
    }
    if let Some(ip) = ip {
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= limits.max_connections_per_ip {
            return Err(Refused::PerIp);
        }
        *n += 1;
    }
    c.total += 1;
    Ok(Permit {
        counts: counts.clone(),
        ip,
    })
}

/// Pingora's app behind the connection caps.
pub struct Guarded<A> {
    inner: Arc<A>,
    limits: Limits,
    counts: Arc<Mutex<Counts>>,
    handshakes: HandshakeWatch,
}

impl<A> Guarded<A> {
    pub fn new(inner: A, limits: Limits) -> Self {
        let counts = Arc::<Mutex<Counts>>::default();
        Self {
            inner: Arc::new(inner),
            limits,
            handshakes: HandshakeWatch::counting(limits, counts.clone()),
            counts,
        }
    }

    /// The handshake deadline and the caps from the accept, for the TLS listeners' pre-TLS
    /// hook.
    pub fn handshake_watch(&self) -> HandshakeWatch {
        self.handshakes.clone()
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // Pingora calls this right after a handshake (and on a plain connection, which the
        // watch does not know): the handshake deadline no longer applies. A connection the
        // watch saw is counted since its accept, its place held by the stream itself.
        let _permit = if self.handshakes.done(stream.id()) {
            None
        } else {
            let ip = peer_ip(stream.get_socket_digest());
            match admit(&self.counts, &self.limits, ip) {
                Ok(permit) => Some(permit),
                Err(why) => {
                    // Debug only: a flood would otherwise be a flood of log lines too.
                    tracing::debug!(client = ?ip, refused = ?why, "connection over the cap closed");
                    return None;
                }
            }
        };
        // Pingora hands a kept-alive connection back only to serve it again in the same
        // service; serving it here keeps it counted until it really closes.
        let mut stream = stream;
        loop {
            stream = self.inner.process_new(stream, shutdown).await?;
        }
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

tokio::task_local! {
    /// Set by [`head_complete`] while a request is handled under [`HeadDeadline`].
    static HEAD_SEEN: Arc<AtomicBool>;
}

/// Tells [`HeadDeadline`] that the current request's head has been read whole. The edge's
/// first request phase calls it; outside a `HeadDeadline` it does nothing.
pub fn head_complete() {
    let _ = HEAD_SEEN.try_with(|seen| seen.store(true, Ordering::Relaxed));
}

/// Pingora's HTTP app with a deadline on each request head.
pub struct HeadDeadline<A> {
    inner: Arc<A>,
    timeout: Duration,
}

impl<A> HeadDeadline<A> {
    pub fn new(inner: A, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(inner),
            timeout,
        }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for HeadDeadline<A> {
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let seen = Arc::new(AtomicBool::new(false));
        let handled = HEAD_SEEN.scope(seen.clone(), self.inner.process_new_http(session, shutdown));
        tokio::pin!(handled);
        tokio::select! {
            biased;
            out = &mut handled => out,
            () = tokio::time::sleep(self.timeout) => {
                if seen.load(Ordering::Relaxed) {
                    // The head came in time; the rest of the request has no such deadline.
                    handled.await
                } else {
                    tracing::debug!("request head not complete within {:?}: connection closed", self.timeout);
                    None
                }
            }
        }
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.inner.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.inner.server_options()
    }

    async fn http_cleanup(&self) {
        self.inner.http_cleanup().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize) -> Limits {
        Limits {
            max_connections: total,
            max_connections_per_ip: per_ip,
            head_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn caps_hold_and_places_come_back() {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let l = limits(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = admit(&counts, &l, Some(a)).unwrap();
        let _a2 = admit(&counts, &l, Some(a)).unwrap();
        assert_eq!(admit(&counts, &l, Some(a)).err(), Some(Refused::PerIp));
        let _b1 = admit(&counts, &l, Some(b)).unwrap();
        // Full: even a new address waits.
        assert_eq!(admit(&counts, &l, None).err(), Some(Refused::Total));
        drop(a1);
        let _a3 = admit(&counts, &l, Some(a)).unwrap();
        assert_eq!(counts.lock().unwrap().per_ip[&a], 2);
    }

    #[test]
    fn an_address_with_nothing_open_is_forgotten() {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        drop(admit(&counts, &limits(10, 10), Some(ip)).unwrap());
        let c = counts.lock().unwrap();
        assert!(c.per_ip.is_empty() && c.total == 0);
    }
}
