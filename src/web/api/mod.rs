//! The JSON API under `/api`, reached through the edge at `admin.<domain>` (and on the local
//! API port). The CLI calls it; the admin pages call the same operations.
//!
//! Every route needs `Authorization: Bearer <token>`; the token's name becomes the caller's
//! [`Actor`].

mod apps;
mod backups;
mod certificates;
mod routes;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::{WebError, WebState};
use crate::auth;
use crate::ctx::Ctx;
use crate::model::Actor;

pub fn router(state: WebState) -> Router<WebState> {
    Router::new()
        .route("/health", get(health))
        .route("/routes", get(routes::list).post(routes::create))
        .route("/routes/{host}", delete(routes::remove))
        .route("/certificates", get(certificates::list))
        .route("/certificates/{host}/renew", post(certificates::renew))
        .route("/apps", get(apps::list).post(apps::create))
        .route("/apps/{name}", get(apps::show).delete(apps::remove))
        .route("/apps/{name}/deploy", post(apps::deploy))
        .route("/apps/{name}/rollback", post(apps::rollback))
        .route("/apps/{name}/restart", post(apps::restart))
        .route("/apps/{name}/stop", post(apps::stop))
        .route("/apps/{name}/start", post(apps::start))
        .route(
            "/apps/{name}/rotate-credentials",
            post(apps::rotate_credentials),
        )
        .route("/apps/{name}/deploys", get(apps::deploys))
        .route(
            "/apps/{name}/env",
            get(apps::get_env).patch(apps::patch_env),
        )
        .route("/apps/{name}/logs", get(apps::logs))
        .route("/apps/{name}/services", get(apps::services))
        .route("/apps/{name}/domains", post(apps::add_domain))
        .route("/apps/{name}/domains/{domain}", delete(apps::remove_domain))
        .route(
            "/apps/{name}/backups",
            get(backups::list).post(backups::run),
        )
        .route("/apps/{name}/backups/{id}/restore", post(backups::restore))
        .route("/backups/key", get(backups::key))
        .fallback(|| async { WebError::NotFound("no such API endpoint".into()) })
        .layer(middleware::from_fn_with_state(state.ctx, require_token))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Lets a request through only with a valid bearer token, as the token's [`Actor`].
async fn require_token(
    State(ctx): State<Ctx>,
    mut request: Request,
    next: Next,
) -> Result<Response, WebError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return Err(WebError::Unauthorized);
    };
    match auth::verify(&ctx.store, presented)? {
        Some(name) => {
            request.extensions_mut().insert(Actor::Token(name));
            Ok(next.run(request).await)
        }
        None => Err(WebError::Unauthorized),
    }
}
