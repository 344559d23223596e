//! The admin host's HTTP surface, composed once: the JSON API under `/api` (bearer token),
//! Docker Hub's webhook under `/hooks` (the secret in its path), and the admin app's pages
//! everywhere else (a session; see [`ui`]).
//! Errors take one JSON shape ([`WebError`]); bodies are capped at [`BODY_LIMIT`]; every
//! change an authenticated caller asks for is written to the audit log ([`audited`]).
//!
//! Handlers parse input into typed requests, call one operation with the caller's [`Actor`]
//! and answer with its result; they hold no rules of their own.
//!
//! [`Actor`]: crate::model::Actor

mod api;
mod audited;
mod dns;
mod error;
mod extract;
mod hooks;
pub mod metrics;
mod progress;
pub mod ui;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::apps::Apps;
use crate::auth::throttle::Throttle;
use crate::backups::Backups;
use crate::ctx::Ctx;

pub use error::WebError;

/// The largest request body any call accepts: the biggest real one is an environment.
pub const BODY_LIMIT: usize = 256 * 1024;

/// What handlers can extract: the context and the app operations.
#[derive(Clone)]
pub struct WebState {
    pub ctx: Ctx,
    pub apps: Apps,
    pub backups: Backups,
    /// What the dashboard and `/metrics` show; sampled by [`metrics::Metrics::run`].
    pub metrics: metrics::Metrics,
    /// Failed API token checks per client address (see `api::require_token`).
    pub token_throttle: Arc<Throttle>,
}

impl WebState {
    pub fn new(ctx: Ctx, apps: Apps) -> Self {
        let backups = Backups::new(ctx.clone(), apps.clone());
        apps.set_before_new_image(std::sync::Arc::new(backups.clone()));
        let metrics = metrics::Metrics::new(ctx.edge.clone());
        Self {
            ctx,
            apps,
            backups,
            metrics,
            token_throttle: Arc::default(),
        }
    }
}

impl axum::extract::FromRef<WebState> for Backups {
    fn from_ref(s: &WebState) -> Self {
        s.backups.clone()
    }
}

impl axum::extract::FromRef<WebState> for Ctx {
    fn from_ref(s: &WebState) -> Self {
        s.ctx.clone()
    }
}

impl axum::extract::FromRef<WebState> for Apps {
    fn from_ref(s: &WebState) -> Self {
        s.apps.clone()
    }
}

/// The whole HTTP surface of the admin host.
pub fn router(state: WebState) -> Router {
    Router::new()
        .nest("/api", api::router(state.clone()))
        // The webhook authenticates by the secret in its path (Docker Hub sends no token).
        .route("/hooks/deploy/{name}/{secret}", post(hooks::deploy))
        // Prometheus' usual path; a token or a session (see `metrics::scrape`).
        .route("/metrics", get(metrics::scrape::metrics))
        // Everything else is the admin app, behind its own sign-in.
        .fallback_service(ui::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.ctx.clone(),
            audited::record_changes,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

#[cfg(test)]
mod tests;
