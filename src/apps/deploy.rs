//! One deploy, as data flows: image → manifest → environment → containers of revision N →
//! health → one route swap → N-1 handed to a background retirement (drained, then stopped and
//! removed; see [`super::retire`]). The deploy answers once N serves. Any failure before the
//! swap removes N's containers and leaves N-1 serving; the outcome is stored either way.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use minicloud_proxy::Upstream;

use super::env::{build_env, redact};
use super::error::{AppError, DeployFailure};
use super::health::{self, Health};
use super::ops::{DEFAULT_CPU_SHARES, DEFAULT_PIDS_LIMIT};
use super::removed_log::keep_removed_log;
use super::retire::STOP_TIMEOUT;
use super::Apps;
use crate::bus::{EventKind, Op};
use crate::docker::{
    app_network, ContainerInfo, ContainerSpec, Docker, DockerError, ManagedLabels, RegistryAuth,
    Role,
};
use crate::model::image_ref::ImageRef;
use crate::model::manifest::{self, Manifest};
use crate::model::name::AppName;
use crate::model::{now, Trigger};
use crate::services::DirOwner;
use crate::store::{AppRecord, DeployOutcome, DeployRecord, RegistryCredentials};

/// Lines of a failed revision's log quoted in the deploy's failure reason.
const FAILURE_LOG_LINES: usize = 20;

/// What to deploy.
#[derive(Debug, Clone)]
pub enum Source {
    /// Pull this reference; a digest equal to the serving one does nothing unless `force`.
    Pull { image: ImageRef, force: bool },
    /// Run an earlier revision's exact image again (rollback, restart, env change).
    Revision { revision: u64 },
}

/// Why a revision's containers did not come up healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    pub reason: String,
    /// The web container's last log lines, repeats folded; `None` when it logged nothing.
    pub log_tail: Option<String>,
}

impl StartFailure {
    fn new(reason: impl ToString) -> Self {
        Self {
            reason: reason.to_string(),
            log_tail: None,
        }
    }
}

/// How a deploy ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployed {
    New(u64),
    Unchanged(u64),
}

pub fn web_container(app: &AppName, revision: u64) -> String {
    format!("mc-{app}-{revision}")
}

/// `.` cannot appear in app names, so a runner's container never collides with another
/// app's web container (`mc-a-b-1` could be app `a-b` or app `a` with runner `b`).
pub fn runner_container(app: &AppName, runner: &str, revision: u64) -> String {
    format!("mc-{app}.{runner}-{revision}")
}

impl Apps {
    /// Runs a deploy to the end. The caller holds the app's lock.
    pub(super) async fn run_deploy(
        &self,
        op: &Op,
        app: &AppName,
        source: Source,
        trigger: Trigger,
    ) -> Result<Deployed, AppError> {
        let result = self.try_deploy(op, app, source, trigger).await;
        let app = app.clone();
        let fact = match &result {
            Ok(Deployed::New(revision)) => EventKind::Deployed {
                app,
                revision: *revision,
            },
            Ok(Deployed::Unchanged(revision)) => EventKind::Unchanged {
                app,
                revision: *revision,
            },
            Err(e) => EventKind::Failed {
                app,
                reason: e.to_string(),
            },
        };
        self.ctx.bus.send(op, fact);
        result
    }

    async fn try_deploy(
        &self,
        op: &Op,
        name: &AppName,
        source: Source,
        trigger: Trigger,
    ) -> Result<Deployed, AppError> {
        let bus = &self.ctx.bus;
        let record = self.app_record(name)?;
        let docker = self.docker().await?;
        let serving = match record.current {
            Some(rev) => self.ctx.store.deploy(name, rev)?,
            None => None,
        };

        // 1. The exact image: pulled by tag, or an earlier revision's pinned digest.
        let requested = match &source {
            Source::Pull { image, .. } => Some(image.clone()),
            Source::Revision { .. } => None,
        };
        let (image, digest, env_source) = match source {
            Source::Pull { image, force } => {
                self.check_free_space(&docker).await?;
                bus.step(op, name, format!("pulling {}", image.canonical()));
                let auth = pull_auth(record.registry_auth.as_ref(), &image, &record.image);
                let pulled = docker
                    .pull(&image, auth.as_ref(), |p| {
                        let pull = EventKind::Pull {
                            app: name.clone(),
                            layers_done: p.layers_done,
                            layers_total: p.layers_total,
                            bytes_done: p.bytes_done,
                            bytes_total: p.bytes_total,
                        };
                        bus.send(op, pull)
                    })
                    .await?;
                if let Some(current) = &serving {
                    if current.digest == pulled.digest && !force {
                        bus.step(op, name, format!("{} is already running", pulled.digest));
                        return Ok(Deployed::Unchanged(current.revision));
                    }
                    if let Some(hook) = self.before_new_image.get() {
                        hook.before_new_image(op, name).await;
                    }
                }
                (pulled.image, pulled.digest, None)
            }
            Source::Revision { revision } => {
                let old = self.ctx.store.deploy(name, revision)?.ok_or_else(|| {
                    AppError::Invalid(format!("{name} has no revision {revision}"))
                })?;
                // Pruned after newer deploys (see `prune`).
                if docker
                    .image_id(&old.image.pull_reference())
                    .await?
                    .is_none()
                {
                    self.check_free_space(&docker).await?;
                    self.pull_again(op, &docker, &record, &old.image).await?;
                }
                (old.image.clone(), old.digest.clone(), Some(old))
            }
        };

        // 2. The app contract, read from the image without running it.
        let (manifest_file, manifest_text) = match &env_source {
            Some(old) => (old.manifest_file.clone(), old.manifest_text.clone()),
            None => {
                bus.step(op, name, "reading the app manifest");
                self.again_if_pruned(op, &docker, &record, &image, || {
                    docker.read_manifest(&image)
                })
                .await?
            }
        };
        let mut manifest = manifest::parse(&manifest_file, &manifest_text)?;
        // What the admin added counts as if the manifest asked for it.
        manifest.needs.extend(&record.added_services);

        // 3. Services, storage and the environment. A failure here leaves no container and
        //    no deploy record; the serving revision goes on, and a retry provisions again.
        if !manifest.needs.is_empty() {
            let needs: Vec<&str> = manifest.needs.iter().map(|n| n.as_str()).collect();
            bus.step(op, name, format!("provisioning {}", needs.join(", ")));
        }
        let provisioned = match self.services.provision(name, &manifest.needs).await {
            Ok(provisioned) => provisioned,
            Err(e) => {
                // Recorded in the history (no container was made), so `show` and `history`
                // say that it failed and why.
                let reason = format!("provisioning failed: {e}");
                let attempt = DeployRecord {
                    app: name.clone(),
                    revision: 0,
                    image: image.clone(),
                    digest: digest.clone(),
                    manifest_file: manifest_file.clone(),
                    manifest_text: manifest_text.clone(),
                    env: BTreeMap::new(),
                    trigger: trigger.to_string(),
                    started_at: now(),
                    finished_at: None,
                    outcome: DeployOutcome::InProgress,
                };
                let revision = self.record_failed_attempt(&record, &attempt, trigger, &reason)?;
                return Err(DeployFailure {
                    app: name.clone(),
                    revision: Some(revision),
                    reason: e.to_string(),
                    log_tail: None,
                    still_serving: record.current,
                }
                .into());
            }
        };
        let data_dir = provisioned.data_dir;
        if data_dir.is_some() {
            // The app's directory belongs to the user its image runs as (mode 0750).
            let user = self
                .again_if_pruned(op, &docker, &record, &image, || docker.image_user(&image))
                .await?;
            self.services
                .storage()
                .give_to(name, DirOwner::for_image_user(&user))
                .map_err(|e| DeployFailure {
                    app: name.clone(),
                    revision: None,
                    reason: e.to_string(),
                    log_tail: None,
                    still_serving: record.current,
                })?;
        }
        let env = build_env(
            name,
            &manifest,
            &self.app_url(name),
            &record.env,
            &provisioned.env,
        );

        // 4. Revision N, recorded as in progress before any container exists, so a crash
        //    from here on is found and cleaned up by reconcile.
        let revision = self.next_revision(name)?;
        let mut deploy = DeployRecord {
            app: name.clone(),
            revision,
            image,
            digest,
            manifest_file,
            manifest_text,
            env,
            trigger: trigger.to_string(),
            started_at: now(),
            finished_at: None,
            outcome: DeployOutcome::InProgress,
        };
        self.ctx.store.put_app_and_deploy(&record, &deploy)?;

        // 5. Start, probe, swap; or clean up and record why not.
        match self
            .start_revision(op, &record, &deploy, &manifest, data_dir.as_deref())
            .await
        {
            Ok(upstream) => {
                let mut record = self.app_record(name)?;
                let previous = record.current.replace(revision);
                if let Some(requested) = requested {
                    record.image = requested;
                }
                // The variables now serve: an env change is complete.
                record.env_before = None;
                deploy.outcome = DeployOutcome::Succeeded;
                deploy.finished_at = Some(now());
                self.ctx.store.put_app_and_deploy(&record, &deploy)?;
                self.route_app(op, &record, Some(upstream))?;
                bus.step(
                    op,
                    name,
                    format!("revision {revision} serves at {}", self.app_url(name)),
                );
                // The old revision drains and goes on its own task: the lock is released
                // and the caller answered now, not after its stop timeout.
                self.retire_other_revisions(op, name, revision, previous.is_some())
                    .await;
                Ok(Deployed::New(revision))
            }
            Err(failed) => {
                self.remove_revision(name, revision, "its deploy failed")
                    .await;
                let mut record = self.app_record(name)?;
                // With the failure, in one write: the env change it deployed is taken back.
                record.put_back_env();
                let failure = DeployFailure {
                    app: name.clone(),
                    revision: Some(revision),
                    reason: failed.reason,
                    log_tail: failed.log_tail,
                    still_serving: record.current,
                };
                deploy.outcome = DeployOutcome::Failed {
                    reason: failure.recorded_reason(),
                };
                deploy.finished_at = Some(now());
                self.ctx.store.put_app_and_deploy(&record, &deploy)?;
                Err(failure.into())
            }
        }
    }

    /// Records an attempt that failed before any container existed, as a failed revision
    /// made from `like` (its image and manifest), written with `record`; returns the
    /// revision's number.
    pub(super) fn record_failed_attempt(
        &self,
        record: &AppRecord,
        like: &DeployRecord,
        trigger: Trigger,
        reason: &str,
    ) -> Result<u64, AppError> {
        let now = now();
        let failed = DeployRecord {
            revision: self.next_revision(&like.app)?,
            env: BTreeMap::new(),
            trigger: trigger.to_string(),
            started_at: now,
            finished_at: Some(now),
            outcome: DeployOutcome::Failed {
                reason: reason.to_owned(),
            },
            ..like.clone()
        };
        self.ctx.store.put_app_and_deploy(record, &failed)?;
        Ok(failed.revision)
    }

    /// Starts the web container and runners of a recorded revision and waits until the web
    /// container is healthy. Returns its upstream, or why not.
    pub(super) async fn start_revision(
        &self,
        op: &Op,
        record: &AppRecord,
        deploy: &DeployRecord,
        manifest: &Manifest,
        data_dir: Option<&std::path::Path>,
    ) -> Result<Upstream, StartFailure> {
        let bus = &self.ctx.bus;
        let docker = self.docker().await.map_err(StartFailure::new)?;
        let name = &record.name;
        let web = self.container_spec(record, deploy, manifest, None, data_dir);
        docker
            .ensure_app_network(name, &self.settings.networks)
            .await
            .map_err(StartFailure::new)?;
        bus.step(
            op,
            name,
            format!("starting revision {} ({})", deploy.revision, web.name),
        );
        let running = self
            .again_if_pruned(op, &docker, record, &deploy.image, || docker.run(&web))
            .await
            .map_err(StartFailure::new)?;
        let addr = SocketAddr::new(running.ip, manifest.http_port());
        let health_path = manifest.health.as_ref().map(|h| h.path.as_str());
        bus.step(
            op,
            name,
            format!("waiting for {addr}{} to answer", health_path.unwrap_or("")),
        );
        if let Health::Unhealthy(why) = health::probe(
            &docker,
            &web.name,
            addr,
            health_path,
            self.settings.health_timeout,
        )
        .await
        {
            let logs = docker
                .last_log_lines(&web.name, FAILURE_LOG_LINES)
                .await
                .unwrap_or_default();
            // The app may print its own credentials (a connection error quoting its URL).
            let secrets = super::env::url_passwords(&deploy.env);
            let logs = redact(&collapse_repeats(logs.trim_end()), &secrets);
            return Err(if logs.is_empty() {
                StartFailure::new(format!("{why}; the container logged nothing"))
            } else {
                StartFailure {
                    reason: why.to_string(),
                    log_tail: Some(logs),
                }
            });
        }
        for runner in &manifest.runners {
            let spec = self.container_spec(record, deploy, manifest, Some(runner), data_dir);
            bus.step(op, name, format!("starting runner {}", spec.name));
            docker
                .run(&spec)
                .await
                .map_err(|e| StartFailure::new(format!("runner {}: {e}", runner.name)))?;
        }
        Ok(Upstream(addr))
    }

    /// Pulls a pruned image again: its pinned digest gets exactly that image back.
    async fn pull_again(
        &self,
        op: &Op,
        docker: &Docker,
        record: &AppRecord,
        image: &ImageRef,
    ) -> Result<(), DockerError> {
        self.ctx.bus.step(
            op,
            &record.name,
            format!("pulling {} again (it was pruned)", image.canonical()),
        );
        let auth = pull_auth(record.registry_auth.as_ref(), image, &record.image);
        docker.pull(image, auth.as_ref(), |_| {}).await.map(|_| ())
    }

    /// Runs `use_image` on an image this deploy pulled; when the engine no longer has it
    /// (another app's prune took it since the pull), pulls it again and runs `use_image` once
    /// more.
    async fn again_if_pruned<T, Used>(
        &self,
        op: &Op,
        docker: &Docker,
        record: &AppRecord,
        image: &ImageRef,
        use_image: impl Fn() -> Used,
    ) -> Result<T, DockerError>
    where
        Used: std::future::Future<Output = Result<T, DockerError>>,
    {
        match use_image().await {
            Err(DockerError::ImageMissing { .. }) => {
                self.pull_again(op, docker, record, image).await?;
                use_image().await
            }
            other => other,
        }
    }

    /// Refuses a pull while the data dir's disk, or the engine's (when this process can see
    /// it: not under compose), has less than `min_free_mb` left.
    async fn check_free_space(&self, docker: &Docker) -> Result<(), AppError> {
        let min = self.settings.min_free_mb;
        let dirs = [
            Some(self.ctx.config.data_dir.clone()),
            docker.root_dir().await,
        ];
        for dir in dirs.into_iter().flatten() {
            let Some(free) = crate::store::free_bytes(&dir) else {
                continue;
            };
            if free < min.saturating_mul(1024 * 1024) {
                return Err(AppError::LowOnSpace {
                    dir: dir.display().to_string(),
                    free_mib: free / (1024 * 1024),
                    min_mib: min,
                });
            }
        }
        Ok(())
    }

    pub(super) fn container_spec(
        &self,
        record: &AppRecord,
        deploy: &DeployRecord,
        manifest: &Manifest,
        runner: Option<&manifest::Runner>,
        data_dir: Option<&std::path::Path>,
    ) -> ContainerSpec {
        let (container, role, command) = match runner {
            Some(r) => (
                runner_container(&record.name, &r.name, deploy.revision),
                Role::Runner,
                Some(r.command.clone()),
            ),
            None => (
                web_container(&record.name, deploy.revision),
                Role::Web,
                None,
            ),
        };
        ContainerSpec {
            name: container,
            image: deploy.image.clone(),
            env: deploy.env.clone(),
            labels: ManagedLabels {
                app: record.name.clone(),
                rev: deploy.revision,
                role,
                runner: runner.map(|r| r.name.clone()),
            },
            command,
            memory_bytes: Some(record.memory_mb * 1024 * 1024),
            network: app_network(&record.name),
            data_dir: data_dir.map(std::path::Path::to_path_buf),
            init: manifest.init,
            pids_limit: Some(record.pids_limit.unwrap_or(DEFAULT_PIDS_LIMIT)),
            cpu_shares: Some(record.cpu_shares.unwrap_or(DEFAULT_CPU_SHARES)),
        }
    }

    fn next_revision(&self, app: &AppName) -> Result<u64, AppError> {
        Ok(self
            .ctx
            .store
            .deploys(app)?
            .last()
            .map_or(1, |d| d.revision + 1))
    }

    /// Removes a revision's containers (a failed deploy's, a dead one to recreate), keeping
    /// the web container's last lines as the app's removed log with `why`.
    pub(super) async fn remove_revision(&self, app: &AppName, revision: u64, why: &str) {
        self.remove_containers(app, |rev| rev == revision, Some(why))
            .await;
    }

    /// The engine and `app`'s containers of the revisions `which` accepts; `None`, logged
    /// with `purpose`, when the engine cannot say.
    pub(super) async fn app_containers(
        &self,
        app: &AppName,
        which: impl Fn(u64) -> bool,
        purpose: &str,
    ) -> Option<(Docker, Vec<ContainerInfo>)> {
        let listed = match self.docker().await {
            Ok(docker) => docker.list_managed().await.map(|list| (docker, list)),
            Err(e) => Err(e),
        };
        match listed {
            Ok((docker, list)) => {
                let mine = list
                    .into_iter()
                    .filter(|c| {
                        c.managed
                            .as_ref()
                            .is_some_and(|l| &l.app == app && which(l.rev))
                    })
                    .collect();
                Some((docker, mine))
            }
            Err(e) => {
                tracing::warn!(%app, error = %e, "cannot list containers to {purpose}");
                None
            }
        }
    }

    /// Best effort: a container that will not go away is logged and found again by the next
    /// reconcile, which removes what is not wanted.
    async fn remove_containers(
        &self,
        app: &AppName,
        which: impl Fn(u64) -> bool,
        keep_log: Option<&str>,
    ) {
        let Some((docker, containers)) = self.app_containers(app, which, "clean up").await else {
            return;
        };
        for c in containers {
            if let Err(e) = docker.stop(&c.name, STOP_TIMEOUT).await {
                tracing::debug!(container = %c.name, error = %e, "stop before remove");
            }
            if let Some(why) = keep_log {
                keep_removed_log(&self.ctx.store, &docker, &c.id, why).await;
            }
            if let Err(e) = docker.remove(&c.name).await {
                tracing::warn!(container = %c.name, error = %e, "cannot remove container");
            }
        }
    }

    /// Every container of the app, then its network (best effort, like the containers: a
    /// network left behind is reused by the next app of that name).
    pub(super) async fn remove_all(&self, app: &AppName) {
        self.remove_containers(app, |_| true, None).await;
        let Ok(docker) = self.docker().await else {
            return;
        };
        if let Err(e) = docker
            .remove_app_network(app, &self.settings.networks)
            .await
        {
            tracing::warn!(%app, error = %e, "cannot remove the app's network");
        }
    }
}

/// Folds runs of identical log lines into one line with a count: an app that prints the same
/// complaint every second should not fill the failure reason with it.
fn collapse_repeats(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut last: Option<(&str, usize)> = None;
    let flush = |out: &mut Vec<String>, entry: Option<(&str, usize)>| match entry {
        Some((line, 1)) => out.push(line.to_owned()),
        Some((line, n)) => out.push(format!("{line} (\u{d7}{n})")),
        None => {}
    };
    for line in text.lines() {
        match &mut last {
            Some((prev, n)) if *prev == line => *n += 1,
            _ => {
                flush(&mut out, last.take());
                last = Some((line, 1));
            }
        }
    }
    flush(&mut out, last);
    out.join("\n")
}

/// The registry login to pull `image` with: the app's credentials, only when `image` is on the
/// registry they were given for (`app_image`'s, for records that did not say).
pub(super) fn pull_auth(
    credentials: Option<&RegistryCredentials>,
    image: &ImageRef,
    app_image: &ImageRef,
) -> Option<RegistryAuth> {
    credentials
        .and_then(|c| c.for_image(image, app_image.registry()))
        .map(|c| RegistryAuth {
            username: c.username.clone(),
            password: c.password.expose().to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_log_lines_fold_into_one() {
        assert_eq!(collapse_repeats("a\na\na\nb\na"), "a (\u{d7}3)\nb\na");
        assert_eq!(collapse_repeats(""), "");
    }

    #[test]
    fn registry_credentials_go_only_to_their_registry() {
        let image = |s: &str| ImageRef::parse(s).unwrap();
        let mut creds = RegistryCredentials {
            username: "me".into(),
            password: crate::model::Secret::new("pw"),
            registry: Some("ghcr.io".into()),
        };
        let app = image("ghcr.io/me/app:1");
        let auth = pull_auth(Some(&creds), &image("ghcr.io/me/app:2"), &app).unwrap();
        assert_eq!(
            (auth.username.as_str(), auth.password.as_str()),
            ("me", "pw")
        );
        for elsewhere in [
            "evil.example/me/app:2",
            "me/app:2",
            "ghcr.io.evil.example/x:1",
        ] {
            assert!(
                pull_auth(Some(&creds), &image(elsewhere), &app).is_none(),
                "{elsewhere}"
            );
        }
        // The app's reference moved to another registry: the credentials stay with theirs.
        let moved = image("docker.io/me/app:3");
        assert!(pull_auth(Some(&creds), &moved, &moved).is_none());
        // A record from before the field: the app's own registry.
        creds.registry = None;
        assert!(pull_auth(Some(&creds), &image("ghcr.io/me/app:2"), &app).is_some());
        assert!(pull_auth(Some(&creds), &image("quay.io/me/app:2"), &app).is_none());
        assert!(pull_auth(None, &app, &app).is_none());
    }

    #[test]
    fn runner_containers_never_collide_with_web_containers() {
        let a = AppName::try_new("a").unwrap();
        let a_b = AppName::try_new("a-b").unwrap();
        assert_ne!(runner_container(&a, "b", 1), web_container(&a_b, 1));
        assert_eq!(web_container(&a, 3), "mc-a-3");
        assert_eq!(runner_container(&a, "worker", 3), "mc-a.worker-3");
    }
}
