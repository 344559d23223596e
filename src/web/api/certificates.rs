//! `/api/certificates`: each host's certificate state, and forced renewals.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::certs::{self, CertificateStatus};
use crate::ctx::Ctx;
use crate::web::extract::Caller;
use crate::web::WebError;

pub async fn list(State(ctx): State<Ctx>) -> Result<Json<Vec<CertificateStatus>>, WebError> {
    Ok(Json(certs::list_certificates(&ctx)?))
}

/// Accepted: the manager orders a new certificate shortly; the old one serves until then.
pub async fn renew(
    State(ctx): State<Ctx>,
    Caller(actor): Caller,
    Path(host): Path<String>,
) -> Result<(StatusCode, Json<CertificateStatus>), WebError> {
    let op = ctx.begin(actor);
    let status = certs::force_renewal(&ctx, &op, &host)?;
    tracing::info!(%host, actor = %op.actor, "certificate renewal requested");
    Ok((StatusCode::ACCEPTED, Json(status)))
}
