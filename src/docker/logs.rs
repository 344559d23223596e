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
            .tail(&tail.map_or_else(|| "all".to_owned(), |n| n.to_string()));
        self.log_lines(name, opts)
    }

    /// The container's log from unix second `since` on, kept streaming until the container
    /// stops: what a follower attached again after a restart of the container reads.
    pub fn logs_since(
        &self,
        name: &str,
        since: i64,
    ) -> impl Stream<Item = Result<String, DockerError>> + Send + 'static {
        let since = i32::try_from(since).unwrap_or(i32::MAX);
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(true)
            .since(since);
        self.log_lines(name, opts)
    }

    fn log_lines(
        &self,
        name: &str,
        opts: LogsOptionsBuilder,
    ) -> impl Stream<Item = Result<String, DockerError>> + Send + 'static {
        let opts = opts.build();
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
        cutter: LineCutter,
        ready: VecDeque<String>,
        done: bool,
    }
    let state = State {
        chunks,
        cutter: LineCutter::default(),
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
                    st.cutter.push(output.as_ref(), &mut st.ready);
                }
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    st.cutter.finish(&mut st.ready);
                }
            }
        }
    })
}

/// The longest line kept: the rest of a longer one, up to its newline, is dropped (an app
/// writing without newlines must not grow minicloud's memory).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Cuts bytes into lines, each at most [`MAX_LINE_BYTES`], looking at each byte once.
#[derive(Default)]
struct LineCutter {
    partial: Vec<u8>,
    /// Dropping the rest of a line that was cut at the cap.
    skipping: bool,
}

impl LineCutter {
    fn push(&mut self, mut bytes: &[u8], out: &mut VecDeque<String>) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|b| *b == b'\n');
            let (piece, rest, ends) = match newline {
                Some(pos) => (&bytes[..pos], &bytes[pos + 1..], true),
                None => (bytes, &[][..], false),
            };
            if !self.skipping {
                let room = MAX_LINE_BYTES - self.partial.len();
                if piece.len() > room {
                    self.partial.extend_from_slice(&piece[..room]);
                    let mut line = to_line(&std::mem::take(&mut self.partial));
                    line.push_str(" \u{2026}[cut]");
                    out.push_back(line);
                    self.skipping = true;
                } else {
                    self.partial.extend_from_slice(piece);
                }
            }
            if ends {
                if !self.skipping {
                    out.push_back(to_line(&std::mem::take(&mut self.partial)));
                }
                self.skipping = false;
            }
            bytes = rest;
        }
    }

    fn finish(&mut self, out: &mut VecDeque<String>) {
        if !self.partial.is_empty() {
            out.push_back(to_line(&std::mem::take(&mut self.partial)));
        }
    }
}

/// A line as minicloud passes it on: valid UTF-8, without its line end, and with every
/// control character escaped, so an app's output cannot forge log lines, move the cursor of
/// a terminal that shows it, or hide text.
fn to_line(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    escape_controls(s.trim_end_matches(['\n', '\r']))
}

/// Escapes C0 and C1 controls (except tab), DEL and the bidirectional overrides as `\xNN` or
/// `\u{NNNN}`; a backslash stays itself. App output is data, not commands.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_controls("ok\x1b[2J\rFAKE\x07\u{9b}31m\u{202e}x\ttab"),
            "ok\\x1b[2J\\x0dFAKE\\x07\\x9b31m\\u{202e}x\ttab"
        );
        assert_eq!(escape_controls("plain \\ text"), "plain \\ text");
    }

    fn cut(chunks: &[&[u8]]) -> Vec<String> {
        let mut cutter = LineCutter::default();
        let mut out = VecDeque::new();
        for c in chunks {
            cutter.push(c, &mut out);
        }
        cutter.finish(&mut out);
        out.into()
    }

    #[test]
    fn lines_are_cut_across_chunks_and_capped() {
        assert_eq!(
            cut(&[b"a\nb", b"c\r\n\nlog in: ok\rINFO forged", b"\nend"]),
            ["a", "bc", "", "log in: ok\\x0dINFO forged", "end"]
        );
        let long = vec![b'x'; MAX_LINE_BYTES * 3];
        let lines = cut(&[&long[..1000], &long[1000..], b"\nnext\n"]);
        assert_eq!(lines.len(), 2, "the rest of a cut line is dropped");
        assert!(lines[0].starts_with(&"x".repeat(MAX_LINE_BYTES)));
        assert!(lines[0].ends_with("[cut]"));
        assert!(lines[0].len() < MAX_LINE_BYTES + 16);
        assert_eq!(lines[1], "next");
    }
}
