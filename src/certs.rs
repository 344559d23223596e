//! CA certificates for the hosts minicloud routes: the manager task that orders and renews
//! them, the status people see, and forced renewals.
//!
//! The manager is the only writer of certificate records. It wakes when a route is added
//! ([`CertsHandle::hosts_changed`]), when a person forces a renewal, and on a jittered timer;
//! each time it asks the pure `plan` what is due and does it, one host at a time. A record is
//! stored before the edge changes, and the attempt is stored before the order is made, so the
//! rate limits hold across crashes and restarts. What the edge serves for a host changes only
//! when a new certificate is valid: failures leave the old one in place.
//!
//! It owns no HTTP handlers (see `api::certificates`) and no ACME protocol (see
//! `minicloud_proxy::acme`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minicloud_proxy::acme::{
    next_due, plan, AcmeClient, AcmeError, AcmeSettings, Action, CertRecord, Issued, Phase,
    RenewBasis,
};
use minicloud_proxy::{CertSource, Certificate, HostPattern, Hostname, ShutdownWatch};
use tokio::sync::Notify;

use crate::model::{format_time, now};
use crate::plane::Plane;
use crate::store::{AcmeAccountRecord, StoreError};

/// The longest the manager sleeps between checks (jittered by up to a tenth, earlier).
const CHECK_INTERVAL: Duration = Duration::from_secs(3600);
/// One order, from creation to chain, gets this long.
const ORDER_TIMEOUT: Duration = Duration::from_secs(180);

const ACME_OFF: &str = "ACME is off: set MINICLOUD_ACME_EMAIL to get certificates from the CA";
const WILDCARD: &str =
    "wildcard hosts need DNS-01 validation, which minicloud does not do: self-signed";

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("{}", ACME_OFF)]
    AcmeOff,
    #[error("'{host}' is not a host minicloud routes")]
    NotRouted { host: String },
    #[error("{0}")]
    Invalid(String),
    #[error("no new certificate for {host} yet: {why}; try again after {until}")]
    Limited {
        host: String,
        why: String,
        until: String,
    },
    #[error("could not read the ACME CA root {path}: {source}")]
    CaRoot {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the rest of the control plane reaches the manager. Cheap to clone.
#[derive(Clone, Default)]
pub struct CertsHandle {
    inner: Arc<HandleInner>,
}

#[derive(Default)]
struct HandleInner {
    wake: Notify,
    forced: Mutex<BTreeSet<Hostname>>,
}

impl CertsHandle {
    /// A host may need a certificate: look now rather than at the next timer.
    pub fn hosts_changed(&self) {
        self.inner.wake.notify_one();
    }

    fn force(&self, host: Hostname) {
        self.lock_forced().insert(host);
        self.inner.wake.notify_one();
    }

    fn take_forced(&self) -> BTreeSet<Hostname> {
        std::mem::take(&mut *self.lock_forced())
    }

    fn lock_forced(&self) -> std::sync::MutexGuard<'_, BTreeSet<Hostname>> {
        self.inner
            .forced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A host's certificate as a person sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertificateStatus {
    pub host: String,
    pub state: CertState,
    /// Serial (hex) of the CA certificate being served, if any.
    pub serial: Option<String>,
    /// Unix seconds.
    pub not_after: Option<i64>,
    /// When the next certificate will be ordered (Unix seconds), and how that was chosen.
    pub renew_at: Option<i64>,
    pub renew_basis: Option<RenewBasis>,
    /// The last failure, in the CA's words where it gave them.
    pub error: Option<String>,
    /// After a failure: when it is tried again (Unix seconds).
    pub next_retry: Option<i64>,
    /// Why a host has only a self-signed certificate.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertState {
    Pending,
    Valid,
    Renewing,
    Failed,
    SelfSigned,
}

impl From<Phase> for CertState {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Pending => Self::Pending,
            Phase::Valid => Self::Valid,
            Phase::Renewing => Self::Renewing,
            Phase::Failed => Self::Failed,
        }
    }
}

impl CertificateStatus {
    fn self_signed(host: String, reason: &str) -> Self {
        Self {
            reason: Some(reason.to_string()),
            state: CertState::SelfSigned,
            ..Self::pending(host)
        }
    }

    /// Routed, no order made yet.
    fn pending(host: String) -> Self {
        Self {
            host,
            state: CertState::Pending,
            serial: None,
            not_after: None,
            renew_at: None,
            renew_basis: None,
            error: None,
            next_retry: None,
            reason: None,
        }
    }

    fn from_record(r: &CertRecord) -> Self {
        Self {
            host: r.host.to_string(),
            state: r.phase.into(),
            serial: r.serial.clone(),
            not_after: r.not_after,
            renew_at: r.renew_at,
            renew_basis: r.renew_basis,
            error: r.error.clone(),
            next_retry: (r.phase == Phase::Failed)
                .then_some(r.next_attempt)
                .flatten(),
            reason: None,
        }
    }
}

/// Every routed host (and the admin host) with its certificate state.
pub fn list_certificates(plane: &Plane) -> Result<Vec<CertificateStatus>, CertsError> {
    let records: BTreeMap<Hostname, CertRecord> = plane
        .store
        .certificates()?
        .into_iter()
        .map(|r| (r.host.clone(), r))
        .collect();
    let acme_on = plane.config.acme_email.is_some();
    Ok(plane
        .edge
        .routes()
        .into_keys()
        .map(|pattern| match &pattern {
            HostPattern::Wildcard(_) => {
                CertificateStatus::self_signed(pattern.to_string(), WILDCARD)
            }
            HostPattern::Exact(_) if !acme_on => {
                CertificateStatus::self_signed(pattern.to_string(), ACME_OFF)
            }
            HostPattern::Exact(host) => match records.get(host) {
                Some(r) => CertificateStatus::from_record(r),
                None => CertificateStatus::pending(host.to_string()),
            },
        })
        .collect())
}

/// Asks for a new certificate for `host` now (the current one keeps serving meanwhile).
pub fn force_renewal(plane: &Plane, host: &str) -> Result<CertificateStatus, CertsError> {
    if plane.config.acme_email.is_none() {
        return Err(CertsError::AcmeOff);
    }
    let host = Hostname::parse(host).map_err(|e| CertsError::Invalid(e.to_string()))?;
    if !plane
        .edge
        .routes()
        .contains_key(&HostPattern::Exact(host.clone()))
    {
        return Err(CertsError::NotRouted {
            host: host.to_string(),
        });
    }
    let record = plane.store.certificate(&host)?;
    if let Some(limited) = record.as_ref().and_then(|r| r.limit(now()).err()) {
        return Err(CertsError::Limited {
            host: host.to_string(),
            why: limited.why,
            until: format_time(limited.until),
        });
    }
    plane.certs.force(host.clone());
    Ok(record.map_or_else(
        || CertificateStatus::pending(host.to_string()),
        |r| CertificateStatus::from_record(&r),
    ))
}

/// Installs the stored CA certificates of routed hosts, so a restart serves them at once and
/// orders nothing. Called at start, before the listeners open.
pub fn publish_stored(plane: &Plane) -> Result<(), StoreError> {
    if plane.config.acme_email.is_none() {
        return Ok(());
    }
    let mut certs = Vec::new();
    for record in plane.store.certificates()? {
        let Some(pem) = record.cert.clone() else {
            continue;
        };
        match Certificate::from_pem(pem, CertSource::Acme) {
            Ok(cert) => certs.push((HostPattern::Exact(record.host.clone()), cert)),
            Err(e) => {
                tracing::error!(host = %record.host, error = %e, "stored certificate unusable")
            }
        }
    }
    let count = certs.len();
    plane.edge.update(|draft| {
        for (host, cert) in certs {
            draft.set_certificate(host, cert);
        }
    });
    tracing::info!(count, "stored certificates loaded");
    Ok(())
}

/// The manager task, ready to run on the control plane's runtime.
pub struct Manager {
    plane: Plane,
    settings: AcmeSettings,
    client: Option<AcmeClient>,
}

impl Manager {
    /// `None` when ACME is off. Reads the CA root file now, so a bad path stops the start.
    pub fn new(plane: Plane) -> Result<Option<Self>, CertsError> {
        let Some(email) = plane.config.acme_email.clone() else {
            tracing::info!("{ACME_OFF}");
            return Ok(None);
        };
        let ca_root_pem = match &plane.config.acme_ca_root {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| CertsError::CaRoot {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let settings = AcmeSettings {
            directory: plane.config.acme_directory.clone(),
            email,
            ca_root_pem,
        };
        Ok(Some(Self {
            plane,
            settings,
            client: None,
        }))
    }

    /// Runs until shutdown.
    pub async fn run(mut self, mut shutdown: ShutdownWatch) {
        tracing::info!(directory = %self.settings.directory, "certificate manager started");
        loop {
            let wait = match self.tick().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = %e, "certificate manager: state store failed");
                    CHECK_INTERVAL / 12
                }
            };
            tokio::select! {
                _ = self.plane.certs.inner.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Does what is due; returns how long to sleep before looking again.
    async fn tick(&mut self) -> Result<Duration, StoreError> {
        let hosts: BTreeSet<Hostname> = self
            .plane
            .edge
            .routes()
            .into_keys()
            .filter_map(|p| match p {
                HostPattern::Exact(h) => Some(h),
                HostPattern::Wildcard(_) => None,
            })
            .collect();
        let mut records: BTreeMap<Hostname, CertRecord> = self
            .plane
            .store
            .certificates()?
            .into_iter()
            .map(|r| (r.host.clone(), r))
            .collect();
        for host in self.plane.certs.take_forced() {
            if let Some(record) = records.get_mut(&host) {
                record.forced = true;
                self.plane.store.put_certificate(record)?;
            } else {
                records.insert(host.clone(), CertRecord::new(host));
            }
        }
        for action in plan(now(), &hosts, &records) {
            match action {
                Action::Issue(host) | Action::Renew(host) => {
                    let record = records
                        .remove(&host)
                        .unwrap_or_else(|| CertRecord::new(host.clone()));
                    let record = self.order(record).await?;
                    records.insert(host, record);
                }
                Action::CheckRenewalInfo(host) => {
                    if let Some(record) = records.get_mut(&host) {
                        self.check_renewal_info(record).await;
                        self.plane.store.put_certificate(record)?;
                    }
                }
            }
        }
        let now = now();
        let interval = CHECK_INTERVAL.as_secs_f64() * (1.0 - 0.1 * rand::random::<f64>());
        let until_due = next_due(now, &hosts, &records).map_or(interval, |t| (t - now) as f64);
        Ok(Duration::from_secs_f64(until_due.clamp(1.0, interval)))
    }

    /// Orders a certificate for the record's host; stores the outcome and, on success,
    /// serves the new certificate.
    async fn order(&mut self, mut record: CertRecord) -> Result<CertRecord, StoreError> {
        let host = record.host.clone();
        record.start_attempt(now());
        self.plane.store.put_certificate(&record)?;
        let started = Instant::now();
        let outcome = match self.client().await {
            Ok(client) => tokio::time::timeout(
                ORDER_TIMEOUT,
                client.issue(&self.plane.edge, &host, record.cert.as_ref()),
            )
            .await
            .unwrap_or_else(|_| {
                Err(AcmeError::Ca {
                    step: "ordering",
                    detail: format!(
                        "no certificate after {}s; giving up for now",
                        ORDER_TIMEOUT.as_secs()
                    ),
                })
            }),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(cert) => {
                let window = match &self.client {
                    Some(client) => client.renewal_window(&cert.pem).await.unwrap_or_else(|e| {
                        tracing::warn!(%host, error = %e, "no renewal information");
                        None
                    }),
                    None => None,
                };
                let issued = Issued {
                    pem: cert.pem.clone(),
                    serial: cert.info.serial.clone(),
                    not_before: cert.info.not_before,
                    not_after: cert.info.not_after,
                };
                let jitter = rand::random::<f64>();
                record.succeed(now(), issued, window.map(|(w, _)| w), jitter);
                match window {
                    Some((w, retry)) => record.apply_renewal_info(now(), w, retry, jitter),
                    None => record.no_renewal_info(),
                }
                self.plane.store.put_certificate(&record)?;
                tracing::info!(
                    %host,
                    serial = %cert.info.serial,
                    not_after = %format_time(cert.info.not_after),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "certificate issued"
                );
                let pattern = HostPattern::Exact(host);
                self.plane
                    .edge
                    .update(|draft| draft.set_certificate(pattern, cert));
            }
            Err(e) => {
                record.fail(now(), e.to_string(), rand::random::<f64>());
                self.plane.store.put_certificate(&record)?;
                tracing::warn!(
                    %host,
                    error = %e,
                    retry_at = %record.next_attempt.map(format_time).unwrap_or_default(),
                    "certificate order failed"
                );
            }
        }
        Ok(record)
    }

    async fn check_renewal_info(&mut self, record: &mut CertRecord) {
        let Some(pem) = record.cert.clone() else {
            return;
        };
        let answer = match self.client().await {
            Ok(client) => client.renewal_window(&pem).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(Some((window, retry))) => {
                record.apply_renewal_info(now(), window, retry, rand::random::<f64>())
            }
            Ok(None) => record.no_renewal_info(),
            Err(e) => {
                tracing::warn!(host = %record.host, error = %e, "renewal information unavailable");
                record.ari_check_at = Some(now() + 3600);
            }
        }
    }

    /// The account, connected on first use (so a CA that is down at start delays nothing).
    async fn client(&mut self) -> Result<AcmeClient, AcmeError> {
        if self.client.is_none() {
            let store = &self.plane.store;
            let stored =
                store
                    .acme_account(&self.settings.directory)
                    .map_err(|e| AcmeError::Ca {
                        step: "loading the ACME account",
                        detail: e.to_string(),
                    })?;
            let (client, created) =
                AcmeClient::connect(&self.settings, stored.map(|a| a.key)).await?;
            if let Some(key) = created {
                store
                    .put_acme_account(&AcmeAccountRecord {
                        directory: self.settings.directory.clone(),
                        email: self.settings.email.clone(),
                        key,
                        created_at: now(),
                    })
                    .map_err(|e| AcmeError::Ca {
                        step: "storing the ACME account",
                        detail: e.to_string(),
                    })?;
                tracing::info!(directory = %self.settings.directory, "ACME account created");
            }
            self.client = Some(client);
        }
        self.client.clone().ok_or(AcmeError::Ca {
            step: "connecting",
            detail: "no ACME account".into(),
        })
    }
}
