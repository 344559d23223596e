//! The JSON API under `/api`, served by the control plane and reached through the edge at
//! `admin.<domain>`. The CLI and the UI use the same operations it calls.
//!
//! Every route needs `Authorization: Bearer <token>`. Errors are JSON `{"error": "..."}`
//! with a status that says whose fault it is; internal details go to the log only.

mod certificates;
mod error;
mod routes;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};

use crate::auth;
use crate::plane::Plane;

pub use error::ApiError;

/// The whole HTTP surface of the control plane.
pub fn router(plane: Plane) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route("/routes", get(routes::list).post(routes::create))
        .route("/routes/{host}", axum::routing::delete(routes::remove))
        .route("/certificates", get(certificates::list))
        .route(
            "/certificates/{host}/renew",
            axum::routing::post(certificates::renew),
        )
        .fallback(|| async { ApiError::NotFound("no such API endpoint".into()) });
    Router::new()
        .nest("/api", api)
        .fallback(|| async { ApiError::NotFound("nothing here yet: the API is under /api".into()) })
        .layer(middleware::from_fn_with_state(plane.clone(), require_token))
        .with_state(plane)
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Lets a request through only with a valid bearer token.
async fn require_token(
    State(plane): State<Plane>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return Err(ApiError::Unauthorized);
    };
    match auth::verify(&plane.store, presented)? {
        Some(_name) => Ok(next.run(request).await),
        None => Err(ApiError::Unauthorized),
    }
}
