//! The services layer against the real MariaDB and RabbitMQ that `scripts/test-env.sh` starts:
//! idempotent ensure, working and isolated credentials, rotation, removal, refusal of bad names
//! and clear errors when a service is down. Nothing is skipped: without the services these
//! tests fail. Each test uses its own app names (the servers are shared).

mod support;

use std::collections::BTreeSet;

use amqprs::channel::{BasicGetArguments, BasicPublishArguments, QueueDeclareArguments};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;
use mysql_async::prelude::Queryable;

use minicloud::model::manifest::Need;
use minicloud::model::name::AppName;
use minicloud::model::secret::Secret;
use minicloud::model::ServiceKind;
use minicloud::services::{
    self, Credentials, MariaDb, MariaDbSettings, Provisioner, RabbitMq, RabbitMqSettings,
    ServiceError, ServiceName, Services,
};
use minicloud::store::Store;

/// A variable of the test environment: the process environment (as `scripts/test.sh` sets it),
/// else the env file `scripts/test-env.sh` writes.
fn test_env(name: &str) -> String {
    if let Ok(v) = std::env::var(name) {
        return v;
    }
    let dir = std::env::var("MINICLOUD_TEST_ENV_DIR").unwrap_or_else(|_| {
        format!(
            "{}/minicloud-test-env",
            std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into())
        )
    });
    let file = std::fs::read_to_string(format!("{dir}/test-env.env")).unwrap_or_default();
    file.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .unwrap_or_else(|| {
            panic!("{name} is not set: run scripts/test-env.sh (MariaDB and RabbitMQ are required)")
        })
}

fn mariadb_admin_url() -> String {
    test_env("MINICLOUD_TEST_MARIADB_ADMIN_URL")
}

/// The management API URL with the admin's credentials in it, as minicloud is configured.
fn rabbitmq_api_url() -> String {
    let api = test_env("MINICLOUD_TEST_RABBITMQ_API_URL");
    let user = test_env("MINICLOUD_TEST_RABBITMQ_ADMIN_USER");
    let pw = test_env("MINICLOUD_TEST_RABBITMQ_ADMIN_PASSWORD");
    api.replacen("://", &format!("://{user}:{pw}@"), 1)
}

/// A name no other test run uses: `<tag>-<random>`.
fn app(tag: &str) -> AppName {
    AppName::try_new(format!("{tag}-{:08x}", rand::random::<u32>())).unwrap()
}

struct Env {
    _tmp: tempfile::TempDir,
    store: Store,
    data_dir: std::path::PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("state.redb")).unwrap();
    Env {
        data_dir: tmp.path().to_path_buf(),
        store,
        _tmp: tmp,
    }
}

fn mariadb_with(store: &Store, admin_url: &str) -> MariaDb {
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

fn rabbitmq_with(store: &Store, api_url: &str) -> RabbitMq {
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

// --- MariaDB as the app sees it

/// Connects as the app, with these credentials, to `database`.
async fn db_conn(
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

async fn admin_conn() -> mysql_async::Conn {
    mysql_async::Conn::from_url(mariadb_admin_url())
        .await
        .unwrap()
}

fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// Access denied for user to database (1044) or for user/password (1045).
const ACCESS_DENIED_DB: u16 = 1044;
const ACCESS_DENIED: u16 = 1045;

#[tokio::test]
async fn mariadb_ensure_is_idempotent_and_the_credentials_work() {
    let env = env();
    let db = mariadb_with(&env.store, &mariadb_admin_url());
    let a = app("db");
    let first = db.ensure(&a).await.unwrap();
    assert_eq!(first.user, format!("app_{}", a.as_str().replace('-', "_")));
    assert_eq!(first.resource, first.user);
    assert!(first.password.expose().len() >= 32);
    let url = db.env(&first)["DATABASE_URL"].clone();
    assert_eq!(
        url,
        format!(
            "mysql://{0}:{1}@127.0.0.1:3306/{0}",
            first.user,
            first.password.expose()
        )
    );
    // The app's URL works as given.
    let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
    conn.query_drop("CREATE TABLE t (v TEXT)").await.unwrap();
    conn.query_drop("INSERT INTO t VALUES ('kept')")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();

    let again = db.ensure(&a).await.unwrap();
    assert_eq!(again, first, "a second ensure changes nothing");
    let mut conn = db_conn(&again, &again.password, &again.resource)
        .await
        .unwrap();
    let rows: Vec<String> = conn.query("SELECT v FROM t").await.unwrap();
    assert_eq!(rows, ["kept"]);
    conn.disconnect().await.unwrap();

    // The store holds the password; the server is made to agree with it, even after a change
    // by hand.
    let stored = env
        .store
        .service(&a, ServiceKind::Mariadb)
        .unwrap()
        .unwrap();
    assert_eq!(stored.password, first.password);
    let mut admin = admin_conn().await;
    admin
        .query_drop(format!(
            "ALTER USER '{}'@'%' IDENTIFIED BY 'changed-by-hand'",
            first.user
        ))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    db.ensure(&a).await.unwrap();
    db_conn(&first, &first.password, &first.resource)
        .await
        .unwrap()
        .disconnect()
        .await
        .unwrap();

    db.remove(&a).await.unwrap();
}

#[tokio::test]
async fn mariadb_apps_cannot_reach_each_other() {
    let env = env();
    let db = mariadb_with(&env.store, &mariadb_admin_url());
    let (a, b) = (app("iso-a"), app("iso-b"));
    let ca = db.ensure(&a).await.unwrap();
    let cb = db.ensure(&b).await.unwrap();
    let mut conn_b = db_conn(&cb, &cb.password, &cb.resource).await.unwrap();
    conn_b
        .query_drop("CREATE TABLE secret (v TEXT)")
        .await
        .unwrap();
    conn_b.disconnect().await.unwrap();

    // A's credentials on B's database: refused at connect.
    let err = db_conn(&ca, &ca.password, &cb.resource).await.unwrap_err();
    assert_eq!(server_code(&err), Some(ACCESS_DENIED_DB), "{err}");
    // Connected to its own database, A can neither switch to nor read B's.
    let mut conn_a = db_conn(&ca, &ca.password, &ca.resource).await.unwrap();
    let err = conn_a
        .query_drop(format!("USE `{}`", cb.resource))
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(ACCESS_DENIED_DB), "{err}");
    let err = conn_a
        .query_drop(format!("SELECT * FROM `{}`.secret", cb.resource))
        .await
        .unwrap_err();
    assert!(matches!(server_code(&err), Some(1142 | 1044)), "{err}");
    // Nor create another database, nor see B's in the list.
    let err = conn_a
        .query_drop("CREATE DATABASE app_intruder")
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(ACCESS_DENIED_DB), "{err}");
    let dbs: Vec<String> = conn_a.query("SHOW DATABASES").await.unwrap();
    assert!(!dbs.contains(&cb.resource), "{dbs:?}");
    conn_a.disconnect().await.unwrap();
    // B's user with A's password: refused.
    let err = db_conn(&cb, &ca.password, &cb.resource).await.unwrap_err();
    assert_eq!(server_code(&err), Some(ACCESS_DENIED), "{err}");

    db.remove(&a).await.unwrap();
    db.remove(&b).await.unwrap();
}

#[tokio::test]
async fn mariadb_rotate_replaces_the_password_and_keeps_the_data() {
    let env = env();
    let db = mariadb_with(&env.store, &mariadb_admin_url());
    let a = app("rot");
    let old = db.ensure(&a).await.unwrap();
    let mut conn = db_conn(&old, &old.password, &old.resource).await.unwrap();
    conn.query_drop("CREATE TABLE t (v INT)").await.unwrap();
    conn.query_drop("INSERT INTO t VALUES (7)").await.unwrap();
    conn.disconnect().await.unwrap();

    let new = db.rotate(&a).await.unwrap();
    assert_ne!(new.password, old.password);
    assert_eq!(new.user, old.user);
    let err = db_conn(&old, &old.password, &old.resource)
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(ACCESS_DENIED), "{err}");
    let mut conn = db_conn(&new, &new.password, &new.resource).await.unwrap();
    let rows: Vec<i32> = conn.query("SELECT v FROM t").await.unwrap();
    assert_eq!(rows, [7]);
    conn.disconnect().await.unwrap();
    let stored = env
        .store
        .service(&a, ServiceKind::Mariadb)
        .unwrap()
        .unwrap();
    assert_eq!(stored.password, new.password);
    assert!(stored.rotated_at.is_some());

    db.remove(&a).await.unwrap();
}

#[tokio::test]
async fn dangerous_names_are_refused_before_any_sql() {
    let hostile = [
        "x`; DROP DATABASE mysql; --",
        "x'@'%' IDENTIFIED BY 'p",
        "x\\",
        "a b",
        "A",
        "caf\u{e9}",
        "../etc",
    ];
    let mut admin = admin_conn().await;
    let before: Vec<String> = admin.query("SHOW DATABASES").await.unwrap();
    for name in hostile {
        // Neither the app name rule nor the one derivation lets them through ...
        assert!(AppName::try_new(name).is_err(), "{name:?}");
        let err = ServiceName::derive(name).unwrap_err();
        assert!(matches!(err, ServiceError::BadName { .. }), "{err}");
        // ... nor can one be smuggled in as stored data.
        let json = serde_json::to_string(name).unwrap();
        assert!(serde_json::from_str::<AppName>(&json).is_err(), "{name:?}");
    }
    let after: Vec<String> = admin.query("SHOW DATABASES").await.unwrap();
    assert_eq!(before.len(), after.len(), "no database appeared");
    admin.disconnect().await.unwrap();
}

// --- RabbitMQ as the app sees it

async fn amqp(
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
async fn round_trip(conn: &Connection, body: &str) -> String {
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
    let got = support::wait_for("the message", std::time::Duration::from_secs(5), || {
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

#[tokio::test]
async fn rabbitmq_ensure_isolate_rotate_remove() {
    let env = env();
    let mq = rabbitmq_with(&env.store, &rabbitmq_api_url());
    let (a, b) = (app("mq-a"), app("mq-b"));
    let ca = mq.ensure(&a).await.unwrap();
    assert_eq!(mq.ensure(&a).await.unwrap(), ca, "idempotent");
    let cb = mq.ensure(&b).await.unwrap();
    let vars = mq.env(&ca);
    assert_eq!(vars["AMQP_URL"], vars["RABBITMQ_URL"]);
    assert_eq!(
        vars["AMQP_URL"],
        format!(
            "amqp://{0}:{1}@127.0.0.1:5672/{0}",
            ca.user,
            ca.password.expose()
        )
    );

    // A's credentials work on A's vhost ...
    let conn = amqp(&ca, &ca.password, &ca.resource).await.unwrap();
    assert_eq!(round_trip(&conn, "hello").await, "hello");
    conn.close().await.ok();
    // ... and are refused on B's, and on the default vhost.
    assert!(amqp(&ca, &ca.password, &cb.resource).await.is_err());
    assert!(amqp(&ca, &ca.password, "/").await.is_err());
    // An app user has no tags: the management API refuses it.
    let api = test_env("MINICLOUD_TEST_RABBITMQ_API_URL");
    let status = reqwest::Client::new()
        .get(format!("{api}/api/vhosts"))
        .basic_auth(&ca.user, Some(ca.password.expose()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);

    // Rotate: the old password stops working, the new one works.
    let new = mq.rotate(&a).await.unwrap();
    assert_ne!(new.password, ca.password);
    assert!(amqp(&ca, &ca.password, &ca.resource).await.is_err());
    let conn = amqp(&new, &new.password, &new.resource).await.unwrap();
    assert_eq!(round_trip(&conn, "after rotate").await, "after rotate");
    conn.close().await.ok();

    // Remove A: its vhost and user are gone; B's work.
    mq.remove(&a).await.unwrap();
    mq.remove(&a).await.unwrap();
    assert!(amqp(&new, &new.password, &new.resource).await.is_err());
    let admin = reqwest::Client::new();
    let (user, pw) = (
        test_env("MINICLOUD_TEST_RABBITMQ_ADMIN_USER"),
        test_env("MINICLOUD_TEST_RABBITMQ_ADMIN_PASSWORD"),
    );
    for path in [
        format!("vhosts/{}", new.resource),
        format!("users/{}", new.user),
    ] {
        let status = admin
            .get(format!("{api}/api/{path}"))
            .basic_auth(&user, Some(&pw))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "{path}");
    }
    assert!(env
        .store
        .service(&a, ServiceKind::Rabbitmq)
        .unwrap()
        .is_none());
    let conn = amqp(&cb, &cb.password, &cb.resource).await.unwrap();
    assert_eq!(round_trip(&conn, "b").await, "b");
    conn.close().await.ok();
    mq.remove(&b).await.unwrap();
}

// --- the facade: provision and remove with data

#[tokio::test]
async fn provision_gives_every_need_and_remove_takes_only_that_app() {
    let env = env();
    let config = minicloud::config::Sources::new()
        .env([
            ("MINICLOUD_DATA_DIR", env.data_dir.to_str().unwrap()),
            ("MINICLOUD_MARIADB_URL", mariadb_admin_url().as_str()),
            ("MINICLOUD_MARIADB_APP_HOST", "127.0.0.1"),
            ("MINICLOUD_RABBITMQ_API", rabbitmq_api_url().as_str()),
            ("MINICLOUD_RABBITMQ_APP_HOST", "127.0.0.1"),
        ])
        .resolve()
        .unwrap();
    let services = Services::new(config.services(), env.store.clone());
    let needs = BTreeSet::from(Need::ALL);
    let (a, b) = (app("rm-a"), app("rm-b"));
    let pa = services.provision(&a, &needs).await.unwrap();
    let pb = services.provision(&b, &needs).await.unwrap();
    let keys: Vec<&String> = pa.env.keys().collect();
    assert_eq!(keys, ["AMQP_URL", "DATABASE_URL", "RABBITMQ_URL"]);
    let dir_a = pa.data_dir.clone().unwrap();
    assert_eq!(dir_a, env.data_dir.join("apps").join(a.as_str()));
    std::fs::write(dir_a.join("f"), "a").unwrap();
    std::fs::write(pb.data_dir.as_ref().unwrap().join("f"), "b").unwrap();
    assert!(!format!("{pa:?}").contains(
        env.store
            .service(&a, ServiceKind::Mariadb)
            .unwrap()
            .unwrap()
            .password
            .expose()
    ));

    services.remove(&a).await.unwrap();
    let name_a = ServiceName::for_app(&a).unwrap().to_string();
    let name_b = ServiceName::for_app(&b).unwrap().to_string();
    let mut admin = admin_conn().await;
    let dbs: Vec<String> = admin.query("SHOW DATABASES").await.unwrap();
    let users: Vec<String> = admin.query("SELECT User FROM mysql.user").await.unwrap();
    admin.disconnect().await.unwrap();
    assert!(!dbs.contains(&name_a) && !users.contains(&name_a));
    assert!(dbs.contains(&name_b) && users.contains(&name_b));
    assert!(!dir_a.exists());
    assert_eq!(
        std::fs::read_to_string(pb.data_dir.as_ref().unwrap().join("f")).unwrap(),
        "b"
    );
    assert!(env.store.services(&a).unwrap().is_empty());
    assert_eq!(env.store.services(&b).unwrap().len(), 2);
    // B still works.
    let mut conn = mysql_async::Conn::from_url(pb.env["DATABASE_URL"].clone())
        .await
        .unwrap();
    conn.query_drop("SELECT 1").await.unwrap();
    conn.disconnect().await.unwrap();

    services.remove(&b).await.unwrap();

    // Without the services configured, a need fails before anything is made, naming the
    // setting.
    let bare = minicloud::config::Sources::new()
        .env([("MINICLOUD_DATA_DIR", env.data_dir.to_str().unwrap())])
        .resolve()
        .unwrap();
    let err = Services::new(bare.services(), env.store.clone())
        .provision(&a, &needs)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("MINICLOUD_MARIADB_URL"), "{err}");
    assert!(!env.data_dir.join("apps").join(a.as_str()).exists());
}

// --- failures name the service and its address, never a password

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    support::free_port()
}

#[tokio::test]
async fn unreachable_or_refusing_services_are_named_without_credentials() {
    let env = env();
    let a = app("down");
    let port = closed_port();
    let db = mariadb_with(
        &env.store,
        &format!("mysql://root:hunter2secret@127.0.0.1:{port}"),
    );
    let err = db.ensure(&a).await.unwrap_err();
    let text = err.to_string();
    eprintln!("{text}");
    assert!(err.is_unreachable(), "{text}");
    assert!(
        text.starts_with(&format!("cannot reach MariaDB at 127.0.0.1:{port}: ")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("hunter2secret"), "{text}");

    let mq = rabbitmq_with(
        &env.store,
        &format!("http://admin:hunter2secret@127.0.0.1:{port}"),
    );
    let text = mq.ensure(&a).await.unwrap_err().to_string();
    eprintln!("{text}");
    assert!(
        text.starts_with(&format!(
            "cannot reach RabbitMQ's management API at http://127.0.0.1:{port}: "
        )),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("hunter2secret"), "{text}");

    // Reachable, wrong admin password: refused, in the server's words.
    let wrong = mariadb_admin_url().replace("minicloud-test-db", "hunter2secret");
    let text = mariadb_with(&env.store, &wrong)
        .ensure(&a)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.starts_with("MariaDB at 127.0.0.1:3306 refused: Access denied"),
        "{text}"
    );
    assert!(!text.contains("hunter2secret"), "{text}");
    let wrong = rabbitmq_api_url().replace(
        &test_env("MINICLOUD_TEST_RABBITMQ_ADMIN_PASSWORD"),
        "hunter2secret",
    );
    let text = rabbitmq_with(&env.store, &wrong)
        .ensure(&a)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("RabbitMQ's management API at http://127.0.0.1:15672 refused: HTTP 401"),
        "{text}"
    );
    assert!(!text.contains("hunter2secret"), "{text}");
    // No app password leaks either.
    let stored = env
        .store
        .service(&a, ServiceKind::Mariadb)
        .unwrap()
        .unwrap();
    assert!(!text.contains(stored.password.expose()));
}

// --- end to end: the probe, deployed through minicloud, uses all three

/// A TCP forwarder on loopback to a real service, that a test can take down and bring back
/// on the same port: "MariaDB stopped" without stopping the MariaDB other tests share.
struct Switch {
    port: u16,
    target: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Switch {
    async fn new(target: &str) -> Self {
        let mut s = Self {
            port: support::free_port(),
            target: target.parse().unwrap(),
            task: None,
        };
        s.up().await;
        s
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Stops listening: new connections are refused (open ones are left alone).
    async fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Removes the app's containers when the test ends, even when it fails.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in support::containers_of(&self.0) {
            support::docker(&["rm", "-f", &name]);
        }
    }
}

#[tokio::test]
async fn the_probe_keeps_its_row_message_and_file_across_revisions() {
    let gateway = test_env("MINICLOUD_TEST_HOST_GATEWAY");
    let mut mariadb = Switch::new("127.0.0.1:3306").await;
    let admin_url =
        mariadb_admin_url().replace("@127.0.0.1:3306", &format!("@127.0.0.1:{}", mariadb.port));
    assert!(admin_url.contains(&mariadb.port.to_string()), "{admin_url}");
    let mc = support::Minicloud::start_with(
        [
            ("MINICLOUD_HEALTH_TIMEOUT", "30"),
            ("MINICLOUD_MARIADB_URL", admin_url.as_str()),
            ("MINICLOUD_MARIADB_APP_HOST", gateway.as_str()),
            ("MINICLOUD_RABBITMQ_API", rabbitmq_api_url().as_str()),
            ("MINICLOUD_RABBITMQ_APP_HOST", gateway.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    )
    .await;
    let name = app("e2e").to_string();
    let _cleanup = Cleanup(name.clone());
    let api = mc.api();
    let resp = api
        .post(
            "/api/apps",
            serde_json::json!({"image": support::image("probe-services:v1"), "name": name}),
        )
        .await;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["revision"], 1, "{body}");

    let host = format!("{name}.{}", mc.domain);
    let web = mc.client_for(&[&host]);
    let url = |path: &str| mc.https_url(&host, path);
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    };

    // The environment: the database and the vhost are the app's, on the host gateway.
    let env: serde_json::Value = web
        .get(url("/env"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let db_url = env["DATABASE_URL"].as_str().unwrap().to_owned();
    let user = ServiceName::derive(&name).unwrap().to_string();
    assert!(db_url.starts_with(&format!("mysql://{user}:")), "{db_url}");
    assert!(
        db_url.ends_with(&format!("@{gateway}:3306/{user}")),
        "{db_url}"
    );
    assert_eq!(env["AMQP_URL"], env["RABBITMQ_URL"]);

    // Write a row, two messages (take one), a file.
    assert_eq!(send(web.post(url("/db")).body("row-1")).await.0, 201);
    assert_eq!(
        send(web.get(url("/db"))).await,
        (200, "[\n  \"row-1\"\n]\n".into())
    );
    for m in ["msg-1", "msg-2"] {
        assert_eq!(send(web.post(url("/amqp")).body(m)).await.0, 201);
    }
    assert_eq!(send(web.get(url("/amqp"))).await, (200, "msg-1".into()));
    assert_eq!(send(web.put(url("/file/note")).body("kept")).await.0, 201);

    // MariaDB unreachable: the update fails naming it, revision 1 keeps serving.
    mariadb.down().await;
    let resp = api
        .post(
            &format!("/api/apps/{name}/deploy"),
            serde_json::json!({"force": true}),
        )
        .await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains(&format!(
            "cannot reach MariaDB at 127.0.0.1:{}",
            mariadb.port
        )),
        "{text}"
    );
    assert!(text.contains("revision 1 keeps serving"), "{text}");
    assert_eq!(send(web.get(url("/db"))).await.0, 200);
    assert_eq!(
        support::containers_of(&name).len(),
        2,
        "web and runner of revision 1 only"
    );

    // Back: the retry succeeds, and everything survived the new revision.
    mariadb.up().await;
    let resp = api
        .post(
            &format!("/api/apps/{name}/deploy"),
            serde_json::json!({"force": true}),
        )
        .await;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revision"], 2, "{body}");
    assert_eq!(
        send(web.get(url("/db"))).await,
        (200, "[\n  \"row-1\"\n]\n".into())
    );
    assert_eq!(send(web.get(url("/amqp"))).await, (200, "msg-2".into()));
    assert_eq!(send(web.get(url("/amqp"))).await.0, 404);
    assert_eq!(send(web.get(url("/file/note"))).await, (200, "kept".into()));

    // Rotate: a new revision with new passwords; the old one is refused, the app works.
    let resp = api
        .post(
            &format!("/api/apps/{name}/rotate-credentials"),
            serde_json::json!({}),
        )
        .await;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revision"], 3, "{body}");
    let env: serde_json::Value = web
        .get(url("/env"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_db_url = env["DATABASE_URL"].as_str().unwrap().to_owned();
    assert_ne!(new_db_url, db_url);
    let old_from_host = db_url.replace(&format!("@{gateway}:"), "@127.0.0.1:");
    let err = mysql_async::Conn::from_url(old_from_host)
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(ACCESS_DENIED), "{err}");
    assert_eq!(send(web.post(url("/db")).body("row-2")).await.0, 201);
    assert_eq!(
        send(web.get(url("/db"))).await,
        (200, "[\n  \"row-1\",\n  \"row-2\"\n]\n".into())
    );
    assert_eq!(send(web.post(url("/amqp")).body("msg-3")).await.0, 201);
    assert_eq!(send(web.get(url("/amqp"))).await, (200, "msg-3".into()));

    // The services view masks passwords; only an explicit reveal shows them.
    let masked: serde_json::Value = api.get_json(&format!("/api/apps/{name}/services")).await;
    let masked_text = masked.to_string();
    assert!(masked_text.contains("********"), "{masked_text}");
    assert!(
        !masked_text.contains(&new_db_url),
        "a password leaked: {masked_text}"
    );
    assert_eq!(masked.as_array().unwrap().len(), 2, "{masked_text}");
    let revealed: serde_json::Value = api
        .get_json(&format!("/api/apps/{name}/services?reveal=true"))
        .await;
    assert_eq!(revealed[0]["kind"], "mariadb");
    assert_eq!(revealed[0]["env"]["DATABASE_URL"], new_db_url.as_str());

    // No password in minicloud's log.
    let password = |u: &str| {
        u.split(':')
            .nth(2)
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .to_owned()
    };
    let log = mc.log();
    for secret in [password(&db_url), password(&new_db_url)] {
        assert!(!log.contains(&secret), "a password is in the log");
    }

    // Removed with its data: database, user, vhost and directory are gone.
    let resp = api.delete(&format!("/api/apps/{name}?data=true")).await;
    assert_eq!(resp.status(), 204);
    let mut admin = admin_conn().await;
    let dbs: Vec<String> = admin.query("SHOW DATABASES").await.unwrap();
    let users: Vec<String> = admin.query("SELECT User FROM mysql.user").await.unwrap();
    admin.disconnect().await.unwrap();
    assert!(!dbs.contains(&user) && !users.contains(&user));
    let vhost = reqwest::Client::new()
        .get(format!(
            "{}/api/vhosts/{user}",
            test_env("MINICLOUD_TEST_RABBITMQ_API_URL")
        ))
        .basic_auth(
            test_env("MINICLOUD_TEST_RABBITMQ_ADMIN_USER"),
            Some(test_env("MINICLOUD_TEST_RABBITMQ_ADMIN_PASSWORD")),
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(vhost, 404);
    assert!(!mc.data_dir.join("apps").join(&name).exists());
    assert!(support::containers_of(&name).is_empty());
}

#[tokio::test]
async fn a_failed_first_deploy_leaves_no_database_behind() {
    let gateway = test_env("MINICLOUD_TEST_HOST_GATEWAY");
    // MariaDB works; RabbitMQ's API is a closed port, so provisioning fails after the
    // database was made.
    let closed = format!("http://admin:pw@127.0.0.1:{}", support::free_port());
    let mc = support::Minicloud::start_with(
        [
            ("MINICLOUD_MARIADB_URL", mariadb_admin_url()),
            ("MINICLOUD_MARIADB_APP_HOST", gateway.clone()),
            ("MINICLOUD_RABBITMQ_API", closed),
            ("MINICLOUD_RABBITMQ_APP_HOST", gateway),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    )
    .await;
    let name = app("first").to_string();
    let _cleanup = Cleanup(name.clone());
    let resp = mc
        .api()
        .post(
            "/api/apps",
            serde_json::json!({"image": support::image("probe-services:v1"), "name": name}),
        )
        .await;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("RabbitMQ"),
        "{body}"
    );

    let database = ServiceName::derive(&name).unwrap().to_string();
    let mut admin = admin_conn().await;
    let found: Vec<String> = admin
        .exec(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (database.clone(),),
        )
        .await
        .unwrap();
    assert!(found.is_empty(), "{database} was left behind");
    assert!(!mc.data_path().join("apps").join(&name).exists());
    assert_eq!(
        mc.api().get(&format!("/api/apps/{name}")).await.status(),
        404
    );
}
