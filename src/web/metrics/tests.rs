//! `/api/metrics` and `/metrics` in process: what the edge counted, per host and per app,
//! and who may read it.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use minicloud_proxy::{HostPattern, Hostname, Upstream};

use crate::web::tests::{admin, stored_app, Admin};

/// Routes `blog`'s host at the edge (as a deploy would) and returns it.
fn route_blog(admin: &Admin) -> String {
    let apps_host = admin
        .ctx
        .config
        .domain
        .child("blog")
        .unwrap()
        .as_str()
        .to_owned();
    let upstream = Upstream("127.0.0.1:9".parse().unwrap());
    admin.ctx.edge.update(|d| {
        d.set_route(
            HostPattern::Exact(Hostname::parse(&apps_host).unwrap()),
            upstream,
        )
    });
    apps_host
}

#[tokio::test]
async fn the_report_has_each_apps_traffic_by_the_minute_and_the_box() {
    let admin = admin();
    stored_app(&admin.ctx, "blog");
    let host = route_blog(&admin);
    let counters = admin.ctx.edge.metrics();
    admin.metrics.sample_traffic(1_000);
    for status in [200, 200, 200, 503] {
        counters.record(&host, status, Duration::from_millis(30));
    }
    counters.record("stranger.example", 200, Duration::from_millis(1));
    admin.metrics.sample_traffic(1_060);

    let (status, report) = admin.json(Method::GET, "/api/metrics", "").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let blog = &report["apps"][0];
    assert_eq!(blog["name"], "blog");
    assert_eq!(blog["hosts"][0], host.as_str());
    assert_eq!(blog["memory_limit_bytes"], 64 * 1024 * 1024);
    let minutes = blog["last_hour"].as_array().unwrap();
    assert_eq!(minutes.len(), 1, "{blog}");
    assert_eq!(minutes[0]["requests"], 4);
    assert_eq!(minutes[0]["server_errors"], 1);
    assert_eq!(minutes[0]["p95_ms"], 50);
    let hosts = report["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "only routed hosts are counted: {hosts:?}");
    assert_eq!(hosts[0]["requests_total"], 4);
    assert!(report["machine"]["memory_total_bytes"].as_u64().unwrap() > 0);
    assert!(report["machine"]["disk_free_bytes"].as_u64().is_some());
}

#[tokio::test]
async fn prometheus_text_needs_a_token_or_a_session() {
    let admin = admin();
    let host = route_blog(&admin);
    admin
        .ctx
        .edge
        .metrics()
        .record(&host, 502, Duration::from_millis(2));

    let stranger = Request::get("/metrics").body(Body::empty()).unwrap();
    assert_eq!(admin.call(stranger).await.0, StatusCode::UNAUTHORIZED);
    let forged = Request::get("/metrics")
        .header(header::COOKIE, "__Host-minicloud_session=forged")
        .body(Body::empty())
        .unwrap();
    assert_eq!(admin.call(forged).await.0, StatusCode::UNAUTHORIZED);
    let wrong = Request::get("/metrics")
        .header(header::AUTHORIZATION, "Bearer mc_wrong")
        .body(Body::empty())
        .unwrap();
    assert_eq!(admin.call(wrong).await.0, StatusCode::UNAUTHORIZED);

    let request = admin
        .request(Method::GET, "/metrics")
        .body(Body::empty())
        .unwrap();
    let (status, headers, text) = admin.call(request).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(
        text.contains(&format!(
            "minicloud_http_server_errors_total{{host=\"{host}\"}} 1\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("minicloud_machine_memory_total_bytes "),
        "{text}"
    );
}
