//! A full disk under the data dir: the write that does not fit is a 507 naming the directory
//! and the space left, health says degraded meanwhile, the next write after the disk grows
//! succeeds without a restart, and a restart finds exactly what was acknowledged.
//!
//! The data dir is a small tmpfs mounted here (the tests run as root).

mod support;

use serde_json::{json, Value};
use support::disk::{fill, Tmpfs};
use support::Minicloud;

async fn add_route(mc: &Minicloud, host: &str) -> (u16, Value) {
    let resp = mc
        .api()
        .post(
            "/api/routes",
            json!({"host": host, "upstream": "127.0.0.1:9"}),
        )
        .await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

async fn health(mc: &Minicloud) -> (u16, Value) {
    let resp = mc.api().get("/api/health").await;
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn a_full_disk_is_a_507_and_the_store_works_again_once_there_is_room() {
    let disk = match Tmpfs::mount("8m") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a tmpfs for the data dir (needs root): {why}");
            return;
        }
    };
    let mut mc = Minicloud::start_with(vec![(
        "MINICLOUD_DATA_DIR".into(),
        disk.dir.display().to_string(),
    )])
    .await;
    assert_eq!(health(&mc).await.0, 200);

    fill(&disk.dir, "filler", 64 * 1024);
    // Routes with long names until one does not fit.
    let label = "x".repeat(60);
    let mut acknowledged = Vec::new();
    let refused = loop {
        let host = format!("r{}.{label}.{label}.example.com", acknowledged.len());
        let (status, body) = add_route(&mc, &host).await;
        match status {
            201 => acknowledged.push(host),
            507 => break body,
            other => panic!("route {}: {other} {body}", acknowledged.len()),
        }
        assert!(acknowledged.len() < 20_000, "64 KiB never filled up");
    };
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains(&disk.dir.display().to_string()) && message.contains("bytes free"),
        "{message}"
    );

    // Quite full now (what the refused write had taken is free again): still a 507, not the
    // 500 of a store that gave up, and health says why.
    fill(&disk.dir, "rest", 0);
    for i in 0.. {
        let host = format!("again{i}.{label}.{label}.example.com");
        let (status, body) = add_route(&mc, &host).await;
        match status {
            201 => acknowledged.push(host),
            507 => break,
            other => panic!("{host}: {other} {body}"),
        }
        assert!(i < 1000, "a full disk took every write");
    }
    let (status, body) = health(&mc).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "degraded");
    assert!(
        body["store"]["problem"]
            .as_str()
            .unwrap()
            .contains("no space left"),
        "{body}"
    );
    // Reads keep working.
    let routes: Vec<Value> = mc.api().get_json("/api/routes").await;
    assert_eq!(routes.len(), acknowledged.len());

    // The disk grows: health turns ok by itself, and the next write works, without a
    // restart.
    disk.resize("64m");
    let (status, body) = health(&mc).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    let (status, body) = add_route(&mc, "after.example.com").await;
    assert_eq!(status, 201, "{body}");
    acknowledged.push("after.example.com".into());

    // Everything acknowledged, and nothing else, is there after a restart.
    mc.restart().await;
    let routes: Vec<Value> = mc.api().get_json("/api/routes").await;
    let mut stored: Vec<String> = routes
        .iter()
        .map(|r| r["host"].as_str().unwrap().to_owned())
        .collect();
    stored.sort();
    acknowledged.sort();
    assert_eq!(stored, acknowledged);
    mc.stop();
}
