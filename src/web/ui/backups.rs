//! The backups pages: every run of every app (`/backups`), one app's runs with "back up now",
//! restore and download (`/apps/{name}/backups`). The same operations the API calls.

use std::future::Future;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, Response};
use serde::Deserialize;

use super::error::UiError;
use super::pages::run;
use super::session::Session;
use super::views::{self, Chrome, RestoreStatus};
use super::UiState;
use crate::backups::{BackupError, Backups, Part};
use crate::bus::Op;
use crate::model::{format_time, Actor, AppName};
use crate::store::{BackupRecord, BackupState, Verification};
use crate::web::extract::Caller;

/// A run as a row.
pub struct RunView {
    pub app: String,
    pub id: String,
    pub trigger: String,
    pub started_at: String,
    /// `running`, `succeeded`, `partial`, `failed` or `missed`: also the label's class.
    pub state: String,
    pub reason: String,
    pub parts: String,
    /// "12.3 MB read, 0.4 MB added".
    pub size: String,
    pub took: String,
    pub restorable: bool,
    /// "verified … ago: 3 tables, 120 rows", or why the check failed; empty if never checked.
    pub verified: String,
    /// A platform run (minicloud's state store): it has no app page.
    pub platform: bool,
}

impl From<&BackupRecord> for RunView {
    fn from(r: &BackupRecord) -> Self {
        let (state, reason) = match &r.state {
            BackupState::Running => ("running", String::new()),
            BackupState::Succeeded => ("succeeded", String::new()),
            BackupState::Partial { reason } => ("partial", reason.clone()),
            BackupState::Failed { reason } => ("failed", reason.clone()),
            BackupState::Missed { reason } => ("missed", reason.clone()),
        };
        let read: u64 = r.parts.iter().map(|p| p.bytes).sum();
        let added: u64 = r.parts.iter().map(|p| p.added).sum();
        Self {
            app: r.app.to_string(),
            id: r.id.clone(),
            trigger: r.trigger.clone(),
            started_at: format_time(r.started_at),
            state: state.into(),
            reason,
            parts: r
                .parts
                .iter()
                .map(|p| p.part.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            size: if r.parts.is_empty() {
                String::new()
            } else {
                format!("{} read, {} added", megabytes(read), megabytes(added))
            },
            took: r
                .finished_at
                .map(|f| format!("{} s", f - r.started_at))
                .unwrap_or_default(),
            // A partial run's local copy is whole.
            restorable: r.state.is_restorable(),
            verified: r
                .verified
                .as_ref()
                .map(Verification::describe)
                .unwrap_or_default(),
            platform: r.app.is_platform(),
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

#[derive(Template)]
#[template(path = "backups.html")]
pub struct AllBackups {
    pub chrome: Chrome,
    pub runs: Vec<RunView>,
}

#[derive(Template)]
#[template(path = "app_backups.html")]
pub struct AppBackups {
    pub chrome: Chrome,
    pub name: String,
    /// A whole-box restore's data still to come back, or its failure.
    pub restore: Option<RestoreStatus>,
    pub runs: Vec<RunView>,
}

fn app_name(raw: &str) -> Result<AppName, UiError> {
    AppName::try_new(raw).map_err(|e| UiError::BadRequest(e.to_string()))
}

fn backups_page(name: &AppName) -> String {
    format!("/apps/{name}/backups")
}

pub async fn all(State(state): State<UiState>, session: Session) -> Result<Html<String>, UiError> {
    let runs = state.web.backups.list_all()?;
    Ok(views::render(&AllBackups {
        chrome: Chrome::new(&session),
        runs: runs.iter().map(RunView::from).collect(),
    })?)
}

pub async fn of_app(
    State(state): State<UiState>,
    session: Session,
    Path(name): Path<String>,
) -> Result<Html<String>, UiError> {
    let name = app_name(&name)?;
    let runs = state.web.backups.list(&name)?;
    let pending = state.web.ctx.store.pending_restore(&name)?;
    Ok(views::render(&AppBackups {
        chrome: Chrome::new(&session),
        name: name.to_string(),
        restore: pending.as_ref().map(RestoreStatus::new),
        runs: runs.iter().map(RunView::from).collect(),
    })?)
}

/// Runs one backup operation on the app `name` (see `pages::run`), then shows its backups.
async fn on_app<T, Fut>(
    state: &UiState,
    actor: Actor,
    headers: &HeaderMap,
    name: &str,
    operation: impl FnOnce(Backups, Op, AppName) -> Fut + Send + 'static,
) -> Result<Response, UiError>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, BackupError>> + Send + 'static,
{
    let name = app_name(name)?;
    let backups = state.web.backups.clone();
    run(
        state,
        actor,
        headers,
        backups_page(&name),
        |op| async move { operation(backups, op, name).await.map(drop) },
    )
    .await
}

pub async fn back_up(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    on_app(&state, actor, &headers, &name, |b, op, app| async move {
        b.run(&op, &app, "manual").await
    })
    .await
}

pub async fn verify(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    on_app(&state, actor, &headers, &name, |b, op, app| async move {
        b.verify(&op, &app).await
    })
    .await
}

#[derive(Deserialize)]
pub struct RestoreForm {
    confirm: String,
    /// Empty: everything the backup holds.
    #[serde(default)]
    part: String,
    /// A new app to restore into (a clone); empty: the app itself.
    #[serde(default, rename = "as")]
    clone: String,
}

pub async fn restore(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<RestoreForm>,
) -> Result<Response, UiError> {
    let name = app_name(&name)?;
    if form.confirm.trim() != name.as_str() {
        return Err(UiError::BadRequest(format!(
            "Nothing was restored: type the app's name, {name}, to restore it."
        )));
    }
    let parts: Vec<Part> = match form.part.trim() {
        "" => Vec::new(),
        one => vec![
            serde_json::from_value(serde_json::Value::from(one)).map_err(|_| {
                UiError::BadRequest(format!(
                    "'{one}' is no part of a backup: choose database, storage or queues"
                ))
            })?,
        ],
    };
    let clone = super::forms::optional(&form.clone)
        .map(app_name)
        .transpose()?;
    let next = backups_page(clone.as_ref().unwrap_or(&name));
    let backups = state.web.backups.clone();
    run(&state, actor, &headers, next, |op| async move {
        backups
            .restore(&op, &name, &id, &parts, clone.as_ref())
            .await
            .map(drop)
    })
    .await
}

pub async fn download(
    State(state): State<UiState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, UiError> {
    Ok(crate::web::api::backups::archive(&state.web.backups, &name, &id).await?)
}
