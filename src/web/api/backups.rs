//! `/api/apps/{name}/backups` (list, back up now, verify, restore, download, the schedule and
//! retention settings), `/api/backups`,
//! `/api/backups/platform` (list, back up now), `/api/backups/key` and `/api/backups/s3/test`.

use std::future::Future;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::backups::{BackupError, Backups, Part, PolicyView};
use crate::bus::Op;
use crate::model::{Actor, AppName, PolicyChange};
use crate::store::BackupRecord;
use crate::web::extract::{self, Caller, OptionalJson};
use crate::web::progress::respond;
use crate::web::WebError;

impl From<BackupError> for WebError {
    fn from(e: BackupError) -> Self {
        let message = e.to_string();
        match e {
            BackupError::NotFound { .. } => Self::NotFound(message),
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

/// Runs one backup operation as the caller: its progress streamed to a client that asks for
/// it, its result answered with `success` otherwise.
async fn operate<T, Fut>(
    backups: Backups,
    actor: Actor,
    headers: &HeaderMap,
    success: StatusCode,
    operation: impl FnOnce(Backups, Op) -> Fut,
) -> Result<Response, WebError>
where
    T: Serialize + Send + 'static,
    Fut: Future<Output = Result<T, BackupError>> + Send + 'static,
{
    let op = backups.begin(actor);
    let bus = backups.bus();
    respond(&bus, op.clone(), headers, success, operation(backups, op)).await
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
    operate(
        backups,
        actor,
        &headers,
        StatusCode::CREATED,
        |b, op| async move { b.run(&op, &app, "manual").await },
    )
    .await
}

/// The app's schedule and retention, with when it is next backed up.
pub async fn settings(
    State(backups): State<Backups>,
    Path(name): Path<String>,
) -> Result<Json<PolicyView>, WebError> {
    Ok(Json(backups.policy(&app_name(&name)?)?))
}

/// Changes the app's schedule and retention: the fields given replace, the others stay
/// (`{"schedule": "off"|"daily"|"HH:MM", "keep_last": 7, "keep_daily": 7, "keep_weekly": 4,
/// "keep_monthly": 6}`). Bad input is a 400 that changes nothing.
pub async fn change_settings(
    State(backups): State<Backups>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    extract::Json(change): extract::Json<PolicyChange>,
) -> Result<Json<PolicyView>, WebError> {
    let app = app_name(&name)?;
    let view = backups.set_policy(&app, &change)?;
    tracing::info!(%actor, %app, "backup settings changed");
    Ok(Json(view))
}

/// Checks the app's newest dump in a scratch database; answers the run with its
/// `verified` outcome (a dump that fails the check is an answer, not an error).
pub async fn verify(
    State(backups): State<Backups>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let app = app_name(&name)?;
    operate(
        backups,
        actor,
        &headers,
        StatusCode::OK,
        |b, op| async move { b.verify(&op, &app).await },
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// Empty or absent: everything the backup holds.
    #[serde(default)]
    parts: Vec<Part>,
    /// A new app to restore into (a clone), instead of the app itself.
    #[serde(default, rename = "as")]
    clone: Option<String>,
}

pub async fn restore(
    State(backups): State<Backups>,
    Caller(actor): Caller,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<RestoreBody>,
) -> Result<Response, WebError> {
    let app = app_name(&name)?;
    let body = body.unwrap_or_default();
    let clone = body.clone.as_deref().map(app_name).transpose()?;
    operate(
        backups,
        actor,
        &headers,
        StatusCode::OK,
        |b, op| async move { b.restore(&op, &app, &id, &body.parts, clone.as_ref()).await },
    )
    .await
}

/// Backup `id` as one `.tar.zst`, streamed as restic reads it.
pub async fn download(
    State(backups): State<Backups>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    archive(&backups, &name, &id).await
}

/// The download's answer, for the API and the pages alike.
pub(in crate::web) async fn archive(
    backups: &Backups,
    name: &str,
    id: &str,
) -> Result<Response, WebError> {
    let app = app_name(name)?;
    let chunks = backups.download(&app, id).await?;
    // The id is one of the app's runs (looked up above): safe in a header.
    let disposition = format!("attachment; filename=\"{app}-{id}.tar.zst\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(chunks)),
    )
        .into_response())
}

/// Backs the platform up now (minicloud's state store: see `backups::platform`); answered
/// like an app's run.
pub async fn run_platform(
    State(backups): State<Backups>,
    Caller(actor): Caller,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    operate(
        backups,
        actor,
        &headers,
        StatusCode::CREATED,
        |b, op| async move { b.run(&op, &AppName::platform(), "manual").await },
    )
    .await
}

/// The platform's runs, newest first.
pub async fn list_platform(
    State(backups): State<Backups>,
) -> Result<Json<Vec<BackupRecord>>, WebError> {
    Ok(Json(backups.list_platform()?))
}

/// Every app's runs and the platform's (`app` is `minicloud`), newest first.
pub async fn list_all(State(backups): State<Backups>) -> Result<Json<Vec<BackupRecord>>, WebError> {
    Ok(Json(backups.list_all()?))
}

/// Reveals the repository password: without it, the backups cannot be read.
pub async fn key(State(backups): State<Backups>) -> Result<Json<serde_json::Value>, WebError> {
    let key = backups.key()?;
    Ok(Json(serde_json::json!({
        "repository": backups.repository_path(),
        // The copy in S3 (same password), as restic names it; its keys are not shown.
        "s3_repository": backups.s3_repository(),
        "password": key.expose(),
    })))
}

/// Tests the S3 destination: writes, reads back and deletes one object, then opens the
/// repository there. 200 with every step whatever the outcome (`ok`, and `advice` when a step
/// failed); 400 when no S3 destination is configured.
pub async fn test_s3(
    State(backups): State<Backups>,
    Caller(actor): Caller,
) -> Result<Json<crate::backups::s3::S3Check>, WebError> {
    let check = backups.test_s3().await?;
    tracing::info!(%actor, ok = check.ok, destination = %check.destination, "S3 destination tested");
    Ok(Json(check))
}
