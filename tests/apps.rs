//! Apps on the real Docker engine, pulled from the local registry: add, update under load,
//! unhealthy revisions, rollback, webhook, bad images, env, domains, and restarts of
//! minicloud itself. Each test uses its own minicloud and its own app names.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{containers_of, docker, image, wait_for, AppCleanup as Cleanup, Minicloud};

/// Starts minicloud with a short health timeout, so unhealthy revisions fail fast.
async fn minicloud() -> Minicloud {
    Minicloud::start_with(vec![("MINICLOUD_HEALTH_TIMEOUT".into(), "8".into())]).await
}

/// Adds an app and asserts it runs.
async fn add_app(mc: &Minicloud, name: &str, tag: &str) -> Value {
    let resp = mc
        .api()
        .post("/api/apps", json!({"image": image(tag), "name": name}))
        .await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "running", "{body}");
    body
}

async fn get_json(mc: &Minicloud, host: &str, path: &str) -> Value {
    mc.client_for(&[host])
        .get(mc.https_url(host, path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_app_from_the_registry_is_served_with_its_environment_and_runner() {
    let app = support::unique("t-serve");
    let mc = minicloud().await;
    let _cleanup = Cleanup(&app);
    let added = add_app(&mc, &app, "probe:v1").await;
    assert_eq!(added["revision"], 1);
    assert!(added["digest"].as_str().unwrap().starts_with("sha256:"));

    let host = &format!("{app}.mc.test");
    let root = get_json(&mc, host, "/").await;
    assert_eq!(root["version"], "v1");
    assert_eq!(root["app"], app.as_str());
    let env = get_json(&mc, host, "/env").await;
    assert_eq!(env["PORT"], "8080");
    assert_eq!(env["APP_NAME"], app.as_str());
    assert_eq!(env["APP_URL"], format!("https://{host}:{}", mc.https_port));
    assert_eq!(
        env["LOG_LEVEL"], "info",
        "the manifest's defaults are applied"
    );

    // The container as the engine sees it.
    let web = &format!("mc-{app}-1");
    let inspect = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.Memory}} {{.HostConfig.LogConfig.Type}} {{index .Config.Labels \"minicloud.rev\"}} {{.HostConfig.Init}}",
        web,
    ]);
    assert_eq!(
        inspect, "unless-stopped 268435456 json-file 1 true",
        "Docker's init runs in front of the app unless the manifest opts out"
    );

    // The runner runs the same image with the same environment, and no route.
    let runner = &format!("mc-{app}.worker-1");
    let logs = wait_for(
        "the runner to log its env",
        Duration::from_secs(10),
        || async {
            let logs = docker(&["logs", runner]);
            logs.contains("APP_NAME").then_some(logs)
        },
    )
    .await;
    assert!(logs.contains(&format!("{app} worker v1")), "{logs}");
    assert!(logs.contains("\"APP_URL\""), "{logs}");
    assert_eq!(
        containers_of(&app),
        vec![web.to_string(), runner.to_string()]
    );

    // The status view.
    let show: Value = mc.api().get_json(&format!("/api/apps/{app}")).await;
    assert_eq!(show["state"], "running");
    // Memory and CPU use come from the background sampler's cache, once it has read the
    // container: the answer never waits for the engine.
    wait_for("a usage sample", Duration::from_secs(30), || async {
        let show: Value = mc.api().get_json(&format!("/api/apps/{app}")).await;
        let memory = show["memory_bytes"].as_u64().filter(|m| *m > 0);
        let cpu = show["cpu_percent"].as_f64().filter(|c| *c >= 0.0);
        memory.zip(cpu)
    })
    .await;
    assert!(show["webhook_url"]
        .as_str()
        .unwrap()
        .contains(&format!("/hooks/deploy/{app}/")));
    let list: Vec<Value> = mc.api().get_json("/api/apps").await;
    assert_eq!(list.len(), 1);
    assert!(
        list[0]["webhook_url"].is_null(),
        "the list does not show secrets"
    );

    // Removing it takes everything away.
    assert_eq!(
        mc.api().delete(&format!("/api/apps/{app}")).await.status(),
        204
    );
    assert!(containers_of(&app).is_empty());
    let gone = mc
        .client_for(&[host])
        .get(mc.https_url(host, "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn an_update_under_continuous_load_fails_no_request() {
    let app = support::unique("t-load");
    let mc = minicloud().await;
    let _cleanup = Cleanup(&app);
    add_app(&mc, &app, "probe:v1").await;
    let host = &format!("{app}.mc.test");
    let client = mc.client_for(&[host]);
    let url = mc.https_url(host, "/");

    let done = Arc::new(AtomicBool::new(false));
    let (ok, failed, v2) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut loaders = Vec::new();
    for _ in 0..4 {
        let (client, url, done) = (client.clone(), url.clone(), done.clone());
        let (ok, failed, v2) = (ok.clone(), failed.clone(), v2.clone());
        loaders.push(tokio::spawn(async move {
            // Bounded: stops when told, and never more than 20,000 requests per loader.
            for _ in 0..20_000 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        let body = r.text().await.unwrap_or_default();
                        ok.fetch_add(1, Ordering::Relaxed);
                        if body.contains("\"v2\"") {
                            v2.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resp = mc
        .api()
        .post(
            &format!("/api/apps/{app}/deploy"),
            json!({"image": image("probe:v2")}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    done.store(true, Ordering::Relaxed);
    for l in loaders {
        l.await.unwrap();
    }
    let (ok, failed, v2) = (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        v2.load(Ordering::Relaxed),
    );
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
    assert!(
        v2 > 0 && v2 < ok,
        "both versions served: {v2} of {ok} from v2"
    );
    assert_eq!(get_json(&mc, host, "/").await["version"], "v2");
    let only_v2 = vec![format!("mc-{app}-2"), format!("mc-{app}.worker-2")];
    wait_for(
        "revision 1 to be drained and removed",
        Duration::from_secs(60),
        || async { (containers_of(&app) == only_v2).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn an_unhealthy_revision_fails_with_its_logs_and_the_previous_keeps_serving() {
    let app = support::unique("t-sick");
    let mc = minicloud().await;
    let _cleanup = Cleanup(&app);
    add_app(&mc, &app, "probe:v2").await;
    let api_url = mc.api_url(&format!("/api/apps/{app}/deploy"));
    let slow_deploy = tokio::spawn(async move {
        reqwest::Client::new()
            .post(api_url)
            .bearer_auth(support::TOKEN)
            .json(&json!({"image": image("probe:v3")}))
            .send()
            .await
            .unwrap()
    });
    // One operation per app: a second one while the first runs is refused and says why.
    wait_for(
        "the deploy to hold the app",
        Duration::from_secs(10),
        || async {
            let show: Value = mc
                .api()
                .get(&format!("/api/apps/{app}"))
                .await
                .json()
                .await
                .ok()?;
            (show["state"] == "deploying").then_some(())
        },
    )
    .await;
    let busy = mc
        .api()
        .post(&format!("/api/apps/{app}/restart"), json!({}))
        .await;
    assert_eq!(busy.status(), 409);
    let busy = busy.json::<Value>().await.unwrap()["error"].to_string();
    assert!(busy.contains("a deploy is in progress"), "{busy}");
    let resp = slow_deploy.await.unwrap();
    assert_eq!(resp.status(), 422);
    let error = resp.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("revision 2 failed"), "{error}");
    assert!(
        error.contains("never healthy"),
        "the app's own log lines: {error}"
    );
    assert!(error.contains("revision 1 keeps serving"), "{error}");

    assert_eq!(
        get_json(&mc, &format!("{app}.mc.test"), "/").await["version"],
        "v2"
    );
    assert_eq!(
        containers_of(&app),
        vec![format!("mc-{app}-1"), format!("mc-{app}.worker-1")]
    );
    let history: Vec<Value> = mc.api().get_json(&format!("/api/apps/{app}/deploys")).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["state"], "failed", "newest first");
    assert!(history[0]["reason"]
        .as_str()
        .unwrap()
        .contains("never healthy"));
    // A revision that never served is no rollback target; the answer lists those that are.
    let resp = mc
        .api()
        .post(&format!("/api/apps/{app}/rollback"), json!({"revision": 2}))
        .await;
    assert_eq!(resp.status(), 400);
    let error: Value = resp.json().await.unwrap();
    let error = error["error"].as_str().unwrap();
    assert!(
        error.contains("revision 2") && error.contains("never served") && error.ends_with(" 1"),
        "{error}"
    );
    // Nothing to rotate for an app without a database or message bus.
    let resp = mc
        .api()
        .post(&format!("/api/apps/{app}/rotate-credentials"), json!({}))
        .await;
    assert_eq!(resp.status(), 400);
    let show: Value = mc.api().get_json(&format!("/api/apps/{app}")).await;
    assert_eq!(show["state"], "running");
    assert_eq!(show["revision"], 1);
    assert!(
        show["image"].as_str().unwrap().ends_with("probe:v2"),
        "{show}"
    );
    assert!(show["last_error"]
        .as_str()
        .unwrap()
        .contains("never healthy"));
}

#[tokio::test]
async fn rollback_and_the_webhook_redeploy() {
    let app = support::unique("t-roll");
    let mc = minicloud().await;
    let _cleanup = Cleanup(&app);
    add_app(&mc, &app, "probe:v1").await;
    let api = mc.api();
    let host = &format!("{app}.mc.test");
    let previous_log = format!("/api/apps/{app}/logs?previous=true");
    let none = api.get(&previous_log).await;
    assert_eq!(none.status(), 404, "nothing removed yet");
    assert!(
        none.text()
            .await
            .unwrap()
            .contains("no removed container's log"),
        "says why"
    );
    let resp = api
        .post(
            &format!("/api/apps/{app}/deploy"),
            json!({"image": image("probe:v2")}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(get_json(&mc, host, "/").await["version"], "v2");
    // Revision 1's container is removed once retired; its last lines are kept.
    let previous = wait_for("revision 1's kept log", Duration::from_secs(60), || async {
        let resp = api.get(&previous_log).await;
        (resp.status() == 200).then_some(resp.text().await.unwrap())
    })
    .await;
    assert!(
        previous.starts_with(&format!("[minicloud: revision 1 (mc-{app}-1), removed ")),
        "{previous}"
    );
    assert!(previous.contains("replaced by revision 2"), "{previous}");
    assert!(
        previous.contains("probe v1") && previous.contains("SIGTERM received, exiting"),
        "the container's own lines, to its end: {previous}"
    );

    // The same digest again does nothing; forced, it makes a new revision.
    let same: Value = api
        .post(&format!("/api/apps/{app}/deploy"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(same["revision"], 2);
    let forced: Value = api
        .post(&format!("/api/apps/{app}/deploy"), json!({"force": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(forced["revision"], 3);

    let back: Value = api
        .post(&format!("/api/apps/{app}/rollback"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(back["revision"], 4);
    assert_eq!(get_json(&mc, host, "/").await["version"], "v1");
    assert!(
        back["serving_image"]
            .as_str()
            .unwrap()
            .ends_with("probe:v1"),
        "{back}"
    );
    assert!(
        back["image"].as_str().unwrap().ends_with("probe:v2"),
        "{back}"
    );
    let history: Vec<Value> = api.get_json(&format!("/api/apps/{app}/deploys")).await;
    assert_eq!(history[0]["trigger"], "rollback to revision 1");
    assert_eq!(history[0]["digest"], history[3]["digest"]);

    // The webhook: wrong secrets say nothing; the right one redeploys the app's tag (v2).
    let show: Value = api.get_json(&format!("/api/apps/{app}")).await;
    let webhook_path = show["webhook_url"]
        .as_str()
        .unwrap()
        .split_once("/hooks/")
        .map(|(_, rest)| format!("/hooks/{rest}"))
        .unwrap();
    let payload = json!({"push_data": {"tag": "v2"}, "repository": {"repo_name": "probe"}});
    let http = reqwest::Client::new();
    for wrong in [
        &format!("/hooks/deploy/{app}/nope"),
        "/hooks/deploy/unknown-app/nope",
    ] {
        let resp = http
            .post(mc.api_url(wrong))
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        assert!(resp.text().await.unwrap().is_empty());
    }
    let other_tag = http
        .post(mc.api_url(&webhook_path))
        .json(&json!({"push_data": {"tag": "v9"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(other_tag.status(), 200);
    assert_eq!(
        other_tag.json::<Value>().await.unwrap()["status"],
        "ignored"
    );
    let hook = http
        .post(mc.api_url(&webhook_path))
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 202);
    wait_for("the webhook deploy", Duration::from_secs(30), || async {
        let v = get_json(&mc, host, "/").await;
        (v["version"] == "v2").then_some(())
    })
    .await;
    // Through the edge as well, where Docker Hub would call it.
    let client = mc.client_for(&[&mc.admin_host()]);
    let resp = client
        .post(mc.https_url(&mc.admin_host(), &format!("/hooks/deploy/{app}/nope")))
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn bad_images_and_manifests_are_clear_errors_that_leave_nothing_behind() {
    let mut mc = minicloud().await;
    let api = mc.api();
    for (name, img, status, expected) in [
        (
            "t-nomani",
            image("no-manifest:v1"),
            422,
            "has no app manifest",
        ),
        (
            "t-badmani",
            image("bad-manifest:v1"),
            400,
            "unknown need 'redis'",
        ),
        ("t-unknown", image("does-not-exist:v1"), 422, "cannot pull"),
        (
            "t-badref",
            "Not An/Image!".to_string(),
            400,
            "not an image reference",
        ),
    ] {
        let _cleanup = Cleanup(name);
        let resp = api
            .post("/api/apps", json!({"image": img, "name": name}))
            .await;
        let code = resp.status();
        let error = resp.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(code, status, "{name}: {error}");
        assert!(
            error.contains(expected),
            "{name}: {error:?} should say {expected:?}"
        );
        assert!(containers_of(name).is_empty(), "{name} left containers");
        assert_eq!(api.get(&format!("/api/apps/{name}")).await.status(), 404);
    }
    // The bad manifest's message names every problem and the file.
    let resp = api
        .post(
            "/api/apps",
            json!({"image": image("bad-manifest:v1"), "name": "t-badmani"}),
        )
        .await;
    let error = resp.json::<Value>().await.unwrap()["error"].to_string();
    assert!(error.contains("cloud_manifest"), "{error}");
    assert!(error.contains("70000"), "{error}");
    let apps: Vec<Value> = api.get_json("/api/apps").await;
    assert!(apps.is_empty());
    // Only this minicloud's readers: other tests read manifests on the same engine meanwhile.
    let status = mc.stop();
    assert!(status.success(), "minicloud exited with {status}");
    let leftovers = docker(&[
        "ps",
        "-a",
        "--filter",
        "label=minicloud.tmp",
        "--filter",
        &format!("label=minicloud.instance={}", mc.instance_id()),
        "--format",
        "{{.Names}}",
    ]);
    assert!(leftovers.is_empty(), "manifest readers left: {leftovers}");
}

#[tokio::test]
async fn environment_and_domains_change_what_is_served() {
    let app = support::unique("t-conf");
    let mc = minicloud().await;
    let _cleanup = Cleanup(&app);
    add_app(&mc, &app, "probe:v1").await;
    let api = mc.api();
    let resp = api
        .client_patch(
            &format!("/api/apps/{app}/env"),
            json!({"set": {"GREETING": "hello", "LOG_LEVEL": "debug"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let env = get_json(&mc, &format!("{app}.mc.test"), "/env").await;
    assert_eq!(env["GREETING"], "hello");
    assert_eq!(
        env["LOG_LEVEL"], "debug",
        "the admin's value beats the manifest's"
    );
    let bad = api
        .client_patch(
            &format!("/api/apps/{app}/env"),
            json!({"set": {"PORT": "1"}}),
        )
        .await;
    assert_eq!(bad.status(), 400);

    let resp = api
        .post(
            &format!("/api/apps/{app}/domains"),
            json!({"domain": "www.custom.example"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        get_json(&mc, "www.custom.example", "/").await["app"],
        app.as_str()
    );
    let taken = api
        .post(
            &format!("/api/apps/{app}/domains"),
            json!({"domain": mc.admin_host()}),
        )
        .await;
    assert_eq!(taken.status(), 409);
    assert_eq!(
        api.delete(&format!("/api/apps/{app}/domains/www.custom.example"))
            .await
            .status(),
        200
    );
    let gone = mc
        .client_for(&["www.custom.example"])
        .get(mc.https_url("www.custom.example", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn minicloud_restarts_do_not_touch_running_apps_or_leave_duplicates() {
    let app = support::unique("t-keep");
    let mut mc = minicloud().await;
    let _cleanup = Cleanup(&app);
    add_app(&mc, &app, "probe:v1").await;
    let id_before = docker(&["inspect", "-f", "{{.Id}}", &format!("mc-{app}-1")]);

    // At rest: a crash and a restart adopt the running container.
    mc.kill();
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.State.Running}}",
            &format!("mc-{app}-1")
        ]),
        "true",
        "the app keeps running while minicloud is down"
    );
    mc.start_again().await;
    let host = &format!("{app}.mc.test");
    wait_for(
        "the app to be routed again",
        Duration::from_secs(20),
        || async {
            let r = mc
                .client_for(&[host])
                .get(mc.https_url(host, "/"))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", &format!("mc-{app}-1")]),
        id_before
    );

    // Mid-way: killed during a deploy, the next start finishes nothing half-way.
    let api_url = mc.api_url(&format!("/api/apps/{app}/deploy"));
    let deploy = tokio::spawn(async move {
        reqwest::Client::new()
            .post(api_url)
            .bearer_auth(support::TOKEN)
            .json(&json!({"image": image("probe:v3")}))
            .send()
            .await
    });
    wait_for("revision 2 to start", Duration::from_secs(20), || async {
        containers_of(&app)
            .contains(&format!("mc-{app}-2"))
            .then_some(())
    })
    .await;
    mc.kill();
    let _ = deploy.await;
    mc.start_again().await;
    wait_for(
        "the interrupted revision to be cleaned up",
        Duration::from_secs(20),
        || async {
            (containers_of(&app) == vec![format!("mc-{app}-1"), format!("mc-{app}.worker-1")])
                .then_some(())
        },
    )
    .await;
    assert_eq!(get_json(&mc, host, "/").await["version"], "v1");
    let history: Vec<Value> = mc.api().get_json(&format!("/api/apps/{app}/deploys")).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["state"], "failed");
    assert!(history[0]["reason"]
        .as_str()
        .unwrap()
        .contains("interrupted"));
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", &format!("mc-{app}-1")]),
        id_before
    );
}

#[tokio::test]
async fn an_unreachable_docker_engine_is_a_clear_error_and_the_edge_keeps_serving() {
    let app = support::unique("t-nodocker");
    let mc = Minicloud::start_with(vec![(
        "DOCKER_HOST".into(),
        "unix:///nonexistent/docker.sock".into(),
    )])
    .await;
    let upstream = support::upstream::start("still-here").await;
    mc.api().add_route("edge.example.com", upstream.addr).await;

    let resp = mc
        .api()
        .post(
            "/api/apps",
            json!({"image": image("probe:v1"), "name": &app}),
        )
        .await;
    assert_eq!(resp.status(), 503);
    let error = resp.json::<Value>().await.unwrap()["error"].to_string();
    assert!(error.contains("cannot reach the Docker engine"), "{error}");
    assert!(error.contains("/nonexistent/docker.sock"), "{error}");
    assert!(containers_of(&app).is_empty());
    assert_eq!(
        mc.api().get(&format!("/api/apps/{app}")).await.status(),
        404
    );

    let body = mc.get_text("edge.example.com", "/").await;
    assert_eq!(body, "still-here");
}

/// The state of a container as the engine reports it, or `None` when it is gone.
fn container_state(name: &str) -> Option<String> {
    let state = docker(&["inspect", "-f", "{{.State.Status}}", name]);
    (!state.is_empty()).then_some(state)
}

#[tokio::test]
async fn a_deploy_answers_when_the_new_revision_serves_and_the_old_one_retires_after() {
    // probe-stubborn ignores SIGTERM as PID 1 (its manifest turns Docker's init off), so each
    // of its containers takes the whole stop timeout to go: the deploy must not wait for that.
    let app = support::unique("t-retire");
    let mc = minicloud().await;
    let _cleanup = Cleanup(&app);
    add_app(&mc, &app, "probe-stubborn:v1").await;
    let old_web = format!("mc-{app}-1");
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.Init}}", &old_web]),
        "false",
        "init: false in the manifest opts out of Docker's init"
    );

    let api = mc.api();
    let started = std::time::Instant::now();
    let resp = api
        .post(
            &format!("/api/apps/{app}/deploy"),
            json!({"image": image("probe-stubborn:v2")}),
        )
        .await;
    let answered = started.elapsed();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["revision"], 2, "{body}");
    assert_eq!(body["state"], "running", "{body}");
    // The structural fact: the call answered while revision 1 still existed, and said so.
    assert!(
        container_state(&old_web).is_some(),
        "revision 1 is still draining or stopping when the deploy answers"
    );
    let retiring: Vec<&str> = body["retiring"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(retiring.contains(&old_web.as_str()), "{body}");
    eprintln!("the update of a SIGTERM-ignoring app answered after {answered:?}");
    assert_eq!(
        get_json(&mc, &format!("{app}.mc.test"), "/").await["version"],
        "v2"
    );

    // The app's lock is free at once: a second operation starts and succeeds while revision
    // 1 is still being retired, and neither retirement touches the serving revision.
    let restart = api
        .post(&format!("/api/apps/{app}/restart"), json!({}))
        .await;
    assert_eq!(restart.status(), 200, "{}", restart.text().await.unwrap());
    let only_v3 = vec![format!("mc-{app}-3"), format!("mc-{app}.worker-3")];
    wait_for(
        "revisions 1 and 2 to be retired",
        Duration::from_secs(90),
        || async { (containers_of(&app) == only_v3).then_some(()) },
    )
    .await;
    assert_eq!(
        get_json(&mc, &format!("{app}.mc.test"), "/").await["version"],
        "v2"
    );
    let show: Value = api.get_json(&format!("/api/apps/{app}")).await;
    assert_eq!(show["state"], "running", "{show}");
    assert!(show.get("retiring").is_none(), "{show}");
}

#[tokio::test]
async fn removing_an_app_supersedes_its_pending_retirement() {
    let app = support::unique("t-retire-rm");
    let mc = minicloud().await;
    let _cleanup = Cleanup(&app);
    add_app(&mc, &app, "probe:v1").await;
    let api = mc.api();
    let resp = api
        .post(
            &format!("/api/apps/{app}/deploy"),
            json!({"image": image("probe:v2")}),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["revision"], 2, "{body}");
    assert!(
        body["retiring"].is_array(),
        "revision 1 is retiring: {body}"
    );
    assert_eq!(api.delete(&format!("/api/apps/{app}")).await.status(), 204);
    assert!(
        containers_of(&app).is_empty(),
        "the removal took every container, the retiring ones too"
    );
}

/// Builds `tags.len()` distinct images (probe:v1 with a label each) and pushes them under a
/// repository of their own, so pruning them cannot touch an image another test uses.
/// Removes them from the engine when dropped.
struct OwnImages(Vec<String>);

impl OwnImages {
    fn build(repo: &str, tags: &[&str]) -> Self {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let base = image("probe:v1");
        docker(&["pull", "-q", &base]);
        let images: Vec<String> = tags.iter().map(|t| format!("{repo}:{t}")).collect();
        for (i, reference) in images.iter().enumerate() {
            let dockerfile = format!("FROM {base}\nLABEL minicloud.test.prune=\"{repo}-{i}\"\n");
            // The legacy builder races with concurrent `docker rmi` in its cache lookup
            // ("unable to find image"): retry that rare race, as the driver's tests do.
            for attempt in 1.. {
                let mut child = Command::new("docker")
                    .env("DOCKER_BUILDKIT", "0")
                    .args(["build", "-q", "-t", reference, "-"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(dockerfile.as_bytes())
                    .unwrap();
                let out = child.wait_with_output().unwrap();
                if out.status.success() {
                    break;
                }
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    attempt < 3 && stderr.contains("unable to find image"),
                    "docker build {reference}: {stderr}"
                );
            }
            let pushed = Command::new("docker")
                .args(["push", "-q", reference])
                .output()
                .unwrap();
            assert!(
                pushed.status.success(),
                "docker push {reference}: {pushed:?}"
            );
        }
        Self(images)
    }
}

impl Drop for OwnImages {
    fn drop(&mut self) {
        for reference in &self.0 {
            docker(&["rmi", "-f", reference]);
        }
    }
}

/// The engine's id of a local image, `None` when it has none of that name.
fn local_image(reference: &str) -> Option<String> {
    Some(docker(&[
        "image", "inspect", "--format", "{{.Id}}", reference,
    ]))
    .filter(|id| !id.is_empty())
}

#[tokio::test]
async fn images_no_kept_revision_uses_are_pruned_and_a_rollback_pulls_them_again() {
    let app = support::unique("t-prune");
    let repo = format!("{}/{app}/probe", support::registry());
    let tags = ["r1", "r2", "r3", "r4"];
    let images = OwnImages::build(&repo, &tags);
    let mc = minicloud().await;
    let _cleanup = Cleanup(&app);
    let api = mc.api();
    let added = api
        .post("/api/apps", json!({"image": images.0[0], "name": app}))
        .await;
    assert_eq!(added.status(), 201, "{}", added.text().await.unwrap());
    let first_id = local_image(&images.0[0]).expect("revision 1's image is local");
    for (i, reference) in images.0.iter().enumerate().skip(1) {
        let resp = api
            .post(
                &format!("/api/apps/{app}/deploy"),
                json!({"image": reference}),
            )
            .await;
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["revision"], i + 1, "{body}");
    }

    // Revisions 2, 3 and 4 are the last three that served: revision 1's image goes once its
    // container has been retired; the others stay.
    wait_for(
        "revision 1's image to be pruned",
        Duration::from_secs(60),
        || async { local_image(&first_id).is_none().then_some(()) },
    )
    .await;
    for reference in &images.0[1..] {
        assert!(local_image(reference).is_some(), "{reference} was pruned");
    }
    assert!(
        mc.log().contains("removed an image no kept revision uses"),
        "the removal is logged"
    );

    // A rollback beyond the kept revisions pulls the pruned image again by its digest.
    let back = api
        .post(&format!("/api/apps/{app}/rollback"), json!({"revision": 1}))
        .await;
    let body: Value = back.json().await.unwrap();
    assert_eq!(body["revision"], 5, "{body}");
    assert_eq!(body["state"], "running", "{body}");
    // Pulled by digest: the same image, without its tag.
    assert!(
        local_image(&first_id).is_some(),
        "revision 1's image is back"
    );
    // Revision 2 is no longer among the last three that served (3, 4, 5).
    wait_for(
        "revision 2's image to be pruned",
        Duration::from_secs(60),
        || async { local_image(&images.0[1]).is_none().then_some(()) },
    )
    .await;
    assert!(local_image(&images.0[2]).is_some());
    assert!(local_image(&images.0[3]).is_some());
}

/// Removing an app removes its images too, except one another app serves.
#[tokio::test]
async fn a_removed_apps_images_go_but_not_one_another_app_serves() {
    let app = support::unique("t-prune-rm");
    let other = support::unique("t-prune-keep");
    let repo = format!("{}/{app}/probe", support::registry());
    let images = OwnImages::build(&repo, &["r1", "r2"]);
    let mc = minicloud().await;
    let _cleanup = Cleanup(&app);
    let _cleanup_other = Cleanup(&other);
    let api = mc.api();
    for (name, image) in [(&app, &images.0[0]), (&other, &images.0[0])] {
        let added = api
            .post("/api/apps", json!({"image": image, "name": name}))
            .await;
        assert_eq!(added.status(), 201, "{}", added.text().await.unwrap());
    }
    let resp = api
        .post(
            &format!("/api/apps/{app}/deploy"),
            json!({"image": images.0[1]}),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["revision"], 2, "{body}");
    let second_id = local_image(&images.0[1]).expect("revision 2's image is local");

    assert_eq!(api.delete(&format!("/api/apps/{app}")).await.status(), 204);
    assert!(
        local_image(&second_id).is_none(),
        "the removed app's image stayed"
    );
    assert!(
        local_image(&images.0[0]).is_some(),
        "the image {other} serves was removed"
    );
}
