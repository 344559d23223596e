//! Bounded walks of a directory tree an app writes to (its storage volume), for the blocking
//! thread pool: the size, counted without following symbolic links and stopped at a number
//! of entries or a deadline, whichever comes first.
//!
//! The tree belongs to an app, so it is as large and as strange as the app makes it: a link
//! to `/` must not make minicloud count the host's disk, and a million small files must not
//! hold a thread for minutes. Callers run these on `tokio::task::spawn_blocking`.

use std::path::Path;
use std::time::{Duration, Instant};

/// How far one walk may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub max_entries: u64,
    pub max_time: Duration,
}

/// What a walk counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Bytes of the regular files seen (their length, not the blocks they use).
    pub bytes: u64,
    /// Entries seen: files, directories, links and the rest.
    pub entries: u64,
    /// False when the walk stopped at its bounds: `bytes` is then a lower bound.
    pub complete: bool,
}

/// Bytes under `dir`, or `None` when it does not exist or is not a directory. Symbolic links
/// are counted as entries and never followed; unreadable subdirectories are skipped.
pub fn size(dir: &Path, bounds: Bounds) -> Option<Measured> {
    let deadline = Instant::now() + bounds.max_time;
    // `symlink_metadata`: a storage directory that is itself a link is not followed either.
    if !std::fs::symlink_metadata(dir).ok()?.is_dir() {
        return None;
    }
    let mut measured = Measured {
        bytes: 0,
        entries: 0,
        complete: true,
    };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            if measured.entries >= bounds.max_entries || Instant::now() >= deadline {
                measured.complete = false;
                return Some(measured);
            }
            measured.entries += 1;
            // `DirEntry::file_type` and `DirEntry::metadata` describe the entry itself, never
            // what a link points to.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                if let Ok(meta) = entry.metadata() {
                    measured.bytes += meta.len();
                }
            }
        }
    }
    Some(measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDE: Bounds = Bounds {
        max_entries: 1_000,
        max_time: Duration::from_secs(60),
    };

    #[test]
    fn counts_files_in_subdirectories() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        std::fs::write(tmp.path().join("top"), [0u8; 10]).unwrap();
        std::fs::write(tmp.path().join("a/b/deep"), [0u8; 5]).unwrap();
        let m = size(tmp.path(), WIDE).unwrap();
        assert_eq!(
            m,
            Measured {
                bytes: 15,
                entries: 4,
                complete: true
            }
        );
        assert_eq!(size(&tmp.path().join("missing"), WIDE), None);
        assert_eq!(size(&tmp.path().join("top"), WIDE), None, "not a directory");
    }

    #[test]
    fn symbolic_links_are_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), [0u8; 1000]).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("own"), [0u8; 3]).unwrap();
        let link_dir = tmp.path().join("to-dir");
        std::os::unix::fs::symlink(outside.path(), &link_dir).unwrap();
        std::os::unix::fs::symlink(outside.path().join("big"), tmp.path().join("to-file")).unwrap();
        let m = size(tmp.path(), WIDE).unwrap();
        assert_eq!((m.bytes, m.entries, m.complete), (3, 3, true));
        assert_eq!(size(&link_dir, WIDE), None, "a linked root is not followed");
    }

    #[test]
    fn a_walk_stopped_at_its_entry_cap_is_a_lower_bound() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..20 {
            std::fs::write(tmp.path().join(format!("f{i}")), [0u8; 2]).unwrap();
        }
        let full = size(tmp.path(), WIDE).unwrap();
        assert_eq!((full.bytes, full.complete), (40, true));
        let capped = size(
            tmp.path(),
            Bounds {
                max_entries: 5,
                ..WIDE
            },
        )
        .unwrap();
        assert!(!capped.complete);
        assert_eq!(capped.entries, 5);
        assert_eq!(capped.bytes, 10);
        assert!(capped.bytes <= full.bytes);
    }

    #[test]
    fn a_walk_past_its_deadline_stops() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), [0u8; 2]).unwrap();
        let m = size(
            tmp.path(),
            Bounds {
                max_time: Duration::ZERO,
                ..WIDE
            },
        )
        .unwrap();
        assert_eq!((m.bytes, m.complete), (0, false));
    }
}
