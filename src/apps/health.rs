//! Health probing of a new revision before it gets traffic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use minicloud_proxy::error_chain;

use crate::docker::{ContainerState, Docker};

/// How a probe ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// With what was last seen, for the deploy's failure reason.
    Unhealthy(String),
}

/// Probes `addr` until it answers or `timeout` passes. With a `path`, only a 2xx or 3xx
/// answer counts; without one, any HTTP answer does. A container that exits ends the probe
/// at once.
pub async fn probe(
    docker: &Docker,
    container: &str,
    addr: SocketAddr,
    path: Option<&str>,
    timeout: Duration,
) -> Health {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
    {
        Ok(c) => c,
        Err(e) => return Health::Unhealthy(format!("cannot build the probe client: {e}")),
    };
    let url = format!("http://{addr}{}", path.unwrap_or("/"));
    let deadline = Instant::now() + timeout;
    // Most apps answer within a second: look often at first, then settle to a gentler pace.
    let mut pause = Duration::from_millis(50);
    loop {
        let last = match client.get(&url).send().await {
            Ok(resp)
                if path.is_none()
                    || resp.status().is_success()
                    || resp.status().is_redirection() =>
            {
                return Health::Healthy;
            }
            Ok(resp) => format!("GET {url} answered {}", resp.status()),
            Err(e) => format!("GET {url} failed: {}", error_chain(&e)),
        };
        match docker.inspect(container).await {
            Ok(info)
                if !matches!(
                    info.state,
                    ContainerState::Running | ContainerState::Created
                ) =>
            {
                let code = info
                    .exit_code
                    .map_or(String::new(), |c| format!(" with code {c}"));
                return Health::Unhealthy(format!("the container exited{code}"));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Health::Unhealthy(format!("not healthy after {}s: {last}", timeout.as_secs()));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}
