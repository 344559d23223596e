//! A server-sent events parser for the CLI: bytes in, events out. Pure (no I/O), so it is fed
//! from whatever stream carries the bytes and tested with plain strings.
//!
//! Covers what the API sends: `event:` and `data:` fields, multi-line data, comments (the
//! keep-alives), `\n` or `\r\n` line ends, and chunks that split lines anywhere. Not `id:` or
//! `retry:`: the CLI never reconnects a stream.

/// One event: its type (`message` when the server named none) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Collects bytes until they make whole events.
#[derive(Default)]
pub struct SseParser {
    /// Bytes of a line not yet ended. Kept as bytes: a chunk may end inside a UTF-8 character.
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk; returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &byte in chunk {
            if byte == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if let Some(event) = self.line_done(&String::from_utf8_lossy(&line)) {
                    out.push(event);
                }
            } else {
                self.line.push(byte);
            }
        }
        out
    }

    fn line_done(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            // A blank line dispatches; one without data is no event (per the spec).
            let event = self.event.take();
            let data = self.data.take()?;
            return Some(SseEvent {
                event: event.unwrap_or_else(|| "message".into()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_split_across_chunks_come_out_whole() {
        let text =
            "event: progress\ndata: {\"a\":1}\n\n: keep-alive\n\nevent: result\r\ndata: x\r\n\r\n";
        for split in 0..text.len() {
            let mut parser = SseParser::new();
            let (a, b) = text.as_bytes().split_at(split);
            let mut events = parser.push(a);
            events.extend(parser.push(b));
            assert_eq!(
                events,
                vec![event("progress", "{\"a\":1}"), event("result", "x")],
                "split at {split}"
            );
        }
    }

    #[test]
    fn data_lines_join_and_unnamed_events_are_messages() {
        let mut parser = SseParser::new();
        let events = parser.push(b"data: one\ndata:two\n\nevent: lonely\n\n");
        assert_eq!(events, vec![event("message", "one\ntwo")]);
    }

    #[test]
    fn a_character_split_between_chunks_survives() {
        let text = "data: caf\u{e9}\n\n".as_bytes();
        let mut parser = SseParser::new();
        let mut events = parser.push(&text[..10]);
        events.extend(parser.push(&text[10..]));
        assert_eq!(events, vec![event("message", "caf\u{e9}")]);
    }
}
