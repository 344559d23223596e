//! The JSON API under `/api`, served by the control plane and reached through the edge at
//! `admin.<domain>`. The CLI and the UI use the same operations it calls.
//!
//! Every route needs `Authorization: Bearer <token>`. Errors are JSON `{"error": "..."}`
//! with a status that says whose fault it is; internal details go to the log only.

mod apps;
mod certificates;
mod error;
mod hooks;
mod routes;

use axum::extract::{FromRef, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use crate::apps::Apps;
use crate::auth;
use crate::plane::Plane;

pub use error::ApiError;

/// What handlers can extract: the control plane and the app lifecycle.
#[derive(Clone)]
pub struct ApiState {
    pub plane: Plane,
    pub apps: Apps,
}

impl FromRef<ApiState> for Plane {
    fn from_ref(s: &ApiState) -> Self {
        s.plane.clone()
    }
}

impl FromRef<ApiState> for Apps {
    fn from_ref(s: &ApiState) -> Self {
        s.apps.clone()
    }
}

/// The whole HTTP surface of the control plane.
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route("/routes", get(routes::list).post(routes::create))
        .route("/routes/{host}", delete(routes::remove))
        .route("/certificates", get(certificates::list))
        .route("/certificates/{host}/renew", post(certificates::renew))
        .route("/apps", get(apps::list).post(apps::create))
        .route("/apps/{name}", get(apps::show).delete(apps::remove))
        .route("/apps/{name}/deploy", post(apps::deploy))
        .route("/apps/{name}/rollback", post(apps::rollback))
        .route("/apps/{name}/deploys", get(apps::deploys))
        .route(
            "/apps/{name}/env",
            get(apps::get_env).patch(apps::patch_env),
        )
        .route("/apps/{name}/logs", get(apps::logs))
        .route("/apps/{name}/services", get(apps::services))
        .route("/apps/{name}/domains", post(apps::add_domain))
        .route("/apps/{name}/domains/{domain}", delete(apps::remove_domain))
        .route("/apps/{name}/{action}", post(apps::lifecycle))
        .fallback(|| async { ApiError::NotFound("no such API endpoint".into()) })
        .layer(middleware::from_fn_with_state(
            state.plane.clone(),
            require_token,
        ));
    Router::new()
        .nest("/api", api)
        // The webhook authenticates by the secret in its path (Docker Hub sends no token).
        .route("/hooks/deploy/{name}/{secret}", post(hooks::deploy))
        .fallback(|| async { ApiError::Unauthorized })
        .with_state(state)
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
