//! Local images: which one a reference names, and removing one that nothing uses any more.

use bollard::query_parameters::RemoveImageOptionsBuilder;

use super::error::is_not_found;
use super::{Docker, DockerError};

impl Docker {
    /// The local image id (`sha256:…`) `reference` (`name@sha256:…` or `name:tag`) names;
    /// `None` when the engine has no such image.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>, DockerError> {
        match self.api().inspect_image(reference).await {
            Ok(image) => Ok(image.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(DockerError::engine("inspect image", reference, e)),
        }
    }

    /// Removes the image with engine id `id` with all its names, never by force: the engine
    /// refuses while any container (a stopped one too) uses it, or while it is named in more
    /// than one repository (another app, or someone's own tag, still names it). An image
    /// already gone is fine.
    pub async fn remove_image(&self, id: &str) -> Result<(), DockerError> {
        let opts = RemoveImageOptionsBuilder::default().force(false).build();
        match self.api().remove_image(id, Some(opts), None).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(DockerError::engine("remove image", id, e)),
        }
    }
}
