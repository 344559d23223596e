//! Routing: one module per endpoint group. To add a group write a module
//! with `async fn handle(req, config) -> Response` and add its arm below.

pub mod amqp;
pub mod confine;
pub mod db;
pub mod files;
pub mod info;
pub mod stream;
pub mod trouble;
pub mod ws;

use hyper::Method;

use crate::config::Config;
use crate::http::{self, Request, Response};

pub async fn handle(req: Request, config: &Config) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/") => info::root(config),
        (&Method::GET, "/healthz") => trouble::healthz(),
        (&Method::POST, "/healthz/fail") => trouble::set_failing(true),
        (&Method::POST, "/healthz/ok") => trouble::set_failing(false),
        (&Method::POST, "/exit") => trouble::exit(&req),
        (&Method::POST, "/alloc") => trouble::alloc(&req),
        (&Method::GET, "/env") => info::env(),
        (&Method::GET, "/headers") => info::headers(&req),
        (&Method::GET, "/confinement") => confine::handle(&req),
        (&Method::GET, "/slow") => stream::slow(&req).await,
        (&Method::GET, "/sse") => stream::sse(),
        (&Method::GET, "/ws") => ws::upgrade(req),
        (_, p) if p.starts_with("/file/") => files::handle(req, config).await,
        (_, "/db") => db::handle(req).await,
        (_, "/amqp") => amqp::handle(req).await,
        _ => http::not_found(),
    }
}
