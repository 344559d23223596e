//! The dashboard, the add-an-app form and the app page's services in process (no Docker
//! needed for what is checked: the app has never been deployed).

use std::time::Duration;

use axum::http::{header, StatusCode};
use minicloud_proxy::{HostPattern, Hostname, Upstream};

use super::tests::{sign_in, with_admin_password};
use crate::web::tests::{admin, stored_app};

#[tokio::test]
async fn the_dashboard_draws_the_hours_traffic_and_the_box() {
    let admin = admin();
    with_admin_password(&admin);
    stored_app(&admin.ctx, "blog");
    let host = admin.ctx.config.domain.child("blog").unwrap();
    admin.ctx.edge.update(|d| {
        d.set_route(
            HostPattern::Exact(Hostname::parse(host.as_str()).unwrap()),
            Upstream("127.0.0.1:9".parse().unwrap()),
        )
    });
    let now = crate::model::now();
    admin.metrics.sample_traffic(now - 120);
    admin
        .ctx
        .edge
        .metrics()
        .record(host.as_str(), 200, Duration::from_millis(3));
    admin.metrics.sample_traffic(now - 60);
    for _ in 0..3 {
        admin
            .ctx
            .edge
            .metrics()
            .record(host.as_str(), 500, Duration::from_millis(300));
    }
    admin.metrics.sample_traffic(now);

    let browser = sign_in(&admin).await;
    let (status, _, page) = browser.get("/").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // Two minutes: 1 then 3 requests, the last all 5xx at the 500 ms bucket.
    assert!(
        page.contains(r#"<polyline points="59.0,10.5 60.0,0.5"/>"#),
        "{page}"
    );
    assert!(
        page.contains(">3<svg"),
        "requests in the last minute: {page}"
    );
    assert!(page.contains(">75.0%<svg"), "the hour's 5xx rate: {page}");
    assert!(page.contains(">500 ms<svg"), "the hour's p95: {page}");
    assert!(page.contains("GiB free of"), "the data disk: {page}");
    assert!(page.contains(" cores"), "the load: {page}");
}

#[tokio::test]
async fn the_add_form_offers_every_service_and_a_bad_image_says_why_without_pulling() {
    let admin = admin();
    with_admin_password(&admin);
    let browser = sign_in(&admin).await;
    let (status, _, page) = browser.get("/apps/new").await;
    assert_eq!(status, StatusCode::OK);
    for need in ["database", "messagebus", "storage"] {
        assert!(
            page.contains(&format!(r#"name="{need}" value="true""#)),
            "{page}"
        );
    }
    assert!(page.contains(r#"name="domains""#));
    let (status, _, page) = browser.get("/apps/new?image=Not%20An%20Image").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"id="preview-error""#), "{page}");
    assert!(!page.contains(r#"id="declared""#));
}

#[tokio::test]
async fn a_service_is_attached_and_detached_from_the_app_page() {
    let admin = admin();
    with_admin_password(&admin);
    stored_app(&admin.ctx, "blog");
    let browser = sign_in(&admin).await;
    let (status, _, page) = browser.get("/apps/blog").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(r#"id="attach-database""#), "{page}");
    assert!(
        page.contains("does not resolve yet") || page.contains("points"),
        "{page}"
    );

    let (status, headers, body) = browser
        .post("/apps/blog/services", &[("service", "database")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers[header::LOCATION], "/apps/blog");
    let record = admin
        .ctx
        .store
        .app(&"blog".parse().unwrap())
        .unwrap()
        .unwrap();
    assert!(record
        .added_services
        .contains(&crate::model::Need::Database));
    let (_, _, page) = browser.get("/apps/blog").await;
    assert!(page.contains(r#"id="detach-database""#), "{page}");

    let (status, _, page) = browser
        .post("/apps/blog/services", &[("service", "nonsense")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Choose a database, a message bus or storage."));

    let (status, _, _) = browser
        .post("/apps/blog/services/detach", &[("service", "database")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browser.get("/apps/blog").await;
    assert!(page.contains(r#"id="attach-database""#), "{page}");
    let (status, _, page) = browser
        .post("/apps/blog/services/detach", &[("service", "storage")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("blog has no storage attached"), "{page}");
}

#[tokio::test]
async fn the_app_page_says_when_its_variables_are_not_deployed_yet() {
    let admin = admin();
    with_admin_password(&admin);
    stored_app(&admin.ctx, "blog");
    let browser = sign_in(&admin).await;
    let (_, _, page) = browser.get("/apps/blog").await;
    assert!(!page.contains(r#"id="env-pending""#), "{page}");

    let name = "blog".parse().unwrap();
    let mut record = admin.ctx.store.app(&name).unwrap().unwrap();
    record.env_before = Some(record.env.clone());
    record.env.insert("GREETING".into(), "hello".into());
    admin.ctx.store.put_app(&record).unwrap();
    let (status, _, page) = browser.get("/apps/blog").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(r#"id="env-pending""#), "{page}");
    assert!(page.contains("not deployed yet"), "{page}");
}

#[tokio::test]
async fn a_pending_whole_box_restore_is_shown_with_its_retry_on_both_pages() {
    use crate::store::{PendingRestore, RestoreFailure};
    let admin = admin();
    with_admin_password(&admin);
    stored_app(&admin.ctx, "blog");
    let browser = sign_in(&admin).await;
    for page in ["/apps/blog", "/apps/blog/backups"] {
        let (_, _, shown) = browser.get(page).await;
        assert!(!shown.contains(r#"id="restore-status""#), "{page}: {shown}");
    }

    let mut pending = PendingRestore {
        app: "blog".parse().unwrap(),
        backup: "0000000100-aaaa".into(),
        platform_run: "0000000101-pppp".into(),
        requested_at: 100,
        failed: None,
    };
    admin.ctx.store.put_pending_restore(&pending).unwrap();
    for page in ["/apps/blog", "/apps/blog/backups"] {
        let (status, _, shown) = browser.get(page).await;
        assert_eq!(status, StatusCode::OK, "{shown}");
        assert!(
            shown.contains("Being restored from backup <code>0000000100-aaaa</code>"),
            "{page}: {shown}"
        );
        assert!(!shown.contains("Retry the restore"), "{page}: {shown}");
    }

    pending.failed = Some(RestoreFailure {
        at: 200,
        reason: "MariaDB at h:1: <down>".into(),
    });
    admin.ctx.store.put_pending_restore(&pending).unwrap();
    for page in ["/apps/blog", "/apps/blog/backups"] {
        let (_, _, shown) = browser.get(page).await;
        assert!(
            shown.contains("The restore from backup <code>0000000100-aaaa</code> failed"),
            "{page}: {shown}"
        );
        assert!(shown.contains("MariaDB at h:1: "), "{page}: {shown}");
        assert!(
            !shown.contains("<down>"),
            "the reason is not escaped: {shown}"
        );
        let form = &shown[shown
            .find(r#"action="/apps/blog/backups/0000000100-aaaa/restore""#)
            .unwrap_or_else(|| panic!("no retry form on {page}: {shown}"))..];
        let form = &form[..form.find("</form>").unwrap()];
        assert!(
            form.contains(&format!(r#"name="csrf" value="{}""#, browser.csrf)),
            "{form}"
        );
        assert!(form.contains(r#"name="confirm" value="blog""#), "{form}");
        assert!(form.contains("Retry the restore"), "{form}");
    }
}
