//! The Settings page: the signed-in person's password and second factor, "sign out
//! everywhere", the other users, the API tokens, and the site's settings (shown, not edited:
//! they come from the configuration).
//!
//! What is shown once (a new token, recovery codes) is rendered straight into the POST's
//! answer and never stored; everything else redirects back to the page.

use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::UiError;
use super::forms;
use super::session::{self, Session};
use super::views::{self, Chrome};
use super::UiState;
use crate::auth::passwords::{self, UserError};
use crate::auth::tokens;
use crate::auth::totp::{self, TotpState};
use crate::model::{format_time, now, Secret};
use crate::web::WebError;

pub struct UserView {
    pub name: String,
    pub created_at: String,
    pub two_factor: bool,
    pub is_me: bool,
}

pub struct TokenView {
    pub name: String,
    pub created_at: String,
    pub expires_at: String,
    pub last_used: String,
    pub expired: bool,
}

/// The second factor as the page shows it.
pub struct TwoFactorView {
    /// `off`, `pending` or `on`.
    pub state: &'static str,
    /// While pending: the key to type and the URI an app opens.
    pub secret: String,
    pub uri: String,
    pub recovery_left: usize,
}

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    pub error: Option<String>,
    /// A token just made (empty otherwise): its name and the token, shown this once.
    pub new_token_name: String,
    pub new_token: String,
    /// Recovery codes just made, shown this once.
    pub recovery: Vec<String>,
    pub two_factor: TwoFactorView,
    pub users: Vec<UserView>,
    pub tokens: Vec<TokenView>,
    pub domain: String,
    pub admin_host: String,
    pub acme_email: String,
    pub audit_days: u32,
    /// The S3 destination (`https://host/bucket/prefix`), empty when none; its secret key is
    /// never on the page.
    pub backup_s3: String,
    pub backup_s3_key: String,
}

/// What a POST adds to the page it answers with.
#[derive(Default)]
struct Shown {
    error: Option<String>,
    new_token: Option<(String, String)>,
    recovery: Vec<Secret>,
}

fn page(state: &UiState, session: &Session, shown: Shown) -> Result<SettingsPage, UiError> {
    let ctx = &state.web.ctx;
    let store = &ctx.store;
    let at = |t: Option<i64>| t.map(format_time).unwrap_or_default();
    let two_factor = match totp::state(store, &session.user)? {
        TotpState::Off => TwoFactorView {
            state: "off",
            secret: String::new(),
            uri: String::new(),
            recovery_left: 0,
        },
        TotpState::Pending => {
            let (secret, uri) = pending_key(state, session)?;
            TwoFactorView {
                state: "pending",
                uri,
                secret: secret.expose().to_owned(),
                recovery_left: 0,
            }
        }
        TotpState::On { recovery_left } => TwoFactorView {
            state: "on",
            secret: String::new(),
            uri: String::new(),
            recovery_left,
        },
    };
    let (new_token_name, new_token) = shown.new_token.unwrap_or_default();
    Ok(SettingsPage {
        chrome: Chrome::new(session),
        error: shown.error,
        new_token_name,
        new_token,
        recovery: shown
            .recovery
            .iter()
            .map(|c| c.expose().to_owned())
            .collect(),
        two_factor,
        users: store
            .users()?
            .into_iter()
            .map(|u| UserView {
                is_me: u.name == session.user,
                two_factor: u.totp.is_some_and(|t| t.confirmed),
                created_at: format_time(u.created_at),
                name: u.name,
            })
            .collect(),
        tokens: tokens::list(store, now())?
            .into_iter()
            .map(|t| TokenView {
                created_at: format_time(t.created_at),
                expires_at: at(t.expires_at),
                last_used: at(t.last_used),
                expired: t.expired,
                name: t.name,
            })
            .collect(),
        domain: ctx.config.domain.to_string(),
        admin_host: ctx.config.admin_host().to_string(),
        acme_email: ctx.config.acme_email.clone().unwrap_or_default(),
        audit_days: ctx.config.audit_retention_days,
        backup_s3: ctx
            .config
            .backup_s3
            .as_ref()
            .map(|s3| s3.describe())
            .unwrap_or_default(),
        backup_s3_key: ctx
            .config
            .backup_s3
            .as_ref()
            .map(|s3| s3.access_key.clone())
            .unwrap_or_default(),
    })
}

/// The key waiting for its first code, and the `otpauth://` URI that carries it.
fn pending_key(state: &UiState, session: &Session) -> Result<(Secret, String), UiError> {
    let ctx = &state.web.ctx;
    let secret = ctx
        .store
        .user(&session.user)?
        .and_then(|u| u.totp)
        .filter(|t| !t.confirmed)
        .map(|t| t.secret)
        .ok_or(UiError::NotFound)?;
    let uri = totp::otpauth_uri(&secret, &session.user, ctx.config.admin_host().as_str());
    Ok((secret, uri))
}

/// The waiting key as a QR code (an SVG image) for the authenticator app's camera; 404 when
/// no key waits.
pub async fn two_factor_qr(
    State(state): State<UiState>,
    session: Session,
) -> Result<Response, UiError> {
    let (_, uri) = pending_key(&state, &session)?;
    let svg = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| UiError::Internal(format!("QR code: {e}")))?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

fn render(status: StatusCode, page: &SettingsPage) -> Result<Response, UiError> {
    Ok((status, views::render(page)?).into_response())
}

/// A refusal the person can act on is shown on the page, above the forms; anything else is
/// the error page.
fn answer(
    state: &UiState,
    session: &Session,
    result: Result<Shown, UiError>,
) -> Result<Response, UiError> {
    match result {
        Ok(shown) if shown.new_token.is_none() && shown.recovery.is_empty() => {
            Ok(Redirect::to("/settings").into_response())
        }
        Ok(shown) => render(StatusCode::OK, &page(state, session, shown)?),
        Err(UiError::Web(e @ (WebError::BadRequest(_) | WebError::NotFound(_)))) => {
            let shown = Shown {
                error: Some(e.to_string()),
                ..Shown::default()
            };
            render(StatusCode::BAD_REQUEST, &page(state, session, shown)?)
        }
        Err(e) => Err(e),
    }
}

/// Argon2 takes tens of milliseconds of CPU: off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UserError> + Send + 'static,
) -> Result<T, UiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| UiError::Internal(e.to_string()))?
        .map_err(UiError::from)
}

pub async fn show(State(state): State<UiState>, session: Session) -> Result<Html<String>, UiError> {
    Ok(views::render(&page(&state, &session, Shown::default())?)?)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
}

/// Changes the person's own password; every session of theirs ends and this browser gets a
/// fresh one.
pub async fn change_password(
    State(state): State<UiState>,
    session: Session,
    axum::Form(form): axum::Form<PasswordForm>,
) -> Result<Response, UiError> {
    let store = state.web.ctx.store.clone();
    let user = session.user.clone();
    let changed = blocking(move || {
        passwords::change_password(&store, &user, &form.current, &Secret::new(form.new))
    })
    .await;
    match changed {
        Ok(()) => session::signed_in(&state.web.ctx.store, &session.user, "/settings"),
        Err(e) => answer(&state, &session, Err(e)),
    }
}

#[derive(Deserialize)]
pub struct UserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

pub async fn add_user(
    State(state): State<UiState>,
    session: Session,
    axum::Form(form): axum::Form<UserForm>,
) -> Result<Response, UiError> {
    let store = state.web.ctx.store.clone();
    let added = blocking(move || {
        passwords::add_user(&store, form.name.trim(), &Secret::new(form.password), now())
    })
    .await;
    answer(&state, &session, added.map(|()| Shown::default()))
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

/// Removes a user (and ends their sessions); removing oneself signs out.
pub async fn remove_user(
    State(state): State<UiState>,
    session: Session,
    axum::Form(form): axum::Form<NameForm>,
) -> Result<Response, UiError> {
    let removed = passwords::remove_user(&state.web.ctx.store, &form.name).map_err(UiError::from);
    if removed.is_ok() && form.name == session.user {
        return Ok(session::signed_out());
    }
    answer(&state, &session, removed.map(|()| Shown::default()))
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    /// Days until it expires; blank: never.
    #[serde(default)]
    days: String,
}

pub async fn create_token(
    State(state): State<UiState>,
    session: Session,
    axum::Form(form): axum::Form<TokenForm>,
) -> Result<Response, UiError> {
    let made = forms::optional(&form.days)
        .map(|d| {
            d.parse::<u32>().map_err(|_| {
                UiError::from(UserError::Refused(format!(
                    "the expiry is a whole number of days, not {d:?}; leave it blank for none"
                )))
            })
        })
        .transpose()
        .and_then(|days| {
            tokens::create(&state.web.ctx.store, form.name.trim(), days, now())
                .map_err(UiError::from)
        })
        .map(|(token, info)| Shown {
            new_token: Some((info.name, token.expose().to_owned())),
            ..Shown::default()
        });
    answer(&state, &session, made)
}

pub async fn revoke_token(
    State(state): State<UiState>,
    session: Session,
    axum::Form(form): axum::Form<NameForm>,
) -> Result<Response, UiError> {
    let revoked = tokens::revoke(&state.web.ctx.store, &form.name).map_err(UiError::from);
    answer(&state, &session, revoked.map(|()| Shown::default()))
}

/// Starts setting up the second factor: a new secret waits for its first code.
pub async fn begin_two_factor(
    State(state): State<UiState>,
    session: Session,
) -> Result<Response, UiError> {
    let begun = totp::begin(&state.web.ctx.store, &session.user).map_err(UiError::from);
    answer(&state, &session, begun.map(|_| Shown::default()))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// Turns the second factor on with a code from the app; shows the recovery codes once.
pub async fn confirm_two_factor(
    State(state): State<UiState>,
    session: Session,
    axum::Form(form): axum::Form<CodeForm>,
) -> Result<Response, UiError> {
    let confirmed = totp::confirm(&state.web.ctx.store, &session.user, &form.code, now())
        .map_err(UiError::from)
        .map(|recovery| Shown {
            recovery,
            ..Shown::default()
        });
    answer(&state, &session, confirmed)
}

#[derive(Deserialize)]
pub struct ConfirmPassword {
    #[serde(default)]
    password: String,
}

/// Turns the second factor off; the password is asked again, so an unattended browser
/// cannot.
pub async fn remove_two_factor(
    State(state): State<UiState>,
    session: Session,
    axum::Form(form): axum::Form<ConfirmPassword>,
) -> Result<Response, UiError> {
    let store = state.web.ctx.store.clone();
    let user = session.user.clone();
    let removed = blocking(move || {
        if passwords::check_password(&store, &user, &form.password)?.is_none() {
            return Err(UserError::Refused(
                "the password is not right: two-factor sign-in stays on".into(),
            ));
        }
        totp::remove(&store, &user)
    })
    .await;
    answer(&state, &session, removed.map(|()| Shown::default()))
}
