//! The app page's forms beyond the lifecycle: attach and detach services, paste many
//! variables at once (rotating credentials and the webhook secret take only the app's name:
//! `pages`). Each calls one `Apps`
//! operation (see `pages::on_app`) and shows the app again.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::error::UiError;
use super::forms;
use super::pages::on_app;
use super::UiState;
use crate::apps::EnvChange;
use crate::model::Need;
use crate::web::extract::Caller;

#[derive(Deserialize)]
pub struct ServiceForm {
    service: String,
    /// Detach only: delete its data too.
    #[serde(default)]
    data: bool,
}

fn need(form: &ServiceForm) -> Result<Need, UiError> {
    Need::parse(form.service.trim())
        .ok_or_else(|| UiError::BadRequest("Choose a database, a message bus or storage.".into()))
}

pub async fn attach_service(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ServiceForm>,
) -> Result<Response, UiError> {
    let need = need(&form)?;
    on_app(
        &state,
        actor,
        &headers,
        &name,
        move |apps, op, name| async move { apps.attach(&op, &name, need).await },
    )
    .await
}

pub async fn detach_service(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ServiceForm>,
) -> Result<Response, UiError> {
    let need = need(&form)?;
    on_app(
        &state,
        actor,
        &headers,
        &name,
        move |apps, op, name| async move { apps.detach(&op, &name, need, form.data).await },
    )
    .await
}

#[derive(Deserialize)]
pub struct BulkEnvForm {
    #[serde(default)]
    lines: String,
}

/// `KEY=VALUE` lines pasted at once: set together, one redeploy.
pub async fn paste_env(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<BulkEnvForm>,
) -> Result<Response, UiError> {
    let change = EnvChange {
        set: forms::env_lines(&form.lines).map_err(UiError::BadRequest)?,
        unset: Vec::new(),
    };
    on_app(
        &state,
        actor,
        &headers,
        &name,
        |apps, op, name| async move { apps.set_env(&op, &name, change).await },
    )
    .await
}
