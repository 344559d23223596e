//! A small filesystem for the data dir: a tmpfs mounted for one test (the tests run as root),
//! and a filler that uses up its space.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a fresh directory, unmounted when dropped.
pub struct Tmpfs {
    pub dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Result<Self, String> {
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("small");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self {
            dir,
            _parent: parent,
        })
    }

    pub fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Fills `dir`'s disk with `file` until about `leave` bytes are left (none: until it is full).
pub fn fill(dir: &Path, file: &str, leave: u64) {
    use std::io::Write;
    let stat = nix::sys::statvfs::statvfs(dir).unwrap();
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    let mut left = free.saturating_sub(leave);
    let mut out = std::fs::File::create(dir.join(file)).expect("create the filler");
    let chunk = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        match out.write_all(&chunk[..n]) {
            Ok(()) => left -= n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("write the filler: {e}"),
        }
    }
    let _ = out.sync_all();
}
