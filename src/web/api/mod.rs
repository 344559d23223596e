//! The JSON API under `/api`, reached through the edge at `admin.<domain>` (and on the local
//! API port). The CLI calls it; the admin pages call the same operations.
//!
//! Every route needs `Authorization: Bearer <token>`; the token's name becomes the caller's
//! [`Actor`].

mod apps;
mod certificates;
mod routes;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
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
        .fallback(|| async { WebError::NotFound("no such API endpoint".into()) })
        .layer(middleware::from_fn_with_state(state.ctx, require_token))
}

/// 200 `ok` when the control plane answers and its store writes; 503 `degraded` with the
/// store's problem (a full disk, with the space left) while it cannot write.
async fn health(State(ctx): State<Ctx>) -> (StatusCode, Json<serde_json::Value>) {
    let store = ctx.store.health();
    let (status, word) = if store.degraded {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    } else {
        (StatusCode::OK, "ok")
    };
    (
        status,
        Json(serde_json::json!({ "status": word, "store": store })),
    )
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's case does not matter
/// (RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
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
        .and_then(bearer_token);
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc ", " Bearer abc"] {
            assert_eq!(super::bearer_token(value), Some("abc"), "{value:?}");
        }
        for value in ["Basic abc", "Bearer", "Bearer  ", "abc", "Bearerabc"] {
            assert_eq!(super::bearer_token(value), None, "{value:?}");
        }
    }
}
