//! Who owns a host, and what the edge serves: both computed from the stored owners.
//!
//! A host belongs to exactly one owner: the admin host, an app's default host
//! (`<app>.<domain>`), an app's custom domain, or an external route. [`owner_of`] is the one
//! check every claim goes through; [`plan_routes`] is the whole route table the edge should
//! serve, derived from the store and the upstreams of the revisions serving now. The edge is
//! never edited host by host, so removing one owner's host can never remove another's.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use minicloud_proxy::{HostPattern, Hostname, Upstream};

use crate::model::{short, AppName};
use crate::store::{AppRecord, RouteRecord};

/// The one owner of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// minicloud's admin UI and API.
    Admin,
    /// `<app>.<domain>`.
    App(AppName),
    /// A custom domain of an app.
    Domain(AppName),
    /// An external route.
    Route,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin => f.write_str("minicloud's admin UI and API"),
            Self::App(app) => write!(f, "app {app} (its own address)"),
            Self::Domain(app) => write!(f, "app {app} (a custom domain)"),
            Self::Route => f.write_str("an external route"),
        }
    }
}

/// A host someone else owns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{host}' is already served by {owner}; remove it there first")]
pub struct HostTaken {
    pub host: HostPattern,
    pub owner: Owner,
}

/// Everything that owns hosts, as the store holds it.
#[derive(Debug, Clone, Copy)]
pub struct Owners<'a> {
    pub admin: &'a Hostname,
    pub domain: &'a Hostname,
    pub apps: &'a [AppRecord],
    pub routes: &'a [RouteRecord],
}

impl Owners<'_> {
    /// `<app>.<domain>`.
    pub fn default_host(&self, app: &AppName) -> Option<Hostname> {
        self.domain.child(app.as_str()).ok()
    }

    /// Every host pattern and its owner, in no particular order.
    fn all(&self) -> impl Iterator<Item = (HostPattern, Owner)> + '_ {
        let admin = std::iter::once((HostPattern::Exact(self.admin.clone()), Owner::Admin));
        let apps = self.apps.iter().flat_map(move |app| {
            let default = self
                .default_host(&app.name)
                .map(|h| (HostPattern::Exact(h), Owner::App(app.name.clone())));
            let domains = app.domains.iter().map(|d| {
                (
                    HostPattern::Exact(d.clone()),
                    Owner::Domain(app.name.clone()),
                )
            });
            default.into_iter().chain(domains)
        });
        let routes = self.routes.iter().map(|r| (r.host.clone(), Owner::Route));
        admin.chain(apps).chain(routes)
    }

    /// Who owns `host` now, if anyone.
    pub fn owner_of(&self, host: &HostPattern) -> Option<Owner> {
        self.all().find(|(h, _)| h == host).map(|(_, o)| o)
    }

    /// Refuses `host` for `claimant` if anyone else owns it. Owning it already is fine
    /// (setting a route again replaces its upstream).
    pub fn check_free(&self, host: &HostPattern, claimant: &Owner) -> Result<(), HostTaken> {
        match self.owner_of(host) {
            Some(owner) if owner != *claimant => Err(HostTaken {
                host: host.clone(),
                owner,
            }),
            _ => Ok(()),
        }
    }
}

/// What the edge serves: every owner's hosts and where they go. `admin_upstream` is the API's
/// address; `serving` the upstream of each app's serving revision. A stopped app or one
/// with no serving revision has no route. Should a store from before owners were checked
/// hold a host twice, the admin host wins, then apps, then routes.
pub fn plan_routes(
    owners: &Owners<'_>,
    admin_upstream: Option<Upstream>,
    serving: &BTreeMap<AppName, Upstream>,
) -> BTreeMap<HostPattern, Upstream> {
    let mut plan = BTreeMap::new();
    for route in owners.routes {
        plan.insert(route.host.clone(), route.upstream);
    }
    for app in owners.apps.iter().filter(|a| !a.stopped) {
        let Some(upstream) = serving.get(&app.name) else {
            continue;
        };
        let default = owners.default_host(&app.name);
        for host in default.into_iter().chain(app.domains.iter().cloned()) {
            plan.insert(HostPattern::Exact(host), *upstream);
        }
    }
    if let Some(up) = admin_upstream {
        plan.insert(HostPattern::Exact(owners.admin.clone()), up);
    }
    plan
}

/// The hosts of apps that nothing serves now, and why: the edge answers them with a 503
/// saying so, not the 404 of an address nobody owns. `maintenance` says why an app is out
/// of service on purpose (a restore).
pub fn plan_parked(
    owners: &Owners<'_>,
    serving: &BTreeMap<AppName, Upstream>,
    maintenance: &BTreeMap<AppName, String>,
) -> BTreeMap<Hostname, String> {
    let mut parked = BTreeMap::new();
    for app in owners.apps {
        let why = if app.stopped {
            format!(
                "The app {} is stopped. Its owner can start it again in minicloud",
                app.name
            )
        } else if serving.contains_key(&app.name) {
            continue;
        } else if let Some(why) = maintenance.get(&app.name) {
            why.clone()
        } else {
            format!(
                "The app {} is not running right now (it is starting, or failing). Try again in a moment",
                app.name
            )
        };
        let default = owners.default_host(&app.name);
        for host in default.into_iter().chain(app.domains.iter().cloned()) {
            parked.insert(host, why.clone());
        }
    }
    parked
}

/// Why a name cannot be an app's custom domain, beyond being a valid host name: an IP
/// literal, a single label, the base domain itself or a name under it (those are reserved
/// for apps' own addresses), or a wildcard. The admin host passes: its owner is named by the
/// owner check like any other.
pub fn check_custom_domain(
    input: &str,
    domain: &Hostname,
    admin: &Hostname,
) -> Result<Hostname, String> {
    let shown = short(input);
    let trimmed = input.trim();
    if trimmed.starts_with("*.") {
        return Err(format!(
            "'{shown}' is a wildcard: wildcards are only for routes (`routes add`); a domain is one host name like 'shop.example.com'"
        ));
    }
    if trimmed.parse::<IpAddr>().is_ok()
        || trimmed
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .is_some_and(|s| s.parse::<IpAddr>().is_ok())
    {
        return Err(format!(
            "'{shown}' is an IP address; a domain is a host name like 'shop.example.com'"
        ));
    }
    let host = Hostname::parse(trimmed).map_err(|e| e.to_string())?;
    if host.parent().is_none() {
        return Err(format!(
            "'{host}' is a single label; a domain is a full host name like 'shop.example.com'"
        ));
    }
    if host == *domain {
        return Err(format!(
            "'{host}' is minicloud's base domain; apps live under it as '<app>.{domain}'"
        ));
    }
    if host.parent() == Some(domain.as_str()) && host != *admin {
        return Err(format!(
            "'{host}' is reserved for an app named '{}': names '<app>.{domain}' are apps' own addresses",
            host.as_str().split('.').next().unwrap_or_default()
        ));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::{ImageRef, Secret};

    fn host(s: &str) -> Hostname {
        Hostname::parse(s).unwrap()
    }

    fn pattern(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    fn app(name: &str, domains: &[&str], stopped: bool) -> AppRecord {
        AppRecord {
            name: name.parse().unwrap(),
            image: "registry.test/x:1".parse::<ImageRef>().unwrap(),
            registry_auth: None,
            env: BTreeMap::new(),
            env_before: None,
            domains: domains.iter().map(|d| host(d)).collect::<BTreeSet<_>>(),
            memory_mb: 256,
            pids_limit: None,
            cpu_shares: None,
            webhook_secret: Secret::new(String::from("s")),
            stopped,
            current: Some(1),
            created_at: 0,
            added_services: BTreeSet::new(),
        }
    }

    fn route(h: &str, up: &str) -> RouteRecord {
        RouteRecord {
            host: pattern(h),
            upstream: up.parse().unwrap(),
            created_at: 0,
        }
    }

    fn up(s: &str) -> Upstream {
        s.parse().unwrap()
    }

    #[test]
    fn every_host_has_one_owner_and_the_check_names_it() {
        let (admin, domain) = (host("admin.qa.test"), host("qa.test"));
        let apps = [app("qa1", &["shop.example.com"], false)];
        let routes = [route("ext.example.com", "127.0.0.1:9")];
        let owners = Owners {
            admin: &admin,
            domain: &domain,
            apps: &apps,
            routes: &routes,
        };
        let qa1: AppName = "qa1".parse().unwrap();
        let cases = [
            ("admin.qa.test", Owner::Admin),
            ("qa1.qa.test", Owner::App(qa1.clone())),
            ("shop.example.com", Owner::Domain(qa1.clone())),
            ("ext.example.com", Owner::Route),
        ];
        for (h, owner) in &cases {
            assert_eq!(owners.owner_of(&pattern(h)).as_ref(), Some(owner), "{h}");
            let err = owners.check_free(&pattern(h), &Owner::Route);
            if *owner == Owner::Route {
                assert!(err.is_ok());
            } else {
                let err = err.unwrap_err();
                assert_eq!(err.owner, *owner);
                assert!(err.to_string().contains(&owner.to_string()), "{err}");
            }
        }
        // Another app cannot take qa1's hosts either; qa1 may have its own again.
        let other = Owner::Domain("qa2".parse().unwrap());
        assert!(owners.check_free(&pattern("qa1.qa.test"), &other).is_err());
        assert!(owners
            .check_free(&pattern("shop.example.com"), &Owner::Domain(qa1))
            .is_ok());
        assert!(owners
            .check_free(&pattern("free.example.com"), &other)
            .is_ok());
        // A wildcard is its own pattern: it does not own the exact names under it.
        assert!(owners.owner_of(&pattern("*.qa.test")).is_none());
    }

    #[test]
    fn the_plan_is_every_owner_and_removing_one_never_removes_another() {
        let (admin, domain) = (host("admin.qa.test"), host("qa.test"));
        let apps = vec![
            app("qa1", &["shop.example.com"], false),
            app("qa2", &[], true),
            app("qa3", &[], false),
        ];
        let routes = vec![
            route("ext.example.com", "127.0.0.1:9"),
            route("*.qa.test", "127.0.0.1:8"),
        ];
        let serving: BTreeMap<AppName, Upstream> = [
            ("qa1".parse().unwrap(), up("172.18.0.2:8080")),
            ("qa2".parse().unwrap(), up("172.18.0.3:8080")),
        ]
        .into();
        let owners = Owners {
            admin: &admin,
            domain: &domain,
            apps: &apps,
            routes: &routes,
        };
        let plan = plan_routes(&owners, Some(up("127.0.0.1:7780")), &serving);
        let expected: BTreeMap<HostPattern, Upstream> = [
            (pattern("admin.qa.test"), up("127.0.0.1:7780")),
            (pattern("qa1.qa.test"), up("172.18.0.2:8080")),
            (pattern("shop.example.com"), up("172.18.0.2:8080")),
            (pattern("ext.example.com"), up("127.0.0.1:9")),
            (pattern("*.qa.test"), up("127.0.0.1:8")),
        ]
        .into();
        // qa2 is stopped and qa3 serves no revision: neither is routed, both are parked.
        assert_eq!(plan, expected);
        let parked = plan_parked(&owners, &serving, &BTreeMap::new());
        assert_eq!(
            parked.keys().map(Hostname::as_str).collect::<Vec<_>>(),
            ["qa2.qa.test", "qa3.qa.test"]
        );
        assert!(parked[&host("qa2.qa.test")].contains("qa2 is stopped"));
        assert!(parked[&host("qa3.qa.test")].contains("not running"));
        // An app out of service on purpose says why; one still serving is not parked.
        let maintenance: BTreeMap<AppName, String> = [
            ("qa1".parse().unwrap(), "qa1 is being restored".to_owned()),
            ("qa3".parse().unwrap(), "qa3 is being restored".to_owned()),
        ]
        .into();
        let parked = plan_parked(&owners, &serving, &maintenance);
        assert!(!parked.contains_key(&host("qa1.qa.test")));
        assert_eq!(parked[&host("qa3.qa.test")], "qa3 is being restored");

        // Each owner removed in turn takes exactly its own hosts with it.
        for i in 0..routes.len() {
            let mut fewer = routes.clone();
            let gone = fewer.remove(i);
            let owners = Owners {
                routes: &fewer,
                ..owners
            };
            let next = plan_routes(&owners, Some(up("127.0.0.1:7780")), &serving);
            let mut want = expected.clone();
            want.remove(&gone.host);
            assert_eq!(next, want, "without route {}", gone.host);
        }
        let without_qa1 = &apps[1..];
        let owners_without = Owners {
            apps: without_qa1,
            ..owners
        };
        let next = plan_routes(&owners_without, Some(up("127.0.0.1:7780")), &serving);
        let mut want = expected.clone();
        want.remove(&pattern("qa1.qa.test"));
        want.remove(&pattern("shop.example.com"));
        assert_eq!(next, want);
    }

    #[test]
    fn an_old_store_with_a_host_twice_serves_the_app_not_the_route() {
        let (admin, domain) = (host("admin.qa.test"), host("qa.test"));
        let apps = vec![app("qa1", &[], false)];
        let routes = vec![
            route("qa1.qa.test", "127.0.0.1:9"),
            route("admin.qa.test", "127.0.0.1:9"),
        ];
        let serving = [("qa1".parse().unwrap(), up("172.18.0.2:8080"))].into();
        let owners = Owners {
            admin: &admin,
            domain: &domain,
            apps: &apps,
            routes: &routes,
        };
        let plan = plan_routes(&owners, Some(up("127.0.0.1:7780")), &serving);
        assert_eq!(plan[&pattern("qa1.qa.test")], up("172.18.0.2:8080"));
        assert_eq!(plan[&pattern("admin.qa.test")], up("127.0.0.1:7780"));
    }

    #[test]
    fn custom_domains_are_real_host_names_outside_the_apps_space() {
        let (domain, admin) = (host("qa.test"), host("admin.qa.test"));
        assert_eq!(
            check_custom_domain("Shop.Example.com.", &domain, &admin).unwrap(),
            host("shop.example.com")
        );
        for (bad, says) in [
            ("127.0.0.1", "IP address"),
            ("10.0.0.1", "IP address"),
            ("::1", "IP address"),
            ("[::1]", "IP address"),
            ("example", "single label"),
            ("qa.test", "base domain"),
            ("QA.test", "base domain"),
            ("qaother.qa.test", "reserved for an app named 'qaother'"),
            ("*.example.com", "wildcards are only for routes"),
        ] {
            let err = check_custom_domain(bad, &domain, &admin).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(!err.contains("or '*.example.com'"), "{bad}: {err}");
        }
        // A name deeper under the base domain is no app's address, and allowed.
        assert!(check_custom_domain("a.b.qa.test", &domain, &admin).is_ok());
        // The admin host is left to the owner check, which names its owner.
        assert!(check_custom_domain("admin.qa.test", &domain, &admin).is_ok());
    }

    #[test]
    fn long_input_is_echoed_as_a_short_prefix() {
        let long = "a".repeat(100_000);
        let (domain, admin) = (host("qa.test"), host("admin.qa.test"));
        for bad in [
            format!("*.{long}"),
            long.clone(),
            format!("{long}.example.com"),
        ] {
            let err = check_custom_domain(&bad, &domain, &admin).unwrap_err();
            assert!(err.len() < 300, "{}", err.len());
        }
    }
}
