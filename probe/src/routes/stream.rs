//! `/slow?ms=N` and `/sse`: answers that take time (drain and streaming tests).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{header, StatusCode};

use crate::http::{self, Request, Response};

/// Longest wait `/slow` accepts, so a typo cannot hang a test for hours.
const MAX_SLOW_MS: u64 = 600_000;

pub async fn slow(req: &Request) -> Response {
    let ms = match http::query_param(req, "ms").map(str::parse::<u64>) {
        None => 1000,
        Some(Ok(ms)) if ms <= MAX_SLOW_MS => ms,
        Some(_) => return http::bad_request(format!("ms must be a number <= {MAX_SLOW_MS}")),
    };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    http::text(StatusCode::OK, format!("slept {ms}ms\n"))
}

/// Three events, 100 ms apart, then the stream ends.
pub fn sse() -> Response {
    let events = futures_util::stream::unfold(0u32, |n| async move {
        if n >= 3 {
            return None;
        }
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let event = format!("id: {n}\nevent: tick\ndata: {{\"n\":{n}}}\n\n");
        Some((Bytes::from(event), n + 1))
    })
    .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
    let mut resp = http::with_type(
        StatusCode::OK,
        "text/event-stream",
        BodyExt::boxed(StreamBody::new(events)),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    resp
}
