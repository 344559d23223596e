//! The request path: Pingora's `ProxyHttp` phases for minicloud's edge.
//!
//! Plain HTTP answers ACME HTTP-01 challenges and redirects everything else to HTTPS. HTTPS
//! looks the host up in the current snapshot and proxies to its upstream with the forwarding
//! headers an app expects; a WebSocket upgrade is carried by [`crate::tunnel`]. Nothing here
//! blocks or takes a lock.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderValue;
use pingora_core::modules::http::HttpModules;
use pingora_core::protocols::Digest;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorSource, ErrorType, OrErr, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};

use crate::host::host_from_authority;
use crate::pages::error_page;
use crate::routes::Upstream;
use crate::Edge;

const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Settings of the request path.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// The HTTPS port clients use, for redirects (omitted from the URL when 443).
    pub public_https_port: u16,
    /// Bound on connecting to an upstream, so a dead app answers 502 quickly.
    pub connect_timeout: Duration,
    /// How long an idle pooled upstream connection is kept.
    pub upstream_idle_timeout: Duration,
    /// One line per request at INFO under the `minicloud::access` target.
    pub access_log: bool,
    /// Hosts answered only on a TLS connection whose SNI names them (421 otherwise): the
    /// admin host, so reaching it by IP or through another host's connection fails.
    pub sni_bound: Vec<String>,
    /// Hosts minicloud's own control plane serves (the admin host). A refused connect to
    /// one is tried again every [`CONTROL_PLANE_RETRY_EVERY`] for up to
    /// [`CONTROL_PLANE_RETRIES`] times: during an upgrade the control plane's port is closed
    /// for about a second, between the predecessor letting it go and the successor binding it.
    pub control_plane_hosts: Vec<String>,
}

/// How often, and how many times, a refused connect to the control plane is tried again
/// (see [`ProxySettings::control_plane_hosts`]): 3 s in all, within Pingora's own limit of 16
/// retries a request.
pub const CONTROL_PLANE_RETRY_EVERY: Duration = Duration::from_millis(200);
pub const CONTROL_PLANE_RETRIES: u8 = 15;

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            public_https_port: 443,
            connect_timeout: Duration::from_secs(3),
            upstream_idle_timeout: Duration::from_secs(60),
            access_log: true,
            sni_bound: Vec::new(),
            control_plane_hosts: Vec::new(),
        }
    }
}

/// Pingora's per-server proxy logic, reading from the [`Edge`].
pub struct EdgeProxy {
    edge: Edge,
    settings: ProxySettings,
}

impl EdgeProxy {
    pub fn new(edge: Edge, settings: ProxySettings) -> Self {
        Self { edge, settings }
    }

    fn is_control_plane(&self, host: &str) -> bool {
        self.settings.control_plane_hosts.iter().any(|h| h == host)
    }

    /// A request for an SNI-bound host on a connection made for another name, or none.
    fn misdirected(&self, session: &Session, host: &str) -> bool {
        self.settings.sni_bound.iter().any(|h| h == host)
            && !crate::sni::sni_is(session.digest(), host)
    }
}

/// What one request learned on its way through the phases.
pub struct RequestCtx {
    started: Instant,
    host: String,
    upstream: Option<Upstream>,
    request_id: RequestId,
    connect_attempts: u8,
}

/// A request's id: 128 random bits as 32 lower-case hex digits, kept on the stack (it is made
/// for every request, and only copied into the headers that carry it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; 32]);

impl RequestId {
    fn random() -> Self {
        Self::from_bits(rand::random())
    }

    fn from_bits(bits: u128) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 32];
        for (i, byte) in bits.to_be_bytes().into_iter().enumerate() {
            digits[2 * i] = HEX[usize::from(byte >> 4)];
            digits[2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        Self(digits)
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits: the fallback is never taken.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A short text formatted on the stack: an address for a header or the access log, without
/// a `String` per request. Formatting past its capacity fails (callers size it for the
/// longest address).
struct StackStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackStr<N> {
    fn format(args: fmt::Arguments<'_>) -> Result<Self, fmt::Error> {
        let mut out = Self {
            buf: [0; N],
            len: 0,
        };
        out.write_fmt(args)?;
        Ok(out)
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in: the fallback is never taken.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl<const N: usize> fmt::Write for StackStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dest = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Room for the longest socket address (`[v6%scope]:port`, 58 characters) and so any IP.
type AddrStr = StackStr<64>;

fn is_tls(digest: Option<&Digest>) -> bool {
    digest.is_some_and(|d| d.ssl_digest.is_some())
}

/// Writes a small complete response the edge makes itself.
async fn respond(
    session: &mut Session,
    status: u16,
    headers: &[(&'static str, &str)],
    content_type: &'static str,
    body: Bytes,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(headers.len() + 3))?;
    resp.insert_header("content-type", content_type)?;
    resp.insert_header("content-length", HeaderValue::from(body.len()))?;
    resp.insert_header("cache-control", "no-store")?;
    for (name, value) in headers {
        resp.insert_header(*name, *value)?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await
}

async fn respond_page(session: &mut Session, status: u16, title: &str, detail: &str) -> Result<()> {
    let page = error_page(status, title, detail);
    respond(session, status, &[], "text/html; charset=utf-8", page).await
}

/// Headers in which a client could claim to be someone else or to come through another
/// proxy; the edge drops them (and sets `X-Forwarded-For`, `-Proto`, `-Host` and
/// `X-Real-IP` itself).
const FORGEABLE_FORWARDING_HEADERS: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-client-ip",
    "x-original-forwarded-for",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
];

/// The largest request head (request line and headers) passed on: like nginx's default of
/// four 8 KiB buffers, with room to spare. Pingora reads up to 1 MiB before this applies.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The length of a request target as it was sent, without formatting it.
fn uri_len(uri: &http::Uri) -> usize {
    uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |pq| pq.as_str().len())
}

/// The size of a request head, about as it was sent.
fn head_size(req: &RequestHeader) -> usize {
    let line = req.method.as_str().len() + uri_len(&req.uri) + 12;
    req.headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + line
}

/// Path prefixes whose next-but-one segment is a credential (the webhook's
/// `/hooks/deploy/{app}/{secret}`): the access log shows it masked.
const SECRET_PATHS: &[&str] = &["/hooks/deploy/"];

/// The request path as the access log shows it: a secret segment masked.
pub fn loggable_path(path: &str) -> Cow<'_, str> {
    for prefix in SECRET_PATHS {
        if let Some(rest) = path.strip_prefix(prefix) {
            let app = rest.split('/').next().unwrap_or("");
            return Cow::Owned(format!("{prefix}{app}/***"));
        }
    }
    Cow::Borrowed(path)
}

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = RequestCtx;

    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        // The edge compresses nothing: Pingora's default adds a disabled compression module
        // whose context and filters would still cost something on every request.
        if crate::server::tuning::DEFAULT_DOWNSTREAM_MODULES {
            modules.add_module(
                pingora_core::modules::http::compression::ResponseCompressionBuilder::enable(0),
            );
        }
    }

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            host: String::new(),
            upstream: None,
            request_id: RequestId::random(),
            connect_attempts: 0,
        }
    }

    async fn early_request_filter(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        // The head is read whole: its deadline no longer applies.
        crate::guard::head_complete();
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let req = session.req_header();
        if head_size(req) > MAX_HEAD_BYTES {
            let detail = format!(
                "The request's headers are larger than {} KiB.",
                MAX_HEAD_BYTES / 1024
            );
            respond_page(session, 431, "Request Header Fields Too Large", &detail).await?;
            return Ok(true);
        }
        let authority = match req.headers.get(http::header::HOST) {
            Some(v) => Some(v.as_bytes()),
            None => req.uri.authority().map(|a| a.as_str().as_bytes()),
        };
        let host = match authority.map(host_from_authority) {
            Some(Ok(host)) => host.into_owned(),
            Some(Err(e)) => {
                respond_page(session, 400, "Bad Request", &format!("{e}.")).await?;
                return Ok(true);
            }
            None => {
                respond_page(
                    session,
                    400,
                    "Bad Request",
                    "The request has no Host header.",
                )
                .await?;
                return Ok(true);
            }
        };
        ctx.host = host;

        if !is_tls(session.digest()) {
            return self.plain_http(session, ctx).await.map(|()| true);
        }

        if self.misdirected(session, &ctx.host) {
            let detail = "This host answers only on a connection made for it (TLS SNI).";
            respond_page(session, 421, "Misdirected Request", detail).await?;
            return Ok(true);
        }

        // The snapshot's guard is dropped at the end of this block, before any `.await`.
        let (upstream, parked) = {
            let snapshot = self.edge.snapshot();
            match snapshot.routes.lookup(&ctx.host) {
                Some(upstream) => (Some(upstream), None),
                None => (
                    None,
                    snapshot
                        .routes
                        .parked(&ctx.host)
                        .map(|why| format!("{why}.")),
                ),
            }
        };
        match (upstream, parked) {
            (Some(upstream), _) => {
                ctx.upstream = Some(upstream);
                if crate::tunnel::wanted(session) {
                    self.tunnel(session, ctx).await?;
                    return Ok(true);
                }
                Ok(false)
            }
            // A host with an owner that nothing serves now (a stopped app).
            (None, Some(detail)) => {
                respond_page(session, 503, "Service Unavailable", &detail).await?;
                Ok(true)
            }
            (None, None) => {
                let detail = "No app is served at this address. If it is yours, add a route \
                              or a domain for it in minicloud.";
                respond_page(session, 404, "Not Found", detail).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        // The route table may have changed since request_filter (a retry after a failed
        // connect): look again so a retry goes to the host's current upstream.
        if ctx.connect_attempts > 0 {
            if self.is_control_plane(&ctx.host) {
                tokio::time::sleep(CONTROL_PLANE_RETRY_EVERY).await;
            }
            if let Some(upstream) = self.edge.snapshot().routes.lookup(&ctx.host) {
                ctx.upstream = Some(upstream);
            }
        }
        let Some(Upstream(addr)) = ctx.upstream else {
            return Error::e_explain(ErrorType::InternalError, "no upstream chosen");
        };
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(self.settings.connect_timeout);
        peer.options.total_connection_timeout = Some(self.settings.connect_timeout);
        peer.options.idle_timeout = Some(self.settings.upstream_idle_timeout);
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // One retry at most: enough to ride over a route swapped mid-request, never a storm
        // of connects to a dead app (Pingora would otherwise retry up to 16 times). The
        // control plane's port, refused, is waited for: an upgrade closes it for a second.
        ctx.connect_attempts += 1;
        let waiting_for_control_plane = e.etype() == &ErrorType::ConnectRefused
            && ctx.connect_attempts <= CONTROL_PLANE_RETRIES
            && self.is_control_plane(&ctx.host);
        if waiting_for_control_plane {
            e.set_retry(true);
        } else if ctx.connect_attempts > 1 {
            e.set_retry(false);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // The edge is the first hop: what clients claim about the hops before it is replaced
        // or dropped, never passed on.
        for name in FORGEABLE_FORWARDING_HEADERS {
            upstream_request.remove_header(*name);
        }
        if let Some(ip) = session.client_addr().and_then(|a| a.as_inet()) {
            if let Ok(ip) = AddrStr::format(format_args!("{}", ip.ip())) {
                let ip = HeaderValue::from_bytes(ip.as_bytes())
                    .explain_err(ErrorType::InternalError, |_| "client address")?;
                upstream_request.insert_header("x-forwarded-for", ip.clone())?;
                upstream_request.insert_header("x-real-ip", ip)?;
            }
        }
        upstream_request.insert_header("x-forwarded-proto", HeaderValue::from_static("https"))?;
        // The Host header, when it is already the bare host, is passed on as it came (a
        // shared reference to the request's bytes, no copy).
        let host_header = upstream_request.headers.get(http::header::HOST).cloned();
        match host_header {
            Some(value) if value.as_bytes() == ctx.host.as_bytes() => {
                upstream_request.insert_header("x-forwarded-host", value)?;
            }
            Some(_) => upstream_request.insert_header("x-forwarded-host", ctx.host.as_str())?,
            None => {
                upstream_request.insert_header("x-forwarded-host", ctx.host.as_str())?;
                // An h2 request carries :authority only; HTTP/1.1 upstreams need Host.
                upstream_request.insert_header(http::header::HOST, ctx.host.as_str())?;
            }
        }
        upstream_request.insert_header("x-request-id", ctx.request_id.as_str())?;
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream_response.insert_header("x-request-id", ctx.request_id.as_str())?;
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        // Only write a page if nothing was sent yet; otherwise the connection just closes.
        if code > 0 && session.response_written().is_none() {
            let (title, detail) = match code {
                502 => (
                    "Bad Gateway",
                    "The app behind this address did not answer. It may be starting, \
                     restarting or down; try again in a moment.",
                ),
                400 => ("Bad Request", "The request could not be read."),
                _ => ("Error", "The request could not be completed."),
            };
            if let Err(write_err) = respond_page(session, code, title, detail).await {
                tracing::debug!(error = %write_err, "could not send error page");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        self.edge
            .metrics()
            .record(&ctx.host, status, ctx.started.elapsed());
        if !self.settings.access_log {
            return;
        }
        let req = session.req_header();
        let upstream = ctx
            .upstream
            .and_then(|u| AddrStr::format(format_args!("{u}")).ok());
        tracing::info!(
            target: "minicloud::access",
            host = %ctx.host,
            method = %req.method,
            path = %loggable_path(req.uri.path()),
            status,
            upstream = upstream.as_ref().map_or("-", AddrStr::as_str),
            duration_ms = ctx.started.elapsed().as_secs_f64() * 1000.0,
            request_id = %ctx.request_id,
            error = e.map(|e| e.to_string()),
        );
    }
}

impl EdgeProxy {
    /// A WebSocket upgrade, carried by the edge rather than Pingora's proxy loop (see
    /// [`crate::tunnel`]), with the same request and response filters.
    async fn tunnel(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let Some(Upstream(addr)) = ctx.upstream else {
            return Error::e_explain(ErrorType::InternalError, "no upstream chosen");
        };
        let mut req = crate::tunnel::upstream_request(session.req_header())?;
        self.upstream_request_filter(session, &mut req, ctx).await?;
        let mut upstream =
            crate::tunnel::Upstream::open(addr, self.settings.connect_timeout, req).await?;
        let mut resp = upstream.response().await?;
        self.response_filter(session, &mut resp, ctx).await?;
        session.write_response_header(resp, false).await?;
        upstream.carry(session).await
    }

    /// The HTTP port: ACME challenges, else a permanent redirect to HTTPS.
    async fn plain_http(&self, session: &mut Session, ctx: &RequestCtx) -> Result<()> {
        let path = session.req_header().uri.path();
        if let Some(token) = path.strip_prefix(ACME_CHALLENGE_PREFIX) {
            let answer = self.edge.snapshot().challenges.get(token).cloned();
            return match answer {
                Some(key_auth) => {
                    respond(session, 200, &[], "text/plain", Bytes::from(key_auth)).await
                }
                None => respond_page(session, 404, "Not Found", "Unknown ACME challenge.").await,
            };
        }
        let path_and_query = session
            .req_header()
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str());
        let location = match self.settings.public_https_port {
            443 => format!("https://{}{}", ctx.host, path_and_query),
            port => format!("https://{}:{}{}", ctx.host, port, path_and_query),
        };
        respond(
            session,
            308,
            &[("location", &location)],
            "text/plain",
            Bytes::from(format!("Redirecting to {location}\n")),
        )
        .await
    }
}

#[cfg(test)]
mod security_tests {
    use super::*;

    #[test]
    fn a_webhook_secret_never_reaches_the_access_log() {
        assert_eq!(
            loggable_path("/hooks/deploy/blog/0123456789abcdef"),
            "/hooks/deploy/blog/***"
        );
        assert_eq!(
            loggable_path("/hooks/deploy/blog/s/extra"),
            "/hooks/deploy/blog/***"
        );
        assert_eq!(loggable_path("/hooks/deploy/"), "/hooks/deploy//***");
        assert_eq!(loggable_path("/api/apps/blog"), "/api/apps/blog");
    }

    #[test]
    fn a_request_id_is_its_bits_in_hex() {
        for bits in [
            0,
            1,
            0xdead_beef,
            u128::MAX,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ] {
            assert_eq!(RequestId::from_bits(bits).as_str(), format!("{bits:032x}"));
        }
        assert_ne!(RequestId::random(), RequestId::random());
    }

    #[test]
    fn the_longest_address_fits_on_the_stack() {
        let addr = std::net::SocketAddrV6::new(
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
            65535,
            0,
            u32::MAX,
        );
        let formatted = AddrStr::format(format_args!("{addr}")).unwrap();
        assert_eq!(formatted.as_str(), addr.to_string());
        assert!(StackStr::<4>::format(format_args!("{addr}")).is_err());
    }

    #[test]
    fn uri_len_is_the_length_of_the_target_as_sent() {
        for target in ["/", "/a/b?c=d", "http://example.com:8080/x?y", "*"] {
            let uri: http::Uri = target.parse().unwrap();
            assert_eq!(uri_len(&uri), target.len(), "{target}");
        }
    }

    #[test]
    fn head_size_counts_every_header() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        let small = head_size(&req);
        req.append_header("x-a", "a".repeat(MAX_HEAD_BYTES))
            .unwrap();
        assert!(head_size(&req) > MAX_HEAD_BYTES);
        assert!(small < 100);
    }
}
