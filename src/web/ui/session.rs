//! Signing in and out, and the gate in front of every other page: a session cookie
//! (`__Host-`, `Secure`, `HttpOnly`, `SameSite=Strict`) and, on every request that is not a
//! read, the session's CSRF token (form field `csrf` or header `X-CSRF-Token`).

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::UiError;
use super::views::{self, Login};
use super::UiState;
use crate::audit;
use crate::auth::{passwords, sessions, totp};
use crate::model::{now, Actor};
use crate::web::extract::client_ip;
use crate::web::BODY_LIMIT;

pub use crate::auth::sessions::Session;

/// The session cookie. `__Host-` makes the browser refuse it unless it is `Secure`, has
/// `Path=/` and no `Domain`: no other host and no plain-HTTP page can set or read it.
pub const SESSION_COOKIE: &str = "__Host-minicloud_session";
/// The sign-in form's own CSRF token, before there is a session (double submit).
pub const LOGIN_COOKIE: &str = "__Host-minicloud_login";
/// The form field and the header that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
const CSRF_HEADER: &str = "x-csrf-token";

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

// Names and values are ours: fixed names and hex tokens, always a valid header value.
#[allow(clippy::expect_used)]
fn set_cookie(name: &str, value: &str, max_age: i64) -> (header::HeaderName, HeaderValue) {
    let value =
        format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    (
        header::SET_COOKIE,
        HeaderValue::from_str(&value).expect("cookie values are hex"),
    )
}

/// Lets a request through only with a live session, and a state-changing one only with its
/// CSRF token. A stranger is sent to `/login`; a missing or wrong token is a 403.
pub async fn require(
    State(state): State<UiState>,
    request: Request,
    next: Next,
) -> Result<Response, UiError> {
    let Some(session) = from_cookie(&state.web.ctx.store, request.headers())? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let mut request = if matches!(*request.method(), Method::GET | Method::HEAD) {
        request
    } else {
        check_csrf(&session, request).await?
    };
    let actor = Actor::User(session.user.clone());
    request.extensions_mut().insert(actor.clone());
    request.extensions_mut().insert(session);
    // On the answer too, for the audit log's layer outside this one.
    let mut response = next.run(request).await;
    response.extensions_mut().insert(actor);
    Ok(response)
}

/// The live session the request's cookie names, if any: for a route that also takes a
/// token instead (`/metrics`), so it cannot use [`require`]'s redirect.
pub fn from_cookie(
    store: &crate::store::Store,
    headers: &HeaderMap,
) -> Result<Option<Session>, UiError> {
    match cookie(headers, SESSION_COOKIE) {
        Some(value) => Ok(sessions::resume(store, value, now())?),
        None => Ok(None),
    }
}

/// Reads the token from the header or the form body; the body is put back for the handler.
async fn check_csrf(session: &Session, request: Request) -> Result<Request, UiError> {
    if let Some(token) = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return if session.csrf_matches(token) {
            Ok(request)
        } else {
            Err(UiError::Forbidden)
        };
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| UiError::BadRequest("the form is too large".into()))?;
    let presented = form_field(&bytes, CSRF_FIELD);
    if !presented.is_some_and(|t| session.csrf_matches(&t)) {
        return Err(UiError::Forbidden);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The signed-in person's session, as [`require`] found it.
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(UiError::Forbidden)
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

/// The sign-in form, with a token in a short-lived cookie and a hidden field. A token the
/// browser already has is kept: a second tab (or the browser's own favicon request, sent to
/// this page) must not void the form in the first.
pub async fn login_page(headers: HeaderMap) -> Result<Response, UiError> {
    login_form(&headers, StatusCode::OK, "", None)
}

fn login_form(
    headers: &HeaderMap,
    status: StatusCode,
    username: &str,
    error: Option<String>,
) -> Result<Response, UiError> {
    let token = cookie(headers, LOGIN_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(random_token, str::to_owned);
    let page = views::render(&Login {
        css: super::assets::css_url(),
        js: super::assets::js_url(),
        csrf: token.clone(),
        username: username.to_owned(),
        error,
    })?;
    Ok((status, [set_cookie(LOGIN_COOKIE, &token, 3600)], page).into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// The second factor's code (or a recovery code), for an account that has one.
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

pub async fn login(
    State(state): State<UiState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, UiError> {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty()
        || !crate::model::secret::constant_time_eq(expected.as_bytes(), form.csrf.as_bytes())
    {
        return Err(UiError::Forbidden);
    }
    let ip = client_ip(&headers);
    let username = form.username.trim().to_owned();
    let keys = [format!("user:{username}"), format!("ip:{ip}")];
    if let Err(wait) = state.throttle.check(&keys, now()) {
        tracing::warn!(user = %username, %ip, wait, "sign-in refused: too many failures");
        return login_form(
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            &username,
            Some(format!(
                "Too many failed sign-ins. Try again in {wait} second{}.",
                if wait == 1 { "" } else { "s" }
            )),
        );
    }
    let store = state.web.ctx.store.clone();
    let (user, password) = (username.clone(), form.password);
    // argon2 takes tens of milliseconds of CPU: off the async workers.
    let found =
        tokio::task::spawn_blocking(move || passwords::check_password(&store, &user, &password))
            .await
            .map_err(|e| UiError::Internal(e.to_string()))??;
    let store = &state.web.ctx.store;
    // The code is asked only after the right password, so it tells a guesser nothing new.
    let refusal = match &found {
        None => Some("Wrong username or password."),
        Some(user) if !totp::check(store, &user.name, &form.code, now())? => Some(
            "Enter the six-digit code your authenticator app shows now, or an unused recovery code.",
        ),
        Some(_) => None,
    };
    // What a stranger typed is kept short in the log.
    let who = Actor::User(username.chars().take(64).collect());
    if let Some(message) = refusal {
        let failures = state.throttle.failed(&keys, now());
        tracing::warn!(user = %username, %ip, failures, "failed sign-in");
        audit::record(store, who, Some(ip), "sign-in", false, message);
        return login_form(
            &headers,
            StatusCode::UNAUTHORIZED,
            &username,
            Some(message.into()),
        );
    }
    state.throttle.succeeded(&keys[0]);
    tracing::info!(user = %username, %ip, "signed in");
    audit::record(store, who, Some(ip), "sign-in", true, "signed in");
    signed_in(store, &username, "/")
}

/// Starts a session for `user` and sends the browser to `location` with its cookie (and
/// without the sign-in form's).
pub(super) fn signed_in(
    store: &crate::store::Store,
    user: &str,
    location: &'static str,
) -> Result<Response, UiError> {
    let (value, _) = sessions::start(store, user, now())?;
    // Appended: two cookies are two `Set-Cookie` headers.
    Ok((
        StatusCode::SEE_OTHER,
        AppendHeaders([
            set_cookie(
                SESSION_COOKIE,
                value.expose(),
                sessions::ABSOLUTE_EXPIRY_SECS,
            ),
            set_cookie(LOGIN_COOKIE, "", 0),
            (header::LOCATION, HeaderValue::from_static(location)),
        ]),
    )
        .into_response())
}

pub async fn logout(State(state): State<UiState>, session: Session) -> Result<Response, UiError> {
    sessions::end(&state.web.ctx.store, &session)?;
    tracing::info!(user = %session.user, "signed out");
    Ok(signed_out())
}

/// "Sign out everywhere": every session of this user ends, this one included.
pub async fn logout_everywhere(
    State(state): State<UiState>,
    session: Session,
) -> Result<Response, UiError> {
    let ended = sessions::end_all(&state.web.ctx.store, &session.user)?;
    tracing::info!(user = %session.user, sessions = ended, "signed out everywhere");
    Ok(signed_out())
}

/// Clears the session cookie and sends the browser to the sign-in page.
pub(super) fn signed_out() -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            set_cookie(SESSION_COOKIE, "", 0),
            (header::LOCATION, HeaderValue::from_static("/login")),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static(
                "a=1; __Host-minicloud_session=abc; x__Host-minicloud_login=2",
            ),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
    }

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(
            form_field(b"a=1&csrf=x%2By&b=", "csrf").as_deref(),
            Some("x+y")
        );
        assert_eq!(form_field(b"a=1", "csrf"), None);
    }
}
