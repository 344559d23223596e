//! The backups pages: every run of every app (`/backups`), one app's runs with "back up now",
//! restore, download and its schedule and retention form (`/apps/{name}/backups`). The same
//! operations the API calls.

use std::future::Future;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::UiError;
use super::pages::run;
use super::session::Session;
use super::views::{self, Chrome, RestoreStatus};
use super::UiState;
use crate::backups::{BackupError, Backups, Part, PolicyView};
use crate::bus::Op;
use crate::model::{format_time, Actor, AppName, PolicyChange, Schedule};
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
    pub policy: PolicyForm,
}

/// The schedule and retention form, filled in with the app's policy.
pub struct PolicyForm {
    /// `off`, `daily` or `time`: the chosen option.
    pub schedule: &'static str,
    /// `HH:MM` when a time is set; else empty.
    pub time: String,
    /// The time `daily` stands for (`HH:MM`, UTC).
    pub daily_at: String,
    pub keep_last: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    /// When the next scheduled backup runs, or why none will.
    pub next: String,
}

impl From<&PolicyView> for PolicyForm {
    fn from(v: &PolicyView) -> Self {
        let p = &v.policy;
        let (schedule, time) = match p.schedule {
            Schedule::Off => ("off", String::new()),
            Schedule::Daily => ("daily", String::new()),
            Schedule::At(_) => ("time", p.schedule.to_string()),
        };
        let next = match (v.next_run, p.schedule) {
            (_, Schedule::Off) => "No scheduled backup: the schedule is off.".to_owned(),
            (None, _) => {
                "No scheduled backup: the app has no database or storage to back up.".to_owned()
            }
            (Some(at), _) if at <= crate::model::now() => {
                "Next scheduled backup: due now (within a minute).".to_owned()
            }
            (Some(at), _) => format!("Next scheduled backup: {} UTC.", format_time(at)),
        };
        Self {
            schedule,
            time,
            daily_at: v.daily_at.clone(),
            keep_last: p.keep_last,
            keep_daily: p.keep_daily,
            keep_weekly: p.keep_weekly,
            keep_monthly: p.keep_monthly,
            next,
        }
    }
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
    let policy = state.web.backups.policy(&name)?;
    Ok(views::render(&AppBackups {
        chrome: Chrome::new(&session),
        name: name.to_string(),
        restore: pending.as_ref().map(RestoreStatus::new),
        runs: runs.iter().map(RunView::from).collect(),
        policy: PolicyForm::from(&policy),
    })?)
}

/// What the schedule and retention form sends.
#[derive(Deserialize)]
pub struct SettingsForm {
    /// `off`, `daily` or `time` (then `time` says when).
    schedule: String,
    #[serde(default)]
    time: String,
    #[serde(default)]
    keep_last: String,
    #[serde(default)]
    keep_daily: String,
    #[serde(default)]
    keep_weekly: String,
    #[serde(default)]
    keep_monthly: String,
}

impl SettingsForm {
    /// The change the form asks for (a blank count keeps what is set); the values are
    /// checked by the operation, as the API's are.
    fn change(&self) -> Result<PolicyChange, String> {
        let count = |field: &str, raw: &str| {
            super::forms::optional(raw)
                .map(|v| {
                    v.parse::<i64>().map_err(|_| {
                        format!("{field} must be a whole number from 0 to 1000, not {v:?}")
                    })
                })
                .transpose()
        };
        let schedule = match self.schedule.trim() {
            "time" => super::forms::optional(&self.time)
                .ok_or("Choose the time of day (UTC) for the daily backup, or another schedule.")?
                .to_owned(),
            other => other.to_owned(),
        };
        Ok(PolicyChange {
            schedule: Some(schedule),
            keep_last: count("keep_last", &self.keep_last)?,
            keep_daily: count("keep_daily", &self.keep_daily)?,
            keep_weekly: count("keep_weekly", &self.keep_weekly)?,
            keep_monthly: count("keep_monthly", &self.keep_monthly)?,
        })
    }
}

/// Changes the app's schedule and retention, then shows its backups again.
pub async fn change_settings(
    State(state): State<UiState>,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<SettingsForm>,
) -> Result<Response, UiError> {
    let name = app_name(&name)?;
    let change = form.change().map_err(|why| {
        UiError::BadRequest(format!(
            "The backup policy of {name} was not changed: {why}"
        ))
    })?;
    state.web.backups.set_policy(&name, &change)?;
    Ok(Redirect::to(&backups_page(&name)).into_response())
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
