//! Certificates by ACME against Pebble, Let's Encrypt's test CA, with real HTTP-01
//! validation of the edge: issuance, renewal without a gap, a host that cannot be validated,
//! a restart that orders nothing, and ACME off or its CA down.
//!
//! Tests that need Pebble's HTTP-01 port hold a file lock, so they run one at a time even
//! under nextest. Run: `cargo nextest run --test acme` with the test environment's variables
//! set (see `scripts/test-env.sh`).
// Tests read their own environment (the test env file's variables); the rule that only
// src/config reads the environment is for minicloud itself.
#![allow(clippy::disallowed_methods)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::acme::{
    cert_status, lock_acme_port, orders_in_log, verified_serial, wait_for_state, Pebble,
};
use support::{served_certificate, upstream, Minicloud};

const ISSUE_TIMEOUT: Duration = Duration::from_secs(60);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_routed_host_gets_a_certificate_that_only_pebbles_root_needs_to_trust() {
    let pebble = Pebble::from_env();
    let _lock = lock_acme_port();
    let root = pebble.root().await;
    let mc = pebble.minicloud().await;
    let app = upstream::start("issued").await;

    let started = Instant::now();
    mc.api().add_route("issue.example.com", app.addr).await;
    let status = wait_for_state(&mc, "issue.example.com", "valid", ISSUE_TIMEOUT).await;
    let took = started.elapsed();
    eprintln!("issuance against Pebble, route added → certificate valid: {took:?}");

    let serial = verified_serial(mc.https_addr(), "issue.example.com", &root).await;
    assert_eq!(
        status["serial"].as_str().unwrap().to_lowercase(),
        serial.to_lowercase()
    );
    assert!(status["not_after"].as_i64().unwrap() > now() + 86_400);
    assert_eq!(
        status["renew_basis"], "two-thirds",
        "Pebble 2.4 offers no ARI"
    );
    assert!(status["error"].is_null());

    // The admin host gets one too; the app answers over the trusted certificate.
    wait_for_state(&mc, &mc.admin_host(), "valid", ISSUE_TIMEOUT).await;
    verified_serial(mc.https_addr(), &mc.admin_host(), &root).await;
    let body = mc.get_text("issue.example.com", "/").await;
    assert_eq!(body, "issued");

    // A name nobody routed is never ordered, whatever SNI a stranger sends.
    served_certificate(mc.https_addr(), "stranger.example.com").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(orders_in_log(&mc.log(), "stranger.example.com"), 0);
    assert!(cert_status(&mc, "stranger.example.com").await.is_none());
    assert_eq!(orders_in_log(&mc.log(), "issue.example.com"), 1);

    // The CLI shows the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minicloud"))
        .args(["certs", "list"])
        .env("MINICLOUD_URL", mc.api_url(""))
        .env("MINICLOUD_TOKEN", support::TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("issue.example.com"))
        .unwrap_or_else(|| panic!("no row for the host in:\n{text}"));
    assert!(
        line.contains("valid") && line.contains("renew 20"),
        "{text}"
    );
}

#[tokio::test]
async fn a_forced_renewal_swaps_the_certificate_while_the_edge_keeps_serving() {
    let pebble = Pebble::from_env();
    let _lock = lock_acme_port();
    let root = pebble.root().await;
    let mc = pebble.minicloud().await;
    let app = upstream::start("renewed").await;
    mc.api().add_route("renew.example.com", app.addr).await;
    wait_for_state(&mc, "renew.example.com", "valid", ISSUE_TIMEOUT).await;
    let first = verified_serial(mc.https_addr(), "renew.example.com", &root).await;

    // Requests keep flowing, each on a new TLS connection, for the whole renewal.
    let stop = Arc::new(AtomicUsize::new(0));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let url = mc.https_url("renew.example.com", "/");
        let addr = mc.https_addr();
        tokio::spawn(async move {
            while stop.load(Ordering::Relaxed) == 0 {
                let client = reqwest::Client::builder()
                    .danger_accept_invalid_certs(true)
                    .resolve("renew.example.com", addr)
                    .build()
                    .unwrap();
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };

    let resp = mc
        .api()
        .post(
            "/api/certificates/renew.example.com/renew",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    let second = support::wait_for("a new serial", ISSUE_TIMEOUT, || async {
        let serial = verified_serial(mc.https_addr(), "renew.example.com", &root).await;
        (serial != first).then_some(serial)
    })
    .await;
    let status = wait_for_state(&mc, "renew.example.com", "valid", ISSUE_TIMEOUT).await;
    assert_eq!(
        status["serial"].as_str().unwrap().to_lowercase(),
        second.to_lowercase()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(1, Ordering::Relaxed);
    load.await.unwrap();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 10, "only {ok} requests went through");
    assert_eq!(
        failed, 0,
        "{failed} requests failed during the renewal ({ok} ok)"
    );
    assert_eq!(orders_in_log(&mc.log(), "renew.example.com"), 2);

    // A host that is not routed is refused (limits: see the lifecycle unit tests).
    let resp = mc
        .api()
        .post(
            "/api/certificates/nowhere.example.com/renew",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_host_pebble_cannot_validate_fails_with_the_reason_and_waits_to_retry() {
    let pebble = Pebble::from_env();
    let _lock = lock_acme_port();
    let host = "unreachable.example.com";
    // Pebble resolves the host to an address where nothing answers HTTP.
    pebble.point_dns(host, "127.0.0.2").await;
    let mc = pebble.minicloud().await;
    let app = upstream::start("never").await;
    let before = now();
    mc.api().add_route(host, app.addr).await;
    let status = wait_for_state(&mc, host, "failed", ISSUE_TIMEOUT).await;
    pebble.clear_dns(host).await;

    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("could not validate") && error.contains("127.0.0.2"),
        "{error}"
    );
    let retry = status["next_retry"].as_i64().unwrap();
    assert!(
        retry >= before + 290,
        "retry at {retry}, failed at ~{before}"
    );
    assert!(retry <= now() + 400, "first retry within minutes: {retry}");
    // The edge still serves the host (self-signed) and the CLI shows why and when.
    let (names, _) = served_certificate(mc.https_addr(), host).await;
    assert_eq!(names, vec![host]);
    // No retry storm: still one order a few seconds later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(orders_in_log(&mc.log(), host), 1);
    assert_eq!(cert_status(&mc, host).await.unwrap()["state"], "failed");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minicloud"))
        .args(["certs", "list"])
        .env("MINICLOUD_URL", mc.api_url(""))
        .env("MINICLOUD_TOKEN", support::TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with(host)).unwrap();
    assert!(
        line.contains("failed") && line.contains("retry 20"),
        "{text}"
    );
}

#[tokio::test]
async fn a_restart_serves_the_stored_certificate_and_orders_nothing() {
    let pebble = Pebble::from_env();
    let _lock = lock_acme_port();
    let root = pebble.root().await;
    let mut mc = pebble.minicloud().await;
    let app = upstream::start("kept").await;
    mc.api().add_route("kept.example.com", app.addr).await;
    wait_for_state(&mc, "kept.example.com", "valid", ISSUE_TIMEOUT).await;
    wait_for_state(&mc, &mc.admin_host(), "valid", ISSUE_TIMEOUT).await;
    let serial = verified_serial(mc.https_addr(), "kept.example.com", &root).await;
    let orders_before = mc.log().matches("ACME order created").count();

    mc.restart().await;
    // Served at once, from the store, before any order could have completed.
    assert_eq!(
        verified_serial(mc.https_addr(), "kept.example.com", &root).await,
        serial
    );
    assert_eq!(
        cert_status(&mc, "kept.example.com").await.unwrap()["state"],
        "valid"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = mc.log();
    assert_eq!(
        log.matches("ACME order created").count(),
        orders_before,
        "{log}"
    );
    assert_eq!(
        log.matches("ACME account created").count(),
        1,
        "the account is reused"
    );
}

#[tokio::test]
async fn without_an_email_hosts_stay_self_signed_and_the_api_says_why() {
    let mc = Minicloud::start().await;
    let app = upstream::start("plain").await;
    mc.api().add_route("plain.example.com", app.addr).await;
    mc.api().add_route("*.wild.example.com", app.addr).await;
    let status = cert_status(&mc, "plain.example.com").await.unwrap();
    assert_eq!(status["state"], "self-signed");
    assert!(status["reason"]
        .as_str()
        .unwrap()
        .contains("MINICLOUD_ACME_EMAIL"));
    let wild = cert_status(&mc, "*.wild.example.com").await.unwrap();
    assert!(wild["reason"].as_str().unwrap().contains("wildcard"));
    let resp = mc
        .api()
        .post(
            "/api/certificates/plain.example.com/renew",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(resp.status(), 409);
    assert!(!mc.log().contains("ACME order created"));
}

#[tokio::test]
async fn a_ca_that_is_down_ends_as_a_readable_failure_and_serving_goes_on() {
    let dir = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dir.local_addr().unwrap().port();
    drop(dir);
    let mc = Minicloud::start_with(vec![
        (
            "MINICLOUD_ACME_EMAIL".into(),
            "tests@minicloud.example".into(),
        ),
        (
            "MINICLOUD_ACME_DIRECTORY".into(),
            format!("https://127.0.0.1:{port}/dir"),
        ),
    ])
    .await;
    let app = upstream::start("down").await;
    mc.api().add_route("down.example.com", app.addr).await;
    let status = wait_for_state(&mc, "down.example.com", "failed", ISSUE_TIMEOUT).await;
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("ACME account") && error.contains("refused"),
        "{error}"
    );
    assert!(status["next_retry"].as_i64().unwrap() > now() + 200);
    let body = mc.get_text("down.example.com", "/").await;
    assert_eq!(body, "down");
}
