//! Following a deploy as it happens: reads the API's server-sent events and shows them on
//! stderr (`==> step` lines; on a terminal, one updating pull line), then hands back the
//! final result. What the caller prints on stdout is its business.

use std::io::Write;

use futures_util::StreamExt;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;

use super::format;
use super::sse::{SseEvent, SseParser};
use super::view::AppView;
use super::{ApiClient, ClientError};

/// A `progress` event's data, as the API sends it.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum ProgressEvent {
    Step {
        message: String,
    },
    Pull {
        layers_done: usize,
        layers_total: usize,
        bytes_done: u64,
        bytes_total: u64,
    },
    Deployed {
        revision: u64,
    },
    Unchanged {
        revision: u64,
    },
    Failed {},
    BackupProgress {
        part: String,
        bytes_done: u64,
    },
    /// Kinds a newer server may add: not shown.
    #[serde(other)]
    Other,
}

/// The `result` event's data.
#[derive(Debug, Deserialize)]
struct ResultEvent<T> {
    ok: bool,
    app: Option<T>,
    status: Option<u16>,
    error: Option<String>,
    deploy: Option<FailedDeploy>,
}

/// A deploy that ran and failed, as the API describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct FailedDeploy {
    pub app: String,
    pub revision: Option<u64>,
    pub reason: String,
    pub log_tail: Option<String>,
    pub still_serving: Option<u64>,
}

/// How a deploy ended, from its last progress event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Deployed(u64),
    Unchanged(u64),
    Failed,
}

/// What a deploying call came to (`T`: what the operation answers, an app's status unless
/// said otherwise).
#[derive(Debug)]
pub enum Outcome<T = AppView> {
    Done {
        app: Box<T>,
        finished: Option<Finished>,
    },
    /// The operation failed; `status` is the HTTP status it would have had, and `deploy`
    /// the details when a deploy ran and failed.
    Failed {
        status: u16,
        error: String,
        deploy: Option<FailedDeploy>,
    },
}

/// Shows progress events on `out`. Pure apart from writing to `out`, so tests pass a `Vec`.
pub struct Progress<W: Write> {
    out: W,
    /// On a terminal the pull line updates in place; elsewhere pulls are not shown at all
    /// (a log file full of `\r` lines helps nobody).
    tty: bool,
    /// Whether the cursor sits at the end of a pull line.
    pull_line: bool,
    finished: Option<Finished>,
}

impl<W: Write> Progress<W> {
    pub fn new(out: W, tty: bool) -> Self {
        Self {
            out,
            tty,
            pull_line: false,
            finished: None,
        }
    }

    /// Shows one `progress` event's data. Data it does not understand is skipped: progress
    /// is decoration, the result is what counts.
    pub fn show(&mut self, data: &str) {
        let Ok(event) = serde_json::from_str::<ProgressEvent>(data) else {
            return;
        };
        // Writing progress to a closed stderr is no reason to abandon the deploy's result.
        let _ = match event {
            ProgressEvent::Step { message } => {
                self.end_pull_line();
                writeln!(self.out, "==> {message}")
            }
            ProgressEvent::Pull {
                layers_done,
                layers_total,
                bytes_done,
                bytes_total,
            } if self.tty => {
                self.pull_line = true;
                write!(
                    self.out,
                    "\r\x1b[Kpulling  {layers_done}/{layers_total} layers  {}/{} MB",
                    format::megabytes(bytes_done),
                    format::megabytes(bytes_total)
                )
            }
            ProgressEvent::BackupProgress { part, bytes_done } if self.tty => {
                self.pull_line = true;
                write!(
                    self.out,
                    "\r\x1b[Kbacking up {part}  {} MB",
                    format::megabytes(bytes_done)
                )
            }
            ProgressEvent::Pull { .. }
            | ProgressEvent::BackupProgress { .. }
            | ProgressEvent::Other => Ok(()),
            ProgressEvent::Deployed { revision } => {
                self.finished = Some(Finished::Deployed(revision));
                Ok(())
            }
            ProgressEvent::Unchanged { revision } => {
                self.finished = Some(Finished::Unchanged(revision));
                Ok(())
            }
            ProgressEvent::Failed {} => {
                self.finished = Some(Finished::Failed);
                Ok(())
            }
        };
        let _ = self.out.flush();
    }

    /// Ends an open pull line so that what follows starts on a line of its own.
    pub fn end_pull_line(&mut self) {
        if std::mem::take(&mut self.pull_line) {
            let _ = writeln!(self.out);
        }
    }

    pub fn finished(&self) -> Option<Finished> {
        self.finished
    }
}

/// Sends a deploying call asking for its progress as server-sent events, shows the progress
/// on stderr and returns the result. A server that answers with plain JSON instead is fine.
pub async fn run<B: Serialize, T: DeserializeOwned>(
    api: &ApiClient,
    method: Method,
    path: &str,
    body: Option<&B>,
) -> Result<Outcome<T>, ClientError> {
    use std::io::IsTerminal;
    let response = api
        .open(method, path, body, "text/event-stream, application/json")
        .await?;
    let url = response.url().to_string();
    let protocol = |why: String| ClientError::Protocol {
        url: url.clone(),
        why,
    };
    let is_stream = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_stream {
        let app = response
            .json::<T>()
            .await
            .map_err(|e| protocol(e.to_string()))?;
        return Ok(Outcome::Done {
            app: Box::new(app),
            finished: None,
        });
    }

    let stderr = std::io::stderr();
    let mut progress = Progress::new(stderr.lock(), stderr.is_terminal());
    let mut parser = SseParser::new();
    let mut body = response.bytes_stream();
    let mut result: Option<SseEvent> = None;
    while result.is_none() {
        let Some(chunk) = body.next().await else {
            break;
        };
        let chunk = chunk.map_err(|e| {
            progress.end_pull_line();
            api.stream_error(&e)
        })?;
        for event in parser.push(&chunk) {
            match event.event.as_str() {
                "progress" => progress.show(&event.data),
                "result" => result = Some(event),
                _ => {}
            }
        }
    }
    progress.end_pull_line();
    let result = result.ok_or_else(|| {
        protocol(
            "the progress stream ended before the result; the operation may still be running \
             (see `minicloud apps show`)"
                .into(),
        )
    })?;
    let result: ResultEvent<T> =
        serde_json::from_str(&result.data).map_err(|e| protocol(format!("result event: {e}")))?;
    match (result.ok, result.app) {
        (true, Some(app)) => Ok(Outcome::Done {
            app: Box::new(app),
            finished: progress.finished(),
        }),
        (true, None) => Err(protocol("a successful result without the app".into())),
        (false, _) => Ok(Outcome::Failed {
            status: result.status.unwrap_or(500),
            error: result
                .error
                .unwrap_or_else(|| "the operation failed".into()),
            deploy: result.deploy,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(tty: bool, events: &[&str]) -> (String, Option<Finished>) {
        let mut out = Vec::new();
        let mut progress = Progress::new(&mut out, tty);
        for e in events {
            progress.show(e);
        }
        progress.end_pull_line();
        let finished = progress.finished();
        (String::from_utf8(out).unwrap(), finished)
    }

    const EVENTS: [&str; 5] = [
        r#"{"event":"step","app":"p","message":"pulling p:v1"}"#,
        r#"{"event":"pull","app":"p","layers_done":1,"layers_total":2,"bytes_done":1000000,"bytes_total":4000000}"#,
        r#"{"event":"pull","app":"p","layers_done":2,"layers_total":2,"bytes_done":4000000,"bytes_total":4000000}"#,
        r#"{"event":"step","app":"p","message":"starting revision 1"}"#,
        r#"{"event":"deployed","app":"p","revision":1}"#,
    ];

    #[test]
    fn a_terminal_sees_one_updating_pull_line() {
        let (out, finished) = shown(true, &EVENTS);
        assert_eq!(
            out,
            "==> pulling p:v1\n\
             \r\x1b[Kpulling  1/2 layers  1.0/4.0 MB\
             \r\x1b[Kpulling  2/2 layers  4.0/4.0 MB\n\
             ==> starting revision 1\n"
        );
        assert_eq!(finished, Some(Finished::Deployed(1)));
    }

    #[test]
    fn a_pipe_sees_steps_only() {
        let (out, _) = shown(false, &EVENTS);
        assert_eq!(out, "==> pulling p:v1\n==> starting revision 1\n");
    }

    #[test]
    fn unknown_and_broken_events_are_skipped() {
        let (out, finished) = shown(
            true,
            &[
                r#"{"event":"backup-done","app":"p"}"#,
                "not json",
                r#"{"event":"unchanged","app":"p","revision":3}"#,
            ],
        );
        assert_eq!(out, "");
        assert_eq!(finished, Some(Finished::Unchanged(3)));
    }
}
