//! Reading the app manifest out of an image without running it.
//!
//! The image is never started: a stopped container is created only so the engine's archive API
//! can copy one file out of its filesystem, and it is always removed again, also when reading
//! fails or the caller's future is dropped half-way.

use std::io::Read;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::error::{is_not_found, reason};
use super::{labels, Docker, DockerError};
use crate::model::image_ref::ImageRef;

/// Where the manifest may be, in the order they are tried.
pub const MANIFEST_FILES: &[&str] = &["/cloud_manifest.yml", "/cloud_manifest.json"];

/// A manifest is a few hundred bytes; this keeps a hostile image from filling memory.
const MAX_MANIFEST_BYTES: usize = 256 * 1024;

impl Docker {
    /// Copies the app manifest out of `image` (which must be pulled): returns the file name
    /// found (one of [`MANIFEST_FILES`]) and its text.
    pub async fn read_manifest(&self, image: &ImageRef) -> Result<(String, String), DockerError> {
        let shown = image.canonical();
        let name = format!("mc-manifest-{:016x}", rand::random::<u64>());
        let mut marks = std::collections::HashMap::from([(labels::TMP.to_owned(), "1".to_owned())]);
        // Whose reader it is, so one minicloud can tell its leftovers from another's.
        if let Some(id) = &self.instance {
            marks.insert(labels::INSTANCE.to_owned(), id.clone());
        }
        let body = ContainerCreateBody {
            image: Some(image.pull_reference()),
            // Never run, but the engine refuses to create a container of an image without a
            // command (a file-only image `FROM scratch` has none), so give it a placeholder.
            cmd: Some(vec!["/minicloud-never-started".to_owned()]),
            network_disabled: Some(true),
            labels: Some(marks),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default().name(&name).build();
        self.api()
            .create_container(Some(opts), body)
            .await
            .map_err(|e| {
                if is_not_found(&e) && reason(&e).contains("No such image") {
                    DockerError::ImageMissing {
                        image: shown.clone(),
                    }
                } else {
                    DockerError::engine("create a container to read the manifest of", &shown, e)
                }
            })?;
        let guard = TempContainer {
            api: self.api().clone(),
            name: Some(name.clone()),
        };

        let found = self.copy_manifest(&name, &shown).await;
        let removed = guard.remove().await;
        let (file, text) = found?;
        removed?;
        Ok((file, text))
    }

    /// Removes manifest readers of this minicloud that a crash or a kill left behind: those
    /// created before `cutoff` (Unix seconds), so a read in progress is never touched.
    /// Returns how many went.
    pub async fn sweep_manifest_readers(&self, cutoff: i64) -> Result<usize, DockerError> {
        let tmp = format!("{}=1", labels::TMP);
        let mine = self
            .instance
            .as_ref()
            .map(|id| format!("{}={id}", labels::INSTANCE));
        let mut wanted = vec![tmp.as_str()];
        wanted.extend(mine.as_deref());
        let filters = std::collections::HashMap::from([("label", wanted)]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let leftovers = self
            .api()
            .list_containers(Some(opts))
            .await
            .map_err(|e| DockerError::engine("list", "manifest readers", e))?;
        let mut removed = 0;
        for c in leftovers {
            let (Some(id), Some(created)) = (c.id, c.created) else {
                continue;
            };
            if created < cutoff {
                remove_force(self.api(), &id).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn copy_manifest(
        &self,
        container: &str,
        image: &str,
    ) -> Result<(String, String), DockerError> {
        for file in MANIFEST_FILES {
            let opts = DownloadFromContainerOptionsBuilder::default()
                .path(file)
                .build();
            let mut stream = self.api().download_from_container(container, Some(opts));
            let mut tar = Vec::new();
            let mut missing = false;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        tar.extend_from_slice(&bytes);
                        // Tar headers and padding add at most a few KiB around the file.
                        if tar.len() > MAX_MANIFEST_BYTES + 64 * 1024 {
                            return Err(unreadable(
                                image,
                                file,
                                format!("larger than {MAX_MANIFEST_BYTES} bytes"),
                            ));
                        }
                    }
                    Err(e) if is_not_found(&e) => {
                        missing = true;
                        break;
                    }
                    Err(e) => return Err(unreadable(image, file, reason(&e))),
                }
            }
            if missing {
                continue;
            }
            let text = first_file_in_tar(&tar, MAX_MANIFEST_BYTES)
                .map_err(|why| unreadable(image, file, why))?;
            return Ok(((*file).to_owned(), text));
        }
        Err(DockerError::NoManifest {
            image: image.to_owned(),
            looked_for: MANIFEST_FILES.join(" and "),
        })
    }
}

fn unreadable(image: &str, file: &str, reason: String) -> DockerError {
    DockerError::ManifestUnreadable {
        image: image.to_owned(),
        file: file.to_owned(),
        reason,
    }
}

/// The text of the one regular file in a tar archive from the engine's archive API.
pub(crate) fn first_file_in_tar(tar: &[u8], max: usize) -> Result<String, String> {
    let mut archive = tar::Archive::new(tar);
    let entries = archive.entries().map_err(|e| format!("bad archive: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("bad archive: {e}"))?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            return Err("it is a link; the manifest must be a regular file".to_owned());
        }
        if !kind.is_file() {
            continue;
        }
        let mut text = String::new();
        let read = entry
            .take(max as u64 + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("not UTF-8 text: {e}"))?;
        if read > max {
            return Err(format!("larger than {max} bytes"));
        }
        return Ok(text);
    }
    Err("it is not a regular file".to_owned())
}

/// Removes a helper container when dropped, unless [`TempContainer::remove`] ran: a caller's
/// future dropped mid-read must not leave `mc-manifest-*` containers behind.
struct TempContainer {
    api: bollard::Docker,
    name: Option<String>,
}

impl TempContainer {
    async fn remove(mut self) -> Result<(), DockerError> {
        let Some(name) = self.name.take() else {
            return Ok(());
        };
        remove_force(&self.api, &name).await
    }
}

impl Drop for TempContainer {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else {
            return;
        };
        let api = self.api.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = remove_force(&api, &name).await {
                    tracing::warn!(container = %name, error = %e, "could not remove helper container");
                }
            });
        }
    }
}

async fn remove_force(api: &bollard::Docker, name: &str) -> Result<(), DockerError> {
    let opts = RemoveContainerOptionsBuilder::default().force(true).build();
    match api.remove_container(name, Some(opts)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(DockerError::engine("remove helper container", name, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(name: &str, data: &[u8], kind: tar::EntryType) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(if kind.is_file() { data.len() as u64 } else { 0 });
        h.set_mode(0o644);
        if kind.is_symlink() {
            h.set_link_name("target").unwrap();
        }
        h.set_cksum();
        let body: &[u8] = if kind.is_file() { data } else { &[] };
        b.append_data(&mut h, name, body).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn reads_the_file() {
        let t = tar_with("cloud_manifest.yml", b"name: a\n", tar::EntryType::Regular);
        assert_eq!(first_file_in_tar(&t, 1024).unwrap(), "name: a\n");
    }

    #[test]
    fn refuses_big_links_and_binary() {
        let t = tar_with("cloud_manifest.yml", &[b'x'; 100], tar::EntryType::Regular);
        assert!(first_file_in_tar(&t, 10)
            .unwrap_err()
            .contains("larger than 10 bytes"));
        let t = tar_with("cloud_manifest.yml", b"", tar::EntryType::Symlink);
        assert!(first_file_in_tar(&t, 10).unwrap_err().contains("link"));
        let t = tar_with("cloud_manifest.yml", &[0xff, 0xfe], tar::EntryType::Regular);
        assert!(first_file_in_tar(&t, 10).unwrap_err().contains("UTF-8"));
        let t = tar_with("cloud_manifest.yml", b"", tar::EntryType::Directory);
        assert!(first_file_in_tar(&t, 10)
            .unwrap_err()
            .contains("not a regular file"));
    }
}
