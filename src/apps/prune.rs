//! Pruning images after a deploy: once the old revision's containers are gone, the app's
//! images that no kept revision uses are removed from the engine, so a box that deploys every
//! day does not fill its disk with old images.
//!
//! Kept, for every app: the serving revision, any revision being deployed, and the last
//! [`KEEP_REVISIONS`] revisions that served (what a rollback most likely takes; a rollback to
//! an older one pulls its image again by digest, see `deploy`). An image is removed only when
//! it belongs to this app's history, none of those kept revisions of any app names it or
//! shares its engine id, and the engine agrees: removal is never forced, so an image a
//! container (even a stopped one) uses, or that is tagged in another repository, stays.
//! Best effort: a failure is logged and never touches the deploy.
//!
//! An app being removed keeps nothing: all its images go by the same rules (unless another
//! app keeps one, or the engine refuses), just before its deploy history is deleted.

use std::collections::BTreeSet;

use crate::docker::Docker;
use crate::model::name::AppName;
use crate::store::{DeployOutcome, DeployRecord, Store};

/// How many revisions that served keep their images, per app (the serving one included).
pub const KEEP_REVISIONS: usize = 3;

/// One app's deploy history, as the plan needs it.
pub(super) struct History {
    pub app: AppName,
    pub current: Option<u64>,
    /// Oldest first, as the store lists them.
    pub deploys: Vec<DeployRecord>,
}

/// What a prune of one app's images may remove and must keep, as engine references
/// (`name@sha256:…`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    /// Every app's kept revisions' images: never removed, nor anything with their engine id.
    pub kept: BTreeSet<String>,
    /// The app's other images.
    pub candidates: BTreeSet<String>,
}

/// The images of `history` a deploy may still need (see the module docs).
fn kept_of(history: &History, keep: usize) -> impl Iterator<Item = String> + '_ {
    let served = history
        .deploys
        .iter()
        .rev()
        .filter(|d| d.outcome == DeployOutcome::Succeeded)
        .take(keep);
    let needed = history
        .deploys
        .iter()
        .filter(|d| d.outcome == DeployOutcome::InProgress || Some(d.revision) == history.current);
    served.chain(needed).map(|d| d.image.pull_reference())
}

/// Which of `app`'s images may go, given every app's history.
pub(super) fn plan(app: &AppName, all: &[History], keep: usize) -> Plan {
    let kept: BTreeSet<String> = all.iter().flat_map(|h| kept_of(h, keep)).collect();
    let candidates = all
        .iter()
        .filter(|h| &h.app == app)
        .flat_map(|h| h.deploys.iter().map(|d| d.image.pull_reference()))
        .filter(|r| !kept.contains(r))
        .collect();
    Plan { kept, candidates }
}

/// Which of a removed `app`'s images may go: every one that no other app keeps.
pub(super) fn plan_removal(app: &AppName, all: &[History], keep: usize) -> Plan {
    let others: Vec<&History> = all.iter().filter(|h| &h.app != app).collect();
    let kept: BTreeSet<String> = others.iter().flat_map(|h| kept_of(h, keep)).collect();
    let candidates = all
        .iter()
        .filter(|h| &h.app == app)
        .flat_map(|h| h.deploys.iter().map(|d| d.image.pull_reference()))
        .filter(|r| !kept.contains(r))
        .collect();
    Plan { kept, candidates }
}

fn histories(store: &Store) -> Result<Vec<History>, crate::store::StoreError> {
    store
        .apps()?
        .into_iter()
        .map(|record| {
            Ok(History {
                deploys: store.deploys(&record.name)?,
                current: record.current,
                app: record.name,
            })
        })
        .collect()
}

/// Removes `app`'s images that no kept revision uses (see the module docs).
pub(super) async fn prune_images(store: &Store, docker: &Docker, app: &AppName) {
    prune(store, docker, app, plan).await;
}

/// Removes the images of `app`, which is being removed (its containers are gone), that no
/// other app keeps. Called before its deploy history is deleted: that history names them.
pub(super) async fn prune_removed_app_images(store: &Store, docker: &Docker, app: &AppName) {
    prune(store, docker, app, plan_removal).await;
}

async fn prune(
    store: &Store,
    docker: &Docker,
    app: &AppName,
    plan: fn(&AppName, &[History], usize) -> Plan,
) {
    let all = match histories(store) {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(%app, error = %e, "cannot read the deploy history to prune images");
            return;
        }
    };
    let Plan { kept, candidates } = plan(app, &all, KEEP_REVISIONS);
    // The candidates still on the engine (most went with earlier prunes), by engine id.
    let mut present = Vec::new();
    for reference in candidates {
        match docker.image_id(&reference).await {
            Ok(Some(id)) => present.push((reference, id)),
            Ok(None) => {}
            Err(e) => tracing::warn!(%app, image = %reference, error = %e, "cannot prune image"),
        }
    }
    if present.is_empty() {
        return;
    }
    // Two references can name one image (the same content under two names): compare the
    // engine's ids, not the names.
    let mut kept_ids = BTreeSet::new();
    for reference in &kept {
        match docker.image_id(reference).await {
            Ok(id) => kept_ids.extend(id),
            Err(e) => {
                tracing::warn!(%app, error = %e, "cannot tell which images are in use; none pruned");
                return;
            }
        }
    }
    for (reference, id) in present {
        if kept_ids.contains(&id) {
            continue;
        }
        match docker.remove_image(&id).await {
            Ok(()) => {
                tracing::info!(%app, image = %reference, "removed an image no kept revision uses")
            }
            Err(e) => tracing::warn!(%app, image = %reference, error = %e, "cannot prune image"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::image_ref::ImageRef;
    use std::collections::BTreeMap;

    fn digest(n: u8) -> String {
        format!(
            "sha256:{}",
            format!("{n:x}")
                .repeat(64)
                .chars()
                .take(64)
                .collect::<String>()
        )
    }

    fn deploy(app: &str, revision: u64, image: u8, outcome: DeployOutcome) -> DeployRecord {
        let image_ref = ImageRef::parse(&format!("reg.example/{app}:v{image}"))
            .unwrap()
            .with_digest(&digest(image))
            .unwrap();
        DeployRecord {
            app: AppName::try_new(app).unwrap(),
            revision,
            image: image_ref,
            digest: digest(image),
            manifest_file: String::new(),
            manifest_text: String::new(),
            env: BTreeMap::new(),
            trigger: "api".into(),
            started_at: 0,
            finished_at: None,
            outcome,
        }
    }

    fn reference(app: &str, image: u8) -> String {
        format!("reg.example/{app}@{}", digest(image))
    }

    fn history(app: &str, current: Option<u64>, deploys: Vec<DeployRecord>) -> History {
        History {
            app: AppName::try_new(app).unwrap(),
            current,
            deploys,
        }
    }

    use DeployOutcome::{Failed, InProgress, Succeeded};

    fn failed() -> DeployOutcome {
        Failed {
            reason: "unhealthy".into(),
        }
    }

    #[test]
    fn the_last_revisions_that_served_keep_their_images() {
        let blog = history(
            "blog",
            Some(6),
            vec![
                deploy("blog", 1, 1, Succeeded),
                deploy("blog", 2, 2, Succeeded),
                deploy("blog", 3, 3, failed()),
                deploy("blog", 4, 4, Succeeded),
                deploy("blog", 5, 5, Succeeded),
                deploy("blog", 6, 6, Succeeded),
            ],
        );
        let plan = plan(&blog.app.clone(), &[blog], 3);
        let want = |images: &[u8]| -> BTreeSet<String> {
            images.iter().map(|i| reference("blog", *i)).collect()
        };
        assert_eq!(plan.kept, want(&[4, 5, 6]));
        assert_eq!(plan.candidates, want(&[1, 2, 3]));
    }

    #[test]
    fn a_rollback_keeps_its_image_and_a_deploy_under_way_keeps_its_own() {
        // Rolled back to revision 1's image as revision 5; revision 6 is being deployed.
        let mut back = deploy("blog", 5, 1, Succeeded);
        back.trigger = "rollback to revision 1".into();
        let blog = history(
            "blog",
            Some(5),
            vec![
                deploy("blog", 1, 1, Succeeded),
                deploy("blog", 2, 2, Succeeded),
                deploy("blog", 3, 3, Succeeded),
                deploy("blog", 4, 4, Succeeded),
                back,
                deploy("blog", 6, 7, InProgress),
            ],
        );
        let plan = plan(&blog.app.clone(), &[blog], 2);
        assert!(plan.kept.contains(&reference("blog", 1)));
        assert!(plan.kept.contains(&reference("blog", 4)));
        assert!(plan.kept.contains(&reference("blog", 7)));
        assert_eq!(
            plan.candidates,
            [2, 3].iter().map(|i| reference("blog", *i)).collect()
        );
    }

    #[test]
    fn a_removed_app_keeps_nothing_but_what_another_app_keeps() {
        let mut shared = deploy("shop", 1, 1, Succeeded);
        shared.image = deploy("blog", 1, 1, Succeeded).image;
        let blog = history(
            "blog",
            Some(2),
            vec![
                deploy("blog", 1, 1, Succeeded),
                deploy("blog", 2, 2, Succeeded),
            ],
        );
        let shop = history("shop", Some(1), vec![shared]);
        let plan = plan_removal(&AppName::try_new("blog").unwrap(), &[blog, shop], 3);
        assert_eq!(plan.kept, BTreeSet::from([reference("blog", 1)]));
        assert_eq!(
            plan.candidates,
            BTreeSet::from([reference("blog", 2)]),
            "{plan:?}"
        );
    }

    #[test]
    fn an_image_another_app_keeps_is_never_a_candidate() {
        // `shop` serves the very image `blog` moved away from.
        let mut shared = deploy("shop", 1, 1, Succeeded);
        shared.image = deploy("blog", 1, 1, Succeeded).image;
        let blog = history(
            "blog",
            Some(3),
            vec![
                deploy("blog", 1, 1, Succeeded),
                deploy("blog", 2, 2, Succeeded),
                deploy("blog", 3, 3, Succeeded),
            ],
        );
        let shop = history("shop", Some(1), vec![shared]);
        let plan = plan(&AppName::try_new("blog").unwrap(), &[blog, shop], 1);
        assert_eq!(
            plan.candidates,
            BTreeSet::from([reference("blog", 2)]),
            "{plan:?}"
        );
    }
}
