//! The pages' templates (in `admin-ui/templates/`, compiled in by askama, HTML-escaped by
//! default) and the plain view models they show. Built from what the operations return;
//! nothing here decides anything.

use askama::Template;
use axum::response::Html;

use crate::apps::AppStatus;
use crate::certs::CertificateStatus;
use crate::model::format_time;
use crate::store::{DeployOutcome, DeployRecord, PendingRestore, RouteRecord};
use crate::web::WebError;

use super::session::Session;

pub fn render(template: &impl Template) -> Result<Html<String>, WebError> {
    Ok(Html(template.render()?))
}

/// A state as its serialized word (`running`, `self-signed`): its label and its CSS class.
pub fn state_word(state: impl serde::Serialize) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// What every signed-in page shows around its content.
pub struct Chrome {
    pub user: String,
    pub csrf: String,
    pub css: String,
    pub js: String,
}

impl Chrome {
    pub fn new(session: &Session) -> Self {
        Self {
            user: session.user.clone(),
            csrf: session.csrf.clone(),
            css: super::assets::css_url(),
            js: super::assets::js_url(),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login {
    pub css: String,
    pub js: String,
    pub csrf: String,
    pub username: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub css: String,
    pub status: u16,
    pub title: String,
    pub message: String,
    /// A failed deploy's last log lines.
    pub log_tail: String,
}

/// An app as a row of the dashboard, or the head of its page.
pub struct AppView {
    pub name: String,
    pub state: String,
    pub operation: String,
    pub url: String,
    pub revision: String,
    pub image: String,
    /// RFC 3339: when the serving revision was deployed.
    pub deployed_at: String,
    pub memory: String,
    pub last_error: String,
    pub webhook_url: String,
    /// The stored variables differ from the serving revision's: a change is being deployed.
    pub env_not_deployed: bool,
}

/// A size in MiB, without the unit: one decimal below 10 MiB (a small app's 0.4 is not 0),
/// whole above.
pub fn mebibytes(bytes: u64) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    match mib < 10.0 {
        true => format!("{mib:.1}"),
        false => format!("{mib:.0}"),
    }
}

impl AppView {
    pub fn new(status: &AppStatus, deploys: &[DeployRecord]) -> Self {
        let serving = status
            .revision
            .and_then(|rev| deploys.iter().find(|d| d.revision == rev));
        Self {
            name: status.name.to_string(),
            state: state_word(status.state),
            operation: status.operation.clone().unwrap_or_default(),
            url: status.url.clone(),
            revision: status.revision.map(|r| r.to_string()).unwrap_or_default(),
            image: status
                .serving_image
                .clone()
                .unwrap_or_else(|| status.image.clone()),
            deployed_at: serving
                .map(|d| format_time(d.finished_at.unwrap_or(d.started_at)))
                .unwrap_or_default(),
            memory: match status.memory_bytes {
                Some(b) => format!("{} of {} MiB", mebibytes(b), status.memory_limit_mb),
                None => format!("limit {} MiB", status.memory_limit_mb),
            },
            last_error: status.last_error.clone().unwrap_or_default(),
            webhook_url: status.webhook_url.clone().unwrap_or_default(),
            env_not_deployed: status.env_not_deployed,
        }
    }
}

/// What a whole-box restore still owes an app, as its page and its backups page show it
/// (`restore_status.html`), with the retry the restore API offers.
pub struct RestoreStatus {
    pub app: String,
    pub backup: String,
    /// Empty while the restore is still to come (at minicloud's start); else why it failed.
    pub failed: String,
    pub failed_at: String,
}

impl RestoreStatus {
    pub fn new(pending: &PendingRestore) -> Self {
        Self {
            app: pending.app.to_string(),
            backup: pending.backup.clone(),
            failed: pending
                .failed
                .as_ref()
                .map(|f| f.reason.clone())
                .unwrap_or_default(),
            failed_at: pending
                .failed
                .as_ref()
                .map(|f| format_time(f.at))
                .unwrap_or_default(),
        }
    }
}

pub struct DeployView {
    pub revision: u64,
    pub image: String,
    pub trigger: String,
    pub started_at: String,
    pub outcome: String,
    pub reason: String,
    /// A succeeded revision that is not the serving one can be rolled back to.
    pub can_roll_back: bool,
}

impl DeployView {
    pub fn new(d: &DeployRecord, current: Option<u64>) -> Self {
        let (outcome, reason) = match &d.outcome {
            DeployOutcome::InProgress => ("in progress", String::new()),
            DeployOutcome::Succeeded => ("succeeded", String::new()),
            DeployOutcome::Failed { reason } => ("failed", reason.clone()),
        };
        Self {
            revision: d.revision,
            image: d.image.canonical(),
            trigger: d.trigger.clone(),
            started_at: format_time(d.started_at),
            outcome: outcome.into(),
            reason,
            can_roll_back: d.outcome == DeployOutcome::Succeeded && Some(d.revision) != current,
        }
    }
}

pub struct RouteView {
    pub host: String,
    pub upstream: String,
    pub created_at: String,
}

impl From<&RouteRecord> for RouteView {
    fn from(r: &RouteRecord) -> Self {
        Self {
            host: r.host.to_string(),
            upstream: r.upstream.to_string(),
            created_at: format_time(r.created_at),
        }
    }
}

pub struct CertView {
    pub host: String,
    pub state: String,
    pub not_after: String,
    pub note: String,
}

impl From<&CertificateStatus> for CertView {
    fn from(c: &CertificateStatus) -> Self {
        Self {
            host: c.host.clone(),
            state: state_word(c.state),
            not_after: c.not_after.map(format_time).unwrap_or_default(),
            note: c
                .error
                .clone()
                .or_else(|| c.reason.clone())
                .unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "routes.html")]
pub struct Routes {
    pub chrome: Chrome,
    pub routes: Vec<RouteView>,
}

#[derive(Template)]
#[template(path = "certificates.html")]
pub struct Certificates {
    pub chrome: Chrome,
    pub certs: Vec<CertView>,
}
