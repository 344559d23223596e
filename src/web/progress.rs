//! Answering an operation: its result as JSON when it has finished, or, when the client asks
//! for `text/event-stream`, its events while it runs. The stream follows exactly one
//! operation (by [`OpId`](crate::model::OpId)) and always ends with one `result` event,
//! whatever the operation and however it fails; a call refused as busy shows only its
//! refusal, because the operation holding the app has another id.

use std::convert::Infallible;
use std::future::Future;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use super::WebError;
use crate::bus::{Bus, Event, Op};

/// Runs `operation` as `op`. Without a stream, answers `success` and its value as JSON (or
/// the error); with one, `progress` events, then `result`: `{"ok": true, "app": value}` or
/// `{"ok": false, "status": code, "error": message, …}`.
pub async fn respond<T, E>(
    bus: &Bus,
    op: Op,
    headers: &HeaderMap,
    success: StatusCode,
    operation: impl Future<Output = Result<T, E>> + Send + 'static,
) -> Result<Response, WebError>
where
    T: Serialize + Send + 'static,
    E: Into<WebError> + Send + 'static,
{
    if !wants_stream(headers) {
        let value = operation.await.map_err(Into::into)?;
        return Ok((success, Json(value)).into_response());
    }
    // Subscribed before the operation starts, so none of its events can be missed.
    let events = bus.subscribe();
    let (tx, rx) = mpsc::channel::<SseEvent>(64);
    tokio::spawn(follow(op, events, operation, tx));
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Whether the client asked for the operation's events (`Accept: text/event-stream`).
pub(super) fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// Forwards `op`'s events until the operation ends, then what it sent last, then the result.
/// Dropping `tx` at the end closes the stream.
async fn follow<T, E>(
    op: Op,
    mut events: broadcast::Receiver<Event>,
    operation: impl Future<Output = Result<T, E>>,
    tx: mpsc::Sender<SseEvent>,
) where
    T: Serialize,
    E: Into<WebError>,
{
    let send = |event: &Event| {
        let sse = SseEvent::default().event("progress").json_data(event).ok();
        let tx = tx.clone();
        async move {
            if let Some(sse) = sse {
                let _ = tx.send(sse).await;
            }
        }
    };
    tokio::pin!(operation);
    let result = loop {
        tokio::select! {
            result = &mut operation => break result,
            received = events.recv() => match received {
                Ok(event) if event.op == op.id => send(&event).await,
                // Another operation's event; or progress skipped by a slow reader.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break (&mut operation).await,
            },
        }
    };
    // Everything the operation sent happened before it returned: it is in the channel now.
    loop {
        match events.try_recv() {
            Ok(event) if event.op == op.id => send(&event).await,
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    let data = match result {
        Ok(value) => serde_json::json!({ "ok": true, "app": value }),
        Err(e) => {
            let e: WebError = e.into();
            let mut body = e.body();
            body["ok"] = false.into();
            body["status"] = e.status().as_u16().into();
            body
        }
    };
    if let Ok(event) = SseEvent::default().event("result").json_data(data) {
        let _ = tx.send(event).await;
    }
}
