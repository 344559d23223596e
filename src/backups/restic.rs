//! The repository, in restic's format, driven through Debian's `restic` binary: a person can
//! list and restore what minicloud wrote with the stock tool and the password. The password
//! reaches the child only through its environment, never its arguments.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::model::Secret;

use super::BackupError;

/// The program run; on `PATH` (Debian's `restic` package, also in the image).
const RESTIC: &str = "restic";
/// Every snapshot is written under this host name, so restic finds its parent snapshot for
/// deduplication even when minicloud's container gets a new host name.
pub const HOST: &str = "minicloud";
/// The tag on every snapshot minicloud writes.
pub const TAG: &str = "minicloud";

/// One repository and its password. Cheap to clone.
#[derive(Clone)]
pub struct Repository {
    pub location: PathBuf,
    password: Secret,
}

/// What `restic backup` confirmed.
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub snapshot: String,
    pub bytes: u64,
    pub added: u64,
}

#[derive(serde::Deserialize)]
struct Line {
    message_type: String,
    #[serde(default)]
    snapshot_id: Option<String>,
    #[serde(default)]
    bytes_done: u64,
    #[serde(default)]
    total_bytes_processed: u64,
    #[serde(default)]
    data_added: u64,
}

impl Repository {
    pub fn new(location: PathBuf, password: Secret) -> Self {
        Self { location, password }
    }

    fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(RESTIC);
        cmd.env("RESTIC_REPOSITORY", &self.location)
            .env("RESTIC_PASSWORD", self.password.expose())
            // A local repository gains nothing from a cache; it would be a second copy.
            .arg("--no-cache")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn command(&self) -> Command {
        let mut cmd = Command::from(self.std_command());
        cmd.kill_on_drop(true);
        cmd
    }

    /// The whole snapshot as a tar stream (`restic dump --archive tar`), for a blocking
    /// reader: the caller reads its stdout and stderr, then waits for it.
    pub fn dump_archive_blocking(&self, snapshot: &str) -> std::io::Result<std::process::Child> {
        self.std_command()
            .args(["dump", "--archive", "tar", snapshot, "/"])
            .spawn()
    }

    fn spawn(&self, cmd: &mut Command, action: &'static str) -> Result<Child, BackupError> {
        cmd.spawn().map_err(|e| BackupError::Tool {
            tool: RESTIC,
            action,
            why: format!("cannot run it: {e} (is Debian's restic package installed?)"),
        })
    }

    /// Creates the repository unless it exists; whether it made it now.
    pub async fn ensure(&self) -> Result<bool, BackupError> {
        if self.location.join("config").exists() {
            return Ok(false);
        }
        std::fs::create_dir_all(&self.location).map_err(|e| BackupError::Io {
            path: self.location.clone(),
            why: e.to_string(),
        })?;
        let mut cmd = self.command();
        cmd.arg("init");
        let child = self.spawn(&mut cmd, "init")?;
        finish(child, "init").await.map(|_| true)
    }

    /// Backs up what `input` gives as one file `/<file_name>` in a new snapshot.
    pub async fn backup_stdin(
        &self,
        input: Stdio,
        file_name: &str,
        tags: &[String],
        progress: impl FnMut(u64),
    ) -> Result<Confirmed, BackupError> {
        let mut cmd = self.command();
        cmd.args(["backup", "--json", "--stdin", "--stdin-filename", file_name])
            .stdin(input);
        self.backup(cmd, tags, progress).await
    }

    /// Backs up `bytes` as one file `/<file_name>` in a new snapshot.
    pub async fn backup_bytes(
        &self,
        bytes: Vec<u8>,
        file_name: &str,
        tags: &[String],
    ) -> Result<Confirmed, BackupError> {
        let (reader, mut writer) = std::io::pipe().map_err(|e| BackupError::Io {
            path: self.location.clone(),
            why: e.to_string(),
        })?;
        // A thread writes while restic reads: a pipe holds less than a large record.
        let writing = std::thread::spawn(move || {
            use std::io::Write;
            writer.write_all(&bytes)
        });
        let confirmed = self
            .backup_stdin(reader.into(), file_name, tags, |_| {})
            .await;
        let _ = writing.join();
        confirmed
    }

    /// Backs up the contents of `dir` (its files at the snapshot's root).
    pub async fn backup_dir(
        &self,
        dir: &Path,
        tags: &[String],
        progress: impl FnMut(u64),
    ) -> Result<Confirmed, BackupError> {
        let mut cmd = self.command();
        cmd.current_dir(dir).args(["backup", "--json", "."]);
        self.backup(cmd, tags, progress).await
    }

    async fn backup(
        &self,
        mut cmd: Command,
        tags: &[String],
        mut progress: impl FnMut(u64),
    ) -> Result<Confirmed, BackupError> {
        cmd.args(["--host", HOST, "--tag", TAG])
            .env("RESTIC_PROGRESS_FPS", "1");
        for tag in tags {
            cmd.args(["--tag", tag]);
        }
        let mut child = self.spawn(&mut cmd, "backup")?;
        // Spawned with `Stdio::piped()` just above: the handle is there to take.
        #[allow(clippy::expect_used)]
        let stdout = child.stdout.take().expect("piped");
        // Read beside stdout (see `finish`), handed back for the error.
        // Spawned with `Stdio::piped()` just above: the handle is there to take.
        #[allow(clippy::expect_used)]
        let mut stderr = child.stderr.take().expect("piped");
        let errors = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let mut lines = BufReader::new(stdout).lines();
        let mut summary = None;
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(line) = serde_json::from_str::<Line>(&line) else {
                continue;
            };
            match line.message_type.as_str() {
                "status" => progress(line.bytes_done),
                "summary" => summary = Some(line),
                _ => {}
            }
        }
        let status = child.wait().await;
        let errors = errors.await.unwrap_or_default();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                return Err(BackupError::Tool {
                    tool: RESTIC,
                    action: "backup",
                    why: format!("{s}: {}", last_lines(&errors)),
                })
            }
            Err(e) => {
                return Err(BackupError::Tool {
                    tool: RESTIC,
                    action: "backup",
                    why: e.to_string(),
                })
            }
        }
        let Some((snapshot, summary)) = summary.and_then(|s| Some((s.snapshot_id.clone()?, s)))
        else {
            return Err(BackupError::Tool {
                tool: RESTIC,
                action: "backup",
                why: "it ended without confirming a snapshot".into(),
            });
        };
        Ok(Confirmed {
            snapshot,
            bytes: summary.total_bytes_processed,
            added: summary.data_added,
        })
    }

    /// Streams one file of a snapshot (`restic dump`); the caller reads stdout, then
    /// calls [`finish`].
    pub fn dump(&self, snapshot: &str, file: &str) -> Result<Child, BackupError> {
        let mut cmd = self.command();
        cmd.args(["dump", snapshot, file]);
        self.spawn(&mut cmd, "dump")
    }

    /// One small file of a snapshot, read whole (a record, the queue definitions).
    pub async fn read_file(&self, snapshot: &str, file: &str) -> Result<Vec<u8>, BackupError> {
        let child = self.dump(snapshot, &format!("/{file}"))?;
        finish(child, "dump").await
    }

    /// Restores a snapshot's files into `target` (made if missing).
    pub async fn restore(&self, snapshot: &str, target: &Path) -> Result<(), BackupError> {
        let mut cmd = self.command();
        cmd.args(["restore", snapshot, "--target"]).arg(target);
        let child = self.spawn(&mut cmd, "restore")?;
        finish(child, "restore").await.map(drop)
    }

    /// Forgets snapshots (their data goes at the next prune).
    pub async fn forget(&self, snapshots: &[String]) -> Result<(), BackupError> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let mut cmd = self.command();
        cmd.arg("forget").args(snapshots);
        let child = self.spawn(&mut cmd, "forget")?;
        finish(child, "forget").await.map(drop)
    }

    /// Removes the data no snapshot refers to any more.
    pub async fn prune(&self) -> Result<(), BackupError> {
        let mut cmd = self.command();
        cmd.arg("prune");
        let child = self.spawn(&mut cmd, "prune")?;
        finish(child, "prune").await.map(drop)
    }
}

/// Waits for a restic child; a failure carries its last error lines. Returns its stdout when
/// nobody read it.
pub async fn finish(mut child: Child, action: &'static str) -> Result<Vec<u8>, BackupError> {
    // Both pipes at once: a child blocked on a full stderr would never close its stdout.
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read_out = async {
        let mut out = Vec::new();
        if let Some(mut stdout) = stdout {
            let _ = stdout.read_to_end(&mut out).await;
        }
        out
    };
    let read_err = async {
        let mut err = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut err).await;
        }
        err
    };
    let (out, err) = tokio::join!(read_out, read_err);
    let status = child.wait().await.map_err(|e| BackupError::Tool {
        tool: RESTIC,
        action,
        why: e.to_string(),
    })?;
    if status.success() {
        return Ok(out);
    }
    Err(BackupError::Tool {
        tool: RESTIC,
        action,
        why: format!("{status}: {}", last_lines(&err)),
    })
}

/// The end of a tool's error output, for a message.
pub fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}
