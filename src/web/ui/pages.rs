//! The pages' handlers: read a form, call the operation the API calls (as the signed-in
//! user), then redirect to the page that shows the result. A form sent by the page's script
//! with `Accept: text/event-stream` gets the operation's progress instead (`web::progress`).

use std::future::Future;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::error::UiError;
use super::forms;
use super::session::Session;
use super::views::{self, AppView, CertView, Chrome, DeployView, RouteView};
use super::UiState;
use crate::apps::{AppError, Apps, DeployRequest, EnvChange, NewApp};
use crate::bus::Op;
use crate::model::{Actor, AppName, ImageRef};
use crate::web::extract::Caller;
use crate::web::progress;
use crate::web::WebError;
use crate::{certs, routes};

fn app_name(raw: &str) -> Result<AppName, UiError> {
    AppName::try_new(raw).map_err(|e| UiError::BadRequest(e.to_string()))
}

fn image_ref(raw: &str) -> Result<ImageRef, UiError> {
    ImageRef::parse(raw).map_err(|e| UiError::BadRequest(e.to_string()))
}

fn app_page(name: &AppName) -> String {
    format!("/apps/{name}")
}

/// Runs one operation as `actor`: streams its progress to a script that asks for it, or waits
/// for it and redirects to `next`.
async fn run<T, E, Fut>(
    state: &UiState,
    actor: Actor,
    headers: &HeaderMap,
    next: String,
    operation: impl FnOnce(Op) -> Fut,
) -> Result<Response, UiError>
where
    T: Serialize + Send + 'static,
    E: Into<WebError> + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let op = state.web.ctx.begin(actor);
    let running = operation(op.clone());
    if progress::wants_stream(headers) {
        return Ok(
            progress::respond(&state.web.ctx.bus, op, headers, StatusCode::OK, running).await?,
        );
    }
    running.await.map_err(|e| UiError::Web(e.into()))?;
    Ok(Redirect::to(&next).into_response())
}

/// Runs one operation on the app `name` (see [`run`]), then shows the app's page.
async fn on_app<T, Fut>(
    state: &UiState,
    actor: Actor,
    headers: &HeaderMap,
    name: &str,
    operation: impl FnOnce(Apps, Op, AppName) -> Fut + Send + 'static,
) -> Result<Response, UiError>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, AppError>> + Send + 'static,
{
    let name = app_name(name)?;
    let apps = state.web.apps.clone();
    run(state, actor, headers, app_page(&name), |op| async move {
        operation(apps, op, name).await.map(drop)
    })
    .await
}

// --- reading

pub async fn dashboard(
    State(state): State<UiState>,
    session: Session,
) -> Result<Html<String>, UiError> {
    let apps = &state.web.apps;
    let mut views = Vec::new();
    for status in apps.list().await? {
        views.push(AppView::new(&status, &apps.deploys(&status.name)?));
    }
    let routes = routes::list_routes(&state.web.ctx)?;
    Ok(views::render(&views::Dashboard {
        chrome: Chrome::new(&session),
        apps: views,
        routes: routes.iter().map(RouteView::from).collect(),
    })?)
}

pub async fn new_app(session: Session) -> Result<Html<String>, UiError> {
    Ok(views::render(&views::NewApp {
        chrome: Chrome::new(&session),
    })?)
}

pub async fn app(
    State(state): State<UiState>,
    session: Session,
    Path(name): Path<String>,
) -> Result<Html<String>, UiError> {
    let apps = &state.web.apps;
    let name = app_name(&name)?;
    let status = apps.status(&name).await?;
    let record = apps.app_record(&name)?;
    let deploys = apps.deploys(&name)?;
    Ok(views::render(&views::AppPage {
        chrome: Chrome::new(&session),
        app: AppView::new(&status, &deploys),
        deploys: deploys
            .iter()
            .rev()
            .map(|d| DeployView::new(d, record.current))
            .collect(),
        env: record.env.into_iter().collect(),
    })?)
}

/// The most lines the logs page shows.
const LOG_LINES: usize = 500;

pub async fn logs(
    State(state): State<UiState>,
    session: Session,
    Path(name): Path<String>,
) -> Result<Html<String>, UiError> {
    let name = app_name(&name)?;
    let lines = match state.web.apps.logs(&name, LOG_LINES, false).await {
        Ok(stream) => {
            stream
                .take(LOG_LINES)
                .map(|line| {
                    line.unwrap_or_else(|e| format!("[minicloud: the log stream ended: {e}]"))
                })
                .collect()
                .await
        }
        // No revision runs yet: an empty log, not an error page.
        Err(AppError::Invalid(why)) => vec![format!("[minicloud: {why}]")],
        Err(e) => return Err(e.into()),
    };
    Ok(views::render(&views::Logs {
        chrome: Chrome::new(&session),
        name: name.to_string(),
        lines,
    })?)
}

pub async fn routes(
    State(state): State<UiState>,
    session: Session,
) -> Result<Html<String>, UiError> {
    let routes = routes::list_routes(&state.web.ctx)?;
    Ok(views::render(&views::Routes {
        chrome: Chrome::new(&session),
        routes: routes.iter().map(RouteView::from).collect(),
    })?)
}

pub async fn certificates(
    State(state): State<UiState>,
    session: Session,
) -> Result<Html<String>, UiError> {
    let certs = certs::list_certificates(&state.web.ctx)?;
    Ok(views::render(&views::Certificates {
        chrome: Chrome::new(&session),
        certs: certs.iter().map(CertView::from).collect(),
    })?)
}

// --- apps

#[derive(Deserialize)]
pub struct CreateForm {
    image: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    memory_mb: String,
    #[serde(default)]
    env: String,
}

pub async fn create_app(
    State(state): State<UiState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CreateForm>,
) -> Result<Response, UiError> {
    let new = NewApp {
        image: image_ref(form.image.trim())?,
        name: forms::optional(&form.name).map(app_name).transpose()?,
        registry_username: None,
        registry_password: None,
        env: forms::env_lines(&form.env).map_err(UiError::BadRequest)?,
        memory_mb: forms::memory_mb(&form.memory_mb).map_err(UiError::BadRequest)?,
        pids_limit: None,
        cpu_shares: None,
    };
    let apps = state.web.apps.clone();
    // Without a script the page waits for the deploy and then shows the app.
    let op = state.web.ctx.begin(actor);
    let running = {
        let op = op.clone();
        async move {
            let (record, _) = apps.create(&op, new).await?;
            Ok::<_, AppError>(serde_json::json!({ "name": record.name }))
        }
    };
    if progress::wants_stream(&headers) {
        return Ok(progress::respond(
            &state.web.ctx.bus,
            op,
            &headers,
            StatusCode::CREATED,
            running,
        )
        .await?);
    }
    let created = running.await?;
    let name = created["name"].as_str().unwrap_or_default();
    Ok(Redirect::to(&format!("/apps/{name}")).into_response())
}

#[derive(Deserialize)]
pub struct DeployForm {
    #[serde(default)]
    image: String,
}

pub async fn deploy(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<DeployForm>,
) -> Result<Response, UiError> {
    let request = DeployRequest {
        image: forms::optional(&form.image).map(image_ref).transpose()?,
        force: false,
    };
    on_app(
        &state,
        actor,
        &headers,
        &name,
        |apps, op, name| async move { apps.deploy(&op, &name, request).await },
    )
    .await
}

#[derive(Deserialize)]
pub struct RollbackForm {
    revision: u64,
}

pub async fn rollback(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<RollbackForm>,
) -> Result<Response, UiError> {
    on_app(
        &state,
        actor,
        &headers,
        &name,
        move |apps, op, name| async move { apps.rollback(&op, &name, Some(form.revision)).await },
    )
    .await
}

/// Restart, stop and start: the app's name is all they take.
macro_rules! lifecycle {
    ($handler:ident, $method:ident) => {
        pub async fn $handler(
            State(state): State<UiState>,
            Caller(actor): Caller,
            Path(name): Path<String>,
            headers: HeaderMap,
        ) -> Result<Response, UiError> {
            on_app(
                &state,
                actor,
                &headers,
                &name,
                |apps, op, name| async move { apps.$method(&op, &name).await },
            )
            .await
        }
    };
}

lifecycle!(restart, restart);
lifecycle!(stop, stop);
lifecycle!(start, start);

#[derive(Deserialize)]
pub struct EnvForm {
    key: String,
    #[serde(default)]
    value: String,
    /// Remove the variable instead of setting it.
    #[serde(default)]
    remove: bool,
}

pub async fn change_env(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<EnvForm>,
) -> Result<Response, UiError> {
    let key = form.key.trim().to_owned();
    let change = if form.remove {
        EnvChange {
            set: Default::default(),
            unset: vec![key],
        }
    } else {
        EnvChange {
            set: [(key, form.value)].into(),
            unset: Vec::new(),
        }
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

#[derive(Deserialize)]
pub struct DomainForm {
    domain: String,
}

pub async fn add_domain(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<DomainForm>,
) -> Result<Response, UiError> {
    on_app(
        &state,
        actor,
        &headers,
        &name,
        move |apps, op, name| async move { apps.add_domain(&op, &name, form.domain.trim()).await },
    )
    .await
}

pub async fn remove_domain(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<DomainForm>,
) -> Result<Response, UiError> {
    on_app(
        &state,
        actor,
        &headers,
        &name,
        |apps, op, name| async move { apps.remove_domain(&op, &name, &form.domain).await },
    )
    .await
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    data: bool,
}

pub async fn delete_app(
    State(state): State<UiState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<DeleteForm>,
) -> Result<Response, UiError> {
    let name = app_name(&name)?;
    if form.confirm.trim() != name.as_str() {
        return Err(UiError::BadRequest(format!(
            "Nothing was deleted: type the app's name, {name}, to delete it."
        )));
    }
    let apps = state.web.apps.clone();
    run(&state, actor, &headers, "/".into(), |op| async move {
        apps.remove(&op, &name, form.data).await
    })
    .await
}

// --- routes and certificates

#[derive(Deserialize)]
pub struct RouteForm {
    host: String,
    upstream: String,
}

pub async fn add_route(
    State(state): State<UiState>,
    Caller(actor): Caller,
    axum::Form(form): axum::Form<RouteForm>,
) -> Result<Response, UiError> {
    let ctx = &state.web.ctx;
    let (host, upstream) = routes::parse_route(form.host.trim(), form.upstream.trim())?;
    let op = ctx.begin(actor);
    routes::set_route(ctx, &op, host, upstream)?;
    Ok(Redirect::to("/routes").into_response())
}

#[derive(Deserialize)]
pub struct HostForm {
    host: String,
}

pub async fn remove_route(
    State(state): State<UiState>,
    Caller(actor): Caller,
    axum::Form(form): axum::Form<HostForm>,
) -> Result<Response, UiError> {
    let ctx = &state.web.ctx;
    let op = ctx.begin(actor);
    routes::remove_route(ctx, &op, &form.host)?;
    Ok(Redirect::to("/routes").into_response())
}

pub async fn renew_certificate(
    State(state): State<UiState>,
    Caller(actor): Caller,
    axum::Form(form): axum::Form<HostForm>,
) -> Result<Response, UiError> {
    let ctx = &state.web.ctx;
    let op = ctx.begin(actor);
    certs::force_renewal(ctx, &op, &form.host)?;
    Ok(Redirect::to("/certificates").into_response())
}
