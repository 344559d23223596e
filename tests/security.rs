//! An attacker's tests: what an app, a stranger on the internet or a leaked URL can try, against
//! the real engine, MariaDB and RabbitMQ of the test environment. Each test says the attack it
//! makes; each would pass the attacker through if the defence it names were gone.

mod support;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

use minicloud::model::name::AppName;
use minicloud::services::{Credentials, Provisioner};
use support::services::rabbitmq_api_url;
use support::services::{admin_conn, db_conn, env, mariadb_admin_url, mariadb_with, server_code};
use support::{containers_of, docker, image, test_env, unique, wait_for, AppCleanup, Minicloud};

/// What an app's account sees of `victim`'s database: `Ok` with the rows it could read, or the
/// server's refusal code.
async fn reach(attacker: &Credentials, victim: &Credentials) -> Result<Vec<String>, Option<u16>> {
    let mut conn = db_conn(attacker, &attacker.password, &attacker.resource)
        .await
        .expect("an app reaches its own database");
    let databases: Vec<String> = conn.query("SHOW DATABASES").await.unwrap();
    let read = conn
        .query::<String, _>(format!("SELECT v FROM `{}`.secrets", victim.resource))
        .await;
    let dropped = conn
        .query_drop(format!("DROP TABLE `{}`.secrets", victim.resource))
        .await;
    conn.disconnect().await.unwrap();
    match (read, dropped) {
        (Ok(rows), _) => Ok(rows),
        (Err(read), Err(_)) => {
            assert!(
                !databases.contains(&victim.resource),
                "{} is listed to {}: {databases:?}",
                victim.resource,
                attacker.user
            );
            Err(server_code(&read))
        }
        (Err(e), Ok(())) => panic!("{} dropped a table it cannot read: {e}", attacker.user),
    }
}

async fn plant_secret(owner: &Credentials) {
    let mut conn = db_conn(owner, &owner.password, &owner.resource)
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE IF NOT EXISTS secrets (v TEXT)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO secrets VALUES ('victim data')")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
}

/// `_` in a database-level GRANT is a LIKE wildcard, even in backticks: app `bl-g`'s grant on
/// `app_bl_g` would cover app `blog`'s `app_blog`. Both ways round, on the real MariaDB; then
/// an installation that still carries the old, wide grant is narrowed by the next ensure.
#[tokio::test]
async fn an_app_named_like_another_cannot_reach_its_database() {
    let env = env();
    let db = mariadb_with(&env.store, &mariadb_admin_url());
    // One random suffix, so the two names differ only where `bl-g` has its `-`.
    let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let blog = AppName::try_new(format!("blog-{suffix}")).unwrap();
    let blg = AppName::try_new(format!("bl-g-{suffix}")).unwrap();
    let victim = db.ensure(&blog).await.unwrap();
    let attacker = db.ensure(&blg).await.unwrap();
    plant_secret(&victim).await;
    plant_secret(&attacker).await;

    for (who, whom) in [(&attacker, &victim), (&victim, &attacker)] {
        let got = reach(who, whom).await;
        assert!(
            matches!(got, Err(Some(1142 | 1044))),
            "{} reached {}: {got:?}",
            who.user,
            whom.resource
        );
    }

    // The grant an earlier minicloud made, unescaped: the hole is real ...
    let mut admin = admin_conn().await;
    admin
        .query_drop(format!(
            "GRANT ALL PRIVILEGES ON `{0}`.* TO '{0}'@'%'",
            attacker.resource
        ))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    assert_eq!(
        reach(&attacker, &victim).await,
        Ok(vec!["victim data".to_owned()]),
        "the unescaped grant is the hole this test is about"
    );
    plant_secret(&victim).await;
    // ... and the next ensure closes it, keeping the app's own database usable.
    let again = db.ensure(&blg).await.unwrap();
    assert!(matches!(
        reach(&again, &victim).await,
        Err(Some(1142 | 1044))
    ));
    let mut own = db_conn(&again, &again.password, &again.resource)
        .await
        .unwrap();
    own.query_drop("INSERT INTO secrets VALUES ('still mine')")
        .await
        .unwrap();
    own.disconnect().await.unwrap();

    db.remove(&blog).await.unwrap();
    db.remove(&blg).await.unwrap();
}

// --- From inside an app container

/// Adds a probe app with the extra fields in `with` and returns its host.
async fn add_probe(mc: &Minicloud, app: &str, with: Value) -> String {
    let mut body = json!({"image": image("probe:v1"), "name": app});
    body.as_object_mut()
        .unwrap()
        .extend(with.as_object().unwrap().clone());
    let resp = mc.api().post("/api/apps", body).await;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{answer}");
    format!("{app}.{}", mc.domain)
}

async fn confinement(mc: &Minicloud, host: &str, threads: usize) -> Value {
    let text = mc
        .get_text(host, &format!("/confinement?threads={threads}"))
        .await;
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// The capabilities an app keeps (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID,
/// NET_BIND_SERVICE) as the kernel's bit mask: the probe runs as root, so it holds them all.
const KEPT_CAPS: u64 = 1 << 0 | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 10;
const NET_RAW: u64 = 1 << 13;

/// An app that runs as root in its container still cannot open a raw socket (no ARP or
/// packet forging on the bridge), gain privileges through a setuid binary, or start more
/// than its pids limit of processes and threads; the admin can raise the limit per app.
#[tokio::test]
async fn an_app_container_is_confined() {
    let mc = Minicloud::start().await;
    let (app, roomy) = (unique("t-conf"), unique("t-roomy"));
    let _cleanup = (AppCleanup(&app), AppCleanup(&roomy));
    let host = add_probe(&mc, &app, json!({})).await;

    let seen = confinement(&mc, &host, 1000).await;
    let raw = seen["raw_socket"].as_str().unwrap_or_else(|| {
        panic!("the app opened a raw socket: {seen}");
    });
    assert!(raw.contains("not permitted"), "{raw}");
    assert_eq!(seen["no_new_privs"], "1", "{seen}");
    for key in ["cap_eff", "cap_bnd"] {
        let mask = u64::from_str_radix(seen[key].as_str().unwrap(), 16).unwrap();
        assert_eq!(mask, KEPT_CAPS, "{key}: {seen}");
        assert_eq!(mask & NET_RAW, 0);
    }
    let started = seen["threads_started"].as_u64().unwrap();
    assert!(
        (1..256).contains(&started),
        "a thread bomb of 1000 got {started} threads past the default limit of 256"
    );
    // The app survives its own bomb: the limit stops it, not the app.
    assert_eq!(mc.get_text(&host, "/healthz").await, "ok");
    let web = format!("mc-{app}-1");
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}} {{.HostConfig.SecurityOpt}} {{.HostConfig.CapDrop}}",
            &web,
        ]),
        "256 512 [no-new-privileges:true] [ALL]"
    );

    // Raised for one app by the admin.
    let host = add_probe(&mc, &roomy, json!({"pids_limit": 700, "cpu_shares": 100})).await;
    let started = confinement(&mc, &host, 1000).await["threads_started"]
        .as_u64()
        .unwrap();
    assert!(
        (400..700).contains(&started),
        "{started} threads under a limit of 700"
    );
    // Out-of-range limits are refused before anything runs.
    let resp = mc
        .api()
        .post(
            "/api/apps",
            json!({"image": image("probe:v1"), "name": unique("t-bad"), "pids_limit": 0}),
        )
        .await;
    assert_eq!(resp.status(), 400);
}

/// What `probe check-tcp` says, run inside `container`, of each address: `ok …` or `FAIL …`.
fn tcp_from(container: &str, addr: &str) -> String {
    docker(&["exec", container, "/probe", "check-tcp", addr])
}

/// An app tries its neighbour and the platform from inside its container: app B's container
/// is unreachable from app A (each app has its own network and is on no other), its own
/// runner reaches it, the edge serves both, and of the host's services only the client
/// ports answer: not RabbitMQ's management API, not minicloud's own API. Removing the app
/// removes its network.
#[tokio::test]
async fn apps_cannot_reach_each_other() {
    let mc = Minicloud::start().await;
    let (a, b) = (unique("t-neta"), unique("t-netb"));
    let _cleanup = (AppCleanup(&a), AppCleanup(&b));
    let host_a = add_probe(&mc, &a, json!({})).await;
    let host_b = add_probe(&mc, &b, json!({})).await;
    let (web_a, web_b) = (format!("mc-{a}-1"), format!("mc-{b}-1"));
    let ip_of = |c: &str| {
        docker(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
            c,
        ])
    };
    for (web, app) in [(&web_a, &a), (&web_b, &b)] {
        let networks = docker(&[
            "inspect",
            "-f",
            "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
            web,
        ]);
        assert_eq!(networks, format!("mc-net-{app}"), "{web}'s networks");
    }
    let (ip_a, ip_b) = (ip_of(&web_a), ip_of(&web_b));

    let across = tcp_from(&web_a, &format!("{ip_b}:8080"));
    assert!(across.starts_with("FAIL"), "app A reached app B: {across}");
    let back = tcp_from(&web_b, &format!("{ip_a}:8080"));
    assert!(back.starts_with("FAIL"), "app B reached app A: {back}");
    // The same probe does connect within its own app: the refusal above is the network's.
    let own = tcp_from(&format!("mc-{a}.worker-1"), &format!("{ip_a}:8080"));
    assert!(
        own.starts_with("ok"),
        "a runner cannot reach its own web: {own}"
    );
    assert_eq!(mc.get_text(&host_a, "/healthz").await, "ok");
    assert_eq!(mc.get_text(&host_b, "/healthz").await, "ok");

    // The host's services as an app sees them (through its gateway, as the test env's apps
    // reach MariaDB and RabbitMQ): client ports yes, admin endpoints no.
    let gateway = test_env("MINICLOUD_TEST_HOST_GATEWAY");
    for (port, reachable) in [
        ("3306".to_owned(), true),
        ("5672".to_owned(), true),
        ("15672".to_owned(), false),
        (mc.api_port.to_string(), false),
    ] {
        let seen = tcp_from(&web_a, &format!("{gateway}:{port}"));
        assert_eq!(seen.starts_with("ok"), reachable, "port {port}: {seen}");
    }

    let resp = mc.api().delete(&format!("/api/apps/{a}")).await;
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    assert_eq!(
        docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=^mc-net-{a}$")
        ]),
        "",
        "the removed app's network is left"
    );
}

/// A deploy that would pull onto a nearly full disk (here: a threshold no disk meets) is
/// refused before the pull, saying how much is free; nothing is started or kept.
#[tokio::test]
async fn a_deploy_is_refused_while_the_disk_is_nearly_full() {
    let mc =
        Minicloud::start_with(vec![("MINICLOUD_MIN_FREE_MB".into(), "1000000000".into())]).await;
    let app = unique("t-full");
    let _cleanup = AppCleanup(&app);
    let resp = mc
        .api()
        .post(
            "/api/apps",
            json!({"image": image("probe:v1"), "name": app}),
        )
        .await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 507, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("MiB free under"), "{body}");
    assert!(containers_of(&app).is_empty());
    let resp = mc.api().get(&format!("/api/apps/{app}")).await;
    assert_eq!(resp.status(), 404, "a refused first deploy keeps no app");
}

// --- A stopped app

/// An admin stops an app (compromised, leaking, costly): nothing but `start` brings it back.
/// Deploys (forced or not), restart, rollback, credential rotation and a push to its
/// webhook are refused or only noted, and its containers stay stopped and unrouted.
#[tokio::test]
async fn a_stopped_app_stays_stopped() {
    let mc = Minicloud::start().await;
    let app = unique("t-stop");
    let _cleanup = AppCleanup(&app);
    let host = add_probe(&mc, &app, json!({})).await;
    let shown: Value = mc.api().get_json(&format!("/api/apps/{app}")).await;
    let webhook = shown["webhook_url"].as_str().unwrap().to_owned();
    let resp = mc
        .api()
        .post(&format!("/api/apps/{app}/stop"), json!({}))
        .await;
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());

    for (verb, body) in [
        ("deploy", json!({})),
        ("deploy", json!({"force": true})),
        ("deploy", json!({"image": image("probe:v2")})),
        ("restart", json!({})),
        ("rollback", json!({"revision": 1})),
        ("rotate-credentials", json!({})),
    ] {
        let resp = mc
            .api()
            .post(&format!("/api/apps/{app}/{verb}"), body)
            .await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 409, "{verb}: {text}");
        assert!(
            text.contains("is stopped; start it first"),
            "{verb}: {text}"
        );
    }
    // The webhook, with the right secret and tag, through the edge as Docker Hub calls it.
    let path = webhook.split_once("/hooks/").unwrap().1;
    let resp = mc
        .client_for(&[&mc.admin_host()])
        .post(mc.https_url(&mc.admin_host(), &format!("/hooks/{path}")))
        .json(&json!({"push_data": {"tag": "v1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "stopped");

    // Nothing was deployed: one revision, stopped, no container running, not served.
    let deploys: Vec<Value> = mc.api().get_json(&format!("/api/apps/{app}/deploys")).await;
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    let shown: Value = mc.api().get_json(&format!("/api/apps/{app}")).await;
    assert_eq!(shown["state"], "stopped", "{shown}");
    for name in containers_of(&app) {
        let state = docker(&["inspect", "-f", "{{.State.Running}}", &name]);
        assert_eq!(state, "false", "{name} runs");
    }
    let resp = mc
        .client_for(&[&host])
        .get(mc.https_url(&host, "/"))
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 200, "the stopped app is served");

    // `start` does bring it back.
    let resp = mc
        .api()
        .post(&format!("/api/apps/{app}/start"), json!({}))
        .await;
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let root = wait_for("the started app", Duration::from_secs(60), || async {
        let text = mc.get_text(&host, "/").await;
        text.contains("\"version\"").then_some(text)
    })
    .await;
    assert!(root.contains("v1"), "{root}");
}

/// The webhook URL is a credential: after a call, the access log shows its path masked.
#[tokio::test]
async fn the_webhook_secret_never_reaches_the_log() {
    let mc = Minicloud::start().await;
    let admin = mc.admin_host();
    let client = mc.client_for(&[&admin]);
    let secret = "0123456789abcdef0123456789abcdef0123456789abcdef";
    let resp = client
        .post(mc.https_url(&admin, &format!("/hooks/deploy/ghost/{secret}")))
        .body("[[[[")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().is_empty());
    let log = wait_for("the access log line", Duration::from_secs(30), || async {
        let log = mc.log();
        log.contains("/hooks/deploy/ghost/***").then_some(log)
    })
    .await;
    assert!(!log.contains(secret), "the secret is in the log");
}

/// A minicloud with MariaDB and RabbitMQ, and this health timeout in seconds.
async fn with_services(health_timeout: &str) -> Minicloud {
    let gateway = test_env("MINICLOUD_TEST_HOST_GATEWAY");
    Minicloud::start_with(
        [
            ("MINICLOUD_HEALTH_TIMEOUT", health_timeout.to_owned()),
            ("MINICLOUD_MARIADB_URL", mariadb_admin_url()),
            ("MINICLOUD_MARIADB_APP_HOST", gateway.clone()),
            ("MINICLOUD_RABBITMQ_API", rabbitmq_api_url()),
            ("MINICLOUD_RABBITMQ_APP_HOST", gateway),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    )
    .await
}

/// An installation from before the escaping carries the wide grant; a start of minicloud
/// narrows it, without a deploy.
#[tokio::test]
async fn a_start_narrows_the_wide_grants_of_older_versions() {
    let mut mc = with_services("30").await;
    let app = unique("t-old");
    let _cleanup = AppCleanup(&app);
    let resp = mc
        .api()
        .post(
            "/api/apps",
            json!({"image": image("probe-services:v1"), "name": app}),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let user = format!("app_{}", app.replace('-', "_"));
    let grants = || async {
        let mut admin = admin_conn().await;
        let rows: Vec<String> = admin
            .query(format!("SHOW GRANTS FOR '{user}'@'%'"))
            .await
            .unwrap();
        admin.disconnect().await.unwrap();
        rows.join("\n")
    };
    let escaped = format!("ON `{}`.*", user.replace('_', "\\_"));
    let wide = format!("ON `{user}`.*");
    let now = grants().await;
    assert!(now.contains(&escaped) && !now.contains(&wide), "{now}");

    // What an older minicloud granted.
    let mut admin = admin_conn().await;
    admin
        .query_drop(format!(
            "GRANT ALL PRIVILEGES ON `{user}`.* TO '{user}'@'%'"
        ))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    assert!(grants().await.contains(&wide));

    mc.restart().await;
    let narrowed = wait_for("the wide grant to go", Duration::from_secs(60), || async {
        let now = grants().await;
        (!now.contains(&wide)).then_some(now)
    })
    .await;
    assert!(narrowed.contains(&escaped), "{narrowed}");
    let resp = mc.api().get(&format!("/api/apps/{app}")).await;
    assert_eq!(resp.status(), 200);
    mc.api().delete(&format!("/api/apps/{app}?data=true")).await;
}

// --- App output

/// An app's output is data: a failing app that prints terminal escapes, a carriage return
/// that would forge a log line, and its own database URL gets a failure whose log tail has the
/// controls escaped and the password redacted.
#[tokio::test]
async fn a_failing_apps_output_is_escaped_and_its_credentials_redacted() {
    let mc = with_services("4").await;
    let app = unique("t-out");
    let _cleanup = AppCleanup(&app);
    let body = json!({
        "image": image("probe-services:v1"),
        "name": app,
        "env": {
            "PROBE_UNHEALTHY": "1",
            "PROBE_SAY": "\u{1b}[2J\u{1b}[31mred\rINFO forged line\u{7}",
            "PROBE_LOG_ENV": "DATABASE_URL",
        },
    });
    let resp = mc.api().post("/api/apps", body).await;
    assert_eq!(resp.status(), 422, "a deploy that never answers fails");
    let answer: Value = resp.json().await.unwrap();
    let tail = answer["deploy"]["log_tail"]
        .as_str()
        .or_else(|| answer["log_tail"].as_str())
        .unwrap_or_else(|| panic!("no log tail: {answer}"))
        .to_owned();
    assert!(
        tail.contains("\\x1b[2J\\x1b[31mred\\x0dINFO forged line\\x07"),
        "{tail}"
    );
    assert!(
        !tail.chars().any(|c| c.is_control() && c != '\n'),
        "{tail:?}"
    );
    let user = format!("app_{}", app.replace('-', "_"));
    assert!(
        tail.contains(&format!("DATABASE_URL=mysql://{user}:<redacted>@")),
        "{tail}"
    );
    let log = mc.log();
    assert!(!log.contains('\u{1b}'), "an escape reached minicloud's log");
}
