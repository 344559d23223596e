//! `/api/routes`: external routes.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::ApiError;
use crate::plane::Plane;
use crate::routes;
use crate::store::RouteRecord;

#[derive(Debug, serde::Deserialize)]
pub struct NewRoute {
    host: String,
    upstream: String,
}

pub async fn list(State(plane): State<Plane>) -> Result<Json<Vec<RouteRecord>>, ApiError> {
    Ok(Json(routes::list_routes(&plane)?))
}

pub async fn create(
    State(plane): State<Plane>,
    body: Result<Json<NewRoute>, JsonRejection>,
) -> Result<(StatusCode, Json<RouteRecord>), ApiError> {
    let Json(new) = body?;
    let (host, upstream) = routes::parse_route(&new.host, &new.upstream)?;
    let record = routes::set_route(&plane, host, upstream)?;
    tracing::info!(host = %record.host, upstream = %record.upstream, "route set");
    Ok((StatusCode::CREATED, Json(record)))
}

pub async fn remove(
    State(plane): State<Plane>,
    Path(host): Path<String>,
) -> Result<StatusCode, ApiError> {
    routes::remove_route(&plane, &host)?;
    tracing::info!(%host, "route removed");
    Ok(StatusCode::NO_CONTENT)
}
