//! Backups against the real MariaDB, storage, engine and Debian's restic: the probe's rows and
//! files come back after a restore; the stock restic tool lists the snapshots with the
//! password; a hostile dump cannot touch another database.

mod support;

use std::process::Command;

use mysql_async::prelude::Queryable;

use minicloud::backups::database::{load, DUMP_FILE};
use minicloud::backups::Repository;
use minicloud::model::secret::Secret;
use minicloud::services::{Provisioner, ServiceName};
use support::net::Switch;
use support::services::{admin_conn, app, mariadb_admin_url, mariadb_with, rabbitmq_api_url};
use support::{test_env, AppCleanup};

/// Runs the stock restic on `repo` with `password`; returns stdout.
fn restic(repo: &std::path::Path, password: &str, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("restic")
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", password)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("restic (Debian's package) is installed");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the CLI against `mc`: success, stdout, stderr. Async: the test's runtime also runs
/// the MariaDB switch, which a blocking wait would stall.
async fn cli(mc: &support::Minicloud, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_minicloud"))
        .args(args)
        .env("MINICLOUD_URL", mc.api_url(""))
        .env("MINICLOUD_TOKEN", support::TOKEN)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_probe_gets_its_rows_and_files_back_and_stock_restic_reads_the_backup() {
    let gateway = test_env("MINICLOUD_TEST_HOST_GATEWAY");
    // minicloud reaches MariaDB through a switch, to take it away for the failed run.
    let mut mariadb = Switch::new("127.0.0.1:3306").await;
    let admin_url =
        mariadb_admin_url().replace("@127.0.0.1:3306", &format!("@127.0.0.1:{}", mariadb.port));
    assert!(admin_url.contains(&mariadb.port.to_string()), "{admin_url}");
    let mc = support::Minicloud::start_with(
        [
            ("MINICLOUD_HEALTH_TIMEOUT", "30".to_owned()),
            ("MINICLOUD_MARIADB_URL", admin_url),
            ("MINICLOUD_MARIADB_APP_HOST", gateway.clone()),
            ("MINICLOUD_RABBITMQ_API", rabbitmq_api_url()),
            ("MINICLOUD_RABBITMQ_APP_HOST", gateway),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    )
    .await;
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
    assert_eq!(parts, ["record", "database", "storage"], "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let password = run["recovery_key"].as_str().expect("shown once").to_owned();
    let key: serde_json::Value = api.get_json("/api/backups/key").await;
    assert_eq!(key["password"], password.as_str());
    let listed: serde_json::Value = api.get_json(&format!("/api/apps/{name}/backups")).await;
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");

    // The CLI runs one too, following its progress.
    let (ok, stdout, stderr) = cli(&mc, &["backups", "run", &name]).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("==> dumping the database"), "{stderr}");
    assert!(stdout.contains("succeeded"), "{stdout}");

    // The stock tool lists the run's snapshots and reads the dump, given the password.
    let repo = mc.data_path().join("backups");
    let snapshots = restic(
        &repo,
        &password,
        &["snapshots", "--json", "--tag", &format!("run:{id}")],
        None,
    );
    let snapshots: serde_json::Value = serde_json::from_str(&snapshots).unwrap();
    assert_eq!(snapshots.as_array().unwrap().len(), 3, "{snapshots}");
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

    // Change everything, then restore.
    assert_eq!(send(web.post(url("/db")).body("row-after")).await.0, 201);
    assert_eq!(
        send(web.put(url("/file/note")).body("changed")).await.0,
        201
    );
    assert_eq!(send(web.put(url("/file/extra")).body("new")).await.0, 201);
    let resp = api
        .post(
            &format!("/api/apps/{name}/backups/{id}/restore"),
            serde_json::json!({"parts": ["database", "storage"]}),
        )
        .await;
    let status = resp.status();
    let restored: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["database"]["skipped"], 0, "{restored}");
    let safety = restored["safety_backup"].as_str().unwrap().to_owned();

    // Serving again, with the backed-up rows and files.
    assert_eq!(send(web.get(url("/db"))).await, rows_before);
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
    let out = restic(
        repo_dir.path(),
        password,
        &["backup", "--json", "--stdin", "--stdin-filename", DUMP_FILE],
        Some(&hostile),
    );
    let snapshot = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["snapshot_id"].as_str().map(str::to_owned))
        .unwrap();
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
    let err = load(&repo, &snapshot, &settings, &db, &account)
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
    let out = restic(
        repo_dir.path(),
        password,
        &["backup", "--json", "--stdin", "--stdin-filename", DUMP_FILE],
        Some(&tame),
    );
    let snapshot = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["snapshot_id"].as_str().map(str::to_owned))
        .unwrap();
    let loaded = load(&repo, &snapshot, &settings, &db, &account)
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
