//! The admin app's Settings in a real browser (headless Chromium over WebDriver) against a
//! real `minicloud serve`: create an API token (shown once) and use it, revoke it; turn on
//! two-factor sign-in (the test computes the code, as an authenticator app would) and sign in
//! with it; the audit log shows it; sign out; then `minicloud admin reset-2fa` on the server.

mod support;

use std::time::Duration;

use minicloud::auth::totp;
use minicloud::model::now;
use support::browser::Browser;
use support::Minicloud;

const PASSWORD: &str = "browser-settings-password";
const PAGE: Duration = Duration::from_secs(30);

/// The API on its loopback address with `token`: the status of `GET /api/apps`.
async fn api_status(mc: &Minicloud, token: &str) -> u16 {
    reqwest::Client::new()
        .get(mc.api_url("/api/apps"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the API answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_person_makes_and_revokes_a_token_and_signs_in_with_a_second_factor() {
    let mut mc =
        Minicloud::start_with(vec![("MINICLOUD_ADMIN_PASSWORD".into(), PASSWORD.into())]).await;
    let browser = Browser::start(&mc).await;
    let admin = mc.https_url(&mc.admin_host(), "");
    browser.submit_login(&admin, PASSWORD, None, "/").await;

    // A token, shown once; the API takes it.
    browser.goto(&format!("{admin}/settings")).await;
    browser.fill("#token-name", "browser-ci").await;
    browser.fill("#token-days", "7").await;
    browser.click("#token-form button[type=submit]").await;
    let token = browser.wait_for_text("#new-token-value", "mc_", PAGE).await;
    assert_eq!(api_status(&mc, &token).await, 200);
    browser.goto(&format!("{admin}/settings")).await;
    browser.wait_for_text("#tokens", "browser-ci", PAGE).await;
    assert!(
        browser.text("#new-token").await.is_none(),
        "shown once only"
    );
    // Revoked: the API refuses it.
    browser
        .click("#tokens button[aria-label='Revoke browser-ci']")
        .await;
    assert!(browser.reached("/settings", PAGE).await);
    assert!(!browser
        .text("main")
        .await
        .unwrap_or_default()
        .contains("browser-ci"));
    assert_eq!(api_status(&mc, &token).await, 401);

    // Two-factor sign-in: the key is read off the page and the code computed from it.
    browser.click("#two-factor-begin button").await;
    let secret = browser.wait_for_text("#totp-secret", "", PAGE).await;
    assert!(secret.len() >= 32, "{secret}");
    let code = totp::code_at(&secret, now()).unwrap();
    browser.fill("#totp-code", &code).await;
    browser.click("#two-factor-confirm button").await;
    browser
        .wait_for_text("#recovery-codes", "shown only this once", PAGE)
        .await;
    browser.wait_for_text("#two-factor-state", "on", PAGE).await;
    browser.sign_out(&admin).await;

    // The password alone no longer signs in; with the app's code it does. The confirming code
    // is spent, so the next step's is used (accepted one step early, like a fast clock).
    browser.submit_login(&admin, PASSWORD, None, "/login").await;
    browser
        .wait_for_text("#login-error", "six-digit code", PAGE)
        .await;
    let code = totp::code_at(&secret, now() + totp::STEP_SECS).unwrap();
    browser
        .submit_login(&admin, PASSWORD, Some(&code), "/")
        .await;

    // The audit log has it all, by this user.
    browser.goto(&format!("{admin}/audit?actor=admin")).await;
    let log = browser.wait_for_text("#audit", "sign-in", PAGE).await;
    for what in [
        "POST /settings/tokens",
        "POST /settings/tokens/revoke",
        "POST /settings/2fa/confirm",
    ] {
        assert!(log.contains(what), "{what} missing from:\n{log}");
    }
    browser.sign_out(&admin).await;
    let _ = browser.client.clone().close().await;
    assert!(
        !mc.log().contains(&token),
        "a token must never reach the log"
    );

    // Lost phone: reset on the server, with minicloud stopped.
    assert!(mc.stop().success());
    let reset = std::process::Command::new(env!("CARGO_BIN_EXE_minicloud"))
        .args(["admin", "reset-2fa", "admin"])
        .env_clear()
        .env("MINICLOUD_DOMAIN", &mc.domain)
        .env("MINICLOUD_DATA_DIR", &mc.data_dir)
        .output()
        .expect("run minicloud admin");
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let store =
        minicloud::store::Store::open(&mc.data_dir.join("minicloud").join("state.redb")).unwrap();
    assert!(!totp::required(&store, "admin").unwrap());
    let filter = minicloud::audit::AuditFilter {
        what: Some("reset-2fa".into()),
        ..Default::default()
    };
    assert_eq!(store.audit(&filter, 10).unwrap().len(), 1);
}
