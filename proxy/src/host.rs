//! Host names as the edge sees them: validated, lower-cased, port-free.
//!
//! Everything that routes or picks a certificate works on these types, built once at the
//! boundary (API input, a `Host` header, an SNI name), so the rest of the edge compares plain,
//! already-normalised strings.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The longest DNS name (RFC 1035, without the trailing dot).
const MAX_NAME_LEN: usize = 253;
/// The longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// Why a string is not a usable host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("host name is empty")]
    Empty,
    /// Holds the name's first characters only: an error never echoes a huge input.
    #[error("host name '{0}…' is longer than 253 characters")]
    TooLong(String),
    #[error(
        "'{name}' is not a valid host name: {why} (expected e.g. 'app.example.com' or '*.example.com')"
    )]
    Invalid { name: String, why: &'static str },
}

/// A DNS host name: lower case, labels of `[a-z0-9-]`, no port, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(into = "String")]
pub struct Hostname(String);

impl Hostname {
    /// Validates and lower-cases `name`.
    pub fn parse(name: &str) -> Result<Self, HostError> {
        let lowered = name.trim_end_matches('.').to_ascii_lowercase();
        check_dns_name(&lowered)?;
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent domain (`a.b.c` → `b.c`); `None` for a single label.
    pub fn parent(&self) -> Option<&str> {
        self.0.split_once('.').map(|(_, rest)| rest)
    }

    /// Prefixes a label: `admin` + `example.com` → `admin.example.com`.
    pub fn child(&self, label: &str) -> Result<Self, HostError> {
        Self::parse(&format!("{label}.{}", self.0))
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Hostname> for String {
    fn from(h: Hostname) -> Self {
        h.0
    }
}

impl FromStr for Hostname {
    type Err = HostError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for Hostname {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What a route or a certificate is for: one host, or every direct child of a domain.
///
/// `*.example.com` matches `a.example.com` but neither `example.com` nor `a.b.example.com`,
/// the same rule certificates follow (RFC 6125), so a wildcard route and a wildcard
/// certificate always cover the same names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    Exact(Hostname),
    /// Holds the parent domain: `*.example.com` is `Wildcard(example.com)`.
    Wildcard(Hostname),
}

impl HostPattern {
    pub fn parse(s: &str) -> Result<Self, HostError> {
        match s.strip_prefix("*.") {
            Some(parent) => {
                let parent = Hostname::parse(parent)?;
                if parent.parent().is_none() {
                    return Err(HostError::Invalid {
                        name: s.to_string(),
                        why: "a wildcard needs at least two labels after '*.'",
                    });
                }
                Ok(Self::Wildcard(parent))
            }
            None => Ok(Self::Exact(Hostname::parse(s)?)),
        }
    }

    /// Whether a (normalised) host name falls under this pattern.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => h.as_str() == host,
            Self::Wildcard(parent) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent.as_str()),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(h) => write!(f, "{h}"),
            Self::Wildcard(parent) => write!(f, "*.{parent}"),
        }
    }
}

impl FromStr for HostPattern {
    type Err = HostError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Reads the host out of a `Host` header or an `:authority`: drops the port, lower-cases,
/// validates. Borrows when the input is already normal, which is the common case.
pub fn host_from_authority(raw: &[u8]) -> Result<Cow<'_, str>, HostError> {
    let raw = std::str::from_utf8(raw).map_err(|_| HostError::Invalid {
        name: String::from_utf8_lossy(raw).into_owned(),
        why: "not ASCII",
    })?;
    let host = if raw.starts_with('[') {
        // An IPv6 literal: never routed, but a well-formed request, not a malformed one.
        let end = raw.find(']').ok_or(HostError::Invalid {
            name: raw.to_string(),
            why: "unclosed '['",
        })?;
        return Ok(Cow::Borrowed(&raw[..=end]));
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                host
            }
            Some(_) => {
                return Err(HostError::Invalid {
                    name: raw.to_string(),
                    why: "bad port",
                })
            }
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        let lowered = host.to_ascii_lowercase();
        check_dns_name(&lowered)?;
        Ok(Cow::Owned(lowered))
    } else {
        check_dns_name(host)?;
        Ok(Cow::Borrowed(host))
    }
}

/// Checks an already lower-cased name. IPv4 literals pass (they are valid `Host` values);
/// they simply never match a route.
fn check_dns_name(name: &str) -> Result<(), HostError> {
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        let prefix: String = name.chars().take(40).collect();
        return Err(HostError::TooLong(prefix));
    }
    let invalid = |why| HostError::Invalid {
        name: name.to_string(),
        why,
    };
    for label in name.split('.') {
        if label.is_empty() {
            return Err(invalid("empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(invalid("a label is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid("only letters, digits, '-' and '.' are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label cannot start or end with '-'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_lowercased_and_validated() {
        assert_eq!(
            Hostname::parse("App.Example.COM.").unwrap().as_str(),
            "app.example.com"
        );
        assert_eq!(Hostname::parse("localhost").unwrap().as_str(), "localhost");
        for bad in [
            "", "a..b", "-a.com", "a-.com", "a_b.com", "a b", "é.com", "a.com:80", "*.a.com",
        ] {
            assert!(Hostname::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Hostname::parse(&"a".repeat(64)).is_err());
        assert!(Hostname::parse(&format!("{}.com", "a.".repeat(130))).is_err());
    }

    #[test]
    fn wildcard_matches_exactly_one_label() {
        let w = HostPattern::parse("*.example.com").unwrap();
        assert_eq!(w.to_string(), "*.example.com");
        assert!(w.matches("a.example.com"));
        assert!(!w.matches("example.com"));
        assert!(!w.matches("a.b.example.com"));
        assert!(!w.matches("aexample.com"));
        assert!(HostPattern::parse("*.com").is_err());
        assert!(HostPattern::parse("a.*.com").is_err());
    }

    #[test]
    fn authority_drops_port_and_case() {
        assert_eq!(
            host_from_authority(b"App.Example.com:8443").unwrap(),
            "app.example.com"
        );
        assert!(matches!(
            host_from_authority(b"app.example.com").unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(host_from_authority(b"[::1]:443").unwrap(), "[::1]");
        assert_eq!(host_from_authority(b"127.0.0.1:80").unwrap(), "127.0.0.1");
        for bad in [
            &b""[..],
            b":80",
            b"a.com:x",
            b"a.com:",
            b"bad host",
            b"a\xffb",
        ] {
            assert!(host_from_authority(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn child_builds_subdomains() {
        let d = Hostname::parse("example.com").unwrap();
        assert_eq!(d.child("admin").unwrap().as_str(), "admin.example.com");
        assert_eq!(d.parent(), Some("com"));
    }
}

/// Property tests: the stable stand-in for `fuzz/fuzz_targets/host.rs`, with the same
/// properties, over arbitrary bytes and over authority-shaped strings.
#[cfg(test)]
mod prop_tests {
    use super::*;
    use proptest::prelude::*;

    /// What `host_from_authority` must hold for any input: no panic, and an accepted host is
    /// already normal (a `Hostname` of itself, and the same when read again).
    fn check_authority(raw: &[u8]) {
        let Ok(host) = host_from_authority(raw) else {
            return;
        };
        if host.starts_with('[') {
            assert!(host.ends_with(']'), "{raw:?} → {host:?}");
            return;
        }
        let parsed = Hostname::parse(&host).expect("an accepted authority is a host name");
        assert_eq!(parsed.as_str(), host, "{raw:?} not normalised");
        assert_eq!(host_from_authority(host.as_bytes()).unwrap(), host);
    }

    /// A parsed name or pattern prints as something that parses back to itself.
    fn check_names(s: &str) {
        if let Ok(h) = Hostname::parse(s) {
            assert_eq!(Hostname::parse(h.as_str()).as_ref(), Ok(&h), "{s:?}");
            assert_eq!(
                host_from_authority(h.as_str().as_bytes()).unwrap(),
                h.as_str()
            );
        }
        if let Ok(p) = HostPattern::parse(s) {
            assert_eq!(HostPattern::parse(&p.to_string()).as_ref(), Ok(&p), "{s:?}");
            if let HostPattern::Wildcard(parent) = &p {
                let child = parent.child("x").unwrap();
                assert!(p.matches(child.as_str()));
                assert!(!p.matches(parent.as_str()));
            }
        }
    }

    /// 256 cases keep the unit tests fast; `PROPTEST_CASES=100000` hunts longer (proptest's
    /// default reads it; a test setting, not one of the edge's).
    #[allow(clippy::disallowed_methods)]
    fn config() -> ProptestConfig {
        match std::env::var_os("PROPTEST_CASES") {
            Some(_) => ProptestConfig::default(),
            None => ProptestConfig::with_cases(256),
        }
    }

    /// Mostly valid-looking: letters of both cases, digits, dots, dashes, a port, a wildcard.
    const AUTHORITY: &str = r"(\*\.)?[a-zA-Z0-9.-]{0,70}(:[0-9]{0,6})?\.?";

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn prop_authority_of_any_bytes(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            check_authority(&raw);
        }

        #[test]
        fn prop_authority_shaped(s in AUTHORITY) {
            check_authority(s.as_bytes());
            check_names(&s);
        }

        #[test]
        fn prop_names_of_any_string(s in "\\PC{0,300}") {
            check_names(&s);
        }
    }
}
