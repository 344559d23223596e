//! `ApiClient`: the CLI's HTTP client for the control plane API.
//!
//! Ordinary calls time out after [`CALL_TIMEOUT`]; streams (deploy progress, followed logs)
//! have no overall timeout, since a deploy may legitimately take many minutes.

use std::time::Duration;

use reqwest::{header, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::secret::Secret;
use minicloud_proxy::error_chain;

/// How long an ordinary (non-streaming) call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting may take, streams included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no API token: set MINICLOUD_TOKEN (printed by `minicloud serve` at first start) or pass --token")]
    NoToken,
    #[error(
        "'{0}' is not a URL (expected e.g. http://127.0.0.1:7780 or https://admin.example.com)"
    )]
    BadUrl(String),
    #[error("cannot reach minicloud at {url}: {why} (is `minicloud serve` running? is MINICLOUD_URL right?)")]
    Unreachable { url: String, why: String },
    #[error("{message}")]
    Api { status: StatusCode, message: String },
    #[error("unexpected answer from {url}: {why}")]
    Protocol { url: String, why: String },
}

/// A configured connection to one minicloud.
pub struct ApiClient {
    base: reqwest::Url,
    token: Secret,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(url: &str, token: Option<Secret>, insecure: bool) -> Result<Self, ClientError> {
        let token = token.ok_or(ClientError::NoToken)?;
        let base = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| ClientError::BadUrl(url.to_string()))?;
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(insecure)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: url.to_string(),
                why: e.to_string(),
            })?;
        Ok(Self { base, token, http })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let text = self.call(Method::GET, path, None::<&()>).await?;
        self.decode(path, &text)
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let text = self.call(Method::POST, path, Some(body)).await?;
        self.decode(path, &text)
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let text = self.call(Method::PUT, path, Some(body)).await?;
        self.decode(path, &text)
    }

    pub async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let text = self.call(Method::PATCH, path, Some(body)).await?;
        self.decode(path, &text)
    }

    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, path, None::<&()>).await.map(drop)
    }

    /// Like [`ApiClient::delete`], for calls that answer with a body.
    pub async fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let text = self.call(Method::DELETE, path, None::<&()>).await?;
        self.decode(path, &text)
    }

    /// Starts a call whose answer is read as it arrives, asking for `accept`, with no overall
    /// timeout. An error status is turned into [`ClientError::Api`] as for any call; a
    /// success is handed back unread.
    pub async fn open<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        accept: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let request = self
            .request(method, path, body)?
            .header(header::ACCEPT, accept);
        let response = self.send(request).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let url = response.url().to_string();
        let status = response.status();
        let text = response.text().await.map_err(|e| ClientError::Protocol {
            url,
            why: e.to_string(),
        })?;
        Err(api_error(status, &text))
    }

    /// What a failed read of a streamed answer means to a person.
    pub fn stream_error(&self, e: &reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.to_string(),
            why: format!("the connection broke: {}", error_chain(e)),
        }
    }

    fn request<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let url = self
            .base
            .join(path)
            .map_err(|_| ClientError::BadUrl(format!("{}{path}", self.base)))?;
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        Ok(request)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.to_string(),
            why: error_chain(&e),
        })
    }

    async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<String, ClientError> {
        let request = self.request(method, path, body)?.timeout(CALL_TIMEOUT);
        let response = self.send(request).await?;
        let url = response.url().to_string();
        let status = response.status();
        let text = response.text().await.map_err(|e| ClientError::Protocol {
            url,
            why: error_chain(&e),
        })?;
        if status.is_success() {
            return Ok(text);
        }
        Err(api_error(status, &text))
    }

    fn decode<T: DeserializeOwned>(&self, path: &str, text: &str) -> Result<T, ClientError> {
        serde_json::from_str(text).map_err(|e| ClientError::Protocol {
            url: format!("{}{path}", self.base),
            why: e.to_string(),
        })
    }
}

/// The API's `{"error": "..."}`, or the bare status when the body is not that. A refused
/// token is said in the CLI's words: what to check, not which header to send.
fn api_error(status: StatusCode, text: &str) -> ClientError {
    if status == StatusCode::UNAUTHORIZED {
        let message = "minicloud refused the API token: check MINICLOUD_TOKEN (or --token)".into();
        return ClientError::Api { status, message };
    }
    let message = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| format!("{status}"));
    ClientError::Api { status, message }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_refused_token_says_what_to_check() {
        let body =
            r#"{"error":"missing or invalid API token: send 'Authorization: Bearer <token>'"}"#;
        let e = super::api_error(reqwest::StatusCode::UNAUTHORIZED, body);
        assert!(e.to_string().contains("check MINICLOUD_TOKEN"), "{e}");
        let e = super::api_error(reqwest::StatusCode::CONFLICT, r#"{"error":"busy"}"#);
        assert_eq!(e.to_string(), "busy");
    }
}
