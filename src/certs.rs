//! CA certificates for the hosts minicloud routes: the manager task that orders and renews
//! them, the status people see, and forced renewals.
//!
//! The manager writes certificate records (a forced renewal only sets a record's `forced`
//! mark). It wakes on the bus's facts (routes changed, a renewal asked for, a lagged receiver
//! meaning "look again") and on a jittered timer;
//! each time it asks the pure `plan` what is due and does it, one host at a time. A record is
//! stored before the edge changes, and the attempt is stored before the order is made, so the
//! rate limits hold across crashes and restarts. What the edge serves for a host changes only
//! when a new certificate is valid: failures leave the old one in place.
//!
//! It owns no HTTP handlers (see `api::certificates`) and no ACME protocol (see
//! `minicloud_proxy::acme`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use minicloud_proxy::acme::{
    next_due, plan, AcmeClient, AcmeError, AcmeSettings, Action, CertRecord, Issued, Phase,
    RenewBasis,
};
use minicloud_proxy::{CertSource, Certificate, HostPattern, Hostname, ShutdownWatch};
use tokio::sync::broadcast;

use crate::bus::{Event, EventKind, Op};
use crate::ctx::Ctx;
use crate::model::{format_time, now};
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
pub fn list_certificates(ctx: &Ctx) -> Result<Vec<CertificateStatus>, CertsError> {
    let records: BTreeMap<Hostname, CertRecord> = ctx
        .store
        .certificates()?
        .into_iter()
        .map(|r| (r.host.clone(), r))
        .collect();
    let acme_on = ctx.config.acme_email.is_some();
    Ok(ctx
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
pub fn force_renewal(ctx: &Ctx, op: &Op, host: &str) -> Result<CertificateStatus, CertsError> {
    if ctx.config.acme_email.is_none() {
        return Err(CertsError::AcmeOff);
    }
    let host = Hostname::parse(host).map_err(|e| CertsError::Invalid(e.to_string()))?;
    if !ctx
        .edge
        .routes()
        .contains_key(&HostPattern::Exact(host.clone()))
    {
        return Err(CertsError::NotRouted {
            host: host.to_string(),
        });
    }
    let record = ctx.store.certificate(&host)?;
    if let Some(limited) = record.as_ref().and_then(|r| r.limit(now()).err()) {
        return Err(CertsError::Limited {
            host: host.to_string(),
            why: limited.why,
            until: format_time(limited.until),
        });
    }
    // The mark is stored, so a renewal asked for is not lost to a lagged bus or a restart.
    let mut marked = record.unwrap_or_else(|| CertRecord::new(host.clone()));
    marked.forced = true;
    ctx.store.put_certificate(&marked)?;
    ctx.bus.send(
        op,
        EventKind::RenewalRequested {
            host: host.to_string(),
        },
    );
    Ok(CertificateStatus::from_record(&marked))
}

/// Installs the stored CA certificates of routed hosts, so a restart serves them at once and
/// orders nothing. Called at start, before the listeners open.
pub fn publish_stored(ctx: &Ctx) -> Result<(), StoreError> {
    if ctx.config.acme_email.is_none() {
        return Ok(());
    }
    let mut certs = Vec::new();
    for record in ctx.store.certificates()? {
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
    ctx.edge.update(|draft| {
        for (host, cert) in certs {
            draft.set_certificate(host, cert);
        }
    });
    tracing::info!(count, "stored certificates loaded");
    Ok(())
}

/// Waits for a fact that may change what is due: routes changed, a renewal asked for, or a
/// lagged receiver (it may have missed either). Progress and other facts do not wake it.
async fn wakes(events: &mut broadcast::Receiver<Event>) {
    loop {
        match events.recv().await {
            Ok(Event {
                kind: EventKind::RoutesChanged | EventKind::RenewalRequested { .. },
                ..
            })
            | Err(broadcast::error::RecvError::Lagged(_)) => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// The manager task, ready to run on the control plane's runtime.
pub struct Manager {
    ctx: Ctx,
    /// Subscribed when the manager is made, so no fact sent before `run` is missed.
    events: broadcast::Receiver<Event>,
    settings: AcmeSettings,
    client: Option<AcmeClient>,
}

impl Manager {
    /// `None` when ACME is off. Reads the CA root file now, so a bad path stops the start.
    pub fn new(ctx: Ctx) -> Result<Option<Self>, CertsError> {
        let Some(email) = ctx.config.acme_email.clone() else {
            tracing::info!("{ACME_OFF}");
            return Ok(None);
        };
        let ca_root_pem = match &ctx.config.acme_ca_root {
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
            directory: ctx.config.acme_directory.clone(),
            email,
            ca_root_pem,
        };
        Ok(Some(Self {
            events: ctx.bus.subscribe(),
            ctx,
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
                _ = wakes(&mut self.events) => {}
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
            .ctx
            .edge
            .routes()
            .into_keys()
            .filter_map(|p| match p {
                HostPattern::Exact(h) => Some(h),
                HostPattern::Wildcard(_) => None,
            })
            .collect();
        let mut records: BTreeMap<Hostname, CertRecord> = self
            .ctx
            .store
            .certificates()?
            .into_iter()
            .map(|r| (r.host.clone(), r))
            .collect();
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
                        self.ctx.store.put_certificate(record)?;
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
        self.ctx.store.put_certificate(&record)?;
        let started = Instant::now();
        let outcome = match self.client().await {
            Ok(client) => tokio::time::timeout(
                ORDER_TIMEOUT,
                client.issue(&self.ctx.edge, &host, record.cert.as_ref()),
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
                self.ctx.store.put_certificate(&record)?;
                tracing::info!(
                    %host,
                    serial = %cert.info.serial,
                    not_after = %format_time(cert.info.not_after),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "certificate issued"
                );
                let pattern = HostPattern::Exact(host);
                self.ctx
                    .edge
                    .update(|draft| draft.set_certificate(pattern, cert));
            }
            Err(e) => {
                record.fail(now(), e.to_string(), rand::random::<f64>());
                self.ctx.store.put_certificate(&record)?;
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
            let store = &self.ctx.store;
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
