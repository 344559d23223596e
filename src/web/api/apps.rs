//! `/api/apps`: add, deploy, roll back, restart, stop, start, env, domains, logs, remove.
//!
//! Each handler parses the request into a typed one and calls one `Apps` operation as the
//! caller. Calls that change an app answer when the operation has finished, with the app's
//! status; with `Accept: text/event-stream` they stream its progress instead, ending with a
//! `result` event (see `web::progress`).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;

use crate::apps::{
    removed_log_heading, AppError, AppStatus, Apps, DeployRequest, EnvChange, NewApp,
};
use crate::bus::Op;
use crate::model::{AppName, ImageRef, Need, Secret};
use crate::store::DeployRecord;
use crate::web::extract::{self, Caller, OptionalJson, Query};
use crate::web::progress::respond;
use crate::web::WebError;

pub(super) fn app_name(raw: &str) -> Result<AppName, WebError> {
    AppName::try_new(raw).map_err(|e| WebError::BadRequest(e.to_string()))
}

fn image_ref(raw: &str) -> Result<ImageRef, WebError> {
    ImageRef::parse(raw).map_err(|e| WebError::BadRequest(e.to_string()))
}

/// Runs `operation` on `app` as `op`, then answers with the app's status (see `respond`).
pub(super) async fn run_on_app<F, Fut, T>(
    apps: &Apps,
    op: Op,
    headers: &HeaderMap,
    app: AppName,
    operation: F,
) -> Result<Response, WebError>
where
    F: FnOnce(Apps, Op, AppName) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, AppError>> + Send + 'static,
    T: Send + 'static,
{
    let bus = apps.bus().clone();
    let apps = apps.clone();
    let running = op.clone();
    respond(&bus, op, headers, StatusCode::OK, async move {
        operation(apps.clone(), running, app.clone()).await?;
        apps.status(&app).await
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    image: String,
    name: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    memory_mb: Option<u64>,
    pids_limit: Option<u64>,
    cpu_shares: Option<u64>,
    registry_username: Option<String>,
    registry_password: Option<String>,
    /// Services beyond what the manifest asks for: `database`, `messagebus`, `storage`.
    #[serde(default)]
    services: BTreeSet<Need>,
    /// Domains besides `<app>.<domain>`.
    #[serde(default)]
    domains: Vec<String>,
}

pub async fn create(
    State(apps): State<Apps>,
    Caller(actor): Caller,
    headers: HeaderMap,
    extract::Json(body): extract::Json<CreateBody>,
) -> Result<Response, WebError> {
    let new = NewApp {
        image: image_ref(&body.image)?,
        name: body.name.as_deref().map(app_name).transpose()?,
        registry_username: body.registry_username,
        registry_password: body.registry_password.map(Secret::new),
        env: body.env,
        memory_mb: body.memory_mb,
        pids_limit: body.pids_limit,
        cpu_shares: body.cpu_shares,
        added_services: body.services,
        domains: body.domains,
    };
    let op = apps.bus().begin(actor);
    let running = op.clone();
    let op_apps = apps.clone();
    respond(apps.bus(), op, &headers, StatusCode::CREATED, async move {
        let (record, _) = op_apps.create(&running, new).await?;
        op_apps.status(&record.name).await
    })
    .await
}

pub async fn list(State(apps): State<Apps>) -> Result<Json<Vec<AppStatus>>, WebError> {
    Ok(Json(apps.list().await?))
}

pub async fn show(
    State(apps): State<Apps>,
    Path(name): Path<String>,
) -> Result<Json<AppStatus>, WebError> {
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
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<DeployBody>,
) -> Result<Response, WebError> {
    let name = app_name(&name)?;
    let body = body.unwrap_or_default();
    let request = DeployRequest {
        image: body.image.as_deref().map(image_ref).transpose()?,
        force: body.force,
    };
    let op = apps.bus().begin(actor);
    run_on_app(&apps, op, &headers, name, |apps, op, name| async move {
        apps.deploy(&op, &name, request).await
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
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<RollbackBody>,
) -> Result<Response, WebError> {
    let name = app_name(&name)?;
    let to = body.and_then(|b| b.revision);
    let op = apps.bus().begin(actor);
    run_on_app(
        &apps,
        op,
        &headers,
        name,
        move |apps, op, name| async move { apps.rollback(&op, &name, to).await },
    )
    .await
}

/// A lifecycle verb's handler: its own route, one operation, the app's status as the answer.
macro_rules! lifecycle {
    ($($verb:ident),+) => {$(
        pub async fn $verb(
            State(apps): State<Apps>,
            Caller(actor): Caller,
            Path(name): Path<String>,
            headers: HeaderMap,
        ) -> Result<Response, WebError> {
            let op = apps.bus().begin(actor);
            run_on_app(&apps, op, &headers, app_name(&name)?, |apps, op, name| async move {
                apps.$verb(&op, &name).await
            })
            .await
        }
    )+};
}

lifecycle!(restart, stop, start, rotate_credentials);

pub async fn deploys(
    State(apps): State<Apps>,
    Path(name): Path<String>,
) -> Result<Json<Vec<DeployView>>, WebError> {
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
) -> Result<Json<BTreeMap<String, String>>, WebError> {
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
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    extract::Json(body): extract::Json<EnvBody>,
) -> Result<Response, WebError> {
    let name = app_name(&name)?;
    let change = EnvChange {
        set: body.set,
        unset: body.unset,
    };
    let op = apps.bus().begin(actor);
    run_on_app(&apps, op, &headers, name, |apps, op, name| async move {
        apps.set_env(&op, &name, change).await
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainBody {
    domain: String,
}

/// A new webhook secret; answers the new webhook URL.
pub async fn rotate_webhook(
    State(apps): State<Apps>,
    Caller(actor): Caller,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, WebError> {
    let name = app_name(&name)?;
    let op = apps.bus().begin(actor);
    let record = apps.rotate_webhook(&op, &name).await?;
    Ok(Json(
        serde_json::json!({ "webhook_url": apps.webhook_url(&record) }),
    ))
}

pub async fn add_domain(
    State(apps): State<Apps>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    extract::Json(body): extract::Json<DomainBody>,
) -> Result<Json<AppStatus>, WebError> {
    let name = app_name(&name)?;
    let op = apps.bus().begin(actor);
    apps.add_domain(&op, &name, &body.domain).await?;
    Ok(Json(apps.status(&name).await?))
}

pub async fn remove_domain(
    State(apps): State<Apps>,
    Caller(actor): Caller,
    Path((name, domain)): Path<(String, String)>,
) -> Result<Json<AppStatus>, WebError> {
    let name = app_name(&name)?;
    let op = apps.bus().begin(actor);
    apps.remove_domain(&op, &name, &domain).await?;
    Ok(Json(apps.status(&name).await?))
}

#[derive(Deserialize)]
pub struct ServicesParams {
    #[serde(default)]
    reveal: bool,
}

/// The app's service accounts; passwords masked unless `?reveal=true` asks for them.
pub async fn services(
    State(apps): State<Apps>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    Query(params): Query<ServicesParams>,
) -> Result<Json<Vec<crate::services::ServiceView>>, WebError> {
    let name = app_name(&name)?;
    let view = apps.service_accounts(&name, params.reveal)?;
    if params.reveal {
        tracing::info!(app = %name, %actor, "service credentials revealed through the API");
    }
    Ok(Json(view))
}

#[derive(Deserialize)]
pub struct RemoveParams {
    #[serde(default)]
    data: bool,
}

pub async fn remove(
    State(apps): State<Apps>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    Query(params): Query<RemoveParams>,
) -> Result<StatusCode, WebError> {
    let op = apps.bus().begin(actor);
    apps.remove(&op, &app_name(&name)?, params.data).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct LogParams {
    tail: Option<usize>,
    #[serde(default)]
    follow: bool,
    /// The last lines of the web container minicloud removed most recently instead.
    #[serde(default)]
    previous: bool,
}

/// The serving revision's log as plain text lines; with `follow`, kept open; with
/// `previous`, the removed container's last lines under a line saying which it was.
pub async fn logs(
    State(apps): State<Apps>,
    Path(name): Path<String>,
    Query(params): Query<LogParams>,
) -> Result<Response, WebError> {
    let name = app_name(&name)?;
    if params.previous {
        let log = apps.removed_log(&name)?.ok_or_else(|| {
            WebError::NotFound(format!(
                "{name} has no removed container's log: minicloud keeps one when it removes a web container (a revision replaced by a deploy, a stopped one recreated)"
            ))
        })?;
        let mut text = format!("[minicloud: {}]\n", removed_log_heading(&log));
        let skip = log
            .lines
            .len()
            .saturating_sub(params.tail.unwrap_or(usize::MAX));
        for line in &log.lines[skip..] {
            text.push_str(line);
            text.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    let lines = apps
        .logs(&name, params.tail.unwrap_or(100), params.follow)
        .await
        .map_err(|e| match e {
            AppError::Invalid(why) => WebError::NotFound(why),
            other => other.into(),
        })?
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
