//! Networks: one bridge per app, so an app's containers reach nothing of another app's.
//!
//! Each app's containers (web and runners, every revision) sit on `mc-net-<app>` and on no
//! other network. The engine's isolation rules drop traffic between two bridges, so app A
//! cannot open a connection to app B's container and cannot sniff it. The edge still reaches
//! every app: on a bare host the host routes to every bridge; under compose minicloud's own
//! container joins each app network as a *peer*, and so do the shared services that apps
//! reach by name (`mariadb`, `rabbitmq`), which listen there on their client ports only.
//!
//! Subnets are chosen here, from one configured pool (a `/26` per app), instead of the engine's
//! default pools, which hold about 30 networks: too few for the 10–50 apps minicloud is for.
//!
//! This module does not decide when a network is made or removed: that is `apps` (before a
//! revision starts; when the app is removed).

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::models::{
    EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest,
};
use bollard::query_parameters::ListNetworksOptionsBuilder;
use ipnet::Ipv4Net;

use super::error::{is_not_found, status};
use super::{labels, Docker, DockerError};
use crate::model::name::AppName;

/// The network apps ran on before each got its own; containers still on it are adopted.
pub const LEGACY_NETWORK: &str = "minicloud";

/// The size of each app's subnet: 61 addresses, room for many revisions, runners and peers.
pub const APP_PREFIX_LEN: u8 = 26;

/// The default pool app subnets are taken from (1024 apps).
pub const DEFAULT_APP_SUBNETS: &str = "10.213.0.0/16";

/// How app networks are made: where their subnets come from, and who joins each of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppNetworks {
    /// Each app network takes a free `/26` of this pool.
    pub pool: Ipv4Net,
    /// Containers that join every app network, by name (under compose: minicloud itself, so
    /// the edge reaches apps, and `mariadb`, `rabbitmq`, so apps reach them by that name).
    pub peers: Vec<String>,
}

impl Default for AppNetworks {
    // A constant, which a unit test parses.
    #[allow(clippy::expect_used)]
    fn default() -> Self {
        Self {
            pool: DEFAULT_APP_SUBNETS.parse().expect("a valid CIDR"),
            peers: Vec::new(),
        }
    }
}

/// The network of one app's containers.
pub fn app_network(app: &AppName) -> String {
    format!("mc-net-{app}")
}

/// The pool's `/26`s that overlap none of `used`, beginning at a place chosen by the app's
/// name (so two apps created at once rarely try the same one) and wrapping around.
pub fn free_subnets<'a>(
    pool: Ipv4Net,
    used: &'a [Ipv4Net],
    app: &AppName,
) -> impl Iterator<Item = Ipv4Net> + 'a {
    let all: Vec<Ipv4Net> = pool
        .subnets(APP_PREFIX_LEN.max(pool.prefix_len()))
        .map(Iterator::collect)
        .unwrap_or_default();
    let start = if all.is_empty() {
        0
    } else {
        // FNV-1a: stable across runs and builds, unlike the std hasher's contract.
        let hash = app
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        (hash % all.len() as u64) as usize
    };
    let (head, tail) = all.split_at(start);
    tail.iter()
        .chain(head)
        .copied()
        .filter(|net| !used.iter().any(|u| overlaps(net, u)))
        .collect::<Vec<_>>()
        .into_iter()
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Tries of a free subnet before giving up: another engine client may take one meanwhile.
const CREATE_TRIES: usize = 8;

impl Docker {
    /// Makes sure a bridge network `name` exists and returns its gateway address: services on
    /// the host (MariaDB, RabbitMQ in a non-compose setup) are reachable from containers there.
    pub async fn ensure_network(&self, name: &str) -> Result<IpAddr, DockerError> {
        let net = match self.api().inspect_network(name, None).await {
            Ok(net) => net,
            Err(e) if is_not_found(&e) => {
                let req = NetworkCreateRequest {
                    name: name.to_owned(),
                    driver: Some("bridge".to_owned()),
                    labels: Some([(labels::NETWORK.to_owned(), "1".to_owned())].into()),
                    ..Default::default()
                };
                self.api()
                    .create_network(req)
                    .await
                    .map_err(|e| DockerError::engine("create network", name, e))?;
                let id = self.dedupe_network(name).await?;
                self.api()
                    .inspect_network(&id, None)
                    .await
                    .map_err(|e| DockerError::engine("inspect network", name, e))?
            }
            Err(e) => return Err(DockerError::engine("inspect network", name, e)),
        };
        net.ipam
            .and_then(|ipam| ipam.config)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c.gateway.as_deref()?.parse::<IpAddr>().ok())
            .find(IpAddr::is_ipv4)
            .ok_or_else(|| DockerError::Engine {
                action: "find the gateway of network",
                target: name.to_owned(),
                reason: "the network has no IPv4 gateway".to_owned(),
            })
    }

    /// Makes sure `app`'s own network exists, with every peer attached, and returns its name.
    /// Safe to call before every revision starts.
    pub async fn ensure_app_network(
        &self,
        app: &AppName,
        settings: &AppNetworks,
    ) -> Result<String, DockerError> {
        let name = app_network(app);
        match self.api().inspect_network(&name, None).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => self.create_app_network(app, &name, settings).await?,
            Err(e) => return Err(DockerError::engine("inspect network", &name, e)),
        }
        for peer in &settings.peers {
            let req = NetworkConnectRequest {
                container: peer.clone(),
                endpoint_config: Some(EndpointSettings {
                    aliases: Some(vec![peer.clone()]),
                    ..Default::default()
                }),
            };
            match self.api().connect_network(&name, req).await {
                Ok(()) => {
                    tracing::info!(network = %name, peer = %peer, "peer joined the app network")
                }
                // Already attached (the engine says so with 403 or 409, by version).
                Err(e) if matches!(status(&e), Some(403 | 409)) => {}
                Err(e) => {
                    return Err(DockerError::engine(
                        "attach a peer container to network",
                        format!("{name} ({peer})"),
                        e,
                    ))
                }
            }
        }
        Ok(name)
    }

    async fn create_app_network(
        &self,
        app: &AppName,
        name: &str,
        settings: &AppNetworks,
    ) -> Result<(), DockerError> {
        let used = self.used_subnets().await?;
        let mut last = None;
        for subnet in free_subnets(settings.pool, &used, app).take(CREATE_TRIES) {
            let mut marks = HashMap::from([
                (labels::NETWORK.to_owned(), "1".to_owned()),
                (labels::APP.to_owned(), app.to_string()),
            ]);
            if let Some(id) = &self.instance {
                marks.insert(labels::INSTANCE.to_owned(), id.clone());
            }
            let req = NetworkCreateRequest {
                name: name.to_owned(),
                driver: Some("bridge".to_owned()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet.to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                labels: Some(marks),
                ..Default::default()
            };
            match self.api().create_network(req).await {
                Ok(_) => {
                    tracing::info!(network = %name, %subnet, "app network created");
                    return Ok(());
                }
                // Taken by another client since we listed them: try the next one.
                Err(e) if status(&e) == Some(403) => last = Some(e),
                Err(e) => return Err(DockerError::engine("create network", name, e)),
            }
        }
        Err(match last {
            Some(e) => DockerError::engine("create network", name, e),
            None => DockerError::Engine {
                action: "create network",
                target: name.to_owned(),
                reason: format!(
                    "no free /{APP_PREFIX_LEN} is left in app_subnets {}; give a larger pool",
                    settings.pool
                ),
            },
        })
    }

    /// Removes `app`'s network after its containers are gone: peers are let go first.
    /// Removing a missing network is fine.
    pub async fn remove_app_network(
        &self,
        app: &AppName,
        settings: &AppNetworks,
    ) -> Result<(), DockerError> {
        let name = app_network(app);
        for peer in &settings.peers {
            let req = NetworkDisconnectRequest {
                container: peer.clone(),
                force: Some(true),
            };
            // Not attached, or the network is gone: nothing to let go of.
            let _ = self.api().disconnect_network(&name, req).await;
        }
        match self.api().remove_network(&name).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(|e| DockerError::engine("remove network", &name, e)),
        }
    }

    /// Every IPv4 subnet the engine's networks use, minicloud's or not.
    async fn used_subnets(&self) -> Result<Vec<Ipv4Net>, DockerError> {
        let nets = self
            .api()
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
            .map_err(|e| DockerError::engine("list", "networks", e))?;
        Ok(nets
            .into_iter()
            .filter_map(|n| n.ipam?.config)
            .flatten()
            .filter_map(|c| c.subnet?.parse::<Ipv4Net>().ok())
            .collect())
    }

    /// Engines before API 1.44 create a second network of the same name when two creates race
    /// (the duplicate check was opt-in and bollard 0.21 no longer sends it). Every racer keeps
    /// the network with the smallest id and removes the others, so they all agree.
    async fn dedupe_network(&self, name: &str) -> Result<String, DockerError> {
        let filters = [("name", vec![name])].into_iter().collect();
        let opts = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let nets = self
            .api()
            .list_networks(Some(opts))
            .await
            .map_err(|e| DockerError::engine("list networks", name, e))?;
        // The name filter matches substrings; keep exact names only.
        let mut ids: Vec<String> = nets
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| n.id)
            .collect();
        ids.sort();
        let Some(keep) = ids.first().cloned() else {
            return Err(DockerError::NotFound {
                kind: "network",
                name: name.to_owned(),
            });
        };
        for extra in &ids[1..] {
            // Best effort: a racer may have removed it already.
            let _ = self.api().remove_network(extra).await;
        }
        Ok(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(s: &str) -> AppName {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_pool_holds_many_apps() {
        let pool = AppNetworks::default().pool;
        assert_eq!(free_subnets(pool, &[], &app("blog")).count(), 1024);
    }

    #[test]
    fn used_subnets_are_skipped_and_every_free_one_is_offered_once() {
        let pool: Ipv4Net = "10.1.0.0/24".parse().unwrap();
        let used: Vec<Ipv4Net> = vec![
            // The engine's own default bridge, and one app subnet taken.
            "172.17.0.0/16".parse().unwrap(),
            "10.1.0.64/26".parse().unwrap(),
            // A wider network covering the last quarter.
            "10.1.0.128/25".parse().unwrap(),
        ];
        let mut got: Vec<String> = free_subnets(pool, &used, &app("blog"))
            .map(|n| n.to_string())
            .collect();
        got.sort();
        assert_eq!(got, ["10.1.0.0/26"]);
        // A pool inside a used network offers nothing.
        let inside: Vec<Ipv4Net> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(free_subnets(pool, &inside, &app("blog")).count(), 0);
    }

    #[test]
    fn apps_start_at_different_places_and_each_name_at_the_same() {
        let pool: Ipv4Net = "10.213.0.0/16".parse().unwrap();
        let first = |name: &str| free_subnets(pool, &[], &app(name)).next().unwrap();
        assert_eq!(first("blog"), first("blog"));
        assert_ne!(first("blog"), first("shop"));
        // A pool smaller than one app subnet is used whole.
        let small: Ipv4Net = "10.9.9.0/28".parse().unwrap();
        assert_eq!(
            free_subnets(small, &[], &app("x")).collect::<Vec<_>>(),
            vec![small]
        );
    }

    #[test]
    fn app_networks_are_named_by_the_app() {
        assert_eq!(app_network(&app("blog")), "mc-net-blog");
    }
}
