//! `WebError`: every way a call to the admin host fails, mapped once to a status and one JSON
//! shape, `{"error": "..."}` (plus the structured fields of a failed deploy). Domain errors
//! convert here and nowhere else; internal causes go to the log, never to the client.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::alerts::AlertError;
use crate::apps::{AppError, DeployFailure};
use crate::auth::passwords::UserError;
use crate::auth::totp::TotpError;
use crate::certs::CertsError;
use crate::docker::DockerError;
use crate::routes::RouteError;
use crate::services::ServiceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("missing or invalid API token: send 'Authorization: Bearer <token>'")]
    Unauthorized,
    /// Too many failed authentications from the caller's address.
    #[error("too many failed authentications from your address: try again in {wait} s")]
    Throttled { wait: i64 },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than this call accepts ({limit} bytes at most)")]
    TooLarge { limit: usize },
    #[error("send the request body as JSON, with 'Content-Type: application/json'")]
    UnsupportedMediaType,
    /// Understood but cannot be done: an image that will not pull, a bad manifest.
    #[error("{0}")]
    Unprocessable(String),
    /// The deploy ran and failed: what failed, why, and what keeps serving.
    #[error(transparent)]
    DeployFailed(DeployFailure),
    /// A dependency (the Docker engine, MariaDB) does not answer.
    #[error("{0}")]
    Unavailable(String),
    /// The data dir's disk is full: the change was not saved.
    #[error("{0}")]
    InsufficientStorage(String),
    /// Something on our side; the cause is logged, the client gets a generic message.
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSpace { .. } => Self::InsufficientStorage(e.to_string()),
            _ => Self::Internal(e.to_string()),
        }
    }
}

impl From<RouteError> for WebError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::Invalid(_) | RouteError::Reserved { .. } => Self::BadRequest(e.to_string()),
            RouteError::NotFound { .. } => Self::NotFound(e.to_string()),
            RouteError::HostTaken(_) => Self::Conflict(e.to_string()),
            RouteError::Store(e) => e.into(),
        }
    }
}

impl From<CertsError> for WebError {
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

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        let message = e.to_string();
        match e {
            AppError::NotFound(_) => Self::NotFound(message),
            AppError::Exists(_)
            | AppError::Busy(_)
            | AppError::HostTaken(_)
            | AppError::Stopped(_) => Self::Conflict(message),
            AppError::Invalid(_) => Self::BadRequest(message),
            AppError::DeployFailed(failure) => Self::DeployFailed(failure),
            AppError::Docker(DockerError::Unreachable { .. }) => Self::Unavailable(message),
            AppError::Docker(DockerError::NotFound { .. }) => Self::NotFound(message),
            AppError::Docker(_) => Self::Unprocessable(message),
            AppError::LowOnSpace { .. } => Self::InsufficientStorage(message),
            AppError::Store(e) => e.into(),
            AppError::Service(ServiceError::Store(e)) => e.into(),
            AppError::Service(e) if e.is_unreachable() => Self::Unavailable(message),
            AppError::Service(_) => Self::Unprocessable(message),
            AppError::PartlyRemoved(p) if p.is_unreachable() => Self::Unavailable(message),
            AppError::PartlyRemoved(_) => Self::Unprocessable(message),
        }
    }
}

impl From<AlertError> for WebError {
    fn from(e: AlertError) -> Self {
        let message = e.to_string();
        match e {
            AlertError::Invalid(_) => Self::BadRequest(message),
            AlertError::NotFound(_) => Self::NotFound(message),
            AlertError::Delivery(_) => Self::Unprocessable(message),
            AlertError::Store(e) => e.into(),
        }
    }
}

impl From<UserError> for WebError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::NoSuchUser(_) => Self::NotFound(e.to_string()),
            UserError::Refused(_) => Self::BadRequest(e.to_string()),
            UserError::Store(e) => e.into(),
        }
    }
}

impl From<TotpError> for WebError {
    fn from(e: TotpError) -> Self {
        match e {
            TotpError::WrongCode | TotpError::NothingToConfirm => Self::BadRequest(e.to_string()),
            TotpError::User(e) => e.into(),
        }
    }
}

impl From<JsonRejection> for WebError {
    fn from(e: JsonRejection) -> Self {
        match e {
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType,
            JsonRejection::BytesRejection(_) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::TooLarge {
                    limit: super::BODY_LIMIT,
                }
            }
            JsonRejection::JsonSyntaxError(_) => {
                Self::BadRequest("the request body is not valid JSON".into())
            }
            JsonRejection::JsonDataError(inner) => Self::BadRequest(format!(
                "the request body is not what this call expects: {}",
                serde_reason(&inner.body_text())
            )),
            other => Self::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for WebError {
    fn from(e: QueryRejection) -> Self {
        Self::BadRequest(format!(
            "the query string is not what this call expects: {}",
            serde_reason(&e.body_text())
        ))
    }
}

/// What serde said, without axum's preamble or the position in the text: `unknown field
/// `imgae`, expected one of `image`, `name`…`.
fn serde_reason(text: &str) -> String {
    let reason = ["target type: ", "query string: "]
        .iter()
        .find_map(|preamble| text.split_once(preamble).map(|(_, r)| r))
        .unwrap_or(text);
    let reason = reason.rfind(" at line ").map_or(reason, |at| &reason[..at]);
    reason.to_owned()
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) | Self::DeployFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body a client sees: `{"error": message}`, plus `deploy` with the structured
    /// failure of a deploy. Logs an internal cause here, where it is turned into a response.
    pub fn body(&self) -> serde_json::Value {
        if let Self::Internal(cause) = self {
            tracing::error!(error = %cause, "call failed");
        }
        let mut body = serde_json::json!({ "error": self.to_string() });
        if let Self::DeployFailed(failure) = self {
            body["deploy"] = serde_json::to_value(failure).unwrap_or_default();
        }
        body
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            Self::Throttled { wait } => header::HeaderValue::from_str(&wait.to_string()).ok(),
            _ => None,
        };
        let mut response = (status, Json(self.body())).into_response();
        if let Some(wait) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, wait);
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn serde_reasons_lose_the_preamble_and_position() {
        assert_eq!(
            super::serde_reason(
                "Failed to deserialize the JSON body into the target type: unknown field `imgae`, expected `image` at line 1 column 9"
            ),
            "unknown field `imgae`, expected `image`"
        );
        assert_eq!(
            super::serde_reason(
                "Failed to deserialize query string: invalid type: map, expected a boolean"
            ),
            "invalid type: map, expected a boolean"
        );
    }
}
