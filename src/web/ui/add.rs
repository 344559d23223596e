//! Adding an app: paste an image reference (a Docker Hub page URL too), see what its manifest
//! declares before anything runs, choose the name, memory, variables, extra domains and
//! services the manifest does not ask for, then deploy with live progress.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::UiError;
use super::forms;
use super::pages::{app_name, image_ref};
use super::session::Session;
use super::views::{self, Chrome};
use super::UiState;
use crate::apps::{AppError, NewApp};
use crate::model::{ImageRef, Manifest, Need};
use crate::web::extract::Caller;
use crate::web::progress;

/// What the image's manifest declares, in words.
pub struct Preview {
    pub name: String,
    pub port: u16,
    pub needs: Vec<String>,
    pub health: String,
    pub runners: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl From<&Manifest> for Preview {
    fn from(m: &Manifest) -> Self {
        Self {
            name: m.name.to_string(),
            port: m.http_port(),
            needs: m.needs.iter().map(|n| n.to_string()).collect(),
            health: m
                .health
                .as_ref()
                .map_or_else(|| "any answer on the port".into(), |h| h.path.clone()),
            runners: m
                .runners
                .iter()
                .map(|r| format!("{}: {}", r.name, r.command.join(" ")))
                .collect(),
            env: m.env.clone().into_iter().collect(),
        }
    }
}

/// A service checkbox: what it is called, whether the manifest asks for it already.
pub struct ServiceChoice {
    pub need: &'static str,
    pub label: &'static str,
    pub declared: bool,
}

fn service_choices(declared: &BTreeSet<Need>) -> Vec<ServiceChoice> {
    Need::ALL
        .into_iter()
        .map(|need| ServiceChoice {
            need: need.as_str(),
            label: match need {
                Need::Database => "A database (MariaDB): DATABASE_URL",
                Need::Messagebus => "A message bus (RabbitMQ): AMQP_URL",
                Need::Storage => "Storage: a directory at /data",
            },
            declared: declared.contains(&need),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "new_app.html")]
pub struct NewAppPage {
    pub chrome: Chrome,
    pub image: String,
    pub preview: Option<Preview>,
    /// Why there is no preview.
    pub error: String,
    pub services: Vec<ServiceChoice>,
}

#[derive(Deserialize)]
pub struct PreviewQuery {
    #[serde(default)]
    image: String,
}

/// The form; with `?image=`, first what the image declares (the image is pulled for that).
pub async fn new_app(
    State(state): State<UiState>,
    session: Session,
    axum::extract::Query(query): axum::extract::Query<PreviewQuery>,
) -> Result<Html<String>, UiError> {
    let image = query.image.trim().to_owned();
    let (preview, error) = match forms::optional(&image) {
        None => (None, String::new()),
        Some(raw) => match ImageRef::parse(raw) {
            Err(e) => (None, e.to_string()),
            Ok(reference) => match state.web.apps.preview(&reference).await {
                Ok(manifest) => (Some(manifest), String::new()),
                Err(e) => (None, crate::web::WebError::from(e).to_string()),
            },
        },
    };
    let declared = preview
        .as_ref()
        .map(|m| m.needs.clone())
        .unwrap_or_default();
    Ok(views::render(&NewAppPage {
        chrome: Chrome::new(&session),
        image,
        preview: preview.as_ref().map(Preview::from),
        error,
        services: service_choices(&declared),
    })?)
}

#[derive(Deserialize)]
pub struct CreateForm {
    image: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    memory_mb: String,
    #[serde(default)]
    env: String,
    #[serde(default)]
    domains: String,
    #[serde(default)]
    database: bool,
    #[serde(default)]
    messagebus: bool,
    #[serde(default)]
    storage: bool,
}

impl CreateForm {
    fn services(&self) -> BTreeSet<Need> {
        [
            (self.database, Need::Database),
            (self.messagebus, Need::Messagebus),
            (self.storage, Need::Storage),
        ]
        .into_iter()
        .filter_map(|(on, need)| on.then_some(need))
        .collect()
    }
}

pub async fn create_app(
    State(state): State<UiState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CreateForm>,
) -> Result<Response, UiError> {
    let bad = UiError::BadRequest;
    let new = NewApp {
        image: image_ref(form.image.trim())?,
        name: forms::optional(&form.name).map(app_name).transpose()?,
        registry_username: None,
        registry_password: None,
        env: forms::env_lines(&form.env).map_err(bad)?,
        memory_mb: forms::memory_mb(&form.memory_mb).map_err(bad)?,
        pids_limit: None,
        cpu_shares: None,
        added_services: form.services(),
        domains: forms::lines(&form.domains),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_says_what_the_manifest_declares_and_its_needs_are_ticked() {
        let manifest = crate::model::manifest::parse(
            "cloud_manifest.yml",
            "name: shop\nexpose: [{proto: http, port: 3000}]\nneeds: [database]\n\
             health: {path: /up}\nrunners:\n- name: worker\n  command: [./worker, --fast]\n\
             env: {MODE: prod}\n",
        )
        .unwrap();
        let p = Preview::from(&manifest);
        assert_eq!((p.name.as_str(), p.port), ("shop", 3000));
        assert_eq!(p.needs, ["database"]);
        assert_eq!(p.health, "/up");
        assert_eq!(p.runners, ["worker: ./worker --fast"]);
        assert_eq!(p.env, [("MODE".to_owned(), "prod".to_owned())]);
        let choices = service_choices(&manifest.needs);
        let declared: Vec<&str> = choices
            .iter()
            .filter(|c| c.declared)
            .map(|c| c.need)
            .collect();
        assert_eq!(declared, ["database"]);
        assert_eq!(choices.len(), 3);
    }

    #[test]
    fn ticked_boxes_become_services() {
        let form: CreateForm =
            serde_urlencoded::from_str("image=x%2Fy%3A1&storage=true&database=true").unwrap();
        assert_eq!(form.services(), [Need::Database, Need::Storage].into());
    }
}
