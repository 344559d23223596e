//! An app's log: the serving revision's last lines and, when followed, the new ones across
//! whatever replaces the container (a redeploy, a restart of it by the engine), each change
//! told in one line, until the app is stopped or removed or the reader goes.

use futures_util::stream::{BoxStream, StreamExt};

use super::deploy::web_container;
use super::error::AppError;
use super::Apps;
use crate::docker::{ContainerState, DockerError};
use crate::model::{now, AppName};

/// How often a follower looks again while the revision it follows is down.
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_secs(1);

type Lines = BoxStream<'static, Result<String, DockerError>>;

/// What a follower reads next once its container's log ended.
enum Next {
    /// Another revision serves now.
    Revision(u64),
    /// The same revision's container runs again (the engine restarted it).
    Again,
    /// Nothing to follow any more; the line says why.
    End(String),
}

impl Apps {
    /// The serving revision's log lines, the last `tail` of them, then (with `follow`) the
    /// new ones as they come, across redeploys.
    pub async fn logs(&self, name: &AppName, tail: usize, follow: bool) -> Result<Lines, AppError> {
        let record = self.app_record(name)?;
        let revision = record
            .current
            .ok_or_else(|| AppError::Invalid(format!("{name} has no revision to show logs of")))?;
        let docker = self.docker().await?;
        let lines = docker
            .logs(&web_container(name, revision), Some(tail), follow)
            .boxed();
        if !follow {
            return Ok(lines);
        }
        let this = self.clone();
        let name = name.clone();
        let followed = futures_util::stream::unfold(Some((lines, revision)), move |state| {
            let (this, name) = (this.clone(), name.clone());
            async move {
                let (mut lines, revision) = state?;
                if let Some(line) = lines.next().await {
                    return Some((line, Some((lines, revision))));
                }
                let ended_at = now();
                match this.next_to_follow(&name, revision).await {
                    Next::Revision(next) => {
                        let say = format!(
                            "[minicloud: revision {revision} was replaced by revision {next}; following revision {next}]"
                        );
                        let lines = this.log_lines(&name, next, None).await;
                        Some((Ok(say), Some((lines, next))))
                    }
                    Next::Again => {
                        let say = format!("[minicloud: revision {revision} started again]");
                        let lines = this.log_lines(&name, revision, Some(ended_at)).await;
                        Some((Ok(say), Some((lines, revision))))
                    }
                    Next::End(why) => Some((Ok(format!("[minicloud: {why}]")), None)),
                }
            }
        });
        Ok(followed.boxed())
    }

    /// A revision's web container's log, followed: all of it, or from unix second `since`.
    async fn log_lines(&self, name: &AppName, revision: u64, since: Option<i64>) -> Lines {
        let container = web_container(name, revision);
        match self.docker().await {
            Ok(docker) => match since {
                Some(since) => docker.logs_since(&container, since).boxed(),
                None => docker.logs(&container, None, true).boxed(),
            },
            Err(e) => futures_util::stream::once(async { Err(e) }).boxed(),
        }
    }

    /// Waits until something serves again after `revision`'s log ended, or nothing will.
    async fn next_to_follow(&self, name: &AppName, revision: u64) -> Next {
        loop {
            let record = match self.ctx.store.app(name) {
                Ok(Some(record)) => record,
                Ok(None) => return Next::End(format!("{name} was removed")),
                Err(e) => return Next::End(format!("cannot read the state store: {e}")),
            };
            if record.stopped {
                return Next::End(format!("{name} was stopped"));
            }
            match record.current {
                Some(current) if current != revision => return Next::Revision(current),
                Some(_) => {}
                None => return Next::End(format!("{name} has no revision to follow")),
            }
            // The same revision: its container stopped (and may be restarting). Looking once a
            // second also bounds how often a log that keeps ending is attached again.
            tokio::time::sleep(LOOK_AGAIN).await;
            let running = match self.docker().await {
                Ok(docker) => docker
                    .inspect(&web_container(name, revision))
                    .await
                    .is_ok_and(|info| info.state == ContainerState::Running),
                Err(_) => false,
            };
            if running {
                return Next::Again;
            }
        }
    }
}
