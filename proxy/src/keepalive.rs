//! The wait between requests on a kept-alive HTTP/1 connection, outside Pingora's request
//! handling, and the write buffer each request's response goes out through.
//!
//! Pingora 0.9.1 waits for the next request inside its per-request proxy future (about 14 KB,
//! boxed), with the session and a 4 KiB head buffer already allocated: an idle connection
//! holds all of that until the client speaks or the keep-alive timeout ends. [`KeepAlive`]
//! runs the connection's HTTP/1 loop itself: while idle it holds only the stream, the
//! persisted session settings and this small future; once the first byte of the next request
//! has come it builds the session with that byte as its already-read prefix and hands it to
//! the HTTP app. HTTP/2 (and anything but HTTP/1) goes to Pingora's own connection loop.
//!
//! [`Coalesce`] is the response side: a 4 KiB write buffer above TLS for the time of one
//! request, so a small response's header and body leave as one TLS record instead of two.
//! Pingora flushes where a client must see bytes at once (a 1xx, a header without a length,
//! each chunk, the end of a body, each write of an upgraded connection), the same points its
//! own 1,460-byte socket buffer below TLS relies on. Between requests the buffer is gone.
//!
//! Not here: the connection caps and the head deadline ([`crate::guard`]); this module sits
//! between them and bounds only the wait for the next request.

use std::any::Any;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use pingora_core::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::tls::{SslDigest, TlsRef};
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use pingora_core::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf};

use crate::server::tuning;

/// Pingora's keep-alive timeout for a new HTTP/1 connection, in seconds (its default, which
/// the edge keeps). The wait for the next request is the shorter of this and the idle timeout.
const KEEPALIVE_SECS: u64 = 60;

/// After the shutdown signal, how long an idle kept-alive connection still waits for its next
/// request (served, then the connection closes) before it is closed. Closed at once, a client
/// sending its next request at that moment sees the connection close under it: a failed
/// request. A busy client sends within milliseconds, and during a hand-over to a successor
/// its next connection goes there; a quiet one is closed after this.
const LAST_CALL: Duration = Duration::from_secs(1);

/// A response of up to this many bytes, header included, leaves in one TLS record.
const COALESCE_BYTES: usize = 4096;

/// The request head's first buffer, allocated once a request has begun: Pingora's size.
const HEAD_BUF_BYTES: usize = 4096;

/// An HTTP app whose kept-alive HTTP/1 connections wait for their next request here.
pub struct KeepAlive<A> {
    inner: Arc<A>,
    idle_timeout: Duration,
}

impl<A> KeepAlive<A> {
    /// `idle_timeout` bounds the wait for each request's first byte (Pingora's 60 s when
    /// longer).
    pub fn new(inner: A, idle_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(inner),
            idle_timeout: idle_timeout.min(Duration::from_secs(KEEPALIVE_SECS)),
        }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for KeepAlive<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let pingoras_own = !tuning::IDLE_LOOP
            || !matches!(stream.selected_alpn_proto(), None | Some(ALPN::H1))
            || self
                .inner
                .server_options()
                .is_some_and(|o| o.h2c || o.force_custom);
        if pingoras_own {
            return ServerApp::process_new(&self.inner, stream, shutdown).await;
        }
        let mut stream = stream;
        let mut settings: Option<HttpPersistentSettings> = None;
        let mut shutdown_rx = shutdown.clone();
        let mut first_request = true;
        loop {
            let first = self
                .next_byte(&mut stream, &mut shutdown_rx, first_request)
                .await?;
            first_request = false;
            // Becomes the session's head buffer.
            let mut prefix = BytesMut::with_capacity(HEAD_BUF_BYTES);
            prefix.extend_from_slice(&[first]);
            let io: Stream = if tuning::COALESCE_WRITES {
                Box::new(Coalesce(BufWriter::with_capacity(COALESCE_BYTES, stream)))
            } else {
                stream
            };
            let mut session = ServerSession::new_http1(io);
            match settings.take() {
                Some(s) => s.apply_to_session(&mut session),
                None => {
                    session.set_keepalive(Some(KEEPALIVE_SECS));
                    session.set_keepalive_reuses_remaining(
                        self.inner
                            .server_options()
                            .and_then(|o| o.keepalive_request_limit),
                    );
                }
            }
            if *shutdown.borrow() {
                // Serve this one, then close: the server is draining.
                session.set_keepalive(None);
            }
            // The edge does not enable pipelining, so the settings carry no prefix of their own.
            session.set_pipelined_prefix(prefix);
            let (io, next) = self
                .inner
                .process_new_http(session, shutdown)
                .await?
                .consume();
            stream = Coalesce::unwrap(io).await?;
            // Pingora persists them on every reuse; without, the next request gets a new
            // connection's.
            settings = next;
        }
    }

    async fn cleanup(&self) {
        self.inner.http_cleanup().await;
    }
}

impl<A> KeepAlive<A> {
    /// Waits for the first byte of the next request; `None` when the connection should close
    /// instead: the client closed it or sent nothing in time, or the server is shutting down
    /// and it sent nothing within [`LAST_CALL`] (a new connection's first request is still
    /// served then).
    async fn next_byte(
        &self,
        stream: &mut Stream,
        shutdown: &mut ShutdownWatch,
        first_request: bool,
    ) -> Option<u8> {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(self.idle_timeout, stream.read(&mut byte));
        let drained = async {
            if first_request {
                std::future::pending::<()>().await;
            }
            // Waits for `true`; a dropped sender means the server is gone too.
            let _ = shutdown.wait_for(|down| *down).await;
            tokio::time::sleep(LAST_CALL).await;
        };
        tokio::select! {
            // A request that has come is served (and closes the connection) rather than
            // dropped with it.
            biased;
            read = read => match read {
                Ok(Ok(1)) => Some(byte[0]),
                // Closed by the client (the usual end of a kept-alive connection), an error,
                // or idle past the timeout.
                _ => None,
            },
            () = drained => {
                tracing::trace!("shutting down: idle keep-alive connection closed");
                None
            }
        }
    }
}

/// A stream whose writes are held until a flush or until 4 KiB are waiting, for one request.
#[derive(Debug)]
struct Coalesce(BufWriter<Stream>);

impl Coalesce {
    /// The stream under a finished request's buffer, with anything still held written out.
    /// Streams that are not a `Coalesce` (the buffer was off) come back as they are.
    async fn unwrap(io: Stream) -> Option<Stream> {
        if !io.as_any().is::<Coalesce>() {
            return Some(io);
        }
        let any: Box<dyn Any> = io.into_any();
        let mut coalesce = any.downcast::<Coalesce>().ok()?;
        // Pingora flushed at the end of the response; this is for a path that did not.
        if !coalesce.0.buffer().is_empty() && coalesce.0.flush().await.is_err() {
            return None;
        }
        Some(coalesce.0.into_inner())
    }
}

impl AsyncRead for Coalesce {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Coalesce {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for Coalesce {
    async fn shutdown(&mut self) {
        // What is held goes out before the close.
        let _ = self.0.flush().await;
        Shutdown::shutdown(&mut **self.0.get_mut()).await;
    }
}

impl UniqueID for Coalesce {
    fn id(&self) -> UniqueIDType {
        self.0.get_ref().id()
    }
}

impl Ssl for Coalesce {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.0.get_ref().get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.0.get_ref().get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.0.get_ref().selected_alpn_proto()
    }
}

impl GetTimingDigest for Coalesce {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.0.get_ref().get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.0.get_ref().get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.0.get_ref().get_write_pending_time()
    }
}

impl GetProxyDigest for Coalesce {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.0.get_ref().get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.0.get_mut().set_proxy_digest(digest);
    }
}

impl GetSocketDigest for Coalesce {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.0.get_ref().get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.0.get_mut().set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for Coalesce {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.0.get_mut().try_peek(buf).await
    }
}
