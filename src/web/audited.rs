//! Every state-changing request to the admin host goes into the audit log once its handler
//! answered: the caller (whom the authentication layer, or the webhook, put on the response),
//! the client's address, the method and path, and the status. A request nobody was
//! authenticated for is not recorded: a stranger cannot fill the log (failed sign-ins are
//! recorded by the sign-in page itself).

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::extract::client_ip;
use crate::audit;
use crate::ctx::Ctx;
use crate::model::Actor;

/// The path as the log shows it: a webhook's secret is cut off.
fn shown_path(path: &str) -> String {
    match path.strip_prefix("/hooks/deploy/") {
        Some(rest) => format!(
            "/hooks/deploy/{}",
            rest.split('/').next().unwrap_or_default()
        ),
        None => path.to_owned(),
    }
}

pub(super) async fn record_changes(
    State(ctx): State<Ctx>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let what = format!("{} {}", request.method(), shown_path(request.uri().path()));
    let ip = client_ip(request.headers());
    let response = next.run(request).await;
    if let Some(actor) = response.extensions().get::<Actor>().cloned() {
        let status = response.status();
        let ok = status.is_success() || status.is_redirection();
        audit::record(&ctx.store, actor, Some(ip), what, ok, status.to_string());
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_webhook_secret_never_reaches_the_log() {
        assert_eq!(
            super::shown_path("/hooks/deploy/blog/s3cr3t"),
            "/hooks/deploy/blog"
        );
        assert_eq!(super::shown_path("/api/apps/blog"), "/api/apps/blog");
    }
}
