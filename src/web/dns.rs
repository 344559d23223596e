//! The DNS check of an app's domains: each name is resolved from this server and compared
//! with where the admin host resolves (it points here, or the admin app could not be
//! reached), so a person learns whether the name points here and which record to create.

use std::net::IpAddr;
use std::time::Duration;

/// How long one lookup may take: a page waits for it.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// What a name resolves to from here, against what it should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCheck {
    pub host: String,
    /// This server's addresses: where the admin host resolves.
    pub expected: Vec<IpAddr>,
    /// Where `host` resolves; empty when it does not.
    pub actual: Vec<IpAddr>,
}

impl DnsCheck {
    /// Every address of the name is one of this server's.
    pub fn points_here(&self) -> bool {
        !self.actual.is_empty() && self.actual.iter().all(|a| self.expected.contains(a))
    }

    /// What to do, in a sentence; `target` is the app's own name (`<app>.<domain>`), for a
    /// CNAME.
    pub fn advice(&self, target: &str) -> String {
        let host = &self.host;
        let list = |ips: &[IpAddr]| {
            ips.iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.points_here() {
            return format!("{host} points here.");
        }
        let record = match self.expected.is_empty() {
            true => format!("a CNAME record for {host} to {target}"),
            false => format!(
                "an A/AAAA record for {host} to {} (or a CNAME to {target})",
                list(&self.expected)
            ),
        };
        match self.actual.is_empty() {
            true => format!("{host} does not resolve yet: create {record}."),
            false => format!(
                "{host} points at {}, not at this server: create {record}.",
                list(&self.actual)
            ),
        }
    }
}

/// The addresses `host` resolves to from this server, sorted; none when it does not resolve
/// in time.
pub async fn resolve(host: &str) -> Vec<IpAddr> {
    let lookup = tokio::net::lookup_host((host, 443));
    let mut ips: Vec<IpAddr> = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
        _ => Vec::new(),
    };
    ips.sort();
    ips.dedup();
    ips
}

/// Checks every one of `hosts` against where `admin_host` resolves, together.
pub async fn check_all(admin_host: &str, hosts: &[String]) -> Vec<DnsCheck> {
    let expected = resolve(admin_host).await;
    let lookups = hosts.iter().map(|host| async {
        DnsCheck {
            host: host.clone(),
            expected: expected.clone(),
            actual: resolve(host).await,
        }
    });
    futures_util::future::join_all(lookups).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn check(expected: &[&str], actual: &[&str]) -> DnsCheck {
        DnsCheck {
            host: "www.example.com".into(),
            expected: expected.iter().map(|s| ip(s)).collect(),
            actual: actual.iter().map(|s| ip(s)).collect(),
        }
    }

    #[test]
    fn a_name_points_here_only_with_all_its_addresses_here() {
        assert!(check(&["192.0.2.1"], &["192.0.2.1"]).points_here());
        assert!(!check(&["192.0.2.1"], &["192.0.2.1", "198.51.100.7"]).points_here());
        assert!(!check(&["192.0.2.1"], &[]).points_here());
        assert!(!check(&[], &[]).points_here());
    }

    #[test]
    fn the_advice_names_the_record_to_create() {
        let target = "blog.apps.example.com";
        assert_eq!(
            check(&["192.0.2.1"], &["192.0.2.1"]).advice(target),
            "www.example.com points here."
        );
        assert_eq!(
            check(&["192.0.2.1"], &[]).advice(target),
            "www.example.com does not resolve yet: create an A/AAAA record for \
             www.example.com to 192.0.2.1 (or a CNAME to blog.apps.example.com)."
        );
        assert_eq!(
            check(&["192.0.2.1"], &["198.51.100.7"]).advice(target),
            "www.example.com points at 198.51.100.7, not at this server: create an A/AAAA \
             record for www.example.com to 192.0.2.1 (or a CNAME to blog.apps.example.com)."
        );
        assert_eq!(
            check(&[], &[]).advice(target),
            "www.example.com does not resolve yet: create a CNAME record for www.example.com \
             to blog.apps.example.com."
        );
    }

    #[tokio::test]
    async fn localhost_resolves_and_a_reserved_name_does_not() {
        assert!(resolve("localhost").await.iter().any(|a| a.is_loopback()));
        assert!(resolve("nothing.invalid").await.is_empty());
    }
}
