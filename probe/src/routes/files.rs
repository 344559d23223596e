//! `PUT /file/{name}` and `GET /file/{name}`: files on the storage volume (`/data`).

use http_body_util::{BodyExt, Limited};
use hyper::{Method, StatusCode};

use crate::config::Config;
use crate::http::{self, Request, Response};

/// Largest body `PUT /file/{name}` takes.
const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

pub async fn handle(req: Request, config: &Config) -> Response {
    let name = req
        .uri()
        .path()
        .strip_prefix("/file/")
        .unwrap_or_default()
        .to_owned();
    if !valid_name(&name) {
        return http::bad_request("file name must match [a-z0-9._-]+ (and not be . or ..)");
    }
    let path = config.data_dir.join(&name);
    match *req.method() {
        Method::GET => match tokio::fs::read(&path).await {
            Ok(bytes) => http::with_type(
                StatusCode::OK,
                "application/octet-stream",
                http::full(bytes),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => http::not_found(),
            Err(e) => server_error(format!("read {}: {e}", path.display())),
        },
        Method::PUT => {
            let body = match Limited::new(req.into_body(), MAX_FILE_BYTES)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(e) => return http::bad_request(format!("cannot read body: {e}")),
            };
            match tokio::fs::write(&path, &body).await {
                Ok(()) => http::text(StatusCode::CREATED, format!("wrote {} bytes\n", body.len())),
                Err(e) => server_error(format!("write {}: {e}", path.display())),
            }
        }
        _ => http::text(StatusCode::METHOD_NOT_ALLOWED, "GET or PUT\n"),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

fn server_error(msg: String) -> Response {
    eprintln!("probe: {msg}");
    http::text(StatusCode::INTERNAL_SERVER_ERROR, format!("{msg}\n"))
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names() {
        assert!(valid_name("a.txt"));
        assert!(valid_name("x_1-2"));
        for bad in ["", ".", "..", "A", "a/b", "a b", "é"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
