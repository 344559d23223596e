//! Pulling images: progress summed over layers, and the repo digest of what was pulled.

use std::collections::HashMap;
use std::fmt;

use bollard::auth::DockerCredentials;
use bollard::models::CreateImageInfo;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;

use super::error::reason;
use super::{Docker, DockerError};
use crate::model::image_ref::ImageRef;

/// Credentials for a private registry. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Pull progress, summed over the image's layers. Totals grow while the engine discovers
/// layers; `bytes_total` counts only layers whose size the registry has announced (layers
/// that already exist locally count as done with 0 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullProgress {
    pub layers_total: usize,
    pub layers_done: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// The result of a pull: the reference pinned to the digest the registry served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The reference that was asked for, with its digest set.
    pub image: ImageRef,
    /// `sha256:…`, the repo (manifest) digest: pulling by it gets the same image again.
    pub digest: String,
    /// The local image id (`sha256:…` of the config), what containers report as their image.
    pub image_id: String,
}

impl Docker {
    /// Pulls `image`, calling `on_progress` as layers download, then inspects the image for
    /// the repo digest the registry served.
    ///
    /// A callback rather than a stream: the caller usually forwards progress to a channel
    /// and needs the final digest either way, which a callback plus a result says directly.
    pub async fn pull(
        &self,
        image: &ImageRef,
        auth: Option<&RegistryAuth>,
        mut on_progress: impl FnMut(PullProgress) + Send,
    ) -> Result<PulledImage, DockerError> {
        let shown = image.canonical();
        let fail = |reason: String| DockerError::Pull {
            image: shown.clone(),
            reason,
        };
        let reference = image.pull_reference();
        let opts = CreateImageOptionsBuilder::default()
            .from_image(&reference)
            .build();
        let credentials = auth.map(|a| DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(image.registry().to_owned()),
            ..Default::default()
        });

        let mut tracker = ProgressTracker::default();
        let mut stream = self.api().create_image(Some(opts), None, credentials);
        let pulled = tokio::time::timeout(self.pull_timeout, async {
            while let Some(event) = stream.next().await {
                let event = event.map_err(|e| fail(reason(&e)))?;
                if tracker.apply(&event) {
                    on_progress(tracker.progress());
                }
            }
            Ok(())
        })
        .await;
        // Dropping the stream closes the connection, which makes the engine give the pull up.
        pulled.map_err(|_| {
            fail(format!(
                "not done after {} s (pull_timeout): the registry is too slow or stalled; try again later",
                self.pull_timeout.as_secs()
            ))
        })??;

        let inspect = self.api().inspect_image(&reference).await.map_err(|e| {
            fail(format!(
                "pulled, but the engine cannot find it: {}",
                reason(&e)
            ))
        })?;
        let repo_digests = inspect.repo_digests.unwrap_or_default();
        let digest = repo_digest_for(image, &repo_digests)
            .or(tracker.digest)
            .ok_or_else(|| {
                fail(format!(
                    "the engine reports no digest for it (repo digests: {repo_digests:?})"
                ))
            })?;
        let pinned = image
            .with_digest(&digest)
            .map_err(|e| fail(format!("the registry sent an unusable digest: {e}")))?;
        Ok(PulledImage {
            image: pinned,
            digest,
            image_id: inspect.id.unwrap_or_default(),
        })
    }
}

impl Docker {
    /// The user a (pulled) image runs as, as its config says it (`""` for root).
    pub async fn image_user(&self, image: &ImageRef) -> Result<String, DockerError> {
        let inspect = self
            .api()
            .inspect_image(&image.pull_reference())
            .await
            .map_err(|e| {
                if super::error::is_not_found(&e) {
                    DockerError::ImageMissing {
                        image: image.canonical(),
                    }
                } else {
                    DockerError::engine("inspect", image.canonical(), e)
                }
            })?;
        Ok(inspect.config.and_then(|c| c.user).unwrap_or_default())
    }
}

/// Picks the digest of `image`'s repository among the engine's `RepoDigests`
/// (`name@sha256:…`, spelled the short way for Docker Hub, e.g. `nginx@sha256:…`).
pub(crate) fn repo_digest_for(image: &ImageRef, repo_digests: &[String]) -> Option<String> {
    repo_digests.iter().find_map(|rd| {
        let parsed = ImageRef::parse(rd).ok()?;
        (parsed.name() == image.name()).then(|| parsed.digest().map(str::to_owned))?
    })
}

/// Folds the engine's per-layer pull events into one [`PullProgress`].
#[derive(Debug, Default)]
pub(crate) struct ProgressTracker {
    layers: HashMap<String, Layer>,
    /// From the engine's `Digest: sha256:…` status line; a fallback for `RepoDigests`.
    pub(crate) digest: Option<String>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Layer {
    total: u64,
    downloaded: u64,
    done: bool,
}

impl ProgressTracker {
    /// Applies one event; returns whether the progress changed.
    pub(crate) fn apply(&mut self, event: &CreateImageInfo) -> bool {
        let status = event.status.as_deref().unwrap_or_default();
        if let Some(d) = status.strip_prefix("Digest: ") {
            self.digest = Some(d.trim().to_owned());
            return false;
        }
        // Events without an id are whole-pull status lines ("Status: Downloaded newer image").
        // "Pulling from x" carries the tag as its id, so layer events are known by status.
        let Some(id) = event.id.as_deref() else {
            return false;
        };
        let detail = event.progress_detail.as_ref();
        let current = detail
            .and_then(|d| d.current)
            .and_then(|c| u64::try_from(c).ok());
        let total = detail
            .and_then(|d| d.total)
            .and_then(|t| u64::try_from(t).ok());
        let layer_status = matches!(
            status,
            "Pulling fs layer"
                | "Waiting"
                | "Downloading"
                | "Verifying Checksum"
                | "Download complete"
                | "Extracting"
                | "Pull complete"
                | "Already exists"
        ) || status.starts_with("Retrying");
        if !layer_status {
            return false;
        }
        let before = self.progress();
        let layer = self.layers.entry(id.to_owned()).or_default();
        match status {
            "Downloading" => {
                if let Some(t) = total.filter(|t| *t > 0) {
                    layer.total = t;
                }
                if let Some(c) = current {
                    layer.downloaded = c;
                }
            }
            // Past the download: everything announced has arrived.
            "Download complete" | "Extracting" => layer.downloaded = layer.total,
            "Pull complete" | "Already exists" => {
                layer.downloaded = layer.total;
                layer.done = true;
            }
            _ => {}
        }
        self.progress() != before
    }

    pub(crate) fn progress(&self) -> PullProgress {
        let mut p = PullProgress {
            layers_total: self.layers.len(),
            ..Default::default()
        };
        for l in self.layers.values() {
            p.layers_done += usize::from(l.done);
            p.bytes_done += l.downloaded;
            // Never report more done than total, even if a size was not announced.
            p.bytes_total += l.total.max(l.downloaded);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ProgressDetail;

    fn ev(id: Option<&str>, status: &str, progress: Option<(i64, i64)>) -> CreateImageInfo {
        CreateImageInfo {
            id: id.map(str::to_owned),
            status: Some(status.to_owned()),
            progress_detail: progress.map(|(current, total)| ProgressDetail {
                current: Some(current),
                total: Some(total),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sums_layers_through_a_pull() {
        let mut t = ProgressTracker::default();
        assert!(!t.apply(&ev(Some("latest"), "Pulling from library/nginx", None)));
        assert!(t.apply(&ev(Some("aaa"), "Pulling fs layer", None)));
        assert!(t.apply(&ev(Some("bbb"), "Pulling fs layer", None)));
        t.apply(&ev(Some("ccc"), "Already exists", None));
        t.apply(&ev(Some("aaa"), "Downloading", Some((100, 1000))));
        t.apply(&ev(Some("bbb"), "Downloading", Some((50, 500))));
        assert_eq!(
            t.progress(),
            PullProgress {
                layers_total: 3,
                layers_done: 1,
                bytes_done: 150,
                bytes_total: 1500
            }
        );
        t.apply(&ev(Some("aaa"), "Download complete", None));
        t.apply(&ev(Some("aaa"), "Extracting", Some((32768, 1000))));
        t.apply(&ev(Some("aaa"), "Pull complete", None));
        t.apply(&ev(Some("bbb"), "Verifying Checksum", None));
        t.apply(&ev(Some("bbb"), "Download complete", None));
        t.apply(&ev(Some("bbb"), "Pull complete", None));
        assert!(!t.apply(&ev(
            None,
            &format!("Digest: sha256:{}", "a".repeat(64)),
            None
        )));
        assert!(!t.apply(&ev(
            None,
            "Status: Downloaded newer image for nginx:latest",
            None
        )));
        assert_eq!(
            t.progress(),
            PullProgress {
                layers_total: 3,
                layers_done: 3,
                bytes_done: 1500,
                bytes_total: 1500
            }
        );
        assert_eq!(t.digest, Some(format!("sha256:{}", "a".repeat(64))));
    }

    #[test]
    fn repeated_identical_events_report_no_change() {
        let mut t = ProgressTracker::default();
        assert!(t.apply(&ev(Some("aaa"), "Downloading", Some((10, 100)))));
        assert!(!t.apply(&ev(Some("aaa"), "Downloading", Some((10, 100)))));
        assert!(t.apply(&ev(Some("aaa"), "Downloading", Some((20, 100)))));
    }

    #[test]
    fn picks_the_repo_digest_of_the_same_repository() {
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        let digests = vec![format!("other/app@{d1}"), format!("nginx@{d2}")];
        let nginx = ImageRef::parse("nginx:1.25").unwrap();
        assert_eq!(repo_digest_for(&nginx, &digests), Some(d2.clone()));
        let local = ImageRef::parse("127.0.0.1:5000/ns/app:v1").unwrap();
        assert_eq!(repo_digest_for(&local, &digests), None);
        let digests = vec![format!("127.0.0.1:5000/ns/app@{d1}")];
        assert_eq!(repo_digest_for(&local, &digests), Some(d1));
    }

    #[test]
    fn auth_debug_hides_the_password() {
        let a = RegistryAuth {
            username: "me".into(),
            password: "hunter2".into(),
        };
        let s = format!("{a:?}");
        assert!(s.contains("me") && !s.contains("hunter2"), "{s}");
    }
}
