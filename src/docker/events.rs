//! The engine's event stream, for this minicloud's containers only: what the watcher in
//! `alerts` follows instead of polling.

use std::collections::HashMap;

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::{Stream, StreamExt};

use super::{labels, Docker, DockerError, ManagedLabels};

/// What happened to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerAction {
    Start,
    /// The main process ended (any cause: exit, kill, OOM kill).
    Die {
        exit_code: Option<i64>,
    },
    /// The kernel killed a process in it for memory; a `Die` follows.
    Oom,
    /// The container is gone.
    Destroy,
}

/// One engine event about one managed container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub id: String,
    pub name: String,
    /// `None` when the labels are not minicloud's (a helper container).
    pub managed: Option<ManagedLabels>,
    pub action: ContainerAction,
    /// Unix seconds, as the engine stamped it.
    pub time: i64,
}

/// The engine's actions the watcher asks for.
const ACTIONS: [&str; 4] = ["start", "die", "oom", "destroy"];

impl Docker {
    /// Follows the engine's container events (start, die, oom, destroy) of this instance's
    /// managed containers, from `since` (unix seconds; the engine replays what it kept) or
    /// from now. The stream ends, or yields an error, when the engine goes away: the caller
    /// connects again.
    pub fn container_events(
        &self,
        since: Option<i64>,
    ) -> impl Stream<Item = Result<ContainerEvent, DockerError>> + Send + 'static {
        let instance_filter = self
            .instance
            .as_ref()
            .map(|id| format!("{}={id}", labels::INSTANCE));
        let mut wanted_labels = vec![labels::APP.to_owned()];
        wanted_labels.extend(instance_filter);
        let filters: HashMap<&str, Vec<String>> = HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("label", wanted_labels),
            ("event", ACTIONS.iter().map(|a| (*a).to_owned()).collect()),
        ]);
        let mut opts = EventsOptionsBuilder::default().filters(&filters);
        if let Some(since) = since {
            opts = opts.since(&since.to_string());
        }
        let endpoint = self.endpoint.clone();
        self.api()
            .events(Some(opts.build()))
            .filter_map(move |item| {
                let out = match item {
                    Ok(msg) => parse(msg).map(Ok),
                    Err(e) => Some(Err(DockerError::Unreachable {
                        endpoint: endpoint.clone(),
                        reason: super::error::reason(&e),
                    })),
                };
                std::future::ready(out)
            })
    }
}

fn parse(msg: bollard::models::EventMessage) -> Option<ContainerEvent> {
    let actor = msg.actor?;
    let attributes = actor.attributes.unwrap_or_default();
    // Some engines send `health_status: healthy` style actions; take the verb only.
    let verb = msg.action.as_deref()?.split(':').next()?.trim();
    let action = match verb {
        "start" => ContainerAction::Start,
        "die" => ContainerAction::Die {
            exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        },
        "oom" => ContainerAction::Oom,
        "destroy" => ContainerAction::Destroy,
        _ => return None,
    };
    Some(ContainerEvent {
        id: actor.id.unwrap_or_default(),
        name: attributes.get("name").cloned().unwrap_or_default(),
        managed: ManagedLabels::from_map(&attributes),
        action,
        time: msg.time.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{EventActor, EventMessage};

    fn message(action: &str, attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
            }),
            time: Some(1_700_000_000),
            ..Default::default()
        }
    }

    #[test]
    fn engine_events_become_container_events() {
        let attrs = [
            ("name", "mc-blog-web-3"),
            ("exitCode", "137"),
            ("minicloud.app", "blog"),
            ("minicloud.rev", "3"),
            ("minicloud.role", "web"),
        ];
        let e = parse(message("die", &attrs)).unwrap();
        assert_eq!(
            e.action,
            ContainerAction::Die {
                exit_code: Some(137)
            }
        );
        assert_eq!(e.name, "mc-blog-web-3");
        assert_eq!(e.managed.unwrap().rev, 3);
        assert_eq!(e.time, 1_700_000_000);
        assert_eq!(
            parse(message("oom", &attrs)).unwrap().action,
            ContainerAction::Oom
        );
        assert_eq!(
            parse(message("start", &attrs)).unwrap().action,
            ContainerAction::Start
        );
        assert!(parse(message("exec_start: sh", &attrs)).is_none());
        let unlabelled = parse(message("destroy", &[("name", "x")])).unwrap();
        assert_eq!(unlabelled.managed, None);
    }
}
