//! Traffic counters per host: requests, 5xx answers and a latency histogram, bumped once per
//! request by the request path and read by the control plane.
//!
//! The request path only loads the current host map (an atomic pointer) and adds to atomics
//! it finds there: no lock, no allocation. The map's hosts follow the edge's exact routes
//! ([`crate::Edge::update`] calls [`TrafficMetrics::track`]); a host's counters survive route
//! changes, so totals only grow and readers subtract two readings to get a rate. Hosts without
//! an exact route (wildcards, strangers) are not counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

/// Upper bounds of the latency buckets in milliseconds; one more bucket holds everything
/// slower. Prometheus' `le` labels and the p95 read from these.
pub const LATENCY_BOUNDS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];
/// The buckets: one per bound, and the overflow.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// One host's counters.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    server_errors: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS],
    latency_sum_us: AtomicU64,
}

/// A reading of one host's counters (since the edge started), or the difference of two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    /// Answers with a 5xx status (the app's or the edge's own 502).
    pub server_errors: u64,
    /// Requests per latency bucket (see [`LATENCY_BOUNDS_MS`]), not cumulative.
    pub latency: [u64; LATENCY_BUCKETS],
    /// All their latencies added up, in microseconds (Prometheus' `_sum`).
    pub latency_sum_us: u64,
}

impl Totals {
    /// What happened between `earlier` and this reading.
    pub fn since(&self, earlier: &Totals) -> Totals {
        let mut latency = [0; LATENCY_BUCKETS];
        for (i, bucket) in latency.iter_mut().enumerate() {
            *bucket = self.latency[i].saturating_sub(earlier.latency[i]);
        }
        Totals {
            requests: self.requests.saturating_sub(earlier.requests),
            server_errors: self.server_errors.saturating_sub(earlier.server_errors),
            latency,
            latency_sum_us: self.latency_sum_us.saturating_sub(earlier.latency_sum_us),
        }
    }

    /// Adds `other` in: the traffic of several hosts as one.
    pub fn add(&mut self, other: &Totals) {
        self.requests += other.requests;
        self.server_errors += other.server_errors;
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency) {
            *mine += theirs;
        }
        self.latency_sum_us += other.latency_sum_us;
    }

    /// The latency under which a share `q` (0.95 for p95) of the requests finished, as the
    /// upper bound of its bucket in milliseconds; `None` without requests. Requests slower
    /// than the last bound count as the last bound: "at least 10 s".
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        // The rank of the request at share q, 1-based, at least the first one.
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in self.latency.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(LATENCY_BOUNDS_MS[i.min(LATENCY_BOUNDS_MS.len() - 1)]);
            }
        }
        LATENCY_BOUNDS_MS.last().copied()
    }
}

/// The bucket of a request that took `elapsed`.
fn bucket(elapsed: Duration) -> usize {
    // In microseconds: 1.5 ms is over the 1 ms bound, though whole milliseconds say 1.
    let us = elapsed.as_micros();
    LATENCY_BOUNDS_MS
        .iter()
        .position(|&bound| us <= u128::from(bound) * 1000)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// The counters of every tracked host. Shared by the edge's handle and the request path.
#[derive(Default)]
pub struct TrafficMetrics {
    hosts: ArcSwap<HashMap<Box<str>, Arc<Counters>>>,
}

impl TrafficMetrics {
    /// Counts one answered request to `host`. The request path's only call: a map lookup and
    /// a few atomic adds.
    pub fn record(&self, host: &str, status: u16, elapsed: Duration) {
        let hosts = self.hosts.load();
        let Some(counters) = hosts.get(host) else {
            return;
        };
        // Relaxed: each counter is read on its own; no reader needs them mutually consistent.
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if (500..600).contains(&status) {
            counters.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        counters.latency[bucket(elapsed)].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        counters.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Counts exactly `hosts` from now on. Hosts counted before keep their counters; hosts
    /// no longer listed are dropped (with their totals). Control plane only.
    pub fn track<'a>(&self, hosts: impl IntoIterator<Item = &'a str>) {
        let old = self.hosts.load();
        let next: HashMap<Box<str>, Arc<Counters>> = hosts
            .into_iter()
            .map(|host| {
                let counters = old.get(host).cloned().unwrap_or_default();
                (Box::from(host), counters)
            })
            .collect();
        self.hosts.store(Arc::new(next));
    }

    /// A reading of every tracked host, ordered by host.
    pub fn totals(&self) -> Vec<(String, Totals)> {
        let hosts = self.hosts.load();
        let mut all: Vec<(String, Totals)> = hosts
            .iter()
            .map(|(host, c)| {
                let mut latency = [0; LATENCY_BUCKETS];
                for (i, bucket) in latency.iter_mut().enumerate() {
                    *bucket = c.latency[i].load(Ordering::Relaxed);
                }
                let totals = Totals {
                    requests: c.requests.load(Ordering::Relaxed),
                    server_errors: c.server_errors.load(Ordering::Relaxed),
                    latency,
                    latency_sum_us: c.latency_sum_us.load(Ordering::Relaxed),
                };
                (host.to_string(), totals)
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn of<'a>(all: &'a [(String, Totals)], host: &str) -> &'a Totals {
        &all.iter().find(|(h, _)| h == host).expect("host tracked").1
    }

    #[test]
    fn only_tracked_hosts_are_counted_and_5xx_apart() {
        let m = TrafficMetrics::default();
        m.track(["blog.example.com"]);
        m.record("blog.example.com", 200, ms(3));
        m.record("blog.example.com", 502, ms(40));
        m.record("stranger.example.com", 200, ms(1));
        let all = m.totals();
        assert_eq!(all.len(), 1);
        let blog = of(&all, "blog.example.com");
        assert_eq!((blog.requests, blog.server_errors), (2, 1));
        assert_eq!(blog.latency[bucket(ms(3))], 1);
        assert_eq!(blog.latency[bucket(ms(40))], 1);
        assert_eq!(blog.latency_sum_us, 43_000);
    }

    #[test]
    fn a_host_keeps_its_counters_across_route_changes_until_untracked() {
        let m = TrafficMetrics::default();
        m.track(["a.example.com"]);
        m.record("a.example.com", 200, ms(1));
        m.track(["a.example.com", "b.example.com"]);
        m.record("a.example.com", 200, ms(1));
        assert_eq!(of(&m.totals(), "a.example.com").requests, 2);
        m.track(["b.example.com"]);
        m.track(["a.example.com"]);
        assert_eq!(of(&m.totals(), "a.example.com").requests, 0);
    }

    #[test]
    fn buckets_are_inclusive_upper_bounds_with_an_overflow() {
        assert_eq!(bucket(ms(0)), 0);
        assert_eq!(bucket(ms(1)), 0);
        assert_eq!(bucket(Duration::from_micros(1500)), 1);
        assert_eq!(bucket(ms(10_000)), LATENCY_BOUNDS_MS.len() - 1);
        assert_eq!(bucket(ms(60_000)), LATENCY_BOUNDS_MS.len());
    }

    #[test]
    fn p95_is_the_bound_of_the_bucket_holding_the_95th_percent() {
        let mut t = Totals::default();
        assert_eq!(t.quantile_ms(0.95), None);
        t.latency[bucket(ms(4))] = 95;
        t.latency[bucket(ms(400))] = 5;
        assert_eq!(t.quantile_ms(0.95), Some(5));
        t.latency[bucket(ms(400))] = 6;
        assert_eq!(t.quantile_ms(0.95), Some(500));
        let mut slow = Totals::default();
        slow.latency[LATENCY_BUCKETS - 1] = 1;
        assert_eq!(slow.quantile_ms(0.95), Some(10_000));
    }

    #[test]
    fn since_subtracts_and_never_wraps() {
        let mut later = Totals {
            requests: 10,
            server_errors: 2,
            ..Totals::default()
        };
        later.latency[0] = 10;
        let mut earlier = Totals {
            requests: 4,
            ..Totals::default()
        };
        earlier.latency[0] = 4;
        let d = later.since(&earlier);
        assert_eq!((d.requests, d.server_errors, d.latency[0]), (6, 2, 6));
        assert_eq!(earlier.since(&later).requests, 0);
    }
}
