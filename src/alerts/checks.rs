//! The periodic checks: each serving app's health path, the shared services (MariaDB,
//! RabbitMQ: the admin login), free space under the data dir and under Docker's root directory
//! (when that is another filesystem), the certificates (expiring, renewal failing), and each
//! app's last deploy and last backup as the store has them. One round every `interval`,
//! jittered; none of it asks Docker anything but, once, where its root directory is (an app's
//! address is the edge's, its container's state the event stream's).
//!
//! A check says what it saw ([`Seen`]); [`Streak`] turns a run of the same answer into a
//! verdict, so one slow answer does not cry wolf and one good answer does not end an incident.
//! What the store records (a deploy's or backup's outcome) is not a guess: one look is enough.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::incidents;
use super::AlertError;
use crate::apps::Apps;
use crate::certs::{self, CertState};
use crate::ctx::Ctx;
use crate::model::{manifest, now, AppName};
use crate::services::Services;
use crate::store::AlertMessage;
use crate::store::{web_incident_key, BackupRecord, BackupState, DeployOutcome, IncidentKind};

/// How the checks judge what they see.
#[derive(Debug, Clone, Copy)]
pub struct CheckSettings {
    /// Time between rounds (each one jittered by up to a tenth either way).
    pub interval: Duration,
    /// This many wrong answers in a row open an incident...
    pub fail_after: u32,
    /// ... and this many right ones resolve it.
    pub ok_after: u32,
    /// Used space, in percent, that is worth an incident; the second is one more.
    pub disk_levels: [u8; 2],
    /// A certificate that expires within this is told.
    pub cert_warning: Duration,
}

impl Default for CheckSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            fail_after: 3,
            ok_after: 2,
            disk_levels: [80, 90],
            cert_warning: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

/// One thing looked at, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The incident key: `health/blog`, `service/mariadb`, `disk/90`, `cert/host/expiry`.
    pub key: String,
    pub app: Option<AppName>,
    pub kind: IncidentKind,
    /// The incident's title, should it open.
    pub title: String,
    /// `Some(what is wrong)`, or `None` when all is well.
    pub wrong: Option<String>,
    /// A recorded outcome rather than a probe: one look opens or resolves.
    pub recorded: bool,
}

/// Consecutive answers of one key.
#[derive(Debug, Default, Clone, Copy)]
pub struct Streak {
    wrong: u32,
    right: u32,
}

/// What a streak says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Open,
    Resolve,
    Nothing,
}

impl Streak {
    /// Records one answer; `open` says whether an incident about it is open.
    pub fn record(
        &mut self,
        wrong: bool,
        open: bool,
        (fail_after, ok_after): (u32, u32),
    ) -> Verdict {
        if wrong {
            self.wrong += 1;
            self.right = 0;
        } else {
            self.right += 1;
            self.wrong = 0;
        }
        match (open, wrong) {
            (false, true) if self.wrong >= fail_after => Verdict::Open,
            (true, false) if self.right >= ok_after => Verdict::Resolve,
            _ => Verdict::Nothing,
        }
    }
}

/// The checks' state between rounds.
pub struct Checks {
    ctx: Ctx,
    apps: Apps,
    services: Services,
    settings: CheckSettings,
    streaks: HashMap<String, Streak>,
    http: Option<reqwest::Client>,
    /// Docker's root directory when it is on another filesystem than the data dir: `None`
    /// until the engine has said, then `Some(None)` when there is nothing more to watch.
    docker_root: Option<Option<PathBuf>>,
}

impl Checks {
    pub fn new(ctx: Ctx, apps: Apps, settings: CheckSettings) -> Self {
        // The apps' own provisioners: one RabbitMQ client in the process, not one more here.
        let services = apps.services().clone();
        // Probes never follow redirects (a redirect is an answer) and never use a proxy. They
        // speak plain HTTP to a container's address, so no TLS root store is loaded for them.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tls_built_in_root_certs(false)
            .build()
            .map_err(|e| tracing::error!(error = %e, "health probes off: no HTTP client"))
            .ok();
        Self {
            ctx,
            apps,
            services,
            settings,
            streaks: HashMap::new(),
            http,
            docker_root: None,
        }
    }

    /// Docker's root directory, asked of the engine until it answers once, when it is on
    /// another filesystem than the data dir (the data dir's check covers it otherwise). Not
    /// visible from here (minicloud in a container without it mounted): nothing to watch.
    async fn docker_root(&mut self) -> Option<PathBuf> {
        if self.docker_root.is_none() {
            let Ok(docker) = self.apps.docker().await else {
                return None;
            };
            let root = docker.root_dir().await?;
            let separate = same_filesystem(&self.ctx.config.data_dir, &root) == Some(false);
            self.docker_root = Some(separate.then_some(root));
        }
        self.docker_root.clone().flatten()
    }

    /// When the next round is due, from now.
    pub fn next_wait(&self) -> Duration {
        let tenth = self.settings.interval.as_millis() as u64 / 10;
        let base = self.settings.interval.as_millis() as u64;
        Duration::from_millis(base - tenth + rand::random_range(0..=2 * tenth))
    }

    /// One round: every check, and the messages of the incidents it opened or resolved.
    pub async fn round(&mut self) -> Vec<AlertMessage> {
        let mut seen = self.health().await;
        seen.extend(self.shared_services().await);
        seen.extend(disk(&self.ctx.config.data_dir, self.settings.disk_levels));
        if let Some(root) = self.docker_root().await {
            seen.extend(docker_disk(&root, self.settings.disk_levels));
        }
        seen.extend(self.certificates());
        seen.extend(self.records());
        // What is no longer looked at (an app removed or stopped) forgets its streak.
        self.streaks
            .retain(|key, _| seen.iter().any(|s| &s.key == key));
        let mut messages = Vec::new();
        for s in seen {
            match self.settle(s) {
                Ok(Some(m)) => messages.push(m),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "alert checks: cannot record an incident"),
            }
        }
        messages
    }

    fn settle(&mut self, seen: Seen) -> Result<Option<AlertMessage>, AlertError> {
        let open = incidents::find_open(&self.ctx, &seen.key)?;
        let rule = if seen.recorded {
            (1, 1)
        } else {
            (self.settings.fail_after, self.settings.ok_after)
        };
        let verdict = self.streaks.entry(seen.key.clone()).or_default().record(
            seen.wrong.is_some(),
            open.is_some(),
            rule,
        );
        Ok(match (verdict, open, seen.wrong) {
            (Verdict::Open, _, Some(text)) => {
                let (_, message) = incidents::open(
                    &self.ctx, &seen.key, seen.app, seen.kind, seen.title, text, None,
                )?;
                Some(message)
            }
            (Verdict::Resolve, Some(mut incident), None) => Some(incidents::resolve(
                &self.ctx,
                &mut incident,
                "Checked again: all well.".to_owned(),
            )?),
            _ => None,
        })
    }

    /// Each serving app's health path (or `/`, where any HTTP answer will do), at the address
    /// the edge sends its traffic to.
    async fn health(&self) -> Vec<Seen> {
        let Some(http) = &self.http else {
            return Vec::new();
        };
        let records = match self.ctx.store.apps() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "alert checks: cannot read the apps");
                return Vec::new();
            }
        };
        let mut targets = Vec::new();
        for record in records {
            let (false, Some(revision)) = (record.stopped, record.current) else {
                continue;
            };
            // Not serving (stopped, being deployed) or known down: the event stream's to tell.
            let Some(upstream) = self.apps.serving_upstream(&record.name) else {
                continue;
            };
            if incidents::find_open(&self.ctx, &web_incident_key(&record.name))
                .ok()
                .flatten()
                .is_some()
            {
                continue;
            }
            let path = self
                .ctx
                .store
                .deploy(&record.name, revision)
                .ok()
                .flatten()
                .and_then(|d| manifest::parse(&d.manifest_file, &d.manifest_text).ok())
                .and_then(|m| m.health.map(|h| h.path));
            targets.push((record.name, upstream, path));
        }
        // All at once: a round takes as long as the slowest app, not their sum.
        let probes = targets.into_iter().map(|(app, upstream, path)| async move {
            let url = format!("http://{upstream}{}", path.as_deref().unwrap_or("/"));
            let wrong = match http.get(&url).send().await {
                Ok(r)
                    if path.is_none() || r.status().is_success() || r.status().is_redirection() =>
                {
                    None
                }
                Ok(r) => Some(format!("GET {url} answered {}", r.status())),
                Err(e) => Some(format!(
                    "GET {url} failed: {}",
                    minicloud_proxy::error_chain(&e.without_url())
                )),
            };
            Seen {
                key: format!("health/{app}"),
                title: format!("{app}: unhealthy"),
                app: Some(app),
                kind: IncidentKind::Unhealthy,
                wrong: wrong.map(|w| {
                    format!(
                        "{w}, {} times in a row {}s apart",
                        self.settings.fail_after,
                        self.settings.interval.as_secs()
                    )
                }),
                recorded: false,
            }
        });
        futures_util::future::join_all(probes).await
    }

    /// Each app's last finished deploy and backup run.
    fn records(&self) -> Vec<Seen> {
        let apps = match self.ctx.store.apps() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "alert checks: cannot read the apps");
                return Vec::new();
            }
        };
        let mut seen = Vec::new();
        for record in apps {
            let app = record.name;
            let deploy = self.ctx.store.deploys(&app).ok().and_then(|all| {
                all.into_iter()
                    .rev()
                    .find(|d| d.outcome != DeployOutcome::InProgress)
            });
            if let Some(d) = deploy {
                seen.push(Seen {
                    key: format!("deploy/{app}"),
                    app: Some(app.clone()),
                    kind: IncidentKind::DeployFailed,
                    title: format!("{app}: deploying failed"),
                    wrong: match d.outcome {
                        DeployOutcome::Failed { reason } => Some(format!(
                            "revision {} ({}, {}) failed: {reason}; the previous revision keeps serving",
                            d.revision,
                            d.image,
                            d.trigger
                        )),
                        _ => None,
                    },
                    recorded: true,
                });
            }
            let runs = self.ctx.store.backups(&app).unwrap_or_default();
            seen.extend(self.backup_schedule_seen(&app, &runs));
            seen.extend(last_backup(app, runs));
        }
        // The platform's own runs (minicloud's state store) alert like an app's.
        let platform = AppName::platform();
        let runs = self.ctx.store.backups(&platform).unwrap_or_default();
        seen.extend(last_backup(platform, runs));
        seen
    }

    /// The schedule's own troubles: a slot minicloud slept through (told once per slot,
    /// resolved by a good run after it), and a verification that failed or is overdue.
    fn backup_schedule_seen(&self, app: &AppName, runs: &[BackupRecord]) -> Vec<Seen> {
        let mut seen = Vec::new();
        let missed_key = format!("backup-missed/{app}");
        if runs
            .iter()
            .any(|r| matches!(r.state, BackupState::Missed { .. }))
        {
            let last_told = self
                .ctx
                .store
                .incidents_about(&missed_key)
                .ok()
                .and_then(|all| all.iter().map(|i| i.opened_at).max());
            seen.push(Seen {
                key: missed_key,
                app: Some(app.clone()),
                kind: IncidentKind::BackupFailed,
                title: format!("{app}: a scheduled backup was missed"),
                wrong: missed_wrong(runs, last_told),
                recorded: true,
            });
        }
        // An app whose own schedule is off is neither backed up nor verified by the
        // schedule: its verification is never overdue.
        let scheduled = self.ctx.config.backup_schedule
            && !matches!(
                self.ctx.store.backup_policy(app),
                Ok(Some(p)) if p.policy.schedule == crate::model::Schedule::Off
            );
        let verify = verification_wrong(now(), runs, scheduled);
        if let Some(wrong) = verify {
            seen.push(Seen {
                key: format!("backup-verify/{app}"),
                app: Some(app.clone()),
                kind: IncidentKind::BackupFailed,
                title: format!("{app}: the backup's verification failed"),
                wrong,
                recorded: true,
            });
        }
        seen
    }

    async fn shared_services(&self) -> Vec<Seen> {
        let mariadb = async {
            let db = self.services.mariadb()?;
            Some(service("mariadb", "MariaDB", db.address(), db.ping().await))
        };
        let rabbitmq = async {
            let mq = self.services.rabbitmq()?;
            Some(service(
                "rabbitmq",
                "RabbitMQ",
                &mq.address(),
                mq.ping().await,
            ))
        };
        let (mariadb, rabbitmq) = tokio::join!(mariadb, rabbitmq);
        mariadb.into_iter().chain(rabbitmq).collect()
    }

    fn certificates(&self) -> Vec<Seen> {
        let list = match certs::list_certificates(&self.ctx) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "alert checks: cannot read the certificates");
                return Vec::new();
            }
        };
        let warning = i64::try_from(self.settings.cert_warning.as_secs()).unwrap_or(i64::MAX);
        let at = now();
        let mut seen = Vec::new();
        for cert in list {
            if matches!(cert.state, CertState::SelfSigned | CertState::Pending) {
                continue;
            }
            let host = &cert.host;
            let failing = (cert.state == CertState::Failed).then(|| {
                format!(
                    "ordering a certificate for {host} failed: {}{}",
                    cert.error.as_deref().unwrap_or("no reason given"),
                    cert.next_retry
                        .map(|t| format!("; tried again at {}", crate::model::format_time(t)))
                        .unwrap_or_default()
                )
            });
            seen.push(Seen {
                key: format!("cert/{host}/renewal"),
                app: None,
                kind: IncidentKind::CertificateRenewal,
                title: if cert.not_after.is_some() {
                    format!("the certificate of {host} cannot be renewed")
                } else {
                    format!("the certificate of {host} cannot be issued")
                },
                wrong: failing,
                recorded: true,
            });
            if let Some(not_after) = cert.not_after {
                let expiring = (not_after - at < warning).then(|| {
                    format!(
                        "the certificate of {host} expires {} ({} days)",
                        crate::model::format_time(not_after),
                        (not_after - at).max(0) / 86_400
                    )
                });
                seen.push(Seen {
                    key: format!("cert/{host}/expiry"),
                    app: None,
                    kind: IncidentKind::CertificateExpiring,
                    title: format!("the certificate of {host} expires soon"),
                    wrong: expiring,
                    recorded: true,
                });
            }
        }
        seen
    }
}

/// The last finished backup run of an app or of the platform, as something seen. A missed slot
/// is told on its own key (`backup_schedule_seen`): it says nothing of whether backing up works.
fn last_backup(subject: AppName, runs: Vec<BackupRecord>) -> Option<Seen> {
    let b = runs
        .into_iter()
        .rev()
        .find(|b| !matches!(b.state, BackupState::Running | BackupState::Missed { .. }))?;
    // `backup/minicloud` for the platform: a reserved name, so no app has that key.
    let key = format!("backup/{subject}");
    let (title, app) = if subject.is_platform() {
        ("the platform backup failed".to_owned(), None)
    } else {
        (format!("{subject}: backing up failed"), Some(subject))
    };
    Some(Seen {
        key,
        title,
        app,
        kind: IncidentKind::BackupFailed,
        wrong: match b.state {
            BackupState::Failed { reason } => Some(format!(
                "the {} backup run {} failed: {reason}",
                b.trigger, b.id
            )),
            // The local copy is there, the off-site one is not: still wrong.
            BackupState::Partial { reason } => Some(format!(
                "the {} backup run {} is partial: {reason}",
                b.trigger, b.id
            )),
            _ => None,
        },
        recorded: true,
    })
}

/// Whether the newest missed slot of `runs` is still wrong: not told yet (no incident about
/// missed slots opened since it, `last_told`), or no run has succeeded since.
fn missed_wrong(runs: &[BackupRecord], last_told: Option<i64>) -> Option<String> {
    let (missed, reason) = runs.iter().rev().find_map(|r| match &r.state {
        BackupState::Missed { reason } => Some((r, reason)),
        _ => None,
    })?;
    let good_since = runs
        .iter()
        .any(|r| r.started_at >= missed.started_at && r.state == BackupState::Succeeded);
    let untold = last_told.is_none_or(|at| at < missed.started_at);
    (untold || !good_since).then(|| {
        let since = if good_since {
            "a backup has succeeded since"
        } else {
            "no backup has succeeded since"
        };
        format!(
            "the scheduled backup run {} was missed: {reason}; {since}",
            missed.id
        )
    })
}

/// Whether the newest verification of `runs` says something is wrong: `None` when there is
/// nothing to look at (never verified, no dump), `Some(None)` when all is well. Overdue counts
/// only with the schedule on: nothing else verifies. A verification is overdue a day after it was due (the
/// schedule verifies at the app's daily slot once one is due).
fn verification_wrong(now: i64, runs: &[BackupRecord], scheduled: bool) -> Option<Option<String>> {
    use crate::backups::plan::VERIFY_EVERY;
    const GRACE: i64 = 86_400;
    let newest = runs
        .iter()
        .filter_map(|r| r.verified.as_ref().map(|v| (r, v)))
        .max_by_key(|(_, v)| v.at);
    let first_dump = runs
        .iter()
        .filter(|r| r.state.is_restorable() && r.parts.iter().any(|p| p.part == "database"))
        .map(|r| r.finished_at.unwrap_or(r.started_at))
        .min();
    match newest {
        Some((run, v)) if !v.ok => Some(Some(format!(
            "the backup run {} failed its verification: {}",
            run.id,
            v.problem.as_deref().unwrap_or("no reason given")
        ))),
        Some((run, v)) if scheduled && now - v.at > VERIFY_EVERY + GRACE => Some(Some(format!(
            "no backup was verified since {} (the backup run {}); one is due every {} days",
            crate::model::format_time(v.at),
            run.id,
            VERIFY_EVERY / 86_400
        ))),
        Some(_) => Some(None),
        None => {
            let since = first_dump?;
            Some((scheduled && now - since > VERIFY_EVERY + GRACE).then(|| {
                format!(
                    "no backup of it was ever verified, though it has had dumps since {}",
                    crate::model::format_time(since)
                )
            }))
        }
    }
}

fn service(
    key: &str,
    name: &str,
    address: &str,
    outcome: Result<(), crate::services::ServiceError>,
) -> Seen {
    Seen {
        key: format!("service/{key}"),
        app: None,
        kind: IncidentKind::ServiceDown,
        title: format!("{name} at {address} is down"),
        wrong: outcome
            .err()
            .map(|e| format!("{e}; apps that use it fail, and deploys that need it are refused")),
        recorded: false,
    }
}

/// Used space of the filesystem holding `dir`, in percent as `df` counts it (blocks reserved
/// for root count as not available).
fn used_percent(dir: &Path) -> Result<u8, String> {
    let stat = nix::sys::statvfs::statvfs(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let total = stat.blocks() as u128;
    let used = total.saturating_sub(stat.blocks_free() as u128);
    let usable = used + stat.blocks_available() as u128;
    if usable == 0 {
        return Ok(0);
    }
    Ok(u8::try_from((used * 100).div_ceil(usable)).unwrap_or(100))
}

/// One [`Seen`] per level: past 80% is one incident, past 90% another, each told once.
fn disk(dir: &Path, levels: [u8; 2]) -> Vec<Seen> {
    let Some(used) = measure(dir) else {
        return Vec::new();
    };
    levels
        .iter()
        .map(|level| Seen {
            key: format!("disk/{level}"),
            app: None,
            kind: IncidentKind::DiskFull,
            title: format!("the disk under {} is over {level}% full", dir.display()),
            wrong: (used >= *level).then(|| {
                format!(
                    "{used}% of the filesystem holding {} is used; deploys, backups and the store need room",
                    dir.display()
                )
            }),
            recorded: false,
        })
        .collect()
}

/// Like [`disk`], for the filesystem under Docker's root directory, with keys of its own.
fn docker_disk(root: &Path, levels: [u8; 2]) -> Vec<Seen> {
    measure(root).map_or_else(Vec::new, |used| docker_disk_seen(root, used, levels))
}

fn docker_disk_seen(root: &Path, used: u8, levels: [u8; 2]) -> Vec<Seen> {
    levels
        .iter()
        .map(|level| Seen {
            key: format!("docker-disk/{level}"),
            app: None,
            kind: IncidentKind::DiskFull,
            title: format!(
                "the disk under Docker's images and containers at {} is over {level}% full",
                root.display()
            ),
            wrong: (used >= *level).then(|| {
                format!(
                    "Docker's images and containers at {}: {used}% used; pulls and deploys need room \
                     (images no app uses: docker image prune)",
                    root.display()
                )
            }),
            recorded: false,
        })
        .collect()
}

fn measure(dir: &Path) -> Option<u8> {
    used_percent(dir)
        .map_err(|e| tracing::warn!(error = %e, "alert checks: cannot measure free disk"))
        .ok()
}

/// Whether `a` and `b` are on one filesystem (the same device); `None` when either cannot be
/// looked at.
fn same_filesystem(a: &Path, b: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    Some(dev(a)? == dev(b)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_opens_after_fails_in_a_row_and_resolves_after_successes() {
        let settings = CheckSettings::default();
        let settings = (settings.fail_after, settings.ok_after);
        let mut s = Streak::default();
        assert_eq!(s.record(true, false, settings), Verdict::Nothing);
        assert_eq!(s.record(true, false, settings), Verdict::Nothing);
        // One good answer in between starts the count again.
        assert_eq!(s.record(false, false, settings), Verdict::Nothing);
        assert_eq!(s.record(true, false, settings), Verdict::Nothing);
        assert_eq!(s.record(true, false, settings), Verdict::Nothing);
        assert_eq!(s.record(true, false, settings), Verdict::Open);
        // Open: more wrong answers change nothing; two right ones resolve.
        assert_eq!(s.record(true, true, settings), Verdict::Nothing);
        assert_eq!(s.record(false, true, settings), Verdict::Nothing);
        assert_eq!(s.record(false, true, settings), Verdict::Resolve);
    }

    #[test]
    fn the_disk_is_one_answer_per_level() {
        let seen = disk(Path::new("/"), [0, 101]);
        assert_eq!(seen.len(), 2);
        assert!(seen[0]
            .wrong
            .as_deref()
            .is_some_and(|w| w.contains("% of the filesystem")));
        assert_eq!(seen[1].wrong, None, "no filesystem is more than 100% used");
        assert_eq!(seen[1].key, "disk/101");
    }

    #[test]
    fn dockers_disk_has_its_own_keys_and_words() {
        let root = Path::new("/var/lib/docker");
        let seen = docker_disk_seen(root, 91, [80, 90]);
        let keys: Vec<&str> = seen.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["docker-disk/80", "docker-disk/90"]);
        let wrong = seen[1].wrong.as_deref().unwrap();
        assert!(
            wrong.starts_with("Docker's images and containers at /var/lib/docker: 91% used"),
            "{wrong}"
        );
        assert!(seen[1].title.contains("over 90% full"), "{}", seen[1].title);
        let calm = docker_disk_seen(root, 79, [80, 90]);
        assert!(calm.iter().all(|s| s.wrong.is_none()), "{calm:?}");
    }

    #[test]
    fn filesystems_are_told_apart_by_device() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(same_filesystem(dir.path(), &sub), Some(true));
        // procfs is a filesystem of its own on every Linux.
        assert_eq!(same_filesystem(dir.path(), Path::new("/proc")), Some(false));
        assert_eq!(
            same_filesystem(dir.path(), &dir.path().join("missing")),
            None
        );
    }

    fn run(started_at: i64, state: BackupState) -> BackupRecord {
        BackupRecord {
            app: AppName::try_new("blog").unwrap(),
            id: format!("{started_at:010}-0000"),
            trigger: "schedule".into(),
            started_at,
            finished_at: Some(started_at + 10),
            state,
            parts: vec![crate::store::BackupPart {
                part: "database".into(),
                snapshot: "abc".into(),
                bytes: 1,
                added: 1,
            }],
            verified: None,
            destinations: Vec::new(),
        }
    }

    fn missed(slot: i64) -> BackupRecord {
        run(
            slot,
            BackupState::Missed {
                reason: "minicloud was not running".into(),
            },
        )
    }

    #[test]
    fn a_missed_slot_is_told_once_and_a_good_run_after_it_resolves() {
        // Caught up at once: still told, once; after that the good run since resolves it.
        let caught_up = [missed(1000), run(5000, BackupState::Succeeded)];
        let told = missed_wrong(&caught_up, None).unwrap();
        assert!(
            told.contains("was missed: minicloud was not running"),
            "{told}"
        );
        assert!(told.contains("a backup has succeeded since"), "{told}");
        assert_eq!(missed_wrong(&caught_up, Some(6000)), None);
        // The catch-up failed: wrong until a run succeeds.
        let failed = BackupState::Failed {
            reason: "disk full".into(),
        };
        let still = [missed(1000), run(5000, failed)];
        assert!(missed_wrong(&still, Some(6000))
            .unwrap()
            .contains("no backup has succeeded since"));
        // A later slot missed again is told again, though an earlier one was.
        let again = [
            missed(1000),
            run(5000, BackupState::Succeeded),
            missed(90_000),
            run(95_000, BackupState::Succeeded),
        ];
        assert!(missed_wrong(&again, Some(6000)).is_some());
        assert_eq!(missed_wrong(&again, Some(96_000)), None);
        assert_eq!(
            missed_wrong(&[run(5000, BackupState::Succeeded)], None),
            None
        );
    }

    #[test]
    fn a_failed_or_overdue_verification_is_wrong_and_a_good_one_is_not() {
        use crate::backups::plan::VERIFY_EVERY;
        let verified = |at: i64, ok: bool| {
            let mut r = run(at - 100, BackupState::Succeeded);
            r.verified = Some(crate::store::Verification {
                at,
                ok,
                tables: 1,
                rows: 1,
                problem: (!ok).then(|| "table notes has 1 rows, the dump holds 2".into()),
            });
            r
        };
        let now = 100 * 86_400;
        let failed = verification_wrong(now, &[verified(now - 60, false)], true);
        let text = failed.flatten().unwrap();
        assert!(
            text.contains("failed its verification: table notes has 1 rows"),
            "{text}"
        );
        // The newest verification counts: a good one after a failed one is all well.
        let good_again = [verified(now - 600, false), verified(now - 60, true)];
        assert_eq!(verification_wrong(now, &good_again, true), Some(None));
        // Overdue: a week and a day since the last one, with the schedule on only.
        let old = [verified(now - VERIFY_EVERY - 2 * 86_400, true)];
        let overdue = verification_wrong(now, &old, true).flatten().unwrap();
        assert!(overdue.contains("one is due every 7 days"), "{overdue}");
        assert_eq!(verification_wrong(now, &old, false), Some(None));
        let due_today = [verified(now - VERIFY_EVERY - 3600, true)];
        assert_eq!(verification_wrong(now, &due_today, true), Some(None));
        // Never verified: wrong once the first dump is overdue; nothing without a dump.
        let dumped = [run(now - VERIFY_EVERY - 2 * 86_400, BackupState::Succeeded)];
        assert!(verification_wrong(now, &dumped, true).flatten().is_some());
        assert_eq!(verification_wrong(now, &dumped[..0], true), None);
    }
}
