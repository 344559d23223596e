//! A deadline for the TLS handshake, which Pingora runs before any app sees the connection
//! (under its own fixed 60 s), and the connection caps counted from the accept on TLS
//! listeners, so connections stalled in their handshake take their place.
//!
//! Pingora's pre-TLS hook ([`PreTlsProcess`]) sees each HTTPS connection just before its
//! handshake starts: [`HandshakeWatch`] notes it there and starts a timer. The guarded app's
//! first step after a handshake ([`HandshakeWatch::done`]) stops it; when the timer fires
//! first, the socket is shut down, so the handshake's next read ends and Pingora drops the
//! connection. A handshake that fails before the deadline stops its timer too: the note rides
//! on the stream as its tracer, told when the stream is dropped.
//!
//! The note also holds the connection's place under the caps ([`super::admit`]), taken in the
//! hook; one over a cap is refused there, before any handshake work. The place is given back
//! when the stream is dropped, handshake done or not.
//!
//! The socket is reached by its fd number, never by a duplicate (a duplicate would keep a
//! failed connection's socket open until the deadline). That number is safe to use because
//! the note is removed, under the same lock the timer takes to shut the socket down, before
//! Pingora closes the fd: the tracer is told first thing in the stream's `drop`.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::socket::{shutdown, Shutdown};
use pingora_core::listeners::PreTlsProcess;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::GetSocketDigest;
use pingora_core::upstreams::peer::{Tracer, Tracing};
use pingora_error::{Error, ErrorType};
use tokio::task::AbortHandle;

use super::{admit, peer_ip, Counts, Limits, Permit};

/// Handshakes under way, each with the timer that ends it at the deadline. Cheap to clone:
/// the listeners' pre-TLS hook and the guarded app share one.
#[derive(Clone)]
pub(crate) struct HandshakeWatch(Arc<Watch>);

struct Watch {
    timeout: Duration,
    pending: Mutex<Pending>,
    /// The caps each connection is counted against from its accept (none in unit tests).
    caps: Option<(Arc<Mutex<Counts>>, Limits)>,
}

/// By the socket's fd (unique among open sockets); the serial tells a later connection that
/// got the same fd number apart from an earlier one.
#[derive(Default)]
struct Pending {
    next_serial: u64,
    by_fd: HashMap<RawFd, (u64, AbortHandle)>,
}

impl HandshakeWatch {
    #[cfg(test)]
    fn new(timeout: Duration) -> Self {
        Self(Arc::new(Watch {
            timeout,
            pending: Mutex::default(),
            caps: None,
        }))
    }

    /// A watch that also counts each connection against `limits` in `counts` from its accept.
    pub(super) fn counting(limits: Limits, counts: Arc<Mutex<Counts>>) -> Self {
        Self(Arc::new(Watch {
            timeout: limits.handshake_timeout,
            pending: Mutex::default(),
            caps: Some((counts, limits)),
        }))
    }

    /// The connection on `fd` finished its handshake (or has none): its timer stops. `true`
    /// if the watch saw it start, so it is counted under the caps already.
    pub(crate) fn done(&self, fd: RawFd) -> bool {
        match self.0.lock().by_fd.remove(&fd) {
            Some((_, timer)) => {
                timer.abort();
                true
            }
            None => false,
        }
    }

    /// Notes a connection whose handshake starts now; the serial it gets names it.
    fn start(&self, fd: RawFd) -> u64 {
        let mut pending = self.0.lock();
        let serial = pending.next_serial;
        pending.next_serial += 1;
        let watch = Arc::clone(&self.0);
        // One sleeping task per handshake under way, aborted when it ends.
        let timer = tokio::spawn(async move {
            tokio::time::sleep(watch.timeout).await;
            watch.expire(fd, serial);
        });
        if let Some((_, old)) = pending.by_fd.insert(fd, (serial, timer.abort_handle())) {
            old.abort();
        }
        serial
    }
}

impl Watch {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection `serial` on `fd` is being dropped, after its handshake or in it.
    fn forget(&self, fd: RawFd, serial: u64) {
        let mut pending = self.lock();
        if pending.is(fd, serial) {
            if let Some((_, timer)) = pending.by_fd.remove(&fd) {
                timer.abort();
            }
        }
    }

    /// The deadline passed: if connection `serial` is still in its handshake, its socket is
    /// shut down. The lock is held across the call, so the fd cannot be closed meanwhile.
    fn expire(&self, fd: RawFd, serial: u64) {
        let mut pending = self.lock();
        if !pending.is(fd, serial) {
            return;
        }
        pending.by_fd.remove(&fd);
        // Debug only, like the connection caps: a flood would be a flood of log lines too.
        tracing::debug!(
            "TLS handshake not complete within {:?}: connection closed",
            self.timeout
        );
        if let Err(e) = shutdown(fd, Shutdown::Both) {
            tracing::debug!(error = %e, "could not shut down a stalled handshake's socket");
        }
    }
}

impl Pending {
    fn is(&self, fd: RawFd, serial: u64) -> bool {
        self.by_fd.get(&fd).is_some_and(|(s, _)| *s == serial)
    }
}

#[async_trait]
impl PreTlsProcess for HandshakeWatch {
    async fn process(&self, stream: &mut L4Stream) -> pingora_error::Result<()> {
        let permit = match &self.0.caps {
            None => None,
            Some((counts, limits)) => {
                let ip = peer_ip(stream.get_socket_digest());
                match admit(counts, limits, ip) {
                    Ok(permit) => Some(Arc::new(permit)),
                    Err(why) => {
                        // Debug only: a flood would otherwise be a flood of log lines too.
                        tracing::debug!(client = ?ip, refused = ?why, "connection over the cap closed");
                        return Error::e_explain(
                            ErrorType::AcceptError,
                            "connection over the cap closed before its handshake",
                        );
                    }
                }
            }
        };
        let fd = stream.as_raw_fd();
        let serial = self.start(fd);
        // Pingora sets a tracer on upstream connections only; a client connection's is free.
        stream.tracer = Some(Tracer(Box::new(Note {
            watch: Arc::clone(&self.0),
            fd,
            serial,
            _permit: permit,
        })));
        Ok(())
    }
}

/// Rides on the stream, to tell the watch when it is dropped and to hold the connection's
/// place under the caps until then.
struct Note {
    watch: Arc<Watch>,
    fd: RawFd,
    serial: u64,
    _permit: Option<Arc<Permit>>,
}

impl std::fmt::Debug for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeNote")
            .field("fd", &self.fd)
            .finish()
    }
}

impl Tracing for Note {
    fn on_connected(&self) {}

    fn on_disconnected(&self) {
        self.watch.forget(self.fd, self.serial);
    }

    fn boxed_clone(&self) -> Box<dyn Tracing> {
        Box::new(Note {
            watch: Arc::clone(&self.watch),
            fd: self.fd,
            serial: self.serial,
            _permit: self._permit.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A connected pair: the client's end, and the server's end the watch looks after.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    /// Whether the client's end is still open: a read that ends says the server closed it.
    async fn open(client: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        tokio::time::timeout(Duration::from_millis(100), client.read(&mut buf))
            .await
            .is_err()
    }

    fn pending(watch: &HandshakeWatch) -> usize {
        watch.0.lock().by_fd.len()
    }

    #[tokio::test]
    async fn a_stalled_handshake_is_shut_down_at_the_deadline() {
        let (mut client, server) = pair().await;
        let watch = HandshakeWatch::new(Duration::from_millis(200));
        let started = Instant::now();
        watch.start(server.as_raw_fd());
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0))), "not shut down: {read:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(pending(&watch), 0);
    }

    #[tokio::test]
    async fn a_finished_handshake_keeps_its_connection() {
        let (mut client, mut server) = pair().await;
        let watch = HandshakeWatch::new(Duration::from_millis(100));
        watch.start(server.as_raw_fd());
        watch.done(server.as_raw_fd());
        assert_eq!(pending(&watch), 0);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(open(&mut client).await);
        server.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        client.read_exact(&mut buf).await.unwrap();
    }

    /// A note for an earlier connection that had the same fd number neither removes the
    /// current one's nor shuts its socket down.
    #[tokio::test]
    async fn an_earlier_connection_on_the_same_fd_touches_nothing() {
        let (mut client, server) = pair().await;
        let fd = server.as_raw_fd();
        let watch = HandshakeWatch::new(Duration::from_secs(60));
        let serial = watch.start(fd);
        let earlier = serial.wrapping_sub(1);
        watch.0.expire(fd, earlier);
        watch.0.forget(fd, earlier);
        assert_eq!(pending(&watch), 1);
        assert!(open(&mut client).await);
        // Dropped in its handshake: forgotten, and its timer stopped.
        watch.0.forget(fd, serial);
        assert_eq!(pending(&watch), 0);
    }
}
