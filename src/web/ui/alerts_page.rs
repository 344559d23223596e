//! The alerts page: incidents (open first, each with its timeline), the channels with how
//! their deliveries go, a form per channel kind, and "send a test". Every action calls what
//! `/api/alerts` calls; a channel's form is read into the same JSON the API takes, so the
//! two are checked by the same code.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::UiError;
use super::session::{Session, CSRF_FIELD};
use super::views::{self, Chrome};
use super::UiState;
use crate::alerts::{self, ChannelView, NewChannel};
use crate::model::format_time;
use crate::store::IncidentRecord;
use crate::web::extract::Caller;

#[derive(Template)]
#[template(path = "alerts.html")]
pub struct AlertsPage {
    pub chrome: Chrome,
    pub incidents: Vec<IncidentView>,
    pub channels: Vec<ChannelRow>,
}

pub struct IncidentView {
    pub id: u64,
    pub title: String,
    pub kind: String,
    /// `open` or `recovered`: also the state label's class.
    pub state: &'static str,
    pub opened_at: String,
    pub resolved_at: String,
    /// (RFC 3339 time, text), oldest first.
    pub timeline: Vec<(String, String)>,
}

impl From<&IncidentRecord> for IncidentView {
    fn from(i: &IncidentRecord) -> Self {
        Self {
            id: i.id,
            title: i.title.clone(),
            kind: serde_json::to_value(i.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            state: if i.resolved_at.is_some() {
                "recovered"
            } else {
                "open"
            },
            opened_at: format_time(i.opened_at),
            resolved_at: i.resolved_at.map(format_time).unwrap_or_default(),
            timeline: i
                .timeline
                .iter()
                .map(|e| (format_time(e.at), e.text.clone()))
                .collect(),
        }
    }
}

pub struct ChannelRow {
    pub id: String,
    pub kind: &'static str,
    pub target: String,
    pub state: &'static str,
    pub error: String,
}

impl From<ChannelView> for ChannelRow {
    fn from(c: ChannelView) -> Self {
        Self {
            error: if c.state == "failing" {
                c.health.last_error.clone().unwrap_or_default()
            } else {
                String::new()
            },
            id: c.id,
            kind: c.kind,
            target: c.target,
            state: c.state,
        }
    }
}

pub async fn page(State(state): State<UiState>, session: Session) -> Result<Html<String>, UiError> {
    let ctx = &state.web.ctx;
    let mut incidents = alerts::list_incidents(ctx)?;
    // Open ones first; each group newest first, as listed.
    incidents.sort_by_key(|i| i.resolved_at.is_some());
    Ok(views::render(&AlertsPage {
        chrome: Chrome::new(&session),
        incidents: incidents.iter().take(50).map(IncidentView::from).collect(),
        channels: alerts::list_channels(ctx)?
            .into_iter()
            .map(ChannelRow::from)
            .collect(),
    })?)
}

/// Turns a channel form into the API's JSON: empty fields left out, `port` a number, `to` a
/// list (commas or spaces between addresses).
pub fn channel_json(form: &BTreeMap<String, String>) -> Result<serde_json::Value, UiError> {
    let mut body = serde_json::Map::new();
    for (key, value) in form {
        let value = value.trim();
        if key == CSRF_FIELD || value.is_empty() {
            continue;
        }
        let json = match key.as_str() {
            "port" => value
                .parse::<u16>()
                .map(Into::into)
                .map_err(|_| UiError::BadRequest(format!("port '{value}' is not a port number")))?,
            "to" => value
                .split([',', ' ', '\n'])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
                .into(),
            _ => value.into(),
        };
        body.insert(key.clone(), json);
    }
    Ok(body.into())
}

pub async fn add_channel(
    State(state): State<UiState>,
    Caller(actor): Caller,
    axum::Form(form): axum::Form<BTreeMap<String, String>>,
) -> Result<Response, UiError> {
    let new: NewChannel = serde_json::from_value(channel_json(&form)?)
        .map_err(|e| UiError::BadRequest(format!("this channel cannot be added: {e}")))?;
    let view = alerts::add_channel(&state.web.ctx, new)?;
    tracing::info!(channel = %view.id, kind = view.kind, %actor, "alert channel added");
    Ok(Redirect::to("/alerts").into_response())
}

#[derive(Deserialize)]
pub struct ChannelForm {
    id: String,
}

pub async fn remove_channel(
    State(state): State<UiState>,
    Caller(actor): Caller,
    axum::Form(form): axum::Form<ChannelForm>,
) -> Result<Response, UiError> {
    alerts::remove_channel(&state.web.ctx, &form.id)?;
    tracing::info!(channel = %form.id, %actor, "alert channel removed");
    Ok(Redirect::to("/alerts").into_response())
}

/// Sends a test now; a failure shows the reason on an error page (the channel shows failing).
pub async fn test_channel(
    State(state): State<UiState>,
    axum::Form(form): axum::Form<ChannelForm>,
) -> Result<Response, UiError> {
    alerts::test_channel(&state.web.ctx, &form.id).await?;
    Ok(Redirect::to("/alerts").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_becomes_the_apis_json() {
        let form: BTreeMap<String, String> = [
            ("csrf", "t"),
            ("kind", "email"),
            ("host", " smtp.example "),
            ("port", "2525"),
            ("username", ""),
            ("to", "a@x.test, b@x.test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            channel_json(&form).unwrap(),
            serde_json::json!({"kind": "email", "host": "smtp.example", "port": 2525,
                               "to": ["a@x.test", "b@x.test"]})
        );
    }
}
