//! `POST /hooks/deploy/{app}/{secret}`: Docker Hub's webhook. The secret in the path is the
//! credential, so this sits outside the token check; anything wrong answers a bare 404.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::apps::{Apps, DeployRequest, Deployed};
use crate::model::secret::constant_time_eq;
use crate::model::{Actor, AppName};
use crate::store::AppRecord;

/// The most of a body the webhook reads, and only after the app and its secret check out:
/// Docker Hub's payload is about 1 KiB.
pub const HOOK_BODY_LIMIT: usize = 16 * 1024;

/// The part of Docker Hub's payload we read.
#[derive(serde::Deserialize)]
pub struct HubPayload {
    push_data: PushData,
}

#[derive(serde::Deserialize)]
struct PushData {
    tag: String,
}

/// Checks the app and the secret before it reads a byte of the body; until then anything
/// wrong (a bad name, an unknown app, a wrong secret, an undecodable path) is a bare 404.
pub async fn deploy(
    State(apps): State<Apps>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Body,
) -> Response {
    let not_found = || StatusCode::NOT_FOUND.into_response();
    let Ok(Path((name, secret))) = path else {
        return not_found();
    };
    let Ok(name) = AppName::try_new(name) else {
        return not_found();
    };
    let Ok(record) = apps.app_record(&name) else {
        return not_found();
    };
    if !constant_time_eq(secret.as_bytes(), record.webhook_secret.expose().as_bytes()) {
        return not_found();
    }
    // From here on the caller holds the secret: the audit log records it as the webhook.
    let mut response = accept(apps, name.clone(), record, body).await;
    response.extensions_mut().insert(Actor::Webhook(name));
    response
}

/// A push from the holder of the app's webhook secret: a bad payload is told so.
async fn accept(apps: Apps, name: AppName, record: AppRecord, body: Body) -> Response {
    let bad_payload = || {
        (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "expected Docker Hub's JSON payload with push_data.tag"})),
        )
            .into_response()
    };
    let Ok(bytes) = axum::body::to_bytes(body, HOOK_BODY_LIMIT).await else {
        return bad_payload();
    };
    let Ok(payload) = serde_json::from_slice::<HubPayload>(&bytes) else {
        return bad_payload();
    };
    let wanted = record.image.tag().unwrap_or("latest");
    if payload.push_data.tag != wanted {
        return Json(serde_json::json!({
            "status": "ignored",
            "reason": format!("pushed tag '{}' is not the app's tag '{wanted}'", payload.push_data.tag),
        }))
        .into_response();
    }
    if record.stopped {
        // The deploy operation refuses a stopped app anyway; the push is only noted, and the
        // app's reference (which names the pushed tag) deploys after `start` and `deploy`.
        tracing::info!(app = %name, tag = %wanted, "webhook push for a stopped app: noted, not deployed");
        return (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({
                "status": "stopped",
                "reason": format!("{name} is stopped: the push is noted, not deployed; start it, then deploy"),
            })),
        )
            .into_response();
    }
    // Docker Hub waits only a few seconds for an answer: deploy in the background.
    let op = apps.bus().begin(Actor::Webhook(name.clone()));
    tokio::spawn(async move {
        match apps.deploy(&op, &name, DeployRequest::default()).await {
            Ok(d) => tracing::info!(app = %name, outcome = %describe(&d), "webhook deploy"),
            Err(e) => tracing::warn!(app = %name, error = %e, "webhook deploy failed"),
        }
    });
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "deploying"})),
    )
        .into_response()
}

/// How a webhook's deploy ended, for the log.
fn describe(deployed: &Deployed) -> String {
    match deployed {
        Deployed::New(rev) => format!("deployed revision {rev}"),
        Deployed::Unchanged(rev) => format!("revision {rev} already runs this image"),
    }
}
