//! Environment input on the real engine: what no process could start with is a 400 before
//! anything is stored; a value at the kernel's limit runs; a change whose redeploy fails is
//! undone in the store, so the stored environment is always the serving one.

mod support;

use serde_json::{json, Value};
use support::{image, AppCleanup as Cleanup, Minicloud};

async fn patch_env(mc: &Minicloud, app: &str, body: Value) -> (u16, Value) {
    let resp = mc
        .api()
        .client_patch(&format!("/api/apps/{app}/env"), body)
        .await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::test]
async fn env_that_cannot_run_is_refused_and_a_failed_change_is_undone() {
    let app = support::unique("t-envin");
    let _cleanup = Cleanup(&app);
    let mc = Minicloud::start_with(vec![("MINICLOUD_HEALTH_TIMEOUT".into(), "5".into())]).await;
    let resp = mc
        .api()
        .post(
            "/api/apps",
            json!({"image": image("probe:v1"), "name": app}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let stored = || async {
        let env: Value = mc.api().get_json(&format!("/api/apps/{app}/env")).await;
        env
    };
    let before = stored().await;

    // Over each limit: a 400 with a short message, and nothing stored.
    let limit = 128 * 1024;
    let too_many: serde_json::Map<String, Value> =
        (0..1001).map(|i| (format!("V{i}"), json!("x"))).collect();
    for (set, says) in [
        (json!({"NUL": "a\u{0}b"}), "NUL"),
        (json!({"BIG": "x".repeat(limit)}), "128 KiB"),
        (Value::Object(too_many), "at most 1000"),
        (json!({"-".repeat(100_000): "1"}), "not a variable name"),
    ] {
        let (status, body) = patch_env(&mc, &app, json!({ "set": set })).await;
        assert_eq!(status, 400, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(says) && error.len() < 400, "{error}");
        assert_eq!(stored().await, before);
    }

    // At the limit (`BIG=` + value + NUL is 128 KiB): stored and run.
    let value = "y".repeat(limit - "BIG=".len() - 1);
    let (status, body) = patch_env(&mc, &app, json!({"set": {"BIG": value}})).await;
    assert_eq!(status, 200, "{body}");
    let host = format!("{app}.mc.test");
    let served: Value = serde_json::from_str(&mc.get_text(&host, "/env").await).unwrap();
    assert_eq!(served["BIG"].as_str().map(str::len), Some(value.len()));

    // A change whose redeploy fails is taken back; the serving revision keeps its env.
    let before = stored().await;
    let (status, body) = patch_env(&mc, &app, json!({"set": {"PROBE_UNHEALTHY": "1"}})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(stored().await, before);
    let served: Value = serde_json::from_str(&mc.get_text(&host, "/env").await).unwrap();
    assert!(served.get("PROBE_UNHEALTHY").is_none(), "{served}");
}
