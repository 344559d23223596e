//! Start-up recovery: brings containers and routes in line with the store, without touching
//! containers that already run as they should.

use super::deploy::web_container;
use super::error::{AppError, DeployFailure};
use super::reconcile::{plan_reconcile, Action, Desired};
use super::removed_log::keep_removed_log;
use super::Apps;
use crate::bus::Op;
use crate::docker::ContainerState;
use crate::locks::AppLock;
use crate::model::{manifest, now, Operation, Trigger};
use crate::store::{AppRecord, DeployOutcome};

/// Why a deploy that a crash of minicloud cut short failed.
const INTERRUPTED: &str = "interrupted: minicloud stopped during the deploy";
use minicloud_proxy::Upstream;

/// Longer than any manifest read takes (create a container, copy one small file out).
const MANIFEST_READ_MAX_SECS: i64 = 300;

/// What reconcile did, for the log.
#[derive(Debug, Default)]
pub struct Recovered {
    pub served: usize,
    pub created: usize,
    pub removed: usize,
    pub failed: Vec<String>,
}

impl Apps {
    /// Ends, in the store, what a crash of minicloud cut short (deploys, env changes) for every
    /// app; the number of apps it settled. Store work alone, so it runs before the API
    /// answers: no caller ever reads a change a crash left half done.
    pub fn settle_interrupted_changes(&self) -> Result<usize, AppError> {
        let mut settled = 0;
        for mut app in self.ctx.store.apps()? {
            let _lock = self.try_lock(&app.name, Operation::Reconcile)?;
            if self.settle_interrupted(&mut app)? {
                settled += 1;
            }
        }
        Ok(settled)
    }

    /// Routes every app whose serving web container runs, and changes nothing else: what a
    /// successor taking the sockets over (`serve --upgrade`) knows before its edge accepts, so
    /// its first requests are not answered 503 as if no app ran until the start-up reconcile
    /// (which does the rest) has routed them. A Docker client of its own: this runs on a
    /// runtime of its own, before the server's. The number of apps routed.
    pub async fn find_serving(&self) -> Result<usize, AppError> {
        let docker = crate::docker::Docker::connect().await?;
        let mut routed = 0;
        for app in self.ctx.store.apps()? {
            let Some(revision) = app.current else {
                continue;
            };
            if app.stopped || self.ctx.store.pending_restore(&app.name)?.is_some() {
                continue;
            }
            let Ok(info) = docker.inspect(&web_container(&app.name, revision)).await else {
                continue;
            };
            let (_, manifest) = self.revision(&app.name, revision)?;
            if let (ContainerState::Running, Some(ip)) = (info.state, info.app_ip(&app.name)) {
                let upstream = Upstream(std::net::SocketAddr::new(ip, manifest.http_port()));
                self.ctx.set_serving(&app.name, Some(upstream))?;
                routed += 1;
            }
        }
        Ok(routed)
    }

    /// Applies the reconcile plan: containers and routes in line with the store. Holds every
    /// app's lock throughout, so no API call interleaves with it (a person's call waits a
    /// moment for it, then is refused as busy with start-up reconcile).
    pub async fn reconcile(&self, op: &Op) -> Result<Recovered, AppError> {
        let apps = self.ctx.store.apps()?;
        let _locks = apps
            .iter()
            .map(|app| self.try_lock(&app.name, Operation::Reconcile))
            .collect::<Result<Vec<AppLock>, AppError>>()?;
        let docker = self.docker().await?;
        let mut desired = Vec::with_capacity(apps.len());
        for app in &apps {
            // Its data comes back first, then it is deployed (`backups::wholebox`): nothing
            // of it runs meanwhile.
            if self.ctx.store.pending_restore(&app.name)?.is_some() {
                continue;
            }
            let runners = match app.current {
                Some(rev) => self
                    .ctx
                    .store
                    .deploy(&app.name, rev)?
                    .and_then(|d| manifest::parse(&d.manifest_file, &d.manifest_text).ok())
                    .map(|m| m.runners.into_iter().map(|r| r.name).collect())
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            desired.push(Desired {
                app: app.name.clone(),
                revision: app.current,
                runners,
                stopped: app.stopped,
            });
        }
        // A manifest read a crash interrupted leaves its helper container; any older than
        // a read can take is such a leftover.
        match docker
            .sweep_manifest_readers(now() - MANIFEST_READ_MAX_SECS)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "left-over manifest readers removed"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep left-over manifest readers"),
        }
        let actual = docker.list_managed().await?;
        let mut report = Recovered::default();
        for action in plan_reconcile(&desired, &actual) {
            if let Err(e) = self.apply(op, &action, &mut report).await {
                tracing::error!(?action, error = %e, "reconcile step failed");
                report.failed.push(format!("{action:?}: {e}"));
            }
        }
        Ok(report)
    }

    /// Ends what a crash interrupted, in the store: a deploy in progress is marked failed (the
    /// plan removes its containers), and an env change that never served is put back, in the
    /// same write, with the history saying so; `apps show` gives it as the last error. True
    /// when there was something to settle.
    fn settle_interrupted(&self, app: &mut AppRecord) -> Result<bool, AppError> {
        let env_undone = app.put_back_env();
        let reason = match env_undone {
            true => format!("{INTERRUPTED}; the environment change was undone, so the variables are the serving revision's (set them again to apply them)"),
            false => INTERRUPTED.to_owned(),
        };
        let mut recorded = false;
        for mut d in self.ctx.store.deploys(&app.name)? {
            if d.outcome == DeployOutcome::InProgress {
                d.outcome = DeployOutcome::Failed {
                    reason: reason.clone(),
                };
                d.finished_at = Some(now());
                self.ctx.store.put_app_and_deploy(app, &d)?;
                recorded = true;
            }
        }
        if env_undone && !recorded {
            // Interrupted before its deploy was recorded: the history says so all the same.
            let serving = match app.current {
                Some(rev) => self.ctx.store.deploy(&app.name, rev)?,
                None => None,
            };
            match serving {
                Some(like) => {
                    self.record_failed_attempt(app, &like, Trigger::EnvChange, &reason)?;
                }
                None => self.ctx.store.put_app(app)?,
            }
        }
        Ok(env_undone || recorded)
    }

    async fn apply(
        &self,
        op: &Op,
        action: &Action,
        report: &mut Recovered,
    ) -> Result<(), AppError> {
        let docker = self.docker().await?;
        match action {
            Action::Remove { container, why } => {
                let _ = docker
                    .stop(container, std::time::Duration::from_secs(10))
                    .await;
                keep_removed_log(&self.ctx.store, &docker, container, why.why()).await;
                docker.remove(container).await?;
                report.removed += 1;
            }
            Action::Stop { container } => {
                docker
                    .stop(container, std::time::Duration::from_secs(10))
                    .await?;
            }
            Action::Serve { app, revision } => {
                // The peers (minicloud's own container and the services, under compose) join
                // the app's network again: a recreated container, as after an upgrade, is on
                // none, and the edge could not reach the app.
                if !self.settings.networks.peers.is_empty() {
                    docker
                        .ensure_app_network(app, &self.settings.networks)
                        .await?;
                }
                let record = self.app_record(app)?;
                let (_, manifest) = self.revision(app, *revision)?;
                let info = docker.inspect(&web_container(app, *revision)).await?;
                let ip = info
                    .app_ip(app)
                    .ok_or_else(|| AppError::Invalid(format!("{} has no address", info.name)))?;
                let upstream = Upstream(std::net::SocketAddr::new(ip, manifest.http_port()));
                self.route_app(op, &record, Some(upstream))?;
                report.served += 1;
            }
            Action::CreateWeb { app, revision } => {
                let record = self.app_record(app)?;
                let (deploy, manifest) = self.revision(app, *revision)?;
                let data_dir = manifest
                    .needs
                    .contains(&manifest::Need::Storage)
                    .then(|| self.ensure_storage(app))
                    .transpose()?;
                // Runners are started with the web container; drop stale ones first.
                self.remove_revision(app, *revision, "recreated: it was not running")
                    .await;
                let upstream = self
                    .start_revision(op, &record, &deploy, &manifest, data_dir.as_deref())
                    .await
                    .map_err(|failed| DeployFailure {
                        app: app.clone(),
                        revision: Some(*revision),
                        reason: failed.reason,
                        log_tail: failed.log_tail,
                        still_serving: None,
                    })?;
                self.route_app(op, &record, Some(upstream))?;
                report.created += 1;
            }
            Action::CreateRunner {
                app,
                revision,
                runner,
            } => {
                let record = self.app_record(app)?;
                let (deploy, manifest) = self.revision(app, *revision)?;
                // CreateWeb of the same revision already started every runner.
                let web_created = manifest.runners.iter().any(|r| &r.name == runner)
                    && docker.inspect(&web_container(app, *revision)).await.is_ok();
                if let (Some(spec), true) = (
                    manifest.runners.iter().find(|r| &r.name == runner),
                    web_created,
                ) {
                    let data_dir = manifest
                        .needs
                        .contains(&manifest::Need::Storage)
                        .then(|| self.storage_dir(app));
                    let spec = self.container_spec(
                        &record,
                        &deploy,
                        &manifest,
                        Some(spec),
                        data_dir.as_deref(),
                    );
                    if docker.inspect(&spec.name).await.is_err() {
                        docker.run(&spec).await?;
                        report.created += 1;
                    }
                }
            }
        }
        Ok(())
    }
}
