//! `GET /api/metrics`: the dashboard's figures as JSON (see `web::metrics`).

use axum::extract::State;
use axum::Json;

use crate::web::metrics::Report;
use crate::web::{WebError, WebState};

pub async fn report(State(state): State<WebState>) -> Result<Json<Report>, WebError> {
    Ok(Json(state.metrics.report(&state.ctx, &state.apps)?))
}
