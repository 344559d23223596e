//! The figures of the dashboard, `GET /api/metrics` and `/metrics`: the edge's traffic per
//! host (sampled once a minute into the last hour), each app's memory and CPU against its
//! limit, and the box (memory, the data dir's disk, load).
//!
//! The edge counts (see `minicloud_proxy::metrics`); this module only reads. [`Metrics::run`]
//! samples in the background, so a page shows what was sampled and never waits for the
//! engine's stats.

mod history;
pub mod machine;
pub mod prometheus;
pub mod scrape;
pub mod sparkline;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use minicloud_proxy::metrics::Totals;
use minicloud_proxy::{Edge, ShutdownWatch};
use serde::Serialize;

use crate::apps::Apps;
use crate::ctx::Ctx;
use crate::model::now;
use crate::store::StoreError;

use history::History;
pub use machine::Machine;

/// How often traffic and usage are sampled: a sparkline point is a minute.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Sampled {
    history: History,
}

/// The sampler's handle; cheap to clone, all clones share what was sampled.
#[derive(Clone)]
pub struct Metrics {
    edge: Edge,
    sampled: Arc<Mutex<Sampled>>,
}

/// Everything the three faces show.
#[derive(Debug, Serialize)]
pub struct Report {
    pub sampled_every_seconds: u64,
    pub machine: Machine,
    pub apps: Vec<AppMetrics>,
    pub hosts: Vec<HostMetrics>,
}

#[derive(Debug, Serialize)]
pub struct AppMetrics {
    pub name: String,
    pub hosts: Vec<String>,
    pub memory_limit_bytes: u64,
    /// At the last sample, while it ran.
    pub memory_bytes: Option<u64>,
    /// Percent of one core, at the last sample.
    pub cpu_percent: Option<f64>,
    /// Its hosts' traffic a minute at a time, oldest first.
    pub last_hour: Vec<Minute>,
}

/// One sample's interval of traffic.
#[derive(Debug, Clone, Serialize)]
pub struct Minute {
    /// When it ended (RFC 3339).
    pub at: String,
    #[serde(skip)]
    pub at_unix: i64,
    pub requests: u64,
    pub server_errors: u64,
    /// `None` without requests.
    pub p95_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct HostMetrics {
    pub host: String,
    pub requests_total: u64,
    pub server_errors_total: u64,
    #[serde(skip)]
    pub totals: Totals,
}

impl HostMetrics {
    pub fn new(host: String, totals: Totals) -> Self {
        Self {
            host,
            requests_total: totals.requests,
            server_errors_total: totals.server_errors,
            totals,
        }
    }
}

impl Metrics {
    pub fn new(edge: Edge) -> Self {
        Self {
            edge,
            sampled: Arc::default(),
        }
    }

    fn sampled(&self) -> MutexGuard<'_, Sampled> {
        // Plain data: a panic half-way leaves it usable.
        self.sampled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the edge's reading as of `at` (Unix seconds) into the last hour.
    pub fn sample_traffic(&self, at: i64) {
        let readings = self.edge.metrics().totals();
        self.sampled().history.record(at, readings);
    }

    /// Samples once a minute until `shutdown`.
    pub async fn run(self, mut shutdown: ShutdownWatch) {
        self.sample_traffic(now());
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            self.sample_traffic(now());
        }
    }

    /// What was sampled, with every app's hosts and limits and the box as it is now.
    pub fn report(&self, ctx: &Ctx, apps: &Apps) -> Result<Report, StoreError> {
        let records = ctx.store.apps()?;
        let machine = machine::read(&ctx.config.data_dir);
        let sampled = self.sampled();
        let apps = records
            .iter()
            .map(|record| {
                let hosts: Vec<String> = apps
                    .hosts(record)
                    .iter()
                    .map(|h| h.as_str().to_owned())
                    .collect();
                // The apps' own background sampler reads the containers; no engine call here.
                let usage = apps.usage_of(record);
                let last_hour = sampled
                    .history
                    .combined(hosts.iter().map(String::as_str))
                    .into_iter()
                    .map(|i| Minute {
                        at: crate::model::format_time(i.at),
                        at_unix: i.at,
                        requests: i.traffic.requests,
                        server_errors: i.traffic.server_errors,
                        p95_ms: i.traffic.quantile_ms(0.95),
                    })
                    .collect();
                AppMetrics {
                    name: record.name.to_string(),
                    hosts,
                    memory_limit_bytes: record.memory_mb * 1024 * 1024,
                    memory_bytes: usage.map(|u| u.memory_bytes),
                    cpu_percent: usage.map(|u| u.cpu_percent),
                    last_hour,
                }
            })
            .collect();
        // Totals as the edge has them now, not as of the last sample: counters for scrapers.
        let hosts = self
            .edge
            .metrics()
            .totals()
            .into_iter()
            .map(|(host, totals)| HostMetrics::new(host, totals))
            .collect();
        Ok(Report {
            sampled_every_seconds: SAMPLE_EVERY.as_secs(),
            machine,
            apps,
            hosts,
        })
    }
}
