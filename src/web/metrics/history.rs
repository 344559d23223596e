//! The last hour of traffic, one sample a minute per host: what the sparklines draw. Pure:
//! the sampler hands it the edge's readings and the time.

use std::collections::{BTreeMap, VecDeque};

use minicloud_proxy::metrics::Totals;

/// How many samples are kept: an hour of minutes.
pub const KEPT: usize = 60;

/// What happened to one host (or one app's hosts together) in one sample's interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interval {
    /// When the interval ended (Unix seconds).
    pub at: i64,
    pub traffic: Totals,
}

/// Readings turned into intervals, per host.
#[derive(Debug, Default)]
pub struct History {
    /// The previous reading of each host, to subtract from the next.
    last: BTreeMap<String, Totals>,
    intervals: BTreeMap<String, VecDeque<Interval>>,
}

impl History {
    /// Adds the readings taken at `at`. The first reading of a host only sets its start; a
    /// host missing from `readings` (no longer routed) is forgotten.
    pub fn record(&mut self, at: i64, readings: Vec<(String, Totals)>) {
        let mut last = BTreeMap::new();
        for (host, totals) in readings {
            if let Some(before) = self.last.get(&host) {
                let kept = self.intervals.entry(host.clone()).or_default();
                kept.push_back(Interval {
                    at,
                    traffic: totals.since(before),
                });
                while kept.len() > KEPT {
                    kept.pop_front();
                }
            }
            last.insert(host, totals);
        }
        self.intervals.retain(|host, _| last.contains_key(host));
        self.last = last;
    }

    /// The intervals of `hosts` together, oldest first: one per sample time any of them has.
    pub fn combined<'a>(&self, hosts: impl IntoIterator<Item = &'a str>) -> Vec<Interval> {
        let mut by_time: BTreeMap<i64, Totals> = BTreeMap::new();
        for host in hosts {
            for interval in self.intervals.get(host).into_iter().flatten() {
                by_time
                    .entry(interval.at)
                    .or_default()
                    .add(&interval.traffic);
            }
        }
        by_time
            .into_iter()
            .map(|(at, traffic)| Interval { at, traffic })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(host: &str, requests: u64, errors: u64) -> (String, Totals) {
        let mut t = Totals {
            requests,
            server_errors: errors,
            ..Totals::default()
        };
        t.latency[0] = requests;
        (host.to_owned(), t)
    }

    #[test]
    fn intervals_are_the_differences_of_readings() {
        let mut h = History::default();
        h.record(60, vec![reading("a", 10, 0)]);
        assert!(h.combined(["a"]).is_empty(), "one reading is no interval");
        h.record(120, vec![reading("a", 25, 3)]);
        let got = h.combined(["a"]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].at, 120);
        assert_eq!(
            (got[0].traffic.requests, got[0].traffic.server_errors),
            (15, 3)
        );
    }

    #[test]
    fn an_apps_hosts_add_up_by_sample_time() {
        let mut h = History::default();
        h.record(60, vec![reading("a", 0, 0), reading("b", 0, 0)]);
        h.record(120, vec![reading("a", 5, 0), reading("b", 7, 1)]);
        let got = h.combined(["a", "b", "unknown"]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].traffic.requests, 12);
        assert_eq!(got[0].traffic.latency[0], 12);
    }

    #[test]
    fn an_hour_is_kept_and_unrouted_hosts_are_forgotten() {
        let mut h = History::default();
        for minute in 0..=(KEPT as u64 + 5) {
            h.record(minute as i64 * 60, vec![reading("a", minute, 0)]);
        }
        let got = h.combined(["a"]);
        assert_eq!(got.len(), KEPT);
        assert_eq!(got[0].at, 6 * 60);
        h.record(99_999, vec![reading("b", 1, 0)]);
        assert!(h.combined(["a"]).is_empty());
        assert!(!h.last.contains_key("a"));
    }
}
