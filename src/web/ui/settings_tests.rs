//! The Settings and Audit pages in process: tokens made on the page open the API until
//! revoked, two-factor sign-in, users, password changes, "sign out everywhere", session
//! expiry, and the audit log that records it all.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use super::session::SESSION_COOKIE;
use super::tests::{
    cookie_value, get, sign_in, try_login, try_login_with, with_admin_password, PASSWORD,
};
use crate::auth::{sessions, token_hash, totp};
use crate::model::now;
use crate::web::tests::{admin, Admin};

/// The text of the element with `id` (up to its first tag end), as a page shows it.
fn element_text(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let rest = &page[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..].split('<').next().unwrap().to_owned()
}

async fn api_get(admin: &Admin, path: &str, token: &str) -> (StatusCode, String) {
    let request = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = admin.call(request).await;
    (status, body)
}

#[tokio::test]
async fn a_token_made_on_the_settings_page_opens_the_api_until_revoked_and_the_log_says_so() {
    let admin = admin();
    with_admin_password(&admin);
    let browser = sign_in(&admin).await;
    let (status, _, page) = browser
        .post("/settings/tokens", &[("name", "ci"), ("days", "30")])
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let token = element_text(&page, "new-token-value");
    assert!(token.starts_with("mc_"), "{token}");
    let (status, _) = api_get(&admin, "/api/apps", &token).await;
    assert_eq!(status, StatusCode::OK);
    // Listed with its last use, never shown again.
    let (_, _, page) = browser.get("/settings").await;
    assert!(page.contains("<code>ci</code>"), "{page}");
    assert!(!page.contains(&token));
    let listed = crate::auth::tokens::list(&admin.ctx.store, now()).unwrap();
    let ci = listed.iter().find(|t| t.name == "ci").unwrap();
    assert!(ci.last_used.is_some(), "its last use is noted");
    // A bad expiry is refused on the page, and nothing is made.
    let (status, _, page) = browser
        .post("/settings/tokens", &[("name", "x"), ("days", "soon")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(element_text(&page, "settings-error").contains("whole number of days"));
    let (status, headers, _) = browser
        .post("/settings/tokens/revoke", &[("name", "ci")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/settings");
    let (status, _) = api_get(&admin, "/api/apps", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The audit log has the sign-in and both changes, by the user, from where they came.
    let (other, _) = crate::auth::tokens::create(&admin.ctx.store, "auditor", None, now()).unwrap();
    let (status, body) = api_get(&admin, "/api/audit?actor=admin", other.expose()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let whats: Vec<&str> = entries
        .iter()
        .map(|e| e["what"].as_str().unwrap())
        .collect();
    assert_eq!(
        whats,
        [
            "POST /settings/tokens/revoke",
            "POST /settings/tokens",
            "POST /settings/tokens",
            "sign-in"
        ],
        "{body}"
    );
    assert_eq!(entries[0]["actor"]["kind"], "user");
    assert_eq!(entries[0]["ip"], "local");
    assert_eq!(entries[0]["outcome"], "303 See Other");
    assert_eq!(entries[1]["ok"], false, "the refused expiry");
    // The API's own changes are recorded as the token; the page filters.
    let (_, body) = api_get(&admin, "/api/audit?failed=true", other.expose()).await;
    // By the parsed outcomes: a timestamp can hold "303" too.
    let failed: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let outcomes: Vec<&str> = failed
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"400 Bad Request") && !outcomes.contains(&"303 See Other"),
        "{body}"
    );
    let (_, _, page) = browser.get("/audit?actor=admin&what=revoke").await;
    assert!(page.contains("POST /settings/tokens/revoke"), "{page}");
    assert!(!page.contains("sign-in"), "{page}");
    let (status, _, _) = browser.get("/audit?days=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn two_factor_sign_in_asks_for_a_code_once_turned_on() {
    let admin = admin();
    with_admin_password(&admin);
    let browser = sign_in(&admin).await;
    let (status, _, _) = browser.post("/settings/2fa", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browser.get("/settings").await;
    let secret = element_text(&page, "totp-secret");
    assert!(page.contains("otpauth://totp/"), "{page}");
    let (status, headers, svg) = browser.get("/settings/2fa/qr.svg").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
    assert!(svg.contains("<svg"), "{svg}");
    // Not on until a code confirms it: sign-in still needs only the password.
    let (status, _, _) = try_login(&admin, "admin", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = browser
        .post("/settings/2fa/confirm", &[("code", "000000")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(element_text(&page, "settings-error").contains("not right"));
    let t = now();
    let code = totp::code_at(&secret, t).unwrap();
    let (status, _, page) = browser
        .post("/settings/2fa/confirm", &[("code", &code)])
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"recovery-codes\""), "{page}");
    let recovery = page
        .split("<li><code>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();

    // The password alone is refused now, and counts as a failure.
    let (status, headers, page) = try_login(&admin, "admin", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("six-digit code"), "{page}");
    assert!(cookie_value(&headers, SESSION_COOKIE).is_none());
    // The next step's code (the confirming one is spent) signs in; so does a recovery code.
    let next = totp::code_at(&secret, t + totp::STEP_SECS).unwrap();
    for code in [next.as_str(), recovery.as_str()] {
        let (status, headers, page) = try_login_with(
            &admin,
            &[
                ("username", "admin"),
                ("password", PASSWORD),
                ("code", code),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{code}: {page}");
        assert!(cookie_value(&headers, SESSION_COOKIE).is_some());
    }
    // Turning it off asks for the password.
    let (status, _, _) = browser
        .post("/settings/2fa/remove", &[("password", "wrong")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = browser
        .post("/settings/2fa/remove", &[("password", PASSWORD)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!totp::required(&admin.ctx.store, "admin").unwrap());
    // No key waits: no QR code.
    let (status, _, _) = browser.get("/settings/2fa/qr.svg").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn users_are_added_and_removed_but_never_the_last() {
    let admin = admin();
    with_admin_password(&admin);
    let browser = sign_in(&admin).await;
    let (status, _, page) = browser
        .post("/settings/users", &[("name", "ann"), ("password", "short")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(element_text(&page, "settings-error").contains("12 characters"));
    let (status, _, _) = browser
        .post(
            "/settings/users",
            &[("name", "ann"), ("password", "anns-long-password")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = try_login(&admin, "ann", "anns-long-password").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = browser
        .post("/settings/users/remove", &[("name", "ann")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = browser
        .post("/settings/users/remove", &[("name", "admin")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(element_text(&page, "settings-error").contains("only user"));
    assert!(admin.ctx.store.user("admin").unwrap().is_some());
}

#[tokio::test]
async fn a_password_change_and_sign_out_everywhere_end_the_other_sessions() {
    let admin = admin();
    with_admin_password(&admin);
    let first = sign_in(&admin).await;
    let second = sign_in(&admin).await;
    let (status, _, _) = second
        .post(
            "/settings/password",
            &[("current", "wrong"), ("new", "a-new-long-password")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, headers, _) = second
        .post(
            "/settings/password",
            &[("current", PASSWORD), ("new", "a-new-long-password")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // This browser got a fresh session; the other one is out.
    let fresh = cookie_value(&headers, SESSION_COOKIE).expect("a fresh session");
    let fresh = format!("{SESSION_COOKIE}={fresh}");
    let (status, _, _) = get(&admin, "/settings", Some(&fresh)).await;
    assert_eq!(status, StatusCode::OK);
    for old in [&first.session, &second.session] {
        let (status, headers, _) = get(&admin, "/", Some(old)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/login");
    }

    // Sign out everywhere, from a third browser: the fresh one ends too.
    let (_, headers, _) = try_login(&admin, "admin", "a-new-long-password").await;
    let third = format!(
        "{SESSION_COOKIE}={}",
        cookie_value(&headers, SESSION_COOKIE).unwrap()
    );
    let (_, _, page) = get(&admin, "/settings", Some(&third)).await;
    let csrf = super::tests::csrf_field(&page);
    let (status, headers, _) = super::tests::post(
        &admin,
        "/logout/everywhere",
        Some(&third),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/login");
    for old in [&fresh, &third] {
        let (status, _, _) = get(&admin, "/", Some(old)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn a_session_idle_too_long_sends_back_to_sign_in() {
    let admin = admin();
    with_admin_password(&admin);
    let browser = sign_in(&admin).await;
    let cookie = browser.session.split_once('=').unwrap().1;
    let key = token_hash(cookie);
    let mut record = admin.ctx.store.session(&key).unwrap().unwrap();
    record.last_seen = now() - sessions::IDLE_EXPIRY_SECS - 1;
    admin.ctx.store.put_session(&key, &record).unwrap();
    let (status, headers, _) = browser.get("/settings").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/login");
    assert!(admin.ctx.store.session(&key).unwrap().is_none(), "deleted");
}
