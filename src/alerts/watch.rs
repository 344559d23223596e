//! The watcher: follows the engine's event stream for this minicloud's containers and turns
//! what it sees into route moves, recreated containers and incidents.
//!
//! At idle it waits on the event stream and two timers: the round of [`Checks`] (health paths,
//! shared services, disk, certificates; none of them asks Docker) and the next reminder of an
//! incident still open. Other timers run only when an event left something to do later (an
//! app busy with an operation, a recovery to confirm); deliveries retry on their own, from
//! the [`Outbox`]. When the engine
//! goes away it connects again, with backoff, and runs the start-up reconcile plan, since
//! events of the time it was away are lost; the plan also runs every 10 minutes, for drift no
//! event told of.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use minicloud_proxy::ShutdownWatch;
use tokio::time::Instant;

use super::checks::{CheckSettings, Checks};
use super::incidents::{self, CrashLoopRule, Dies, Fold};
use super::outbox::Outbox;
use super::AlertError;
use crate::apps::{AppError, Apps};
use crate::ctx::Ctx;
use crate::docker::{
    ContainerAction, ContainerEvent, ContainerState, DockerError, ManagedLabels, Role,
};
use crate::model::{now, Actor};
use crate::store::{web_incident_key, AlertEvent, AlertMessage, IncidentKind};

/// How the watcher judges what it sees.
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// More restarts than this in `crash_window` is a crash loop.
    pub crash_restarts: usize,
    pub crash_window: Duration,
    /// A container that stays up this long after a start has recovered.
    pub settle: Duration,
    /// An incident still open this long after it was told is told again; `None`: never.
    pub remind_after: Option<Duration>,
    pub checks: CheckSettings,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            crash_restarts: 3,
            crash_window: Duration::from_secs(5 * 60),
            settle: Duration::from_secs(10),
            remind_after: Some(Duration::from_secs(4 * 3600)),
            checks: CheckSettings::default(),
        }
    }
}

/// How long a container stopped or removed outside minicloud stays so before it is recreated:
/// the engine's restart policy acts first, and whoever removes an app's containers by hand (a
/// clean-up before an uninstall) has a moment to stop minicloud first.
const RECREATE_DELAY: Duration = Duration::from_secs(15);
/// How soon an event on a busy app is looked at again.
const BUSY_RETRY: Duration = Duration::from_secs(1);
/// How often the start-up reconcile plan runs anyway, to bring back what drifted without an
/// event that reached here (a lost event, a container changed while the stream reconnected).
const DRIFT_RECONCILE: Duration = Duration::from_secs(10 * 60);
/// Reconnect backoff bounds.
const RECONNECT_MIN: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// The watcher, run as one background task.
pub struct Watcher {
    ctx: Ctx,
    apps: Apps,
    settings: WatchSettings,
    /// Per container role (see [`key_of`]): its recent dies.
    dies: HashMap<String, Dies>,
    /// Roles whose next die is an out-of-memory kill.
    oom: HashSet<String>,
    /// Roles that started while an incident was open: recovered if still running then.
    recoveries: HashMap<String, (Instant, ContainerEvent)>,
    /// Roles whose container stopped or was removed outside minicloud: recreated then,
    /// unless it runs again.
    recreates: HashMap<String, (Instant, ContainerEvent)>,
    /// Events on apps busy with an operation, to look at again.
    deferred: Vec<(Instant, ContainerEvent)>,
    /// The start-up reconcile plan is due (after a reconnect), at this time.
    reconcile_due: Option<Instant>,
    /// The next periodic reconcile.
    drift_due: Instant,
    checks: Checks,
    check_due: Instant,
    /// The next reminder of an open incident, as last worked out.
    remind_due: Option<Instant>,
    outbox: Outbox,
}

/// Incidents are per app container role: `app/blog/web`, `app/blog/runner/worker`.
fn key_of(labels: &ManagedLabels) -> String {
    match (&labels.role, &labels.runner) {
        (Role::Runner, Some(runner)) => format!("app/{}/runner/{runner}", labels.app),
        _ => web_incident_key(&labels.app),
    }
}

fn what(labels: &ManagedLabels) -> String {
    match (&labels.role, &labels.runner) {
        (Role::Runner, Some(runner)) => format!("its runner '{runner}'"),
        _ => "its web container".to_owned(),
    }
}

impl Watcher {
    pub fn new(ctx: Ctx, apps: Apps, settings: WatchSettings) -> Self {
        Self {
            ctx: ctx.clone(),
            apps: apps.clone(),
            settings,
            dies: HashMap::new(),
            oom: HashSet::new(),
            recoveries: HashMap::new(),
            recreates: HashMap::new(),
            deferred: Vec::new(),
            reconcile_due: None,
            drift_due: Instant::now() + DRIFT_RECONCILE,
            check_due: Instant::now() + settings.checks.interval,
            outbox: Outbox::new(ctx.clone()),
            checks: Checks::new(ctx, apps, settings.checks),
            remind_due: None,
        }
    }

    /// Follows the engine until `shutdown`.
    pub async fn run(mut self, mut shutdown: ShutdownWatch) {
        let mut since: Option<i64> = None;
        let mut backoff = RECONNECT_MIN;
        // Incidents opened before a restart are reminded of on their schedule, and messages
        // not yet delivered are tried again.
        self.plan_reminders();
        self.outbox.resume();
        loop {
            let docker = match self.apps.docker().await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "alert watcher: no engine");
                    if sleep_or_stop(backoff, &mut shutdown).await {
                        return;
                    }
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                    continue;
                }
            };
            let mut events = Box::pin(docker.container_events(since));
            tracing::debug!(?since, "alert watcher: following the engine's events");
            loop {
                self.outbox.reap();
                let next = self.next_deadline();
                tokio::select! {
                    _ = shutdown.changed() => return,
                    item = events.next() => match item {
                        Some(Ok(event)) => {
                            backoff = RECONNECT_MIN;
                            since = Some(event.time);
                            self.handle(event).await;
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "alert watcher: the engine's event stream broke; connecting again");
                            break;
                        }
                        None => {
                            tracing::warn!("alert watcher: the engine's event stream ended; connecting again");
                            break;
                        }
                    },
                    _ = sleep_until(next), if next.is_some() => self.run_due().await,
                }
            }
            // Events of the time the engine was away are lost: bring everything in line.
            self.reconcile_due = Some(Instant::now() + backoff);
            if sleep_or_stop(backoff, &mut shutdown).await {
                return;
            }
            backoff = (backoff * 2).min(RECONNECT_MAX);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.deferred
            .iter()
            .map(|(at, _)| *at)
            .chain(self.recoveries.values().map(|(at, _)| *at))
            .chain(self.recreates.values().map(|(at, _)| *at))
            .chain(self.reconcile_due)
            .chain(self.remind_due)
            .chain([self.check_due, self.drift_due])
            .min()
    }

    /// Sends the reminders that are due and works out when the next one is.
    fn plan_reminders(&mut self) {
        self.remind_due = None;
        let Some(every) = self.settings.remind_after else {
            return;
        };
        let every = i64::try_from(every.as_secs()).unwrap_or(i64::MAX);
        let at = now();
        let (due, next) = match incidents::due_reminders(&self.ctx, every, at) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "alert watcher: cannot read the open incidents");
                return;
            }
        };
        for mut incident in due {
            match incidents::remind(&self.ctx, &mut incident) {
                Ok(message) => self.dispatch(message),
                Err(e) => tracing::warn!(error = %e, "alert watcher: cannot record a reminder"),
            }
        }
        self.remind_due =
            next.map(|t| Instant::now() + Duration::from_secs(u64::try_from(t - at).unwrap_or(0)));
    }

    async fn run_due(&mut self) {
        let now = Instant::now();
        if self.drift_due <= now {
            self.drift_due = now + DRIFT_RECONCILE;
            self.reconcile_due.get_or_insert(now);
        }
        if self.check_due <= now {
            for message in self.checks.round().await {
                self.dispatch(message);
            }
            self.check_due = Instant::now() + self.checks.next_wait();
        }
        if self.remind_due.is_some_and(|at| at <= now) {
            self.plan_reminders();
        }
        if self.reconcile_due.is_some_and(|at| at <= now) {
            self.reconcile_due = None;
            let op = self.ctx.begin(Actor::System);
            match self.apps.recreate(&op).await {
                Ok(done) => tracing::debug!(?done, "alert watcher: reconciled with the engine"),
                Err(AppError::Busy(_)) => self.reconcile_due = Some(now + BUSY_RETRY),
                Err(e) => {
                    tracing::warn!(error = %e, "alert watcher: reconcile with the engine failed")
                }
            }
        }
        // In their order: `handle` puts an event back behind any earlier one of its app.
        for (at, event) in std::mem::take(&mut self.deferred) {
            if at > now {
                self.deferred.push((at, event));
            } else {
                self.handle(event).await;
            }
        }
        for (key, event) in take_due(&mut self.recreates, now) {
            self.recreate(key, event).await;
        }
        for (key, event) in take_due(&mut self.recoveries, now) {
            if let Err(e) = self.confirm_recovery(&key, &event).await {
                tracing::warn!(error = %e, %key, "alert watcher: cannot record a recovery");
            }
        }
    }

    /// Looks at one event. An app busy with an operation is looked at again shortly: what the
    /// operation does (stop, remove, deploy) decides what the event means.
    async fn handle(&mut self, event: ContainerEvent) {
        let Some(labels) = event.managed.clone() else {
            return;
        };
        // Events of one app are looked at in their order: behind any deferred one.
        let behind = self
            .deferred
            .iter()
            .any(|(_, e)| e.managed.as_ref().is_some_and(|l| l.app == labels.app));
        if behind || self.ctx.locks.busy(&labels.app).is_some() {
            self.deferred.push((Instant::now() + BUSY_RETRY, event));
            return;
        }
        match self.handle_free(&labels, &event).await {
            Ok(()) => {}
            Err(Handled::Busy) => self.deferred.push((Instant::now() + BUSY_RETRY, event)),
            Err(Handled::Failed(e)) => {
                tracing::warn!(error = %e, container = %event.name, action = ?event.action, "alert watcher: cannot act on an engine event")
            }
        }
    }

    async fn handle_free(
        &mut self,
        labels: &ManagedLabels,
        event: &ContainerEvent,
    ) -> Result<(), Handled> {
        let app = &labels.app;
        let Some(record) = self.ctx.store.app(app).map_err(AlertError::from)? else {
            return Ok(());
        };
        // Containers of other revisions, and of stopped apps, stop because minicloud asks.
        if record.stopped || record.current != Some(labels.rev) {
            return Ok(());
        }
        let key = key_of(labels);
        let op = self.ctx.begin(Actor::System);
        match &event.action {
            ContainerAction::Oom => {
                self.oom.insert(key);
            }
            ContainerAction::Die { exit_code } => {
                // Gone already (removed, or replaced under the same name by minicloud
                // itself): the destroy that follows says what it means.
                let docker = self.apps.docker().await.map_err(AppError::from)?;
                let info = match docker.inspect(&event.id).await {
                    Ok(info) => info,
                    Err(DockerError::NotFound { .. }) => return Ok(()),
                    Err(e) => return Err(Handled::Failed(e.to_string())),
                };
                // First, so a busy app is looked at again before anything is recorded.
                if labels.role == Role::Web && info.state != ContainerState::Running {
                    self.apps.web_container_down(&op, app, labels.rev)?;
                }
                self.recoveries.remove(&key);
                let oom = self.oom.remove(&key) || info.oom_killed == Some(true);
                self.died(labels, &key, event, *exit_code, oom, record.memory_mb)?;
                // The engine's restart policy brings most back; what it leaves exited (a
                // `docker kill` on some engines) is recreated.
                self.recreates
                    .insert(key, (Instant::now() + RECREATE_DELAY, event.clone()));
            }
            ContainerAction::Start => {
                // Only what still runs now counts (an event may be seconds old).
                let docker = self.apps.docker().await.map_err(AppError::from)?;
                let running = docker
                    .inspect(&event.id)
                    .await
                    .is_ok_and(|i| i.state == ContainerState::Running);
                if !running {
                    return Ok(());
                }
                self.recreates.remove(&key);
                if labels.role == Role::Web {
                    self.apps.follow_container(&op, app).await?;
                }
                let open = incidents::find_open(&self.ctx, &key)?;
                if open.is_some() {
                    self.recoveries
                        .insert(key, (Instant::now() + self.settings.settle, event.clone()));
                }
            }
            ContainerAction::Destroy => {
                // A container minicloud replaced (same name, new one) is no news.
                let docker = self.apps.docker().await.map_err(AppError::from)?;
                if docker.inspect(&event.name).await.is_ok() {
                    return Ok(());
                }
                if labels.role == Role::Web {
                    self.apps.web_container_down(&op, app, labels.rev)?;
                }
                let text = format!(
                    "{app}: {} ({}) was removed outside minicloud; recreating it in {}s",
                    what(labels),
                    event.name,
                    RECREATE_DELAY.as_secs()
                );
                match incidents::find_open(&self.ctx, &key)? {
                    Some(mut incident) => incidents::note(&self.ctx, &mut incident, text, None)?,
                    None => {
                        let title = format!("{app}: {} was removed", what(labels));
                        let (_, message) = incidents::open(
                            &self.ctx,
                            &key,
                            Some(app.clone()),
                            IncidentKind::ContainerExited,
                            title,
                            text,
                            None,
                        )?;
                        self.dispatch(message);
                    }
                }
                self.recoveries.remove(&key);
                self.recreates
                    .insert(key, (Instant::now() + RECREATE_DELAY, event.clone()));
            }
        }
        Ok(())
    }

    /// Brings back what was removed or left exited (the reconcile plan), if it still should
    /// run and still does not; then waits for it to stay up like any restart.
    async fn recreate(&mut self, key: String, event: ContainerEvent) {
        let Some(labels) = &event.managed else {
            return;
        };
        let serving = self
            .ctx
            .store
            .app(&labels.app)
            .ok()
            .flatten()
            .is_some_and(|r| !r.stopped && r.current == Some(labels.rev));
        if !serving {
            return;
        }
        if let Ok(docker) = self.apps.docker().await {
            let state = docker.inspect(&event.name).await.map(|i| i.state);
            if matches!(
                state,
                Ok(ContainerState::Running | ContainerState::Restarting)
            ) {
                return;
            }
        }
        let op = self.ctx.begin(Actor::System);
        match self.apps.recreate(&op).await {
            Ok(done) => {
                tracing::info!(?done, container = %event.name, "alert watcher: recreated a removed container");
                self.recoveries
                    .insert(key, (Instant::now() + self.settings.settle, event));
            }
            Err(AppError::Busy(_)) => {
                self.recreates
                    .insert(key, (Instant::now() + BUSY_RETRY, event));
            }
            Err(e) => {
                tracing::warn!(error = %e, container = %event.name, "alert watcher: cannot recreate a removed container")
            }
        }
    }

    /// One die of a serving container: new trouble, more of it, or now a crash loop.
    fn died(
        &mut self,
        labels: &ManagedLabels,
        key: &str,
        event: &ContainerEvent,
        exit_code: Option<i64>,
        oom: bool,
        memory_mb: u64,
    ) -> Result<(), AlertError> {
        let app = &labels.app;
        let open = incidents::find_open(&self.ctx, key)?;
        let looping = open
            .as_ref()
            .is_some_and(|i| i.kind == IncidentKind::CrashLoop);
        let rule = CrashLoopRule {
            restarts: self.settings.crash_restarts,
            window_secs: i64::try_from(self.settings.crash_window.as_secs()).unwrap_or(i64::MAX),
        };
        let at = if event.time > 0 { event.time } else { now() };
        let fold =
            self.dies
                .entry(key.to_owned())
                .or_default()
                .record(at, open.is_some(), looping, rule);
        let code = exit_code.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
        let (kind, text) = if oom {
            (
                IncidentKind::OutOfMemory,
                format!(
                    "{app}: {} was killed for using more memory than its limit ({memory_mb} MB); the engine restarts it",
                    what(labels)
                ),
            )
        } else {
            (
                IncidentKind::ContainerExited,
                format!(
                    "{app}: {} stopped (exit code {code}); the engine restarts it",
                    what(labels)
                ),
            )
        };
        match (fold, open) {
            (Fold::New, _) | (_, None) => {
                let title = match kind {
                    IncidentKind::OutOfMemory => {
                        format!("{app}: {} ran out of memory", what(labels))
                    }
                    _ => format!("{app}: {} stopped (exit code {code})", what(labels)),
                };
                let (_, message) = incidents::open(
                    &self.ctx,
                    key,
                    Some(app.clone()),
                    kind,
                    title,
                    text,
                    exit_code,
                )?;
                self.dispatch(message);
            }
            (Fold::Again, Some(mut incident)) => {
                incident.exit_code = exit_code;
                incidents::note(&self.ctx, &mut incident, text, None)?;
            }
            (Fold::NowCrashLooping, Some(mut incident)) => {
                incident.exit_code = exit_code;
                let minutes = self.settings.crash_window.as_secs().div_ceil(60);
                let title = format!("{app}: {} is crash-looping", what(labels));
                let text = format!(
                    "{text}; more than {} restarts in {minutes} minutes: crash-looping",
                    self.settings.crash_restarts
                );
                incidents::note(
                    &self.ctx,
                    &mut incident,
                    text,
                    Some((IncidentKind::CrashLoop, title)),
                )?;
            }
        }
        Ok(())
    }

    /// A role that started while an incident was open, `settle` ago: if it still runs, the
    /// incident is over.
    async fn confirm_recovery(
        &mut self,
        key: &str,
        event: &ContainerEvent,
    ) -> Result<(), AlertError> {
        let Some(mut incident) = incidents::find_open(&self.ctx, key)? else {
            return Ok(());
        };
        let Ok(docker) = self.apps.docker().await else {
            return Ok(());
        };
        let state = docker.inspect(&event.name).await.map(|i| i.state);
        match state {
            Ok(ContainerState::Running) => {}
            // Still restarting: its next start or die says more.
            Ok(ContainerState::Restarting) => return Ok(()),
            // Down again without a word from the engine that reached here: bring it back.
            _ => {
                self.recreates
                    .insert(key.to_owned(), (Instant::now(), event.clone()));
                return Ok(());
            }
        }
        let Some(labels) = &event.managed else {
            return Ok(());
        };
        let app = &labels.app;
        let restarts = self.dies.get(key).map_or(0, Dies::in_window);
        let where_ = match labels.role {
            Role::Web => self
                .apps
                .serving_upstream(app)
                .map(|u| format!("; serving at {u}"))
                .unwrap_or_default(),
            Role::Runner => String::new(),
        };
        let text = format!(
            "{app}: running again ({restarts} stop(s) in the last {} minutes){where_}",
            self.settings.crash_window.as_secs().div_ceil(60)
        );
        let message = incidents::resolve(&self.ctx, &mut incident, text)?;
        self.dies.remove(key);
        self.dispatch(message);
        Ok(())
    }

    /// Sends `message` to every channel, through the outbox.
    fn dispatch(&mut self, message: AlertMessage) {
        // A new incident has its own reminder time; one resolved has none.
        if message.event != AlertEvent::Reminder {
            self.remind_due = Some(Instant::now());
        }
        let channels = self.outbox.send(&message);
        tracing::info!(title = %message.title, event = message.event.as_str(), channels, "alert");
    }
}

/// Why an event was not acted on now.
enum Handled {
    /// The app is busy: look again shortly.
    Busy,
    Failed(String),
}

impl From<AlertError> for Handled {
    fn from(e: AlertError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<AppError> for Handled {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Busy(_) => Self::Busy,
            other => Self::Failed(other.to_string()),
        }
    }
}

/// Takes the entries whose time has come out of `pending`.
fn take_due(
    pending: &mut HashMap<String, (Instant, ContainerEvent)>,
    now: Instant,
) -> Vec<(String, ContainerEvent)> {
    let due: Vec<String> = pending
        .iter()
        .filter(|(_, (at, _))| *at <= now)
        .map(|(k, _)| k.clone())
        .collect();
    due.into_iter()
        .filter_map(|k| pending.remove(&k).map(|(_, e)| (k, e)))
        .collect()
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sleeps `wait`; true when shutdown came first.
async fn sleep_or_stop(wait: Duration, shutdown: &mut ShutdownWatch) -> bool {
    tokio::select! {
        _ = shutdown.changed() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}
