//! Certificates from an ACME certificate authority (Let's Encrypt, or Pebble in tests).
//!
//! Two halves: [`lifecycle`] is the pure part (per-host records, what is due, backoff, renewal
//! times, rate limits) and [`AcmeClient`] is the network part (account, order, HTTP-01 through
//! the edge's challenge map, CSR, chain). This module stores nothing and reads no files: the
//! control plane keeps the account key and the [`CertRecord`]s, runs the schedule, and installs
//! issued certificates with `Draft::set_certificate`.
//!
//! Only HTTP-01 is used: the edge answers `/.well-known/acme-challenge/{token}` on its HTTP
//! port for any host. Wildcard names need DNS-01, which is not done here.

mod client;

use crate::error_chain;
pub mod lifecycle;

pub use client::{AccountKey, AcmeClient, AcmeSettings};
pub use lifecycle::{
    backoff, next_due, plan, renewal_time, Action, CertRecord, Issued, Limited, Phase, RenewBasis,
    RenewalWindow,
};

/// Why an ACME step failed, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA answered with a problem document, or could not be reached.
    #[error("{step}: {detail}")]
    Ca { step: &'static str, detail: String },
    /// The CA tried to validate the host and could not.
    #[error("the CA could not validate {host}: {detail}")]
    Validation { host: String, detail: String },
    #[error("the ACME CA root is unusable: {0}")]
    CaRoot(String),
    #[error("could not make the certificate key or request: {0}")]
    Key(String),
    #[error("the CA returned an unusable certificate: {0}")]
    BadCertificate(crate::CertError),
}

impl AcmeError {
    fn acme(step: &'static str, e: instant_acme::Error) -> Self {
        let detail = match &e {
            instant_acme::Error::Api(problem) => {
                let mut text = problem
                    .detail
                    .clone()
                    .unwrap_or_else(|| "the CA refused".into());
                if let Some(kind) = problem
                    .r#type
                    .as_deref()
                    .and_then(|t| t.strip_prefix("urn:ietf:params:acme:error:"))
                {
                    text.push_str(&format!(" ({kind})"));
                }
                text
            }
            instant_acme::Error::Timeout(_) => "the CA did not answer in time".into(),
            other => error_chain(other),
        };
        Self::Ca { step, detail }
    }
}
