//! Extractors whose refusals speak the one JSON error shape ([`WebError`]) instead of axum's
//! plain-text rejections, and the caller's [`Actor`].

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::WebError;
use crate::model::Actor;

/// Where a client comes from, for the throttles, the log and the audit log: the address the edge saw (it
/// replaces whatever the client sent), or `local` on the loopback API port.
pub(crate) fn client_ip(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| LOCAL.into())
}

/// [`client_ip`] of a call on the loopback API port, which only local users reach.
pub(crate) const LOCAL: &str = "local";

/// A JSON body; a refusal is a [`WebError`] (400, 413 or 415).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// A JSON body that may be absent: no body at all is `None`; a body that is there must be
/// valid.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let empty = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v == "0")
            || !req.headers().contains_key(axum::http::header::CONTENT_TYPE);
        if empty {
            return Ok(Self(None));
        }
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(Some(value)))
    }
}

/// A query string; a refusal is a 400 [`WebError`].
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Who is calling, as the authentication layer found it.
pub struct Caller(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Actor>()
            .cloned()
            .map(Self)
            .ok_or(WebError::Unauthorized)
    }
}
