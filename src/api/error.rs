//! `ApiError`: every way an API call fails, mapped once to a status and a JSON body.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::apps::AppError;
use crate::docker::DockerError;
use crate::routes::RouteError;
use crate::services::ServiceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid API token: send 'Authorization: Bearer <token>'")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Understood but cannot be done: an image that will not pull, a failed deploy.
    #[error("{0}")]
    Unprocessable(String),
    /// A dependency (the Docker engine) does not answer.
    #[error("{0}")]
    Unavailable(String),
    /// Something on our side; the cause is logged, the client gets a generic message.
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::Invalid(_) | RouteError::Reserved { .. } => Self::BadRequest(e.to_string()),
            RouteError::NotFound { .. } => Self::NotFound(e.to_string()),
            RouteError::Store(e) => e.into(),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let message = e.to_string();
        match e {
            AppError::NotFound(_) => Self::NotFound(message),
            AppError::Exists(_) | AppError::Busy { .. } | AppError::HostTaken { .. } => {
                Self::Conflict(message)
            }
            AppError::Invalid(_) => Self::BadRequest(message),
            AppError::DeployFailed(_) => Self::Unprocessable(message),
            AppError::Docker(DockerError::Unreachable { .. }) => Self::Unavailable(message),
            AppError::Docker(DockerError::NotFound { .. }) => Self::NotFound(message),
            AppError::Docker(_) => Self::Unprocessable(message),
            AppError::Store(e) => e.into(),
            AppError::Service(ServiceError::Store(e)) => e.into(),
            AppError::Service(e) if e.is_unreachable() => Self::Unavailable(message),
            AppError::Service(_) => Self::Unprocessable(message),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        Self::BadRequest(format!(
            "the request body is not what this call expects: {}",
            e.body_text()
        ))
    }
}

impl ApiError {
    /// The status and the message a client may see (internal causes are logged instead).
    pub fn status_and_message(&self) -> (StatusCode, String) {
        let status = match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "API call failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, self.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = self.status_and_message();
        let body = Json(serde_json::json!({ "error": message }));
        let mut response = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
