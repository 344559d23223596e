//! The edge over real sockets: routing by host, TLS by SNI, redirects, pass-through
//! protocols, error pages, and routes that survive a restart.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::{served_certificate, upstream, Minicloud};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_route_added_through_the_api_is_served_over_https_and_http_redirects() {
    let mc = Minicloud::start().await;
    let app = upstream::start("app-a").await;
    mc.api().add_route("App.Example.com", app.addr).await;
    let client = mc.client_for(&["app.example.com"]);

    let body = client
        .get(mc.https_url("app.example.com", "/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "app-a");

    let redirect = client
        .get(mc.http_url("app.example.com", "/some/path?q=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(
        redirect.headers()["location"],
        format!("https://app.example.com:{}/some/path?q=1", mc.https_port).as_str()
    );

    // Host matching ignores case and port (HTTP/1.1: h2 carries the host in :authority).
    let http1 = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .http1_only()
        .resolve("app.example.com", mc.https_addr())
        .build()
        .unwrap();
    let resp = http1
        .get(mc.https_url("app.example.com", "/headers"))
        .header("host", format!("APP.example.COM:{}", mc.https_port))
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("x-request-id"), "{resp:?}");
    let headers: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        headers["x-forwarded-for"], "127.0.0.1",
        "client claims are replaced"
    );
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(headers["x-forwarded-host"], "app.example.com");
    assert_eq!(headers["x-request-id"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn each_host_gets_its_own_certificate_by_sni() {
    let mc = Minicloud::start().await;
    let a = upstream::start("a").await;
    let b = upstream::start("b").await;
    mc.api().add_route("one.example.com", a.addr).await;
    mc.api().add_route("*.two.example.com", b.addr).await;

    let (names_one, serial_one) = served_certificate(mc.https_addr(), "one.example.com").await;
    let (names_two, serial_two) = served_certificate(mc.https_addr(), "x.two.example.com").await;
    assert_eq!(names_one, vec!["one.example.com"]);
    assert_eq!(names_two, vec!["*.two.example.com"]);
    assert_ne!(serial_one, serial_two);
    let (admin_names, _) = served_certificate(mc.https_addr(), &mc.admin_host()).await;
    assert_eq!(admin_names, vec![mc.admin_host()]);

    let client = mc.client_for(&["x.two.example.com"]);
    let body = client
        .get(mc.https_url("x.two.example.com", "/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "b");
}

#[tokio::test]
async fn a_route_change_applies_to_the_next_request_while_one_in_flight_completes() {
    let mc = Minicloud::start().await;
    let old = upstream::start("old").await;
    let new = upstream::start("new").await;
    mc.api().add_route("swap.example.com", old.addr).await;
    let client = mc.client_for(&["swap.example.com"]);

    let slow = {
        let client = client.clone();
        let url = mc.https_url("swap.example.com", "/slow?ms=1500");
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    mc.api().add_route("swap.example.com", new.addr).await;
    let next = client
        .get(mc.https_url("swap.example.com", "/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        next, "new",
        "the very next request goes to the new upstream"
    );
    assert_eq!(slow.await.unwrap(), "old after 1500ms");
}

#[tokio::test]
async fn websockets_server_sent_events_and_http2_pass_through() {
    let mc = Minicloud::start().await;
    let app = upstream::start("app").await;
    mc.api().add_route("live.example.com", app.addr).await;

    // HTTP/2 negotiated by ALPN downstream, HTTP/1.1 upstream.
    let h2 = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve("live.example.com", mc.https_addr())
        .build()
        .unwrap();
    let resp = h2
        .get(mc.https_url("live.example.com", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.text().await.unwrap(), "app");

    // Server-sent events arrive as a stream, not buffered to the end.
    let client = mc.client_for(&["live.example.com"]);
    let resp = client
        .get(mc.https_url("live.example.com", "/sse"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let started = Instant::now();
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("tick 0"));
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "first event was held back"
    );
    let mut rest = String::new();
    while let Some(chunk) = stream.next().await {
        rest.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(rest.contains("tick 2"));

    // WebSocket upgrade over TLS.
    let tls = support::tls_connect(mc.https_addr(), "live.example.com", false).await;
    let (mut ws, response) = tokio_tungstenite::client_async(
        format!("wss://live.example.com:{}/ws", mc.https_port),
        tls,
    )
    .await
    .expect("websocket handshake through the edge");
    assert_eq!(response.status(), 101);
    ws.send(tokio_tungstenite::tungstenite::Message::text("hello"))
        .await
        .unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_text().unwrap().as_str(), "echo: hello");
}

/// WebSocket upgrades one after another, each after a plain request, each carry a message
/// both ways. Through Pingora's
/// proxy loop one in a few dozen ended right after its 101 when the app answered fast
/// (cloudflare/pingora#946); the edge carries upgrades itself, with its response filter.
#[tokio::test]
async fn websocket_upgrades_in_a_row_all_stay_open() {
    use tokio_tungstenite::tungstenite::Message;
    let mc = Minicloud::start().await;
    let app = upstream::start("app").await;
    mc.api().add_route("ws.example.com", app.addr).await;
    let client = mc.client_for(&["ws.example.com"]);
    for i in 0..100 {
        // A request first leaves an idle upstream connection, which the upgrade may reuse:
        // the fastest answer, and where the race showed.
        let resp = client
            .get(mc.https_url("ws.example.com", "/"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), "app");
        let tls = support::tls_connect(mc.https_addr(), "ws.example.com", false).await;
        let (mut ws, response) = tokio_tungstenite::client_async(
            format!("wss://ws.example.com:{}/ws", mc.https_port),
            tls,
        )
        .await
        .expect("websocket handshake through the edge");
        assert_eq!(response.status(), 101);
        assert!(response.headers().contains_key("x-request-id"));
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let echoed = ws
            .next()
            .await
            .unwrap_or_else(|| panic!("upgrade {i} ended"))
            .unwrap();
        assert_eq!(
            echoed.into_text().unwrap().as_str(),
            format!("echo: hello {i}")
        );
        ws.close(None).await.unwrap();
    }
}

#[tokio::test]
async fn unknown_hosts_dead_upstreams_and_bad_requests_get_clear_errors() {
    let mc = Minicloud::start().await;
    mc.api()
        .add_route("dead.example.com", upstream::dead_addr())
        .await;
    let client = mc.client_for(&["nope.example.com", "dead.example.com"]);

    let resp = client
        .get(mc.https_url("nope.example.com", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("404 Not Found"));

    let started = Instant::now();
    let resp = client
        .get(mc.https_url("dead.example.com", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert!(resp.text().await.unwrap().contains("did not answer"));
    assert!(started.elapsed() < Duration::from_secs(10));

    // Raw requests the HTTP clients would refuse to send.
    for (request, expected) in [
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        (
            b"GET / HTTP/1.1\r\nHost: bad host!\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: nope.example.com\r\nX-Big: {}\r\n\r\n",
                "a".repeat(200_000)
            )
            .into_bytes(),
            "HTTP/1.1 4",
        ),
    ] {
        let mut tls = support::tls_connect(mc.https_addr(), "nope.example.com", false).await;
        let _ = tls.write_all(&request).await;
        let mut answer = vec![0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut answer))
            .await
            .map_or(0, |r| r.unwrap_or(0));
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(
            answer.starts_with(expected),
            "expected {expected} for {:?}, got {:?}",
            String::from_utf8_lossy(&request[..40.min(request.len())]),
            &answer[..answer.len().min(200)]
        );
    }
    // Plain HTTP without Host: 400, not a redirect to nowhere.
    let mut tcp = tokio::net::TcpStream::connect(mc.http_addr())
        .await
        .unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut answer = vec![0u8; 64];
    let n = tcp.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 400"));

    // The edge is still fine.
    assert_eq!(
        client
            .get(mc.https_url("nope.example.com", "/"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn the_api_needs_a_token_and_explains_bad_input() {
    let mc = Minicloud::start().await;
    let anonymous = reqwest::Client::new();
    for auth in [None, Some("Bearer wrong-token"), Some("Basic abc")] {
        let mut req = anonymous.get(mc.api_url("/api/routes"));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("Bearer"));
    }
    // Through the edge at admin.<domain> too.
    let client = mc.client_for(&[&mc.admin_host()]);
    let resp = client
        .get(mc.https_url(&mc.admin_host(), "/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .get(mc.https_url(&mc.admin_host(), "/api/health"))
        .bearer_auth(support::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let api = mc.api();
    for (body, expected) in [
        (
            serde_json::json!({"host": "bad host", "upstream": "127.0.0.1:1"}),
            "not a valid host name",
        ),
        (
            serde_json::json!({"host": "ok.example.com", "upstream": "localhost:80"}),
            "expected IP:PORT",
        ),
        (serde_json::json!({"host": "ok.example.com"}), "upstream"),
    ] {
        let resp = api.post("/api/routes", body.clone()).await;
        assert_eq!(resp.status(), 400, "{body}");
        let error: serde_json::Value = resp.json().await.unwrap();
        let message = error["error"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{message:?} should mention {expected:?}"
        );
    }
    // The admin host has its owner, named like any other's.
    let admin = serde_json::json!({"host": mc.admin_host(), "upstream": "127.0.0.1:1"});
    let resp = api.post("/api/routes", admin).await;
    assert_eq!(resp.status(), 409);
    let error: serde_json::Value = resp.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("admin UI"),
        "{error}"
    );
    assert_eq!(
        api.delete("/api/routes/missing.example.com").await.status(),
        404
    );
    let routes: Vec<serde_json::Value> = api.get_json("/api/routes").await;
    assert!(routes.is_empty(), "nothing was stored by bad requests");
}

#[tokio::test]
async fn routes_survive_a_restart_and_removal_is_permanent() {
    let mut mc = Minicloud::start().await;
    let app = upstream::start("kept").await;
    mc.api().add_route("kept.example.com", app.addr).await;
    mc.api().add_route("gone.example.com", app.addr).await;
    assert_eq!(
        mc.api()
            .delete("/api/routes/gone.example.com")
            .await
            .status(),
        204
    );
    mc.restart().await;

    let client = mc.client_for(&["kept.example.com", "gone.example.com"]);
    let kept = client
        .get(mc.https_url("kept.example.com", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.text().await.unwrap(), "kept");
    let gone = client
        .get(mc.https_url("gone.example.com", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

/// One kept-alive HTTPS connection carries request after request: some sent whole, one that
/// comes after an idle wait a few bytes at a time (each piece its own TLS record), then a
/// WebSocket upgrade on the same connection. `Connection: close` is answered, then closed.
#[tokio::test]
async fn a_kept_alive_connection_serves_requests_in_pieces_and_then_an_upgrade() {
    use tokio_tungstenite::tungstenite::Message;
    let mc = Minicloud::start().await;
    let app = upstream::start("kept").await;
    mc.api().add_route("kept.example.com", app.addr).await;
    let get = b"GET / HTTP/1.1\r\nHost: kept.example.com\r\n\r\n";
    let mut tls = support::tls_connect(mc.https_addr(), "kept.example.com", false).await;
    for i in 0..3 {
        tls.write_all(get).await.unwrap();
        let (head, body) = support::read_response(&mut tls)
            .await
            .unwrap_or_else(|| panic!("request {i} not answered"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, "kept");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for piece in [
        "G",
        "ET / HT",
        "TP/1.1\r\nHost: kept.exa",
        "mple.com\r\n",
        "\r\n",
    ] {
        tls.write_all(piece.as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (head, body) = support::read_response(&mut tls)
        .await
        .expect("the request in pieces not answered");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "kept");

    let (mut ws, response) = tokio_tungstenite::client_async(
        format!("wss://kept.example.com:{}/ws", mc.https_port),
        tls,
    )
    .await
    .expect("websocket handshake on the kept-alive connection");
    assert_eq!(response.status(), 101);
    ws.send(Message::text("after requests")).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_text().unwrap().as_str(), "echo: after requests");
    ws.close(None).await.unwrap();

    let mut tls = support::tls_connect(mc.https_addr(), "kept.example.com", false).await;
    tls.write_all(get).await.unwrap();
    assert!(support::read_response(&mut tls).await.is_some());
    tls.write_all(b"GET / HTTP/1.1\r\nHost: kept.example.com\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = support::read_response(&mut tls).await.expect("answered");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "kept");
    let mut rest = Vec::new();
    // The edge may close without a TLS close_notify; what counts is that nothing more came.
    let _ = tokio::time::timeout(Duration::from_secs(15), tls.read_to_end(&mut rest))
        .await
        .expect("the connection stays open after Connection: close");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

/// A small response (header and body) leaves the edge as one TLS record, not two: one seal
/// on the edge and one read for the client. Counted on the wire under the TLS client.
#[tokio::test]
async fn a_small_response_is_one_tls_record() {
    let mc = Minicloud::start().await;
    let app = upstream::start("small").await;
    mc.api().add_route("small.example.com", app.addr).await;
    let tcp = tokio::net::TcpStream::connect(mc.https_addr())
        .await
        .unwrap();
    let counter = support::RecordCounter::new(tcp);
    let records = counter.records();
    let mut tls = support::tls_over(counter, "small.example.com", false).await;
    let get = b"GET / HTTP/1.1\r\nHost: small.example.com\r\n\r\n";
    // The first request also lets TLS 1.3's session tickets, sent after the handshake, pass.
    tls.write_all(get).await.unwrap();
    support::read_response(&mut tls).await.expect("answered");
    for i in 0..3 {
        let before = records.load(std::sync::atomic::Ordering::SeqCst);
        tls.write_all(get).await.unwrap();
        let (head, body) = support::read_response(&mut tls).await.expect("answered");
        assert_eq!(body, "small");
        let took = records.load(std::sync::atomic::Ordering::SeqCst) - before;
        assert_eq!(took, 1, "response {i} came in {took} TLS records: {head}");
    }
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() {
    let mut mc = Minicloud::start_with(vec![("MINICLOUD_SHUTDOWN_GRACE".into(), "8".into())]).await;
    let app = upstream::start("draining").await;
    mc.api().add_route("drain.example.com", app.addr).await;
    let client = mc.client_for(&["drain.example.com"]);
    let url = mc.https_url("drain.example.com", "/slow?ms=4000");
    // An idle kept-alive connection, after one request.
    let mut idle = support::tls_connect(mc.https_addr(), "drain.example.com", false).await;
    idle.write_all(b"GET / HTTP/1.1\r\nHost: drain.example.com\r\n\r\n")
        .await
        .unwrap();
    support::read_response(&mut idle).await.expect("answered");
    let in_flight = tokio::spawn(async move { client.get(url).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut child = mc.terminate();
    // The idle one is closed at once, while the one in flight still runs.
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(15), idle.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the idle connection stayed open: {read:?}"
    );
    assert!(
        !in_flight.is_finished(),
        "the idle connection was held until the request in flight ended"
    );
    let resp = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "draining after 4000ms");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "minicloud exited with {status}");
}
