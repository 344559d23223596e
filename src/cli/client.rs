//! `ApiClient`: the CLI's HTTP client for the control plane API.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::secret::Secret;
use minicloud_proxy::error_chain;

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
            .timeout(std::time::Duration::from_secs(60))
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

    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, path, None::<&()>).await.map(drop)
    }

    async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<String, ClientError> {
        let url = self
            .base
            .join(path)
            .map_err(|_| ClientError::BadUrl(format!("{}{path}", self.base)))?;
        let mut request = self
            .http
            .request(method, url.clone())
            .bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.to_string(),
            why: error_chain(&e),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| ClientError::Protocol {
            url: url.to_string(),
            why: e.to_string(),
        })?;
        if status.is_success() {
            return Ok(text);
        }
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| format!("{status}"));
        Err(ClientError::Api { status, message })
    }

    fn decode<T: DeserializeOwned>(&self, path: &str, text: &str) -> Result<T, ClientError> {
        serde_json::from_str(text).map_err(|e| ClientError::Protocol {
            url: format!("{}{path}", self.base),
            why: e.to_string(),
        })
    }
}
