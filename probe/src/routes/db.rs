//! `POST /db` stores the body as a row, `GET /db` reads every row back: the probe's proof that
//! `DATABASE_URL` works. One connection per request (a probe, not a production app).

use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use mysql_async::prelude::Queryable;

use crate::http::{self, Request, Response};

const CREATE: &str = "CREATE TABLE IF NOT EXISTS probe_rows (\
    id BIGINT AUTO_INCREMENT PRIMARY KEY, v TEXT NOT NULL)";

pub async fn handle(req: Request) -> Response {
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()) else {
        return http::text(StatusCode::SERVICE_UNAVAILABLE, "DATABASE_URL is not set\n");
    };
    let result = match *req.method() {
        Method::POST => match req.into_body().collect().await {
            Ok(body) => {
                let v = String::from_utf8_lossy(&body.to_bytes()).into_owned();
                insert(&url, v).await.map(|id| {
                    let mut resp = http::json(&serde_json::json!({ "id": id }));
                    *resp.status_mut() = StatusCode::CREATED;
                    resp
                })
            }
            Err(e) => return http::bad_request(format!("cannot read body: {e}")),
        },
        Method::GET => rows(&url)
            .await
            .map(|rows| http::json(&serde_json::json!(rows))),
        _ => return http::text(StatusCode::METHOD_NOT_ALLOWED, "GET or POST\n"),
    };
    result.unwrap_or_else(|e| {
        eprintln!("probe: /db: {e}");
        http::text(StatusCode::BAD_GATEWAY, format!("database: {e}\n"))
    })
}

async fn connect(url: &str) -> mysql_async::Result<mysql_async::Conn> {
    let mut conn = mysql_async::Conn::from_url(url).await?;
    conn.query_drop(CREATE).await?;
    Ok(conn)
}

async fn insert(url: &str, v: String) -> mysql_async::Result<u64> {
    let mut conn = connect(url).await?;
    conn.exec_drop("INSERT INTO probe_rows (v) VALUES (?)", (v,))
        .await?;
    let id = conn.last_insert_id().unwrap_or_default();
    conn.disconnect().await?;
    Ok(id)
}

async fn rows(url: &str) -> mysql_async::Result<Vec<String>> {
    let mut conn = connect(url).await?;
    let rows = conn.query("SELECT v FROM probe_rows ORDER BY id").await?;
    conn.disconnect().await?;
    Ok(rows)
}
