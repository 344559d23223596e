//! The admin dashboard with 50 apps: server-side render time (p50, p99), the size of all CSS
//! and JS, and the resident memory the web app adds.
//!
//! In process, as the control plane serves it: a real store with 50 apps (each with a
//! deploy), their hosts routed at an edge with an hour of sampled traffic, the real router
//! behind a real session, and the Docker engine the dashboard asks for containers (as in
//! production). Run with `cargo bench --bench dashboard`; prints one JSON line at the end.
//! The targets: p99 under 20 ms, CSS + JS under 60 KB, under 3 MB of RSS.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use minicloud::apps::{AppSettings, Apps};
use minicloud::config::Sources;
use minicloud::ctx::Ctx;
use minicloud::model::{AppName, ImageRef, Secret};
use minicloud::store::{AppRecord, DeployOutcome, DeployRecord, Store};
use minicloud::web::{router, WebState};
use minicloud_proxy::{Edge, Upstream};
use tower::ServiceExt;

const APPS: usize = 50;
const WARM_UP: usize = 100;
const RENDERS: usize = 2_000;
const MANIFEST: &str = "name: bench\nexpose:\n  - proto: http\n    port: 8080\n";

/// The allocator `minicloud serve` runs with (`src/main.rs`): memory figures under glibc's
/// malloc would not be the ones a server sees.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Resident memory of this process, in bytes: anonymous (heap, stacks) and file-backed (the
/// binary's code and data pages as they are touched; clean, shared, and dropped first when
/// memory is short).
#[derive(Debug, Clone, Copy)]
struct Rss {
    anon: u64,
    file: u64,
}

impl Rss {
    fn now() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |field: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
                * 1024
        };
        Self {
            anon: kib("RssAnon:"),
            file: kib("RssFile:"),
        }
    }

    fn total(self) -> u64 {
        self.anon + self.file
    }

    /// What was added since `before`, in MB: (total, anonymous, file-backed).
    fn added_since(self, before: Self) -> (f64, f64, f64) {
        let mb = |after: u64, before: u64| after.saturating_sub(before) as f64 / 1e6;
        (
            mb(self.total(), before.total()),
            mb(self.anon, before.anon),
            mb(self.file, before.file),
        )
    }
}

fn static_bytes() -> u64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/admin-ui/static");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.ends_with(".css") || name.ends_with(".js")
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn populate(ctx: &Ctx, now: i64) {
    for i in 0..APPS {
        let name = AppName::try_new(format!("app{i:02}")).expect("app name");
        let image = ImageRef::parse(&format!("registry.bench/app{i}:1")).expect("image");
        let app = AppRecord {
            name: name.clone(),
            image: image.clone(),
            registry_auth: None,
            env: Default::default(),
            domains: Default::default(),
            memory_mb: 256,
            pids_limit: None,
            cpu_shares: None,
            webhook_secret: Secret::new(format!("bench-secret-{i}")),
            stopped: false,
            current: Some(1),
            created_at: now - 86_400,
            added_services: Default::default(),
            env_before: None,
        };
        let deploy = DeployRecord {
            app: name.clone(),
            revision: 1,
            image,
            digest: format!("sha256:{i:064x}"),
            manifest_file: "cloud_manifest.yml".into(),
            manifest_text: MANIFEST.into(),
            env: Default::default(),
            trigger: "create".into(),
            started_at: now - 3_600,
            finished_at: Some(now - 3_590),
            outcome: DeployOutcome::Succeeded,
        };
        ctx.store.put_app_and_deploy(&app, &deploy).expect("store");
        let upstream = Upstream(format!("127.0.0.1:{}", 20_000 + i).parse().expect("addr"));
        ctx.set_serving(&name, Some(upstream)).expect("serve");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path").to_owned();
    let config = Sources::new()
        .flags([("data_dir", data.as_str()), ("domain", "bench.test")])
        .resolve()
        .expect("config");
    let store = Store::open(&dir.path().join("state.redb")).expect("store");
    let now = minicloud::model::now();
    minicloud::auth::passwords::ensure_admin_user(
        &store,
        Some(&Secret::new("bench-password-bench")),
        now,
    )
    .expect("admin");
    let (cookie, _) = minicloud::auth::sessions::start(&store, "admin", now).expect("session");
    let edge = Edge::new();
    let ctx = Ctx::new(config, store, edge.clone());
    populate(&ctx, now);

    let before_control_plane = Rss::now();
    let apps = Apps::new(
        ctx.clone(),
        AppSettings {
            health_timeout: Duration::from_secs(1),
            networks: Default::default(),
            pull_timeout: Duration::from_secs(900),
            min_free_mb: 0,
        },
    )
    .expect("apps");
    // The web app is what comes on top of the control plane (`Apps`, its engine and service
    // clients), which minicloud runs with or without pages. The control plane has listed the
    // engine's containers before anyone asks for a page (the start-up reconcile does), so the
    // engine client's code and buffers are not counted as the web app's.
    let docker = apps.docker().await.expect("the Docker engine");
    docker.list_managed().await.expect("the managed containers");
    let before = Rss::now();
    let state = WebState::new(ctx.clone(), apps);
    // An hour of traffic, a sample a minute, on every app's host.
    for minute in 0..=60u64 {
        for (host, _) in edge.metrics().totals() {
            for k in 0..(minute % 7 + 1) {
                let status = if k == 3 { 502 } else { 200 };
                edge.metrics()
                    .record(&host, status, Duration::from_millis(2 + k * 20));
            }
        }
        state
            .metrics
            .sample_traffic(now - (60 - minute as i64) * 60);
    }
    let web = router(state);
    let request = || {
        Request::get("/")
            .header(
                header::COOKIE,
                format!("__Host-minicloud_session={}", cookie.expose()),
            )
            .body(Body::empty())
            .expect("request")
    };
    let mut size = 0;
    for _ in 0..WARM_UP {
        let response = web.clone().oneshot(request()).await.expect("answer");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "the dashboard must render"
        );
        size = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .len();
    }
    let after_warm_up = Rss::now();
    let mut times = Vec::with_capacity(RENDERS);
    for _ in 0..RENDERS {
        let started = Instant::now();
        let response = web.clone().oneshot(request()).await.expect("answer");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        times.push(started.elapsed());
        drop(body);
    }
    let after = Rss::now();
    times.sort();
    let (added, added_anon, added_file) = after.added_since(before);
    let (warm_up, warm_up_anon, _) = after_warm_up.added_since(before);
    let (control_plane, _, _) = before.added_since(before_control_plane);
    let result = serde_json::json!({
        "apps": APPS,
        "renders": RENDERS,
        "page_bytes": size,
        "render_p50_ms": percentile(&times, 0.50),
        "render_p99_ms": percentile(&times, 0.99),
        "static_css_js_bytes": static_bytes(),
        "web_rss_added_mb": added,
        "web_rss_added_anon_mb": added_anon,
        "web_rss_added_file_mb": added_file,
        "web_rss_after_warm_up_mb": warm_up,
        "web_rss_after_warm_up_anon_mb": warm_up_anon,
        "control_plane_rss_mb": control_plane,
    });
    println!(
        "dashboard, {APPS} apps: p50 {:.2} ms, p99 {:.2} ms ({} renders, {} KB page); \
         CSS+JS {:.1} KB; RSS added by the web app {added:.2} MB: {added_anon:.2} MB \
         anonymous, {added_file:.2} MB the binary's pages ({warm_up:.2} MB, {warm_up_anon:.2} MB \
         anonymous, after {WARM_UP} renders; the control plane under it {control_plane:.2} MB)",
        result["render_p50_ms"].as_f64().unwrap_or(0.0),
        result["render_p99_ms"].as_f64().unwrap_or(0.0),
        RENDERS,
        size / 1024,
        static_bytes() as f64 / 1024.0,
    );
    println!("{result}");
}
