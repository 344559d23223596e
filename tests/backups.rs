//! Backups against the real MariaDB, storage, engine and Debian's restic: the probe's rows and
//! files come back after a restore; the stock restic tool lists the snapshots with the
//! password; a hostile dump cannot touch another database; with an S3 destination (moto) a run
//! succeeds only once both destinations confirmed it, and is partial when S3 refused it.

mod support;

use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use reqwest::Method;
use serde_json::json;

use minicloud::backups::database::{load, Target, DUMP_FILE};
use minicloud::backups::plan::daily_minute;
use minicloud::backups::{verify, Repository};
use minicloud::model::secret::Secret;
use minicloud::services::{Provisioner, ServiceName};
use support::backups::{cli, deploy_with_a_file, restic, restore_cli, KEPT_BYTES};
use support::services::{
    admin_conn, app, mariadb_admin_url, mariadb_with, minicloud_with_switched_mariadb,
    rabbitmq_call,
};
use support::AppCleanup;

/// Stores `dump` as the database dump of a new snapshot, as minicloud writes one; returns
/// the snapshot's id.
fn store_dump(repo: &std::path::Path, password: &str, dump: &str) -> String {
    let out = restic(
        repo,
        password,
        &["backup", "--json", "--stdin", "--stdin-filename", DUMP_FILE],
        Some(dump),
    );
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["snapshot_id"].as_str().map(str::to_owned))
        .unwrap()
}

/// The vhost's queue names, exchange names and bindings (`source>destination:key`), sorted.
async fn definitions(vhost: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (status, defs) = rabbitmq_call(Method::GET, &format!("definitions/{vhost}"), None).await;
    assert_eq!(status, 200, "{defs}");
    let list = |kind: &str, f: &dyn Fn(&serde_json::Value) -> String| {
        let mut out: Vec<String> = defs[kind].as_array().unwrap().iter().map(f).collect();
        out.sort();
        out
    };
    let name = |v: &serde_json::Value| v["name"].as_str().unwrap().to_owned();
    (
        list("queues", &name),
        list("exchanges", &name),
        list("bindings", &|b| {
            format!("{}>{}:{}", b["source"], b["destination"], b["routing_key"])
        }),
    )
}

#[tokio::test]
async fn the_probe_gets_its_rows_and_files_back_and_stock_restic_reads_the_backup() {
    // minicloud reaches MariaDB through a switch, to take it away for the failed run.
    let (mc, mut mariadb) =
        minicloud_with_switched_mariadb(&[("MINICLOUD_BACKUP_BEFORE_DEPLOY", "true")]).await;
    let name = app("bk").to_string();
    let _cleanup = AppCleanup(&name);
    let api = mc.api();
    let resp = api
        .post(
            "/api/apps",
            serde_json::json!({"image": support::image("probe-services:v1"), "name": name}),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let host = format!("{name}.{}", mc.domain);
    let web = mc.client_for(&[&host]);
    let url = |path: &str| mc.https_url(&host, path);
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    };
    let marker = format!("plaintext-marker-{}", support::unique("row"));
    for row in ["row-1", marker.as_str()] {
        assert_eq!(send(web.post(url("/db")).body(row.to_owned())).await.0, 201);
    }
    assert_eq!(send(web.put(url("/file/note")).body("kept")).await.0, 201);
    let rows_before = send(web.get(url("/db"))).await;
    assert_eq!(rows_before.0, 200);
    // Queue definitions in the app's vhost: an exchange, a queue and a binding between them.
    let vhost = ServiceName::derive(&name).unwrap().to_string();
    for (method, path, body) in [
        (
            Method::PUT,
            format!("exchanges/{vhost}/orders"),
            json!({"type": "topic", "durable": true}),
        ),
        (
            Method::PUT,
            format!("queues/{vhost}/jobs"),
            json!({"durable": true}),
        ),
        (
            Method::POST,
            format!("bindings/{vhost}/e/orders/q/jobs"),
            json!({"routing_key": "new.*"}),
        ),
    ] {
        let (status, said) = rabbitmq_call(method, &path, Some(body)).await;
        assert!((200..300).contains(&status), "{path}: {status} {said}");
    }
    let definitions_before = definitions(&vhost).await;
    assert!(
        definitions_before.0.contains(&"jobs".to_owned()),
        "{definitions_before:?}"
    );

    // Back up now: every part confirmed, and the recovery key shown with the first run.
    let resp = api
        .post(&format!("/api/apps/{name}/backups"), serde_json::json!({}))
        .await;
    let status = resp.status();
    let run: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["state"], "succeeded", "{run}");
    let parts: Vec<&str> = run["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["part"].as_str().unwrap())
        .collect();
    assert_eq!(parts, ["record", "database", "queues", "storage"], "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let password = run["recovery_key"].as_str().expect("shown once").to_owned();
    let key: serde_json::Value = api.get_json("/api/backups/key").await;
    assert_eq!(key["password"], password.as_str());
    let listed: serde_json::Value = api.get_json(&format!("/api/apps/{name}/backups")).await;
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");

    // The CLI runs one too, following its progress; the key was shown once and is not again.
    let (ok, stdout, stderr) = cli(&mc, &["backups", "run", &name]).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("==> dumping the database"), "{stderr}");
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert!(!stdout.contains(&password), "{stdout}");
    let again: serde_json::Value = api
        .post(&format!("/api/apps/{name}/backups"), serde_json::json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["state"], "succeeded", "{again}");
    assert!(again.get("recovery_key").is_none(), "{again}");

    // The stock tool lists the run's snapshots and reads the dump, given the password.
    let repo = mc.data_path().join("backups");
    let snapshots = restic(
        &repo,
        &password,
        &["snapshots", "--json", "--tag", &format!("run:{id}")],
        None,
    );
    let snapshots: serde_json::Value = serde_json::from_str(&snapshots).unwrap();
    assert_eq!(snapshots.as_array().unwrap().len(), 4, "{snapshots}");
    let dump = restic(
        &repo,
        &password,
        &[
            "dump",
            "--tag",
            &format!("part:database,run:{id}"),
            "latest",
            &format!("/{DUMP_FILE}"),
        ],
        None,
    );
    assert!(dump.contains(&marker), "the dump lacks the row");
    // Encrypted: no repository file holds the row in the clear.
    let mut stack = vec![repo.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                    "{} holds a row in plaintext",
                    path.display()
                );
            }
        }
    }

    // The run downloads as one .tar.zst that stock tar and zstd open: the dump as plain SQL,
    // the queue definitions, the record, the files under storage/.
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("backup.tar.zst");
    let (ok, stdout, stderr) = cli(
        &mc,
        &[
            "backups",
            "download",
            &name,
            &id,
            "-o",
            archive.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "{stdout}{stderr}");
    assert!(!out.path().join("backup.tar.zst.partial").exists());
    let unpacked = out.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let untar = Command::new("tar")
        .arg("--zstd")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(
        untar.status.success(),
        "{}",
        String::from_utf8_lossy(&untar.stderr)
    );
    let read = |file: &str| std::fs::read_to_string(unpacked.join(file)).unwrap();
    assert!(
        read(DUMP_FILE).contains(&marker),
        "the downloaded dump lacks the row"
    );
    assert_eq!(read("storage/note"), "kept");
    assert!(
        read("queues.json").contains("\"jobs\""),
        "{}",
        read("queues.json")
    );
    let record: serde_json::Value = serde_json::from_str(&read("app.json")).unwrap();
    assert_eq!(record["app"]["name"], name.as_str(), "{record}");
    let resp = api
        .get(&format!(
            "/api/apps/{name}/backups/0000000000-0000/download"
        ))
        .await;
    assert_eq!(resp.status(), 404);

    // The newest dump loads into a scratch database with every row it holds.
    let (ok, stdout, stderr) = cli(&mc, &["backups", "verify", &name]).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("verified") && stdout.contains(" rows"),
        "{stdout}"
    );
    let listed: serde_json::Value = api.get_json(&format!("/api/apps/{name}/backups")).await;
    assert_eq!(listed[0]["verified"]["ok"], true, "{listed}");
    assert!(
        listed[0]["verified"]["rows"].as_u64().unwrap() >= 2,
        "{listed}"
    );

    // Change everything, then restore.
    assert_eq!(send(web.post(url("/db")).body("row-after")).await.0, 201);
    assert_eq!(
        send(web.put(url("/file/note")).body("changed")).await.0,
        201
    );
    assert_eq!(send(web.put(url("/file/extra")).body("new")).await.0, 201);
    for (method, path) in [
        (Method::DELETE, format!("queues/{vhost}/jobs")),
        (Method::DELETE, format!("exchanges/{vhost}/orders")),
        (Method::PUT, format!("queues/{vhost}/later")),
    ] {
        let (status, said) = rabbitmq_call(method, &path, Some(json!({}))).await;
        assert!((200..300).contains(&status), "{path}: {status} {said}");
    }
    assert_ne!(definitions(&vhost).await, definitions_before);
    // MariaDB held: the restore waits on its safety dump, and meanwhile the app's host
    // answers the 503 maintenance page, not a failing app's.
    mariadb.hold();
    let restore_path = format!("/api/apps/{name}/backups/{id}/restore");
    let restoring = api.post(
        &restore_path,
        json!({"parts": ["database", "storage", "queues"]}),
    );
    let watching = async {
        let page = support::wait_for("the maintenance page", Duration::from_secs(60), || async {
            let (status, body) = send(web.get(url("/db"))).await;
            (status == 503).then_some(body)
        })
        .await;
        mariadb.release();
        page
    };
    let (resp, page) = tokio::join!(restoring, watching);
    assert!(
        page.contains(&format!("The app {name} is being restored from a backup")),
        "{page}"
    );
    let status = resp.status();
    let restored: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["database"]["skipped"], 0, "{restored}");
    let safety = restored["safety_backup"].as_str().unwrap().to_owned();

    // Serving again, with the backed-up rows, files and queue definitions.
    assert_eq!(send(web.get(url("/db"))).await, rows_before);
    assert_eq!(definitions(&vhost).await, definitions_before);
    assert_eq!(send(web.get(url("/file/note"))).await, (200, "kept".into()));
    assert_eq!(send(web.get(url("/file/extra"))).await.0, 404);
    let apps_dir = mc.data_path().join("apps");
    let leftovers: Vec<_> = std::fs::read_dir(&apps_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The safety backup holds what was there before: restoring it brings "row-after" back.
    let listed: serde_json::Value = api.get_json(&format!("/api/apps/{name}/backups")).await;
    assert_eq!(listed[0]["id"], safety.as_str(), "{listed}");
    assert_eq!(listed[0]["trigger"], "safety", "{listed}");
    let (ok, stdout, stderr) = cli(
        &mc,
        &["backups", "restore", &name, &safety, "--only", "database"],
    )
    .await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("==> restoring the database"), "{stderr}");
    assert!(!stderr.contains("==> restoring the storage"), "{stderr}");
    let rows = send(web.get(url("/db"))).await;
    assert!(rows.1.contains("row-after"), "{rows:?}");
    assert_eq!(send(web.get(url("/file/note"))).await, (200, "kept".into()));

    // A clone of the first backup under another name: the backed-up rows, files and queue
    // definitions in accounts of its own, and the original untouched.
    let clone = app("bkclone").to_string();
    let _clone_cleanup = AppCleanup(&clone);
    let (ok, stdout, stderr) = cli(&mc, &["backups", "restore", &name, &id, "--as", &clone]).await;
    assert!(ok, "{stdout}{stderr}");
    let clone_host = format!("{clone}.{}", mc.domain);
    let clone_web = mc.client_for(&[&clone_host]);
    let clone_url = |path: &str| mc.https_url(&clone_host, path);
    assert_eq!(send(clone_web.get(clone_url("/db"))).await, rows_before);
    assert_eq!(
        send(clone_web.get(clone_url("/file/note"))).await,
        (200, "kept".into())
    );
    let clone_vhost = ServiceName::derive(&clone).unwrap().to_string();
    assert_eq!(definitions(&clone_vhost).await, definitions_before);
    let rows = send(web.get(url("/db"))).await;
    assert!(rows.1.contains("row-after"), "{rows:?}");
    let resp = api.delete(&format!("/api/apps/{clone}?data=true")).await;
    assert_eq!(resp.status(), 204);

    // An unknown backup is a 404 and changes nothing.
    let resp = api
        .post(
            &format!("/api/apps/{name}/backups/0000000000-0000/restore"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(resp.status(), 404);

    // MariaDB away: the run is stored as failed, names the service and its address, and
    // leaves no snapshot that could pass for a backup.
    mariadb.down().await;
    let resp = api
        .post(&format!("/api/apps/{name}/backups"), serde_json::json!({}))
        .await;
    let failed: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(failed["state"], "failed", "{failed}");
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("MariaDB at 127.0.0.1:{}", mariadb.port)),
        "{reason}"
    );
    assert_eq!(failed["parts"], serde_json::json!([]), "{failed}");
    assert!(failed.get("recovery_key").is_none(), "{failed}");
    let failed_id = failed["id"].as_str().unwrap();
    let left = restic(
        &repo,
        &password,
        &["snapshots", "--json", "--tag", &format!("run:{failed_id}")],
        None,
    );
    assert_eq!(left.trim(), "[]", "{left}");
    mariadb.up().await;
    let (ok, listed, _) = cli(&mc, &["backups", "list", &name]).await;
    assert!(ok);
    let failed_line = listed.lines().find(|l| l.starts_with(failed_id)).unwrap();
    assert!(
        failed_line.contains("failed") && failed_line.contains("MariaDB at"),
        "{listed}"
    );

    // A deploy of another image (here: the same one, forced) backs the app up first.
    let resp = api
        .post(&format!("/api/apps/{name}/deploy"), json!({"force": true}))
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let listed: serde_json::Value = api.get_json(&format!("/api/apps/{name}/backups")).await;
    assert_eq!(listed[0]["trigger"], "deploy", "{listed}");
    assert_eq!(listed[0]["state"], "succeeded", "{listed}");

    let log = mc.log();
    assert!(
        !log.contains(&password),
        "the repository password is in the log"
    );
    let resp = api.delete(&format!("/api/apps/{name}?data=true")).await;
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn a_hostile_dump_restores_into_the_app_database_and_nowhere_else() {
    let env = support::services::env();
    let mariadb = mariadb_with(&env.store, &mariadb_admin_url());
    let name = app("hostile");
    let creds = mariadb.ensure(&name).await.unwrap();
    let db = ServiceName::for_app(&name).unwrap();
    let victim = format!("victim_{}", db.as_str().trim_start_matches("app_"));
    let mut admin = admin_conn().await;
    admin
        .query_drop(format!(
            "CREATE DATABASE `{victim}`; CREATE TABLE `{victim}`.t (v TEXT); INSERT INTO `{victim}`.t VALUES ('precious')"
        ))
        .await
        .unwrap();

    let hostile = format!(
        "USE `{victim}`;\n\
         DROP DATABASE `{victim}`;\n\
         /*!40000 DROP DATABASE IF EXISTS `{victim}` */;\n\
         CREATE DATABASE IF NOT EXISTS `{victim}`;\n\
         GRANT ALL ON *.* TO '{user}'@'%';\n\
         DROP TABLE IF EXISTS t;\n\
         CREATE TABLE t (v TEXT);\n\
         INSERT INTO t VALUES ('restored; USE {victim};');\n\
         INSERT INTO `{victim}`.t VALUES ('written through a qualified name');\n",
        user = creds.user
    );
    let repo_dir = tempfile::tempdir().unwrap();
    let password = "hostile-test-password";
    restic(repo_dir.path(), password, &["init"], None);
    let snapshot = store_dump(repo_dir.path(), password, &hostile);
    let repo = Repository::new(repo_dir.path().to_path_buf(), Secret::new(password));
    let account = env
        .store
        .service(&name, minicloud::model::ServiceKind::Mariadb)
        .unwrap()
        .unwrap();
    let (admin_url, address) =
        minicloud::services::mariadb::parse_admin_url(&mariadb_admin_url()).unwrap();
    let settings = minicloud::services::MariaDbSettings {
        admin_url,
        address,
        app_host: "127.0.0.1:3306".into(),
    };
    // The qualified INSERT reaches MariaDB as the app's account, which is refused there:
    // the load fails on it, after the allowed statements ran in the app's database.
    let err = load(&repo, &snapshot, &settings, &Target::app(&db, &account))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("statement 4"), "{err}");
    assert!(err.contains("denied"), "{err}");

    let victim_rows: Vec<String> = admin
        .query(format!("SELECT v FROM `{victim}`.t"))
        .await
        .unwrap();
    assert_eq!(victim_rows, ["precious"]);
    let grants: Vec<String> = admin
        .query(format!("SHOW GRANTS FOR '{}'@'%'", creds.user))
        .await
        .unwrap();
    assert!(
        !grants
            .iter()
            .any(|g| g.contains("ON *.*") && g.contains("ALL")),
        "{grants:?}"
    );
    let own: Vec<String> = admin
        .query(format!("SELECT v FROM `{}`.t", db.as_str()))
        .await
        .unwrap();
    assert_eq!(own, ["restored; USE ".to_owned() + &victim + ";"]);

    // Without the qualified line the same dump loads, skipping the five hostile statements.
    let tame: String = hostile
        .lines()
        .filter(|l| !l.contains(".t VALUES"))
        .map(|l| format!("{l}\n"))
        .collect();
    let snapshot = store_dump(repo_dir.path(), password, &tame);
    let loaded = load(&repo, &snapshot, &settings, &Target::app(&db, &account))
        .await
        .unwrap();
    assert_eq!((loaded.statements, loaded.skipped), (3, 5), "{loaded:?}");
    let victim_rows: Vec<String> = admin
        .query(format!("SELECT v FROM `{victim}`.t"))
        .await
        .unwrap();
    assert_eq!(victim_rows, ["precious"]);

    admin
        .query_drop(format!("DROP DATABASE `{victim}`"))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    mariadb.remove(&name).await.unwrap();
}

#[tokio::test]
async fn a_slot_minicloud_slept_through_is_missed_then_caught_up_by_the_schedule() {
    let mut mc = support::Minicloud::start().await;
    // A name whose daily slot came between half an hour and a day ago.
    let unix_now = minicloud::model::now();
    let name = loop {
        let name = app("missed");
        let ago = (unix_now / 60 - daily_minute(name.as_str())).rem_euclid(1440);
        if (30..1380).contains(&ago) {
            break name.to_string();
        }
    };
    let _cleanup = AppCleanup(&name);
    deploy_with_a_file(&mc, &name).await;

    // minicloud down for days: the app was made three days ago and no backup ever ran.
    mc.stop();
    {
        let store =
            minicloud::store::Store::open(&mc.data_path().join("minicloud").join("state.redb"))
                .unwrap();
        let app_name = minicloud::model::AppName::try_new(&name).unwrap();
        let mut record = store.app(&app_name).unwrap().unwrap();
        record.created_at -= 3 * 86_400;
        store.put_app(&record).unwrap();
    }
    mc.set_env("MINICLOUD_BACKUP_SCHEDULE", "true");
    mc.start_again().await;

    // Its first look records the slot as missed and runs a backup at once.
    let api = mc.api();
    let runs: serde_json::Value =
        support::wait_for("the scheduled backup", Duration::from_secs(120), || async {
            let runs: serde_json::Value = api.get_json(&format!("/api/apps/{name}/backups")).await;
            let done = runs
                .as_array()?
                .iter()
                .any(|r| r["state"] != "running" && r["state"] != "missed");
            done.then_some(runs)
        })
        .await;
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["trigger"], "schedule", "{runs:?}");
    assert_eq!(runs[0]["state"], "succeeded", "{runs:?}");
    assert_eq!(runs[1]["state"], "missed", "{runs:?}");
    assert!(
        runs[1]["reason"]
            .as_str()
            .unwrap()
            .contains("minicloud was not running"),
        "{runs:?}"
    );
    let resp = api.delete(&format!("/api/apps/{name}?data=true")).await;
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn verification_passes_a_whole_dump_and_catches_a_corrupted_one() {
    let env = support::services::env();
    let mariadb = mariadb_with(&env.store, &mariadb_admin_url());
    let repo_dir = tempfile::tempdir().unwrap();
    let password = "verify-test-password";
    restic(repo_dir.path(), password, &["init"], None);
    let repo = Repository::new(repo_dir.path().to_path_buf(), Secret::new(password));
    let store = |dump: &str| store_dump(repo_dir.path(), password, dump);
    let whole = "DROP TABLE IF EXISTS `notes`;\n\
                 CREATE TABLE `notes` (`id` int PRIMARY KEY, `body` text);\n\
                 INSERT INTO `notes` VALUES (1,'one (1)'),(2,'it\\'s two');\n\
                 CREATE TABLE `empty` (`id` int);\n";
    let verified = verify::check(&repo, &store(whole), &mariadb).await.unwrap();
    assert!(verified.ok, "{verified:?}");
    assert_eq!((verified.tables, verified.rows), (2, 2), "{verified:?}");

    // Cut in the middle of a row: the dump does not load, and the check says so.
    let cut = &whole[..whole.find("(2,").unwrap() + 4];
    let failed = verify::check(&repo, &store(cut), &mariadb).await.unwrap();
    assert!(!failed.ok, "{failed:?}");
    assert!(
        failed.problem.as_deref().unwrap().contains("does not load"),
        "{failed:?}"
    );
    // A duplicate key loses a row: it loads, but the count differs from the dump's.
    let lossy = whole
        .replace("(2,'it", "(1,'it")
        .replace("INSERT INTO", "INSERT IGNORE INTO");
    let lossy = verify::check(&repo, &store(&lossy), &mariadb)
        .await
        .unwrap();
    assert!(!lossy.ok, "{lossy:?}");
    assert!(
        lossy
            .problem
            .as_deref()
            .unwrap()
            .contains("table notes has 1 rows, the dump holds 2"),
        "{lossy:?}"
    );
}

/// An app with storage only (no database, no message bus): a run is its record and files.
async fn app_with_files(mc: &support::Minicloud, tag: &str) -> (String, std::path::PathBuf) {
    let name = app(tag).to_string();
    let storage = deploy_with_a_file(mc, &name).await;
    (name, storage)
}

#[tokio::test]
async fn with_s3_a_run_succeeds_only_once_both_destinations_confirm_and_the_test_writes_there() {
    let bucket = support::s3::bucket();
    let endpoint = support::s3::endpoint();
    let mc = support::Minicloud::start_with(support::s3::settings(&endpoint, &bucket, None)).await;
    let (name, _) = app_with_files(&mc, "s3ok").await;
    let _cleanup = AppCleanup(&name);
    let api = mc.api();

    let resp = api
        .post(&format!("/api/apps/{name}/backups"), json!({}))
        .await;
    assert_eq!(resp.status(), 201);
    let run: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(run["state"], "succeeded", "{run}");
    let destinations = run["destinations"].as_array().unwrap();
    assert_eq!(destinations.len(), 2, "{run}");
    assert_eq!(destinations[0]["kind"], "local", "{run}");
    assert_eq!(destinations[1]["kind"], "s3", "{run}");
    assert_eq!(
        destinations[1]["location"],
        format!("{endpoint}/{bucket}/box").as_str(),
        "{run}"
    );
    for d in destinations {
        assert_eq!(d["confirmed"], true, "{run}");
        assert_eq!(d["snapshots"].as_array().unwrap().len(), 2, "{run}");
    }

    // The stock restic lists the run's snapshots in the bucket and reads the file back.
    let id = run["id"].as_str().unwrap();
    let password = run["recovery_key"].as_str().expect("shown once").to_owned();
    let key: serde_json::Value = api.get_json("/api/backups/key").await;
    assert_eq!(
        key["s3_repository"],
        format!("s3:{endpoint}/{bucket}/box").as_str(),
        "{key}"
    );
    let (ok, stdout, _) = cli(&mc, &["backups", "key"]).await;
    assert!(
        ok && stdout.contains(&format!("restic -r s3:{endpoint}/{bucket}/box")),
        "{stdout}"
    );
    let listed = support::s3::restic(
        &bucket,
        &password,
        &["snapshots", "--json", "--tag", &format!("run:{id}")],
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let mut ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["short_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut confirmed: Vec<&str> = destinations[1]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    confirmed.sort_unstable();
    assert_eq!(ids, confirmed, "{listed}");
    let file = support::s3::restic(
        &bucket,
        &password,
        &[
            "dump",
            "--tag",
            &format!("part:storage,run:{id}"),
            "latest",
            "/kept",
        ],
    );
    assert_eq!(file, KEPT_BYTES);

    // The test action writes, reads back and deletes an object, and opens the repository.
    let resp = api.post("/api/backups/s3/test", json!({})).await;
    assert_eq!(resp.status(), 200);
    let check: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(check["ok"], true, "{check}");
    let steps: Vec<&str> = check["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["write", "read", "delete", "repository"], "{check}");
    assert!(
        check["steps"][3]["detail"]
            .as_str()
            .unwrap()
            .contains("opens with this minicloud's password"),
        "{check}"
    );
    let (ok, stdout, stderr) = cli(&mc, &["backups", "test-s3"]).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("ok   delete"), "{stdout}");
    let secret = support::test_env("MINICLOUD_TEST_S3_SECRET_KEY");
    assert!(!stdout.contains(&secret) && !mc.log().contains(&secret));
    let resp = api.delete(&format!("/api/apps/{name}?data=true")).await;
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn a_wrong_s3_key_makes_the_run_partial_the_local_copy_restores_and_the_test_says_why() {
    let bucket = support::s3::bucket();
    let endpoint = support::s3::endpoint();
    let mc = support::Minicloud::start_with(support::s3::settings(
        &endpoint,
        &bucket,
        Some("not-the-secret-key"),
    ))
    .await;
    let (name, storage) = app_with_files(&mc, "s3bad").await;
    let _cleanup = AppCleanup(&name);
    let api = mc.api();

    let run: serde_json::Value = api
        .post(&format!("/api/apps/{name}/backups"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["state"], "partial", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("S3 at {endpoint}/{bucket}/box"))
            && reason.contains("Access Denied"),
        "{run}"
    );
    assert_eq!(run["destinations"][0]["confirmed"], true, "{run}");
    assert_eq!(run["destinations"][1]["confirmed"], false, "{run}");
    let (ok, _, stderr) = cli(&mc, &["backups", "run", &name]).await;
    assert!(!ok && stderr.contains("is partial"), "{stderr}");

    // The local copy is whole: the files come back from it.
    let id = run["id"].as_str().unwrap();
    std::fs::write(storage.join("kept"), "changed since").unwrap();
    let resp = api
        .post(
            &format!("/api/apps/{name}/backups/{id}/restore"),
            json!({"parts": ["storage"]}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(
        std::fs::read_to_string(storage.join("kept")).unwrap(),
        KEPT_BYTES
    );

    // The test action fails at its first step and says which setting to check.
    let check: serde_json::Value = api
        .post("/api/backups/s3/test", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(check["ok"], false, "{check}");
    assert_eq!(check["steps"][0]["step"], "write", "{check}");
    assert_eq!(check["steps"][0]["ok"], false, "{check}");
    assert!(
        check["advice"]
            .as_str()
            .unwrap()
            .contains("backup_s3_secret_key"),
        "{check}"
    );
    let (ok, stdout, stderr) = cli(&mc, &["backups", "test-s3"]).await;
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("FAIL write"), "{stdout}");
    assert!(stderr.contains("backup_s3_secret_key"), "{stderr}");
    assert!(!mc.log().contains("not-the-secret-key"));
    let resp = api.delete(&format!("/api/apps/{name}?data=true")).await;
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn a_closed_s3_port_is_named_by_the_copy_and_by_the_test() {
    use minicloud::backups::s3::{check_objects, S3Settings};
    let port = support::free_port();
    let s3 = std::sync::Arc::new(S3Settings {
        endpoint: format!("http://127.0.0.1:{port}"),
        region: "us-east-1".into(),
        bucket: support::s3::bucket(),
        prefix: "box".into(),
        access_key: "AKIDEXAMPLE".into(),
        secret_key: Secret::new("not-used"),
        path_style: true,
    });
    let local_dir = tempfile::tempdir().unwrap();
    let password = Secret::new("closed-port-test");
    let local = Repository::new(local_dir.path().to_path_buf(), password.clone());
    assert!(local.ensure().await.unwrap());
    let remote = Repository::s3(s3.clone(), password);
    let err = remote.ensure_copy_of(&local).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("connection refused"),
        "{err}"
    );

    let check = check_objects(&s3).await;
    assert!(!check.ok, "{check:?}");
    assert_eq!(check.steps.len(), 1, "{check:?}");
    assert!(
        check.steps[0].detail.contains("cannot connect"),
        "{check:?}"
    );
    assert!(
        check
            .advice
            .as_deref()
            .unwrap()
            .contains("backup_s3_endpoint"),
        "{check:?}"
    );
}

#[tokio::test]
async fn a_platform_backup_is_tagged_for_restic_and_restores_the_store_on_a_new_server() {
    let mut mc = support::Minicloud::start().await;
    let (name, _) = app_with_files(&mc, "plat").await;
    let _cleanup = AppCleanup(&name);
    let api = mc.api();
    let resp = api
        .post(
            "/api/routes",
            json!({"host": "legacy.example.com", "upstream": "127.0.0.1:9"}),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    // A backup policy of its own: a store table, so the platform backup carries it.
    let resp = api
        .put(
            &format!("/api/apps/{name}/backups/settings"),
            json!({"schedule": "02:15", "keep_last": 3}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    // An app backup first, so the restored records name one for the app.
    let resp = api
        .post(&format!("/api/apps/{name}/backups"), json!({}))
        .await;
    let app_run: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(app_run["state"], "succeeded", "{app_run}");

    // On demand through the API, then the CLI: the same run states as an app's.
    let resp = api.post("/api/backups/platform", json!({})).await;
    assert_eq!(resp.status(), 201);
    let run: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["app"], "minicloud", "{run}");
    assert_eq!(run["parts"][0]["part"], "store", "{run}");
    let (ok, stdout, stderr) = cli(&mc, &["backups", "run", "--platform"]).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("of the platform succeeded"), "{stdout}");
    let all: serde_json::Value = api.get_json("/api/backups").await;
    let mut subjects: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["app"].as_str().unwrap())
        .collect();
    // Runs of one second order by their random suffix: compare the sets.
    subjects.sort_unstable();
    let mut expected = ["minicloud", "minicloud", name.as_str()];
    expected.sort_unstable();
    assert_eq!(subjects, expected, "{all}");
    let (ok, stdout, _) = cli(&mc, &["backups", "list"]).await;
    assert!(ok && stdout.matches("(platform)").count() == 2, "{stdout}");
    assert!(stdout.contains(&name), "{stdout}");

    // The stock restic tells them apart by their tag and reads the store's copy.
    let key: serde_json::Value = api.get_json("/api/backups/key").await;
    let password = key["password"].as_str().unwrap().to_owned();
    let repo = mc.data_path().join("backups");
    let listed = restic(
        &repo,
        &password,
        &["snapshots", "--json", "--tag", "platform"],
        None,
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    for s in listed {
        let tags: Vec<&str> = s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(
            tags.contains(&"minicloud") && tags.contains(&"part:store"),
            "{tags:?}"
        );
        assert!(!tags.iter().any(|t| t.starts_with("app:")), "{tags:?}");
    }

    // The original's records, read with minicloud stopped.
    assert!(mc.stop().success());
    let original = minicloud::store::Store::open(&mc.data_path().join("minicloud/state.redb"))
        .expect("the original store");
    let (apps, routes, certs) = (
        original.apps().unwrap(),
        original.routes().unwrap(),
        original.certificates().unwrap().len(),
    );
    drop(original);
    assert_eq!(apps.len(), 1);

    // A new server: the restore brings the same apps and routes back.
    let fresh = tempfile::tempdir().unwrap();
    let out = restore_cli(fresh.path(), repo.to_str().unwrap(), &password, false, &[]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app_id = app_run["id"].as_str().unwrap();
    assert!(
        said.contains(&format!("{name}: its storage from backup {app_id}")),
        "{said}"
    );
    let state = fresh.path().join("minicloud/state.redb");
    let restored = minicloud::store::Store::open(&state).unwrap();
    assert_eq!(restored.apps().unwrap(), apps);
    assert_eq!(restored.routes().unwrap(), routes);
    assert_eq!(restored.certificates().unwrap().len(), certs);
    let app_name = minicloud::model::AppName::try_new(&name).unwrap();
    let policy = restored
        .backup_policy(&app_name)
        .unwrap()
        .expect("the policy came back");
    assert_eq!(
        policy.policy.schedule,
        minicloud::model::Schedule::At(2 * 60 + 15)
    );
    assert_eq!(policy.policy.keep_last, 3);
    // The run that took the copy was running in it; the restore records it as succeeded.
    let platform_runs = restored
        .backups(&minicloud::model::AppName::platform())
        .unwrap();
    assert_eq!(platform_runs.len(), 2);
    assert!(
        platform_runs
            .iter()
            .all(|r| r.state == minicloud::store::BackupState::Succeeded),
        "{platform_runs:?}"
    );
    drop(restored);

    // A store with apps is not replaced without --force.
    let out = restore_cli(fresh.path(), repo.to_str().unwrap(), &password, false, &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("--force") && said.contains(&name), "{said}");
    let out = restore_cli(fresh.path(), repo.to_str().unwrap(), &password, true, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A wrong password is refused before anything is written.
    let other = tempfile::tempdir().unwrap();
    let out = restore_cli(
        other.path(),
        repo.to_str().unwrap(),
        "not-the-key",
        false,
        &[],
    );
    assert!(!out.status.success());
    assert!(!other.path().join("minicloud/state.redb").exists());
}
