//! Managed containers: run one from a spec, find them by label, inspect, stop, remove, stats.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerStatsResponse, EndpointSettings, HostConfig, HostConfigLogConfig,
    NetworkingConfig, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::error::{is_not_found, reason, status};
use super::{labels, Docker, DockerError};
use crate::model::image_ref::ImageRef;
use crate::model::name::AppName;

/// What a container does for its app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The routed container, serving the app's HTTP port.
    Web,
    /// An extra process from the manifest's `runners`.
    Runner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::Runner => "runner",
        }
    }
}

/// The labels that make a container minicloud's, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedLabels {
    pub app: AppName,
    pub rev: u64,
    pub role: Role,
    /// The runner's name, for `Role::Runner`.
    pub runner: Option<String>,
}

impl ManagedLabels {
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut m = HashMap::from([
            (labels::APP.to_owned(), self.app.to_string()),
            (labels::REV.to_owned(), self.rev.to_string()),
            (labels::ROLE.to_owned(), self.role.as_str().to_owned()),
        ]);
        if let Some(r) = &self.runner {
            m.insert(labels::RUNNER.to_owned(), r.clone());
        }
        m
    }

    /// `None` when a label is missing or malformed (someone else's container, or edited).
    pub fn from_map(map: &HashMap<String, String>) -> Option<Self> {
        let app = map.get(labels::APP)?.parse().ok()?;
        let rev = map.get(labels::REV)?.parse().ok()?;
        let role = match map.get(labels::ROLE)?.as_str() {
            "web" => Role::Web,
            "runner" => Role::Runner,
            _ => return None,
        };
        let runner = map.get(labels::RUNNER).cloned();
        if (role == Role::Runner) != runner.is_some() {
            return None;
        }
        Some(Self {
            app,
            rev,
            role,
            runner,
        })
    }
}

/// Everything `run` needs to start one container.
#[derive(Clone)]
pub struct ContainerSpec {
    /// Unique container name, e.g. `mc-<app>-web-<rev>`.
    pub name: String,
    /// Preferably pinned by digest, so a moved tag cannot change what a revision runs.
    pub image: ImageRef,
    /// Holds secrets (database passwords): `Debug` shows the keys only.
    pub env: BTreeMap<String, String>,
    pub labels: ManagedLabels,
    /// The whole command line (runners): replaces the image's ENTRYPOINT and CMD.
    pub command: Option<Vec<String>>,
    /// Hard memory limit; swap is capped at the same value so the limit is real.
    pub memory_bytes: Option<u64>,
    pub network: String,
    /// Host directory mounted read-write at `/data` (the storage need).
    pub data_dir: Option<PathBuf>,
    /// Runs Docker's init as PID 1 in front of the command: it passes SIGTERM on (a process
    /// that is PID 1 ignores signals it has no handler for) and reaps zombies.
    pub init: bool,
    /// The most processes and threads the container may hold (a fork bomb stays inside).
    pub pids_limit: Option<u64>,
    /// Relative CPU weight under contention (Docker's default is 1024).
    pub cpu_shares: Option<u64>,
}

/// The capabilities an app keeps: what an image that starts as root and drops to its own user
/// needs (chown its files, switch user, bind a low port, signal its children). Everything
/// else of Docker's default set goes, `NET_RAW` (forged packets on the bridge) first; and
/// `no-new-privileges` keeps a setuid binary from gaining any back.
pub const APP_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "SETUID",
    "SETGID",
    "NET_BIND_SERVICE",
    "KILL",
];

impl fmt::Debug for ContainerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerSpec")
            .field("name", &self.name)
            .field("image", &self.image.canonical())
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("labels", &self.labels)
            .field("command", &self.command)
            .field("memory_bytes", &self.memory_bytes)
            .field("network", &self.network)
            .field("data_dir", &self.data_dir)
            .field("init", &self.init)
            .field("pids_limit", &self.pids_limit)
            .field("cpu_shares", &self.cpu_shares)
            .finish()
    }
}

/// A container `run` started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningContainer {
    pub id: String,
    pub name: String,
    /// Its address on the spec's network: the upstream the edge routes to.
    pub ip: IpAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    Stopping,
    Unknown,
}

impl ContainerState {
    fn from_engine(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "exited" => Self::Exited,
            "dead" => Self::Dead,
            "stopping" => Self::Stopping,
            _ => Self::Unknown,
        }
    }
}

/// What the engine knows of one container.
/// `Debug` shows env keys only: values hold secrets.
#[derive(Clone, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// `None` when the minicloud labels are absent or malformed.
    pub managed: Option<ManagedLabels>,
    pub state: ContainerState,
    /// The image as given at create (a pinned `…@sha256:` reference for minicloud's own).
    pub image: String,
    /// The local image id, `sha256:…`.
    pub image_id: String,
    /// Address per network name.
    pub ips: BTreeMap<String, IpAddr>,
    /// Only from `inspect`: the last exit code, and the engine's own settings as applied.
    pub exit_code: Option<i64>,
    pub restart_count: Option<i64>,
    /// Whether the kernel killed it for memory the last time it ended (from `inspect` only).
    pub oom_killed: Option<bool>,
    /// `KEY=value` as the engine reports it (from `inspect` only).
    pub env: Vec<String>,
    pub memory_bytes: Option<u64>,
    pub restart_policy: Option<String>,
}

impl fmt::Debug for ContainerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_keys: Vec<&str> = self
            .env
            .iter()
            .map(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k))
            .collect();
        f.debug_struct("ContainerInfo")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("managed", &self.managed)
            .field("state", &self.state)
            .field("image", &self.image)
            .field("image_id", &self.image_id)
            .field("ips", &self.ips)
            .field("exit_code", &self.exit_code)
            .field("restart_count", &self.restart_count)
            .field("oom_killed", &self.oom_killed)
            .field("env_keys", &env_keys)
            .field("memory_bytes", &self.memory_bytes)
            .field("restart_policy", &self.restart_policy)
            .finish()
    }
}

impl ContainerInfo {
    pub fn ip_on(&self, network: &str) -> Option<IpAddr> {
        self.ips.get(network).copied()
    }

    /// Its address on its app's network, or on the network all apps shared before each got
    /// its own (a container an older minicloud started, adopted until the app's next deploy).
    pub fn app_ip(&self, app: &AppName) -> Option<IpAddr> {
        self.ip_on(&super::app_network(app))
            .or_else(|| self.ip_on(super::LEGACY_NETWORK))
    }
}

/// One stats sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Memory in use, without the reclaimable page cache (what `docker stats` shows).
    pub memory_bytes: u64,
    pub memory_limit: Option<u64>,
    /// Percent of one CPU (200.0 = two cores busy), as `docker stats` shows it.
    pub cpu_percent: f64,
}

impl Docker {
    /// Creates and starts a container from `spec`. A container of the same name left over
    /// from an earlier attempt is removed first, so retrying a failed step is safe.
    pub async fn run(&self, spec: &ContainerSpec) -> Result<RunningContainer, DockerError> {
        let mut body = create_body(spec);
        if let (Some(id), Some(map)) = (&self.instance, body.labels.as_mut()) {
            map.insert(labels::INSTANCE.to_owned(), id.clone());
        }
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = match self.api().create_container(Some(opts.clone()), body.clone()).await {
            Err(e) if status(&e) == Some(409) => {
                tracing::info!(container = %spec.name, "replacing a leftover container of the same name");
                self.remove(&spec.name).await?;
                self.api().create_container(Some(opts), body).await
            }
            other => other,
        }
        .map_err(|e| {
            if is_not_found(&e) && reason(&e).contains("No such image") {
                DockerError::ImageMissing {
                    image: spec.image.canonical(),
                }
            } else {
                DockerError::engine("create container", &spec.name, e)
            }
        })?;

        if let Err(e) = self.api().start_container(&created.id, None).await {
            // A never-started container would show up in `list_managed` as a revision in state
            // `created`; the start error says all there is to say, so do not keep it.
            let err = DockerError::engine("start container", &spec.name, e);
            if let Err(cleanup) = self.remove(&created.id).await {
                tracing::warn!(container = %spec.name, error = %cleanup, "could not remove a container that failed to start");
            }
            return Err(err);
        }
        let info = self.inspect(&created.id).await?;
        let ip = info
            .ip_on(&spec.network)
            .ok_or_else(|| DockerError::Engine {
                action: "find the address of container",
                target: spec.name.clone(),
                reason: format!(
                    "it has no address on network '{}' (state: {:?})",
                    spec.network, info.state
                ),
            })?;
        Ok(RunningContainer {
            id: created.id,
            name: spec.name.clone(),
            ip,
        })
    }

    /// Inspects one container by name or id.
    pub async fn inspect(&self, name: &str) -> Result<ContainerInfo, DockerError> {
        let c = self
            .api()
            .inspect_container(name, None)
            .await
            .map_err(|e| DockerError::container("inspect container", name, e))?;
        let config = c.config.unwrap_or_default();
        let host = c.host_config.unwrap_or_default();
        let state = c.state.unwrap_or_default();
        Ok(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            managed: config.labels.as_ref().and_then(ManagedLabels::from_map),
            state: state
                .status
                .map(|s| ContainerState::from_engine(s.as_ref()))
                .unwrap_or(ContainerState::Unknown),
            image: config.image.unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            ips: ips(c.network_settings.and_then(|n| n.networks)),
            exit_code: state.exit_code,
            restart_count: c.restart_count,
            oom_killed: state.oom_killed,
            env: config.env.unwrap_or_default(),
            memory_bytes: host
                .memory
                .and_then(|m| u64::try_from(m).ok())
                .filter(|m| *m > 0),
            restart_policy: host
                .restart_policy
                .and_then(|p| p.name)
                .map(|n| n.to_string()),
        })
    }

    /// All containers carrying the `minicloud.app` label, in any state.
    pub async fn list_managed(&self) -> Result<Vec<ContainerInfo>, DockerError> {
        let instance_filter = self
            .instance
            .as_ref()
            .map(|id| format!("{}={id}", labels::INSTANCE));
        let mut wanted = vec![labels::APP];
        wanted.extend(instance_filter.as_deref());
        let filters = HashMap::from([("label", wanted)]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .api()
            .list_containers(Some(opts))
            .await
            .map_err(|e| DockerError::engine("list", "managed containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_owned(),
                managed: c.labels.as_ref().and_then(ManagedLabels::from_map),
                state: c
                    .state
                    .map(|s| ContainerState::from_engine(s.as_ref()))
                    .unwrap_or(ContainerState::Unknown),
                image: c.image.unwrap_or_default(),
                image_id: c.image_id.unwrap_or_default(),
                ips: ips(c.network_settings.and_then(|n| n.networks)),
                exit_code: None,
                restart_count: None,
                oom_killed: None,
                env: Vec::new(),
                memory_bytes: None,
                restart_policy: None,
            })
            .collect())
    }

    /// Stops a container: SIGTERM, then SIGKILL after `timeout`. Stopping a stopped container
    /// is fine.
    pub async fn stop(&self, name: &str, timeout: Duration) -> Result<(), DockerError> {
        let t = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let opts = StopContainerOptionsBuilder::default().t(t).build();
        match self.api().stop_container(name, Some(opts)).await {
            // 304: already stopped.
            Err(e) if status(&e) == Some(304) => Ok(()),
            other => other.map_err(|e| DockerError::container("stop container", name, e)),
        }
    }

    /// Removes a container, running or not. Removing a missing container is fine.
    pub async fn remove(&self, name: &str) -> Result<(), DockerError> {
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.api().remove_container(name, Some(opts)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(|e| DockerError::engine("remove container", name, e)),
        }
    }

    /// One stats sample. Takes up to two seconds: the engine answers at its next collection
    /// tick, and waits for a second CPU reading so that a percentage can be computed. Only
    /// the background sampler (`apps::usage`) calls it.
    pub async fn stats(&self, name: &str) -> Result<Stats, DockerError> {
        let opts = StatsOptionsBuilder::default().stream(false).build();
        let sample = self
            .api()
            .stats(name, Some(opts))
            .next()
            .await
            .ok_or_else(|| DockerError::Engine {
                action: "read stats of container",
                target: name.to_owned(),
                reason: "the engine sent no sample".to_owned(),
            })?
            .map_err(|e| DockerError::container("read stats of container", name, e))?;
        Ok(stats_from(&sample))
    }
}

fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let memory = spec.memory_bytes.and_then(|m| i64::try_from(m).ok());
    let host_config = HostConfig {
        memory,
        // Without this the engine allows as much swap again as memory.
        memory_swap: memory,
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        // Bounded logs: a chatty app must not fill the small disk.
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".to_owned()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), "10m".to_owned()),
                ("max-file".to_owned(), "3".to_owned()),
            ])),
        }),
        network_mode: Some(spec.network.clone()),
        binds: spec
            .data_dir
            .as_ref()
            .map(|d| vec![format!("{}:/data", d.display())]),
        init: Some(spec.init),
        cap_drop: Some(vec!["ALL".to_owned()]),
        cap_add: Some(APP_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect()),
        security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
        pids_limit: spec.pids_limit.and_then(|n| i64::try_from(n).ok()),
        cpu_shares: spec.cpu_shares.and_then(|n| i64::try_from(n).ok()),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.pull_reference()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(spec.labels.to_map()),
        // A runner's command is its whole command line, as the manifest reads: it replaces
        // the image's ENTRYPOINT too (an empty CMD keeps the image's from being appended).
        entrypoint: spec.command.clone(),
        cmd: spec.command.as_ref().map(|_| Vec::new()),
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                spec.network.clone(),
                EndpointSettings::default(),
            )])),
        }),
        ..Default::default()
    }
}

fn ips(networks: Option<HashMap<String, EndpointSettings>>) -> BTreeMap<String, IpAddr> {
    networks
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(net, ep)| Some((net, ep.ip_address?.parse().ok()?)))
        .collect()
}

/// The `docker stats` formulas: memory without inactive page cache (cgroup v2 `inactive_file`,
/// v1 `total_inactive_file`), CPU as the container's share of the host's CPU time between the
/// two readings, scaled by the number of CPUs.
pub(crate) fn stats_from(s: &ContainerStatsResponse) -> Stats {
    let mem = s.memory_stats.clone().unwrap_or_default();
    let usage = mem.usage.unwrap_or(0);
    let cache = mem
        .stats
        .as_ref()
        .and_then(|st| {
            st.get("inactive_file")
                .or_else(|| st.get("total_inactive_file"))
                .copied()
        })
        .unwrap_or(0);
    let memory_bytes = usage.saturating_sub(cache);

    let cpu = s.cpu_stats.clone().unwrap_or_default();
    let pre = s.precpu_stats.clone().unwrap_or_default();
    let total = |c: &bollard::models::ContainerCpuStats| {
        c.cpu_usage
            .as_ref()
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let cpu_delta = total(&cpu).saturating_sub(total(&pre)) as f64;
    let sys_delta = cpu
        .system_cpu_usage
        .unwrap_or(0)
        .saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
    let cpus = cpu
        .online_cpus
        .map(f64::from)
        .or_else(|| {
            cpu.cpu_usage
                .as_ref()?
                .percpu_usage
                .as_ref()
                .map(|p| p.len() as f64)
        })
        .filter(|n| *n > 0.0)
        .unwrap_or(1.0);
    let cpu_percent = if sys_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };

    Stats {
        memory_bytes,
        // The engine reports the host's memory as the limit when none is set; callers compare.
        memory_limit: mem.limit.filter(|l| *l > 0),
        cpu_percent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats};

    fn labels_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn labels_round_trip() {
        let l = ManagedLabels {
            app: "blog".parse().unwrap(),
            rev: 7,
            role: Role::Runner,
            runner: Some("worker".into()),
        };
        assert_eq!(ManagedLabels::from_map(&l.to_map()), Some(l));
        let w = ManagedLabels {
            app: "blog".parse().unwrap(),
            rev: 1,
            role: Role::Web,
            runner: None,
        };
        assert_eq!(w.to_map().len(), 3);
        assert_eq!(ManagedLabels::from_map(&w.to_map()), Some(w));
    }

    #[test]
    fn malformed_labels_are_not_managed() {
        let base = [
            ("minicloud.app", "blog"),
            ("minicloud.rev", "3"),
            ("minicloud.role", "web"),
        ];
        assert!(ManagedLabels::from_map(&labels_of(&base)).is_some());
        for (k, v) in [
            ("minicloud.app", "Blog"),
            ("minicloud.rev", "x"),
            ("minicloud.role", "db"),
        ] {
            let mut m = labels_of(&base);
            m.insert(k.into(), v.into());
            assert!(ManagedLabels::from_map(&m).is_none(), "{k}={v}");
        }
        let mut m = labels_of(&base);
        m.remove("minicloud.rev");
        assert!(ManagedLabels::from_map(&m).is_none());
        // A runner needs its name, a web container must not have one.
        let mut m = labels_of(&base);
        m.insert("minicloud.role".into(), "runner".into());
        assert!(ManagedLabels::from_map(&m).is_none());
        let mut m = labels_of(&base);
        m.insert("minicloud.runner".into(), "w".into());
        assert!(ManagedLabels::from_map(&m).is_none());
    }

    #[test]
    fn spec_debug_hides_env_values() {
        let spec = ContainerSpec {
            name: "mc-blog-web-1".into(),
            image: "blog".parse::<ImageRef>().unwrap(),
            env: BTreeMap::from([("DATABASE_URL".into(), "mysql://u:secret@db/x".into())]),
            labels: ManagedLabels {
                app: "blog".parse().unwrap(),
                rev: 1,
                role: Role::Web,
                runner: None,
            },
            command: None,
            memory_bytes: Some(64 << 20),
            network: "minicloud".into(),
            data_dir: None,
            init: true,
            pids_limit: Some(256),
            cpu_shares: Some(512),
        };
        let s = format!("{spec:?}");
        assert!(s.contains("DATABASE_URL") && !s.contains("secret"), "{s}");
        let body = create_body(&spec);
        let host = body.host_config.unwrap();
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.memory_swap, Some(64 << 20));
        assert_eq!(host.init, Some(true));
        assert_eq!(host.pids_limit, Some(256));
        assert_eq!(host.cpu_shares, Some(512));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        let kept = host.cap_add.unwrap();
        assert!(!kept.iter().any(|c| c.contains("NET_RAW")), "{kept:?}");
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges:true".to_owned()])
        );
        assert_eq!(body.image.as_deref(), Some("docker.io/library/blog:latest"));
    }

    #[test]
    fn info_debug_hides_env_values() {
        let info = ContainerInfo {
            id: "x".into(),
            name: "mc-a-web-1".into(),
            managed: None,
            state: ContainerState::Running,
            image: String::new(),
            image_id: String::new(),
            ips: BTreeMap::new(),
            exit_code: None,
            restart_count: None,
            oom_killed: None,
            env: vec!["DATABASE_URL=mysql://u:secret@db/x".into(), "FLAG".into()],
            memory_bytes: None,
            restart_policy: None,
        };
        let s = format!("{info:?}");
        assert!(
            s.contains("DATABASE_URL") && s.contains("FLAG") && !s.contains("secret"),
            "{s}"
        );
    }

    #[test]
    fn stats_formulas() {
        let s = ContainerStatsResponse {
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(100 << 20),
                limit: Some(256 << 20),
                stats: Some(HashMap::from([("inactive_file".into(), 30 << 20)])),
                ..Default::default()
            }),
            cpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage {
                    total_usage: Some(1_500),
                    ..Default::default()
                }),
                system_cpu_usage: Some(20_000),
                online_cpus: Some(2),
                ..Default::default()
            }),
            precpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage {
                    total_usage: Some(1_000),
                    ..Default::default()
                }),
                system_cpu_usage: Some(10_000),
                online_cpus: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        };
        let st = stats_from(&s);
        assert_eq!(st.memory_bytes, 70 << 20);
        assert_eq!(st.memory_limit, Some(256 << 20));
        assert!((st.cpu_percent - 10.0).abs() < 1e-9, "{}", st.cpu_percent);
        // No earlier reading: no percentage rather than a bogus one.
        assert_eq!(
            stats_from(&ContainerStatsResponse::default()).cpu_percent,
            0.0
        );
    }
}
