//! The admin app in process (no socket): nothing opens without a session, nothing changes
//! without the CSRF token, the cookies' flags, the security headers, escaping, throttling.

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};

use super::protected_routes;
use super::session::{LOGIN_COOKIE, SESSION_COOKIE};
use crate::auth::passwords::ensure_admin_user;
use crate::model::{Actor, Secret};
use crate::web::tests::{admin, stored_app, Admin};

pub(super) const PASSWORD: &str = "a-long-test-password";

/// Every protected path, with `{name}` filled in by an app that exists.
fn protected_paths() -> Vec<String> {
    protected_routes()
        .into_iter()
        .map(|(path, _)| path.replace("{name}", "blog"))
        .collect()
}

pub(super) fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

pub(super) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers).iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_owned())
    })
}

/// The value of the hidden `csrf` field of the first form on a page.
pub(super) fn csrf_field(page: &str) -> String {
    let at =
        page.find(r#"name="csrf" value=""#).expect("a csrf field") + r#"name="csrf" value=""#.len();
    page[at..].split('"').next().unwrap().to_owned()
}

pub(super) struct Browser<'a> {
    admin: &'a Admin,
    pub(super) session: String,
    pub(super) csrf: String,
}

pub(super) fn with_admin_password(admin: &Admin) {
    ensure_admin_user(&admin.ctx.store, Some(&Secret::new(PASSWORD)), 0).unwrap();
}

pub(super) async fn get(
    admin: &Admin,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::get(path);
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    admin.call(request.body(Body::empty()).unwrap()).await
}

pub(super) async fn post(
    admin: &Admin,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut request =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    let body = serde_urlencoded::to_string(form).unwrap();
    admin.call(request.body(Body::from(body)).unwrap()).await
}

/// Signs in through the login form, as a browser would; `(status, headers, body)` of the POST.
pub(super) async fn try_login(
    admin: &Admin,
    user: &str,
    password: &str,
) -> (StatusCode, HeaderMap, String) {
    try_login_with(admin, &[("username", user), ("password", password)]).await
}

/// The same with any fields (a two-factor code).
pub(super) async fn try_login_with(
    admin: &Admin,
    fields: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let (status, headers, page) = get(admin, "/login", None).await;
    assert_eq!(status, StatusCode::OK);
    let token = cookie_value(&headers, LOGIN_COOKIE).expect("the login cookie");
    assert_eq!(csrf_field(&page), token);
    let mut form = fields.to_vec();
    form.push(("csrf", &token));
    post(
        admin,
        "/login",
        Some(&format!("{LOGIN_COOKIE}={token}")),
        &form,
    )
    .await
}

pub(super) async fn sign_in(admin: &Admin) -> Browser<'_> {
    let (status, headers, body) = try_login(admin, "admin", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers[header::LOCATION], "/");
    let session = cookie_value(&headers, SESSION_COOKIE).expect("a session cookie");
    let cookie = format!("{SESSION_COOKIE}={session}");
    let (status, _, page) = get(admin, "/routes", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    Browser {
        admin,
        csrf: csrf_field(&page),
        session: cookie,
    }
}

impl Browser<'_> {
    pub(super) async fn get(&self, path: &str) -> (StatusCode, HeaderMap, String) {
        get(self.admin, path, Some(&self.session)).await
    }

    pub(super) async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut form = form.to_vec();
        form.push(("csrf", &self.csrf));
        post(self.admin, path, Some(&self.session), &form).await
    }
}

#[tokio::test]
async fn every_page_and_form_sends_a_stranger_to_the_sign_in_page() {
    let admin = admin();
    stored_app(&admin.ctx, "blog");
    let paths = protected_paths();
    assert!(paths.len() >= 15, "{paths:?}");
    for path in paths
        .iter()
        .map(String::as_str)
        .chain(["/nope", "/apps/blog/nope"])
    {
        for cookie in [None, Some(format!("{SESSION_COOKIE}=forged"))] {
            for method in [Method::GET, Method::POST] {
                let mut request = Request::builder().method(method.clone()).uri(path);
                if let Some(c) = &cookie {
                    request = request.header(header::COOKIE, c);
                }
                let (status, headers, _) = admin.call(request.body(Body::empty()).unwrap()).await;
                assert_eq!(status, StatusCode::SEE_OTHER, "{method} {path}");
                assert_eq!(headers[header::LOCATION], "/login", "{method} {path}");
            }
        }
    }
    // The sign-in page and the static files are open.
    let (status, headers, page) = get(&admin, "/login", None).await;
    assert_eq!(status, StatusCode::OK);
    let css = page
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let (status, css_headers, _) = get(&admin, css, None).await;
    assert_eq!(status, StatusCode::OK, "{css}");
    assert_eq!(
        css_headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn sign_in_sets_strict_host_only_cookies_and_wrong_passwords_are_refused() {
    let admin = admin();
    with_admin_password(&admin);
    let (status, headers, page) = try_login(&admin, "admin", "not-the-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Wrong username or password."), "{page}");
    assert!(cookie_value(&headers, SESSION_COOKIE).is_none());
    let (status, _, _) = try_login(&admin, "nobody", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, headers, _) = try_login(&admin, "admin", PASSWORD).await;
    let session = set_cookies(&headers)
        .into_iter()
        .find(|c| c.starts_with(&format!("{SESSION_COOKIE}=")))
        .unwrap();
    for flag in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=",
    ] {
        assert!(session.contains(flag), "{flag} missing in {session}");
    }
    assert!(!session.contains("Domain"), "{session}");

    // The sign-in form itself needs its token: a forged cross-site login is refused.
    let (status, _, _) = post(
        &admin,
        "/login",
        None,
        &[("username", "admin"), ("password", PASSWORD), ("csrf", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn pages_send_the_security_headers() {
    let admin = admin();
    with_admin_password(&admin);
    let browser = sign_in(&admin).await;
    for path in ["/", "/routes", "/certificates", "/apps/new", "/login"] {
        let (status, headers, page) = browser.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
        assert!(!page.contains("<script>"), "no inline script on {path}");
    }
}

#[tokio::test]
async fn a_change_without_the_csrf_token_is_forbidden_and_with_it_runs_as_the_user() {
    let admin = admin();
    with_admin_password(&admin);
    stored_app(&admin.ctx, "blog");
    let browser = sign_in(&admin).await;
    for path in protected_paths() {
        let (status, _, _) =
            post(&admin, &path, Some(&browser.session), &[("csrf", "wrong")]).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "POST {path} with a wrong token"
        );
        let (status, _, _) = post(&admin, &path, Some(&browser.session), &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "POST {path} without a token");
    }
    assert!(admin.ctx.store.routes().unwrap().is_empty());

    let mut events = admin.ctx.bus.subscribe();
    let (status, headers, body) = browser
        .post(
            "/routes",
            &[
                ("host", "grafana.example.com"),
                ("upstream", "127.0.0.1:3000"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers[header::LOCATION], "/routes");
    assert_eq!(admin.ctx.store.routes().unwrap().len(), 1);
    let event = events.try_recv().unwrap();
    assert_eq!(event.actor, Actor::User("admin".into()));
    let (_, _, page) = browser.get("/routes").await;
    assert!(page.contains("grafana.example.com"), "{page}");

    // Bad input: a clear message, nothing changed.
    let (status, _, page) = browser
        .post("/routes", &[("host", "not a host"), ("upstream", "x")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("id=\"error-message\""), "{page}");
    let (status, _, page) = browser
        .post("/apps/blog/delete", &[("confirm", "blgo")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("type the app&#39;s name, blog,")
            || page.contains("type the app&#x27;s name, blog,"),
        "{page}"
    );
    assert!(admin
        .ctx
        .store
        .app(&crate::model::AppName::try_new("blog").unwrap())
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn markup_from_users_is_shown_escaped() {
    let admin = admin();
    with_admin_password(&admin);
    stored_app(&admin.ctx, "blog");
    let name = crate::model::AppName::try_new("blog").unwrap();
    let mut record = admin.ctx.store.app(&name).unwrap().unwrap();
    record
        .env
        .insert("GREETING".into(), "<script>alert(1)</script>".into());
    admin.ctx.store.put_app(&record).unwrap();
    let browser = sign_in(&admin).await;
    let (status, _, page) = browser.get("/apps/blog").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    // A name with markup never becomes an app, and the refusal does not echo it raw.
    let (status, _, page) = browser.get("/apps/%3Cb%3Ex%3C%2Fb%3E").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!page.contains("<b>x</b>"), "{page}");
}

#[tokio::test]
async fn the_alerts_page_shows_incidents_and_manages_channels_without_showing_secrets() {
    use crate::store::{IncidentKind, IncidentRecord, TimelineEntry};
    let admin = admin();
    with_admin_password(&admin);
    admin
        .ctx
        .store
        .put_incident(&IncidentRecord {
            id: 1,
            key: "service/mariadb".into(),
            app: None,
            kind: IncidentKind::ServiceDown,
            title: "MariaDB at 127.0.0.1:3306 is down".into(),
            opened_at: 0,
            resolved_at: None,
            exit_code: None,
            reminded_at: None,
            timeline: vec![TimelineEntry {
                at: 0,
                text: "Connection refused <b>".into(),
            }],
        })
        .unwrap();
    let browser = sign_in(&admin).await;
    let (status, _, page) = browser.get("/alerts").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("MariaDB at 127.0.0.1:3306 is down"), "{page}");
    assert!(page.contains("service-down"), "{page}");
    assert!(page.contains(">open</span>"), "{page}");
    assert!(
        !page.contains("refused <b>"),
        "timeline text is escaped: {page}"
    );

    // Port 9 on loopback refuses: the test fails, and says why; the channel shows failing.
    let (status, headers, page) = browser
        .post(
            "/alerts/channels",
            &[
                ("kind", "slack"),
                ("url", "http://127.0.0.1:9/services/T/B/hooksecret"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(headers[header::LOCATION], "/alerts");
    let id = admin.ctx.store.channels().unwrap()[0].id.clone();
    let (status, _, page) = browser
        .post("/alerts/channels/test", &[("id", id.as_str())])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("Slack"), "{page}");
    assert!(!page.contains("hooksecret"), "{page}");
    let (_, _, page) = browser.get("/alerts").await;
    assert!(page.contains(">failing</span>"), "{page}");
    assert!(page.contains("127.0.0.1:9"), "{page}");
    assert!(!page.contains("hooksecret"), "{page}");

    // Bad input: what to do, and nothing kept.
    let (status, _, page) = browser
        .post(
            "/alerts/channels",
            &[
                ("kind", "telegram"),
                ("bot_token", "nope"),
                ("chat_id", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("@BotFather"), "{page}");
    assert_eq!(admin.ctx.store.channels().unwrap().len(), 1);

    let (status, _, _) = browser
        .post("/alerts/channels/remove", &[("id", id.as_str())])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(admin.ctx.store.channels().unwrap().is_empty());
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_account() {
    let admin = admin();
    with_admin_password(&admin);
    for _ in 0..4 {
        let (status, _, _) = try_login(&admin, "admin", "guess-guess-guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password must wait.
    let (status, headers, page) = try_login(&admin, "admin", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    assert!(cookie_value(&headers, SESSION_COOKIE).is_none());
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let admin = admin();
    with_admin_password(&admin);
    let browser = sign_in(&admin).await;
    let (status, headers, _) = browser.post("/logout", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/login");
    let cleared = set_cookies(&headers);
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with(&format!("{SESSION_COOKIE}=;")) && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    let (status, headers, _) = browser.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/login");
}

#[tokio::test]
async fn the_backups_pages_show_each_run_honestly_and_a_restore_needs_the_apps_name() {
    use crate::store::{BackupPart, BackupRecord, BackupState};
    let admin = admin();
    with_admin_password(&admin);
    stored_app(&admin.ctx, "blog");
    let run = |id: &str, state: BackupState, parts: Vec<BackupPart>| BackupRecord {
        app: "blog".parse().unwrap(),
        id: id.into(),
        trigger: "manual".into(),
        started_at: id[..10].parse().unwrap(),
        finished_at: Some(id[..10].parse::<i64>().unwrap() + 3),
        state,
        parts,
        verified: None,
        destinations: vec![],
    };
    let database = BackupPart {
        part: "database".into(),
        snapshot: "s1".into(),
        bytes: 2_000_000,
        added: 1_000_000,
    };
    for record in [
        run(
            "0000000100-aaaa",
            BackupState::Succeeded,
            vec![database.clone()],
        ),
        run(
            "0000000150-cccc",
            BackupState::Partial {
                reason: "copy to S3 at http://127.0.0.1:1/b failed".into(),
            },
            vec![database],
        ),
        run(
            "0000000200-bbbb",
            BackupState::Failed {
                reason: "MariaDB at h:1: <down>".into(),
            },
            vec![],
        ),
        run(
            "0000000300-0000",
            BackupState::Missed {
                reason: "minicloud was not running".into(),
            },
            vec![],
        ),
    ] {
        admin.ctx.store.put_backup(&record).unwrap();
    }
    let browser = sign_in(&admin).await;
    let (status, _, page) = browser.get("/apps/blog/backups").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for shown in [
        "state-succeeded",
        "state-failed",
        "state-missed",
        "state-partial",
        "copy to S3 at http://127.0.0.1:1/b failed",
        "MariaDB at h:1: ",
        "minicloud was not running",
        "2.0 MB read, 1.0 MB added",
        "Back up now",
    ] {
        assert!(page.contains(shown), "{shown} missing in {page}");
    }
    assert!(
        !page.contains("<down>"),
        "the reason is not escaped: {page}"
    );
    // Only the good run and the partial one (its local copy is whole) can be downloaded or
    // restored from; newest first.
    assert_eq!(page.matches("/download\"").count(), 2, "{page}");
    assert!(page.contains("/apps/blog/backups/0000000150-cccc/download"));
    assert!(page.contains("/apps/blog/backups/0000000100-aaaa/download"));
    assert!(page.find("state-missed") < page.find("state-succeeded"));

    let (status, _, page) = browser.get("/backups").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        page.matches("href=\"/apps/blog/backups\"").count(),
        4,
        "{page}"
    );

    // A restore without the app's name typed restores nothing.
    let (status, _, page) = browser
        .post(
            "/apps/blog/backups/0000000100-aaaa/restore",
            &[("confirm", "nope"), ("part", "")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("Nothing was restored"), "{page}");
}

#[tokio::test]
async fn the_backup_settings_form_changes_the_policy_and_refuses_bad_values() {
    let admin = admin();
    with_admin_password(&admin);
    stored_app(&admin.ctx, "blog");
    let blog: crate::model::AppName = "blog".parse().unwrap();
    let browser = sign_in(&admin).await;
    let (status, _, page) = browser.get("/apps/blog/backups").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Schedule and retention"), "{page}");
    assert!(page.contains(r#"value="daily" checked"#), "{page}");
    assert!(
        page.contains(r#"name="keep_monthly" type="number" min="0" max="1000" required value="6""#),
        "{page}"
    );

    let form = [
        ("schedule", "time"),
        ("time", "04:45"),
        ("keep_last", "2"),
        ("keep_daily", "3"),
        ("keep_weekly", "0"),
        ("keep_monthly", "12"),
    ];
    let (status, headers, body) = browser.post("/apps/blog/backups/settings", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers[header::LOCATION], "/apps/blog/backups");
    let stored = admin.ctx.store.backup_policy(&blog).unwrap().unwrap();
    assert_eq!(
        stored.policy,
        crate::model::BackupPolicy {
            schedule: crate::model::Schedule::At(4 * 60 + 45),
            keep_last: 2,
            keep_daily: 3,
            keep_weekly: 0,
            keep_monthly: 12,
        }
    );
    let (_, _, page) = browser.get("/apps/blog/backups").await;
    assert!(page.contains(r#"value="time" checked"#), "{page}");
    assert!(page.contains(r#"value="04:45""#), "{page}");

    // Bad values: a page that says what is wrong, and the policy as it was.
    for (field, value, says) in [
        ("keep_last", "0", "at least 1"),
        ("keep_daily", "many", "keep_daily must be a whole number"),
        ("time", "", "Choose the time of day"),
    ] {
        let mut bad = form.to_vec();
        bad.retain(|(k, _)| *k != field);
        bad.push((field, value));
        let (status, _, page) = browser.post("/apps/blog/backups/settings", &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {page}");
        assert!(
            page.contains("was not changed") && page.contains(says),
            "{field}: {page}"
        );
    }
    assert_eq!(
        admin.ctx.store.backup_policy(&blog).unwrap().unwrap(),
        stored
    );
    // A change of retention alone keeps the schedule's reference time; a new schedule
    // moves it.
    let mut earlier = stored.clone();
    earlier.schedule_changed_at = 1;
    admin.ctx.store.put_backup_policy(&earlier).unwrap();
    let mut more = form.to_vec();
    more[2] = ("keep_last", "4");
    let (status, _, body) = browser.post("/apps/blog/backups/settings", &more).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let now_stored = admin.ctx.store.backup_policy(&blog).unwrap().unwrap();
    assert_eq!(now_stored.policy.keep_last, 4);
    assert_eq!(now_stored.schedule_changed_at, 1);
    // Off: the page says no backup is scheduled.
    let mut off = form.to_vec();
    off[0] = ("schedule", "off");
    let (status, _, body) = browser.post("/apps/blog/backups/settings", &off).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, _, page) = browser.get("/apps/blog/backups").await;
    assert!(page.contains("the schedule is off"), "{page}");
    let off_stored = admin.ctx.store.backup_policy(&blog).unwrap().unwrap();
    assert!(off_stored.schedule_changed_at >= now_stored.updated_at);
}
