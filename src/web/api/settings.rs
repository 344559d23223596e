//! `/api/tokens` (named API tokens: list, create, revoke) and `/api/audit` (who did what).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::audit::AuditQuery;
use crate::auth::tokens::{self, TokenInfo};
use crate::ctx::Ctx;
use crate::model::now;
use crate::store::AuditRecord;
use crate::web::extract::{self, Caller, Query};
use crate::web::WebError;

pub async fn list_tokens(State(ctx): State<Ctx>) -> Result<Json<Vec<TokenInfo>>, WebError> {
    Ok(Json(tokens::list(&ctx.store, now())?))
}

#[derive(Debug, serde::Deserialize)]
pub struct NewToken {
    name: String,
    /// Days until it expires; absent: never.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// 201 with the token itself: the only time anybody sees it.
pub async fn create_token(
    State(ctx): State<Ctx>,
    Caller(actor): Caller,
    extract::Json(new): extract::Json<NewToken>,
) -> Result<(StatusCode, Json<serde_json::Value>), WebError> {
    let (token, info) = tokens::create(&ctx.store, &new.name, new.expires_in_days, now())?;
    tracing::info!(token = %info.name, %actor, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "name": info.name,
            "token": token.expose(),
            "created_at": info.created_at,
            "expires_at": info.expires_at,
        })),
    ))
}

pub async fn revoke_token(
    State(ctx): State<Ctx>,
    Caller(actor): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, WebError> {
    tokens::revoke(&ctx.store, &name)?;
    tracing::info!(token = %name, %actor, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Newest first; filters as in [`AuditQuery`].
pub async fn audit(
    State(ctx): State<Ctx>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditRecord>>, WebError> {
    let (filter, limit) = query.filter(now()).map_err(WebError::BadRequest)?;
    Ok(Json(ctx.store.audit(&filter, limit)?))
}
