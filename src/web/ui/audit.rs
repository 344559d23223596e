//! The Audit log page: who changed what, newest first, with the same filters as
//! `GET /api/audit`.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use super::error::UiError;
use super::session::Session;
use super::views::{self, Chrome};
use super::UiState;
use crate::audit::AuditQuery;
use crate::model::{format_time, now, Actor};
use crate::web::extract::Query;

pub struct EntryView {
    pub at: String,
    pub who: String,
    pub ip: String,
    pub what: String,
    pub ok: bool,
    pub outcome: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub query: AuditQuery,
    pub failed_only: bool,
    pub entries: Vec<EntryView>,
}

fn who(actor: &Actor) -> String {
    match actor {
        Actor::User(name) => format!("user {name}"),
        Actor::Token(name) => format!("token {name}"),
        Actor::Webhook(app) => format!("webhook of {app}"),
        Actor::System => "minicloud".into(),
    }
}

pub async fn show(
    State(state): State<UiState>,
    session: Session,
    Query(query): Query<AuditQuery>,
) -> Result<Html<String>, UiError> {
    let (filter, limit) = query.filter(now()).map_err(UiError::BadRequest)?;
    let entries = state.web.ctx.store.audit(&filter, limit)?;
    Ok(views::render(&AuditPage {
        chrome: Chrome::new(&session),
        failed_only: filter.failed_only,
        entries: entries
            .into_iter()
            .map(|e| EntryView {
                at: format_time(e.at),
                who: who(&e.actor),
                ip: e.ip.unwrap_or_default(),
                what: e.what,
                ok: e.ok,
                outcome: e.outcome,
            })
            .collect(),
        query,
    })?)
}
