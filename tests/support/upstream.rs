//! A small upstream app for edge tests: says who it is, echoes headers, answers slowly on
//! demand, streams server-sent events and echoes WebSocket messages.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::Query;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use futures_util::stream::{self, Stream};

/// A running upstream; dropping it stops it.
pub struct Upstream {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(serde::Deserialize)]
struct SlowParams {
    ms: u64,
}

/// Starts an upstream on a free loopback port whose `/` answers `name`.
pub async fn start(name: &'static str) -> Upstream {
    let app = Router::new()
        .route("/", get(move || async move { name }))
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let map: BTreeMap<String, String> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                Json(map)
            }),
        )
        .route(
            "/slow",
            get(move |Query(p): Query<SlowParams>| async move {
                tokio::time::sleep(Duration::from_millis(p.ms)).await;
                format!("{name} after {}ms", p.ms)
            }),
        )
        .route("/sse", get(sse))
        .route("/ws", get(ws));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("upstream serves");
    });
    Upstream { addr, task }
}

async fn sse() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = stream::unfold(0u32, |n| async move {
        if n == 3 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok(Event::default().data(format!("tick {n}"))), n + 1))
    });
    Sse::new(events)
}

async fn ws(upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            if let Message::Text(text) = msg {
                if socket
                    .send(Message::Text(format!("echo: {text}").into()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    })
}

/// An address where nothing listens.
pub fn dead_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], super::free_port()))
}
