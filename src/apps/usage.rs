//! Memory and CPU use of the apps' serving containers, sampled in the background and cached:
//! the engine answers a stats request only at its next collection tick (up to a second, two
//! for a CPU percentage), which no request should wait for. Owns the cache and the sampler
//! loop; `status` and the dashboard's metrics only read the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use minicloud_proxy::ShutdownWatch;

use super::Apps;

/// One serving container's use, at its last sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Memory in use, without the reclaimable page cache (what `docker stats` shows).
    pub memory_bytes: u64,
    /// Percent of one CPU, to a tenth.
    pub cpu_percent: f64,
}

/// How often the sampler reads every serving web container.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// A sample older than this is not shown: the sampler could not read the container since.
const FRESH_FOR: Duration = Duration::from_secs(60);
/// Readings at once: each waits about a second in the engine, mostly idle.
const AT_ONCE: usize = 8;

/// The last use of each serving container, by container name. Cheap to clone.
#[derive(Clone, Default)]
pub struct UsageSamples(Arc<Mutex<HashMap<String, (Usage, Instant)>>>);

impl UsageSamples {
    /// The container's last use, if it is recent.
    pub fn get(&self, container: &str) -> Option<Usage> {
        let samples = self.0.lock().ok()?;
        samples
            .get(container)
            .filter(|(_, at)| at.elapsed() < FRESH_FOR)
            .map(|(usage, _)| *usage)
    }

    /// Keeps `fresh`; containers that no longer serve drop out, and one the engine could not
    /// read this time keeps its last sample until it is stale.
    fn update(&self, fresh: HashMap<String, (Usage, Instant)>, serving: &[String]) {
        if let Ok(mut samples) = self.0.lock() {
            samples.retain(|name, _| serving.contains(name));
            samples.extend(fresh);
        }
    }
}

impl Apps {
    /// The last sampled use of the app's serving web container, if recent. Takes the record
    /// the caller already read, so a report over every app reads the store once.
    pub fn usage_of(&self, record: &crate::store::AppRecord) -> Option<Usage> {
        self.usage.get(&self.serving_container(record)?)
    }

    /// Samples every serving web container's use, now and every [`SAMPLE_EVERY`], until
    /// `shutdown`.
    pub async fn sample_usage(self, mut shutdown: ShutdownWatch) {
        loop {
            self.sample_usage_once().await;
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(SAMPLE_EVERY) => {}
            }
        }
    }

    async fn sample_usage_once(&self) {
        let (Ok(docker), Ok(apps)) = (self.docker().await, self.ctx.store.apps()) else {
            return;
        };
        let serving: Vec<String> = apps
            .iter()
            .filter(|app| !app.stopped)
            .filter_map(|app| self.serving_container(app))
            .collect();
        let fresh = futures_util::stream::iter(serving.iter().cloned())
            .map(|name| {
                let docker = docker.clone();
                async move {
                    let stats = docker.stats(&name).await.ok()?;
                    let usage = Usage {
                        memory_bytes: stats.memory_bytes,
                        cpu_percent: (stats.cpu_percent * 10.0).round() / 10.0,
                    };
                    Some((name, (usage, Instant::now())))
                }
            })
            .buffer_unordered(AT_ONCE)
            .filter_map(std::future::ready)
            .collect()
            .await;
        self.usage.update(fresh, &serving);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_containers_that_no_longer_serve_drop_out() {
        let samples = UsageSamples::default();
        let now = Instant::now();
        let use_of = |cpu_percent: f64| Usage {
            memory_bytes: 1 << 20,
            cpu_percent,
        };
        let fresh = |pairs: &[(&str, f64)]| {
            pairs
                .iter()
                .map(|(n, p)| ((*n).to_owned(), (use_of(*p), now)))
                .collect::<HashMap<_, _>>()
        };
        samples.update(fresh(&[("mc-a-1", 1.5), ("mc-b-1", 0.0)]), &[]);
        assert_eq!(samples.get("mc-a-1"), Some(use_of(1.5)));
        // a moved to revision 2; b could not be read this time and keeps its sample.
        let serving = ["mc-a-2".to_owned(), "mc-b-1".to_owned()];
        samples.update(fresh(&[("mc-a-2", 3.0)]), &serving);
        assert_eq!(samples.get("mc-a-1"), None);
        assert_eq!(samples.get("mc-a-2"), Some(use_of(3.0)));
        assert_eq!(samples.get("mc-b-1"), Some(use_of(0.0)));
        assert_eq!(samples.get("mc-c-1"), None);
    }
}
