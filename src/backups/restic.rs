//! The repository, in restic's format, driven through Debian's `restic` binary: a person can
//! list and restore what minicloud wrote with the stock tool and the password. The password
//! and the S3 keys reach the child only through its environment (or its standard input),
//! never its arguments.
//!
//! A repository is local (`<data-dir>/backups`) or in an S3 bucket (`s3:<endpoint>/<bucket>/
//! <prefix>`); the S3 one is filled by `restic copy` from the local one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::model::Secret;

use super::s3::S3Settings;
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
    location: Location,
    password: Secret,
}

/// Where a repository is.
#[derive(Clone)]
enum Location {
    Local(PathBuf),
    S3(Arc<S3Settings>),
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
    /// The local repository at `location`.
    pub fn new(location: PathBuf, password: Secret) -> Self {
        Self {
            location: Location::Local(location),
            password,
        }
    }

    /// The repository in the S3 bucket `s3` names.
    pub fn s3(s3: Arc<S3Settings>, password: Secret) -> Self {
        Self {
            location: Location::S3(s3),
            password,
        }
    }

    /// Where it is, for a message: a path, or `https://host/bucket/prefix`.
    pub fn describe(&self) -> String {
        match &self.location {
            Location::Local(path) => path.display().to_string(),
            Location::S3(s3) => s3.describe(),
        }
    }

    /// The local directory, for an I/O error's message.
    fn path(&self) -> PathBuf {
        match &self.location {
            Location::Local(path) => path.clone(),
            Location::S3(s3) => PathBuf::from(s3.describe()),
        }
    }

    fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(RESTIC);
        cmd.env("RESTIC_PASSWORD", self.password.expose())
            // A local repository gains nothing from a cache (it would be a second copy); an
            // S3 one is only written to and listed, from a server with little disk.
            .arg("--no-cache")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &self.location {
            Location::Local(path) => {
                cmd.env("RESTIC_REPOSITORY", path);
            }
            Location::S3(s3) => {
                cmd.env("RESTIC_REPOSITORY", s3.repository());
                s3_access(&mut cmd, s3);
            }
        }
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

    /// Creates the (local) repository unless it exists; whether it made it now.
    pub async fn ensure(&self) -> Result<bool, BackupError> {
        let Location::Local(path) = &self.location else {
            return Err(BackupError::Invalid(
                "an S3 repository is made from the local one (ensure_copy_of)".into(),
            ));
        };
        if path.join("config").exists() {
            return Ok(false);
        }
        std::fs::create_dir_all(path).map_err(|e| BackupError::Io {
            path: path.clone(),
            why: e.to_string(),
        })?;
        let mut cmd = self.command();
        cmd.arg("init");
        let child = self.spawn(&mut cmd, "init")?;
        finish(child, "init").await.map(|_| true)
    }

    /// Whether a repository is there and opens with the password (`restic cat config`);
    /// `false` when the place holds none (restic then makes the bucket too, at `init`).
    pub async fn exists(&self) -> Result<bool, BackupError> {
        // restic 0.14 tells a missing local one from a broken one only in its words.
        if let Location::Local(path) = &self.location {
            if !path.join("config").exists() {
                return Ok(false);
            }
        }
        let mut cmd = self.command();
        cmd.args(["cat", "config"]);
        let child = self.spawn(&mut cmd, "cat config")?;
        match finish_with_code(child, "cat config").await {
            Ok(_) => Ok(true),
            // restic 0.17 and later exit 10 for "no repository"; older ones say it.
            Err((Some(10), _)) => Ok(false),
            Err((_, BackupError::Tool { why, .. }))
                if why.contains("does not exist") || why.contains("NoSuchBucket") =>
            {
                Ok(false)
            }
            Err((_, e)) => Err(e),
        }
    }

    /// Makes this repository, unless there is one, as a copy target of `from`: with its
    /// chunker parameters, so what `restic copy` brings deduplicates as in `from`.
    pub async fn ensure_copy_of(&self, from: &Repository) -> Result<bool, BackupError> {
        if self.exists().await? {
            return Ok(false);
        }
        let mut cmd = self.command();
        cmd.args(["init", "--copy-chunker-params"]);
        let child = self.from(&mut cmd, from, "init")?;
        finish(child, "init").await.map(|_| true)
    }

    /// Copies `snapshots` of `from` into this repository (`restic copy`; one already copied
    /// is skipped), then confirms each by listing this repository: answers, in the order
    /// given, the snapshot here that is the copy of each.
    pub async fn copy_from(
        &self,
        from: &Repository,
        snapshots: &[String],
        tag: &str,
    ) -> Result<Vec<String>, BackupError> {
        let mut cmd = self.command();
        cmd.arg("copy").args(snapshots);
        let child = self.from(&mut cmd, from, "copy")?;
        finish(child, "copy").await?;
        let here = self.snapshots(tag).await?;
        snapshots
            .iter()
            .map(|id| {
                here.iter()
                    .find(|s| {
                        s.original
                            .as_deref()
                            .is_some_and(|o| o.starts_with(id.as_str()))
                    })
                    .map(|s| s.short_id.clone())
                    .ok_or_else(|| BackupError::Tool {
                        tool: RESTIC,
                        action: "copy",
                        why: format!("snapshot {id} is not in {} after the copy", self.describe()),
                    })
            })
            .collect()
    }

    /// Copies every snapshot of `from` into this repository (`restic copy`; one already
    /// copied is skipped): a whole-box restore's repository filled from elsewhere.
    pub async fn copy_all_from(&self, from: &Repository) -> Result<(), BackupError> {
        let mut cmd = self.command();
        cmd.arg("copy");
        let child = self.from(&mut cmd, from, "copy")?;
        finish(child, "copy").await.map(drop)
    }

    /// Spawns `cmd` with `from` as its source repository (`--from-repo`): its password on
    /// the child's standard input, which restic 0.14 reads as `--from-password-file`. An S3
    /// source's keys go in the child's environment, so its target must be local (restic
    /// reads one set of keys for both).
    fn from(
        &self,
        cmd: &mut Command,
        from: &Repository,
        action: &'static str,
    ) -> Result<Child, BackupError> {
        match (&from.location, &self.location) {
            (Location::Local(path), _) => {
                cmd.arg("--from-repo").arg(path);
            }
            (Location::S3(s3), Location::Local(_)) => {
                cmd.arg("--from-repo").arg(s3.repository());
                s3_access(cmd.as_std_mut(), s3);
            }
            (Location::S3(_), Location::S3(_)) => {
                return Err(BackupError::Invalid(
                    "a copy from S3 goes into a local repository".into(),
                ))
            }
        }
        cmd.args(["--from-password-file", "/dev/stdin"])
            .stdin(Stdio::piped());
        let mut child = self.spawn(cmd, action)?;
        if let Some(mut stdin) = child.stdin.take() {
            let password = from.password.expose().as_bytes().to_vec();
            // Small enough for a pipe's buffer: written whole before restic reads it.
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = stdin.write_all(&password).await;
            });
        }
        Ok(child)
    }

    /// The snapshots that carry `tag`.
    pub async fn snapshots(&self, tag: &str) -> Result<Vec<Snapshot>, BackupError> {
        let mut cmd = self.command();
        cmd.args(["snapshots", "--json", "--tag", tag]);
        let child = self.spawn(&mut cmd, "snapshots")?;
        let out = finish(child, "snapshots").await?;
        serde_json::from_slice::<Option<Vec<Snapshot>>>(&out)
            .map(Option::unwrap_or_default)
            .map_err(|e| BackupError::Tool {
                tool: RESTIC,
                action: "snapshots",
                why: format!("its listing is not what minicloud reads: {e}"),
            })
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
            path: self.path(),
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

/// The bucket's keys (in the child's environment only), region and addressing style.
fn s3_access(cmd: &mut std::process::Command, s3: &S3Settings) {
    cmd.env("AWS_ACCESS_KEY_ID", &s3.access_key)
        .env("AWS_SECRET_ACCESS_KEY", s3.secret_key.expose())
        // Credentials of this process's own environment must not mix in.
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .args(["-o", &format!("s3.region={}", s3.region)])
        .args([
            "-o",
            if s3.path_style {
                "s3.bucket-lookup=path"
            } else {
                "s3.bucket-lookup=dns"
            },
        ]);
}

/// A snapshot as `restic snapshots --json` lists it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Snapshot {
    #[serde(default)]
    pub id: String,
    pub short_id: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The snapshot this one is a copy of (full id).
    #[serde(default)]
    pub original: Option<String>,
}

/// Waits for a restic child; a failure carries its last error lines. Returns its stdout when
/// nobody read it.
pub async fn finish(child: Child, action: &'static str) -> Result<Vec<u8>, BackupError> {
    finish_with_code(child, action).await.map_err(|(_, e)| e)
}

/// Like [`finish`]; a failure also carries restic's exit code.
async fn finish_with_code(
    mut child: Child,
    action: &'static str,
) -> Result<Vec<u8>, (Option<i32>, BackupError)> {
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
    let status = child.wait().await.map_err(|e| {
        (
            None,
            BackupError::Tool {
                tool: RESTIC,
                action,
                why: e.to_string(),
            },
        )
    })?;
    if status.success() {
        return Ok(out);
    }
    Err((
        status.code(),
        BackupError::Tool {
            tool: RESTIC,
            action,
            why: format!("{status}: {}", last_lines(&err)),
        },
    ))
}

/// The end of a tool's error output, for a message.
pub fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}
