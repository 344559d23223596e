//! The shared MariaDB and RabbitMQ of the test environment, as the provisioners and the apps
//! see them: provisioner factories over a fresh store, and clients that connect as an app or as
//! the admin.

use std::time::Duration;

use amqprs::channel::{BasicGetArguments, BasicPublishArguments, QueueDeclareArguments};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;

use minicloud::model::name::AppName;
use minicloud::model::secret::Secret;
use minicloud::services::{
    self, Credentials, MariaDb, MariaDbSettings, RabbitMq, RabbitMqSettings,
};
use minicloud::store::Store;

use super::env::test_env;
use super::net::Switch;
use super::{unique, wait_for};

/// Access denied for user to database (1044) or for user/password (1045).
pub const ACCESS_DENIED_DB: u16 = 1044;
pub const ACCESS_DENIED: u16 = 1045;

pub fn mariadb_admin_url() -> String {
    test_env("MINICLOUD_TEST_MARIADB_ADMIN_URL")
}

/// The management API URL, without credentials.
pub fn rabbitmq_api() -> String {
    test_env("MINICLOUD_TEST_RABBITMQ_API_URL")
}

/// The RabbitMQ admin's user and password.
pub fn rabbitmq_admin() -> (String, String) {
    (
        test_env("MINICLOUD_TEST_RABBITMQ_ADMIN_USER"),
        test_env("MINICLOUD_TEST_RABBITMQ_ADMIN_PASSWORD"),
    )
}

/// The management API URL with the admin's credentials in it, as minicloud is configured.
pub fn rabbitmq_api_url() -> String {
    let (user, pw) = rabbitmq_admin();
    rabbitmq_api().replacen("://", &format!("://{user}:{pw}@"), 1)
}

/// An app name no other test run uses: `<tag>-<random>` (the servers are shared).
pub fn app(tag: &str) -> AppName {
    AppName::try_new(unique(tag)).unwrap()
}

/// A fresh store in a temporary data dir, as a provisioner gets it.
pub struct Env {
    _tmp: tempfile::TempDir,
    pub store: Store,
    pub data_dir: std::path::PathBuf,
}

pub fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("state.redb")).unwrap();
    Env {
        data_dir: tmp.path().to_path_buf(),
        store,
        _tmp: tmp,
    }
}

pub fn mariadb_with(store: &Store, admin_url: &str) -> MariaDb {
    let (admin_url, address) = services::mariadb::parse_admin_url(admin_url).unwrap();
    MariaDb::new(
        MariaDbSettings {
            admin_url,
            address,
            // The tests run on the host, where MariaDB listens on loopback too.
            app_host: "127.0.0.1:3306".into(),
        },
        store.clone(),
    )
}

pub fn rabbitmq_with(store: &Store, api_url: &str) -> RabbitMq {
    let (api, user, password) = services::rabbitmq::parse_api_url(api_url).unwrap();
    RabbitMq::new(
        RabbitMqSettings {
            api,
            user,
            password,
            app_host: "127.0.0.1:5672".into(),
        },
        store.clone(),
    )
}

// --- MariaDB

/// minicloud with the shared MariaDB behind a [`Switch`] (to take it away mid-test) and the
/// shared RabbitMQ; apps reach both on the host gateway. `extra_env` is added.
pub async fn minicloud_with_switched_mariadb(
    extra_env: &[(&str, &str)],
) -> (super::Minicloud, Switch) {
    let gateway = test_env("MINICLOUD_TEST_HOST_GATEWAY");
    let mariadb = Switch::new("127.0.0.1:3306").await;
    let admin_url =
        mariadb_admin_url().replace("@127.0.0.1:3306", &format!("@127.0.0.1:{}", mariadb.port));
    assert!(admin_url.contains(&mariadb.port.to_string()), "{admin_url}");
    let env = [
        ("MINICLOUD_HEALTH_TIMEOUT", "30"),
        ("MINICLOUD_MARIADB_URL", admin_url.as_str()),
        ("MINICLOUD_MARIADB_APP_HOST", gateway.as_str()),
        ("MINICLOUD_RABBITMQ_API", rabbitmq_api_url().as_str()),
        ("MINICLOUD_RABBITMQ_APP_HOST", gateway.as_str()),
    ]
    .iter()
    .chain(extra_env)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    (super::Minicloud::start_with(env).await, mariadb)
}

/// Connects as the app, with these credentials, to `database`.
pub async fn db_conn(
    creds: &Credentials,
    password: &Secret,
    database: &str,
) -> mysql_async::Result<mysql_async::Conn> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(3306)
        .user(Some(creds.user.clone()))
        .pass(Some(password.expose().to_owned()))
        .db_name(Some(database.to_owned()));
    mysql_async::Conn::new(opts).await
}

pub async fn admin_conn() -> mysql_async::Conn {
    mysql_async::Conn::from_url(mariadb_admin_url())
        .await
        .unwrap()
}

pub fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

// --- RabbitMQ

/// Calls RabbitMQ's management API as the admin (`path` after `/api/`); answers the status
/// and the JSON body (`null` when there is none).
pub async fn rabbitmq_call(
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let (user, password) = rabbitmq_admin();
    let url = format!("{}/api/{path}", rabbitmq_api().trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .request(method, url)
        .basic_auth(user, Some(password));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .expect("RabbitMQ's management API answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

pub async fn amqp(
    creds: &Credentials,
    password: &Secret,
    vhost: &str,
) -> Result<Connection, amqprs::error::Error> {
    let args = OpenConnectionArguments::new("127.0.0.1", 5672, &creds.user, password.expose())
        .virtual_host(vhost)
        .finish();
    Connection::open(&args).await
}

/// Publishes `body` to queue `q` and gets one message back from it.
pub async fn round_trip(conn: &Connection, body: &str) -> String {
    let ch = conn.open_channel(None).await.unwrap();
    ch.queue_declare(QueueDeclareArguments::new("q"))
        .await
        .unwrap();
    ch.basic_publish(
        BasicProperties::default(),
        body.as_bytes().to_vec(),
        BasicPublishArguments::new("", "q"),
    )
    .await
    .unwrap();
    let got = wait_for("the message", Duration::from_secs(5), || {
        let ch = ch.clone();
        async move {
            ch.basic_get(BasicGetArguments::new("q").no_ack(true).finish())
                .await
                .unwrap()
        }
    })
    .await;
    ch.close().await.ok();
    String::from_utf8(got.2).unwrap()
}
