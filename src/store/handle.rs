//! The open database behind a [`Store`](super::Store), closed and opened again after an I/O
//! error.
//!
//! After one failed write (a full disk), redb refuses every later call ("Previous I/O error
//! occurred") until the database is closed and opened again. So a call that fails on I/O
//! closes it, and the next call opens it again: once there is room, writes work without a
//! restart. A failed commit is rolled back by redb, so nothing acknowledged is lost. Until a
//! write succeeds again the store says it is degraded, and why.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use redb::Database;

use super::StoreError;

/// The free space at which a degraded store tries a write again on its own.
const PROBE_MIN_FREE: u64 = 1 << 20;

pub(super) struct Handle {
    path: PathBuf,
    state: RwLock<State>,
    /// Why the last call failed on I/O; cleared by the next write that succeeds.
    degraded: Mutex<Option<String>>,
}

struct State {
    /// `None` after an I/O error closed it.
    db: Option<Database>,
    /// Counts opens, so a call that failed on an older open does not close a newer one.
    generation: u64,
    /// Closed for good ([`Handle::close_for_good`]): never opened again.
    closed: bool,
}

/// Bytes an unprivileged writer may still use on the filesystem of `dir`; `None` when it
/// cannot be asked (no such directory).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    Some((stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64))
}

/// How the store is doing, for the health check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreHealth {
    /// Whether the last write failed (and none has succeeded since).
    pub degraded: bool,
    /// What went wrong, while degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The data dir and the space left on its disk.
    pub dir: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
}

impl Handle {
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let db = super::open_db(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            state: RwLock::new(State {
                db: Some(db),
                generation: 0,
                closed: false,
            }),
            degraded: Mutex::new(None),
        })
    }

    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.run(false, f)
    }

    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.run(true, f)
    }

    fn run<T>(
        &self,
        write: bool,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (result, generation) = {
            let state = self.ensure_open()?;
            // `ensure_open` returns only with the database open, under this same lock.
            #[allow(clippy::expect_used)]
            let db = state.db.as_ref().expect("ensure_open leaves it open");
            (f(db), state.generation)
        };
        match result {
            Ok(value) => {
                if write {
                    let mut degraded = lock(&self.degraded);
                    // A tiny write (an audit entry, say) that fits on a nearly full disk
                    // does not end it: only room for real writes does.
                    if degraded.is_some() && self.free_bytes().is_none_or(|f| f >= PROBE_MIN_FREE) {
                        *degraded = None;
                    }
                }
                Ok(value)
            }
            Err(e) if e.is_io() => {
                self.close(generation);
                Err(self.failed(e))
            }
            Err(e) => Err(e),
        }
    }

    /// The open database, opening it again if an I/O error closed it.
    fn ensure_open(&self) -> Result<RwLockReadGuard<'_, State>, StoreError> {
        loop {
            {
                let state = self.state.read().unwrap_or_else(|p| p.into_inner());
                if state.db.is_some() {
                    return Ok(state);
                }
            }
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            if state.closed {
                return Err(StoreError::Closed {
                    path: self.path.clone(),
                });
            }
            if state.db.is_none() {
                let db = super::open_db(&self.path).map_err(|e| self.failed(e))?;
                tracing::info!(path = %self.path.display(), "state store opened again");
                state.db = Some(db);
                state.generation += 1;
            }
        }
    }

    /// Closes the database and keeps it closed, whoever still holds a handle: the file's lock
    /// goes now. Waits for the calls under way to end; later ones fail with
    /// [`StoreError::Closed`].
    pub(super) fn close_for_good(&self) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.closed = true;
        state.db = None;
    }

    fn close(&self, generation: u64) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.generation == generation && state.db.is_some() {
            // Dropping it releases the file; the next call opens it again.
            state.db = None;
            tracing::warn!(path = %self.path.display(), "state store closed after an I/O error");
        }
    }

    /// Records an I/O failure, naming the disk's state when it is full.
    fn failed(&self, e: StoreError) -> StoreError {
        let e = if e.is_no_space() {
            StoreError::NoSpace {
                dir: self.dir().to_path_buf(),
                free_bytes: self.free_bytes().unwrap_or(0),
            }
        } else {
            e
        };
        if e.is_io() || matches!(e, StoreError::NoSpace { .. }) {
            tracing::error!(error = %e, "state store write failed");
            *lock(&self.degraded) = Some(e.to_string());
        }
        e
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    fn free_bytes(&self) -> Option<u64> {
        free_bytes(self.dir())
    }

    /// How the store is doing. While degraded, `probe` (a small write) is tried once the disk
    /// has [`PROBE_MIN_FREE`] again, so the answer turns healthy by itself when writes would
    /// work; a tiny write that happens to fit on a nearly full disk does not count.
    pub(super) fn health(&self, probe: impl FnOnce() -> Result<(), StoreError>) -> StoreHealth {
        let free_bytes = self.free_bytes();
        if lock(&self.degraded).is_some() && free_bytes.is_some_and(|f| f >= PROBE_MIN_FREE) {
            let _ = probe();
        }
        let problem = lock(&self.degraded).clone();
        StoreHealth {
            degraded: problem.is_some(),
            problem,
            dir: self.dir().to_path_buf(),
            free_bytes,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
