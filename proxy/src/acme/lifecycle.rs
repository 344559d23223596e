//! The certificate lifecycle of one host, as pure functions over plain records: what to do
//! now ([`plan`]), when to retry after a failure ([`backoff`]), when to renew
//! ([`renewal_time`]), and the limits that keep a bug or a stale window from burning the CA's
//! rate limits.
//!
//! Nothing here does I/O or reads the clock: callers pass `now` (Unix seconds) and a random
//! number for jitter, so every rule is unit-tested. The control plane stores [`CertRecord`]s
//! and the ACME client does the network work the plan asks for.

use std::collections::{BTreeMap, BTreeSet};

use crate::host::Hostname;
use crate::tls::CertPem;

/// First retry after a failure; doubles with each further failure.
pub const MIN_BACKOFF_SECS: i64 = 5 * 60;
/// Longest wait between retries of a failing host.
pub const MAX_BACKOFF_SECS: i64 = 24 * 3600;
/// Orders started per host in any hour. Let's Encrypt allows 5 failed validations per host per
/// hour; with the backoff above a failing host uses at most 3, and this cap also holds for
/// forced renewals and restart loops (the attempt is stored before the order is made).
pub const MAX_ORDERS_PER_HOUR: usize = 3;
/// Certificates issued per host in any week. Let's Encrypt allows 5 per identical name set.
pub const MAX_ISSUED_PER_WEEK: usize = 4;
/// How often renewal information (ARI) is asked for at most / at least.
pub const ARI_MIN_RECHECK_SECS: i64 = 3600;
pub const ARI_MAX_RECHECK_SECS: i64 = 24 * 3600;

const HOUR: i64 = 3600;
const WEEK: i64 = 7 * 24 * 3600;

/// Where a host's certificate is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// No certificate yet; the first order is due or running.
    Pending,
    /// A CA certificate is served.
    Valid,
    /// A CA certificate is served and a new one is being ordered.
    Renewing,
    /// The last attempt failed; `error` says why, `next_attempt` says when it is retried.
    /// An older certificate, if any, keeps serving.
    Failed,
}

/// A renewal window suggested by the CA (ACME Renewal Information, RFC 9773), Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RenewalWindow {
    pub start: i64,
    pub end: i64,
}

/// How the renewal time was chosen, so a person can see why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RenewBasis {
    /// Inside the window the CA suggested (ARI).
    Ari,
    /// At two thirds of the certificate's lifetime (the CA offers no ARI).
    TwoThirds,
}

/// Everything minicloud keeps about one host's CA certificate. Stored as is; holds the key,
/// so it is never shown whole (see the control plane's status view).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertRecord {
    pub host: Hostname,
    pub phase: Phase,
    /// The certificate being served, once there is one. Kept through failed renewals.
    pub cert: Option<CertPem>,
    /// Serial (hex) and validity of `cert`, Unix seconds.
    pub serial: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    /// When to order the next certificate.
    pub renew_at: Option<i64>,
    pub renew_basis: Option<RenewBasis>,
    /// When to ask the CA for renewal information again (only if it offers ARI).
    pub ari_check_at: Option<i64>,
    /// The last failure, in words (the CA's own explanation when it gave one).
    pub error: Option<String>,
    /// Failures in a row.
    pub failures: u32,
    /// After a failure: no new order before this time.
    pub next_attempt: Option<i64>,
    /// When orders were started (last week only), for the rate limits.
    pub orders: Vec<i64>,
    /// When certificates were issued (last week only).
    pub issued: Vec<i64>,
    /// A person asked for a new certificate now.
    pub forced: bool,
}

impl CertRecord {
    pub fn new(host: Hostname) -> Self {
        Self {
            host,
            phase: Phase::Pending,
            cert: None,
            serial: None,
            not_before: None,
            not_after: None,
            renew_at: None,
            renew_basis: None,
            ari_check_at: None,
            error: None,
            failures: 0,
            next_attempt: None,
            orders: Vec::new(),
            issued: Vec::new(),
            forced: false,
        }
    }

    /// Notes that an order is about to start. Stored before the order is made, so a crash or
    /// restart mid-order still counts against the limits.
    pub fn start_attempt(&mut self, now: i64) {
        self.orders.retain(|t| now - t < WEEK);
        self.orders.push(now);
        self.phase = if self.cert.is_some() {
            Phase::Renewing
        } else {
            Phase::Pending
        };
        self.forced = false;
    }

    /// Records a newly issued certificate. `jitter` is uniform in `[0, 1)`.
    pub fn succeed(
        &mut self,
        now: i64,
        issued: Issued,
        window: Option<RenewalWindow>,
        jitter: f64,
    ) {
        let (renew_at, basis) = renewal_time(issued.not_before, issued.not_after, window, jitter);
        self.phase = Phase::Valid;
        self.cert = Some(issued.pem);
        self.serial = Some(issued.serial);
        self.not_before = Some(issued.not_before);
        self.not_after = Some(issued.not_after);
        self.renew_at = Some(renew_at);
        self.renew_basis = Some(basis);
        self.error = None;
        self.failures = 0;
        self.next_attempt = None;
        self.issued.retain(|t| now - t < WEEK);
        self.issued.push(now);
    }

    /// Records a failed attempt; the served certificate, if any, is kept. `jitter` in `[0, 1)`.
    pub fn fail(&mut self, now: i64, error: String, jitter: f64) {
        self.failures = self.failures.saturating_add(1);
        self.phase = Phase::Failed;
        self.error = Some(error);
        self.next_attempt = Some(now + backoff(self.failures, jitter));
    }

    /// Applies fresh renewal information for the served certificate.
    pub fn apply_renewal_info(
        &mut self,
        now: i64,
        window: RenewalWindow,
        retry_after_secs: i64,
        jitter: f64,
    ) {
        if let (Some(nb), Some(na)) = (self.not_before, self.not_after) {
            let (at, basis) = renewal_time(nb, na, Some(window), jitter);
            // Keep a time already chosen inside the same window: re-rolling the dice at every
            // check would drift towards the window's start.
            let inside = self.renew_at.is_some_and(|t| {
                self.renew_basis == Some(RenewBasis::Ari) && t >= window.start && t <= window.end
            });
            if !inside {
                self.renew_at = Some(at);
                self.renew_basis = Some(basis);
            }
        }
        self.ari_check_at =
            Some(now + retry_after_secs.clamp(ARI_MIN_RECHECK_SECS, ARI_MAX_RECHECK_SECS));
    }

    /// The CA offers no renewal information: do not ask again.
    pub fn no_renewal_info(&mut self) {
        self.ari_check_at = None;
    }

    /// Whether a new order may start now under the rate limits; else the time it may.
    pub fn limit(&self, now: i64) -> Result<(), Limited> {
        let last_hour: Vec<i64> = self
            .orders
            .iter()
            .copied()
            .filter(|t| now - t < HOUR)
            .collect();
        if last_hour.len() >= MAX_ORDERS_PER_HOUR {
            let until = last_hour.iter().min().map_or(now, |t| t + HOUR);
            return Err(Limited {
                until,
                why: format!("{} orders in the last hour", last_hour.len()),
            });
        }
        let last_week: Vec<i64> = self
            .issued
            .iter()
            .copied()
            .filter(|t| now - t < WEEK)
            .collect();
        if self.cert.is_some() && last_week.len() >= MAX_ISSUED_PER_WEEK {
            let until = last_week.iter().min().map_or(now, |t| t + WEEK);
            return Err(Limited {
                until,
                why: format!("{} certificates issued in the last week", last_week.len()),
            });
        }
        Ok(())
    }
}

/// A certificate just issued, as the lifecycle needs it.
#[derive(Debug, Clone)]
pub struct Issued {
    pub pem: CertPem,
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// Why an order may not start yet, and when it may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub until: i64,
    pub why: String,
}

/// What the manager should do for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Order the first certificate.
    Issue(Hostname),
    /// Order a replacement; the current one keeps serving.
    Renew(Hostname),
    /// Ask the CA whether the renewal window moved.
    CheckRenewalInfo(Hostname),
}

/// What is due at `now` for the hosts that should have CA certificates. Hosts with a record
/// but no longer in `hosts` are left alone (their certificate is kept in case they return).
pub fn plan(
    now: i64,
    hosts: &BTreeSet<Hostname>,
    records: &BTreeMap<Hostname, CertRecord>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for host in hosts {
        let Some(record) = records.get(host) else {
            actions.push(Action::Issue(host.clone()));
            continue;
        };
        let waiting = record.next_attempt.is_some_and(|t| t > now) && !record.forced;
        let order_due =
            record.cert.is_none() || record.forced || record.renew_at.is_some_and(|t| t <= now);
        if order_due && !waiting && record.limit(now).is_ok() {
            actions.push(if record.cert.is_none() {
                Action::Issue(host.clone())
            } else {
                Action::Renew(host.clone())
            });
        } else if record.cert.is_some() && record.ari_check_at.is_some_and(|t| t <= now) {
            actions.push(Action::CheckRenewalInfo(host.clone()));
        }
    }
    actions
}

/// The earliest time after `now` at which [`plan`] could have something to do, if any.
pub fn next_due(
    now: i64,
    hosts: &BTreeSet<Hostname>,
    records: &BTreeMap<Hostname, CertRecord>,
) -> Option<i64> {
    hosts
        .iter()
        .filter_map(|h| records.get(h))
        .flat_map(|r| {
            let limited = r.limit(now).err().map(|l| l.until);
            [r.next_attempt, r.renew_at, r.ari_check_at, limited]
        })
        .flatten()
        .filter(|t| *t > now)
        .min()
}

/// Seconds to wait after the `failures`-th failure in a row: 5 min, 10, 20, … up to a day,
/// plus up to 10 % jitter so many failing hosts do not retry in step.
pub fn backoff(failures: u32, jitter: f64) -> i64 {
    let exp = failures.saturating_sub(1).min(20);
    let base = MIN_BACKOFF_SECS
        .saturating_mul(1_i64 << exp)
        .min(MAX_BACKOFF_SECS);
    base + (base as f64 * 0.1 * jitter.clamp(0.0, 1.0)) as i64
}

/// When to renew a certificate valid from `not_before` to `not_after`: at a random time inside
/// the CA's window when it gave one, else at two thirds of the lifetime (moved earlier by up to
/// 1/20 of the lifetime of jitter). Never before a third of the lifetime has passed, so a stale
/// or bogus window cannot make a fresh certificate be ordered again at once.
pub fn renewal_time(
    not_before: i64,
    not_after: i64,
    window: Option<RenewalWindow>,
    jitter: f64,
) -> (i64, RenewBasis) {
    let jitter = jitter.clamp(0.0, 1.0);
    let lifetime = (not_after - not_before).max(0);
    let earliest = not_before + lifetime / 3;
    match window {
        Some(w) if w.end >= w.start => {
            let at = w.start + ((w.end - w.start) as f64 * jitter) as i64;
            (at.max(earliest), RenewBasis::Ari)
        }
        _ => {
            let at = not_before + lifetime * 2 / 3 - (lifetime as f64 / 20.0 * jitter) as i64;
            (at.max(earliest), RenewBasis::TwoThirds)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;

    fn host(s: &str) -> Hostname {
        Hostname::parse(s).unwrap()
    }

    fn issued(now: i64, days: i64) -> Issued {
        Issued {
            pem: CertPem {
                chain: "chain".into(),
                key: "key".into(),
            },
            serial: "01".into(),
            not_before: now,
            not_after: now + days * DAY,
        }
    }

    fn hosts(names: &[&str]) -> BTreeSet<Hostname> {
        names.iter().map(|n| host(n)).collect()
    }

    #[test]
    fn a_new_host_is_issued_and_a_fresh_certificate_is_left_alone() {
        let now = 1_000_000;
        let mut records = BTreeMap::new();
        assert_eq!(
            plan(now, &hosts(&["a.test"]), &records),
            vec![Action::Issue(host("a.test"))]
        );
        let mut r = CertRecord::new(host("a.test"));
        r.start_attempt(now);
        r.succeed(now + 5, issued(now, 90), None, 0.5);
        records.insert(host("a.test"), r.clone());
        assert_eq!(plan(now + 10, &hosts(&["a.test"]), &records), vec![]);
        assert_eq!(r.phase, Phase::Valid);
        // Due at two thirds of 90 days, jittered earlier by at most 4.5 days.
        let at = r.renew_at.unwrap();
        assert!(at <= now + 60 * DAY && at >= now + 55 * DAY, "{at}");
        assert_eq!(next_due(now + 10, &hosts(&["a.test"]), &records), Some(at));
        assert_eq!(
            plan(at, &hosts(&["a.test"]), &records),
            vec![Action::Renew(host("a.test"))]
        );
        // A host no longer routed is not renewed.
        assert_eq!(plan(at, &hosts(&[]), &records), vec![]);
    }

    #[test]
    fn failures_back_off_exponentially_and_keep_the_old_certificate() {
        let now = 1_000_000;
        let mut r = CertRecord::new(host("a.test"));
        r.start_attempt(now);
        r.succeed(now, issued(now, 90), None, 0.0);
        let renew = r.renew_at.unwrap();
        r.start_attempt(renew);
        assert_eq!(r.phase, Phase::Renewing);
        r.fail(renew, "connection refused".into(), 0.0);
        assert_eq!(r.phase, Phase::Failed);
        assert!(r.cert.is_some(), "the working certificate is kept");
        assert_eq!(r.next_attempt, Some(renew + 300));
        let records = BTreeMap::from([(host("a.test"), r.clone())]);
        let hs = hosts(&["a.test"]);
        assert_eq!(plan(renew + 299, &hs, &records), vec![], "no retry storm");
        assert_eq!(plan(renew + 300, &hs, &records).len(), 1);
        assert_eq!(backoff(2, 0.0), 600);
        assert_eq!(backoff(3, 0.0), 1200);
        assert_eq!(backoff(40, 0.0), MAX_BACKOFF_SECS);
        assert!(backoff(1, 0.99) < 330);
    }

    #[test]
    fn a_failing_host_stays_inside_the_hourly_limit() {
        let now = 1_000_000;
        let mut r = CertRecord::new(host("a.test"));
        let mut t = now;
        let mut attempts = Vec::new();
        let hs = hosts(&["a.test"]);
        // Simulate a day of a host that never validates, a minute at a time.
        while t < now + DAY {
            let records = BTreeMap::from([(host("a.test"), r.clone())]);
            if !plan(t, &hs, &records).is_empty() {
                r.start_attempt(t);
                r.fail(t, "no".into(), 0.5);
                attempts.push(t);
            }
            t += 60;
        }
        for &a in &attempts {
            let in_hour = attempts.iter().filter(|&&b| b >= a && b - a < HOUR).count();
            assert!(in_hour <= MAX_ORDERS_PER_HOUR, "{attempts:?}");
        }
        assert!(attempts.len() < 12, "{} attempts in a day", attempts.len());
    }

    #[test]
    fn forced_renewals_skip_the_backoff_but_not_the_limits() {
        let now = 1_000_000;
        let mut r = CertRecord::new(host("a.test"));
        r.start_attempt(now);
        r.succeed(now, issued(now, 90), None, 0.0);
        let hs = hosts(&["a.test"]);
        for i in 1..MAX_ORDERS_PER_HOUR as i64 {
            r.forced = true;
            let records = BTreeMap::from([(host("a.test"), r.clone())]);
            assert_eq!(
                plan(now + i, &hs, &records),
                vec![Action::Renew(host("a.test"))]
            );
            r.start_attempt(now + i);
            r.fail(now + i, "x".into(), 0.0);
        }
        r.forced = true;
        let records = BTreeMap::from([(host("a.test"), r.clone())]);
        assert_eq!(plan(now + 10, &hs, &records), vec![]);
        let limited = r.limit(now + 10).unwrap_err();
        assert_eq!(limited.until, now + HOUR);
        assert_eq!(
            next_due(now + 10, &hs, &records).map(|t| t <= now + HOUR),
            Some(true)
        );
    }

    #[test]
    fn renewal_follows_the_cas_window_but_never_too_early() {
        let nb = 1_000_000;
        let na = nb + 90 * DAY;
        let w = RenewalWindow {
            start: nb + 60 * DAY,
            end: nb + 62 * DAY,
        };
        assert_eq!(
            renewal_time(nb, na, Some(w), 0.0),
            (w.start, RenewBasis::Ari)
        );
        assert_eq!(renewal_time(nb, na, Some(w), 0.5).0, nb + 61 * DAY);
        // A stale window in the past does not renew a fresh certificate at once.
        let stale = RenewalWindow {
            start: nb - 10 * DAY,
            end: nb - 9 * DAY,
        };
        assert_eq!(renewal_time(nb, na, Some(stale), 0.3).0, nb + 30 * DAY);
        assert_eq!(
            renewal_time(nb, na, None, 0.0),
            (nb + 60 * DAY, RenewBasis::TwoThirds)
        );
    }

    #[test]
    fn renewal_info_moves_the_time_and_schedules_the_next_check() {
        let now = 1_000_000;
        let mut r = CertRecord::new(host("a.test"));
        r.start_attempt(now);
        r.succeed(now, issued(now, 90), None, 0.0);
        let w = RenewalWindow {
            start: now + 40 * DAY,
            end: now + 41 * DAY,
        };
        r.apply_renewal_info(now, w, 10, 0.0);
        assert_eq!(r.renew_at, Some(w.start));
        assert_eq!(r.ari_check_at, Some(now + ARI_MIN_RECHECK_SECS));
        // Same window later: the chosen time stays.
        r.apply_renewal_info(now + HOUR, w, 100_000, 0.9);
        assert_eq!(r.renew_at, Some(w.start));
        assert_eq!(r.ari_check_at, Some(now + HOUR + ARI_MAX_RECHECK_SECS));
        let records = BTreeMap::from([(host("a.test"), r.clone())]);
        assert_eq!(
            plan(
                now + HOUR + ARI_MAX_RECHECK_SECS,
                &hosts(&["a.test"]),
                &records
            ),
            vec![Action::CheckRenewalInfo(host("a.test"))]
        );
    }
}
