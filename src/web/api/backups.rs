//! `/api/apps/{name}/backups` (list, back up now, restore) and `/api/backups/key`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;

use crate::backups::{BackupError, Backups, Part};
use crate::model::AppName;
use crate::store::BackupRecord;
use crate::web::extract::{Caller, OptionalJson};
use crate::web::progress::respond;
use crate::web::WebError;

impl From<BackupError> for WebError {
    fn from(e: BackupError) -> Self {
        let message = e.to_string();
        match e {
            BackupError::AppNotFound(_) | BackupError::NotFound { .. } => Self::NotFound(message),
            BackupError::Invalid(_) => Self::BadRequest(message),
            BackupError::Busy { .. } => Self::Conflict(message),
            BackupError::App(e) => e.into(),
            BackupError::Store(e) => e.into(),
            BackupError::Service(e) if e.is_unreachable() => Self::Unavailable(message),
            BackupError::Database { .. } | BackupError::Service(_) => Self::Unavailable(message),
            BackupError::Tool { .. } | BackupError::Io { .. } => Self::Unprocessable(message),
        }
    }
}

fn app_name(raw: &str) -> Result<AppName, WebError> {
    AppName::try_new(raw).map_err(|e| WebError::BadRequest(e.to_string()))
}

pub async fn list(
    State(backups): State<Backups>,
    Path(name): Path<String>,
) -> Result<Json<Vec<BackupRecord>>, WebError> {
    Ok(Json(backups.list(&app_name(&name)?)?))
}

/// Backs the app up now. A run that failed is still a run: it answers 201 with its record
/// (state `failed` and the reason); errors are what kept a run from starting.
pub async fn run(
    State(backups): State<Backups>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let app = app_name(&name)?;
    let op = backups.begin(actor);
    let running = op.clone();
    respond(
        &backups.bus(),
        op,
        &headers,
        StatusCode::CREATED,
        async move { backups.run(&running, &app, "manual").await },
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// Empty or absent: everything the backup holds.
    #[serde(default)]
    parts: Vec<Part>,
}

pub async fn restore(
    State(backups): State<Backups>,
    Caller(actor): Caller,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<RestoreBody>,
) -> Result<Response, WebError> {
    let app = app_name(&name)?;
    let parts = body.unwrap_or_default().parts;
    let op = backups.begin(actor);
    let running = op.clone();
    respond(&backups.bus(), op, &headers, StatusCode::OK, async move {
        backups.restore(&running, &app, &id, &parts).await
    })
    .await
}

/// Reveals the repository password: without it, the backups cannot be read.
pub async fn key(State(backups): State<Backups>) -> Result<Json<serde_json::Value>, WebError> {
    let key = backups.key()?;
    Ok(Json(serde_json::json!({
        "repository": backups.repository_path(),
        "password": key.expose(),
    })))
}
