//! Storage: a host directory per app, `<data-dir>/apps/<app>/`, mounted read-write at `/data`
//! in the app's containers (web and runners), kept across revisions. Its size is reported by
//! `apps::status`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Provisioner, ServiceError};
use crate::model::name::AppName;
use crate::model::ServiceKind;

/// The storage provisioner: only the data dir, no credentials. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    data_dir: PathBuf,
}

impl Storage {
    pub fn new(data_dir: PathBuf) -> Self {
        Self { data_dir }
    }

    /// `<data-dir>/apps/<app>`. `AppName` holds no `/` or `..`, so this stays under `apps/`.
    pub fn dir(&self, app: &AppName) -> PathBuf {
        self.data_dir.join("apps").join(app.as_str())
    }

    /// Creates the directory if missing and opens it to every user (synchronous, for callers
    /// outside async code).
    pub fn ensure_dir(&self, app: &AppName) -> Result<PathBuf, ServiceError> {
        let dir = self.dir(app);
        let fail = |what: &str, e: std::io::Error| ServiceError::Storage {
            path: dir.clone(),
            why: format!("cannot {what}: {e}"),
        };
        std::fs::create_dir_all(&dir).map_err(|e| fail("create it", e))?;
        // The image's user is unknown here and may not be root: let any user of the
        // container write. The directory is reachable only through this app's mount.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| fail("open it up (mode 0777)", e))?;
        Ok(dir)
    }
}

impl Provisioner for Storage {
    type Grant = PathBuf;
    const KIND: ServiceKind = ServiceKind::Storage;

    async fn ensure(&self, app: &AppName) -> Result<PathBuf, ServiceError> {
        self.ensure_dir(app)
    }

    /// Storage is a mount, not a variable.
    fn env(&self, _dir: &PathBuf) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// Nothing to rotate: no credentials.
    async fn rotate(&self, app: &AppName) -> Result<PathBuf, ServiceError> {
        self.ensure_dir(app)
    }

    async fn remove(&self, app: &AppName) -> Result<(), ServiceError> {
        let dir = self.dir(app);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ServiceError::Storage {
                path: dir,
                why: format!("cannot remove it: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_per_app_made_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let storage = Storage::new(tmp.path().to_path_buf());
        let a = AppName::try_new("a").unwrap();
        let b = AppName::try_new("b").unwrap();
        let dir = storage.ensure(&a).await.unwrap();
        assert_eq!(dir, tmp.path().join("apps/a"));
        std::fs::write(dir.join("f"), "x").unwrap();
        assert_eq!(storage.ensure(&a).await.unwrap(), dir, "idempotent");
        assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "x");
        storage.ensure(&b).await.unwrap();
        storage.remove(&a).await.unwrap();
        storage.remove(&a).await.unwrap();
        assert!(!dir.exists());
        assert!(storage.dir(&b).exists());
    }
}
