//! `/api/alerts/channels` (where alerts go) and `/api/incidents` (what went wrong).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::alerts::{self, ChannelView, NewChannel};
use crate::ctx::Ctx;
use crate::store::IncidentRecord;
use crate::web::extract::{self, Caller};
use crate::web::WebError;

pub async fn channels(State(ctx): State<Ctx>) -> Result<Json<Vec<ChannelView>>, WebError> {
    Ok(Json(alerts::list_channels(&ctx)?))
}

pub async fn add_channel(
    State(ctx): State<Ctx>,
    Caller(actor): Caller,
    extract::Json(new): extract::Json<NewChannel>,
) -> Result<(StatusCode, Json<ChannelView>), WebError> {
    let view = alerts::add_channel(&ctx, new)?;
    tracing::info!(channel = %view.id, kind = view.kind, %actor, "alert channel added");
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn remove_channel(
    State(ctx): State<Ctx>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, WebError> {
    alerts::remove_channel(&ctx, &id)?;
    tracing::info!(channel = %id, %actor, "alert channel removed");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn test_channel(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<ChannelView>, WebError> {
    Ok(Json(alerts::test_channel(&ctx, &id).await?))
}

pub async fn incidents(State(ctx): State<Ctx>) -> Result<Json<Vec<IncidentRecord>>, WebError> {
    Ok(Json(alerts::list_incidents(&ctx)?))
}
