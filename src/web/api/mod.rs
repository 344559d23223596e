//! The JSON API under `/api`, reached through the edge at `admin.<domain>` (and on the local
//! API port). The CLI calls it; the admin pages call the same operations.
//!
//! Every route needs `Authorization: Bearer <token>`; the token's name becomes the caller's
//! [`Actor`].

mod alerts;
mod apps;
pub(super) mod backups;
mod certificates;
mod metrics;
mod routes;
mod services;
mod settings;

use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};

use super::extract::{client_ip, LOCAL};
use super::{WebError, WebState};
use crate::auth;
use crate::ctx::Ctx;
use crate::model::{now, Actor};

/// One API route: its method, its path under `/api` and its handler.
pub(super) struct ApiRoute {
    #[cfg_attr(not(test), allow(dead_code))] // the route test reads it; `handler` holds it too
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<WebState>,
}

fn at<H, T>(method: Method, path: &'static str, handler: H) -> ApiRoute
where
    H: Handler<T, WebState>,
    T: 'static,
{
    // Only the standard methods (GET, POST, PUT, PATCH, DELETE) appear in the table below.
    #[allow(clippy::expect_used)]
    let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
    ApiRoute {
        method,
        path,
        handler: on(filter, handler),
    }
}

/// Every API route, one a line. The router is built from this table, and a test walks it to
/// check that each one refuses a caller without a token, so no route escapes that check.
pub(super) fn routes() -> Vec<ApiRoute> {
    use Method as M;
    vec![
        at(M::GET, "/health", health),
        at(M::GET, "/routes", routes::list),
        at(M::POST, "/routes", routes::create),
        at(M::DELETE, "/routes/{host}", routes::remove),
        at(M::GET, "/certificates", certificates::list),
        at(M::POST, "/certificates/{host}/renew", certificates::renew),
        at(M::GET, "/apps", apps::list),
        at(M::POST, "/apps", apps::create),
        at(M::GET, "/apps/{name}", apps::show),
        at(M::DELETE, "/apps/{name}", apps::remove),
        at(M::POST, "/apps/{name}/deploy", apps::deploy),
        at(M::POST, "/apps/{name}/rollback", apps::rollback),
        at(M::POST, "/apps/{name}/restart", apps::restart),
        at(M::POST, "/apps/{name}/stop", apps::stop),
        at(M::POST, "/apps/{name}/start", apps::start),
        at(
            M::POST,
            "/apps/{name}/rotate-credentials",
            apps::rotate_credentials,
        ),
        at(M::POST, "/apps/{name}/rotate-webhook", apps::rotate_webhook),
        at(M::GET, "/apps/{name}/deploys", apps::deploys),
        at(M::GET, "/apps/{name}/env", apps::get_env),
        at(M::PATCH, "/apps/{name}/env", apps::patch_env),
        at(M::GET, "/apps/{name}/logs", apps::logs),
        at(M::GET, "/apps/{name}/services", apps::services),
        at(M::POST, "/apps/{name}/services", services::attach),
        at(
            M::DELETE,
            "/apps/{name}/services/{service}",
            services::detach,
        ),
        at(M::POST, "/apps/{name}/domains", apps::add_domain),
        at(
            M::DELETE,
            "/apps/{name}/domains/{domain}",
            apps::remove_domain,
        ),
        at(M::GET, "/apps/{name}/backups", backups::list),
        at(M::POST, "/apps/{name}/backups", backups::run),
        at(M::POST, "/apps/{name}/backups/verify", backups::verify),
        at(M::GET, "/apps/{name}/backups/settings", backups::settings),
        at(
            M::PUT,
            "/apps/{name}/backups/settings",
            backups::change_settings,
        ),
        at(
            M::POST,
            "/apps/{name}/backups/{id}/restore",
            backups::restore,
        ),
        at(
            M::GET,
            "/apps/{name}/backups/{id}/download",
            backups::download,
        ),
        at(M::GET, "/backups", backups::list_all),
        at(M::GET, "/backups/key", backups::key),
        at(M::GET, "/backups/platform", backups::list_platform),
        at(M::POST, "/backups/platform", backups::run_platform),
        at(M::POST, "/backups/s3/test", backups::test_s3),
        at(M::GET, "/alerts/channels", alerts::channels),
        at(M::POST, "/alerts/channels", alerts::add_channel),
        at(M::DELETE, "/alerts/channels/{id}", alerts::remove_channel),
        at(M::POST, "/alerts/channels/{id}/test", alerts::test_channel),
        at(M::GET, "/incidents", alerts::incidents),
        at(M::GET, "/tokens", settings::list_tokens),
        at(M::POST, "/tokens", settings::create_token),
        at(M::DELETE, "/tokens/{name}", settings::revoke_token),
        at(M::GET, "/audit", settings::audit),
        at(M::GET, "/metrics", metrics::report),
    ]
}

pub fn router(state: WebState) -> Router<WebState> {
    routes()
        .into_iter()
        // Routes on one path merge into one method router.
        .fold(Router::new(), |router, r| router.route(r.path, r.handler))
        .fallback(|| async { WebError::NotFound("no such API endpoint".into()) })
        .layer(middleware::from_fn_with_state(state, require_token))
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

/// The caller a request's valid bearer token names, if it has one.
pub(super) fn token_caller(ctx: &Ctx, headers: &HeaderMap) -> Result<Option<Actor>, WebError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let Some(presented) = presented else {
        return Ok(None);
    };
    Ok(auth::tokens::verify(&ctx.store, presented, crate::model::now())?.map(Actor::Token))
}

/// Lets a request through only with a valid bearer token, as the token's [`Actor`].
///
/// A wrong token counts against the caller's address (the one the edge saw): after a few,
/// that address waits longer and longer (429) before any token of it is looked at, so a
/// token cannot be guessed at speed. A missing token is no guess and is not counted; the
/// loopback API port, which only local users reach, is not throttled.
async fn require_token(
    State(state): State<WebState>,
    mut request: Request,
    next: Next,
) -> Result<Response, WebError> {
    if !request.headers().contains_key(header::AUTHORIZATION) {
        return Err(WebError::Unauthorized);
    }
    let ip = client_ip(request.headers());
    let keys = [format!("ip:{ip}")];
    let throttled = ip != LOCAL;
    if throttled {
        if let Err(wait) = state.token_throttle.check(&keys, now()) {
            return Err(WebError::Throttled { wait });
        }
    }
    match token_caller(&state.ctx, request.headers())? {
        Some(actor) => {
            request.extensions_mut().insert(actor.clone());
            // On the answer too, for the audit log's layer outside this one.
            let mut response = next.run(request).await;
            response.extensions_mut().insert(actor);
            Ok(response)
        }
        None => {
            let failures = if throttled {
                state.token_throttle.failed(&keys, now())
            } else {
                0
            };
            // Never the presented value: it may be a real token with a typo.
            tracing::warn!(%ip, failures, "failed API authentication");
            Err(WebError::Unauthorized)
        }
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
