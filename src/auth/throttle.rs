//! Failed sign-ins, counted per account and per client address: after a few, each further
//! failure makes the next attempt wait longer (doubling, capped). Kept in memory: a restart
//! forgets it, which costs an attacker a restart they cannot cause.

use std::collections::HashMap;
use std::sync::Mutex;

/// Failures allowed before any wait.
const FREE_FAILURES: u32 = 3;
/// The longest wait.
const MAX_WAIT_SECS: i64 = 15 * 60;
/// A key with no failure for this long is forgotten.
const FORGET_AFTER_SECS: i64 = 24 * 3600;
/// At most this many keys are kept; the stalest go first.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: i64,
    /// No attempt before this (Unix seconds).
    until: i64,
}

/// The first wait: long enough to make guessing pointless, short enough for a typo.
const FIRST_WAIT_SECS: i64 = 30;

/// The wait after the `count`th failure: none for the first few, then 30 s, 1 min, 2 min, ….
pub fn wait_after(count: u32) -> i64 {
    if count <= FREE_FAILURES {
        0
    } else {
        let doublings = (count - FREE_FAILURES - 1).min(20);
        (FIRST_WAIT_SECS << doublings).min(MAX_WAIT_SECS)
    }
}

#[derive(Default)]
pub struct Throttle {
    keys: Mutex<HashMap<String, Failures>>,
}

impl Throttle {
    /// `Err(seconds)` when any of `keys` must still wait.
    pub fn check(&self, keys: &[String], now: i64) -> Result<(), i64> {
        let map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let wait = keys
            .iter()
            .filter_map(|k| map.get(k))
            .map(|f| f.until - now)
            .max()
            .unwrap_or(0);
        if wait > 0 {
            Err(wait)
        } else {
            Ok(())
        }
    }

    /// Counts a failure against each of `keys`; returns the largest count.
    pub fn failed(&self, keys: &[String], now: i64) -> u32 {
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() + keys.len() > MAX_KEYS {
            map.retain(|_, f| now - f.last < FORGET_AFTER_SECS);
            while map.len() + keys.len() > MAX_KEYS {
                let Some(stalest) = map
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                map.remove(&stalest);
            }
        }
        let mut most = 0;
        for key in keys {
            let entry = map.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
                until: now,
            });
            if now - entry.last >= FORGET_AFTER_SECS {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last = now;
            entry.until = now + wait_after(entry.count);
            most = most.max(entry.count);
        }
        most
    }

    /// A successful sign-in clears `key` (the account; the address keeps its count).
    pub fn succeeded(&self, key: &str) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_grows_after_a_few_failures_and_is_capped() {
        let waits: Vec<i64> = (1..=7).map(wait_after).collect();
        assert_eq!(waits, vec![0, 0, 0, 30, 60, 120, 240]);
        assert_eq!(wait_after(1000), MAX_WAIT_SECS);
    }

    #[test]
    fn failures_on_an_account_make_its_next_attempt_wait() {
        let t = Throttle::default();
        let keys = vec!["user:admin".to_string(), "ip:1.2.3.4".to_string()];
        for _ in 0..3 {
            t.failed(&keys, 100);
            assert_eq!(t.check(&keys, 100), Ok(()));
        }
        assert_eq!(t.failed(&keys, 100), 4);
        assert_eq!(t.check(&keys, 100), Err(30));
        assert_eq!(t.check(&["ip:1.2.3.4".to_string()], 110), Err(20));
        assert_eq!(t.check(&keys, 130), Ok(()));
        t.failed(&keys, 130);
        assert_eq!(t.check(&keys, 130), Err(60));
        // Another address and account are not held up.
        assert_eq!(t.check(&["user:bob".to_string()], 130), Ok(()));
        t.succeeded("user:admin");
        assert_eq!(t.check(&["user:admin".to_string()], 130), Ok(()));
        assert_eq!(t.check(&keys, 130), Err(60), "the address still waits");
    }
}
