//! One owner per host, on the real engine: the admin host, an app's own address, an app's
//! custom domain and an external route each refuse the others with a 409 naming the owner,
//! in both orders and across restarts of minicloud; removing one owner's host never takes
//! another's off the edge.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{image, upstream, wait_for, Api, AppCleanup as Cleanup, Minicloud};

/// Who answers `/` at `host` through the edge: an app's name, the external upstream's
/// text, or the status code when neither answers.
async fn served_by(mc: &Minicloud, host: &str) -> String {
    let resp = mc
        .client_for(&[host])
        .get(mc.https_url(host, "/"))
        .send()
        .await
        .expect("the edge answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    if status != 200 {
        return status.to_string();
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(json) => json["app"].as_str().unwrap_or_default().to_owned(),
        Err(_) => text,
    }
}

/// POSTs and returns the status and the error message (if any).
async fn post(api: &Api, path: &str, body: Value) -> (u16, String) {
    let resp = api.post(path, body).await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or_default();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn add_route(api: &Api, host: &str, upstream: &str) -> (u16, String) {
    post(
        api,
        "/api/routes",
        json!({"host": host, "upstream": upstream}),
    )
    .await
}

async fn add_domain(api: &Api, app: &str, domain: &str) -> (u16, String) {
    post(
        api,
        &format!("/api/apps/{app}/domains"),
        json!({"domain": domain}),
    )
    .await
}

/// Waits until the start-up reconcile has let go of `apps` (a no-op env change takes the
/// app's lock like any operation).
async fn settled(mc: &Minicloud, apps: &[&str]) {
    for app in apps {
        wait_for(
            "the start-up reconcile",
            Duration::from_secs(60),
            || async {
                let path = format!("/api/apps/{app}/env");
                let resp = mc.api().client_patch(&path, json!({})).await;
                (resp.status() == 200).then_some(())
            },
        )
        .await;
    }
}

fn assert_taken((status, error): (u16, String), owner: &str) {
    assert_eq!(status, 409, "{error}");
    assert!(error.contains(owner), "'{error}' should name {owner}");
}

#[tokio::test]
async fn every_host_has_one_owner_in_both_orders_across_restarts_and_removals() {
    let (a, b) = (support::unique("t-own-a"), support::unique("t-own-b"));
    let _cleanup = (Cleanup(&a), Cleanup(&b));
    let mut mc = Minicloud::start().await;
    let external = upstream::start("external").await;
    let ext = external.addr.to_string();
    let admin = mc.admin_host();
    let (a_host, b_host) = (format!("{a}.mc.test"), format!("{b}.mc.test"));
    let a_domain = format!("{a}.shop.example");
    let r_host = format!("{a}.ext.example");

    let api = mc.api();
    let (status, error) = post(
        &api,
        "/api/apps",
        json!({"image": image("probe:v1"), "name": a}),
    )
    .await;
    assert_eq!(status, 201, "{error}");
    assert_eq!(add_domain(&api, &a, &a_domain).await.0, 200);
    assert_eq!(add_route(&api, &r_host, &ext).await.0, 201);
    // A wildcard is its own pattern: exact names under it keep their owners.
    assert_eq!(add_route(&api, "*.mc.test", &ext).await.0, 201);

    // A route first, then an app whose own address it is: refused, then allowed once the
    // route is gone.
    assert_eq!(add_route(&api, &b_host, &ext).await.0, 201);
    let (status, error) = post(
        &api,
        "/api/apps",
        json!({"image": image("probe:v1"), "name": b}),
    )
    .await;
    assert_taken((status, error), "an external route");
    assert_eq!(
        api.delete(&format!("/api/routes/{b_host}")).await.status(),
        204
    );
    let (status, error) = post(
        &api,
        "/api/apps",
        json!({"image": image("probe:v1"), "name": b}),
    )
    .await;
    assert_eq!(status, 201, "{error}");

    for round in ["before a restart", "after a restart"] {
        // Every pair, both orders.
        assert_taken(add_route(&api, &a_host, &ext).await, &format!("app {a}"));
        assert_taken(add_route(&api, &a_domain, &ext).await, &format!("app {a}"));
        assert_taken(add_route(&api, &admin, &ext).await, "admin");
        assert_taken(add_domain(&api, &b, &a_domain).await, &format!("app {a}"));
        assert_taken(add_domain(&api, &a, &r_host).await, "an external route");
        assert_taken(add_domain(&api, &b, &admin).await, "admin");
        // Names under the base domain are apps' own: never a custom domain.
        let (status, error) = add_domain(&api, &b, &a_host).await;
        assert_eq!(status, 400, "{round}: {error}");
        // Re-adding an owner's own host is no conflict.
        assert_eq!(add_route(&api, &r_host, &ext).await.0, 201, "{round}");
        assert_eq!(add_domain(&api, &a, &a_domain).await.0, 200, "{round}");

        assert_eq!(served_by(&mc, &a_host).await, a, "{round}");
        assert_eq!(served_by(&mc, &a_domain).await, a, "{round}");
        assert_eq!(served_by(&mc, &b_host).await, b, "{round}");
        assert_eq!(served_by(&mc, &r_host).await, "external", "{round}");
        assert_eq!(
            served_by(&mc, "nobody.mc.test").await,
            "external",
            "{round}"
        );
        if round == "before a restart" {
            mc.restart().await;
            settled(&mc, &[&a, &b]).await;
        }
    }
    let api = mc.api();

    // Removing each owner's host leaves every other owner's served.
    let no_route = api.delete(&format!("/api/routes/{a_host}")).await;
    assert_eq!(
        no_route.status(),
        404,
        "an app's host is no route to remove"
    );
    assert_eq!(served_by(&mc, &a_host).await, a);
    assert_eq!(api.delete("/api/routes/*.mc.test").await.status(), 204);
    assert_eq!(served_by(&mc, &a_host).await, a);
    assert_eq!(served_by(&mc, "nobody.mc.test").await, "404");
    assert_eq!(
        api.delete(&format!("/api/routes/{r_host}")).await.status(),
        204
    );
    assert_eq!(served_by(&mc, &r_host).await, "404");
    assert_eq!(served_by(&mc, &a_domain).await, a);
    let removed = api
        .delete(&format!("/api/apps/{a}/domains/{a_domain}"))
        .await;
    assert_eq!(removed.status(), 200);
    assert_eq!(served_by(&mc, &a_domain).await, "404");
    assert_eq!(served_by(&mc, &a_host).await, a);

    // A freed host can be claimed by another owner, and the app's removal frees its own.
    assert_eq!(add_domain(&api, &b, &a_domain).await.0, 200);
    assert_eq!(served_by(&mc, &a_domain).await, b);
    assert_eq!(api.delete(&format!("/api/apps/{a}")).await.status(), 204);
    assert_eq!(served_by(&mc, &a_host).await, "404");
    assert_eq!(served_by(&mc, &a_domain).await, b);
    assert_eq!(add_route(&api, &a_host, &ext).await.0, 201);
    assert_eq!(served_by(&mc, &a_host).await, "external");

    // A stopped app's addresses say so with a 503, also after a restart, until it starts.
    let stopped = api.post(&format!("/api/apps/{b}/stop"), json!({})).await;
    assert_eq!(stopped.status(), 200);
    assert_eq!(served_by(&mc, &b_host).await, "503");
    let page = mc.get_text(&b_host, "/").await;
    assert!(page.contains(&format!("The app {b} is stopped")), "{page}");

    mc.restart().await;
    settled(&mc, &[&b]).await;
    assert_eq!(served_by(&mc, &a_host).await, "external");
    assert_eq!(served_by(&mc, &a_domain).await, "503");
    assert_eq!(served_by(&mc, &b_host).await, "503");
    let started = mc
        .api()
        .post(&format!("/api/apps/{b}/start"), json!({}))
        .await;
    assert_eq!(started.status(), 200);
    assert_eq!(served_by(&mc, &a_domain).await, b);
    assert_eq!(served_by(&mc, &b_host).await, b);
    assert_eq!(
        mc.api().delete(&format!("/api/apps/{b}")).await.status(),
        204
    );
}
