//! Container logs as lines of text (stdout and stderr interleaved as the engine stored them).

use std::collections::VecDeque;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::stream::{BoxStream, Stream, StreamExt};

use super::{Docker, DockerError};

impl Docker {
    /// The container's log as lines, without trailing newlines. `tail`: only the last N lines
    /// (all when `None`); `follow`: keep streaming new lines until the container stops.
    pub fn logs(
        &self,
        name: &str,
        tail: Option<usize>,
        follow: bool,
    ) -> impl Stream<Item = Result<String, DockerError>> + Send + 'static {
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail(&tail.map_or_else(|| "all".to_owned(), |n| n.to_string()))
            .build();
        let owned = name.to_owned();
        let chunks = self
            .api()
            .logs(name, Some(opts))
            .map(move |r| {
                r.map_err(|e| DockerError::container("read logs of container", owned.clone(), e))
            })
            .boxed();
        lines(chunks)
    }

    /// The last `n` lines of the log as one string: what to show as a failure reason when a
    /// container exits or fails its health check.
    pub async fn last_log_lines(&self, name: &str, n: usize) -> Result<String, DockerError> {
        let mut out = Vec::new();
        let mut stream = std::pin::pin!(self.logs(name, Some(n), false));
        while let Some(line) = stream.next().await {
            out.push(line?);
        }
        Ok(out.join("\n"))
    }
}

/// Re-cuts byte chunks into lines: the engine frames output per write, and one write can hold
/// several lines or half of one.
fn lines(
    chunks: BoxStream<'static, Result<LogOutput, DockerError>>,
) -> impl Stream<Item = Result<String, DockerError>> + Send + 'static {
    struct State {
        chunks: BoxStream<'static, Result<LogOutput, DockerError>>,
        partial: Vec<u8>,
        ready: VecDeque<String>,
        done: bool,
    }
    let state = State {
        chunks,
        partial: Vec::new(),
        ready: VecDeque::new(),
        done: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(line) = st.ready.pop_front() {
                return Some((Ok(line), st));
            }
            if st.done {
                return None;
            }
            match st.chunks.next().await {
                Some(Ok(output)) => {
                    // stdout and stderr frames alike: the engine keeps them in write order.
                    st.partial.extend_from_slice(output.as_ref());
                    while let Some(pos) = st.partial.iter().position(|b| *b == b'\n') {
                        let rest = st.partial.split_off(pos + 1);
                        let line = std::mem::replace(&mut st.partial, rest);
                        st.ready.push_back(to_line(&line));
                    }
                }
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    if !st.partial.is_empty() {
                        let line = std::mem::take(&mut st.partial);
                        st.ready.push_back(to_line(&line));
                    }
                }
            }
        }
    })
}

fn to_line(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    s.trim_end_matches(['\n', '\r']).to_owned()
}
