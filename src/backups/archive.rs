//! One run as a single `.tar.zst` a person can open anywhere: each part's snapshot dumped by
//! restic as tar and its entries written again under the part's place (`database.sql`,
//! `queues.json` and `app.json` at the top, the files under `storage/`), zstd-compressed and
//! streamed as it is made: nothing is spooled to disk.

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::restic::Repository;

/// The size of the chunks the stream carries.
const CHUNK: usize = 64 * 1024;
/// zstd's default level: fast, and most of the gain.
const LEVEL: i32 = 3;

/// What a download stream carries: chunks of the archive, or the error that cut it short.
pub type Chunk = Result<Vec<u8>, io::Error>;

/// One part of the archive: where its entries go (`""` for the top) and its snapshot.
#[derive(Debug, Clone)]
pub struct Entry {
    pub place: PathBuf,
    pub snapshot: String,
}

/// Streams the archive of `entries` on a blocking thread. Should anything fail, the stream
/// ends with the error, so the download is visibly cut rather than quietly short.
pub fn stream(repo: Repository, entries: Vec<Entry>) -> mpsc::Receiver<Chunk> {
    let (tx, rx) = mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        let out = ChannelWriter { tx: tx.clone() };
        if let Err(e) = write(&repo, &entries, out) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

fn write(repo: &Repository, entries: &[Entry], out: impl Write) -> io::Result<()> {
    let zst = zstd::Encoder::new(BufWriter::with_capacity(CHUNK, out), LEVEL)?;
    let mut tar = tar::Builder::new(zst);
    for entry in entries {
        let mut child = repo.dump_archive_blocking(&entry.snapshot)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("restic dump has no output"))?;
        // Read beside stdout: a child blocked on a full stderr would never end its stdout.
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("restic dump has no error output"))?;
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut archive = tar::Archive::new(stdout);
        for item in archive.entries()? {
            let mut item = item?;
            let inside = placed(&entry.place, &item.path()?);
            if inside.as_os_str().is_empty() {
                continue;
            }
            let mut header = item.header().clone();
            tar.append_data(&mut header, inside, &mut item)?;
        }
        let status = child.wait()?;
        let errors = errors.join().unwrap_or_default();
        if !status.success() {
            return Err(io::Error::other(format!(
                "restic dump of snapshot {} failed: {status}: {}",
                entry.snapshot,
                super::restic::last_lines(&errors)
            )));
        }
    }
    let zst = tar.into_inner()?;
    zst.finish()?.flush()
}

/// Where an entry of a snapshot goes in the archive: under `place`, never above it.
fn placed(place: &Path, path: &Path) -> PathBuf {
    let inside: PathBuf = path
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    place.join(inside)
}

/// Hands what is written to the stream's receiver; a receiver gone (the client left) is a
/// broken pipe, which ends the work.
struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(buf.to_vec()))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_land_under_their_place_and_never_above_it() {
        let storage = Path::new("storage");
        assert_eq!(
            placed(storage, Path::new("/notes/a.txt")),
            Path::new("storage/notes/a.txt")
        );
        assert_eq!(
            placed(storage, Path::new("../../etc/passwd")),
            Path::new("storage/etc/passwd")
        );
        assert_eq!(
            placed(Path::new(""), Path::new("/database.sql")),
            Path::new("database.sql")
        );
        assert_eq!(placed(Path::new(""), Path::new("/")), Path::new(""));
    }
}
