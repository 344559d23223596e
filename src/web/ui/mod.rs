//! The admin app: server-rendered pages at `admin.<domain>/`, beside `/api` and `/hooks`.
//!
//! Every page but `/login` and the static files needs a session ([`session`]); every request
//! that changes something carries the session's CSRF token. Handlers ([`pages`]) parse a form,
//! call the same operation the API calls, as [`Actor::User`](crate::model::Actor), and
//! redirect (or stream the operation's progress to the page's script); templates
//! ([`views`]) only show what they are given.

mod add;
mod alerts_page;
mod app_page;
mod assets;
mod audit;
mod backups;
mod dashboard;
mod error;
mod forms;
mod logs;
mod manage;
mod pages;
mod session;
mod settings;
mod views;

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

pub use session::from_cookie as session_from_cookie;

use super::WebState;
use crate::auth::throttle::Throttle;

/// What the pages' handlers extract: the admin host's state and the sign-in throttle.
#[derive(Clone)]
pub struct UiState {
    pub web: WebState,
    pub throttle: Arc<Throttle>,
}

/// Every page and form behind the session, in one list: the router is built from it and the
/// security tests walk it, so none can be forgotten.
pub fn protected_routes() -> Vec<(&'static str, MethodRouter<UiState>)> {
    vec![
        ("/", get(dashboard::dashboard)),
        ("/logout", post(session::logout)),
        ("/logout/everywhere", post(session::logout_everywhere)),
        ("/apps", post(add::create_app)),
        ("/apps/new", get(add::new_app)),
        ("/apps/{name}", get(app_page::app)),
        ("/apps/{name}/deploy", post(pages::deploy)),
        ("/apps/{name}/rollback", post(pages::rollback)),
        ("/apps/{name}/restart", post(pages::restart)),
        ("/apps/{name}/stop", post(pages::stop)),
        ("/apps/{name}/start", post(pages::start)),
        ("/apps/{name}/env", post(pages::change_env)),
        ("/apps/{name}/env/paste", post(manage::paste_env)),
        ("/apps/{name}/services", post(manage::attach_service)),
        ("/apps/{name}/services/detach", post(manage::detach_service)),
        (
            "/apps/{name}/credentials/rotate",
            post(pages::rotate_credentials),
        ),
        ("/apps/{name}/webhook/rotate", post(pages::rotate_webhook)),
        ("/apps/{name}/domains", post(pages::add_domain)),
        ("/apps/{name}/domains/remove", post(pages::remove_domain)),
        ("/apps/{name}/delete", post(pages::delete_app)),
        ("/apps/{name}/logs", get(logs::logs)),
        ("/apps/{name}/logs/download", get(logs::download)),
        ("/apps/{name}/logs/follow", get(logs::follow)),
        ("/routes", get(pages::routes).post(pages::add_route)),
        ("/routes/remove", post(pages::remove_route)),
        ("/certificates", get(pages::certificates)),
        ("/certificates/renew", post(pages::renew_certificate)),
        ("/backups", get(backups::all)),
        (
            "/apps/{name}/backups",
            get(backups::of_app).post(backups::back_up),
        ),
        ("/apps/{name}/backups/verify", post(backups::verify)),
        (
            "/apps/{name}/backups/settings",
            post(backups::change_settings),
        ),
        ("/apps/{name}/backups/{id}/restore", post(backups::restore)),
        ("/apps/{name}/backups/{id}/download", get(backups::download)),
        ("/alerts", get(alerts_page::page)),
        ("/alerts/channels", post(alerts_page::add_channel)),
        ("/alerts/channels/test", post(alerts_page::test_channel)),
        ("/alerts/channels/remove", post(alerts_page::remove_channel)),
        ("/settings", get(settings::show)),
        ("/settings/password", post(settings::change_password)),
        ("/settings/users", post(settings::add_user)),
        ("/settings/users/remove", post(settings::remove_user)),
        ("/settings/tokens", post(settings::create_token)),
        ("/settings/tokens/revoke", post(settings::revoke_token)),
        ("/settings/2fa", post(settings::begin_two_factor)),
        ("/settings/2fa/qr.svg", get(settings::two_factor_qr)),
        ("/settings/2fa/confirm", post(settings::confirm_two_factor)),
        ("/settings/2fa/remove", post(settings::remove_two_factor)),
        ("/audit", get(audit::show)),
    ]
}

/// The admin app, as one service: the public part (sign-in, static files) and the rest
/// behind [`session::require`]. Anything else is a 404 page for the signed in, and the
/// sign-in page for strangers.
pub fn router(web: WebState) -> Router {
    let state = UiState {
        web,
        throttle: Arc::new(Throttle::default()),
    };
    let protected = protected_routes()
        .into_iter()
        .fold(Router::new(), |router, (path, route)| {
            router.route(path, route)
        })
        .fallback(error::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::require,
        ));
    Router::new()
        .route("/login", get(session::login_page).post(session::login))
        .route("/static/{file}", get(assets::serve))
        // Browsers ask on their own; there is none, and a stranger is not sent to sign in.
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NOT_FOUND }),
        )
        .merge(protected)
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// The content security policy: nothing inline, nothing from another host, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod pages_tests;
#[cfg(test)]
mod settings_tests;
#[cfg(test)]
mod tests;
