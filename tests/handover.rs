//! An upgrade without a gap: `minicloud serve --upgrade` beside the running one on the same
//! data dir takes over its listening sockets (SIGQUIT to the old one), then its data dir, while
//! clients keep making requests on new and kept-alive connections. No connection is refused,
//! no request fails, a slow request in flight on the old one completes, and the new one serves
//! and answers the control plane API.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{upstream, wait_for, Minicloud};

const HOST: &str = "handover.example.com";
/// The admin app's host, served by minicloud's own control plane (its domain is `mc.test`).
const ADMIN: &str = "admin.mc.test";

/// What the clients saw, summed over all of them.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    /// The connection could not be made (refused, reset before a response).
    refused: AtomicU64,
    /// Made, but no good answer.
    failed: AtomicU64,
    longest_ms: AtomicU64,
    /// The first few errors, to say what went wrong.
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, what: &str, started: Instant, outcome: Result<(), reqwest::Error>) {
        let ms = started.elapsed().as_millis() as u64;
        self.longest_ms.fetch_max(ms, Ordering::SeqCst);
        match outcome {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                if e.is_connect() {
                    self.refused.fetch_add(1, Ordering::SeqCst);
                } else {
                    self.failed.fetch_add(1, Ordering::SeqCst);
                }
                let mut errors = self.errors.lock().unwrap();
                if errors.len() < 10 {
                    errors.push(format!("{what} after {ms} ms: {e:?}"));
                }
            }
        }
    }
}

/// One client's kind of traffic.
#[derive(Clone, Copy)]
enum Traffic {
    /// HTTPS, HTTP/1.1, a new connection (and TLS handshake) per request.
    NewTls,
    /// HTTPS, HTTP/1.1, one kept-alive connection while the server keeps it.
    KeptAliveTls,
    /// HTTPS, HTTP/2, kept alive.
    H2,
    /// Plain HTTP, a new connection per request (answered by the redirect to HTTPS).
    NewPlain,
    /// The admin app's sign-in page, a new HTTPS connection per request: the control plane,
    /// whose port is closed for a moment while the successor binds it.
    Admin,
}

impl Traffic {
    fn name(self) -> &'static str {
        match self {
            Self::NewTls => "new https/1.1",
            Self::KeptAliveTls => "kept-alive https/1.1",
            Self::H2 => "h2",
            Self::NewPlain => "new http",
            Self::Admin => "admin sign-in page",
        }
    }
}

/// Requests one after another until `stop`.
async fn client_loop(
    mc_https: SocketAddr,
    mc_http: SocketAddr,
    traffic: Traffic,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let builder = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        // The port comes from the URL; only the address is overridden.
        .resolve(HOST, mc_https)
        .resolve(ADMIN, mc_https);
    let builder = match traffic {
        Traffic::NewTls | Traffic::NewPlain | Traffic::Admin => {
            builder.http1_only().pool_max_idle_per_host(0)
        }
        Traffic::KeptAliveTls => builder.http1_only(),
        // Negotiated by ALPN.
        Traffic::H2 => builder,
    };
    let client = builder.build().unwrap();
    let url = match traffic {
        Traffic::NewPlain => format!("http://{HOST}:{}/", mc_http.port()),
        Traffic::Admin => format!("https://{ADMIN}:{}/login", mc_https.port()),
        _ => format!("https://{HOST}:{}/", mc_https.port()),
    };
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let outcome = async {
            let resp = client.get(&url).send().await?;
            let status = resp.status();
            let version = resp.version();
            let body = resp.text().await?;
            let good = match traffic {
                Traffic::NewPlain => status == 308,
                Traffic::Admin => status == 200 && body.contains("<form"),
                Traffic::H2 => {
                    status == 200 && body == "handover" && version == reqwest::Version::HTTP_2
                }
                _ => status == 200 && body == "handover",
            };
            assert!(good, "{} answered {status}: {body}", traffic.name());
            Ok(())
        }
        .await;
        tally.record(traffic.name(), started, outcome);
        if matches!(
            traffic,
            Traffic::NewTls | Traffic::NewPlain | Traffic::Admin
        ) {
            // New connections cost a handshake each on a small shared box.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upgrade_hands_the_sockets_over_without_a_refused_connection_or_a_failed_request() {
    let app = upstream::start("handover").await;
    // The old one's drain must outlast the slow request below.
    let mut old =
        Minicloud::start_with(vec![("MINICLOUD_SHUTDOWN_GRACE".into(), "10".into())]).await;
    old.api().add_route(HOST, app.addr).await;
    assert_eq!(old.get_text(HOST, "/").await, "handover");

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    for traffic in [
        Traffic::NewTls,
        Traffic::NewTls,
        Traffic::KeptAliveTls,
        Traffic::KeptAliveTls,
        Traffic::H2,
        Traffic::NewPlain,
        Traffic::Admin,
    ] {
        clients.push(tokio::spawn(client_loop(
            old.https_addr(),
            old.http_addr(),
            traffic,
            stop.clone(),
            tally.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = tally.ok.load(Ordering::SeqCst);
    assert!(before > 0, "no request was served before the upgrade");

    // In flight on the old one through the whole hand-over and past its stop of accepting
    // (5 s after SIGQUIT).
    let slow_client = old.client_for(&[HOST]);
    let slow_url = old.https_url(HOST, "/slow?ms=8000");
    let slow = tokio::spawn(async move {
        let resp = slow_client.get(slow_url).send().await?;
        let status = resp.status();
        Ok::<_, reqwest::Error>((status, resp.text().await?))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut new = old.spawn_successor();
    let socket = old.data_path().join("minicloud").join("upgrade.sock");
    wait_for(
        "the successor to wait for the sockets",
        Duration::from_secs(20),
        || {
            let exists = socket.exists();
            async move { exists.then_some(()) }
        },
    )
    .await;
    let quit = Instant::now();
    old.signal(nix::sys::signal::Signal::SIGQUIT);

    // The data dir changes hands: the successor's pid in the lock file.
    let lock_file = old.data_path().join("minicloud").join("owner.lock");
    let expected = format!("serve {}", new.pid());
    wait_for(
        "the successor to hold the data dir",
        Duration::from_secs(30),
        || {
            let held = std::fs::read_to_string(&lock_file).unwrap_or_default();
            let ok = held.trim() == expected;
            async move { ok.then_some(()) }
        },
    )
    .await;
    let data_dir_after = quit.elapsed();
    // Its control plane answers (the old one's stopped at the hand-over).
    let api = new.api();
    wait_for(
        "the successor's API to answer",
        Duration::from_secs(20),
        || {
            let client = reqwest::Client::new();
            let url = new.api_url("/api/health");
            async move {
                let resp = client
                    .get(url)
                    .bearer_auth(support::TOKEN)
                    .send()
                    .await
                    .ok()?;
                resp.status().is_success().then_some(())
            }
        },
    )
    .await;
    let api_after = quit.elapsed();

    // The old one drains (5 s of Pingora's, then the 10 s grace) and exits on its own.
    let status = wait_for("the old one to exit", Duration::from_secs(40), || {
        let status = old.exited();
        async move { status }
    })
    .await;
    let old_exit_after = quit.elapsed();
    assert!(status.success(), "the old minicloud exited with {status}");
    let (slow_status, slow_body) = slow
        .await
        .unwrap()
        .expect("the request in flight on the old one completes");
    assert_eq!(slow_status, 200);
    assert_eq!(slow_body, "handover after 8000ms");

    // Only the successor is left: the load goes on a while against it alone.
    let at_exit = tally.ok.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    let ok = tally.ok.load(Ordering::SeqCst);
    let refused = tally.refused.load(Ordering::SeqCst);
    let failed = tally.failed.load(Ordering::SeqCst);
    let longest = tally.longest_ms.load(Ordering::SeqCst);
    eprintln!(
        "hand-over: {ok} requests answered ({} after the old one exited), {refused} refused \
         connections, {failed} failed requests, longest wait {longest} ms; the successor held \
         the data dir {data_dir_after:?} after SIGQUIT, its API answered after {api_after:?}, \
         the old one exited after {old_exit_after:?}",
        ok - at_exit
    );
    let errors = tally.errors.lock().unwrap().clone();
    assert_eq!(refused, 0, "refused connections: {errors:#?}");
    assert_eq!(failed, 0, "failed requests: {errors:#?}");
    assert!(ok > at_exit, "nothing was served after the old one exited");
    assert!(
        data_dir_after < Duration::from_secs(3),
        "the data dir changed hands only after {data_dir_after:?}"
    );

    // The successor's control plane works on the store it took over: a new route is served.
    let other = upstream::start("after").await;
    api.add_route("after.example.com", other.addr).await;
    assert_eq!(new.get_text("after.example.com", "/").await, "after");
    assert_eq!(new.get_text(HOST, "/").await, "handover");
    assert!(
        old.log()
            .contains("listening sockets handed to the successor"),
        "{}",
        old.log()
    );
    assert!(
        new.log().contains("listening sockets received"),
        "{}",
        new.log()
    );
    // Its wait for them is no error (Pingora logs one a second; see `pingora_log`).
    assert!(
        !new.log().contains("No incoming socket transfer"),
        "{}",
        new.log()
    );
    let status = new.stop();
    assert!(status.success(), "the successor exited with {status}");

    // `--upgrade` with nothing running starts as usual (what a restarted container does).
    let mut alone = new.spawn_successor();
    wait_for("a lone --upgrade to serve", Duration::from_secs(20), || {
        let client = alone.client_for(&[HOST]);
        let url = alone.https_url(HOST, "/");
        async move {
            let body = client.get(url).send().await.ok()?.text().await.ok()?;
            (body == "handover").then_some(())
        }
    })
    .await;
    assert!(
        alone
            .log()
            .contains("nothing to take over, starting as usual"),
        "{}",
        alone.log()
    );
    let status = alone.stop();
    assert!(status.success(), "the lone --upgrade exited with {status}");
}

#[tokio::test]
async fn an_upgrade_whose_predecessor_never_sends_its_sockets_gives_up_and_changes_nothing() {
    let app = upstream::start("handover").await;
    let old = Minicloud::start().await;
    old.api().add_route(HOST, app.addr).await;
    // No SIGQUIT: the successor waits, gives up and says so; the running one goes on.
    let mut new = old.spawn_successor();
    let status = wait_for("the successor to give up", Duration::from_secs(30), || {
        let status = new.exited();
        async move { status }
    })
    .await;
    assert_eq!(status.code(), Some(1), "{}", new.log());
    assert!(
        new.log().contains("send it SIGQUIT now")
            && new.log().contains("this one exits with status 1"),
        "{}",
        new.log()
    );
    assert!(
        !old.data_path().join("minicloud/upgrade.sock").exists(),
        "the upgrade socket was left behind"
    );
    assert_eq!(old.get_text(HOST, "/").await, "handover");
    assert_eq!(old.api().get("/api/health").await.status(), 200);
}
