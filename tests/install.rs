//! `install.sh` end to end, on this machine's Docker engine: the local install images
//! (`scripts/build-install-images.sh`, built here when missing) with the minicloud binary this
//! test run built, a compose project, ports and directories of the test's own. Then, through
//! the installed minicloud's edge: the admin app and the API, the probe deployed with a
//! database, a message bus and storage; `--dry-run`, a port taken, an upgrade under a
//! client's load (minicloud's container hands its sockets to the next one inside the holder's
//! network namespace: no connection refused, no request failed; the counts are printed), a
//! rerun that changes nothing, `--uninstall` (apps' containers removed, data kept, everything
//! back on the next install) and `--uninstall --purge`.
//!
//! It needs root (install.sh checks for it, and builds the base image with debootstrap) and
//! takes minutes: the first image build about 7, the test itself about 3.
#![allow(clippy::disallowed_methods)] // the test reads its own environment

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{containers_of, docker, free_port, test_env, unique, AppCleanup};

const DOMAIN: &str = "mc.test";
/// The local images `scripts/build-install-images.sh` builds.
const BASE_IMAGE: &str = "minicloud-test/debian:bookworm";
/// The compose services: the holder (it owns the network namespace and the published ports,
/// and has no health check) and the three with one.
const SERVICES: [&str; 4] = ["holder", "minicloud", "mariadb", "rabbitmq"];

/// Builds the install images unless they are all there (the first time takes minutes: it
/// runs debootstrap and Debian's package installs).
fn ensure_install_images() -> (String, String) {
    let mariadb = test_env("MINICLOUD_TEST_MARIADB_IMAGE");
    let rabbitmq = test_env("MINICLOUD_TEST_RABBITMQ_IMAGE");
    let runtime = test_env("MINICLOUD_TEST_RUNTIME_IMAGE");
    let present = Command::new("docker")
        .args([
            "image", "inspect", BASE_IMAGE, &runtime, &mariadb, &rabbitmq,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run docker")
        .success();
    if !present {
        let started = Instant::now();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-install-images.sh");
        let out = Command::new(script)
            .output()
            .expect("run build-install-images.sh");
        assert!(
            out.status.success(),
            "build-install-images.sh failed:\n{}",
            text(&out)
        );
        println!(
            "install images built in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    (mariadb, rabbitmq)
}

/// Builds a minicloud image from the binary this test run built (the Dockerfile's `prebuilt`
/// target on the local base). `rebuild` labels it, so each value gives another image id.
fn build_minicloud_image(tag: &str, rebuild: &str) {
    let ctx = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        env!("CARGO_BIN_EXE_minicloud"),
        ctx.path().join("minicloud"),
    )
    .expect("copy the minicloud binary");
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile");
    let out = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "--target", "prebuilt", "-t", tag])
        .args(["--build-arg", &format!("DEBIAN_IMAGE={BASE_IMAGE}")])
        .args(["--label", &format!("minicloud.test.rebuild={rebuild}")])
        .arg("-f")
        .arg(&dockerfile)
        .arg(ctx.path())
        .output()
        .expect("run docker build");
    assert!(out.status.success(), "docker build {tag}:\n{}", text(&out));
}

fn text(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One install of minicloud by install.sh: its project, ports, directories and images. Its
/// drop removes whatever the test left running (a failed test included).
struct Install {
    project: String,
    dir: PathBuf,
    data_dir: PathBuf,
    http_port: u16,
    https_port: u16,
    images: Vec<String>,
    _tmp: tempfile::TempDir,
}

impl Install {
    fn new(images: Vec<String>) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        Self {
            project: unique("mctest"),
            dir: tmp.path().join("cloud"),
            data_dir: tmp.path().join("data"),
            http_port: free_port(),
            https_port: free_port(),
            images,
            _tmp: tmp,
        }
    }

    /// Runs install.sh with this install's project, directories and ports, and `args`.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
            .args(["--yes", "--dir"])
            .arg(&self.dir)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .env("MINICLOUD_COMPOSE_PROJECT", &self.project)
            // The DNS hint would ask a public service for this box's address.
            .env("MINICLOUD_PUBLIC_IP", "127.0.0.1")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run install.sh")
    }

    /// Runs install.sh and asserts it succeeded; returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "install.sh {args:?}:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The network install.sh makes for minicloud and its services.
    fn network(&self) -> String {
        format!("mc-core-{}", self.project)
    }

    /// The fixed container name install.sh gives a service: the holder's is
    /// `<project>-minicloud` (the name minicloud attaches to app networks).
    fn container(&self, service: &str) -> String {
        format!("{}-{service}", self.project)
    }

    /// The one container of a compose service (minicloud's has no fixed name: two run side
    /// by side during an upgrade).
    fn service_container(&self, service: &str) -> String {
        let ids = docker(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]);
        assert_eq!(ids.lines().count(), 1, "one {service} container: {ids}");
        ids
    }

    /// Each service's container id and health (the holder's state, it has no health check),
    /// by service.
    fn services(&self) -> BTreeMap<&'static str, (String, String)> {
        SERVICES
            .into_iter()
            .map(|s| {
                // Docker 20.10 fails the template on a missing `.State.Health`.
                let format = if s == "holder" {
                    "{{.Id}} {{.State.Status}}"
                } else {
                    "{{.Id}} {{if .State.Health}}{{.State.Health.Status}}{{end}}"
                };
                let seen = docker(&["inspect", "-f", format, &self.service_container(s)]);
                let (id, health) = seen.split_once(' ').unwrap_or((&seen, ""));
                (s, (id.to_owned(), health.to_owned()))
            })
            .collect()
    }

    /// The project's containers, any state.
    fn project_containers(&self) -> String {
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
        ])
    }

    fn env_file(&self) -> String {
        std::fs::read_to_string(self.dir.join(".env")).expect("the .env install.sh wrote")
    }

    fn env_value(&self, key: &str) -> String {
        self.env_file()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
            .unwrap_or_else(|| panic!("{key} in .env"))
    }

    fn https_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.https_port))
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.https_port)
    }

    /// A client that resolves `hosts` to this install's edge, accepting its self-signed
    /// certificates, following no redirect. `fresh`: a new connection for each request.
    fn client(&self, hosts: &[&str], fresh: bool) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120));
        if fresh {
            builder = builder.pool_max_idle_per_host(0);
        }
        for host in hosts {
            builder = builder.resolve(host, self.https_addr());
        }
        builder.build().expect("client")
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        for id in self.project_containers().lines() {
            docker(&["rm", "-f", id]);
        }
        docker(&["network", "rm", &self.network()]);
        for tag in ["minicloud-rollback", "minicloud-holder"] {
            docker(&["image", "rm", &format!("{tag}:{}", self.project)]);
        }
        for image in &self.images {
            docker(&["image", "rm", image]);
        }
    }
}

/// Answered, failed (an error answer, a handshake or a connection cut) and refused requests
/// of a client under load.
#[derive(Default)]
struct Load {
    answered: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    /// What went wrong, the first few times, for the test's message.
    errors: std::sync::Mutex<Vec<String>>,
}

impl Load {
    fn note(&self, error: String) {
        let mut errors = self.errors.lock().unwrap();
        if errors.len() < 10 {
            errors.push(error);
        }
    }
}

/// An error with its sources, one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

fn refused(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// A new connection to `url` every 20 ms until `stop`, counted in `load`.
async fn keep_loading(
    client: reqwest::Client,
    url: String,
    load: Arc<Load>,
    stop: Arc<AtomicBool>,
) {
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let at = started.elapsed().as_millis();
        let counter = match client.get(&url).send().await {
            Ok(resp) if resp.status().is_success() => &load.answered,
            Ok(resp) => {
                load.note(format!("{at} ms: status {}", resp.status()));
                &load.failed
            }
            Err(e) => {
                load.note(format!("{at} ms: {}", chain(&e)));
                if refused(&e) {
                    &load.refused
                } else {
                    &load.failed
                }
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every service healthy, the holder (no health check) running.
fn assert_healthy(services: &BTreeMap<&'static str, (String, String)>) {
    for (service, (_, health)) in services {
        let want = if *service == "holder" {
            "running"
        } else {
            "healthy"
        };
        assert_eq!(health, want, "{service}");
    }
}

/// Now, as `date` shows it, to line the load's errors up with the containers' logs.
fn wall_clock() -> String {
    let out = Command::new("date")
        .arg("+%H:%M:%S.%N")
        .output()
        .expect("run date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Signs in on the admin app with `password` and returns where it sends the browser.
async fn sign_in(client: &reqwest::Client, url: &str, password: &str) -> (u16, String) {
    let form = client.get(url).send().await.expect("the login page");
    assert_eq!(form.status(), 200);
    let cookie = form
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("__Host-minicloud_login="))
        .and_then(|v| v.split(';').next())
        .expect("the login cookie")
        .to_owned();
    let resp = client
        .post(url)
        .header(
            reqwest::header::COOKIE,
            format!("__Host-minicloud_login={cookie}"),
        )
        .form(&[
            ("username", "admin"),
            ("password", password),
            ("csrf", cookie.as_str()),
        ])
        .send()
        .await
        .expect("the login answers");
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (resp.status().as_u16(), location)
}

/// Sends a request; its status and body.
async fn send(req: reqwest::RequestBuilder) -> (u16, String) {
    let resp = req.send().await.expect("the app answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Waits until `url` answers with a success (an app coming back after a reinstall).
async fn wait_serving(client: &reqwest::Client, url: &str, what: &str, timeout: Duration) {
    support::wait_for(what, timeout, || async {
        let resp = client.get(url).send().await.ok()?;
        resp.status().is_success().then_some(())
    })
    .await;
}

/// The probe's row, message and file through the edge, written (`write`) then read back.
async fn probe_round_trip(web: &reqwest::Client, url: impl Fn(&str) -> String, write: bool) {
    if write {
        assert_eq!(send(web.post(url("/db")).body("row-1")).await.0, 201);
        assert_eq!(send(web.post(url("/amqp")).body("msg-1")).await.0, 201);
        assert_eq!(send(web.put(url("/file/note")).body("kept")).await.0, 201);
    }
    assert_eq!(
        send(web.get(url("/db"))).await,
        (200, "[\n  \"row-1\"\n]\n".into())
    );
    assert_eq!(send(web.get(url("/file/note"))).await, (200, "kept".into()));
}

#[tokio::test]
async fn install_sh_installs_serves_upgrades_and_uninstalls() {
    let started = Instant::now();
    let (mariadb, rabbitmq) = ensure_install_images();
    let app = unique("inst");
    // Dropped after the install's guard, so the app's network has no peers left when it goes.
    let _app_cleanup = AppCleanup(app.clone());
    let tag = |n: u8| format!("minicloud-test/minicloud:{app}-{n}");
    let install = Install::new(vec![tag(1), tag(2)]);
    let tag1 = tag(1);
    build_minicloud_image(&tag1, "1");
    let images = [
        "--minicloud-image",
        &tag1,
        "--mariadb-image",
        &mariadb,
        "--rabbitmq-image",
        &rabbitmq,
    ];
    let http = install.http_port.to_string();
    let https = install.https_port.to_string();
    let ports = ["--http-port", http.as_str(), "--https-port", https.as_str()];
    let first: Vec<&str> = ["--domain", DOMAIN]
        .into_iter()
        .chain(ports)
        .chain(images)
        .collect();

    // --dry-run on a fresh box: every check, nothing made.
    let out = install.ok(&[&first[..], &["--dry-run"]].concat());
    assert!(out.contains("[dry-run] write"), "{out}");
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    assert!(!install.dir.exists() && !install.data_dir.exists());
    assert_eq!(install.project_containers(), "");
    assert_eq!(
        docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{}$", install.network())
        ]),
        ""
    );

    // A port taken: the check names its holder (this test process), nothing is made.
    let holder = std::net::TcpListener::bind("0.0.0.0:0").expect("a listener");
    let taken = holder.local_addr().unwrap().port().to_string();
    let out = install.run(&[
        "--domain",
        DOMAIN,
        "--http-port",
        &taken,
        "--https-port",
        &https,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        err.contains(&format!("port {taken} is taken by"))
            && err.contains(&format!("(pid {})", std::process::id())),
        "{err}"
    );
    assert!(!install.dir.exists());
    drop(holder);

    // The install.
    let t = Instant::now();
    let out = install.ok(&first);
    println!("install: {:.0} s", t.elapsed().as_secs_f64());
    let password = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the admin password in the output:\n{out}"))
        .to_owned();
    assert!(password.len() >= 12, "{out}");
    let services = install.services();
    assert_healthy(&services);
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", &install.container("minicloud")]),
        services["holder"].0,
        "the holder has the name minicloud attaches to app networks"
    );
    let names: Vec<String> = SERVICES
        .iter()
        .map(|s| install.service_container(s))
        .collect();
    let memory = Command::new("docker")
        .args([
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}}",
        ])
        .args(&names)
        .output()
        .expect("run docker stats");
    println!(
        "memory right after the install:\n{}",
        String::from_utf8_lossy(&memory.stdout)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(install.dir.join(".env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(install.env_value("MINICLOUD_ADMIN_PASSWORD"), password);
    let token = install.env_value("MINICLOUD_ADMIN_TOKEN");

    // The admin app: signed out, it sends to /login; the printed password signs in.
    let admin = format!("admin.{DOMAIN}");
    let web = install.client(&[&admin], false);
    let resp = web.get(install.url(&admin, "/")).send().await.unwrap();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        resp.status() == 401 || (resp.status().is_redirection() && location.contains("/login")),
        "{} {location}",
        resp.status()
    );
    let login = install.url(&admin, "/login");
    assert_eq!(
        sign_in(&web, &login, "not-the-password-at-all").await.0,
        401
    );
    assert_eq!(sign_in(&web, &login, &password).await, (303, "/".into()));

    // The API through the edge: refused without the token, then the probe with a database,
    // a message bus and storage.
    let api = |path: &str| install.url(&admin, path);
    let resp = web.get(api("/api/apps")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = web
        .post(api("/api/apps"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"image": support::image("probe-services:v1"), "name": app}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{body}");

    let host = format!("{app}.{DOMAIN}");
    let app_web = install.client(&[&host], false);
    let app_url = |path: &str| install.url(&host, path);
    let env: serde_json::Value = app_web
        .get(app_url("/env"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The app reaches the services of this install by their container names.
    let db_url = env["DATABASE_URL"].as_str().unwrap_or_default();
    assert!(
        db_url.contains(&format!("@{}:3306/", install.container("mariadb"))),
        "{env}"
    );
    let amqp_url = env["AMQP_URL"].as_str().unwrap_or_default();
    assert!(
        amqp_url.contains(&format!("@{}:5672/", install.container("rabbitmq"))),
        "{env}"
    );
    // The probe uses DATABASE_URL, AMQP_URL and /data from inside its container.
    probe_round_trip(&app_web, app_url, true).await;
    assert_eq!(
        send(app_web.get(app_url("/amqp"))).await,
        (200, "msg-1".into())
    );
    let app_containers = || {
        let mut ids: Vec<String> = containers_of(&app)
            .iter()
            .map(|name| docker(&["inspect", "-f", "{{.Id}}", name]))
            .collect();
        ids.sort();
        ids
    };
    let app_ids = app_containers();
    assert!(!app_ids.is_empty());

    // --dry-run on the install: nothing changes.
    let env_before = install.env_file();
    let out = install.ok(&["--dry-run", "--minicloud-image", &tag(1)]);
    assert!(out.contains("upgrading"), "{out}");
    assert_eq!(install.env_file(), env_before);
    assert_eq!(install.services(), services);

    // The upgrade, to a rebuilt image, under a client's load: a new minicloud container takes
    // the listening sockets over from the running one in the holder's namespace (the holder
    // and the app's containers stay): no connection refused, no request failed.
    build_minicloud_image(&tag(2), "2");
    let load = Arc::new(Load::default());
    let stop = Arc::new(AtomicBool::new(false));
    let client = tokio::spawn(keep_loading(
        install.client(&[&host], true),
        app_url("/"),
        load.clone(),
        stop.clone(),
    ));
    // The old minicloud's log, followed until install.sh removes it: what a failure needs.
    let old_log = tempfile::NamedTempFile::new().expect("a temp file");
    let mut follow_old = Command::new("docker")
        .args(["logs", "-f", "-t", &services["minicloud"].0])
        .stdout(old_log.reopen().unwrap())
        .stderr(old_log.reopen().unwrap())
        .spawn()
        .expect("run docker logs");
    println!("load started at {}", wall_clock());
    let t = Instant::now();
    let upgrade = {
        let mut cmd = install.command(&["--minicloud-image", &tag(2)]);
        tokio::task::spawn_blocking(move || cmd.output().expect("run install.sh"))
            .await
            .unwrap()
    };
    let upgrade_secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    client.await.unwrap();
    assert!(upgrade.status.success(), "{}", text(&upgrade));
    let out = String::from_utf8_lossy(&upgrade.stdout);
    let (answered, failed, refused) = (
        load.answered.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed),
        load.refused.load(Ordering::Relaxed),
    );
    println!(
        "upgrade: {upgrade_secs:.0} s; under load: {answered} answered, {failed} failed, {refused} refused"
    );
    assert!(out.contains("SIGQUIT sent"), "{out}");
    let errors = load.errors.lock().unwrap().join("\n");
    let _ = follow_old.kill();
    let _ = follow_old.wait();
    if failed + refused > 0 {
        println!("{errors}");
        println!(
            "install.sh's output:\n{out}\n{}",
            String::from_utf8_lossy(&upgrade.stderr)
        );
        println!(
            "the old minicloud's log:\n{}",
            std::fs::read_to_string(old_log.path()).unwrap_or_default()
        );
        let new = install.service_container("minicloud");
        let log = Command::new("sh")
            .arg("-c")
            .arg(format!("docker logs -t {new} 2>&1 | head -n 80"))
            .output()
            .expect("run docker logs");
        println!(
            "the new minicloud's log:\n{}",
            String::from_utf8_lossy(&log.stdout)
        );
    }
    assert_eq!(
        (failed, refused),
        (0, 0),
        "an upgrade without a gap:\n{errors}"
    );
    assert!(
        answered > 100,
        "the load ran through the upgrade: {answered}"
    );
    assert!(
        out.contains("upgrading") && out.contains("password:   unchanged"),
        "{out}"
    );
    let upgraded = install.services();
    assert_ne!(
        upgraded["minicloud"].0, services["minicloud"].0,
        "a new minicloud container"
    );
    assert_eq!(
        upgraded["holder"].0, services["holder"].0,
        "the holder stays"
    );
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.Config.Image}}",
            &upgraded["minicloud"].0
        ]),
        tag(2)
    );
    assert_healthy(&upgraded);
    assert!(install
        .data_dir
        .join("minicloud/state.redb.before-upgrade")
        .exists());
    assert_eq!(app_containers(), app_ids, "the app's containers stay");
    probe_round_trip(&app_web, app_url, false).await;

    // A rerun with nothing new changes nothing.
    let env_before = install.env_file();
    install.ok(&[]);
    assert_eq!(install.env_file(), env_before);
    assert_eq!(install.services(), upgraded);
    assert_eq!(app_containers(), app_ids);

    // --uninstall: the services and the apps' containers go, the data stays; the next install
    // brings it all back.
    let out = install.ok(&["--uninstall"]);
    assert!(
        out.contains(&format!("removed {} app containers", app_ids.len())),
        "{out}"
    );
    assert_eq!(install.project_containers(), "");
    assert_eq!(containers_of(&app), Vec::<String>::new());
    assert!(install.data_dir.join("minicloud/state.redb").exists());
    assert!(install.dir.join(".env").exists());
    install.ok(&[]);
    let app_web = install.client(&[&host], false);
    wait_serving(
        &app_web,
        &app_url("/db"),
        "the app back",
        Duration::from_secs(120),
    )
    .await;
    probe_round_trip(&app_web, app_url, false).await;

    // A backup of the app and of minicloud, copied aside as if off the box; then the box
    // wiped (--uninstall --purge) and installed again with --restore: the app comes back with
    // the row written before the backup.
    let backup = |path: String| {
        let web = web.clone();
        let token = token.clone();
        async move {
            let run: serde_json::Value = web
                .post(path)
                .bearer_auth(&token)
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(run["state"], "succeeded", "{run}");
        }
    };
    backup(api(&format!("/api/apps/{app}/backups"))).await;
    backup(api("/api/backups/platform")).await;
    let key: serde_json::Value = web
        .get(api("/api/backups/key"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let aside = tempfile::tempdir().expect("temp dir");
    let key_file = aside.path().join("recovery-key.txt");
    std::fs::write(
        &key_file,
        key["password"].as_str().expect("the recovery key"),
    )
    .unwrap();
    let repository = aside.path().join("backups");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(install.data_dir.join("backups"))
        .arg(&repository)
        .status()
        .unwrap();
    assert!(copied.success());
    install.ok(&["--uninstall", "--purge"]);
    assert!(!install.data_dir.exists());
    let t = Instant::now();
    let restore: Vec<&str> = ["--domain", DOMAIN]
        .into_iter()
        .chain(ports)
        .chain(images)
        .chain(["--restore", repository.to_str().unwrap()])
        .chain(["--recovery-key-file", key_file.to_str().unwrap()])
        .collect();
    let out = install.ok(&restore);
    assert!(out.contains("restoring minicloud's state"), "{out}");
    let app_web = install.client(&[&host], false);
    wait_serving(
        &app_web,
        &app_url("/db"),
        "the app restored",
        Duration::from_secs(300),
    )
    .await;
    println!(
        "install.sh --restore to the app serving: {:.0} s",
        t.elapsed().as_secs_f64()
    );
    probe_round_trip(&app_web, app_url, false).await;

    // --uninstall --purge: the apps' networks and all the data go too.
    let out = install.ok(&["--uninstall", "--purge"]);
    assert!(
        out.contains("removed") && out.contains("app containers"),
        "{out}"
    );
    assert_eq!(install.project_containers(), "");
    assert_eq!(containers_of(&app), Vec::<String>::new());
    assert_eq!(
        docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=^mc-net-{app}$")
        ]),
        ""
    );
    assert_eq!(
        docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{}$", install.network())
        ]),
        ""
    );
    assert!(!install.data_dir.exists() && !install.dir.exists());
    println!(
        "install test: {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
}
