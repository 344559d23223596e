//! `/api/apps/{name}/services`: attach a database, message bus or storage the manifest does
//! not ask for, or detach one (its data kept unless `?data=true`). Both redeploy the serving
//! revision and answer with the app's status, or stream progress (see `apps::run_on_app`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::apps::{app_name, run_on_app};
use crate::apps::Apps;
use crate::model::Need;
use crate::web::extract::{self, Caller, Query};
use crate::web::WebError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachBody {
    service: Need,
}

pub async fn attach(
    State(apps): State<Apps>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    extract::Json(body): extract::Json<AttachBody>,
) -> Result<Response, WebError> {
    let op = apps.bus().begin(actor);
    run_on_app(
        &apps,
        op,
        &headers,
        app_name(&name)?,
        move |apps, op, name| async move { apps.attach(&op, &name, body.service).await },
    )
    .await
}

#[derive(Deserialize)]
pub struct DetachParams {
    #[serde(default)]
    data: bool,
}

/// The service a path segment names, or a 400 that lists the three.
pub fn need(raw: &str) -> Result<Need, String> {
    Need::parse(raw)
        .ok_or_else(|| format!("unknown service '{raw}': choose database, messagebus or storage"))
}

pub async fn detach(
    State(apps): State<Apps>,
    Caller(actor): Caller,
    Path((name, service)): Path<(String, String)>,
    Query(params): Query<DetachParams>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let service = need(&service).map_err(WebError::BadRequest)?;
    let op = apps.bus().begin(actor);
    run_on_app(
        &apps,
        op,
        &headers,
        app_name(&name)?,
        move |apps, op, name| async move { apps.detach(&op, &name, service, params.data).await },
    )
    .await
}
