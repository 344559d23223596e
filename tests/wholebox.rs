//! The whole-box restore against the real engine, MariaDB, RabbitMQ and Debian's restic: a
//! server's apps backed up (each app, then the platform), a new server (a fresh data dir, the
//! app's database, vhost and containers gone), `minicloud restore`, `minicloud serve`: every
//! app is back serving with its rows, files and queue definitions, and an app whose backup
//! cannot be read is reported with the reason while the others come back.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use reqwest::Method;
use serde_json::json;

use minicloud::services::names::{quote_ident, sql_account};
use minicloud::services::ServiceName;
use support::backups::{deploy_with_a_file, restic, restore_cli, KEPT_BYTES};
use support::services::{admin_conn, app, mariadb_admin_url, rabbitmq_api_url, rabbitmq_call};
use support::AppCleanup;

/// minicloud's settings for the shared MariaDB and RabbitMQ, which apps reach on the host's
/// gateway.
fn services_env() -> Vec<(String, String)> {
    let gateway = support::test_env("MINICLOUD_TEST_HOST_GATEWAY");
    [
        ("MINICLOUD_HEALTH_TIMEOUT", "30".to_owned()),
        ("MINICLOUD_MARIADB_URL", mariadb_admin_url()),
        ("MINICLOUD_MARIADB_APP_HOST", gateway.clone()),
        ("MINICLOUD_RABBITMQ_API", rabbitmq_api_url()),
        ("MINICLOUD_RABBITMQ_APP_HOST", gateway),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Sends a request; its status and body.
async fn send(req: reqwest::RequestBuilder) -> (u16, String) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// What the old server's apps leave on the shared servers and the engine, gone as on a new
/// server: containers, database and its user, vhost.
async fn as_on_a_new_server(name: &str) {
    for container in support::containers_of(name) {
        support::docker(&["rm", "-f", &container]);
    }
    let db = ServiceName::derive(name).unwrap();
    let mut conn = admin_conn().await;
    conn.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(&db)))
        .await
        .unwrap();
    conn.query_drop(format!("DROP USER IF EXISTS {}", sql_account(&db).unwrap()))
        .await
        .unwrap();
    let (status, said) = rabbitmq_call(Method::DELETE, &format!("vhosts/{db}"), None).await;
    assert!(status == 204 || status == 404, "{status} {said}");
}

/// How many of the app's runs are safety backups (taken before a restore).
async fn safety_runs(api: &support::Api, app: &str) -> usize {
    let runs: serde_json::Value = api.get_json(&format!("/api/apps/{app}/backups")).await;
    runs.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "safety")
        .count()
}

#[tokio::test]
async fn a_whole_box_restore_brings_every_app_back_serving_with_its_data() {
    let mut old = support::Minicloud::start_with(services_env()).await;
    let api = old.api();
    let name = app("wb").to_string();
    let broken = app("wbgone").to_string();
    let _cleanup = (AppCleanup(&name), AppCleanup(&broken));
    for (app, image) in [(&name, "probe-services:v1"), (&broken, "probe:v1")] {
        let resp = api
            .post(
                "/api/apps",
                json!({"image": support::image(image), "name": app}),
            )
            .await;
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }
    let host = format!("{name}.{}", old.domain);
    let web = old.client_for(&[&host]);
    let url = |path: &str| old.https_url(&host, path);
    let marker = support::unique("whole-box-row");
    assert_eq!(send(web.post(url("/db")).body(marker.clone())).await.0, 201);
    assert_eq!(send(web.put(url("/file/note")).body("kept")).await.0, 201);
    let rows_before = send(web.get(url("/db"))).await;
    assert!(rows_before.1.contains(&marker), "{rows_before:?}");
    let vhost = ServiceName::derive(&name).unwrap().to_string();
    let (status, said) = rabbitmq_call(
        Method::PUT,
        &format!("queues/{vhost}/jobs"),
        Some(json!({"durable": true})),
    )
    .await;
    assert!((200..300).contains(&status), "{status} {said}");
    let broken_dir = old.data_path().join("apps").join(&broken);
    std::fs::create_dir_all(&broken_dir).unwrap();
    std::fs::write(broken_dir.join("kept"), "never seen again").unwrap();

    // Each app's backup, then the platform's.
    let mut runs = Vec::new();
    for app in [&name, &broken] {
        let run: serde_json::Value = api
            .post(&format!("/api/apps/{app}/backups"), json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(run["state"], "succeeded", "{run}");
        runs.push(run["id"].as_str().unwrap().to_owned());
    }
    let run: serde_json::Value = api
        .post("/api/backups/platform", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["state"], "succeeded", "{run}");
    let key: serde_json::Value = api.get_json("/api/backups/key").await;
    let password = key["password"].as_str().unwrap().to_owned();
    assert!(old.stop().success());

    // A new server: nothing of the apps on the engine, MariaDB or RabbitMQ; a fresh data dir.
    for app in [&name, &broken] {
        as_on_a_new_server(app).await;
    }
    let repository = old.data_path().join("backups");
    let fresh = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = restore_cli(
        fresh.path(),
        repository.to_str().unwrap(),
        &password,
        false,
        &[],
    );
    let restore_took = started.elapsed();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The old repository was elsewhere: its snapshots are copied into the new one.
    assert!(
        said.contains(&format!("Copied the backups of {}", repository.display())),
        "{said}"
    );
    for (app, id) in [(&name, &runs[0]), (&broken, &runs[1])] {
        assert!(
            said.contains(&format!("{app}: its ")) && said.contains(&format!("from backup {id}")),
            "{said}"
        );
    }
    assert!(said.contains("When minicloud starts"), "{said}");
    // The broken app's files are missing from the new repository (a lost pack, say): its
    // restore will fail.
    let local = fresh.path().join("backups");
    let listed = restic(
        &local,
        &password,
        &[
            "snapshots",
            "--json",
            "--tag",
            &format!("app:{broken},part:storage"),
        ],
        None,
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let gone = listed[0]["id"].as_str().unwrap().to_owned();
    restic(&local, &password, &["forget", &gone], None);

    // minicloud on the new server brings the app back, data first.
    let started = Instant::now();
    let new = support::Minicloud::start_in(fresh.path(), services_env()).await;
    let host = format!("{name}.{}", new.domain);
    let web = new.client_for(&[&host]);
    let url = |path: &str| new.https_url(&host, path);
    let rows = support::wait_for(
        "the app serving its rows again",
        Duration::from_secs(180),
        || async {
            let (status, body) = send(web.get(url("/db"))).await;
            (status == 200).then_some((status, body))
        },
    )
    .await;
    let serving_took = started.elapsed();
    eprintln!(
        "whole-box restore: `minicloud restore` {restore_took:?}, start to the app serving {serving_took:?}"
    );
    assert_eq!(rows, rows_before);
    assert_eq!(send(web.get(url("/file/note"))).await, (200, "kept".into()));
    // A restore while minicloud serves this data dir is refused, and says what to do.
    let out = restore_cli(
        fresh.path(),
        repository.to_str().unwrap(),
        &password,
        true,
        &[],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("minicloud serve (pid") && said.contains("stop it first"),
        "{said}"
    );
    let (status, queues) = rabbitmq_call(Method::GET, &format!("queues/{vhost}"), None).await;
    assert_eq!(status, 200);
    assert!(
        queues
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["name"] == "jobs"),
        "{queues}"
    );
    let api = new.api();
    let shown: serde_json::Value = api.get_json(&format!("/api/apps/{name}")).await;
    assert!(shown.get("pending_restore").is_none(), "{shown}");
    assert_eq!(shown["state"], "running", "{shown}");
    let deploys: serde_json::Value = api.get_json(&format!("/api/apps/{name}/deploys")).await;
    let digests: Vec<&str> = deploys
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{deploys}");
    // The start's restores take no safety backup: the apps' services were new and empty.
    for app in [&name, &broken] {
        assert_eq!(safety_runs(&api, app).await, 0, "{app}");
    }

    // The app whose backup cannot be read is out of service, says why and how to retry.
    let failed = support::wait_for("the failed restore", Duration::from_secs(120), || async {
        let shown: serde_json::Value = api.get_json(&format!("/api/apps/{broken}")).await;
        shown["pending_restore"]["failed"]
            .is_object()
            .then_some(shown)
    })
    .await;
    let reason = failed["pending_restore"]["failed"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("restic restore"), "{failed}");
    assert_ne!(failed["state"], "running", "{failed}");
    let (ok, stdout, stderr) = support::backups::cli(&new, &["apps", "show", &broken]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("minicloud backups restore {broken} {}", runs[1])),
        "{stdout}"
    );
    assert!(
        new.log()
            .contains("whole-box restore: the app's data did not come back"),
        "{}",
        new.log()
    );
    let broken_host = format!("{broken}.{}", new.domain);
    let (status, _) = send(
        new.client_for(&[&broken_host])
            .get(new.https_url(&broken_host, "/")),
    )
    .await;
    assert_eq!(status, 503);
    // And the server goes on: the API answers, the restored app still serves.
    assert_eq!(send(web.get(url("/file/note"))).await, (200, "kept".into()));
    // A person's retry does take one, though it fails again (the snapshot is gone).
    let resp = api
        .post(
            &format!("/api/apps/{broken}/backups/{}/restore", runs[1]),
            json!({}),
        )
        .await;
    assert!(
        !resp.status().is_success(),
        "{}",
        resp.text().await.unwrap()
    );
    assert_eq!(safety_runs(&api, &broken).await, 1);
    for app in [&name, &broken] {
        let resp = api.delete(&format!("/api/apps/{app}?data=true")).await;
        assert_eq!(resp.status(), 204);
    }
}

#[tokio::test]
async fn with_the_server_and_its_disk_gone_the_s3_copy_brings_the_box_back() {
    let bucket = support::s3::bucket();
    let endpoint = support::s3::endpoint();
    let mut old =
        support::Minicloud::start_with(support::s3::settings(&endpoint, &bucket, None)).await;
    let api = old.api();
    let name = app("wbs3").to_string();
    let _cleanup = AppCleanup(&name);
    deploy_with_a_file(&old, &name).await;
    let run: serde_json::Value = api
        .post(&format!("/api/apps/{name}/backups"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["destinations"][1]["confirmed"], true, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let platform: serde_json::Value = api
        .post("/api/backups/platform", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(platform["state"], "succeeded", "{platform}");
    let key: serde_json::Value = api.get_json("/api/backups/key").await;
    let password = key["password"].as_str().unwrap().to_owned();
    assert!(old.stop().success());
    // Only the bucket is left of the old server.
    for container in support::containers_of(&name) {
        support::docker(&["rm", "-f", &container]);
    }
    std::fs::remove_dir_all(old.data_path()).unwrap();

    let fresh = tempfile::tempdir().unwrap();
    let repository = format!("s3:{endpoint}/{bucket}/box");
    let access = support::test_env("MINICLOUD_TEST_S3_ACCESS_KEY");
    let secret = support::test_env("MINICLOUD_TEST_S3_SECRET_KEY");
    let region = support::test_env("MINICLOUD_TEST_S3_REGION");
    let started = Instant::now();
    let out = restore_cli(
        fresh.path(),
        &repository,
        &password,
        false,
        &[
            ("AWS_ACCESS_KEY_ID", &access),
            ("AWS_SECRET_ACCESS_KEY", &secret),
            ("AWS_DEFAULT_REGION", &region),
        ],
    );
    let restore_took = started.elapsed();
    let said = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}{errors}");
    assert!(
        said.contains(&format!("Copied the backups of {endpoint}/{bucket}/box")),
        "{said}"
    );
    assert!(
        said.contains(&format!("{name}: its storage from backup {id}")),
        "{said}"
    );
    assert!(!said.contains(&secret) && !errors.contains(&secret));
    // Without keys the bucket is not tried, and the message says which to set.
    let other = tempfile::tempdir().unwrap();
    let out = restore_cli(other.path(), &repository, &password, false, &[]);
    assert!(!out.status.success());
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(errors.contains("AWS_ACCESS_KEY_ID"), "{errors}");

    // The new server reads its own repository: the files come back, the app serves.
    let started = Instant::now();
    let new = support::Minicloud::start_in(fresh.path(), Vec::new()).await;
    let api = new.api();
    support::wait_for(
        "the app running again",
        Duration::from_secs(120),
        || async {
            let shown: serde_json::Value = api.get_json(&format!("/api/apps/{name}")).await;
            (shown["state"] == "running" && shown.get("pending_restore").is_none()).then_some(())
        },
    )
    .await;
    eprintln!(
        "whole-box restore from S3: `minicloud restore` {restore_took:?}, start to the app serving {:?}",
        started.elapsed()
    );
    let kept = fresh.path().join("apps").join(&name).join("kept");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), KEPT_BYTES);
    let host = format!("{name}.{}", new.domain);
    let (status, _) = send(new.client_for(&[&host]).get(new.https_url(&host, "/"))).await;
    assert!(status < 500, "{status}");
    let resp = api.delete(&format!("/api/apps/{name}?data=true")).await;
    assert_eq!(resp.status(), 204);
}
