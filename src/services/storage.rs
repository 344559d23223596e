//! Storage: a host directory per app, `<data-dir>/apps/<app>/`, mounted read-write at `/data`
//! in the app's containers (web and runners), kept across revisions. Its size, reported by
//! `apps::status`, is measured by a bounded walk on the blocking pool and kept for a while.
//!
//! The directory's contents are the app's: every walk or removal of it runs off the async
//! threads, bounded, and never follows a symbolic link the app made.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::tree::{self, Bounds, Measured};
use super::{Provisioner, ServiceError};
use crate::model::name::AppName;
use crate::model::ServiceKind;

/// How far one size walk goes: an app with more files than this shows "at least" a size.
const SIZE_BOUNDS: Bounds = Bounds {
    max_entries: 200_000,
    max_time: Duration::from_secs(2),
};
/// How long a measured size is shown before the tree is walked again: `apps show` in a loop
/// must not walk an app's files every time.
const SIZE_TTL: Duration = Duration::from_secs(30);
/// How long a removal is waited for. It is not cut short (half a directory is worse than a
/// slow one): past this the call fails, the removal goes on, and asking again finishes it.
const REMOVE_WAIT: Duration = Duration::from_secs(60);

/// The storage provisioner: only the data dir, no credentials. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    data_dir: PathBuf,
    /// The last measured size per app, and when it was measured.
    sizes: Arc<Mutex<Sizes>>,
}

type Sizes = HashMap<AppName, (Instant, Option<Measured>)>;

impl Storage {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            sizes: Arc::default(),
        }
    }

    /// The bytes in the app's directory (`None`: it has none), measured at most [`SIZE_TTL`]
    /// ago. `complete: false` says the walk stopped at its bounds and the size is a lower one.
    pub async fn size(&self, app: &AppName) -> Option<Measured> {
        if let Some((at, measured)) = self.sizes_lock().get(app) {
            if at.elapsed() < SIZE_TTL {
                return *measured;
            }
        }
        let dir = self.dir(app);
        let measured = tokio::task::spawn_blocking(move || tree::size(&dir, SIZE_BOUNDS))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(%app, error = %e, "the storage size walk died");
                None
            });
        self.sizes_lock()
            .insert(app.clone(), (Instant::now(), measured));
        measured
    }

    fn sizes_lock(&self) -> std::sync::MutexGuard<'_, Sizes> {
        self.sizes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes the app's directory and everything in it; a missing one is fine.
    ///
    /// `std::fs::remove_dir_all` removes links, never what they point to, and is safe against
    /// an entry being swapped for a link while it runs; it runs on the blocking pool and is
    /// waited for at most [`REMOVE_WAIT`].
    pub async fn remove_dir(&self, app: &AppName) -> Result<(), ServiceError> {
        self.sizes_lock().remove(app);
        let dir = self.dir(app);
        let fail = |why: String| ServiceError::Storage {
            path: dir.clone(),
            why,
        };
        let target = dir.clone();
        let removal = tokio::task::spawn_blocking(move || remove_tree(&target));
        match tokio::time::timeout(REMOVE_WAIT, removal).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(fail(format!("cannot remove it: {e}"))),
            Ok(Err(e)) => Err(fail(format!("the removal died: {e}"))),
            Err(_) => Err(fail(format!(
                "its removal did not finish within {} s and goes on; ask again to finish it",
                REMOVE_WAIT.as_secs()
            ))),
        }
    }

    /// `<data-dir>/apps/<app>`. `AppName` holds no `/` or `..`, so this stays under `apps/`.
    pub fn dir(&self, app: &AppName) -> PathBuf {
        self.data_dir.join("apps").join(app.as_str())
    }

    /// Creates the directory if missing, mode [`DIR_MODE`] (an older one, made world-writable,
    /// is narrowed): synchronous, for callers outside async code. Who owns it is
    /// [`Storage::give_to`]'s business, at each deploy.
    pub fn ensure_dir(&self, app: &AppName) -> Result<PathBuf, ServiceError> {
        let dir = self.dir(app);
        let fail = |what: &str, e: std::io::Error| ServiceError::Storage {
            path: dir.clone(),
            why: format!("cannot {what}: {e}"),
        };
        std::fs::create_dir_all(&dir).map_err(|e| fail("create it", e))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(DIR_MODE))
            .map_err(|e| fail(&format!("set its mode to {DIR_MODE:o}"), e))?;
        Ok(dir)
    }

    /// Makes the app's directory (not what is in it) belong to the user its image runs as.
    /// Without the right to change owners (minicloud not run as root) it stays minicloud's.
    pub fn give_to(&self, app: &AppName, owner: DirOwner) -> Result<(), ServiceError> {
        let dir = self.dir(app);
        match std::os::unix::fs::lchown(&dir, Some(owner.uid), Some(owner.gid)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                tracing::debug!(%app, "not allowed to give the storage directory away; it stays minicloud's");
                Ok(())
            }
            Err(e) => Err(ServiceError::Storage {
                path: dir,
                why: format!("cannot give it to uid {}: {e}", owner.uid),
            }),
        }
    }
}

/// An app's directory: its owner (and group) may read, write and enter it; the group may
/// read; nobody else anything.
pub const DIR_MODE: u32 = 0o750;

/// The unprivileged user a directory goes to when the image names its user by name (which
/// only the image's own `/etc/passwd` could turn into a number).
pub const FALLBACK_OWNER: DirOwner = DirOwner {
    uid: 10001,
    gid: 10001,
};

/// Who owns an app's storage directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirOwner {
    pub uid: u32,
    pub gid: u32,
}

impl DirOwner {
    /// The owner for an image's configured `User` (`""`, `root`, `uid`, `uid:gid`,
    /// `name[:group]`): the user itself when it is a number, root for root, else
    /// [`FALLBACK_OWNER`].
    pub fn for_image_user(user: &str) -> Self {
        let (who, group) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        let root = Self { uid: 0, gid: 0 };
        let uid = match who {
            "" | "root" => return root,
            n => match n.parse::<u32>() {
                Ok(uid) => uid,
                Err(_) => return FALLBACK_OWNER,
            },
        };
        let gid = match group.map(str::parse::<u32>) {
            None => uid,
            Some(Ok(gid)) => gid,
            // A group by name: the user's own number is the usual one.
            Some(Err(_)) => uid,
        };
        Self { uid, gid }
    }
}

impl Provisioner for Storage {
    type Grant = PathBuf;
    const KIND: ServiceKind = ServiceKind::Storage;

    async fn ensure(&self, app: &AppName) -> Result<PathBuf, ServiceError> {
        let this = self.clone();
        let app = app.clone();
        tokio::task::spawn_blocking(move || this.ensure_dir(&app))
            .await
            .unwrap_or_else(|e| {
                Err(ServiceError::Storage {
                    path: self.data_dir.join("apps"),
                    why: format!("the directory set-up died: {e}"),
                })
            })
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
        self.remove_dir(app).await
    }
}

/// `dir` and all under it; a missing `dir` is fine. A `dir` that is a link loses the link.
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    let result = match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(dir),
        Ok(_) => std::fs::remove_file(dir),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_follow_the_images_user() {
        let owner = |uid, gid| DirOwner { uid, gid };
        for (user, expected) in [
            ("", owner(0, 0)),
            ("root", owner(0, 0)),
            ("0", owner(0, 0)),
            ("1000", owner(1000, 1000)),
            ("1000:50", owner(1000, 50)),
            ("1000:staff", owner(1000, 1000)),
            ("node", FALLBACK_OWNER),
            ("www-data:www-data", FALLBACK_OWNER),
            ("-1", FALLBACK_OWNER),
        ] {
            assert_eq!(DirOwner::for_image_user(user), expected, "{user:?}");
        }
    }

    #[tokio::test]
    async fn a_directory_is_private_to_its_owner() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let tmp = tempfile::tempdir().unwrap();
        let storage = Storage::new(tmp.path().to_path_buf());
        let a = AppName::try_new("a").unwrap();
        let dir = storage.dir(&a);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        storage.ensure(&a).await.unwrap();
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o750,
            "an old 0777 is narrowed"
        );
        storage.give_to(&a, FALLBACK_OWNER).unwrap();
        let meta = std::fs::metadata(&dir).unwrap();
        // Given away when minicloud may (as root); left as it was otherwise.
        let me = std::fs::metadata(tmp.path()).unwrap().uid();
        assert!(
            meta.uid() == FALLBACK_OWNER.uid || meta.uid() == me,
            "{}",
            meta.uid()
        );
    }

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

    #[tokio::test]
    async fn sizes_are_kept_a_while_and_removal_keeps_what_links_point_to() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        let storage = Storage::new(tmp.path().to_path_buf());
        let a = AppName::try_new("a").unwrap();
        assert_eq!(storage.size(&a).await, None);
        let dir = storage.ensure(&a).await.unwrap();
        assert_eq!(
            storage.size(&a).await,
            None,
            "kept: measured before it existed"
        );
        storage.remove_dir(&a).await.unwrap();
        let dir2 = storage.ensure(&a).await.unwrap();
        assert_eq!(dir, dir2);
        std::fs::write(dir.join("f"), "abc").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.join("out")).unwrap();
        let size = storage.size(&a).await.unwrap();
        assert_eq!((size.bytes, size.complete), (3, true));
        storage.remove(&a).await.unwrap();
        assert!(!dir.exists());
        assert!(
            outside.path().join("keep").exists(),
            "a link's target stays"
        );
    }
}
