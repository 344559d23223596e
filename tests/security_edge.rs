//! An attacker's tests of the edge: what a stranger on the internet can try with nothing but
//! a connection: forged forwarding headers, slow or huge request heads, stalled TLS
//! handshakes, floods of connections, the admin host under another name, token guessing.
//! Each would pass the attacker through if the defence it names were gone. (`security.rs` holds what an app or a
//! leaked URL can try.)

mod support;

use std::time::Duration;

use serde_json::Value;

use support::{upstream, wait_for, Minicloud};

/// A client that claims to be someone else, or to have come through other proxies, reaches
/// the app as itself: the claims are dropped or replaced.
#[tokio::test]
async fn forged_forwarding_headers_do_not_reach_the_app() {
    let mc = Minicloud::start().await;
    let app = upstream::start("app").await;
    mc.api().add_route("fwd.example.com", app.addr).await;
    let forged = [
        ("x-real-ip", "10.0.0.1"),
        ("forwarded", "for=10.0.0.1;proto=https"),
        ("x-forwarded-port", "1"),
        ("x-forwarded-prefix", "/admin"),
        ("true-client-ip", "10.0.0.1"),
        ("x-client-ip", "10.0.0.1"),
        ("x-forwarded-for", "10.0.0.1"),
    ];
    let mut request = mc
        .client_for(&["fwd.example.com"])
        .get(mc.https_url("fwd.example.com", "/headers"));
    for (name, value) in forged {
        request = request.header(name, value);
    }
    let headers: Value = request.send().await.unwrap().json().await.unwrap();
    for (name, _) in forged {
        assert_ne!(headers[name], "10.0.0.1", "{name}: {headers}");
    }
    for name in [
        "forwarded",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "true-client-ip",
        "x-client-ip",
    ] {
        assert!(
            headers.get(name).is_none(),
            "{name} reached the app: {headers}"
        );
    }
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
}

/// Whether the edge still holds `conn` open: a read that ends (EOF or reset) says it closed it.
async fn still_open<S: tokio::io::AsyncRead + Unpin>(conn: &mut S) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_millis(200), conn.read(&mut buf)).await {
        Err(_) => true,
        Ok(Ok(n)) => n > 0,
        Ok(Err(_)) => false,
    }
}

/// Sends a header every 200 ms while the connection stays open, for up to 20 s (ten times
/// the 2 s deadline the tests set); returns how many were sent.
async fn dribble_headers<S>(conn: &mut S) -> usize
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let mut sent = 0;
    while sent < 50 && still_open(conn).await {
        if conn.write_all(b"X-Slow: 1\r\n").await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sent
}

/// A slowloris client sends its head a header at a time, each in time for a per-read timeout:
/// the whole head has a deadline (2 s here), so the edge closes the connection. A client
/// whose head comes in pieces but within the deadline is answered.
#[tokio::test]
async fn a_slow_request_head_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mc = Minicloud::start_with(vec![("MINICLOUD_HEAD_TIMEOUT".into(), "2".into())]).await;

    let mut slow = tokio::net::TcpStream::connect(mc.http_addr())
        .await
        .unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: slow.example\r\n")
        .await
        .unwrap();
    let sent = dribble_headers(&mut slow).await;
    assert!(
        sent < 50 && !still_open(&mut slow).await,
        "a head dribbled over {sent} writes still held its connection"
    );

    let mut prompt = tokio::net::TcpStream::connect(mc.http_addr())
        .await
        .unwrap();
    for part in [
        "GET / HTTP/1.1\r\n",
        "Host: slow.example\r\n",
        "Connection: close\r\n\r\n",
    ] {
        prompt.write_all(part.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut answer = String::new();
    prompt.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
}

/// A kept-alive connection is held no longer than a new one: idle after its request, it is
/// closed at the idle timeout (the head deadline, 2 s here), and a next request whose head is
/// dribbled in pieces is cut off at the head deadline like a first one.
#[tokio::test]
async fn kept_alive_connections_are_closed_when_idle_or_slow() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mc = Minicloud::start_with(vec![("MINICLOUD_HEAD_TIMEOUT".into(), "2".into())]).await;
    let app = upstream::start("idle").await;
    mc.api().add_route("idle.example.com", app.addr).await;
    let get = b"GET / HTTP/1.1\r\nHost: idle.example.com\r\n\r\n";

    let mut idle = support::tls_connect(mc.https_addr(), "idle.example.com", false).await;
    idle.write_all(get).await.unwrap();
    assert!(support::read_response(&mut idle).await.is_some());
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(15), idle.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "an idle kept-alive connection stayed open ({read:?})"
    );

    let mut slow = support::tls_connect(mc.https_addr(), "idle.example.com", false).await;
    slow.write_all(get).await.unwrap();
    assert!(support::read_response(&mut slow).await.is_some());
    slow.write_all(b"GET / HTTP/1.1\r\nHost: idle.example.com\r\n")
        .await
        .unwrap();
    let sent = dribble_headers(&mut slow).await;
    assert!(
        sent < 50 && !still_open(&mut slow).await,
        "a second head dribbled over {sent} writes still held its connection"
    );
}

/// A client that opens a connection to the HTTPS port and then sends nothing, or only part of
/// a ClientHello, holds it until the handshake deadline (2 s here), not Pingora's 60 s. A
/// handshake finished in time keeps its connection past the deadline.
#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mc =
        Minicloud::start_with(vec![("MINICLOUD_TLS_HANDSHAKE_TIMEOUT".into(), "2".into())]).await;
    let started = std::time::Instant::now();
    let silent = tokio::net::TcpStream::connect(mc.https_addr())
        .await
        .unwrap();
    let mut partial = tokio::net::TcpStream::connect(mc.https_addr())
        .await
        .unwrap();
    // A handshake record's header announcing 512 bytes, then the first 5 of a ClientHello.
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03])
        .await
        .unwrap();
    for (name, mut conn) in [("silent", silent), ("partial ClientHello", partial)] {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(15), conn.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "{name}: still open after {:?} ({read:?})",
            started.elapsed()
        );
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "closed after {took:?}"
    );

    // The request comes well after the deadline, on a connection whose handshake was done.
    let admin = mc.admin_host();
    let tls = support::tls_connect(mc.https_addr(), &admin, false).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(status_on(tls, &admin).await, "401");
}

/// A connection from `ip` (a loopback address) that sent one request: `Some` if it was
/// answered and is kept open, `None` if the edge closed it.
async fn connect_from(ip: &str, to: std::net::SocketAddr) -> Option<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    let mut conn = socket.connect(to).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: caps.example\r\n\r\n")
        .await
        .ok()?;
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("the edge neither answers nor closes")
        .ok()?;
    buf[..n].starts_with(b"HTTP/1.1 308").then_some(conn)
}

/// A client opens connection after connection: one address gets at most its share (4 here),
/// all together at most the total (8), and a place freed is taken by the next client.
#[tokio::test]
async fn connection_caps_hold_while_others_get_through() {
    let mc = Minicloud::start_with(vec![
        ("MINICLOUD_MAX_CONNECTIONS".into(), "8".into()),
        ("MINICLOUD_MAX_CONNECTIONS_PER_IP".into(), "4".into()),
    ])
    .await;
    let to = mc.http_addr();
    let mut held = Vec::new();
    for i in 0..5 {
        let conn = connect_from("127.0.0.2", to).await;
        assert_eq!(conn.is_some(), i < 4, "connection {i} from one address");
        held.extend(conn);
    }
    // Another address still gets through, up to the total.
    for i in 0..4 {
        let conn = connect_from("127.0.0.3", to).await;
        assert!(conn.is_some(), "connection {i} of a second address");
        held.extend(conn);
    }
    assert!(
        connect_from("127.0.0.4", to).await.is_none(),
        "past the total"
    );
    drop(held.pop());
    wait_for("a freed place", Duration::from_secs(10), || async {
        connect_from("127.0.0.4", to).await
    })
    .await;
}

/// A raw TCP connection to `to` from `ip` (a loopback address), nothing sent.
async fn tcp_from(ip: &str, to: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the edge closes `conn` (a connection that sent nothing) within `wait`, well
/// before the handshake deadline (60 s here): a connection over a cap is refused, one under
/// it waits.
async fn closed_within(conn: &mut tokio::net::TcpStream, wait: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(wait, conn.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Opens connections from `ip` that send nothing until the edge refuses one, keeping open in
/// `held` each one it did not refuse at once. The edge counts each connection in a task of
/// its own, so under load a later one may be counted first and an earlier one refused: the
/// edge then holds exactly what its caps allow, whichever ones those are.
async fn hold_until_refused(
    ip: &str,
    to: std::net::SocketAddr,
    held: &mut Vec<tokio::net::TcpStream>,
) -> usize {
    let before = held.len();
    for _ in 0..20 {
        let mut conn = tcp_from(ip, to).await;
        if closed_within(&mut conn, Duration::from_secs(2)).await {
            return held.len() - before;
        }
        held.push(conn);
    }
    panic!("the edge refused none of 20 connections from {ip}");
}

/// A flood of connections that never finish their TLS handshake fills the caps like open ones:
/// while one address holds its share (4 here) of stalled handshakes, its next connection is
/// closed at once, and when all together hold the total (6), so is another address's. When
/// they go, a client gets through again.
#[tokio::test]
async fn stalled_handshakes_count_against_the_caps() {
    use tokio::io::AsyncWriteExt;
    let mc = Minicloud::start_with(vec![
        ("MINICLOUD_MAX_CONNECTIONS".into(), "6".into()),
        ("MINICLOUD_MAX_CONNECTIONS_PER_IP".into(), "4".into()),
        ("MINICLOUD_TLS_HANDSHAKE_TIMEOUT".into(), "60".into()),
        // Pingora's debug lines too: the refused handshakes must be there, at debug.
        ("MINICLOUD_LOG".into(), "info,pingora_core=debug".into()),
    ])
    .await;
    let to = mc.https_addr();
    let mut stalled = Vec::new();
    // One address's share: refused after 4, with the total (6) not reached.
    let from_one = hold_until_refused("127.0.0.5", to, &mut stalled).await;
    assert!(from_one >= 4, "one address got only {from_one} of its 4");
    // Another address still gets in, until the total is held.
    let from_another = hold_until_refused("127.0.0.6", to, &mut stalled).await;
    assert!(
        from_another >= 1,
        "a second address was refused while the first held only its share"
    );
    // With the total held, a third address is refused at once too.
    let mut third = tcp_from("127.0.0.7", to).await;
    assert!(
        closed_within(&mut third, Duration::from_secs(10)).await,
        "a connection over the total cap was not refused"
    );

    drop(stalled);
    let app = upstream::start("through").await;
    mc.api().add_route("caps.example.com", app.addr).await;
    let (_, body) = wait_for("a place freed", Duration::from_secs(30), || async {
        let tcp = tcp_from("127.0.0.7", to).await;
        let mut tls = support::try_tls_over(tcp, "caps.example.com", false)
            .await
            .ok()?;
        tls.write_all(b"GET / HTTP/1.1\r\nHost: caps.example.com\r\n\r\n")
            .await
            .ok()?;
        support::read_response(&mut tls).await
    })
    .await;
    assert_eq!(body, "through");

    // Pingora logs each refused handshake at error; any client can cause them, so the edge
    // demotes them to debug (`minicloud_proxy::pingora_log`).
    let log = mc.log();
    let handshakes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Downstream handshake"))
        .collect();
    assert!(
        !handshakes.is_empty(),
        "the refused handshakes are logged at debug:\n{log}"
    );
    for line in handshakes {
        assert!(
            line.contains("DEBUG") && !line.contains("ERROR"),
            "a refused handshake is logged at debug, not error: {line}"
        );
    }
}

/// The status code the edge answers `GET /api/health` with, for `Host: host` on a TLS
/// connection opened with `sni` (an IP address sends none).
async fn status_over(mc: &Minicloud, sni: &str, host: &str) -> String {
    let tls = support::tls_connect(mc.https_addr(), sni, false).await;
    status_on(tls, host).await
}

/// The status code the edge answers `GET /api/health` with, for `Host: host` on `tls`.
async fn status_on(
    mut tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    host: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!("GET /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // The edge may close without a TLS close_notify; what was read is what counts.
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

/// The admin host answers only on a connection made for it: an attacker who connects by IP,
/// or under an app's name, and then sends `Host: admin.<domain>` is told 421.
#[tokio::test]
async fn the_admin_host_answers_only_its_own_sni() {
    let mc = Minicloud::start().await;
    let admin = mc.admin_host();
    // Its own name: the API itself answers (401: no token).
    assert_eq!(status_over(&mc, &admin, &admin).await, "401");
    let app = format!("blog.{}", mc.domain);
    for sni in [app.as_str(), "127.0.0.1"] {
        assert_eq!(
            status_over(&mc, sni, &admin).await,
            "421",
            "Host: {admin} over SNI {sni}"
        );
    }
}

/// Guessing the API token through the edge: after a few wrong tokens the address waits (429),
/// even with the right token; the log names the address, never the guess; another address
/// is not held up.
#[tokio::test]
async fn token_guesses_are_slowed_and_logged_without_the_guess() {
    let mc = Minicloud::start().await;
    let admin = mc.admin_host();
    let from = |ip: &str| {
        reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .resolve(&admin, mc.https_addr())
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let url = mc.https_url(&admin, "/api/apps");
    let guesser = from("127.0.0.2");
    let guess = "mc_a_wrong_guess_0123456789abcdef";
    let mut seen = Vec::new();
    for _ in 0..5 {
        let resp = guesser.get(&url).bearer_auth(guess).send().await.unwrap();
        seen.push(resp.status().as_u16());
    }
    assert_eq!(seen, [401, 401, 401, 401, 429]);
    let right = guesser
        .get(&url)
        .bearer_auth(support::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 429);
    assert!(right.headers().contains_key("retry-after"));
    let other = from("127.0.0.3")
        .get(&url)
        .bearer_auth(support::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    let log = mc.log();
    assert!(
        log.contains("failed API authentication") && log.contains("127.0.0.2"),
        "no failed authentication logged"
    );
    assert!(!log.contains(guess), "the guess reached the log");
}

/// A 200 KB header is refused with 431, not passed on; the error page quotes no markup a
/// client sent in its Host.
#[tokio::test]
async fn oversized_heads_and_hostile_hosts_are_answered_safely() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mc = Minicloud::start().await;
    let app = upstream::start("app").await;
    mc.api().add_route("big.example.com", app.addr).await;
    // HTTP/1.1 (h2 caps a header list at 64 KiB itself, with a GOAWAY).
    let http1 = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .http1_only()
        .resolve("big.example.com", mc.https_addr())
        .build()
        .unwrap();
    let resp = http1
        .get(mc.https_url("big.example.com", "/"))
        .header("x-big", "a".repeat(200_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    // A head well under the limit still goes through.
    let resp = http1
        .get(mc.https_url("big.example.com", "/"))
        .header("x-big", "a".repeat(30_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Plain HTTP answers a redirect page before any route; a bad Host gets the error page.
    let mut conn = tokio::net::TcpStream::connect(mc.http_addr())
        .await
        .unwrap();
    conn.write_all(
        b"GET / HTTP/1.1\r\nHost: <img src=x onerror=alert(1)>\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!answer.contains("<img"), "{answer}");
}

/// What the edge's plain HTTP port answers to `raw`, sent at once, until it closes.
async fn raw_exchange(mc: &Minicloud, raw: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(mc.http_addr())
        .await
        .unwrap();
    conn.write_all(raw.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer));
    // A reset after the answer still leaves the answer.
    let _ = read.await.expect("the edge neither answered nor closed");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Pingora's refusals that keep requests from being smuggled past the edge, pinned so an
/// upgrade cannot undo them silently: a head with both Content-Length and chunked encoding
/// is answered once and the connection closed (nothing after it is read as a request); two
/// Host headers, or a Host that differs from the request line's authority, are refused.
#[tokio::test]
async fn request_smuggling_is_refused() {
    let mc = Minicloud::start().await;
    let answer = raw_exchange(
        &mc,
        "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 4\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
         GET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n",
    )
    .await;
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    assert!(!answer.contains("smuggled"), "{answer}");

    let answer = raw_exchange(
        &mc,
        "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "duplicate Host: {answer}"
    );

    let answer = raw_exchange(
        &mc,
        "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "authority vs Host: {answer}"
    );
}

/// On SIGQUIT Pingora hands its listening sockets (ports 80 and 443) to whoever listens on
/// its upgrade socket. That socket is under the data dir (mode 0700), not in `/tmp`, where
/// any local user could bind it first.
#[tokio::test]
async fn the_upgrade_socket_lives_under_the_data_dir() {
    let mc = Minicloud::start().await;
    let path = mc.data_path().join("minicloud").join("upgrade.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    mc.signal(nix::sys::signal::Signal::SIGQUIT);
    let handed = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await;
    assert!(handed.is_ok(), "Pingora did not use {}", path.display());
}
