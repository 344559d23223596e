//! The admin app in a real browser (headless Chromium over WebDriver) against a real
//! `minicloud serve`, the Docker engine and the local registry's probe image: a wrong password
//! is refused; sign in; add the probe app and see it deploy and run; its page; set an env
//! variable (it redeploys and the app sees it); sign out.
//!
//! Chromium fails a request in flight when a network interface appears (every container
//! start adds one), so each step that meets a network error page is done again; each step is
//! one the person could repeat.

mod support;

use std::time::Duration;

use support::browser::Browser;
use support::{image, wait_for, AppCleanup, Minicloud};

const PASSWORD: &str = "browser-test-password";
/// Deploys pull and probe a real container: generous, for a loaded machine.
const DEPLOY: Duration = Duration::from_secs(180);
const PAGE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_person_signs_in_adds_an_app_sets_its_environment_and_signs_out() {
    let app = support::unique("t-ui");
    let mc = Minicloud::start_with(vec![
        ("MINICLOUD_ADMIN_PASSWORD".into(), PASSWORD.into()),
        ("MINICLOUD_HEALTH_TIMEOUT".into(), "30".into()),
    ])
    .await;
    let _cleanup = AppCleanup(&app);
    let browser = Browser::start(&mc).await;
    let admin = mc.https_url(&mc.admin_host(), "");

    // A stranger is sent to the sign-in page; a wrong password is refused.
    browser.goto(&format!("{admin}/")).await;
    assert!(browser.reached("/login", PAGE).await);
    browser
        .submit_login(&admin, "not-the-password", None, "/login")
        .await;
    browser
        .wait_for_text("#login-error", "Wrong username or password", PAGE)
        .await;

    // The right one signs in.
    browser.submit_login(&admin, PASSWORD, None, "/").await;
    browser.wait_for_text("main h1", "Apps", PAGE).await;

    // Add the probe app. The page follows the deploy live and then shows the app; if the
    // browser lost the stream, the deploy goes on and the app's page shows where it got.
    browser.goto(&format!("{admin}/apps/new")).await;
    browser.fill("#image", &image("probe:v1")).await;
    browser.fill("#name", &app).await;
    browser.click("#new-app button[type=submit]").await;
    let app_page = format!("/apps/{app}");
    let api = mc.api();
    wait_for("the app's page, or a lost stream", DEPLOY, || async {
        if browser.path().await == app_page {
            return Some(());
        }
        let lost = browser.net_error().await
            || browser
                .text("#new-app output")
                .await
                .is_some_and(|t| t.contains("Lost the connection"));
        let exists = api.get(&format!("/api/apps/{app}")).await.status() == 200;
        if lost && exists {
            browser.goto(&format!("{admin}{app_page}")).await;
        }
        None
    })
    .await;
    browser.wait_for_text("#app-state", "running", DEPLOY).await;
    let host = format!("{app}.{}", mc.domain);
    let url = browser.text("#app-url").await.unwrap_or_default();
    assert!(url.contains(&host), "{url}");
    let served = mc.get_text(&host, "/").await;
    assert!(served.contains("\"v1\""), "{served}");

    // The dashboard lists it.
    browser.goto(&format!("{admin}/")).await;
    browser.wait_for_text("#apps", &app, PAGE).await;

    // Set an env variable from the app page: it redeploys, and the app sees it.
    browser.goto(&format!("{admin}{app_page}")).await;
    browser.fill("#env-key", "GREETING").await;
    browser.fill("#env-value", "hello <b>world</b>").await;
    browser.click("#env-form button[type=submit]").await;
    browser.wait_for_text("#env", "GREETING", DEPLOY).await;
    let client = mc.client_for(&[&host]);
    wait_for("the app to see GREETING", DEPLOY, || async {
        let env: serde_json::Value = client
            .get(mc.https_url(&host, "/env"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (env["GREETING"] == "hello <b>world</b>").then_some(())
    })
    .await;
    browser.wait_for_text("#app-state", "running", DEPLOY).await;

    // Sign out: the session is over, the pages are closed again.
    browser.sign_out(&admin).await;
    browser.goto(&format!("{admin}{app_page}")).await;
    assert!(browser.reached("/login", PAGE).await);

    let _ = browser.client.clone().close().await;
    assert!(
        !mc.log().contains(PASSWORD),
        "the password must never reach the log"
    );
}

/// `minicloud admin reset-password` works on the server's own store, with minicloud stopped,
/// and says so while it runs.
#[tokio::test]
async fn a_local_password_reset_replaces_the_password() {
    let mut mc =
        Minicloud::start_with(vec![("MINICLOUD_ADMIN_PASSWORD".into(), PASSWORD.into())]).await;
    let reset = |mc: &Minicloud| {
        std::process::Command::new(env!("CARGO_BIN_EXE_minicloud"))
            .args(["admin", "reset-password", "admin"])
            .env_clear()
            .env("MINICLOUD_DOMAIN", &mc.domain)
            .env("MINICLOUD_DATA_DIR", &mc.data_dir)
            .output()
            .expect("run minicloud admin")
    };
    let busy = reset(&mc);
    assert!(!busy.status.success());
    let said = String::from_utf8_lossy(&busy.stderr);
    assert!(
        said.contains("in use by another minicloud process"),
        "{said}"
    );

    assert!(mc.stop().success());
    let done = reset(&mc);
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&done.stderr)
    );
    let new = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 24 && l.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| panic!("no password in {out}"));
    let store =
        minicloud::store::Store::open(&mc.data_dir.join("minicloud").join("state.redb")).unwrap();
    use minicloud::auth::passwords::check_password;
    assert!(check_password(&store, "admin", new).unwrap().is_some());
    assert!(check_password(&store, "admin", PASSWORD).unwrap().is_none());
    let nobody = {
        drop(store);
        std::process::Command::new(env!("CARGO_BIN_EXE_minicloud"))
            .args(["admin", "reset-password", "nobody"])
            .env_clear()
            .env("MINICLOUD_DATA_DIR", &mc.data_dir)
            .output()
            .unwrap()
    };
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("there is no user nobody"));
}
