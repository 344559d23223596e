//! `UiError`: how a page fails, shown as an HTML page. Domain errors are mapped to a status
//! and a message by [`WebError`] (once, for the API and the pages alike); this only renders.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::views::{self, ErrorPage};
use crate::web::WebError;

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("This form has expired or did not come from this site. Go back, reload the page and try again.")]
    Forbidden,
    #[error("{0}")]
    BadRequest(String),
    #[error("There is no such page.")]
    NotFound,
    #[error(transparent)]
    Web(WebError),
    #[error("internal error")]
    Internal(String),
}

impl<E: Into<WebError>> From<E> for UiError {
    fn from(e: E) -> Self {
        Self::Web(e.into())
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        Self::Internal(format!("template: {e}"))
    }
}

impl UiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Web(e) => e.status(),
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (message, log_tail) = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "page failed");
                (self.to_string(), String::new())
            }
            // The API's body logs internal causes and adds a deploy's details, among them
            // the failed container's last log lines.
            Self::Web(e) => {
                let body = e.body();
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                (text(&body["error"]), text(&body["deploy"]["log_tail"]))
            }
            _ => (self.to_string(), String::new()),
        };
        let page = ErrorPage {
            css: super::assets::css_url(),
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            message,
            log_tail,
        };
        match views::render(&page) {
            Ok(html) => (status, html).into_response(),
            Err(_) => status.into_response(),
        }
    }
}

pub async fn not_found() -> UiError {
    UiError::NotFound
}
