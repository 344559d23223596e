//! `/api/routes`: external routes.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderName, StatusCode};
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

/// A route change's `Server-Timing`: `publish` is the time from the store's commit to the edge
/// serving the new snapshot, in milliseconds (an in-memory swap), so it can be told apart from
/// the call as a whole, whose time is mostly the store's fsync.
type PublishTiming = [(HeaderName, String); 1];

fn publish_timing(publish: Duration) -> PublishTiming {
    [(
        HeaderName::from_static("server-timing"),
        format!("publish;dur={:.3}", publish.as_secs_f64() * 1000.0),
    )]
}

pub async fn list(State(ctx): State<Ctx>) -> Result<Json<Vec<RouteRecord>>, WebError> {
    Ok(Json(routes::list_routes(&ctx)?))
}

pub async fn create(
    State(ctx): State<Ctx>,
    Caller(actor): Caller,
    extract::Json(new): extract::Json<NewRoute>,
) -> Result<(StatusCode, PublishTiming, Json<RouteRecord>), WebError> {
    let (host, upstream) = routes::parse_route(&new.host, &new.upstream)?;
    let op = ctx.begin(actor);
    let (record, publish) = routes::set_route(&ctx, &op, host, upstream)?;
    tracing::info!(host = %record.host, upstream = %record.upstream, actor = %op.actor, "route set");
    Ok((StatusCode::CREATED, publish_timing(publish), Json(record)))
}

pub async fn remove(
    State(ctx): State<Ctx>,
    Caller(actor): Caller,
    Path(host): Path<String>,
) -> Result<(StatusCode, PublishTiming), WebError> {
    let op = ctx.begin(actor);
    let publish = routes::remove_route(&ctx, &op, &host)?;
    tracing::info!(%host, actor = %op.actor, "route removed");
    Ok((StatusCode::NO_CONTENT, publish_timing(publish)))
}
