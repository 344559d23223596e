//! `/metrics` on the admin host: the [`Report`](super::Report) in Prometheus' format, for a
//! scraper with an API token or a person signed in. A stranger gets a 401, not the sign-in
//! page: a scraper cannot sign in.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use crate::web::{api, ui, WebError, WebState};

pub async fn metrics(
    State(state): State<WebState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let allowed = api::token_caller(&state.ctx, &headers)?.is_some()
        || ui::session_from_cookie(&state.ctx.store, &headers)
            .map_err(|_| WebError::Unauthorized)?
            .is_some();
    if !allowed {
        return Err(WebError::Unauthorized);
    }
    let report = state.metrics.report(&state.ctx, &state.apps)?;
    Ok((
        [
            (header::CONTENT_TYPE, super::prometheus::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        super::prometheus::render(&report),
    )
        .into_response())
}
