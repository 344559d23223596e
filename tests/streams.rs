//! Following an operation over server-sent events, against the real engine: each stream
//! carries exactly its own operation's events and always ends with one `result`, even when
//! another operation runs beside it or the operation sends no deploy event at all.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{image, AppCleanup, Minicloud, TOKEN};

/// Sends a call asking for its progress as a stream and reads the stream to its end (a stream
/// that does not end fails the test). Returns the (event, data) pairs.
async fn stream(
    mc: &Minicloud,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Vec<(String, Value)> {
    let response = reqwest::Client::new()
        .request(method, mc.api_url(path))
        .bearer_auth(TOKEN)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .json(&body)
        .send()
        .await
        .expect("API answers");
    assert_eq!(response.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(300), response.text())
        .await
        .unwrap_or_else(|_| panic!("the stream of {path} never ended"))
        .expect("a stream body");
    text.split("\n\n")
        .filter_map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((
                event.to_owned(),
                serde_json::from_str(data).expect("JSON data"),
            ))
        })
        .collect()
}

/// The stream's one `result`, which must come last.
fn result(events: &[(String, Value)]) -> &Value {
    assert_eq!(
        events.iter().filter(|(e, _)| e == "result").count(),
        1,
        "{events:#?}"
    );
    let (last, data) = events.last().expect("events");
    assert_eq!(last, "result", "{events:#?}");
    data
}

/// The progress events' data.
fn progress(events: &[(String, Value)]) -> Vec<&Value> {
    events
        .iter()
        .filter(|(e, _)| e == "progress")
        .map(|(_, d)| d)
        .collect()
}

#[tokio::test]
async fn each_stream_follows_its_own_operation_to_its_result() {
    let mc = Minicloud::start().await;
    let named = support::unique("stream");
    let _cleanup = (AppCleanup(named.clone()), AppCleanup("probe"));
    let added = mc
        .api()
        .post(
            "/api/apps",
            json!({"image": image("probe:v1"), "name": named}),
        )
        .await;
    assert_eq!(added.status(), 201);

    // A forced redeploy of one app and an unnamed add of another (named by its manifest:
    // `probe`), at the same time.
    let deploy_path = format!("/api/apps/{named}/deploy");
    let (redeploy, unnamed) = tokio::join!(
        stream(
            &mc,
            reqwest::Method::POST,
            &deploy_path,
            json!({"force": true})
        ),
        stream(
            &mc,
            reqwest::Method::POST,
            "/api/apps",
            json!({"image": image("probe:v2")})
        ),
    );
    for (events, app) in [(&redeploy, named.as_str()), (&unnamed, "probe")] {
        let done = result(events);
        assert_eq!(done["ok"], true, "{done}");
        assert_eq!(done["app"]["name"], app);
        let steps = progress(events);
        assert!(!steps.is_empty(), "{app}: no progress");
        assert!(
            steps.iter().all(|e| e["app"] == app || e["app"].is_null()),
            "{app}'s stream carries another app's events: {steps:#?}"
        );
        let ops: std::collections::BTreeSet<u64> =
            steps.iter().filter_map(|e| e["op"].as_u64()).collect();
        assert_eq!(ops.len(), 1, "{app}: events of several operations: {ops:?}");
        assert!(
            steps.iter().any(|e| e["event"] == "deployed"),
            "{app}: no deployed fact: {steps:#?}"
        );
    }

    // A stop sends no deploy event, and its stream still ends, with the stopped fact.
    let stopped = stream(
        &mc,
        reqwest::Method::POST,
        &format!("/api/apps/{named}/stop"),
        json!({}),
    )
    .await;
    let done = result(&stopped);
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(done["app"]["state"], "stopped");
    assert!(progress(&stopped).iter().any(|e| e["event"] == "stopped"));

    // An environment change that changes nothing ends at once.
    let unchanged = stream(
        &mc,
        reqwest::Method::PATCH,
        "/api/apps/probe/env",
        json!({"unset": ["NOT_SET"]}),
    )
    .await;
    assert_eq!(result(&unchanged)["ok"], true);
    assert!(progress(&unchanged).is_empty(), "{unchanged:#?}");

    for app in [named.as_str(), "probe"] {
        let gone = mc.api().delete(&format!("/api/apps/{app}")).await;
        assert_eq!(gone.status(), 204);
    }
}

#[tokio::test]
async fn a_log_follower_goes_on_across_a_redeploy_and_ends_when_the_app_stops() {
    let app = support::unique("t-follow");
    let _cleanup = AppCleanup(&app);
    let mc = Minicloud::start().await;
    let api = mc.api();
    let resp = api
        .post(
            "/api/apps",
            json!({"image": image("probe:v1"), "name": app}),
        )
        .await;
    assert_eq!(resp.status(), 201);

    let response = reqwest::Client::new()
        .get(mc.api_url(&format!("/api/apps/{app}/logs?tail=0&follow=true")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("API answers");
    assert_eq!(response.status(), 200);
    let read = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = tokio::spawn({
        let read = read.clone();
        async move {
            use futures_util::StreamExt;
            let mut body = response.bytes_stream();
            while let Some(Ok(chunk)) = body.next().await {
                read.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk));
            }
        }
    });
    let text = || read.lock().unwrap().clone();

    let resp = api
        .post(&format!("/api/apps/{app}/restart"), json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    let replaced = "[minicloud: revision 1 was replaced by revision 2; following revision 2]";
    support::wait_for(
        "the follower to reach revision 2's first line",
        Duration::from_secs(60),
        || async {
            let text = text();
            let at = text.find(replaced)?;
            text[at..].contains("listening on").then_some(())
        },
    )
    .await;

    let resp = api.post(&format!("/api/apps/{app}/stop"), json!({})).await;
    assert_eq!(resp.status(), 200);
    tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the follow ends when the app stops")
        .unwrap();
    let text = text();
    assert!(
        text.ends_with(&format!("[minicloud: {app} was stopped]\n")),
        "{text}"
    );
}
