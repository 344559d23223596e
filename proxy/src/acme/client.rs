//! The ACME client: one account, and the network steps of one order (HTTP-01 answered by the
//! edge's challenge map, a CSR for a fresh ECDSA P-256 key, the certificate chain).
//!
//! It owns no state beyond the account: what was issued is returned to the caller, which
//! stores it and installs it in the edge. It reads no files: a private CA's root arrives as PEM
//! text.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType,
    HttpClient, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::lifecycle::RenewalWindow;
use super::AcmeError;
use crate::host::Hostname;
use crate::tls::{CertPem, CertSource, Certificate};
use crate::Edge;

/// How long the CA gets to validate, then to sign.
const POLL_TIMEOUT: Duration = Duration::from_secs(90);

/// Where and as whom to talk ACME.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The directory URL.
    pub directory: String,
    /// Contact address given to the CA (expiry and policy mail).
    pub email: String,
    /// PEM roots to trust for the CA's own HTTPS (a private or test CA); `None`: the system's.
    pub ca_root_pem: Option<String>,
}

/// The account's credentials (its private key): stored by the caller, never logged.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct AccountKey(AccountCredentials);

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountKey(<redacted>)")
    }
}

/// A connected ACME account.
#[derive(Clone)]
pub struct AcmeClient {
    account: Account,
}

impl AcmeClient {
    /// Loads the account from `stored` credentials, or creates one and returns its key for the
    /// caller to store.
    pub async fn connect(
        settings: &AcmeSettings,
        stored: Option<AccountKey>,
    ) -> Result<(Self, Option<AccountKey>), AcmeError> {
        let http = http_client(settings.ca_root_pem.as_deref())?;
        let builder = Account::builder_with_http(http);
        match stored {
            Some(AccountKey(credentials)) => {
                let account = builder
                    .from_credentials(credentials)
                    .await
                    .map_err(|e| AcmeError::acme("loading the ACME account", e))?;
                Ok((Self { account }, None))
            }
            None => {
                let contact = format!("mailto:{}", settings.email);
                let (account, credentials) = builder
                    .create(
                        &NewAccount {
                            contact: &[contact.as_str()],
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        settings.directory.clone(),
                        None,
                    )
                    .await
                    .map_err(|e| AcmeError::acme("creating the ACME account", e))?;
                Ok((Self { account }, Some(AccountKey(credentials))))
            }
        }
    }

    /// Orders a certificate for `host`, answering HTTP-01 through `edge`. `replaces` is the
    /// certificate being renewed, named to the CA when it supports ARI.
    pub async fn issue(
        &self,
        edge: &Edge,
        host: &Hostname,
        replaces: Option<&CertPem>,
    ) -> Result<Certificate, AcmeError> {
        let identifiers = [Identifier::Dns(host.to_string())];
        let replaced = replaces.and_then(|pem| certificate_id(pem).ok());
        let mut new_order = NewOrder::new(&identifiers);
        if let Some(id) = replaced.clone() {
            new_order = new_order.replaces(id);
        }
        let mut order = match self.account.new_order(&new_order).await {
            // No ARI, or the CA will not link this order to the old certificate: order plain.
            Err(instant_acme::Error::Unsupported(_)) => self
                .account
                .new_order(&NewOrder::new(&identifiers))
                .await
                .map_err(|e| AcmeError::acme("creating the order", e))?,
            Err(e) if replaced.is_some() => {
                tracing::warn!(%host, error = %e, "order naming the replaced certificate refused; ordering plain");
                self.account
                    .new_order(&NewOrder::new(&identifiers))
                    .await
                    .map_err(|e| AcmeError::acme("creating the order", e))?
            }
            other => other.map_err(|e| AcmeError::acme("creating the order", e))?,
        };
        tracing::info!(%host, order = order.url(), "ACME order created");

        let mut answers = ChallengeAnswers {
            edge,
            tokens: Vec::new(),
        };
        {
            let mut authorizations = order.authorizations();
            while let Some(authz) = authorizations.next().await {
                let mut authz =
                    authz.map_err(|e| AcmeError::acme("fetching the authorization", e))?;
                match authz.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    other => {
                        return Err(AcmeError::Validation {
                            host: host.to_string(),
                            detail: format!("the authorization is {other:?}"),
                        })
                    }
                }
                let mut challenge = authz.challenge(ChallengeType::Http01).ok_or_else(|| {
                    AcmeError::Validation {
                        host: host.to_string(),
                        detail: "the CA offers no HTTP-01 challenge".into(),
                    }
                })?;
                answers.add(
                    challenge.token.clone(),
                    challenge.key_authorization().as_str().to_owned(),
                );
                challenge
                    .set_ready()
                    .await
                    .map_err(|e| AcmeError::acme("starting validation", e))?;
            }
        }

        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(POLL_TIMEOUT);
        let status = match order.poll_ready(&retry).await {
            Ok(status) => status,
            // The order carries the CA's problem: validation failed.
            Err(instant_acme::Error::Api(_)) => OrderStatus::Invalid,
            Err(e) => return Err(AcmeError::acme("waiting for validation", e)),
        };
        if status != OrderStatus::Ready {
            return Err(AcmeError::Validation {
                host: host.to_string(),
                detail: validation_problem(&mut order).await,
            });
        }
        drop(answers);

        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| AcmeError::Key(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(vec![host.to_string()])
            .map_err(|e| AcmeError::Key(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .map_err(|e| AcmeError::Key(e.to_string()))?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(|e| AcmeError::acme("finalizing the order", e))?;
        let chain = order
            .poll_certificate(&retry)
            .await
            .map_err(|e| AcmeError::acme("downloading the certificate", e))?;
        let pem = CertPem {
            chain,
            key: key.serialize_pem(),
        };
        Certificate::from_pem(pem, CertSource::Acme).map_err(AcmeError::BadCertificate)
    }

    /// The CA's suggested renewal window for `cert` and how many seconds to wait before asking
    /// again; `None` when the CA offers no ARI.
    pub async fn renewal_window(
        &self,
        cert: &CertPem,
    ) -> Result<Option<(RenewalWindow, i64)>, AcmeError> {
        let id = certificate_id(cert)?;
        match self.account.renewal_info(&id).await {
            Ok((info, retry_after)) => Ok(Some((
                RenewalWindow {
                    start: info.suggested_window.start.unix_timestamp(),
                    end: info.suggested_window.end.unix_timestamp(),
                },
                retry_after.as_secs() as i64,
            ))),
            Err(instant_acme::Error::Unsupported(_)) => Ok(None),
            Err(e) => Err(AcmeError::acme("asking for renewal information", e)),
        }
    }
}

/// The ARI identifier of a PEM chain's leaf.
fn certificate_id(pem: &CertPem) -> Result<CertificateIdentifier<'static>, AcmeError> {
    let leaf = CertificateDer::pem_slice_iter(pem.chain.as_bytes())
        .next()
        .ok_or(AcmeError::BadCertificate(crate::CertError::NoCertificate))?
        .map_err(|e| AcmeError::BadCertificate(crate::CertError::BadCertificate(e.to_string())))?;
    CertificateIdentifier::try_from(&leaf)
        .map(CertificateIdentifier::into_owned)
        .map_err(|e| AcmeError::BadCertificate(crate::CertError::BadCertificate(e)))
}

/// The CA's explanation of why an order went invalid, from its challenges.
async fn validation_problem(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        if let Ok(state) = authz.refresh().await {
            for challenge in &state.challenges {
                if let Some(problem) = &challenge.error {
                    reasons.push(
                        problem
                            .detail
                            .clone()
                            .unwrap_or_else(|| problem.to_string()),
                    );
                }
            }
        }
    }
    if reasons.is_empty() {
        "the CA could not validate the host (it gave no reason)".into()
    } else {
        reasons.join("; ")
    }
}

/// HTTP-01 answers published in the edge for one order; withdrawn when dropped, whatever way
/// the order ends.
struct ChallengeAnswers<'a> {
    edge: &'a Edge,
    tokens: Vec<String>,
}

impl ChallengeAnswers<'_> {
    fn add(&mut self, token: String, key_authorization: String) {
        self.edge
            .update(|d| d.set_challenge(token.clone(), key_authorization));
        self.tokens.push(token);
    }
}

impl Drop for ChallengeAnswers<'_> {
    fn drop(&mut self) {
        if self.tokens.is_empty() {
            return;
        }
        let tokens = std::mem::take(&mut self.tokens);
        self.edge.update(|d| {
            for token in &tokens {
                d.remove_challenge(token);
            }
        });
    }
}

/// A hyper client over rustls (ring) that trusts `ca_root_pem` if given, else the system's
/// roots.
fn http_client(ca_root_pem: Option<&str>) -> Result<Box<dyn HttpClient>, AcmeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca_root_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| AcmeError::CaRoot(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| AcmeError::CaRoot(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(AcmeError::CaRoot("no certificate in the PEM".into()));
            }
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| AcmeError::CaRoot(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(config)
        }
        None => builder
            .with_provider_and_platform_verifier(provider)
            .map_err(|e| AcmeError::CaRoot(e.to_string()))?,
    };
    let connector = builder.https_only().enable_http1().enable_http2().build();
    let client: hyper_util::client::legacy::Client<_, instant_acme::BodyWrapper<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
    Ok(Box::new(client))
}
