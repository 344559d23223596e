//! The edge's shared state and the handle the control plane changes it through.
//!
//! Routes, certificates and ACME challenges live in one immutable [`Snapshot`] behind an
//! atomic pointer. Requests and handshakes only load it; the control plane is the only writer
//! and changes it with [`Edge::update`], which builds the next snapshot and publishes it with
//! one store, so no request ever sees a route without its certificate or half of a change.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::{ArcSwap, Guard};

use crate::host::{HostPattern, Hostname};
use crate::metrics::TrafficMetrics;
use crate::routes::{RouteTable, Upstream};
use crate::tls::{CertInfo, CertTable, Certificate};

/// What the edge serves right now. Parts that did not change are shared between snapshots.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub routes: Arc<RouteTable>,
    pub certs: Arc<CertTable>,
    /// ACME HTTP-01 token → key authorization.
    pub challenges: Arc<HashMap<String, String>>,
}

/// The control plane's handle on the edge. Cheap to clone; all clones see the same state.
#[derive(Clone, Default)]
pub struct Edge {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    current: ArcSwap<Snapshot>,
    /// The writer's ordered view, from which snapshots are built. Never touched by requests.
    desired: Mutex<Desired>,
    /// Traffic per routed host: bumped by requests, its hosts set with the routes.
    metrics: TrafficMetrics,
}

#[derive(Default)]
struct Desired {
    routes: BTreeMap<HostPattern, Upstream>,
    /// Hosts with an owner but nothing serving them: answered with a 503 and why.
    parked: BTreeMap<Hostname, String>,
    /// Certificates the control plane installed (ACME). They win over self-signed ones.
    certs: BTreeMap<HostPattern, Certificate>,
    /// Generated for routed hosts that have no installed certificate; kept while routed so a
    /// host does not get a new self-signed certificate on every change.
    self_signed: BTreeMap<HostPattern, Certificate>,
    challenges: HashMap<String, String>,
}

impl Edge {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current snapshot, for the request path: no lock, no allocation.
    pub fn snapshot(&self) -> Guard<Arc<Snapshot>> {
        self.inner.current.load()
    }

    /// Traffic counters per exact routed host, for the request path and the dashboard.
    pub fn metrics(&self) -> &TrafficMetrics {
        &self.inner.metrics
    }

    /// Applies `change` and publishes the result as one new snapshot.
    ///
    /// Writers are serialized; the closure runs under the writer lock, so keep it to in-memory
    /// edits (do I/O before, then describe the outcome here).
    pub fn update<R>(&self, change: impl FnOnce(&mut Draft<'_>) -> R) -> R {
        let mut desired = self.lock_desired();
        let mut draft = Draft {
            desired: &mut desired,
            routes_changed: false,
            certs_changed: false,
            challenges_changed: false,
        };
        let result = change(&mut draft);
        let Draft {
            routes_changed,
            certs_changed,
            challenges_changed,
            ..
        } = draft;
        if routes_changed || certs_changed || challenges_changed {
            if routes_changed {
                desired.fill_self_signed();
                self.inner
                    .metrics
                    .track(desired.routes.keys().filter_map(|p| match p {
                        HostPattern::Exact(host) => Some(host.as_str()),
                        HostPattern::Wildcard(_) => None,
                    }));
            }
            let old = self.inner.current.load_full();
            let next = Snapshot {
                routes: if routes_changed {
                    Arc::new(RouteTable::from_parts(&desired.routes, &desired.parked))
                } else {
                    Arc::clone(&old.routes)
                },
                certs: if routes_changed || certs_changed {
                    Arc::new(desired.cert_table())
                } else {
                    Arc::clone(&old.certs)
                },
                challenges: if challenges_changed {
                    Arc::new(desired.challenges.clone())
                } else {
                    Arc::clone(&old.challenges)
                },
            };
            self.inner.current.store(Arc::new(next));
        }
        result
    }

    /// The routes as the control plane set them, ordered by host.
    pub fn routes(&self) -> BTreeMap<HostPattern, Upstream> {
        self.lock_desired().routes.clone()
    }

    /// Every certificate being served, by the pattern it serves.
    pub fn certificates(&self) -> BTreeMap<HostPattern, CertInfo> {
        let desired = self.lock_desired();
        desired
            .self_signed
            .iter()
            .chain(desired.served_certs())
            .map(|(p, c)| (p.clone(), c.info.clone()))
            .collect()
    }

    fn lock_desired(&self) -> MutexGuard<'_, Desired> {
        // A panic inside an update closure leaves `desired` as it was before the publish,
        // which is still a consistent state: keep going rather than poison the edge forever.
        self.inner
            .desired
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Desired {
    /// Whether `pattern` is answered at all: routed, or parked.
    fn answers(&self, pattern: &HostPattern) -> bool {
        self.routes.contains_key(pattern)
            || matches!(pattern, HostPattern::Exact(h) if self.parked.contains_key(h))
    }

    fn fill_self_signed(&mut self) {
        let answered: Vec<HostPattern> = self
            .routes
            .keys()
            .cloned()
            .chain(self.parked.keys().cloned().map(HostPattern::Exact))
            .collect();
        let keep: std::collections::BTreeSet<&HostPattern> = answered.iter().collect();
        let Self {
            certs, self_signed, ..
        } = self;
        self_signed.retain(|pattern, _| keep.contains(pattern) && !certs.contains_key(pattern));
        for pattern in &answered {
            if certs.contains_key(pattern) || self_signed.contains_key(pattern) {
                continue;
            }
            match Certificate::self_signed(pattern) {
                Ok(cert) => {
                    self_signed.insert(pattern.clone(), cert);
                }
                Err(e) => tracing::error!(host = %pattern, error = %e, "no certificate for host"),
            }
        }
    }

    fn cert_table(&self) -> CertTable {
        let mut all = self.self_signed.clone();
        all.extend(self.served_certs().map(|(p, c)| (p.clone(), c.clone())));
        CertTable::from_certs(&all)
    }

    /// Installed certificates of hosts that are routed: one kept for a host whose route was
    /// removed is not served (strangers learn nothing), but is back at once if it returns.
    fn served_certs(&self) -> impl Iterator<Item = (&HostPattern, &Certificate)> {
        self.certs.iter().filter(|(p, _)| self.answers(p))
    }
}

/// A change being prepared; see [`Edge::update`].
pub struct Draft<'a> {
    desired: &'a mut Desired,
    routes_changed: bool,
    certs_changed: bool,
    challenges_changed: bool,
}

impl Draft<'_> {
    /// Routes `host` to `upstream`; returns the upstream it replaced.
    pub fn set_route(&mut self, host: HostPattern, upstream: Upstream) -> Option<Upstream> {
        let old = self.desired.routes.insert(host, upstream);
        self.routes_changed |= old != Some(upstream);
        old
    }

    pub fn remove_route(&mut self, host: &HostPattern) -> Option<Upstream> {
        let old = self.desired.routes.remove(host);
        self.routes_changed |= old.is_some();
        old
    }

    pub fn routes(&self) -> &BTreeMap<HostPattern, Upstream> {
        &self.desired.routes
    }

    /// Replaces the parked hosts: each answers 503 with its reason while no route serves it.
    pub fn set_parked(&mut self, parked: BTreeMap<Hostname, String>) {
        if parked != self.desired.parked {
            self.desired.parked = parked;
            self.routes_changed = true;
        }
    }

    /// Serves `cert` for `host` from now on, replacing a self-signed or older one.
    pub fn set_certificate(&mut self, host: HostPattern, cert: Certificate) {
        self.desired.self_signed.remove(&host);
        self.desired.certs.insert(host, cert);
        self.certs_changed = true;
    }

    pub fn remove_certificate(&mut self, host: &HostPattern) -> Option<Certificate> {
        let old = self.desired.certs.remove(host);
        if old.is_some() {
            // Back to a self-signed one if the host is still routed.
            self.routes_changed = true;
        }
        old
    }

    pub fn set_challenge(&mut self, token: String, key_authorization: String) {
        self.desired.challenges.insert(token, key_authorization);
        self.challenges_changed = true;
    }

    pub fn remove_challenge(&mut self, token: &str) {
        self.challenges_changed |= self.desired.challenges.remove(token).is_some();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::CertSource;

    fn pattern(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn a_route_is_served_with_a_certificate_in_the_same_snapshot() {
        let edge = Edge::new();
        edge.update(|d| d.set_route(pattern("a.test"), "127.0.0.1:1".parse().unwrap()));
        let snap = edge.snapshot();
        assert_eq!(
            snap.routes.lookup("a.test").unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert!(snap.certs.lookup("a.test").is_some());
        assert_eq!(
            edge.certificates()[&pattern("a.test")].source,
            CertSource::SelfSigned
        );
    }

    #[test]
    fn self_signed_certificates_are_kept_while_routed_and_dropped_after() {
        let edge = Edge::new();
        edge.update(|d| d.set_route(pattern("a.test"), "127.0.0.1:1".parse().unwrap()));
        let first = edge.certificates()[&pattern("a.test")].serial.clone();
        edge.update(|d| d.set_route(pattern("a.test"), "127.0.0.1:2".parse().unwrap()));
        assert_eq!(edge.certificates()[&pattern("a.test")].serial, first);
        edge.update(|d| d.remove_route(&pattern("a.test")));
        assert!(edge.certificates().is_empty());
        assert!(edge.snapshot().certs.lookup("a.test").is_none());
    }

    #[test]
    fn an_installed_certificate_replaces_the_self_signed_one() {
        let edge = Edge::new();
        let host = pattern("a.test");
        edge.update(|d| d.set_route(host.clone(), "127.0.0.1:1".parse().unwrap()));
        let mut real = Certificate::self_signed(&host).unwrap();
        real.info.source = CertSource::Acme;
        let real_key = Arc::clone(&real.key);
        edge.update(|d| d.set_certificate(host.clone(), real));
        assert!(Arc::ptr_eq(
            edge.snapshot().certs.lookup("a.test").unwrap(),
            &real_key
        ));
        assert_eq!(edge.certificates().len(), 1);
        edge.update(|d| d.remove_certificate(&host));
        let fallback = edge.certificates()[&host].source;
        assert_eq!(fallback, CertSource::SelfSigned);
    }

    #[test]
    fn an_installed_certificate_is_served_only_while_routed() {
        let edge = Edge::new();
        let host = pattern("a.test");
        let mut real = Certificate::self_signed(&host).unwrap();
        real.info.source = CertSource::Acme;
        edge.update(|d| d.set_certificate(host.clone(), real));
        assert!(edge.snapshot().certs.lookup("a.test").is_none());
        assert!(edge.certificates().is_empty());
        edge.update(|d| d.set_route(host.clone(), "127.0.0.1:1".parse().unwrap()));
        assert_eq!(edge.certificates()[&host].source, CertSource::Acme);
        edge.update(|d| d.remove_route(&host));
        assert!(edge.snapshot().certs.lookup("a.test").is_none());
    }

    #[test]
    fn an_unchanged_update_publishes_nothing() {
        let edge = Edge::new();
        edge.update(|d| d.set_route(pattern("a.test"), "127.0.0.1:1".parse().unwrap()));
        let before = edge.snapshot().routes.clone();
        edge.update(|d| d.set_route(pattern("a.test"), "127.0.0.1:1".parse().unwrap()));
        assert!(Arc::ptr_eq(&before, &edge.snapshot().routes));
        edge.update(|d| d.set_challenge("tok".into(), "auth".into()));
        assert!(Arc::ptr_eq(&before, &edge.snapshot().routes));
        assert_eq!(edge.snapshot().challenges["tok"], "auth");
    }
}
