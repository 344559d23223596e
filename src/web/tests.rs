//! The admin host's router in process (no socket, no Docker): authentication, statuses, the
//! one error shape, and that every streamed operation ends with its `result`.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

use super::{router, WebState, BODY_LIMIT};
use crate::apps::{AppSettings, Apps};
use crate::auth::{ensure_bootstrap_token, Bootstrap};
use crate::config::Sources;
use crate::ctx::Ctx;
use crate::model::{AppName, ImageRef, Operation, Secret};
use crate::store::{AppRecord, Store};

pub(super) struct Admin {
    pub(super) router: Router,
    pub(super) ctx: Ctx,
    /// The router's sampler handle, for tests that sample by hand.
    pub(super) metrics: super::metrics::Metrics,
    token: String,
    _dir: tempfile::TempDir,
}

pub(super) fn admin() -> Admin {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let config = Sources::new()
        .flags([("data_dir", data.as_str())])
        .resolve()
        .unwrap();
    let store = Store::open(&dir.path().join("state.redb")).unwrap();
    let Bootstrap::Generated(token) = ensure_bootstrap_token(&store, None, 0).unwrap() else {
        panic!("a new store has no token")
    };
    let ctx = Ctx::new(config, store, minicloud_proxy::Edge::new());
    let settings = AppSettings {
        health_timeout: std::time::Duration::from_secs(1),
        networks: Default::default(),
        pull_timeout: crate::docker::DEFAULT_PULL_TIMEOUT,
        min_free_mb: 0,
    };
    let apps = Apps::new(ctx.clone(), settings).unwrap();
    let state = WebState::new(ctx.clone(), apps);
    Admin {
        metrics: state.metrics.clone(),
        router: router(state),
        ctx,
        token: token.expose().to_owned(),
        _dir: dir,
    }
}

/// An app in the store that has never served (no Docker involved).
pub(super) fn stored_app(ctx: &Ctx, name: &str) {
    ctx.store
        .put_app(&AppRecord {
            name: AppName::try_new(name).unwrap(),
            image: ImageRef::parse("registry.test/blog:1").unwrap(),
            registry_auth: None,
            env: BTreeMap::new(),
            env_before: None,
            domains: BTreeSet::new(),
            memory_mb: 64,
            pids_limit: None,
            cpu_shares: None,
            webhook_secret: Secret::new("s3cret-s3cret-s3cret"),
            stopped: false,
            current: None,
            created_at: 0,
            added_services: BTreeSet::new(),
        })
        .unwrap();
}

impl Admin {
    pub(super) async fn call(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    pub(super) fn request(&self, method: Method, path: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
    }

    pub(super) async fn json(
        &self,
        method: Method,
        path: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let request = self
            .request(method, path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let (status, _, text) = self.call(request).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        )
    }

    /// The events of a streamed call, as (event, data) pairs, read until the stream ends.
    async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Vec<(String, serde_json::Value)> {
        let mut request = self
            .request(method, path)
            .header(header::ACCEPT, "text/event-stream");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let (status, headers, text) = self.call(request).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        text.split("\n\n")
            .filter_map(|block| {
                let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
                let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
                Some((event.to_owned(), serde_json::from_str(data).unwrap()))
            })
            .collect()
    }
}

#[tokio::test]
async fn nothing_answers_without_a_valid_token() {
    let admin = admin();
    for path in ["/api/apps", "/api/routes", "/api/nope"] {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let (status, headers, body) = admin.call(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert!(body.contains("Authorization: Bearer"), "{body}");
    }
    let wrong = Request::get("/api/apps")
        .header(header::AUTHORIZATION, "Bearer mc_wrong")
        .body(Body::empty())
        .unwrap();
    assert_eq!(admin.call(wrong).await.0, StatusCode::UNAUTHORIZED);
    // Outside /api and /hooks is the admin app: a token is not a session.
    let page = admin.request(Method::GET, "/").body(Body::empty()).unwrap();
    let (status, headers, _) = admin.call(page).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/login");
}

#[tokio::test]
async fn refusals_share_one_json_shape_with_the_right_status() {
    let admin = admin();
    let cases: [(Method, &str, &str, StatusCode, &str); 7] = [
        (
            Method::GET,
            "/api/nope",
            "",
            StatusCode::NOT_FOUND,
            "no such API endpoint",
        ),
        (
            Method::POST,
            "/api/apps/blog/reboot",
            "",
            StatusCode::NOT_FOUND,
            "no such API endpoint",
        ),
        (
            Method::GET,
            "/api/apps/ghost",
            "",
            StatusCode::NOT_FOUND,
            "no app named 'ghost'",
        ),
        (
            Method::GET,
            "/api/apps/Not_A_Name",
            "",
            StatusCode::BAD_REQUEST,
            "Not_A_Name",
        ),
        (
            Method::POST,
            "/api/apps",
            "{",
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            Method::POST,
            "/api/apps",
            r#"{"imgae": "blog:1"}"#,
            StatusCode::BAD_REQUEST,
            "unknown field `imgae`",
        ),
        (
            Method::DELETE,
            "/api/apps/blog?data=maybe",
            "",
            StatusCode::BAD_REQUEST,
            "query string",
        ),
    ];
    for (method, path, body, want, says) in cases {
        let (status, json) = admin.json(method.clone(), path, body).await;
        assert_eq!(status, want, "{method} {path}: {json}");
        let error = json["error"].as_str().unwrap();
        assert!(error.contains(says), "{method} {path}: {error}");
        assert!(!error.contains("Failed to deserialize"), "{error}");
        assert!(!error.contains("line 1 column"), "{error}");
    }
}

#[tokio::test]
async fn bodies_must_be_json_and_within_the_limit() {
    let admin = admin();
    let plain = admin
        .request(Method::POST, "/api/apps")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"image":"blog:1"}"#))
        .unwrap();
    let (status, _, body) = admin.call(plain).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(body.contains("application/json"), "{body}");

    let huge = format!(
        r#"{{"image":"blog:1","env":{{"A":"{}"}}}}"#,
        "x".repeat(BODY_LIMIT)
    );
    let (status, json) = admin.json(Method::POST, "/api/apps", &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains(&BODY_LIMIT.to_string()),
        "{json}"
    );
}

#[tokio::test]
async fn requests_are_validated_by_the_operation() {
    let admin = admin();
    let (status, json) = admin
        .json(
            Method::POST,
            "/api/apps",
            r#"{"image":"blog:1","name":"blog","memory_mb":1}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json["error"],
        "the memory limit must be between 16 and 65536 MB"
    );
    let (status, json) = admin
        .json(
            Method::POST,
            "/api/apps",
            r#"{"image":"blog:1","name":"blog","registry_username":"me"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("registry_password"),
        "{json}"
    );
    let (status, json) = admin
        .json(
            Method::POST,
            "/api/apps",
            r#"{"image":"blog:1","name":"blog","env":{"1BAD":"1"}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    // Nothing was stored by any of them.
    assert!(admin.ctx.store.apps().unwrap().is_empty());
}

#[tokio::test]
async fn a_webhook_with_a_wrong_secret_finds_nothing() {
    let admin = admin();
    stored_app(&admin.ctx, "blog");
    let request = Request::post("/hooks/deploy/blog/not-the-secret")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"push_data":{"tag":"1"}}"#))
        .unwrap();
    let (status, _, body) = admin.call(request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.is_empty(), "{body}");
}

/// Walks the API's own route table, so a route added later is checked too: each one, with its
/// method and sample path parameters, refuses a caller without a token (and one with a wrong
/// token) before its handler runs, whatever the body.
#[tokio::test]
async fn every_api_route_refuses_without_a_token() {
    let admin = admin();
    stored_app(&admin.ctx, "blog");
    let routes = super::api::routes();
    assert!(routes.len() >= 20, "the table lists every route");
    for route in routes {
        let path = format!(
            "/api{}",
            route
                .path
                .replace("{name}", "blog")
                .replace("{host}", "blog.example.com")
                .replace("{domain}", "blog.example.com")
                .replace("{id}", "1")
                .replace("{service}", "database")
        );
        assert!(!path.contains('{'), "a parameter without a sample: {path}");
        for auth in [
            None,
            Some("Bearer mc_wrong"),
            Some("Basic YWRtaW46YWRtaW4="),
        ] {
            let mut request = Request::builder()
                .method(route.method.clone())
                .uri(&path)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(auth) = auth {
                request = request.header(header::AUTHORIZATION, auth);
            }
            let request = request.body(Body::from(r#"{"image":"x/y:1"}"#)).unwrap();
            let (status, _, body) = admin.call(request).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {path} with {auth:?}: {body}",
                route.method
            );
        }
    }
    // Nothing ran: the app is as it was stored.
    let record = admin
        .ctx
        .store
        .app(&AppName::try_new("blog").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(record.webhook_secret.expose(), "s3cret-s3cret-s3cret");
    assert_eq!(admin.ctx.store.apps().unwrap().len(), 1);
}

/// A stopped app stays stopped: every call that would run it again is refused with a 409 that
/// says to start it first, and so is a push to its webhook (answered, not deployed).
#[tokio::test]
async fn a_stopped_app_is_not_deployed_by_anything_but_start() {
    let admin = admin();
    stored_app(&admin.ctx, "blog");
    let name = AppName::try_new("blog").unwrap();
    let mut record = admin.ctx.store.app(&name).unwrap().unwrap();
    record.stopped = true;
    record.current = Some(1);
    admin.ctx.store.put_app(&record).unwrap();
    for (path, body) in [
        ("/api/apps/blog/deploy", "{}"),
        ("/api/apps/blog/deploy", r#"{"force":true}"#),
        (
            "/api/apps/blog/deploy",
            r#"{"image":"registry.test/blog:2"}"#,
        ),
        ("/api/apps/blog/restart", "{}"),
        ("/api/apps/blog/rollback", "{}"),
        ("/api/apps/blog/rollback", r#"{"revision":1}"#),
        ("/api/apps/blog/rotate-credentials", "{}"),
    ] {
        let (status, answer) = admin.json(Method::POST, path, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path} {body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains("blog is stopped; start it first"),
            "{path}: {error}"
        );
    }
    let hook = Request::post("/hooks/deploy/blog/s3cret-s3cret-s3cret")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"push_data":{"tag":"1"}}"#))
        .unwrap();
    let (status, _, body) = admin.call(hook).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains(r#""status":"stopped""#), "{body}");
    // Nothing moved: still stopped, no deploy recorded, no lock left held.
    let after = admin.ctx.store.app(&name).unwrap().unwrap();
    assert!(after.stopped);
    assert!(admin.ctx.store.deploys(&name).unwrap().is_empty());
    assert!(admin.ctx.locks.busy(&name).is_none());
}

/// Before the app and its secret check out, every answer is a bare 404 and the body is not
/// read: wrong content types, junk and oversized bodies, undecodable paths.
#[tokio::test]
async fn the_webhook_answers_a_bare_404_before_reading_a_body() {
    let admin = admin();
    stored_app(&admin.ctx, "blog");
    let big = "[".repeat(2_000_000);
    let cases: [(&str, &str, String); 6] = [
        ("/hooks/deploy/blog/wrong", "application/json", big.clone()),
        ("/hooks/deploy/blog/wrong", "text/plain", "x".into()),
        ("/hooks/deploy/blog/wrong", "application/json", "{".into()),
        (
            "/hooks/deploy/ghost/s3cret-s3cret-s3cret",
            "application/json",
            "{}".into(),
        ),
        (
            "/hooks/deploy/Not_A_Name/x",
            "application/json",
            "{}".into(),
        ),
        ("/hooks/deploy/blog/%FF%FE", "application/json", "{}".into()),
    ];
    for (path, content_type, body) in cases {
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        let (status, _, answer) = admin.call(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} {content_type}");
        assert!(answer.is_empty(), "{path}: {answer}");
    }
    // With the right secret, a body over the small limit is refused unread past it.
    let request = Request::post("/hooks/deploy/blog/s3cret-s3cret-s3cret")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    let (status, _, _) = admin.call(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_rotated_webhook_secret_retires_the_old_url() {
    let admin = admin();
    stored_app(&admin.ctx, "blog");
    let (status, answer) = admin
        .json(Method::POST, "/api/apps/blog/rotate-webhook", "{}")
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let url = answer["webhook_url"].as_str().unwrap();
    let secret = url.rsplit('/').next().unwrap();
    assert!(url.contains("/hooks/deploy/blog/"), "{url}");
    assert_eq!(secret.len(), 48, "{url}");
    assert_ne!(secret, "s3cret-s3cret-s3cret");
    let tag_ignored = r#"{"push_data":{"tag":"other"}}"#;
    for (secret, expected) in [
        ("s3cret-s3cret-s3cret", StatusCode::NOT_FOUND),
        (secret, StatusCode::OK),
    ] {
        let request = Request::post(format!("/hooks/deploy/blog/{secret}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(tag_ignored))
            .unwrap();
        assert_eq!(admin.call(request).await.0, expected, "{secret}");
    }
}

/// The last event of a stream, which must be its only `result`.
fn result_of(events: &[(String, serde_json::Value)]) -> &serde_json::Value {
    let results: Vec<_> = events.iter().filter(|(e, _)| e == "result").collect();
    assert_eq!(results.len(), 1, "{events:?}");
    assert_eq!(events.last().unwrap().0, "result", "{events:?}");
    &events.last().unwrap().1
}

#[tokio::test]
async fn every_streamed_operation_ends_with_its_result() {
    let admin = admin();
    stored_app(&admin.ctx, "fresh");
    // An unknown app, for each verb.
    for verb in [
        "restart",
        "stop",
        "start",
        "rollback",
        "deploy",
        "rotate-credentials",
    ] {
        let events = admin
            .stream(Method::POST, &format!("/api/apps/ghost/{verb}"), None)
            .await;
        let result = result_of(&events);
        assert_eq!(result["ok"], false, "{verb}");
        assert_eq!(result["status"], 404, "{verb}: {result}");
    }
    // A restart that fails early: the app has never served.
    let events = admin
        .stream(Method::POST, "/api/apps/fresh/restart", None)
        .await;
    let result = result_of(&events);
    assert_eq!(result["status"], 400);
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("no running revision"),
        "{result}"
    );
    // An environment change that changes nothing deploys nothing, and still ends.
    let events = admin
        .stream(
            Method::PATCH,
            "/api/apps/fresh/env",
            Some(r#"{"unset":["NOT_SET"]}"#),
        )
        .await;
    let result = result_of(&events);
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["app"]["name"], "fresh");
}

#[tokio::test]
async fn a_call_refused_as_busy_shows_only_its_refusal() {
    let admin = admin();
    stored_app(&admin.ctx, "held");
    let app = AppName::try_new("held").unwrap();
    let _held = admin.ctx.locks.lock(&app, Operation::Deploy).unwrap();
    let events = admin
        .stream(Method::POST, "/api/apps/held/restart", None)
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    let result = result_of(&events);
    assert_eq!(result["status"], 409);
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("a deploy is in progress"),
        "{result}"
    );
}

#[tokio::test]
async fn a_stream_follows_its_own_operation_only() {
    let admin = admin();
    let app = AppName::try_new("blog").unwrap();
    let mine = admin.ctx.begin(crate::model::Actor::System);
    let other = admin.ctx.begin(crate::model::Actor::System);
    let bus = admin.ctx.bus.clone();
    let (this, that) = (mine.clone(), other.clone());
    // While it runs, another operation on the same app reports too.
    let operation = async move {
        bus.step(&that, &app, "the other operation's step");
        bus.step(&this, &app, "my step");
        bus.step(&that, &app, "the other operation's last step");
        Ok::<_, crate::apps::AppError>("done")
    };
    let headers = [(header::ACCEPT, "text/event-stream".parse().unwrap())]
        .into_iter()
        .collect();
    let response =
        super::progress::respond(&admin.ctx.bus, mine, &headers, StatusCode::OK, operation)
            .await
            .unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("my step"), "{text}");
    assert!(!text.contains("other operation"), "{text}");
    assert!(
        text.trim_end()
            .ends_with(r#"data: {"app":"done","ok":true}"#),
        "{text}"
    );
}

#[tokio::test]
async fn alert_channels_are_checked_kept_masked_tested_and_removed() {
    let admin = admin();
    let (status, json) = admin
        .json(
            Method::POST,
            "/api/alerts/channels",
            r#"{"kind":"webhook","url":"ftp://x/y"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    let (status, json) = admin
        .json(
            Method::POST,
            "/api/alerts/channels",
            r#"{"kind":"pager","url":"http://x/"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(admin.ctx.store.channels().unwrap().is_empty());

    // Nothing listens on port 1: the test fails, and the channel (only) shows it.
    let (status, added) = admin
        .json(
            Method::POST,
            "/api/alerts/channels",
            r#"{"kind":"webhook","url":"http://127.0.0.1:1/hook"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let secret = added["secret"].as_str().unwrap().to_owned();
    let id = added["id"].as_str().unwrap().to_owned();
    let (status, json) = admin
        .json(
            Method::POST,
            &format!("/api/alerts/channels/{id}/test"),
            "{}",
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert!(json["error"]
        .as_str()
        .unwrap()
        .contains("could not be delivered"));
    let (status, listed) = admin.json(Method::GET, "/api/alerts/channels", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["state"], "failing", "{listed}");
    assert!(!listed.to_string().contains(&secret), "{listed}");

    let (status, incidents) = admin.json(Method::GET, "/api/incidents", "").await;
    assert_eq!((status, incidents), (StatusCode::OK, serde_json::json!([])));
    let delete = |id: String| {
        admin
            .request(Method::DELETE, &format!("/api/alerts/channels/{id}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        admin.call(delete(id.clone())).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(admin.call(delete(id)).await.0, StatusCode::NOT_FOUND);
}

/// A route change answers, apart from the call as a whole, how long the edge took from the
/// store's commit to serving the new snapshot (`Server-Timing: publish`).
#[tokio::test]
async fn a_route_change_reports_its_publish_time() {
    let admin = admin();
    let publish_ms = |headers: &axum::http::HeaderMap| -> f64 {
        let timing = headers["server-timing"].to_str().unwrap();
        let dur = timing
            .strip_prefix("publish;dur=")
            .unwrap_or_else(|| panic!("{timing}"));
        dur.parse().unwrap_or_else(|_| panic!("{timing}"))
    };
    let request = admin
        .request(Method::POST, "/api/routes")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"host": "timed.example.com", "upstream": "127.0.0.1:9"}"#,
        ))
        .unwrap();
    let (status, headers, text) = admin.call(request).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert!(publish_ms(&headers) >= 0.0);
    let served = admin.ctx.edge.snapshot().routes.lookup("timed.example.com");
    assert_eq!(
        served.map(|u| u.to_string()).as_deref(),
        Some("127.0.0.1:9")
    );

    let request = admin
        .request(Method::DELETE, "/api/routes/timed.example.com")
        .body(Body::empty())
        .unwrap();
    let (status, headers, text) = admin.call(request).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert!(publish_ms(&headers) >= 0.0);
    assert!(admin
        .ctx
        .edge
        .snapshot()
        .routes
        .lookup("timed.example.com")
        .is_none());
}
