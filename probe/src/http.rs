//! Request and response types shared by the route modules, and small response builders.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::{header, StatusCode};

pub type Request = hyper::Request<hyper::body::Incoming>;
pub type Body = BoxBody<Bytes, Infallible>;
pub type Response = hyper::Response<Body>;

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response {
    with_type(status, "text/plain; charset=utf-8", full(body))
}

pub fn json(value: &serde_json::Value) -> Response {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    with_type(StatusCode::OK, "application/json", full(body))
}

pub fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

pub fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}

pub fn bad_request(why: impl Into<String>) -> Response {
    text(StatusCode::BAD_REQUEST, format!("{}\n", why.into()))
}

/// The value of query parameter `name`, if present (no percent-decoding: probe parameters are
/// plain numbers).
pub fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if pair == name => Some(""),
            _ => None,
        })
}
