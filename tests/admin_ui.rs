//! The admin app in a real browser (headless Chromium over WebDriver) against a real
//! `minicloud serve`, the Docker engine, MariaDB and the local registry's probe image: a wrong
//! password is refused; sign in; add the probe app and see it deploy and run; its page; set an
//! env variable (it redeploys and the app sees it); attach a database the manifest did not ask
//! for (the app sees `DATABASE_URL`); add a domain; roll back; read and follow the logs; every
//! page screenshotted light and dark into `screenshots/` (gitignored); sign out.
//!
//! Chromium fails a request in flight when a network interface appears (every container
//! start adds one), so each step that meets a network error page is done again; each step is
//! one the person could repeat.

mod support;

use std::time::Duration;

use support::browser::Browser;
use support::env::test_env;
use support::services::mariadb_admin_url;
use support::{image, wait_for, AppCleanup, Minicloud};

const PASSWORD: &str = "browser-test-password";
/// Deploys pull and probe a real container: generous, for a loaded machine.
const DEPLOY: Duration = Duration::from_secs(180);
const PAGE: Duration = Duration::from_secs(30);

/// Signs in with the right password (again after a network error).
async fn sign_in(browser: &Browser, admin: &str) {
    browser.submit_login(admin, PASSWORD, None, "/").await;
}

#[tokio::test]
async fn a_person_signs_in_adds_an_app_sets_its_environment_and_signs_out() {
    let app = support::unique("t-ui");
    let mc = Minicloud::start_with(vec![
        ("MINICLOUD_ADMIN_PASSWORD".into(), PASSWORD.into()),
        ("MINICLOUD_HEALTH_TIMEOUT".into(), "30".into()),
        ("MINICLOUD_MARIADB_URL".into(), mariadb_admin_url()),
        (
            "MINICLOUD_MARIADB_APP_HOST".into(),
            test_env("MINICLOUD_TEST_HOST_GATEWAY"),
        ),
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
    sign_in(&browser, &admin).await;
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

    // Attach a database the probe's manifest does not ask for: it redeploys with DATABASE_URL.
    browser.goto(&format!("{admin}{app_page}")).await;
    browser.click("#attach-database").await;
    browser.wait_for_text("#services", "Detach", DEPLOY).await;
    wait_for("the app to see DATABASE_URL", DEPLOY, || async {
        let env: serde_json::Value = client
            .get(mc.https_url(&host, "/env"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let url = env["DATABASE_URL"].as_str()?;
        url.starts_with("mysql://").then_some(())
    })
    .await;
    browser.wait_for_text("#app-state", "running", DEPLOY).await;

    // Add a domain: it is listed with its certificate and what its DNS says.
    let domain = format!("{app}.example.org");
    // Sent again after a network error: a domain already added is no change.
    browser
        .submit_form(
            &format!("{admin}{app_page}"),
            &[("#domain", &domain)],
            "#domain-form button[type=submit]",
            &app_page,
        )
        .await;
    // It points nowhere near this server: the check says which record to create.
    browser
        .wait_for_text("#domains", &format!("record for {domain}"), PAGE)
        .await;

    // Roll back to the first revision: a new revision runs its image.
    browser.goto(&format!("{admin}{app_page}")).await;
    browser.click("#history form button[type=submit]").await;
    browser
        .wait_for_text("#history", "rollback to revision 1", DEPLOY)
        .await;
    browser.wait_for_text("#app-state", "running", DEPLOY).await;

    // Read the logs, then follow them: a request made now shows up without a reload.
    let logs = format!("{admin}{app_page}/logs");
    let early = format!("/before-{app}");
    let _ = client.get(mc.https_url(&host, &early)).send().await;
    browser.goto(&logs).await;
    browser.wait_for_text("#logs", &early, PAGE).await;
    browser.click("#follow").await;
    let late = format!("/followed-{app}");
    wait_for("a followed log line", PAGE, || async {
        let _ = client.get(mc.https_url(&host, &late)).send().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        browser
            .text("#logs")
            .await
            .filter(|t| t.contains(&late))
            .map(drop)
    })
    .await;

    // Every page, light and dark, for review.
    let pages = [
        ("dashboard", "/".to_owned()),
        ("add-an-app", "/apps/new".to_owned()),
        ("app", app_page.clone()),
        ("logs", format!("{app_page}/logs")),
        ("routes", "/routes".to_owned()),
        ("certificates", "/certificates".to_owned()),
    ];
    screenshots(&browser, &admin, &pages, "light").await;
    // On a phone too, nothing makes a page scroll sideways.
    browser.resize(390, 844).await;
    fits(&browser, &admin, &pages).await;
    let dark = Browser::start_dark(&mc).await;
    sign_in(&dark, &admin).await;
    screenshots(&dark, &admin, &pages, "dark").await;
    let _ = dark.client.clone().close().await;

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

/// Screenshots of `pages` (name, path) as `screenshots/<name>-<scheme>.png`.
async fn screenshots(browser: &Browser, admin: &str, pages: &[(&str, String)], scheme: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
    for (name, path) in pages {
        browser.goto(&format!("{admin}{path}")).await;
        browser.element("main h1").await;
        browser
            .screenshot(&dir.join(format!("{name}-{scheme}.png")))
            .await;
        assert_fits(browser, name).await;
    }
}

/// Each of `pages` fits the window's width.
async fn fits(browser: &Browser, admin: &str, pages: &[(&str, String)]) {
    for (name, path) in pages {
        browser.goto(&format!("{admin}{path}")).await;
        browser.element("main h1").await;
        assert_fits(browser, name).await;
    }
}

/// The page shown does not scroll sideways.
async fn assert_fits(browser: &Browser, name: &str) {
    if let Some(overflow) = browser.sideways_overflow().await {
        panic!("the {name} page scrolls sideways: {overflow}");
    }
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
