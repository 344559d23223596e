//! Certificates: parsed key pairs, the SNI lookup table, and the resolver Pingora's rustls
//! listener calls on every handshake.
//!
//! The resolver is synchronous and runs inside the handshake, so it only reads the current
//! snapshot; anything slow (issuing, generating, loading from disk) happens on the control
//! plane's side before a snapshot is published.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::host::HostPattern;
use crate::Edge;

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("the certificate PEM holds no certificate")]
    NoCertificate,
    #[error("the key PEM holds no usable private key: {0}")]
    BadKey(String),
    #[error("the certificate could not be read: {0}")]
    BadCertificate(String),
    #[error("could not generate a self-signed certificate: {0}")]
    Generate(String),
}

/// Where a certificate came from, so the UI can say whether a browser will trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertSource {
    /// Made by the edge so a routed host answers TLS before a real certificate exists.
    SelfSigned,
    /// Issued by an ACME certificate authority.
    Acme,
}

/// A certificate chain and its key, as PEM text: the form that is stored and reloaded.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertPem {
    pub chain: String,
    pub key: String,
}

impl fmt::Debug for CertPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a secret: never in a log line.
        f.debug_struct("CertPem")
            .field("chain", &format_args!("{} bytes", self.chain.len()))
            .field("key", &"<redacted>")
            .finish()
    }
}

/// What a person wants to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// Hex, as browsers show it.
    pub serial: String,
    pub issuer: String,
    pub source: CertSource,
}

/// A parsed, ready-to-serve certificate.
#[derive(Clone)]
pub struct Certificate {
    pub key: Arc<CertifiedKey>,
    pub info: CertInfo,
    pub pem: CertPem,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Parses a PEM chain and key (any key type rustls supports; we issue ECDSA P-256).
    pub fn from_pem(pem: CertPem, source: CertSource) -> Result<Self, CertError> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pem.chain.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| CertError::BadCertificate(e.to_string()))?;
        let leaf = chain.first().ok_or(CertError::NoCertificate)?;
        let info = cert_info(leaf, source)?;
        let key_der = PrivateKeyDer::from_pem_slice(pem.key.as_bytes())
            .map_err(|e| CertError::BadKey(e.to_string()))?;
        let signing_key = rustls::crypto::ring::sign::any_supported_type(&key_der)
            .map_err(|e| CertError::BadKey(e.to_string()))?;
        let key = CertifiedKey::new(chain, signing_key);
        // A chain whose leaf does not belong to the key would fail every handshake: refuse it now.
        key.keys_match()
            .map_err(|e| CertError::BadKey(format!("key does not match certificate: {e}")))?;
        Ok(Self {
            key: Arc::new(key),
            info,
            pem,
        })
    }

    /// A self-signed ECDSA P-256 certificate for one host or wildcard.
    pub fn self_signed(pattern: &HostPattern) -> Result<Self, CertError> {
        Self::self_signed_for(&pattern.to_string())
    }

    fn self_signed_for(name: &str) -> Result<Self, CertError> {
        let generated = rcgen::generate_simple_self_signed(vec![name.to_string()])
            .map_err(|e| CertError::Generate(e.to_string()))?;
        let pem = CertPem {
            chain: generated.cert.pem(),
            key: generated.signing_key.serialize_pem(),
        };
        Self::from_pem(pem, CertSource::SelfSigned)
    }
}

fn cert_info(leaf: &CertificateDer<'_>, source: CertSource) -> Result<CertInfo, CertError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(leaf.as_ref())
        .map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_owned)),
        );
    }
    Ok(CertInfo {
        names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        serial: cert.raw_serial_as_string().replace(':', ""),
        issuer: cert.issuer().to_string(),
        source,
    })
}

/// SNI name → certificate, exact names first, then wildcards (one label deep).
#[derive(Debug, Clone, Default)]
pub struct CertTable {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl CertTable {
    pub fn from_certs(certs: &BTreeMap<HostPattern, Certificate>) -> Self {
        let mut table = Self::default();
        for (pattern, cert) in certs {
            let key = Arc::clone(&cert.key);
            match pattern {
                HostPattern::Exact(h) => table.exact.insert(h.as_str().to_owned(), key),
                HostPattern::Wildcard(p) => table.wildcard.insert(p.as_str().to_owned(), key),
            };
        }
        table
    }

    /// Finds the certificate for a normalised (lower-case) SNI name.
    pub fn lookup(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        if let Some(key) = self.exact.get(name) {
            return Some(key);
        }
        let (label, parent) = name.split_once('.')?;
        if label.is_empty() {
            return None;
        }
        self.wildcard.get(parent)
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Picks the certificate by SNI from the edge's current snapshot.
pub struct SniResolver {
    edge: Edge,
    fallback: Arc<CertifiedKey>,
}

impl SniResolver {
    pub fn new(edge: Edge) -> Result<Self, CertError> {
        let fallback = Certificate::self_signed_for("minicloud-fallback.invalid")?;
        Ok(Self {
            edge,
            fallback: fallback.key,
        })
    }
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SniResolver")
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let snapshot = self.edge.snapshot();
        let found = hello.server_name().and_then(|name| {
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                snapshot.certs.lookup(&name.to_ascii_lowercase()).cloned()
            } else {
                snapshot.certs.lookup(name).cloned()
            }
        });
        // No SNI (a bare IP) or a name we do not serve: the fallback certificate, which names
        // no host, so the client gets a readable 404 page rather than a handshake failure,
        // and learns nothing about which names live here.
        found.or_else(|| Some(Arc::clone(&self.fallback)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_round_trips_through_pem() {
        let pattern = HostPattern::parse("app.example.com").unwrap();
        let cert = Certificate::self_signed(&pattern).unwrap();
        assert_eq!(cert.info.names, vec!["app.example.com"]);
        assert_eq!(cert.info.source, CertSource::SelfSigned);
        assert!(cert.info.not_after > cert.info.not_before);
        let again = Certificate::from_pem(cert.pem.clone(), CertSource::SelfSigned).unwrap();
        assert_eq!(again.info.serial, cert.info.serial);
        assert!(cert.pem.key.contains("PRIVATE KEY"));
        assert!(!format!("{:?}", cert.pem).contains("PRIVATE"));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let a = Certificate::self_signed(&HostPattern::parse("a.example").unwrap()).unwrap();
        let b = Certificate::self_signed(&HostPattern::parse("b.example").unwrap()).unwrap();
        let mixed = CertPem {
            chain: a.pem.chain,
            key: b.pem.key,
        };
        assert!(matches!(
            Certificate::from_pem(mixed, CertSource::Acme),
            Err(CertError::BadKey(_))
        ));
        let garbage = CertPem {
            chain: "nope".into(),
            key: "nope".into(),
        };
        assert!(Certificate::from_pem(garbage, CertSource::Acme).is_err());
    }

    #[test]
    fn lookup_prefers_exact_then_one_label_wildcard() {
        let mut certs = BTreeMap::new();
        for p in ["*.example.com", "api.example.com"] {
            let pattern = HostPattern::parse(p).unwrap();
            certs.insert(pattern.clone(), Certificate::self_signed(&pattern).unwrap());
        }
        let table = CertTable::from_certs(&certs);
        let exact = &certs[&HostPattern::parse("api.example.com").unwrap()].key;
        let wild = &certs[&HostPattern::parse("*.example.com").unwrap()].key;
        assert!(Arc::ptr_eq(table.lookup("api.example.com").unwrap(), exact));
        assert!(Arc::ptr_eq(table.lookup("www.example.com").unwrap(), wild));
        assert!(table.lookup("example.com").is_none());
        assert!(table.lookup("a.b.example.com").is_none());
    }
}
