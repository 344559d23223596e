//! RabbitMQ: per app, vhost `app_<name>` and user `app_<name>` (no tags: it cannot use the
//! management UI or API) with configure, write and read permission `.*` on that vhost only.
//! Everything goes through the management HTTP API, by [`RabbitMq::call`] alone.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::error::{root_cause, scrub};
use super::names::ServiceName;
use super::{account, app_url, Credentials, Provisioner, ServiceError};
use crate::model::name::AppName;
use crate::model::secret::Secret;
use crate::model::ServiceKind;
use crate::store::Store;

pub const SERVICE: &str = "RabbitMQ";
const API: &str = "RabbitMQ's management API";
pub const DEFAULT_PORT: u16 = 5672;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where minicloud administers RabbitMQ, and what apps are told.
#[derive(Debug, Clone)]
pub struct RabbitMqSettings {
    /// The management API's base URL, credentials taken out (so it can be shown).
    pub api: url::Url,
    /// An `administrator` user of the management API.
    pub user: String,
    pub password: Secret,
    /// `host:port` that apps reach over AMQP (`rabbitmq:5672` under docker-compose).
    pub app_host: String,
}

/// Splits `http://USER:PASS@HOST:15672` into the bare URL and its credentials (user and
/// password percent-decoded). The error never repeats the value.
pub fn parse_api_url(value: &str) -> Result<(url::Url, String, Secret), String> {
    let mut url = url::Url::parse(value).map_err(|e| {
        format!("expected http://USER:PASSWORD@HOST:15672, the management API ({e})")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("expected an http:// or https:// URL of the management API".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| "the URL's credentials are not UTF-8".to_string())
    };
    let user = decode(url.username())?;
    let password = decode(url.password().unwrap_or_default())?;
    if user.is_empty() || password.is_empty() {
        return Err(
            "the URL needs the admin's credentials: http://USER:PASSWORD@HOST:15672".into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query or fragment".into());
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok((url, user, Secret::new(password)))
}

/// The RabbitMQ provisioner. Cheap to clone.
#[derive(Clone)]
pub struct RabbitMq {
    pub(super) settings: RabbitMqSettings,
    pub(super) store: Store,
    http: reqwest::Client,
}

impl RabbitMq {
    pub fn new(settings: RabbitMqSettings, store: Store) -> Self {
        // Built once at start-up; only a TLS backend that cannot initialise fails here.
        #[allow(clippy::expect_used)]
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("a reqwest client with timeouts builds");
        Self {
            settings,
            store,
            http,
        }
    }

    /// The management API's address, as errors show it.
    pub fn address(&self) -> String {
        self.settings.api.as_str().trim_end_matches('/').to_owned()
    }

    /// Asks the management API who the admin is: is it there and the login good?
    pub async fn ping(&self) -> Result<(), ServiceError> {
        self.call(Method::GET, &["whoami"], None, false, "")
            .await
            .map(drop)
    }

    /// The one way to the management API: `METHOD <api>/api/<segments...>` (each segment
    /// percent-encoded, so the vhost `/` is `%2F`), admin credentials as basic auth, an error
    /// naming the API's address and what it said. A 404 is success when `missing_ok`.
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<serde_json::Value>,
        missing_ok: bool,
        secret: &str,
    ) -> Result<StatusCode, ServiceError> {
        self.request(method, segments, body, missing_ok, secret)
            .await
            .map(|response| response.status())
    }

    /// [`RabbitMq::call`], answering the response with its body unread.
    async fn request(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<serde_json::Value>,
        missing_ok: bool,
        secret: &str,
    ) -> Result<reqwest::Response, ServiceError> {
        let mut url = self.settings.api.clone();
        // The settings parser accepts only http(s) URLs, which always have a path.
        #[allow(clippy::expect_used)]
        url.path_segments_mut()
            .expect("http(s) URLs have a path")
            .pop_if_empty()
            .push("api")
            .extend(segments);
        let mut request = self
            .http
            .request(method, url)
            .basic_auth(&self.settings.user, Some(self.settings.password.expose()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let secrets = [secret, self.settings.password.expose()];
        let response = request
            .send()
            .await
            .map_err(|e| ServiceError::Unreachable {
                service: API,
                address: self.address(),
                why: scrub(&root_cause(&e.without_url()), &secrets),
            })?;
        let status = response.status();
        if status.is_success() || (missing_ok && status == StatusCode::NOT_FOUND) {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let said = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                let reason = v.get("reason")?.as_str()?.to_owned();
                Some(reason)
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        Err(ServiceError::Refused {
            service: API,
            address: self.address(),
            said: scrub(&format!("HTTP {status}: {said}"), &secrets),
        })
    }

    /// The app's vhost definitions (exchanges, queues, bindings, policies), as
    /// [`vhost_definitions`] keeps them from the management API's export.
    pub async fn definitions(&self, app: &AppName) -> Result<serde_json::Value, ServiceError> {
        let vhost = ServiceName::for_app(app)?;
        let response = self
            .request(
                Method::GET,
                &["definitions", vhost.as_str()],
                None,
                false,
                "",
            )
            .await?;
        let exported: serde_json::Value =
            response.json().await.map_err(|e| ServiceError::Refused {
                service: API,
                address: self.address(),
                said: format!(
                    "the definitions of {vhost} are not JSON: {}",
                    e.without_url()
                ),
            })?;
        Ok(vhost_definitions(&exported))
    }

    /// Gives the app's vhost the exchanges and queues of `definitions` (and their bindings
    /// and policies): imported into that vhost alone, and the exchanges and queues it does
    /// not name deleted. A queue on both sides keeps its messages.
    pub async fn restore_definitions(
        &self,
        app: &AppName,
        definitions: &serde_json::Value,
    ) -> Result<(), ServiceError> {
        let vhost = ServiceName::for_app(app)?;
        let wanted = vhost_definitions(definitions);
        let current = self.definitions(app).await?;
        for kind in ["queues", "exchanges"] {
            for name in names_missing(&current[kind], &wanted[kind]) {
                self.call(
                    Method::DELETE,
                    &[kind, vhost.as_str(), name.as_str()],
                    None,
                    true,
                    "",
                )
                .await?;
            }
        }
        self.call(
            Method::POST,
            &["definitions", vhost.as_str()],
            Some(wanted),
            false,
            "",
        )
        .await?;
        tracing::info!(%app, vhost = %vhost, "RabbitMQ definitions restored");
        Ok(())
    }

    async fn apply(&self, app: &AppName, fresh: bool) -> Result<Credentials, ServiceError> {
        let name = ServiceName::for_app(app)?;
        let rec = account(&self.store, app, ServiceKind::Rabbitmq, &name, fresh)?;
        let pw = rec.password.expose();
        let vhost = name.as_str();
        self.call(Method::PUT, &["vhosts", vhost], None, false, pw)
            .await?;
        // PUT on a user sets its password: the stored one wins, as with MariaDB.
        let user = json!({"password": pw, "tags": ""});
        self.call(Method::PUT, &["users", &rec.user], Some(user), false, pw)
            .await?;
        let all = json!({"configure": ".*", "write": ".*", "read": ".*"});
        self.call(
            Method::PUT,
            &["permissions", vhost, &rec.user],
            Some(all),
            false,
            pw,
        )
        .await?;
        tracing::info!(%app, vhost, "RabbitMQ vhost ensured");
        Ok(Credentials {
            user: rec.user,
            password: rec.password,
            host: self.settings.app_host.clone(),
            resource: vhost.to_owned(),
        })
    }
}

impl Provisioner for RabbitMq {
    type Grant = Credentials;
    const KIND: ServiceKind = ServiceKind::Rabbitmq;

    async fn ensure(&self, app: &AppName) -> Result<Credentials, ServiceError> {
        self.apply(app, false).await
    }

    /// `AMQP_URL` and `RABBITMQ_URL`, the same value (libraries read one or the other).
    fn env(&self, grant: &Credentials) -> BTreeMap<String, String> {
        let url = app_url("amqp", grant);
        BTreeMap::from([
            ("AMQP_URL".to_owned(), url.clone()),
            ("RABBITMQ_URL".to_owned(), url),
        ])
    }

    async fn rotate(&self, app: &AppName) -> Result<Credentials, ServiceError> {
        self.apply(app, true).await
    }

    async fn remove(&self, app: &AppName) -> Result<(), ServiceError> {
        let name = ServiceName::for_app(app)?;
        // Deleting the vhost closes its connections and drops its queues and messages.
        self.call(Method::DELETE, &["vhosts", name.as_str()], None, true, "")
            .await?;
        self.call(Method::DELETE, &["users", name.as_str()], None, true, "")
            .await?;
        self.store.delete_service(app, ServiceKind::Rabbitmq)?;
        tracing::info!(%app, vhost = %name, "RabbitMQ vhost and user deleted");
        Ok(())
    }
}

/// What of a vhost's export is the app's: its exchanges (not the built-in `amq.*` and
/// default ones), queues, bindings and policies, each without a `vhost` field, so importing
/// it can only ever reach the vhost it is imported into. Users, permissions, vhosts and
/// server-wide parameters are dropped.
pub fn vhost_definitions(exported: &serde_json::Value) -> serde_json::Value {
    let items = |kind: &str| -> Vec<serde_json::Value> {
        exported[kind]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let mut item = item.as_object()?.clone();
                item.remove("vhost");
                Some(serde_json::Value::Object(item))
            })
            .filter(|item| {
                let name = item["name"].as_str().unwrap_or_default();
                kind != "exchanges" || !(name.is_empty() || name.starts_with("amq."))
            })
            .collect()
    };
    json!({
        "exchanges": items("exchanges"),
        "queues": items("queues"),
        "bindings": items("bindings"),
        "policies": items("policies"),
    })
}

/// The names in `current` that `wanted` lacks.
fn names_missing(current: &serde_json::Value, wanted: &serde_json::Value) -> Vec<String> {
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["name"].as_str().map(str::to_owned))
            .collect()
    };
    let keep = names(wanted);
    names(current)
        .into_iter()
        .filter(|n| !keep.contains(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_keeps_only_the_apps_own_definitions_and_no_vhost() {
        let exported = json!({
            "rabbit_version": "3.12.1",
            "users": [{"name": "root", "password_hash": "x", "tags": ["administrator"]}],
            "vhosts": [{"name": "other"}],
            "permissions": [{"user": "root", "vhost": "other", "configure": ".*"}],
            "exchanges": [
                {"name": "orders", "vhost": "other", "type": "topic"},
                {"name": "amq.direct", "type": "direct"},
                {"name": "", "type": "direct"}
            ],
            "queues": [{"name": "jobs", "vhost": "other", "durable": true}],
            "bindings": [{"source": "orders", "destination": "jobs", "vhost": "other"}],
            "policies": [{"name": "ttl", "pattern": "jobs", "definition": {"message-ttl": 5}}]
        });
        let kept = vhost_definitions(&exported);
        assert_eq!(
            kept,
            json!({
                "exchanges": [{"name": "orders", "type": "topic"}],
                "queues": [{"name": "jobs", "durable": true}],
                "bindings": [{"source": "orders", "destination": "jobs"}],
                "policies": [{"name": "ttl", "pattern": "jobs", "definition": {"message-ttl": 5}}]
            })
        );
        assert!(!kept.to_string().contains("other"));
        assert_eq!(
            names_missing(
                &json!([{"name": "jobs"}, {"name": "later"}]),
                &kept["queues"]
            ),
            ["later"]
        );
    }

    #[test]
    fn api_urls_lose_their_credentials() {
        let (url, user, pw) =
            parse_api_url("http://minicloud_admin:p%40ss@127.0.0.1:15672").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:15672/");
        assert_eq!(user, "minicloud_admin");
        assert_eq!(pw.expose(), "p@ss");
        for bad in [
            "http://127.0.0.1:15672",
            "amqp://u:s3cret@h:5672",
            "http://u:@h",
            "not a url s3cret",
        ] {
            let why = parse_api_url(bad).unwrap_err();
            assert!(!why.contains("s3cret"), "{why}");
        }
    }
}
