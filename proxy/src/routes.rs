//! The route table: which upstream serves a host. Plain data, no I/O, no locks: the edge
//! reads it from the current [`Snapshot`](crate::Snapshot) on every request.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::host::{HostPattern, Hostname};

/// Where a route sends requests: one address on this machine or on the container network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Upstream(pub SocketAddr);

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a string is not an upstream address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an upstream address (expected IP:PORT, e.g. '127.0.0.1:9000')")]
pub struct UpstreamError(String);

impl FromStr for Upstream {
    type Err = UpstreamError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // IP:PORT only: resolving names on the request path would put DNS on every request.
        match s.parse::<SocketAddr>() {
            Ok(addr) if addr.port() != 0 => Ok(Self(addr)),
            _ => Err(UpstreamError(s.to_string())),
        }
    }
}

impl serde::Serialize for Upstream {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Upstream {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Host → upstream, exact names first, then `*.parent` wildcards; and the parked hosts.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    exact: HashMap<String, Upstream>,
    /// Keyed by the wildcard's parent domain.
    wildcard: HashMap<String, Upstream>,
    /// Hosts with an owner but nothing serving them (a stopped app): host → why, for a 503.
    parked: HashMap<String, String>,
}

impl RouteTable {
    /// Builds the lookup maps from the control plane's ordered view.
    pub fn from_routes(routes: &BTreeMap<HostPattern, Upstream>) -> Self {
        Self::from_parts(routes, &BTreeMap::new())
    }

    /// Like [`Self::from_routes`], with parked exact hosts (routes win over them).
    pub fn from_parts(
        routes: &BTreeMap<HostPattern, Upstream>,
        parked: &BTreeMap<Hostname, String>,
    ) -> Self {
        let mut table = Self::default();
        for (host, why) in parked {
            table.parked.insert(host.as_str().to_owned(), why.clone());
        }
        for (pattern, upstream) in routes {
            match pattern {
                HostPattern::Exact(h) => table.exact.insert(h.as_str().to_owned(), *upstream),
                HostPattern::Wildcard(p) => table.wildcard.insert(p.as_str().to_owned(), *upstream),
            };
        }
        table
    }

    /// Finds the upstream for a normalised host name (see [`crate::host_from_authority`]).
    pub fn lookup(&self, host: &str) -> Option<Upstream> {
        if let Some(up) = self.exact.get(host) {
            return Some(*up);
        }
        let (label, parent) = host.split_once('.')?;
        if label.is_empty() {
            return None;
        }
        self.wildcard.get(parent).copied()
    }

    /// Why a host that nothing serves is parked, if it is.
    pub fn parked(&self, host: &str) -> Option<&str> {
        self.parked.get(host).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an exact host is routed (used to decide which hosts get certificates).
    pub fn routes_exact(&self, host: &Hostname) -> bool {
        self.exact.contains_key(host.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &str)]) -> RouteTable {
        let routes = entries
            .iter()
            .map(|(h, u)| (HostPattern::parse(h).unwrap(), u.parse().unwrap()))
            .collect();
        RouteTable::from_routes(&routes)
    }

    #[test]
    fn exact_beats_wildcard() {
        let t = table(&[
            ("*.example.com", "127.0.0.1:1"),
            ("api.example.com", "127.0.0.1:2"),
        ]);
        assert_eq!(
            t.lookup("api.example.com").unwrap().to_string(),
            "127.0.0.1:2"
        );
        assert_eq!(
            t.lookup("www.example.com").unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert_eq!(t.lookup("example.com"), None);
        assert_eq!(t.lookup("a.b.example.com"), None);
        assert_eq!(t.lookup(".example.com"), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn parked_hosts_are_known_and_routes_still_win() {
        let routes = [(
            HostPattern::parse("a.test").unwrap(),
            "127.0.0.1:1".parse().unwrap(),
        )];
        let parked = [
            (Hostname::parse("a.test").unwrap(), "shadowed".to_owned()),
            (Hostname::parse("b.test").unwrap(), "stopped".to_owned()),
        ];
        let t = RouteTable::from_parts(&routes.into(), &parked.into());
        assert!(t.lookup("a.test").is_some());
        assert_eq!(t.parked("b.test"), Some("stopped"));
        assert_eq!(t.lookup("b.test"), None);
        assert_eq!(t.parked("c.test"), None);
    }

    #[test]
    fn upstreams_are_socket_addresses() {
        assert!("127.0.0.1:9000".parse::<Upstream>().is_ok());
        assert!("[::1]:9000".parse::<Upstream>().is_ok());
        for bad in ["localhost:9000", "127.0.0.1", "127.0.0.1:0", "http://x", ""] {
            let err = bad.parse::<Upstream>().unwrap_err();
            assert!(err.to_string().contains("expected IP:PORT"), "{bad}");
        }
    }
}
