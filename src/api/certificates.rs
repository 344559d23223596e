//! `/api/certificates`: each host's certificate state, and forced renewals.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::ApiError;
use crate::certs::{self, CertificateStatus, CertsError};
use crate::plane::Plane;

impl From<CertsError> for ApiError {
    fn from(e: CertsError) -> Self {
        match e {
            CertsError::Invalid(_) => Self::BadRequest(e.to_string()),
            CertsError::NotRouted { .. } => Self::NotFound(e.to_string()),
            CertsError::AcmeOff | CertsError::Limited { .. } => Self::Conflict(e.to_string()),
            CertsError::CaRoot { .. } => Self::Internal(e.to_string()),
            CertsError::Store(e) => e.into(),
        }
    }
}

pub async fn list(State(plane): State<Plane>) -> Result<Json<Vec<CertificateStatus>>, ApiError> {
    Ok(Json(certs::list_certificates(&plane)?))
}

/// Accepted: the manager orders a new certificate shortly; the old one serves until then.
pub async fn renew(
    State(plane): State<Plane>,
    Path(host): Path<String>,
) -> Result<(StatusCode, Json<CertificateStatus>), ApiError> {
    let status = certs::force_renewal(&plane, &host)?;
    tracing::info!(%host, "certificate renewal requested");
    Ok((StatusCode::ACCEPTED, Json(status)))
}
