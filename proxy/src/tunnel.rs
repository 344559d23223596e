//! WebSocket upgrades carried by the edge itself instead of by Pingora's proxy loop.
//!
//! pingora-proxy 0.9.1 can end an upgraded connection right after the `101` (its open bug
//! cloudflare/pingora#946): the upgrade request's empty body is queued as one "end of body"
//! task before the upstream answers, and when the upstream's `101` is read first, that task
//! is taken for the end of the tunnel. Which one comes first is a `select!` between the two,
//! and no `ProxyHttp` phase runs in between, so no hook can order them. For a WebSocket
//! request without a body the edge therefore opens the upstream connection itself, writes
//! the request with Pingora's own HTTP/1 client session, passes the answer on, and after a
//! `101` copies bytes both ways until either side ends. Every other request, and an upgrade
//! that carries a body, goes through Pingora as before.
//!
//! The upstream request is what Pingora would send (its default `WebSocketOnly` policy):
//! hop-by-hop headers and those the `Connection` header names are dropped, then
//! `Connection: Upgrade` and `Upgrade: websocket` set.

use std::net::SocketAddr;
use std::time::Duration;

use http::header;
use pingora_core::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::{Error, ErrorType, OrErr, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

/// Whether the edge carries this request itself: a WebSocket upgrade over HTTP/1.1 with no
/// request body.
pub(crate) fn wanted(session: &mut Session) -> bool {
    let req = session.req_header();
    req.version == http::Version::HTTP_11
        && session.is_upgrade_req()
        && req
            .headers
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
        && session.is_body_empty()
}

/// The request as it goes upstream, before the edge's forwarding headers are added.
pub(crate) fn upstream_request(req: &RequestHeader) -> Result<RequestHeader> {
    let mut req = req.clone();
    req.set_version(http::Version::HTTP_11);
    let nominated: Vec<String> = req
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .filter_map(|t| std::str::from_utf8(t).ok())
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for name in nominated {
        req.remove_header(name.as_str());
    }
    for name in HOP_BY_HOP {
        req.remove_header(*name);
    }
    req.insert_header(header::CONNECTION, "Upgrade")?;
    req.insert_header(header::UPGRADE, "websocket")?;
    Ok(req)
}

/// Headers that belong to one hop, never passed on (Pingora's list).
const HOP_BY_HOP: &[&str] = &[
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "connection",
    "upgrade",
    "http2-settings",
];

/// An open upstream connection with the upgrade request written to it.
pub(crate) struct Upstream(UpstreamSession);

impl Upstream {
    /// Connects to `addr` within `connect_timeout` and sends `req`. Errors are the
    /// upstream's (a 502 page).
    pub(crate) async fn open(
        addr: SocketAddr,
        connect_timeout: Duration,
        req: RequestHeader,
    ) -> Result<Self> {
        let tcp = match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(connected) => {
                connected.or_err(ErrorType::ConnectRefused, "connecting to the upstream")?
            }
            Err(_) => {
                return Error::e_explain(ErrorType::ConnectTimedout, "connecting to the upstream")
            }
        };
        // Frames are small and interactive: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        let mut session = UpstreamSession::new(Box::new(L4Stream::from(tcp)));
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(|e| e.into_up())?;
        Ok(Self(session))
    }

    /// The upstream's answer to the upgrade request.
    pub(crate) async fn response(&mut self) -> Result<Box<ResponseHeader>> {
        self.0
            .read_resp_header_parts()
            .await
            .map_err(|e| e.into_up())
    }

    /// Passes the rest on once the answer (already written downstream) is out: a refusal's
    /// body, or after a `101` the tunnel's bytes both ways until either side ends.
    pub(crate) async fn carry(mut self, session: &mut Session) -> Result<()> {
        let up = &mut self.0;
        if !up.was_upgraded() {
            // Refused: an ordinary answer, whose connection is not reused.
            session.set_keepalive(None);
            while let Some(body) = up.read_body_bytes().await.map_err(|e| e.into_up())? {
                session.write_response_body(Some(body), false).await?;
            }
            return session.write_response_body(None, true).await;
        }
        up.maybe_upgrade_body_writer();
        loop {
            tokio::select! {
                from_client = session.read_request_body() => match from_client? {
                    Some(data) => {
                        up.write_body(&data).await.map_err(|e| e.into_up())?;
                    }
                    None => {
                        // The client closed: so does the upstream side.
                        let _ = up.finish_body().await;
                        break;
                    }
                },
                from_app = up.read_body_bytes() => match from_app.map_err(|e| e.into_up())? {
                    Some(data) => session.write_response_body(Some(data), false).await?,
                    None => break,
                },
            }
        }
        up.shutdown().await;
        session.write_response_body(None, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_request_keeps_the_handshake_and_drops_hop_by_hop_headers() {
        let mut req = RequestHeader::build("GET", b"/ws", None).unwrap();
        req.insert_header("host", "live.example.com").unwrap();
        req.insert_header("connection", "keep-alive, Upgrade, X-Secret")
            .unwrap();
        req.insert_header("upgrade", "WebSocket").unwrap();
        req.insert_header("x-secret", "1").unwrap();
        req.insert_header("keep-alive", "timeout=5").unwrap();
        req.insert_header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .unwrap();
        let up = upstream_request(&req).unwrap();
        assert_eq!(up.headers["connection"], "Upgrade");
        assert_eq!(up.headers["upgrade"], "websocket");
        assert_eq!(up.headers["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(up.headers["host"], "live.example.com");
        assert!(up.headers.get("x-secret").is_none());
        assert!(up.headers.get("keep-alive").is_none());
    }
}
