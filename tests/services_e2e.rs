//! The shared services end to end: the probe, deployed through a running minicloud, uses
//! MariaDB, RabbitMQ and its storage across revisions, a service outage and a rotation; and a
//! failed first deploy leaves nothing behind. The provisioners on their own are tested in
//! `provisioners.rs`.

mod support;

use mysql_async::prelude::Queryable;

use minicloud::services::ServiceName;
use support::services::{
    admin_conn, app, mariadb_admin_url, minicloud_with_switched_mariadb, rabbitmq_admin,
    rabbitmq_api, rabbitmq_api_url, server_code, ACCESS_DENIED,
};
use support::{test_env, AppCleanup};

#[tokio::test]
async fn the_probe_keeps_its_row_message_and_file_across_revisions() {
    let gateway = test_env("MINICLOUD_TEST_HOST_GATEWAY");
    let (mc, mut mariadb) = minicloud_with_switched_mariadb(&[]).await;
    let name = app("e2e").to_string();
    let _cleanup = AppCleanup(&name);
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
    // A rotation fails the same way. Both failures are in the history, newest first, with
    // their reasons (no container was made for either).
    let resp = api
        .post(
            &format!("/api/apps/{name}/rotate-credentials"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(resp.status(), 503, "{}", resp.text().await.unwrap());
    let history: Vec<serde_json::Value> = api.get_json(&format!("/api/apps/{name}/deploys")).await;
    let seen: Vec<(u64, &str, &str)> = history
        .iter()
        .map(|d| {
            (
                d["revision"].as_u64().unwrap(),
                d["state"].as_str().unwrap(),
                d["trigger"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (3, "failed", "credential rotation"),
            (2, "failed", "api"),
            (1, "succeeded", "create")
        ],
        "{history:?}"
    );
    for failed in &history[..2] {
        let reason = failed["reason"].as_str().unwrap();
        assert!(reason.contains("cannot reach MariaDB"), "{reason}");
    }
    let show: serde_json::Value = api.get_json(&format!("/api/apps/{name}")).await;
    assert_eq!(show["revision"], 1, "{show}");
    assert!(show["last_error"].as_str().is_some(), "{show}");

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
    assert_eq!(body["revision"], 4, "{body}");
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
    assert_eq!(body["revision"], 5, "{body}");
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

    // Removed with its data while MariaDB is down: what could go went, the answer says what
    // was kept and to ask again; the app stays, stopped.
    mariadb.down().await;
    let resp = api.delete(&format!("/api/apps/{name}?data=true")).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 503, "{text}");
    for says in [
        "removed its containers and routes, its RabbitMQ vhost and user, its storage",
        "kept its MariaDB database and user (cannot reach MariaDB",
        &format!("run `minicloud apps rm {name} --with-data` again"),
    ] {
        assert!(text.contains(says), "{says}: {text}");
    }
    assert!(support::containers_of(&name).is_empty());
    let show: serde_json::Value = api.get_json(&format!("/api/apps/{name}")).await;
    assert_eq!(show["state"], "stopped", "{show}");
    mariadb.up().await;

    // Asked again: database, user, vhost and directory are gone.
    let resp = api.delete(&format!("/api/apps/{name}?data=true")).await;
    assert_eq!(resp.status(), 204);
    let mut admin = admin_conn().await;
    let dbs: Vec<String> = admin.query("SHOW DATABASES").await.unwrap();
    let users: Vec<String> = admin.query("SELECT User FROM mysql.user").await.unwrap();
    admin.disconnect().await.unwrap();
    assert!(!dbs.contains(&user) && !users.contains(&user));
    let (admin_user, admin_pw) = rabbitmq_admin();
    let vhost = reqwest::Client::new()
        .get(format!("{}/api/vhosts/{user}", rabbitmq_api()))
        .basic_auth(admin_user, Some(admin_pw))
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
    let _cleanup = AppCleanup(&name);
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

    // The app is gone with the answer; the accounts it made go right after, under its lock.
    assert_eq!(
        mc.api().get(&format!("/api/apps/{name}")).await.status(),
        404
    );
    let database = ServiceName::derive(&name).unwrap().to_string();
    support::wait_for(
        "the failed deploy's database and directory to go",
        std::time::Duration::from_secs(30),
        || async {
            let mut admin = admin_conn().await;
            let found: Vec<String> = admin
                .exec(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                    (database.clone(),),
                )
                .await
                .unwrap();
            admin.disconnect().await.unwrap();
            let dir = mc.data_path().join("apps").join(&name);
            (found.is_empty() && !dir.exists()).then_some(())
        },
    )
    .await;
}

/// A MariaDB that takes connections and never answers fails a first deploy once, with the
/// time limit the error states; the time it took is printed for the record (no timing is
/// asserted on a shared machine).
#[tokio::test]
async fn a_hanging_mariadb_fails_a_first_deploy_naming_its_time_limit_once() {
    let gateway = test_env("MINICLOUD_TEST_HOST_GATEWAY");
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let mc = support::Minicloud::start_with(
        [
            (
                "MINICLOUD_MARIADB_URL",
                format!("mysql://root:pw@127.0.0.1:{port}"),
            ),
            ("MINICLOUD_MARIADB_APP_HOST", gateway.clone()),
            ("MINICLOUD_RABBITMQ_API", rabbitmq_api_url()),
            ("MINICLOUD_RABBITMQ_APP_HOST", gateway),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    )
    .await;
    let name = app("hang").to_string();
    let _cleanup = AppCleanup(&name);
    let started = std::time::Instant::now();
    let resp = mc
        .api()
        .post(
            "/api/apps",
            serde_json::json!({"image": support::image("probe-services:v1"), "name": name}),
        )
        .await;
    let took = started.elapsed();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    eprintln!("a first deploy against a hanging MariaDB answered in {took:?}");
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("MariaDB"), "{body}");
    assert_eq!(error.matches("no answer within 10s").count(), 1, "{body}");
    assert_eq!(
        mc.api().get(&format!("/api/apps/{name}")).await.status(),
        404
    );
    held.abort();
}
