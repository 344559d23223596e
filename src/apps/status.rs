//! What a person sees of an app at a glance: state, revision, image, where it answers and
//! what it uses.

use serde::Serialize;

use super::deploy::web_container;
use super::error::AppError;
use super::Apps;
use crate::docker::{ContainerInfo, ContainerState};
use crate::model::name::AppName;
use crate::store::{web_incident_key, AppRecord, DeployOutcome, IncidentKind, PendingRestore};

/// An app's state, derived from the store, the engine and the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppState {
    /// Serving its current revision.
    Running,
    /// An operation (deploy, rollback, ...) is under way.
    Deploying,
    /// Its current revision's container is not running or not routed.
    Unhealthy,
    /// Stopped by the admin.
    Stopped,
    /// Never deployed successfully.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppStatus {
    pub name: AppName,
    pub state: AppState,
    pub revision: Option<u64>,
    /// What the app deploys from (the next `deploy` pulls this).
    pub image: String,
    /// What the serving revision runs, by tag; differs from `image` after a rollback.
    pub serving_image: Option<String>,
    /// The digest the serving revision runs.
    pub digest: Option<String>,
    pub url: String,
    pub domains: Vec<String>,
    pub memory_limit_mb: u64,
    pub memory_bytes: Option<u64>,
    pub cpu_percent: Option<f64>,
    /// The last deploy's failure, when the last deploy failed.
    pub last_error: Option<String>,
    /// Its variables were changed and the redeploy with them has not served yet ("environment
    /// changed, not deployed"): until it does, or fails and puts them back.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub env_not_deployed: bool,
    /// What is running on it now, when `deploying`.
    pub operation: Option<String>,
    /// Containers of earlier revisions still draining or being removed after a deploy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retiring: Vec<String>,
    pub storage_bytes: Option<u64>,
    /// The storage walk stopped at its bounds (a very large tree): `storage_bytes` is a lower
    /// bound.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub storage_at_least: bool,
    /// Times the engine restarted the serving web container (its restart policy), the exit
    /// code it last ended with on its own and whether that was an out-of-memory kill:
    /// single-app view only.
    pub restarts: Option<i64>,
    pub last_exit_code: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub out_of_memory: bool,
    /// It restarts again and again (an open crash-loop incident).
    pub crash_looping: bool,
    /// Docker Hub's webhook target; it holds a secret, so only the single-app view has it.
    pub webhook_url: Option<String>,
    /// The data a whole-box restore still owes it (it comes back at start, before the app
    /// is deployed), and why the last try failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_restore: Option<PendingRestore>,
}

impl Apps {
    /// Every app, without per-container stats (one engine call for all).
    pub async fn list(&self) -> Result<Vec<AppStatus>, AppError> {
        let containers = match self.docker().await {
            Ok(d) => d.list_managed().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        self.ctx
            .store
            .apps()?
            .iter()
            .map(|record| self.status_of(record, &containers))
            .collect()
    }

    /// One app, with memory and CPU use. Never waits for the engine's statistics: they are
    /// the background sampler's last (see `usage`), none until it has one.
    pub async fn status(&self, name: &AppName) -> Result<AppStatus, AppError> {
        let record = self.app_record(name)?;
        let docker = self.docker().await;
        let containers = match &docker {
            Ok(d) => d.list_managed().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let mut status = self.status_of(&record, &containers)?;
        if let (Some(rev), AppState::Running) = (record.current, status.state) {
            if let Some(usage) = self.usage.get(&web_container(name, rev)) {
                status.memory_bytes = Some(usage.memory_bytes);
                status.cpu_percent = Some(usage.cpu_percent);
            }
        }
        if let (Ok(docker), Some(rev)) = (&docker, record.current) {
            // A running container's exit code and OOM flag are reset by the engine: what it
            // last ended with is in the last incident about it.
            let last = self
                .ctx
                .store
                .incidents_about(&web_incident_key(name))?
                .into_iter()
                .next();
            if let Ok(info) = docker.inspect(&web_container(name, rev)).await {
                status.restarts = info.restart_count;
                if info.state == ContainerState::Running {
                    status.last_exit_code = last.as_ref().and_then(|i| i.exit_code);
                    status.out_of_memory =
                        last.is_some_and(|i| i.kind == IncidentKind::OutOfMemory);
                } else {
                    status.last_exit_code = info.exit_code;
                    status.out_of_memory = info.oom_killed.unwrap_or(false);
                }
            }
        }
        if let Some(size) = self.services.storage().size(name).await {
            status.storage_bytes = Some(size.bytes);
            status.storage_at_least = !size.complete;
        }
        status.webhook_url = Some(self.webhook_url(&record));
        Ok(status)
    }

    /// Docker Hub's webhook target for the app: it holds the secret.
    pub fn webhook_url(&self, record: &AppRecord) -> String {
        let base = self.ctx.config.https_url(&self.ctx.config.admin_host());
        format!(
            "{base}/hooks/deploy/{}/{}",
            record.name,
            record.webhook_secret.expose()
        )
    }

    fn status_of(
        &self,
        record: &AppRecord,
        containers: &[ContainerInfo],
    ) -> Result<AppStatus, AppError> {
        let deploys = self.ctx.store.deploys(&record.name)?;
        let serving = record
            .current
            .and_then(|rev| deploys.iter().find(|d| d.revision == rev));
        let last_error = match deploys.last().map(|d| &d.outcome) {
            Some(DeployOutcome::Failed { reason }) => Some(reason.clone()),
            _ => None,
        };
        let operation = self.ctx.locks.busy(&record.name).map(|op| op.to_string());
        let crash_looping = self
            .ctx
            .store
            .incidents_about(&web_incident_key(&record.name))?
            .first()
            .is_some_and(|i| i.resolved_at.is_none() && i.kind == IncidentKind::CrashLoop);
        let web_running = record.current.is_some_and(|rev| {
            let name = web_container(&record.name, rev);
            containers
                .iter()
                .any(|c| c.name == name && c.state == ContainerState::Running)
        });
        let state = if operation.is_some() {
            AppState::Deploying
        } else if record.stopped {
            AppState::Stopped
        } else if record.current.is_none() {
            AppState::Failed
        } else if web_running && self.serving_upstream(&record.name).is_some() {
            AppState::Running
        } else {
            AppState::Unhealthy
        };
        Ok(AppStatus {
            name: record.name.clone(),
            state,
            revision: record.current,
            image: record.image.canonical(),
            serving_image: serving.map(|d| match d.image.tag() {
                Some(tag) => d
                    .image
                    .with_tag(tag)
                    .map_or_else(|_| d.image.canonical(), |i| i.canonical()),
                None => d.image.canonical(),
            }),
            digest: serving.map(|d| d.digest.clone()),
            url: self.app_url(&record.name),
            domains: self.hosts(record).iter().map(ToString::to_string).collect(),
            memory_limit_mb: record.memory_mb,
            memory_bytes: None,
            cpu_percent: None,
            last_error,
            env_not_deployed: record.env_before.is_some(),
            operation,
            retiring: self.retirements.retiring(&record.name),
            storage_bytes: None,
            storage_at_least: false,
            restarts: None,
            last_exit_code: None,
            out_of_memory: false,
            crash_looping,
            webhook_url: None,
            pending_restore: self.ctx.store.pending_restore(&record.name)?,
        })
    }
}
