//! Changes a crash of minicloud (kill -9) cuts short, at several points of an env change: after
//! the next start, the stored variables, the serving container and the history agree, and
//! `apps show` says what became of the change.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use support::{containers_of, image, wait_for, AppCleanup as Cleanup, Minicloud};

async fn status(mc: &Minicloud, app: &str) -> Value {
    mc.api().get_json(&format!("/api/apps/{app}")).await
}

async fn stored_env(mc: &Minicloud, app: &str) -> Value {
    mc.api().get_json(&format!("/api/apps/{app}/env")).await
}

/// The variables the serving container was started with, as the probe reports them.
async fn served_env(mc: &Minicloud, app: &str) -> Value {
    let host = format!("{app}.mc.test");
    let text = mc.get_text(&host, "/env").await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

async fn newest_deploy(mc: &Minicloud, app: &str) -> Value {
    let history: Vec<Value> = mc.api().get_json(&format!("/api/apps/{app}/deploys")).await;
    history[0].clone()
}

async fn wait_for_only_revision(app: &str, revision: u64) {
    wait_for(
        "only the serving revision's container",
        // The start-up reconcile stops the leftover with the engine's 10 s grace; generous
        // for a loaded machine.
        Duration::from_secs(120),
        || async {
            // The web container and the probe's runner (`mc-<app>.worker-<rev>`), of this
            // revision alone.
            let names = containers_of(app);
            let web = format!("mc-{app}-{revision}");
            let suffix = format!("-{revision}");
            (names.contains(&web) && names.iter().all(|n| n.ends_with(&suffix))).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn an_env_change_cut_short_by_a_crash_is_undone_or_kept_whole() {
    let app = support::unique("t-intr");
    let _cleanup = Cleanup(&app);
    // A long health wait: the crash comes while the new revision is still being waited for.
    let mut mc =
        Minicloud::start_with(vec![("MINICLOUD_HEALTH_TIMEOUT".into(), "90".into())]).await;
    let resp = mc
        .api()
        .post(
            "/api/apps",
            json!({"image": image("probe:v1"), "name": app, "env": {"KEEP": "1"}}),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let keep_only = json!({"KEEP": "1"});

    // 1. Killed during the redeploy: revision 2 runs but never answers its probe.
    let url = mc.api_url(&format!("/api/apps/{app}/env"));
    let change = tokio::spawn(async move {
        reqwest::Client::new()
            .patch(url)
            .bearer_auth(support::TOKEN)
            .json(&json!({"set": {"PROBE_UNHEALTHY": "1", "K9": "mid"}}))
            .send()
            .await
    });
    wait_for("revision 2 to start", Duration::from_secs(30), || async {
        containers_of(&app)
            .contains(&format!("mc-{app}-2"))
            .then_some(())
    })
    .await;
    // Until it serves, `show` says the variables are not deployed.
    let during = status(&mc, &app).await;
    assert_eq!(during["env_not_deployed"], true, "{during}");
    assert_eq!(during["revision"], 1, "{during}");
    mc.kill();
    let _ = change.await;
    mc.start_again().await;
    wait_for_only_revision(&app, 1).await;
    assert_eq!(stored_env(&mc, &app).await, keep_only);
    let served = served_env(&mc, &app).await;
    assert_eq!(served["KEEP"], "1", "{served}");
    assert!(served.get("K9").is_none(), "{served}");
    let after = status(&mc, &app).await;
    assert_eq!(after["revision"], 1, "{after}");
    assert!(after.get("env_not_deployed").is_none(), "{after}");
    let error = after["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("interrupted") && error.contains("environment change was undone"),
        "{after}"
    );
    let newest = newest_deploy(&mc, &app).await;
    assert_eq!(
        (&newest["revision"], &newest["state"], &newest["trigger"]),
        (&json!(2), &json!("failed"), &json!("environment change")),
        "{newest}"
    );

    // 2. Killed after the variables were stored, before the redeploy was recorded. That moment
    //    is too short to hit by timing, so the store is left as the change leaves it there.
    let id_before = support::docker(&["inspect", "-f", "{{.Id}}", &format!("mc-{app}-1")]);
    mc.kill();
    {
        let path = mc.data_path().join("minicloud").join("state.redb");
        let store = minicloud::store::Store::open(&path).unwrap();
        let name = minicloud::model::AppName::try_new(&app).unwrap();
        let mut record = store.app(&name).unwrap().unwrap();
        record.env_before = Some(record.env.clone());
        record.env.insert("K9".into(), "early".into());
        store.put_app(&record).unwrap();
    }
    mc.start_again().await;
    assert_eq!(stored_env(&mc, &app).await, keep_only);
    let newest = newest_deploy(&mc, &app).await;
    assert_eq!(
        (&newest["revision"], &newest["state"], &newest["trigger"]),
        (&json!(3), &json!("failed"), &json!("environment change")),
        "{newest}"
    );
    assert!(
        newest["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("environment change was undone"),
        "{newest}"
    );
    // The serving container was adopted, not replaced.
    assert_eq!(
        support::docker(&["inspect", "-f", "{{.Id}}", &format!("mc-{app}-1")]),
        id_before
    );
    assert!(served_env(&mc, &app).await.get("K9").is_none());

    // 3. Killed after the redeploy served: the change is kept whole.
    let resp = mc
        .api()
        .client_patch(
            &format!("/api/apps/{app}/env"),
            json!({"set": {"K9": "done"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    mc.kill();
    mc.start_again().await;
    wait_for_only_revision(&app, 4).await;
    let want: BTreeMap<&str, &str> = [("K9", "done"), ("KEEP", "1")].into();
    assert_eq!(stored_env(&mc, &app).await, json!(want));
    assert_eq!(served_env(&mc, &app).await["K9"], "done");
    let after = status(&mc, &app).await;
    assert_eq!(after["revision"], 4, "{after}");
    assert!(after["last_error"].is_null(), "{after}");
}
