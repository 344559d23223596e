//! `/api/apps`: add, deploy, roll back, restart, stop, start, env, domains, logs, remove.
//!
//! Calls that deploy answer when the deploy has finished, with the app's status; with
//! `Accept: text/event-stream` they stream its progress instead, ending with a `result` event.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::ApiError;
use crate::apps::{AppError, AppStatus, Apps, Deployed, NewApp};
use crate::model::image_ref::ImageRef;
use crate::model::name::AppName;
use crate::store::{DeployRecord, RegistryCredentials};

fn app_name(raw: &str) -> Result<AppName, ApiError> {
    AppName::try_new(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn image_ref(raw: &str) -> Result<ImageRef, ApiError> {
    ImageRef::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    image: String,
    name: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    memory_mb: Option<u64>,
    registry_username: Option<String>,
    registry_password: Option<String>,
}

pub async fn create(
    State(apps): State<Apps>,
    headers: HeaderMap,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let name = body.name.as_deref().map(app_name).transpose()?;
    let registry_auth = match (body.registry_username, body.registry_password) {
        (Some(username), Some(password)) => Some(RegistryCredentials {
            username,
            password: crate::model::secret::Secret::new(password),
        }),
        (None, None) => None,
        _ => {
            return Err(ApiError::BadRequest(
                "give both registry_username and registry_password, or neither".into(),
            ))
        }
    };
    if body.memory_mb.is_some_and(|m| !(16..=65536).contains(&m)) {
        return Err(ApiError::BadRequest(
            "memory_mb must be between 16 and 65536".into(),
        ));
    }
    let new = NewApp {
        image: image_ref(&body.image)?,
        name: name.clone(),
        registry_auth,
        env: body.env,
        memory_mb: body.memory_mb,
    };
    let follow_app = name.clone();
    let op_apps = apps.clone();
    respond(
        &apps,
        &headers,
        follow_app,
        StatusCode::CREATED,
        async move {
            let (record, _) = op_apps.create(new).await?;
            op_apps.status_now(&record.name).await
        },
    )
    .await
}

pub async fn list(State(apps): State<Apps>) -> Result<Json<Vec<AppStatus>>, ApiError> {
    Ok(Json(apps.list().await?))
}

pub async fn show(
    State(apps): State<Apps>,
    Path(name): Path<String>,
) -> Result<Json<AppStatus>, ApiError> {
    Ok(Json(apps.status(&app_name(&name)?).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    image: Option<String>,
    #[serde(default)]
    force: bool,
}

pub async fn deploy(
    State(apps): State<Apps>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Option<Json<DeployBody>>,
) -> Result<Response, ApiError> {
    let name = app_name(&name)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let image = body.image.as_deref().map(image_ref).transpose()?;
    let op_apps = apps.clone();
    let op_name = name.clone();
    respond(&apps, &headers, Some(name), StatusCode::OK, async move {
        op_apps.deploy(&op_name, image, body.force, "api").await?;
        op_apps.status_now(&op_name).await
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    revision: Option<u64>,
}

pub async fn rollback(
    State(apps): State<Apps>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Option<Json<RollbackBody>>,
) -> Result<Response, ApiError> {
    let name = app_name(&name)?;
    let revision = body.and_then(|Json(b)| b.revision);
    let op_apps = apps.clone();
    let op_name = name.clone();
    respond(&apps, &headers, Some(name), StatusCode::OK, async move {
        op_apps.rollback(&op_name, revision).await?;
        op_apps.status_now(&op_name).await
    })
    .await
}

/// `restart`, `stop` and `start`.
pub async fn lifecycle(
    State(apps): State<Apps>,
    Path((name, verb)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = app_name(&name)?;
    let op_apps = apps.clone();
    let op_name = name.clone();
    let op = async move {
        match verb.as_str() {
            "restart" => op_apps.restart(&op_name).await.map(drop)?,
            "stop" => op_apps.stop(&op_name).await?,
            "start" => op_apps.start(&op_name).await.map(drop)?,
            "rotate-credentials" => op_apps.rotate_credentials(&op_name).await.map(drop)?,
            other => {
                return Err(AppError::Invalid(format!(
                    "unknown action '{other}' (expected restart, stop, start or rotate-credentials)"
                )))
            }
        }
        op_apps.status_now(&op_name).await
    };
    respond(&apps, &headers, Some(name), StatusCode::OK, op).await
}

pub async fn deploys(
    State(apps): State<Apps>,
    Path(name): Path<String>,
) -> Result<Json<Vec<DeployView>>, ApiError> {
    let deploys = apps.deploys(&app_name(&name)?)?;
    Ok(Json(deploys.iter().map(DeployView::from).collect()))
}

/// A deploy as the API shows it: no environment (it holds credentials).
#[derive(serde::Serialize)]
pub struct DeployView {
    revision: u64,
    image: String,
    digest: String,
    trigger: String,
    started_at: i64,
    finished_at: Option<i64>,
    #[serde(flatten)]
    outcome: crate::store::DeployOutcome,
}

impl From<&DeployRecord> for DeployView {
    fn from(d: &DeployRecord) -> Self {
        Self {
            revision: d.revision,
            image: d.image.canonical(),
            digest: d.digest.clone(),
            trigger: d.trigger.clone(),
            started_at: d.started_at,
            finished_at: d.finished_at,
            outcome: d.outcome.clone(),
        }
    }
}

pub async fn get_env(
    State(apps): State<Apps>,
    Path(name): Path<String>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    Ok(Json(apps.app_record(&app_name(&name)?)?.env))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvBody {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    unset: Vec<String>,
}

pub async fn patch_env(
    State(apps): State<Apps>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<EnvBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let name = app_name(&name)?;
    let Json(body) = body?;
    let op_apps = apps.clone();
    let op_name = name.clone();
    respond(&apps, &headers, Some(name), StatusCode::OK, async move {
        op_apps.set_env(&op_name, body.set, body.unset).await?;
        op_apps.status_now(&op_name).await
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainBody {
    domain: String,
}

pub async fn add_domain(
    State(apps): State<Apps>,
    Path(name): Path<String>,
    body: Result<Json<DomainBody>, JsonRejection>,
) -> Result<Json<AppStatus>, ApiError> {
    let name = app_name(&name)?;
    let Json(body) = body?;
    apps.add_domain(&name, &body.domain).await?;
    Ok(Json(apps.status_now(&name).await?))
}

pub async fn remove_domain(
    State(apps): State<Apps>,
    Path((name, domain)): Path<(String, String)>,
) -> Result<Json<AppStatus>, ApiError> {
    let name = app_name(&name)?;
    apps.remove_domain(&name, &domain).await?;
    Ok(Json(apps.status_now(&name).await?))
}

#[derive(Deserialize)]
pub struct ServicesParams {
    #[serde(default)]
    reveal: bool,
}

/// The app's service accounts; passwords masked unless `?reveal=true` asks for them.
pub async fn services(
    State(apps): State<Apps>,
    Path(name): Path<String>,
    Query(params): Query<ServicesParams>,
) -> Result<Json<Vec<crate::services::ServiceView>>, ApiError> {
    let name = app_name(&name)?;
    apps.app_record(&name)?;
    if params.reveal {
        tracing::info!(app = %name, "service credentials revealed through the API");
    }
    let view = apps
        .services
        .view(&name, params.reveal)
        .map_err(AppError::from)?;
    Ok(Json(view))
}

#[derive(Deserialize)]
pub struct RemoveParams {
    #[serde(default)]
    data: bool,
}

pub async fn remove(
    State(apps): State<Apps>,
    Path(name): Path<String>,
    Query(params): Query<RemoveParams>,
) -> Result<StatusCode, ApiError> {
    apps.remove(&app_name(&name)?, params.data).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct LogParams {
    tail: Option<usize>,
    #[serde(default)]
    follow: bool,
}

/// The serving revision's log as plain text lines; with `follow`, kept open.
pub async fn logs(
    State(apps): State<Apps>,
    Path(name): Path<String>,
    Query(params): Query<LogParams>,
) -> Result<Response, ApiError> {
    let name = app_name(&name)?;
    let record = apps.app_record(&name)?;
    let container = apps
        .serving_container(&record)
        .ok_or_else(|| ApiError::NotFound(format!("{name} has no revision to show logs of")))?;
    let docker = apps.docker().await.map_err(AppError::from)?;
    let lines = docker
        .logs(&container, Some(params.tail.unwrap_or(100)), params.follow)
        .map(|line| match line {
            Ok(mut l) => {
                l.push('\n');
                Ok::<_, Infallible>(l)
            }
            Err(e) => Ok(format!("[minicloud: the log stream ended: {e}]\n")),
        });
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(lines),
    )
        .into_response())
}

/// Runs `op` and answers with its status as JSON, or streams the app's events while it runs
/// when the client asked for `text/event-stream`.
async fn respond(
    apps: &Apps,
    headers: &HeaderMap,
    app: Option<AppName>,
    success: StatusCode,
    op: impl Future<Output = Result<AppStatus, AppError>> + Send + 'static,
) -> Result<Response, ApiError> {
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_stream {
        let status = op.await?;
        return Ok((success, Json(status)).into_response());
    }
    let (tx, rx) = mpsc::channel::<Event>(64);
    let mut events = apps.events.subscribe();
    let forward_tx = tx.clone();
    let forward = tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            };
            // Without a name (apps add IMAGE), the first app that reports is this one.
            if app.as_ref().is_some_and(|a| a != event.app()) {
                continue;
            }
            let last = event.is_final();
            let sse = Event::default().event("progress").json_data(&event);
            if let Ok(sse) = sse {
                if forward_tx.send(sse).await.is_err() {
                    break;
                }
            }
            if last {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let result = op.await;
        // Let the last progress events through before the result.
        let _ = tokio::time::timeout(Duration::from_millis(500), forward).await;
        let data = match result {
            Ok(status) => serde_json::json!({ "ok": true, "app": status }),
            Err(e) => {
                let (code, message) = ApiError::from(e).status_and_message();
                serde_json::json!({ "ok": false, "status": code.as_u16(), "error": message })
            }
        };
        if let Ok(event) = Event::default().event("result").json_data(data) {
            let _ = tx.send(event).await;
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `Deployed` for the webhook's answer.
pub fn describe(deployed: &Deployed) -> String {
    match deployed {
        Deployed::New(rev) => format!("deployed revision {rev}"),
        Deployed::Unchanged(rev) => format!("revision {rev} already runs this image"),
    }
}
