//! The provisioners against the real MariaDB and RabbitMQ that `scripts/test-env.sh` starts,
//! called directly as a library: idempotent ensure, working and isolated credentials,
//! rotation, removal, refusal of bad names and clear errors when a service is down. Nothing is
//! skipped: without the services these tests fail. Each test uses its own app names (the
//! servers are shared). The same services through a running minicloud are in
//! `services_e2e.rs`.

mod support;

use std::collections::BTreeSet;

use mysql_async::prelude::Queryable;

use minicloud::model::manifest::Need;
use minicloud::model::name::AppName;
use minicloud::model::ServiceKind;
use minicloud::services::{Provisioner, ServiceError, ServiceName, Services};
use support::services::{
    admin_conn, amqp, app, db_conn, env, mariadb_admin_url, mariadb_with, rabbitmq_admin,
    rabbitmq_api, rabbitmq_api_url, rabbitmq_with, round_trip, server_code, ACCESS_DENIED,
    ACCESS_DENIED_DB,
};

// --- MariaDB as the app sees it

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

/// The provisioners take an `AppName`, and neither way of making one (`try_new`, or reading a
/// stored record) lets these through, so no hostile name can reach a provisioner's SQL; and
/// the one derivation of service names refuses them on its own terms too.
///
/// This test used to count `SHOW DATABASES` before and after as well. Nothing between the two
/// counts could create a database (no provisioner can be called with these names), so that
/// check could not fail for the reason it named, and it could fail for an unrelated one: the
/// sibling tests create `app_*` databases concurrently. It is gone.
#[test]
fn dangerous_names_are_refused_before_any_sql() {
    let hostile = [
        "x`; DROP DATABASE mysql; --",
        "x'@'%' IDENTIFIED BY 'p",
        "x\\",
        "a b",
        "A",
        "caf\u{e9}",
        "../etc",
    ];
    for name in hostile {
        // Neither the app name rule nor the one derivation lets them through ...
        assert!(AppName::try_new(name).is_err(), "{name:?}");
        let err = ServiceName::derive(name).unwrap_err();
        assert!(matches!(err, ServiceError::BadName { .. }), "{err}");
        // ... nor can one be smuggled in as stored data.
        let json = serde_json::to_string(name).unwrap();
        assert!(serde_json::from_str::<AppName>(&json).is_err(), "{name:?}");
    }
}

// --- RabbitMQ as the app sees it

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
    let api = rabbitmq_api();
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
    let (user, pw) = rabbitmq_admin();
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

    let removal = services.remove(&a).await;
    assert!(removal.kept.is_empty(), "{removal:?}");
    assert_eq!(removal.removed.len(), 3, "{removal:?}");
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

    let removal = services.remove(&b).await;
    assert!(removal.kept.is_empty(), "{removal:?}");

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

#[tokio::test]
async fn unreachable_or_refusing_services_are_named_without_credentials() {
    let env = env();
    let a = app("down");
    // A loopback port nothing listens on.
    let port = support::free_port();
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
    let wrong = rabbitmq_api_url().replace(&rabbitmq_admin().1, "hunter2secret");
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
