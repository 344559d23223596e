//! `/api/routes`: external routes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::ctx::Ctx;
use crate::routes;
use crate::store::RouteRecord;
use crate::web::extract::{self, Caller};
use crate::web::WebError;

#[derive(Debug, serde::Deserialize)]
pub struct NewRoute {
    host: String,
    upstream: String,
}

pub async fn list(State(ctx): State<Ctx>) -> Result<Json<Vec<RouteRecord>>, WebError> {
    Ok(Json(routes::list_routes(&ctx)?))
}

pub async fn create(
    State(ctx): State<Ctx>,
    Caller(actor): Caller,
    extract::Json(new): extract::Json<NewRoute>,
) -> Result<(StatusCode, Json<RouteRecord>), WebError> {
    let (host, upstream) = routes::parse_route(&new.host, &new.upstream)?;
    let op = ctx.begin(actor);
    let record = routes::set_route(&ctx, &op, host, upstream)?;
    tracing::info!(host = %record.host, upstream = %record.upstream, actor = %op.actor, "route set");
    Ok((StatusCode::CREATED, Json(record)))
}

pub async fn remove(
    State(ctx): State<Ctx>,
    Caller(actor): Caller,
    Path(host): Path<String>,
) -> Result<StatusCode, WebError> {
    let op = ctx.begin(actor);
    routes::remove_route(&ctx, &op, &host)?;
    tracing::info!(%host, actor = %op.actor, "route removed");
    Ok(StatusCode::NO_CONTENT)
}
