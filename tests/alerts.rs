//! Watch and tell, against the real engine: a container killed, stopped or removed behind
//! minicloud's back is noticed from the engine's events, comes back with its route following
//! it, and is told once (and its recovery once) through a signed webhook received here and an
//! e-mail to the test environment's real SMTP server (aiosmtpd).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::{docker, image, test_env, wait_for, AppCleanup as Cleanup, Minicloud};

/// Long enough for a loaded 2-core machine; only ever a deadline, never a measurement.
const PATIENCE: Duration = Duration::from_secs(120);
const SECRET: &str = "a-test-signing-key-0123456789";

/// A webhook receiver on a free loopback port: every POST body, and whether its signature
/// checked out.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(Value, bool)>>>,
}

impl Receiver {
    async fn start() -> (Self, String) {
        let receiver = Self::default();
        let got = receiver.got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let got = got.clone();
                async move {
                    let signed = headers
                        .get("x-minicloud-signature")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|sig| sig == sign(&body));
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    got.lock().unwrap().push((value, signed));
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    /// Messages of `event` about `app` (all of them for `test`).
    fn of(&self, event: &str, app: &str) -> Vec<(Value, bool)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(v, _)| v["event"] == event && (event == "test" || v["app"] == app))
            .cloned()
            .collect()
    }
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The e-mails the test SMTP server got for `to`, as text.
fn mails_to(to: &str) -> Vec<String> {
    let dir = std::path::PathBuf::from(test_env("MINICLOUD_TEST_SMTP_MAILDIR")).join("new");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter(|text| text.contains(&format!("To: {to}")))
        .collect()
}

/// Adds an app and both channels (a signed webhook to `hook`, e-mail to `to`) and sends a
/// test through each.
async fn app_with_channels(mc: &Minicloud, app: &str, hook: &str, to: &str) {
    let resp = mc
        .api()
        .post(
            "/api/apps",
            json!({"image": image("probe:v1"), "name": app}),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());

    let (host, port) = test_env("MINICLOUD_TEST_SMTP_ADDR")
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.parse::<u16>().unwrap()))
        .unwrap();
    for body in [
        json!({"kind": "webhook", "url": hook, "secret": SECRET}),
        json!({"kind": "email", "host": host, "port": port, "security": "plain",
               "from": "minicloud@alerts.test", "to": [to]}),
    ] {
        let resp = mc.api().post("/api/alerts/channels", body).await;
        let created: Value = resp.json().await.unwrap();
        assert!(created["id"].is_string(), "{created}");
        let id = created["id"].as_str().unwrap();
        let tested = mc
            .api()
            .post(&format!("/api/alerts/channels/{id}/test"), json!({}))
            .await;
        let status = tested.status();
        let tested: Value = tested.json().await.unwrap();
        assert_eq!(status, 200, "{tested}");
        assert_eq!(tested["state"], "ok", "{tested}");
    }
    let channels: Vec<Value> = mc.api().get_json("/api/alerts/channels").await;
    let listed = serde_json::to_string(&channels).unwrap();
    assert!(!listed.contains(SECRET), "secrets stay hidden: {listed}");
}

fn ip_of(container: &str) -> String {
    docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        container,
    ])
}

async fn served_version(mc: &Minicloud, host: &str) -> Option<String> {
    let resp = mc
        .client_for(&[host])
        .get(mc.https_url(host, "/"))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    body["version"].as_str().map(str::to_owned)
}

/// Waits for exactly one `opened` and then one `recovered` message about `app` on the
/// webhook, both signed, and returns them.
async fn one_incident_told(receiver: &Receiver, app: &str) -> (Value, Value) {
    let recovered = wait_for("the recovered message", PATIENCE, || async {
        receiver.of("recovered", app).into_iter().next()
    })
    .await;
    let opened = receiver.of("opened", app);
    assert_eq!(
        opened.len(),
        1,
        "one message when it went wrong: {opened:?}"
    );
    assert_eq!(receiver.of("recovered", app).len(), 1);
    assert!(
        opened[0].1 && recovered.1,
        "both signed: {opened:?} {recovered:?}"
    );
    assert_eq!(opened[0].0["incident"], recovered.0["incident"]);
    (opened[0].0.clone(), recovered.0)
}

#[tokio::test]
async fn a_killed_container_comes_back_routed_and_is_told_once_by_webhook_and_email() {
    let app = support::unique("t-alert-kill");
    let to = format!("{app}@alerts.test");
    // Dropped after minicloud: removing the containers under a running minicloud would have
    // its watcher recreate them.
    let _cleanup = Cleanup(&app);
    let mc = Minicloud::start().await;
    let (receiver, hook) = Receiver::start().await;
    app_with_channels(&mc, &app, &hook, &to).await;
    let tests = receiver.of("test", &app);
    assert_eq!(tests.len(), 1, "{tests:?}");
    assert!(tests[0].1, "the test message is signed");
    wait_for("the test e-mail", PATIENCE, || async {
        mails_to(&to)
            .into_iter()
            .find(|m| m.contains("Subject: [minicloud] Test: test message"))
    })
    .await;

    let web = format!("mc-{app}-1");
    let host = format!("{app}.mc.test");
    assert_eq!(served_version(&mc, &host).await.as_deref(), Some("v1"));
    docker(&["kill", &web]);

    let (opened, recovered) = {
        let _log = LogOnPanic(&mc);
        one_incident_told(&receiver, &app).await
    };
    assert!(
        opened["title"].as_str().unwrap().contains("exit code 137"),
        "{opened}"
    );
    assert!(
        recovered["body"]
            .as_str()
            .unwrap()
            .contains("running again"),
        "{recovered}"
    );
    // Back (the engine's restart policy, or minicloud recreating what the engine left
    // exited), and the edge routes to where it is now.
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &web]),
        "true"
    );
    wait_for("the app served again", PATIENCE, || {
        served_version(&mc, &host)
    })
    .await;
    let shown: Value = mc.api().get_json(&format!("/api/apps/{app}")).await;
    assert_eq!(shown["state"], "running", "{shown}");
    assert!(shown["restarts"].is_i64(), "{shown}");
    assert_eq!(shown["last_exit_code"], 137, "{shown}");
    assert_eq!(shown["crash_looping"], false, "{shown}");

    let incidents: Vec<Value> = mc.api().get_json("/api/incidents").await;
    let mine: Vec<&Value> = incidents
        .iter()
        .filter(|i| i["app"] == app.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{incidents:?}");
    assert!(mine[0]["resolved_at"].is_i64(), "{:?}", mine[0]);
    assert!(mine[0]["timeline"].as_array().unwrap().len() >= 2);

    // And by e-mail: the problem and the recovery, in words.
    let mails = wait_for("both e-mails", PATIENCE, || async {
        let mails = mails_to(&to);
        let problem = mails
            .iter()
            .filter(|m| m.contains("Subject: [minicloud] Problem:"))
            .count();
        let recovered = mails
            .iter()
            .filter(|m| m.contains("Subject: [minicloud] Recovered:"))
            .count();
        (problem >= 1 && recovered >= 1).then_some(mails)
    })
    .await;
    let problem: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("Subject: [minicloud] Problem:"))
        .collect();
    assert_eq!(problem.len(), 1, "{mails:?}");
    assert!(
        problem[0].contains(&format!("{app}: its web container stopped")),
        "{}",
        problem[0]
    );
    assert_eq!(
        receiver.of("opened", &app).len(),
        1,
        "still one incident message"
    );
}

#[tokio::test]
async fn a_container_started_elsewhere_gets_its_route_and_a_removed_one_is_recreated() {
    let app = support::unique("t-alert-move");
    let _cleanup = Cleanup(&app);
    let mut squatters = Vec::new();
    let mc = Minicloud::start().await;
    let (receiver, hook) = Receiver::start().await;
    app_with_channels(&mc, &app, &hook, &format!("{app}@alerts.test")).await;
    let web = format!("mc-{app}-1");
    let host = format!("{app}.mc.test");
    let before = ip_of(&web);
    // The app's own network, where its next address comes from.
    let net = format!("mc-net-{app}");

    // Stopped by hand (no restart), its address taken meanwhile, then started again: it comes
    // back elsewhere, and the edge must follow.
    docker(&["stop", "-t", "1", &web]);
    // The engine gives the lowest free address: take them until the app's is taken.
    let network_ips = || {
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.IPv4Address}} {{end}}",
            &net,
        ])
    };
    for i in 0..40 {
        if network_ips().contains(&format!("{before}/")) {
            break;
        }
        let name = format!("{app}-squatter-{i}");
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &net,
            &image("probe:v1"),
        ]);
        squatters.push(Removed(name));
    }
    docker(&["start", &web]);
    let after = ip_of(&web);
    assert_ne!(before, after, "the container came back at a new address");
    one_incident_told(&receiver, &app).await;
    wait_for("the app served at its new address", PATIENCE, || {
        served_version(&mc, &host)
    })
    .await;

    // Removed behind minicloud's back: recreated, served again, told as a second incident.
    docker(&["rm", "-f", &web]);
    wait_for(
        "the web container recreated and running",
        PATIENCE,
        || async {
            (docker(&["inspect", "-f", "{{.State.Running}}", &web]) == "true").then_some(())
        },
    )
    .await;
    wait_for("the app served again", PATIENCE, || {
        served_version(&mc, &host)
    })
    .await;
    wait_for("the second incident recovered", PATIENCE, || async {
        (receiver.of("recovered", &app).len() == 2).then_some(())
    })
    .await;
    assert_eq!(receiver.of("opened", &app).len(), 2);
}

/// Prints minicloud's log when the test fails while it is held.
struct LogOnPanic<'a>(&'a Minicloud);

impl Drop for LogOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("minicloud's log:\n{}", self.0.log());
        }
    }
}

/// Removes a plain container when dropped.
struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.0]);
    }
}
