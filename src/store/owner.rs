//! Who works on a data dir: `minicloud serve` and `minicloud restore` each hold an exclusive
//! `flock` on `owner.lock` beside the state file for as long as they run, so neither starts
//! while the other works, and the refusal names the one that holds it.
//!
//! Not redb's own lock on `state.redb`: a restore works for minutes (copying snapshots)
//! before it opens that file, and then replaces it with a rename, which a lock on the old
//! file does not see. The lock goes with the process, however it ends, or earlier when its
//! holder drops it.
//!
//! A `serve --upgrade` takes it over from the running `serve` ([`OwnerLock::take_over`]): it
//! learns whom to wait for, receives that one's sockets, then waits for it to let go
//! ([`OwnerLock::wait_for`]), which it does as soon as its control plane has stopped.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use super::StoreError;

/// The file, in the state file's directory.
const FILE: &str = "owner.lock";

/// What holds (or wants) the data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Serve,
    Restore,
}

impl Owner {
    fn word(self) -> &'static str {
        match self {
            Self::Serve => "serve",
            Self::Restore => "restore",
        }
    }
}

/// Held while the process works on the data dir; dropping it lets the other one in.
#[derive(Debug)]
pub struct OwnerLock {
    _file: Flock<File>,
}

/// What `serve --upgrade` found: a data dir no one works on, or a `serve` to take over from.
#[derive(Debug)]
pub enum TakeOver {
    /// No minicloud runs on it: the lock is taken, start as usual.
    Free(OwnerLock),
    /// `minicloud serve` (its pid as the lock file says) holds it.
    FromServe { pid: String },
}

/// How often a wait for the lock tries again.
const RETRY: Duration = Duration::from_millis(50);

impl OwnerLock {
    /// Takes the lock of the data dir whose state file is `state_path` for `who`, or says
    /// which minicloud holds it and what to do.
    pub fn take(state_path: &Path, who: Owner) -> Result<Self, StoreError> {
        let state_dir = state_path.parent().unwrap_or(Path::new("."));
        match Self::try_take(state_path, who)? {
            Ok(lock) => Ok(lock),
            Err(holder) => Err(refusal(state_dir, who, &holder)),
        }
    }

    /// For `serve --upgrade`: the lock when the data dir is free, or the `serve` that holds
    /// it. Held by a restore, the refusal `take` gives.
    pub fn take_over(state_path: &Path) -> Result<TakeOver, StoreError> {
        let state_dir = state_path.parent().unwrap_or(Path::new("."));
        match Self::try_take(state_path, Owner::Serve)? {
            Ok(lock) => Ok(TakeOver::Free(lock)),
            Err(holder) => match holder.split_once(' ') {
                Some(("serve", pid)) => Ok(TakeOver::FromServe {
                    pid: pid.to_owned(),
                }),
                _ => Err(refusal(state_dir, Owner::Serve, &holder)),
            },
        }
    }

    /// Takes the lock for `who` once its holder lets go, trying every 50 ms for up to
    /// `patience`; then the refusal `take` gives, and how long it waited.
    pub fn wait_for(state_path: &Path, who: Owner, patience: Duration) -> Result<Self, StoreError> {
        let deadline = Instant::now() + patience;
        loop {
            match Self::take(state_path, who) {
                Err(StoreError::Busy { message }) if Instant::now() >= deadline => {
                    return Err(StoreError::Busy {
                        message: format!("{message} (waited {:.1} s)", patience.as_secs_f64()),
                    })
                }
                Err(StoreError::Busy { .. }) => std::thread::sleep(RETRY),
                taken => return taken,
            }
        }
    }

    /// The lock, or what its holder wrote in the file ("serve 1234").
    fn try_take(state_path: &Path, who: Owner) -> Result<Result<Self, String>, StoreError> {
        let state_dir = state_path.parent().unwrap_or(Path::new("."));
        let path = state_dir.join(FILE);
        let io = |source| StoreError::Lock {
            path: path.clone(),
            source,
        };
        super::private_dir(state_dir).map_err(|source| StoreError::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Ok(Err(holder.trim().to_owned()));
            }
            Err((_, errno)) => return Err(io(std::io::Error::from(errno))),
        };
        // Who holds it, for the refusal the other one gives.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{} {}", who.word(), std::process::id()))
            .map_err(io)?;
        Ok(Ok(Self { _file: file }))
    }
}

/// The refusal of `who`, with `holder` as the lock file says ("serve 1234").
fn refusal(state_dir: &Path, who: Owner, holder: &str) -> StoreError {
    let (what, pid) = holder.split_once(' ').unwrap_or((holder, "?"));
    let dir = state_dir.parent().unwrap_or(state_dir).display();
    let message = match (who, what) {
        (Owner::Restore, "serve") => format!(
            "minicloud serve (pid {pid}) is running on this data dir ({dir}): stop it first \
             (installed by install.sh: `docker compose stop minicloud` in its directory), then \
             run `minicloud restore` again; nothing was changed"
        ),
        (Owner::Serve, "restore") => format!(
            "`minicloud restore` (pid {pid}) is restoring this data dir ({dir}): let it finish, \
             then start minicloud again (the restore's data comes back at that start)"
        ),
        (Owner::Serve, _) => format!(
            "another minicloud (pid {pid}) is already running on this data dir ({dir}): stop it \
             first, or give this one another data dir"
        ),
        (Owner::Restore, _) => format!(
            "another `minicloud restore` (pid {pid}) is already restoring this data dir \
             ({dir}): let it finish"
        ),
    };
    StoreError::Busy { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_and_restore_exclude_each_other_and_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("minicloud").join("state.redb");
        let serving = OwnerLock::take(&state, Owner::Serve).unwrap();
        let err = OwnerLock::take(&state, Owner::Restore)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "minicloud serve (pid {}) is running",
                std::process::id()
            )) && err.contains("stop it first")
                && err.contains("nothing was changed"),
            "{err}"
        );
        let err = OwnerLock::take(&state, Owner::Serve)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already running on this data dir"), "{err}");
        drop(serving);

        let restoring = OwnerLock::take(&state, Owner::Restore).unwrap();
        let err = OwnerLock::take(&state, Owner::Serve)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`minicloud restore` (pid") && err.contains("let it finish"),
            "{err}"
        );
        drop(restoring);
        OwnerLock::take(&state, Owner::Serve).unwrap();
    }

    #[test]
    fn an_upgrade_finds_the_serve_to_take_over_from_and_waits_for_it_to_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("minicloud").join("state.redb");
        // Nobody there: an ordinary start.
        let free = OwnerLock::take_over(&state).unwrap();
        assert!(matches!(free, TakeOver::Free(_)), "{free:?}");
        drop(free);

        let serving = OwnerLock::take(&state, Owner::Serve).unwrap();
        match OwnerLock::take_over(&state).unwrap() {
            TakeOver::FromServe { pid } => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("{other:?}"),
        }
        // Held past the patience: the refusal, with the wait.
        let err = OwnerLock::wait_for(&state, Owner::Serve, Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already running on this data dir") && err.contains("waited 0.2 s"),
            "{err}"
        );
        // Let go during the wait: taken.
        let letting_go = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(serving);
        });
        OwnerLock::wait_for(&state, Owner::Serve, Duration::from_secs(10)).unwrap();
        letting_go.join().unwrap();

        // A restore is not taken over.
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("minicloud").join("state.redb");
        let _restoring = OwnerLock::take(&state, Owner::Restore).unwrap();
        let err = OwnerLock::take_over(&state).unwrap_err().to_string();
        assert!(err.contains("let it finish"), "{err}");
    }
}
