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
use support::net::Switch;
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
    // Known down: the edge says so at once, not a 502 from a dead address.
    wait_for("the edge to say the app is down", PATIENCE, || async {
        let resp = mc
            .client_for(&[&host])
            .get(mc.https_url(&host, "/"))
            .send()
            .await
            .ok()?;
        let status = resp.status();
        let page = resp.text().await.ok()?;
        (status == 503 && page.contains("is not running right now")).then_some(())
    })
    .await;
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

/// Every POST to any path on a loopback port, as (path, Authorization header, JSON body):
/// the stand-in for ntfy, Slack, Discord and Telegram. A path with `/refuse` is answered as
/// Telegram refuses an unknown chat.
#[derive(Clone, Default)]
struct Inbox {
    got: Arc<Mutex<Vec<Posted>>>,
}

/// One POST the inbox got: its path, its Authorization header, its JSON body.
type Posted = (String, Option<String>, Value);

impl Inbox {
    async fn start() -> (Self, String) {
        let inbox = Self::default();
        let got = inbox.got.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let got = got.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    got.lock()
                        .unwrap()
                        .push((uri.path().to_owned(), auth, value));
                    if uri.path().contains("/refuse") {
                        (
                            axum::http::StatusCode::BAD_REQUEST,
                            axum::Json(json!({"ok": false, "error_code": 400,
                                              "description": "Bad Request: chat not found"})),
                        )
                    } else {
                        (axum::http::StatusCode::OK, axum::Json(json!({"ok": true})))
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (inbox, base)
    }

    fn at(&self, path: &str) -> Vec<(Option<String>, Value)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, a, v)| (a.clone(), v.clone()))
            .collect()
    }
}

async fn add_channel(mc: &Minicloud, body: Value) -> String {
    let resp = mc.api().post("/api/alerts/channels", body).await;
    let status = resp.status();
    let created: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn send_test(mc: &Minicloud, id: &str) -> (u16, Value) {
    let resp = mc
        .api()
        .post(&format!("/api/alerts/channels/{id}/test"), json!({}))
        .await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn ntfy_slack_discord_and_telegram_get_the_payloads_their_services_document() {
    let mc = Minicloud::start().await;
    let (inbox, base) = Inbox::start().await;
    let body = format!(
        "This is a test from minicloud at {}. If you read this, alerts reach you here.",
        mc.admin_host()
    );

    let ntfy = add_channel(
        &mc,
        json!({"kind": "ntfy", "url": format!("{base}/ntfy/mc-alerts"), "token": "tk_ntfytoken"}),
    )
    .await;
    let slack_url = format!("{base}/slack/T000/B000/slacksecret");
    let slack = add_channel(&mc, json!({"kind": "slack", "url": slack_url})).await;
    let discord_url = format!("{base}/discord/1234/discordsecret");
    let discord = add_channel(&mc, json!({"kind": "discord", "url": discord_url})).await;
    let telegram = add_channel(
        &mc,
        json!({"kind": "telegram", "bot_token": "123456:tgsecret", "chat_id": "-100200",
               "api_url": format!("{base}/tg")}),
    )
    .await;
    for id in [&ntfy, &slack, &discord, &telegram] {
        let (status, view) = send_test(&mc, id).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "ok", "{view}");
    }

    // ntfy: JSON publishing at the server's root, the topic in the body, the token as bearer.
    assert_eq!(
        inbox.at("/ntfy/"),
        vec![(
            Some("Bearer tk_ntfytoken".to_owned()),
            json!({"topic": "mc-alerts", "title": "[minicloud] Test: test message",
                   "message": body, "priority": 3, "tags": ["bell"]})
        )]
    );
    assert_eq!(
        inbox.at("/slack/T000/B000/slacksecret"),
        vec![(
            None,
            json!({"text": format!("*[minicloud] Test: test message*\n{body}")})
        )]
    );
    assert_eq!(
        inbox.at("/discord/1234/discordsecret"),
        vec![(
            None,
            json!({"username": "minicloud",
                   "content": format!("**[minicloud] Test: test message**\n{body}"),
                   "allowed_mentions": {"parse": []}})
        )]
    );
    assert_eq!(
        inbox.at("/tg/bot123456:tgsecret/sendMessage"),
        vec![(
            None,
            json!({"chat_id": "-100200", "text": format!("[minicloud] Test: test message\n\n{body}"),
                   "disable_web_page_preview": true})
        )]
    );

    // A refusal: 422 with the service's words, the channel failing, its token nowhere.
    let refused = add_channel(
        &mc,
        json!({"kind": "telegram", "bot_token": "99:refusesecret", "chat_id": "@nobody",
               "api_url": format!("{base}/refuse")}),
    )
    .await;
    let (status, answer) = send_test(&mc, &refused).await;
    assert_eq!(status, 422, "{answer}");
    let said = answer.to_string();
    assert!(said.contains("Bad Request: chat not found"), "{said}");
    assert!(!said.contains("refusesecret"), "{said}");

    let listed: Vec<Value> = mc.api().get_json("/api/alerts/channels").await;
    let text = serde_json::to_string(&listed).unwrap();
    for secret in [
        "tk_ntfytoken",
        "slacksecret",
        "discordsecret",
        "tgsecret",
        "refusesecret",
    ] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    let state = |id: &str| {
        listed
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["state"].clone())
            .unwrap()
    };
    assert_eq!(state(&refused), "failing");
    assert_eq!(
        state(&telegram),
        "ok",
        "one failing channel leaves the others alone"
    );
    assert!(
        !mc.log().contains("refusesecret"),
        "the token is never logged"
    );

    // Bad input is refused with what to do, and nothing is kept.
    let resp = mc
        .api()
        .post(
            "/api/alerts/channels",
            json!({"kind": "telegram", "bot_token": "not-a-token", "chat_id": "1"}),
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("@BotFather"));
    let after: Vec<Value> = mc.api().get_json("/api/alerts/channels").await;
    assert_eq!(after.len(), listed.len());
}

/// minicloud with checks every second, reminders off, and a signed webhook to `hook`.
async fn checking_minicloud(hook: &str, extra: Vec<(&str, String)>) -> Minicloud {
    let mut env = vec![
        ("MINICLOUD_ALERT_CHECK_INTERVAL".to_owned(), "1".to_owned()),
        ("MINICLOUD_ALERT_REMIND_MINUTES".to_owned(), "0".to_owned()),
    ];
    env.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let mc = Minicloud::start_with(env).await;
    add_channel(
        &mc,
        json!({"kind": "webhook", "url": hook, "secret": SECRET}),
    )
    .await;
    mc
}

/// Messages on the webhook whose title contains `words`.
fn titled(receiver: &Receiver, event: &str, words: &str) -> Vec<Value> {
    receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(v, signed)| {
            *signed && v["event"] == event && v["title"].as_str().unwrap_or("").contains(words)
        })
        .map(|(v, _)| v.clone())
        .collect()
}

/// Adds `app` from probe:v1 (with `extra` fields) and returns its host.
async fn add_probe(mc: &Minicloud, app: &str, extra: Value) -> String {
    let mut body = json!({"image": image("probe:v1"), "name": app});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let resp = mc.api().post("/api/apps", body).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    format!("{app}.mc.test")
}

/// The incidents about `app`.
async fn incidents_of(mc: &Minicloud, app: &str) -> Vec<Value> {
    let incidents: Vec<Value> = mc.api().get_json("/api/incidents").await;
    incidents.into_iter().filter(|i| i["app"] == app).collect()
}

async fn post_to_app(mc: &Minicloud, host: &str, path: &str) -> reqwest::StatusCode {
    mc.client_for(&[host])
        .post(mc.https_url(host, path))
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(reqwest::StatusCode::BAD_GATEWAY)
}

#[tokio::test]
async fn a_failing_health_path_is_one_incident_and_its_recovery_one_message() {
    let app = support::unique("t-alert-health");
    let _cleanup = Cleanup(&app);
    let (receiver, hook) = Receiver::start().await;
    let mc = checking_minicloud(&hook, Vec::new()).await;
    let _log = LogOnPanic(&mc);
    let host = add_probe(&mc, &app, json!({})).await;

    assert!(post_to_app(&mc, &host, "/healthz/fail").await.is_success());
    let opened = wait_for("the unhealthy message", PATIENCE, || async {
        titled(&receiver, "opened", &format!("{app}: unhealthy"))
            .into_iter()
            .next()
    })
    .await;
    assert!(
        opened["body"].as_str().unwrap().contains("answered 503"),
        "{opened}"
    );
    assert!(post_to_app(&mc, &host, "/healthz/ok").await.is_success());
    let recovered = wait_for("the recovered message", PATIENCE, || async {
        titled(&receiver, "recovered", &format!("{app}: unhealthy"))
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(opened["incident"], recovered["incident"]);
    assert_eq!(titled(&receiver, "opened", &app).len(), 1, "told once");
    let mine = incidents_of(&mc, &app).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["kind"], "unhealthy");
}

#[tokio::test]
async fn mariadb_out_of_reach_alerts_and_back_recovers() {
    let mut mariadb = Switch::new("127.0.0.1:3306").await;
    let admin_url = support::services::mariadb_admin_url()
        .replace("@127.0.0.1:3306", &format!("@127.0.0.1:{}", mariadb.port));
    assert!(admin_url.contains(&mariadb.port.to_string()), "{admin_url}");
    let (receiver, hook) = Receiver::start().await;
    let mc = checking_minicloud(
        &hook,
        vec![
            ("MINICLOUD_MARIADB_URL", admin_url),
            (
                "MINICLOUD_MARIADB_APP_HOST",
                test_env("MINICLOUD_TEST_HOST_GATEWAY"),
            ),
        ],
    )
    .await;
    let _log = LogOnPanic(&mc);
    let title = format!("MariaDB at 127.0.0.1:{} is down", mariadb.port);

    mariadb.down().await;
    let opened = wait_for("the MariaDB message", PATIENCE, || async {
        titled(&receiver, "opened", &title).into_iter().next()
    })
    .await;
    assert!(
        opened["body"].as_str().unwrap().contains("refused"),
        "the operating system's words: {opened}"
    );
    mariadb.up().await;
    let recovered = wait_for("the MariaDB recovery", PATIENCE, || async {
        titled(&receiver, "recovered", &title).into_iter().next()
    })
    .await;
    assert_eq!(opened["incident"], recovered["incident"]);
    assert_eq!(titled(&receiver, "opened", &title).len(), 1, "told once");
    let password = reqwest::Url::parse(&support::services::mariadb_admin_url())
        .unwrap()
        .password()
        .unwrap()
        .to_owned();
    assert!(
        !mc.log().contains(&password),
        "the admin password is never logged"
    );
}

#[tokio::test]
async fn a_container_past_its_memory_limit_is_told_as_out_of_memory() {
    let app = support::unique("t-alert-oom");
    let _cleanup = Cleanup(&app);
    let (receiver, hook) = Receiver::start().await;
    let mc = checking_minicloud(&hook, Vec::new()).await;
    let _log = LogOnPanic(&mc);
    let host = add_probe(&mc, &app, json!({"memory_mb": 64})).await;

    // Killed mid-answer: no status comes back.
    let _ = post_to_app(&mc, &host, "/alloc?mb=256").await;
    let (opened, _) = one_incident_told(&receiver, &app).await;
    assert!(
        opened["title"]
            .as_str()
            .unwrap()
            .contains("ran out of memory"),
        "{opened}"
    );
    assert!(
        opened["body"].as_str().unwrap().contains("(64 MB)"),
        "{opened}"
    );
    let mine = incidents_of(&mc, &app).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["kind"], "out-of-memory");
    wait_for("the app served again", PATIENCE, || {
        served_version(&mc, &host)
    })
    .await;
}

#[tokio::test]
async fn a_crash_loop_folds_into_one_incident() {
    let app = support::unique("t-alert-loop");
    let _cleanup = Cleanup(&app);
    let (receiver, hook) = Receiver::start().await;
    let mc = checking_minicloud(&hook, Vec::new()).await;
    let _log = LogOnPanic(&mc);
    let host = add_probe(&mc, &app, json!({})).await;

    // Five exits, each as soon as it serves again (well inside the 10 s that would count as
    // recovered): more than 3 restarts in 5 minutes.
    let web = format!("mc-{app}-1");
    let restarts = || {
        docker(&["inspect", "-f", "{{.RestartCount}}", &web])
            .parse::<u32>()
            .unwrap_or(0)
    };
    for n in 1..=5 {
        wait_for("the app serving", PATIENCE, || served_version(&mc, &host)).await;
        assert!(post_to_app(&mc, &host, "/exit?code=3").await.is_success());
        wait_for("the engine restarting it", PATIENCE, || async {
            (restarts() >= n).then_some(())
        })
        .await;
    }
    let (opened, _) = one_incident_told(&receiver, &app).await;
    let shown: Value = mc.api().get_json(&format!("/api/apps/{app}")).await;
    assert_eq!(shown["last_exit_code"], 3, "{shown}");
    assert!(
        opened["title"].as_str().unwrap().contains("exit code 3"),
        "{opened}"
    );
    let mine = incidents_of(&mc, &app).await;
    assert_eq!(mine.len(), 1, "one incident for the whole loop: {mine:?}");
    assert_eq!(mine[0]["kind"], "crash-loop");
    assert!(
        mine[0]["timeline"].as_array().unwrap().len() >= 5,
        "{:?}",
        mine[0]
    );
}

#[tokio::test]
async fn a_data_dir_filled_past_90_percent_alerts_and_room_again_recovers() {
    let disk = match support::disk::Tmpfs::mount("32m") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a tmpfs for the data dir (needs root): {why}");
            return;
        }
    };
    let (receiver, hook) = Receiver::start().await;
    let mc = checking_minicloud(
        &hook,
        vec![("MINICLOUD_DATA_DIR", disk.dir.display().to_string())],
    )
    .await;
    let _log = LogOnPanic(&mc);
    let over = |level: u8| {
        format!(
            "the disk under {} is over {level}% full",
            disk.dir.display()
        )
    };

    // About 2 MiB left of 32 (94% used): past both levels, with room for the store.
    support::disk::fill(&disk.dir, "filler", 2 * 1024 * 1024);
    for level in [80, 90] {
        let opened = wait_for("the disk message", PATIENCE, || async {
            titled(&receiver, "opened", &over(level)).into_iter().next()
        })
        .await;
        assert!(
            opened["body"]
                .as_str()
                .unwrap()
                .contains("% of the filesystem"),
            "{opened}"
        );
    }
    std::fs::remove_file(disk.dir.join("filler")).unwrap();
    for level in [80, 90] {
        wait_for("the disk recovered", PATIENCE, || async {
            titled(&receiver, "recovered", &over(level))
                .into_iter()
                .next()
        })
        .await;
        assert_eq!(
            titled(&receiver, "opened", &over(level)).len(),
            1,
            "told once"
        );
    }
}

#[tokio::test]
async fn a_certificate_the_ca_refuses_alerts_with_the_cas_words() {
    let pebble = support::acme::Pebble::from_env();
    let _lock = support::acme::lock_acme_port();
    let host = "t-alert-cert.example.com";
    // Pebble resolves the host to an address where nothing answers HTTP.
    pebble.point_dns(host, "127.0.0.2").await;
    let (receiver, hook) = Receiver::start().await;
    let mut env = pebble.env();
    env.push(("MINICLOUD_ALERT_CHECK_INTERVAL".into(), "1".into()));
    let mc = Minicloud::start_on_http_port(env, pebble.http_port).await;
    let _log = LogOnPanic(&mc);
    add_channel(
        &mc,
        json!({"kind": "webhook", "url": hook, "secret": SECRET}),
    )
    .await;
    let app = support::upstream::start("never").await;
    mc.api().add_route(host, app.addr).await;

    let opened = wait_for("the certificate message", PATIENCE, || async {
        titled(&receiver, "opened", &format!("the certificate of {host}"))
            .into_iter()
            .next()
    })
    .await;
    pebble.clear_dns(host).await;
    let body = opened["body"].as_str().unwrap();
    assert!(
        body.contains("could not validate") && body.contains("127.0.0.2"),
        "the CA's words: {opened}"
    );
    assert!(body.contains("tried again at"), "{opened}");
}

#[tokio::test]
async fn a_failed_deploy_alerts_with_its_reason_and_the_next_good_one_recovers() {
    let app = support::unique("t-alert-deploy");
    let _cleanup = Cleanup(&app);
    let (receiver, hook) = Receiver::start().await;
    let mc = checking_minicloud(&hook, vec![("MINICLOUD_HEALTH_TIMEOUT", "5".into())]).await;
    let _log = LogOnPanic(&mc);
    add_probe(&mc, &app, json!({})).await;
    let title = format!("{app}: deploying failed");

    // probe:v3 never listens: the deploy fails its health check, v1 keeps serving.
    let resp = mc
        .api()
        .post(
            &format!("/api/apps/{app}/deploy"),
            json!({"image": image("probe:v3")}),
        )
        .await;
    assert!(!resp.status().is_success());
    let opened = wait_for("the failed deploy message", PATIENCE, || async {
        titled(&receiver, "opened", &title).into_iter().next()
    })
    .await;
    let body = opened["body"].as_str().unwrap();
    assert!(
        body.contains("revision 2") && body.contains("not healthy after 5s"),
        "{opened}"
    );
    let resp = mc
        .api()
        .post(
            &format!("/api/apps/{app}/deploy"),
            json!({"image": image("probe:v2")}),
        )
        .await;
    assert!(resp.status().is_success());
    let recovered = wait_for("the recovery", PATIENCE, || async {
        titled(&receiver, "recovered", &title).into_iter().next()
    })
    .await;
    assert_eq!(opened["incident"], recovered["incident"]);
    assert_eq!(titled(&receiver, "opened", &title).len(), 1, "told once");
}

/// Writes backup runs into a stopped minicloud's store, as the scheduler would have.
fn put_backups(mc: &Minicloud, runs: &[minicloud::store::BackupRecord]) {
    let path = mc.data_path().join("minicloud").join("state.redb");
    let store = minicloud::store::Store::open(&path).unwrap();
    for run in runs {
        store.put_backup(run).unwrap();
    }
}

/// A scheduled run of `app` with a database dump, started at `at`.
fn backup_run(
    app: &str,
    at: i64,
    state: minicloud::store::BackupState,
    verified: Option<Result<(), &str>>,
) -> minicloud::store::BackupRecord {
    minicloud::store::BackupRecord {
        app: minicloud::model::AppName::try_new(app).unwrap(),
        id: format!("{at:010}-0000"),
        trigger: "schedule".into(),
        started_at: at,
        finished_at: Some(at + 5),
        state,
        parts: vec![minicloud::store::BackupPart {
            part: "database".into(),
            snapshot: "0123abcd".into(),
            bytes: 10,
            added: 10,
        }],
        verified: verified.map(|outcome| minicloud::store::Verification {
            at: at + 60,
            ok: outcome.is_ok(),
            tables: 1,
            rows: 2,
            problem: outcome.err().map(str::to_owned),
        }),
        destinations: Vec::new(),
    }
}

#[tokio::test]
async fn a_missed_backup_and_a_failed_verification_alert_and_good_ones_recover() {
    use minicloud::store::BackupState;
    let app = support::unique("t-alert-backup");
    let _cleanup = Cleanup(&app);
    let (receiver, hook) = Receiver::start().await;
    let mut mc = checking_minicloud(&hook, Vec::new()).await;
    add_probe(&mc, &app, json!({})).await;
    let missed = format!("{app}: a scheduled backup was missed");
    let unverified = format!("{app}: the backup's verification failed");

    // Three days ago a run whose dump did not load when verified; yesterday's slot missed.
    let day = 86_400;
    let now = minicloud::model::now();
    mc.stop();
    put_backups(
        &mc,
        &[
            backup_run(
                &app,
                now - 3 * day,
                BackupState::Succeeded,
                Some(Err("table notes has 1 rows, the dump holds 2")),
            ),
            minicloud::store::BackupRecord {
                parts: Vec::new(),
                finished_at: None,
                ..backup_run(
                    &app,
                    now - day,
                    BackupState::Missed {
                        reason: "minicloud was not running when this backup was due".into(),
                    },
                    None,
                )
            },
        ],
    );
    mc.start_again().await;
    let opened = wait_for("the missed backup message", PATIENCE, || async {
        titled(&receiver, "opened", &missed).into_iter().next()
    })
    .await;
    let body = opened["body"].as_str().unwrap();
    assert!(
        body.contains("was missed: minicloud was not running")
            && body.contains("no backup has succeeded since"),
        "{opened}"
    );
    let opened = wait_for("the verification message", PATIENCE, || async {
        titled(&receiver, "opened", &unverified).into_iter().next()
    })
    .await;
    assert!(
        opened["body"]
            .as_str()
            .unwrap()
            .contains("failed its verification: table notes has 1 rows, the dump holds 2"),
        "{opened}"
    );
    let incidents = incidents_of(&mc, &app).await;
    assert_eq!(incidents.len(), 2, "{incidents:?}");

    // A good run, verified: both recover, each told once.
    mc.stop();
    put_backups(
        &mc,
        &[backup_run(&app, now, BackupState::Succeeded, Some(Ok(())))],
    );
    mc.start_again().await;
    for title in [&missed, &unverified] {
        wait_for("the backup recovered", PATIENCE, || async {
            titled(&receiver, "recovered", title).into_iter().next()
        })
        .await;
        assert_eq!(titled(&receiver, "opened", title).len(), 1, "told once");
    }
}

/// A message told while its channel is down waits in the outbox: the channel shows failing,
/// minicloud is killed, the receiver comes back, and after the restart the message arrives,
/// once, though nothing new happened (the incident it tells of was already open).
#[tokio::test]
async fn a_message_not_yet_delivered_survives_a_crash_and_arrives_once() {
    let (receiver, hook) = Receiver::start().await;
    let target = hook
        .trim_start_matches("http://")
        .trim_end_matches("/hook")
        .to_owned();
    let mut gate = Switch::new(&target).await;
    gate.down().await;
    let gated_hook = format!("http://127.0.0.1:{}/hook", gate.port);
    // MariaDB at a port nothing listens on: the first round of checks opens an incident.
    let closed = support::net::free_port();
    let admin_url = support::services::mariadb_admin_url()
        .replace("@127.0.0.1:3306", &format!("@127.0.0.1:{closed}"));
    let mut mc = checking_minicloud(
        &gated_hook,
        vec![
            ("MINICLOUD_MARIADB_URL", admin_url),
            (
                "MINICLOUD_MARIADB_APP_HOST",
                test_env("MINICLOUD_TEST_HOST_GATEWAY"),
            ),
        ],
    )
    .await;
    let title = format!("MariaDB at 127.0.0.1:{closed} is down");
    let channel_state = |mc: &Minicloud| {
        let api = mc.api();
        async move {
            let channels: Vec<Value> = api.get_json("/api/alerts/channels").await;
            channels[0]["state"].as_str().unwrap_or_default().to_owned()
        }
    };
    wait_for(
        "the channel to fail its first attempt",
        PATIENCE,
        || async { (channel_state(&mc).await == "failing").then_some(()) },
    )
    .await;
    let incidents: Vec<Value> = mc.api().get_json("/api/incidents").await;
    assert!(
        incidents
            .iter()
            .any(|i| i["title"] == title.as_str() && i["resolved_at"].is_null()),
        "{incidents:?}"
    );
    assert!(receiver.got.lock().unwrap().is_empty());

    mc.kill();
    gate.up().await;
    mc.start_again().await;
    let told = wait_for("the message kept over the restart", PATIENCE, || async {
        titled(&receiver, "opened", &title).into_iter().next()
    })
    .await;
    assert_eq!(told["event"], "opened");
    wait_for(
        "the channel to show it delivers again",
        PATIENCE,
        || async { (channel_state(&mc).await == "ok").then_some(()) },
    )
    .await;
    // Once more: the delivered message left the outbox, so a second restart sends nothing.
    mc.restart().await;
    wait_for("the channel after a second restart", PATIENCE, || async {
        (channel_state(&mc).await == "ok").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        titled(&receiver, "opened", &title).len(),
        1,
        "told once: {:?}",
        receiver.got.lock().unwrap()
    );
}
