//! The dashboard: every app at a glance with what it uses and the traffic the edge saw (as
//! sparklines over the last hour), the routes, and the box. Figures come from
//! [`Metrics::report`](crate::web::metrics::Metrics::report); nothing is sampled here.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use minicloud_proxy::metrics::Totals;

use super::error::UiError;
use super::session::Session;
use super::views::{self, AppView, Chrome, RouteView};
use super::UiState;
use crate::certs::{self, CertificateStatus};
use crate::model::now;
use crate::web::metrics::sparkline::{self, HEIGHT, WIDTH};
use crate::web::metrics::{AppMetrics, Machine, Minute};
use crate::{routes, web::WebError};

const MIB: u64 = 1024 * 1024;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One app's row: what it is, what it uses, what the edge saw.
pub struct Row {
    pub app: AppView,
    pub cert: String,
    pub memory: String,
    /// Memory in use as a share of the limit, 0–100, for the meter.
    pub memory_percent: u64,
    pub cpu: String,
    pub requests_per_min: String,
    pub error_rate: String,
    pub p95: String,
    pub requests_points: String,
    pub errors_points: String,
    pub p95_points: String,
}

impl Row {
    fn new(app: AppView, cert: String, m: Option<&AppMetrics>, cpus: usize, at: i64) -> Self {
        let empty = Vec::new();
        let hour: &[Minute] = m.map_or(&empty, |m| &m.last_hour);
        let mut total = Totals::default();
        for minute in hour {
            total.requests += minute.requests;
            total.server_errors += minute.server_errors;
        }
        let series = |value: fn(&Minute) -> f64| {
            let points: Vec<(i64, f64)> = hour.iter().map(|m| (m.at_unix, value(m))).collect();
            sparkline::points(&points, at)
        };
        let (memory, memory_percent) = match m {
            Some(AppMetrics {
                memory_bytes: Some(used),
                memory_limit_bytes: limit,
                ..
            }) => (
                format!("{} of {} MiB", views::mebibytes(*used), limit / MIB),
                (used * 100).checked_div(*limit).unwrap_or(0).min(100),
            ),
            Some(m) => (format!("limit {} MiB", m.memory_limit_bytes / MIB), 0),
            None => (String::new(), 0),
        };
        Self {
            app,
            cert,
            memory,
            memory_percent,
            cpu: m
                .and_then(|m| m.cpu_percent)
                .map(|c| format!("{c:.1}% of {cpus} core{}", if cpus == 1 { "" } else { "s" }))
                .unwrap_or_default(),
            requests_per_min: hour
                .last()
                .map(|m| m.requests.to_string())
                .unwrap_or_else(|| "–".into()),
            error_rate: match total.requests {
                0 => "–".into(),
                n => format!("{:.1}%", total.server_errors as f64 * 100.0 / n as f64),
            },
            p95: hour_p95(m).map_or_else(|| "–".into(), |ms| format!("{ms} ms")),
            requests_points: series(|m| m.requests as f64),
            errors_points: series(|m| m.server_errors as f64),
            p95_points: series(|m| m.p95_ms.unwrap_or(0) as f64),
        }
    }
}

/// The hour's p95: the largest minute's p95 is an honest upper bound without the buckets.
fn hour_p95(m: Option<&AppMetrics>) -> Option<u64> {
    m?.last_hour.iter().filter_map(|m| m.p95_ms).max()
}

/// The box in words.
pub struct MachineView {
    pub memory: String,
    pub disk: String,
    pub load: String,
}

impl From<&Machine> for MachineView {
    fn from(m: &Machine) -> Self {
        let gib = |b: u64| b as f64 / GIB;
        Self {
            memory: match (m.memory_total_bytes, m.memory_available_bytes) {
                (Some(total), Some(free)) => format!(
                    "{:.1} of {:.1} GiB in use",
                    gib(total.saturating_sub(free)),
                    gib(total)
                ),
                _ => "unknown".into(),
            },
            disk: match (m.disk_total_bytes, m.disk_free_bytes) {
                (Some(total), Some(free)) => {
                    format!("{:.1} GiB free of {:.1} GiB", gib(free), gib(total))
                }
                _ => "unknown".into(),
            },
            load: match m.load {
                Some([one, five, fifteen]) => {
                    format!("{one:.2} {five:.2} {fifteen:.2} on {} cores", m.cpus)
                }
                None => "unknown".into(),
            },
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct Dashboard {
    pub chrome: Chrome,
    pub rows: Vec<Row>,
    pub routes: Vec<RouteView>,
    pub machine: MachineView,
    pub width: f64,
    pub height: f64,
}

pub async fn dashboard(
    State(state): State<UiState>,
    session: Session,
) -> Result<Html<String>, UiError> {
    let web = &state.web;
    let report = web
        .metrics
        .report(&web.ctx, &web.apps)
        .map_err(WebError::from)?;
    let by_name: BTreeMap<&str, &AppMetrics> =
        report.apps.iter().map(|a| (a.name.as_str(), a)).collect();
    let certs: BTreeMap<String, CertificateStatus> = certs::list_certificates(&web.ctx)?
        .into_iter()
        .map(|c| (c.host.clone(), c))
        .collect();
    let at = now();
    let mut rows = Vec::new();
    for status in web.apps.list().await? {
        let host = web.apps.default_host(&status.name);
        let cert = certs
            .get(host.as_str())
            .map(|c| views::state_word(c.state))
            .unwrap_or_default();
        let m = by_name.get(status.name.as_str()).copied();
        let app = AppView::new(&status, &web.apps.deploys(&status.name)?);
        rows.push(Row::new(app, cert, m, report.machine.cpus, at));
    }
    let routes = routes::list_routes(&web.ctx)?;
    Ok(views::render(&Dashboard {
        chrome: Chrome::new(&session),
        rows,
        routes: routes.iter().map(RouteView::from).collect(),
        machine: MachineView::from(&report.machine),
        width: WIDTH,
        height: HEIGHT,
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(at: i64, requests: u64, server_errors: u64, p95_ms: Option<u64>) -> Minute {
        Minute {
            at: String::new(),
            at_unix: at,
            requests,
            server_errors,
            p95_ms,
        }
    }

    fn app_view() -> AppView {
        AppView {
            name: "blog".into(),
            state: "running".into(),
            operation: String::new(),
            url: String::new(),
            revision: "1".into(),
            image: String::new(),
            deployed_at: String::new(),
            memory: String::new(),
            last_error: String::new(),
            webhook_url: String::new(),
            env_not_deployed: false,
        }
    }

    #[test]
    fn a_row_says_use_against_limit_and_the_hours_traffic() {
        let m = AppMetrics {
            name: "blog".into(),
            hosts: vec!["blog.example.com".into()],
            memory_limit_bytes: 256 * MIB,
            memory_bytes: Some(64 * MIB),
            cpu_percent: Some(3.24),
            last_hour: vec![minute(60, 90, 0, Some(5)), minute(120, 10, 2, Some(250))],
        };
        let row = Row::new(app_view(), "valid".into(), Some(&m), 2, 120);
        assert_eq!(row.memory, "64 of 256 MiB");
        assert_eq!(row.memory_percent, 25);
        assert_eq!(row.cpu, "3.2% of 2 cores");
        assert_eq!(row.requests_per_min, "10");
        assert_eq!(row.error_rate, "2.0%");
        assert_eq!(row.p95, "250 ms");
        assert_eq!(row.requests_points.split(' ').count(), 2);
    }

    #[test]
    fn without_samples_a_row_shows_dashes_not_zeros() {
        let row = Row::new(app_view(), String::new(), None, 1, 0);
        assert_eq!(
            (
                row.requests_per_min.as_str(),
                row.error_rate.as_str(),
                row.p95.as_str()
            ),
            ("–", "–", "–")
        );
        assert!(row.requests_points.is_empty());
    }
}
