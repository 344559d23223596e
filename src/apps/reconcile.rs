//! Reconcile planning: what the store says should run versus what the engine has, as a list
//! of actions. Pure; `apps::Apps::reconcile` applies the plan.

use std::collections::BTreeSet;

use crate::docker::{ContainerInfo, ContainerState, Role};

use crate::model::name::AppName;

/// What should run for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub app: AppName,
    /// The revision that serves; `None` when the app never deployed successfully.
    pub revision: Option<u64>,
    pub runners: Vec<String>,
    pub stopped: bool,
}

/// One step towards the desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The web container of the current revision runs: route to it.
    Serve { app: AppName, revision: u64 },
    /// The current revision's web container is missing or dead: create it, then serve.
    CreateWeb { app: AppName, revision: u64 },
    CreateRunner {
        app: AppName,
        revision: u64,
        runner: String,
    },
    /// A container to remove, and why (kept with its last log lines).
    Remove { container: String, why: Removal },
    /// Wanted, but the app is stopped.
    Stop { container: String },
}

/// Why reconcile removes a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Not wanted at all: an unknown app, an old or unfinished revision, a removed runner.
    Unwanted,
    /// Wanted, but it has exited despite its restart policy: it is made again.
    Exited,
}

impl Removal {
    /// The sentence kept with the container's last log lines.
    pub fn why(self) -> &'static str {
        match self {
            Self::Unwanted => {
                "removed by minicloud: its revision no longer serves (replaced, unfinished, or its app removed)"
            }
            Self::Exited => "removed by minicloud: it had exited, so it was made again",
        }
    }
}

/// Compares desired apps with the engine's managed containers.
pub fn plan_reconcile(desired: &[Desired], actual: &[ContainerInfo]) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut found_web = BTreeSet::new();
    let mut found_runners = BTreeSet::new();
    for container in actual {
        let Some(labels) = &container.managed else {
            continue;
        };
        let wanted = desired.iter().find(|d| {
            d.app == labels.app
                && d.revision == Some(labels.rev)
                && match labels.role {
                    Role::Web => true,
                    Role::Runner => labels
                        .runner
                        .as_ref()
                        .is_some_and(|r| d.runners.contains(r)),
                }
        });
        let Some(wanted) = wanted else {
            actions.push(Action::Remove {
                container: container.name.clone(),
                why: Removal::Unwanted,
            });
            continue;
        };
        let alive = matches!(
            container.state,
            ContainerState::Running | ContainerState::Restarting
        );
        if wanted.stopped {
            if alive {
                actions.push(Action::Stop {
                    container: container.name.clone(),
                });
            }
            // A stopped app's containers stay, so `start` is quick and logs remain readable.
            match labels.role {
                Role::Web => found_web.insert(wanted.app.clone()),
                Role::Runner => found_runners.insert((wanted.app.clone(), labels.runner.clone())),
            };
            continue;
        }
        if !alive {
            // Dead despite `unless-stopped`: replace it rather than guess why.
            actions.push(Action::Remove {
                container: container.name.clone(),
                why: Removal::Exited,
            });
            continue;
        }
        match labels.role {
            Role::Web => {
                found_web.insert(wanted.app.clone());
                actions.push(Action::Serve {
                    app: wanted.app.clone(),
                    revision: labels.rev,
                });
            }
            Role::Runner => {
                found_runners.insert((wanted.app.clone(), labels.runner.clone()));
            }
        }
    }
    for d in desired {
        let (Some(revision), false) = (d.revision, d.stopped) else {
            continue;
        };
        if !found_web.contains(&d.app) {
            actions.push(Action::CreateWeb {
                app: d.app.clone(),
                revision,
            });
        }
        for runner in &d.runners {
            if !found_runners.contains(&(d.app.clone(), Some(runner.clone()))) {
                actions.push(Action::CreateRunner {
                    app: d.app.clone(),
                    revision,
                    runner: runner.clone(),
                });
            }
        }
    }
    // What runs gets its routes back first; clean-up and re-creation follow.
    actions.sort_by_key(|a| !matches!(a, Action::Serve { .. }));
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::ManagedLabels;
    use std::collections::BTreeMap;

    fn app(name: &str) -> AppName {
        AppName::try_new(name).unwrap()
    }

    fn container(
        name: &str,
        app_name: &str,
        rev: u64,
        runner: Option<&str>,
        state: ContainerState,
    ) -> ContainerInfo {
        ContainerInfo {
            id: name.into(),
            name: name.into(),
            managed: Some(ManagedLabels {
                app: app(app_name),
                rev,
                role: if runner.is_some() {
                    Role::Runner
                } else {
                    Role::Web
                },
                runner: runner.map(str::to_owned),
            }),
            state,
            image: String::new(),
            image_id: String::new(),
            ips: BTreeMap::new(),
            exit_code: None,
            restart_count: None,
            oom_killed: None,
            env: Vec::new(),
            memory_bytes: None,
            restart_policy: None,
        }
    }

    fn desired(name: &str, revision: Option<u64>, runners: &[&str], stopped: bool) -> Desired {
        Desired {
            app: app(name),
            revision,
            runners: runners.iter().map(|r| r.to_string()).collect(),
            stopped,
        }
    }

    #[test]
    fn running_current_containers_are_adopted_not_restarted() {
        let plan = plan_reconcile(
            &[desired("a", Some(2), &["worker"], false)],
            &[
                container("mc-a-2", "a", 2, None, ContainerState::Running),
                container(
                    "mc-a.worker-2",
                    "a",
                    2,
                    Some("worker"),
                    ContainerState::Running,
                ),
            ],
        );
        assert_eq!(
            plan,
            vec![Action::Serve {
                app: app("a"),
                revision: 2
            }]
        );
    }

    #[test]
    fn old_revisions_orphans_and_unfinished_deploys_are_removed() {
        let plan = plan_reconcile(
            &[desired("a", Some(2), &[], false)],
            &[
                container("mc-a-1", "a", 1, None, ContainerState::Running),
                container("mc-a-2", "a", 2, None, ContainerState::Running),
                container("mc-a-3", "a", 3, None, ContainerState::Running),
                container("mc-gone-1", "gone", 1, None, ContainerState::Exited),
            ],
        );
        assert!(plan.contains(&Action::Remove {
            container: "mc-a-1".into(),
            why: Removal::Unwanted,
        }));
        assert!(plan.contains(&Action::Remove {
            container: "mc-a-3".into(),
            why: Removal::Unwanted,
        }));
        assert!(plan.contains(&Action::Remove {
            container: "mc-gone-1".into(),
            why: Removal::Unwanted,
        }));
        assert_eq!(
            plan[0],
            Action::Serve {
                app: app("a"),
                revision: 2
            },
            "serving comes before clean-up"
        );
        assert_eq!(plan.len(), 4);
    }

    #[test]
    fn missing_or_dead_containers_are_recreated() {
        let plan = plan_reconcile(
            &[
                desired("a", Some(2), &["worker"], false),
                desired("b", Some(1), &[], false),
            ],
            &[container("mc-b-1", "b", 1, None, ContainerState::Exited)],
        );
        assert_eq!(
            plan,
            vec![
                Action::Remove {
                    container: "mc-b-1".into(),
                    why: Removal::Exited,
                },
                Action::CreateWeb {
                    app: app("a"),
                    revision: 2
                },
                Action::CreateRunner {
                    app: app("a"),
                    revision: 2,
                    runner: "worker".into()
                },
                Action::CreateWeb {
                    app: app("b"),
                    revision: 1
                },
            ]
        );
    }

    #[test]
    fn stopped_apps_are_stopped_and_not_recreated() {
        let plan = plan_reconcile(
            &[
                desired("a", Some(2), &[], true),
                desired("never", None, &[], false),
            ],
            &[container("mc-a-2", "a", 2, None, ContainerState::Running)],
        );
        assert_eq!(
            plan,
            vec![Action::Stop {
                container: "mc-a-2".into()
            }]
        );
    }
}
