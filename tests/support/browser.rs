//! A headless Chromium driven over WebDriver (chromedriver + fantoccini), for the admin app's
//! browser tests. Each browser has its own profile and resolves `*.<domain>` to the edge; it
//! accepts the edge's self-signed certificates.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use super::env::try_test_env;
use super::{free_port, wait_for, Minicloud};

/// chromedriver and the session it drives; both end when this is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// A program from the test environment's variable, else found on `PATH` (chromedriver wants
/// the browser's full path).
fn program(var: &str, fallback: &str) -> String {
    try_test_env(var)
        .filter(|v| !v.is_empty())
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join(fallback))
                .find(|p| p.is_file())
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| {
            panic!("{var} is not set and {fallback} is not on PATH: run scripts/test-env.sh")
        })
}

impl Browser {
    /// Starts chromedriver and a headless Chromium that reaches `mc`'s hosts through its edge.
    pub async fn start(mc: &Minicloud) -> Self {
        Self::launch(mc, &[]).await
    }

    /// The same, with pages asking for the dark colour scheme (`prefers-color-scheme: dark`).
    pub async fn start_dark(mc: &Minicloud) -> Self {
        Self::launch(
            mc,
            &[
                "--force-dark-mode",
                "--blink-settings=preferredColorScheme=0",
            ],
        )
        .await
    }

    async fn launch(mc: &Minicloud, extra_args: &[&str]) -> Self {
        let port = free_port();
        let driver = Command::new(program("MINICLOUD_TEST_CHROMEDRIVER", "chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (install chromium-driver: scripts/test-env.sh)");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        wait_for("chromedriver to answer", Duration::from_secs(30), || {
            let (http, status) = (http.clone(), format!("{url}/status"));
            async move { http.get(&status).send().await.ok().map(drop) }
        })
        .await;
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1200,900".to_owned(),
            "--ignore-certificate-errors".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!(
                "--host-resolver-rules=MAP {} 127.0.0.1, MAP *.{} 127.0.0.1",
                mc.domain, mc.domain
            ),
        ]
        .into_iter()
        .chain(extra_args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": program("MINICLOUD_TEST_CHROMIUM", "chromium"),
                "args": args,
            }),
        );
        caps.insert("acceptInsecureCerts".into(), true.into());
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a WebDriver session");
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// The element `css`, waited for; the page's source in the panic when it never comes.
    pub async fn element(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "no {css} on {}: {e}\n{}",
                self.path().await,
                self.client.source().await.unwrap_or_default()
            ),
        }
    }

    /// Fills the input `css` with `text` (replacing what is there).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.element(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        self.element(css).await.click().await.expect("click");
    }

    /// The current URL's path.
    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    }

    /// The text of the element `css`, or `None` while there is none.
    pub async fn text(&self, css: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    /// Whether the page is Chromium's own network error page. Chromium fails requests in
    /// flight with ERR_NETWORK_CHANGED whenever an interface appears, and every container
    /// the engine starts (ours, or another test's) adds one: a step that meets this is retried.
    pub async fn net_error(&self) -> bool {
        self.client
            .source()
            .await
            .is_ok_and(|s| s.contains("neterror") || s.contains("ERR_NETWORK_CHANGED"))
    }

    /// Loads `url` (a GET, safe to repeat), again while Chromium shows a network error.
    pub async fn goto(&self, url: &str) {
        for _ in 0..20 {
            if self.client.goto(url).await.is_ok() && !self.net_error().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!(
            "{url} did not load; the browser shows:\n{}",
            self.client.source().await.unwrap_or_default()
        );
    }

    /// What sticks out sideways, making the page scroll horizontally: the innermost elements
    /// wider than the window, described; `None` when the page fits.
    pub async fn sideways_overflow(&self) -> Option<String> {
        const SCRIPT: &str = r##"
            const width = document.documentElement.clientWidth;
            if (document.documentElement.scrollWidth <= width) return null;
            const out = [...document.querySelectorAll("body *")].filter(el =>
                el.getBoundingClientRect().right > width + 1 &&
                ![...el.children].some(c => c.getBoundingClientRect().right > width + 1));
            return out.slice(0, 5).map(el => el.tagName.toLowerCase() +
                (el.id ? "#" + el.id : "") +
                (typeof el.className === "string" && el.className ? "." + el.className : "") +
                " reaches " + Math.round(el.getBoundingClientRect().right) + "px of " + width)
                .join("; ") || "the page is wider than the window";
        "##;
        let found = self
            .client
            .execute(SCRIPT, Vec::new())
            .await
            .expect("run the overflow script");
        found.as_str().map(str::to_owned)
    }

    /// Makes the window `width` by `height` CSS pixels (a phone's, say).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize the window");
    }

    /// Saves what the window shows as a PNG at `path` (its folder made if needed).
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshots folder");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Reloads the page as a GET of its URL (never a form again).
    pub async fn reload(&self) {
        if let Ok(url) = self.client.current_url().await {
            self.goto(url.as_str()).await;
        }
    }

    /// Waits until the page's path is `path`: `false` if Chromium showed a network error
    /// instead (the caller decides how to retry); panics with the page's source on timeout.
    pub async fn reached(&self, path: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.path().await == path && !self.net_error().await {
                return true;
            }
            if self.net_error().await {
                return false;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "the browser did not reach {path}; it is at {}:\n{}",
                    self.path().await,
                    self.client.source().await.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the element `css` says something containing `text`, reloading the page
    /// (a GET) after a network error and every 15 s, so a live update missed is seen anyway.
    pub async fn wait_for_text(&self, css: &str, text: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        let mut reload_at = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(found) = self.text(css).await.filter(|t| t.contains(text)) {
                return found;
            }
            let now = std::time::Instant::now();
            if now > deadline {
                panic!(
                    "{css} never said {text:?}; the page at {}:\n{}",
                    self.path().await,
                    self.client.source().await.unwrap_or_default()
                );
            }
            if now > reload_at || self.net_error().await {
                self.reload().await;
                reload_at = now + Duration::from_secs(15);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Submits the admin app's sign-in form at `admin` (its https URL) as `admin`, with a
    /// two-factor code if given, until the browser gets an answer (again after a network
    /// error) and is at `lands_on`; panics if it never does.
    pub async fn submit_login(
        &self,
        admin: &str,
        password: &str,
        code: Option<&str>,
        lands_on: &str,
    ) {
        let mut fields = vec![("#username", "admin"), ("#password", password)];
        if let Some(code) = code {
            fields.push(("#code", code));
        }
        self.submit_form(&format!("{admin}/login"), &fields, "#sign-in", lands_on)
            .await;
    }

    /// Loads `page`, fills `fields` (css, text), clicks `button` and waits to land on the path
    /// `lands_on`; all again while Chromium shows a network error instead of the answer (a
    /// container started or removed meanwhile), so only for forms safe to send twice. Panics
    /// with the page if it never lands.
    pub async fn submit_form(
        &self,
        page: &str,
        fields: &[(&str, &str)],
        button: &str,
        lands_on: &str,
    ) {
        for _ in 0..5 {
            self.goto(page).await;
            for (css, text) in fields {
                self.fill(css, text).await;
            }
            self.click(button).await;
            if self.reached(lands_on, SIGN_IN_WAIT).await {
                return;
            }
        }
        panic!("the form at {page} never answered");
    }

    /// Signs out with the button every page has, again after a network error; panics if it
    /// never gets there.
    pub async fn sign_out(&self, admin: &str) {
        for _ in 0..5 {
            self.goto(&format!("{admin}/")).await;
            if self.path().await == "/login" {
                return; // an earlier try got through before its answer was lost
            }
            self.click(".signout button").await;
            if self.reached("/login", SIGN_IN_WAIT).await {
                return;
            }
        }
        panic!("never signed out");
    }
}

/// How long a form's answer (a sign-in, a sign-out, a short operation) may take.
const SIGN_IN_WAIT: Duration = Duration::from_secs(30);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
