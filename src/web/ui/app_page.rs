//! An app's page: state, history, environment, services with their credentials, domains with
//! their certificates and a DNS check, storage, webhook, and the actions on each.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::error::UiError;
use super::pages::app_name;
use super::session::Session;
use super::views::{self, AppView, Chrome, DeployView, RestoreStatus};
use super::UiState;
use crate::apps::ServiceNeeds;
use crate::certs::{self, CertificateStatus};
use crate::model::{format_time, Need};
use crate::services::ServiceView;
use crate::web::dns;

/// One of the three services, as the page offers it.
pub struct ServiceRow {
    pub need: &'static str,
    pub title: &'static str,
    /// `manifest`: asked for by the image; `attached`: added by the admin; empty: neither.
    pub source: &'static str,
}

impl ServiceRow {
    fn all(needs: &ServiceNeeds) -> Vec<ServiceRow> {
        Need::ALL
            .into_iter()
            .map(|need| ServiceRow {
                need: need.as_str(),
                title: match need {
                    Need::Database => "Database (MariaDB)",
                    Need::Messagebus => "Message bus (RabbitMQ)",
                    Need::Storage => "Storage (/data)",
                },
                source: if needs.declared.contains(&need) {
                    "manifest"
                } else if needs.added.contains(&need) {
                    "attached"
                } else {
                    ""
                },
            })
            .collect()
    }
}

/// A service account with its variables, masked unless revealed.
pub struct AccountView {
    pub kind: String,
    pub user: String,
    pub resource: String,
    pub password: String,
    pub env: Vec<(String, String)>,
    pub rotated_at: String,
}

impl From<ServiceView> for AccountView {
    fn from(v: ServiceView) -> Self {
        Self {
            kind: views::state_word(v.kind),
            user: v.user,
            resource: v.resource,
            password: v.password,
            env: v.env.into_iter().collect(),
            rotated_at: format_time(v.rotated_at.unwrap_or(v.created_at)),
        }
    }
}

/// A name the app answers at: its certificate and where it points.
pub struct DomainRow {
    pub host: String,
    /// `<app>.<domain>`: it cannot be removed.
    pub own: bool,
    pub cert_state: String,
    pub not_after: String,
    /// The last failure in the CA's words, or why there is only a self-signed certificate.
    pub cert_note: String,
    pub points_here: bool,
    pub addresses: String,
    pub expected: String,
    pub advice: String,
}

impl DomainRow {
    fn new(
        check: dns::DnsCheck,
        own: bool,
        cert: Option<&CertificateStatus>,
        target: &str,
    ) -> Self {
        let list = |ips: &[std::net::IpAddr]| {
            ips.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Self {
            own,
            cert_state: cert.map(|c| views::state_word(c.state)).unwrap_or_default(),
            not_after: cert
                .and_then(|c| c.not_after)
                .map(format_time)
                .unwrap_or_default(),
            cert_note: cert
                .and_then(|c| c.error.clone().or_else(|| c.reason.clone()))
                .unwrap_or_default(),
            points_here: check.points_here(),
            addresses: list(&check.actual),
            expected: list(&check.expected),
            advice: check.advice(target),
            host: check.host,
        }
    }
}

#[derive(Template)]
#[template(path = "app.html")]
pub struct AppPage {
    pub chrome: Chrome,
    pub app: AppView,
    /// A whole-box restore's data still to come back, or its failure.
    pub restore: Option<RestoreStatus>,
    pub deploys: Vec<DeployView>,
    pub env: Vec<(String, String)>,
    pub storage: String,
    pub services: Vec<ServiceRow>,
    pub accounts: Vec<AccountView>,
    pub revealed: bool,
    pub domains: Vec<DomainRow>,
}

#[derive(Deserialize, Default)]
pub struct AppQuery {
    /// Show the service accounts' passwords.
    #[serde(default)]
    reveal: bool,
}

fn size(bytes: u64, at_least: bool) -> String {
    let prefix = if at_least { "at least " } else { "" };
    format!("{prefix}{} MiB", views::mebibytes(bytes))
}

pub async fn app(
    State(state): State<UiState>,
    session: Session,
    Path(name): Path<String>,
    Query(query): Query<AppQuery>,
) -> Result<Html<String>, UiError> {
    let web = &state.web;
    let apps = &web.apps;
    let name = app_name(&name)?;
    let status = apps.status(&name).await?;
    let record = apps.app_record(&name)?;
    let deploys = apps.deploys(&name)?;
    let needs = apps.service_needs(&name)?;
    let accounts = apps.service_accounts(&name, query.reveal)?;
    let own = apps.default_host(&name);
    let hosts: Vec<String> = apps
        .hosts(&record)
        .iter()
        .map(|h| h.as_str().to_owned())
        .collect();
    let certs = certs::list_certificates(&web.ctx)?;
    let checks = dns::check_all(web.ctx.config.admin_host().as_str(), &hosts).await;
    let domains = checks
        .into_iter()
        .map(|check| {
            let cert = certs.iter().find(|c| c.host == check.host);
            let is_own = check.host == own.as_str();
            DomainRow::new(check, is_own, cert, own.as_str())
        })
        .collect();
    Ok(views::render(&AppPage {
        chrome: Chrome::new(&session),
        app: AppView::new(&status, &deploys),
        restore: status.pending_restore.as_ref().map(RestoreStatus::new),
        deploys: deploys
            .iter()
            .rev()
            .map(|d| DeployView::new(d, record.current))
            .collect(),
        env: record.env.into_iter().collect(),
        storage: status
            .storage_bytes
            .map(|b| size(b, status.storage_at_least))
            .unwrap_or_default(),
        services: ServiceRow::all(&needs),
        revealed: query.reveal && !accounts.is_empty(),
        accounts: accounts.into_iter().map(AccountView::from).collect(),
        domains,
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_say_where_they_come_from() {
        let needs = ServiceNeeds {
            declared: [Need::Storage].into(),
            added: [Need::Database].into(),
        };
        let rows = ServiceRow::all(&needs);
        let source = |n: &str| rows.iter().find(|r| r.need == n).unwrap().source;
        assert_eq!(source("database"), "attached");
        assert_eq!(source("messagebus"), "");
        assert_eq!(source("storage"), "manifest");
    }

    #[test]
    fn sizes_say_when_the_walk_stopped() {
        assert_eq!(size(3 * 1024 * 1024 / 2, false), "1.5 MiB");
        assert_eq!(size(0, true), "at least 0.0 MiB");
        assert_eq!(size(300 * 1024 * 1024 + 1, false), "300 MiB");
    }
}
