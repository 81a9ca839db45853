//! Server-Sent Events and newline-delimited JSON, decoded from a byte stream whose chunks
//! may end anywhere: inside a line, a JSON object or a UTF-8 character.

/// One event: its `event:` name (empty when none) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// Longest line of a stream accepted (a provider's event is a line of JSON): a stream that
/// never ends its line is an error, not a buffer that grows without end.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A line longer than [`MAX_LINE_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a line of the stream is longer than {MAX_LINE_BYTES} bytes")]
pub struct LineTooLong;

/// Feed bytes in, take whole events out. Each byte is looked at once: what was scanned for a
/// line's end is not scanned again when more arrives.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: Vec<u8>,
    /// How much of `buffer` is known to hold no line end.
    scanned: usize,
    name: String,
    data: Vec<String>,
}

impl SseDecoder {
    /// The events completed by `bytes` (a blank line ends an event; `:` lines are comments).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, LineTooLong> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(found) = self.buffer[start + self.scanned..]
            .iter()
            .position(|&b| b == b'\n')
        {
            let end = start + self.scanned + found;
            self.scanned = 0;
            let mut line: Vec<u8> = self.buffer[start..=end].to_vec();
            start = end + 1;
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                if !self.data.is_empty() || !self.name.is_empty() {
                    events.push(Event {
                        name: std::mem::take(&mut self.name),
                        data: std::mem::take(&mut self.data).join("\n"),
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => self.name = value.to_owned(),
                "data" => self.data.push(value.to_owned()),
                _ => {}
            }
        }
        self.buffer.drain(..start);
        self.scanned = self.buffer.len();
        if self.buffer.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        Ok(events)
    }

    /// What is left when the stream ends: an event not closed by a blank line.
    pub fn finish(&mut self) -> Option<Event> {
        let rest = std::mem::take(&mut self.buffer);
        self.scanned = 0;
        if !rest.is_empty() {
            let mut events = self.feed(&[&rest[..], b"\n\n"].concat()).ok()?;
            return events.pop();
        }
        if self.data.is_empty() {
            return None;
        }
        Some(Event {
            name: std::mem::take(&mut self.name),
            data: std::mem::take(&mut self.data).join("\n"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_any_chunking() {
        let text = "event: ping\ndata: {}\n\n: comment\ndata: {\"t\":\"kopi ☕ susu\"}\r\n\r\ndata: a\ndata: b\n\n";
        let bytes = text.as_bytes();
        for size in 1..=bytes.len() {
            let mut decoder = SseDecoder::default();
            let mut events = Vec::new();
            for chunk in bytes.chunks(size) {
                events.extend(decoder.feed(chunk).unwrap());
            }
            assert_eq!(
                events,
                [
                    Event {
                        name: "ping".into(),
                        data: "{}".into()
                    },
                    Event {
                        name: String::new(),
                        data: "{\"t\":\"kopi ☕ susu\"}".into()
                    },
                    Event {
                        name: String::new(),
                        data: "a\nb".into()
                    },
                ],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn an_unterminated_last_event_is_kept() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.feed(b"data: {\"a\":1}").unwrap().is_empty());
        assert_eq!(decoder.finish().unwrap().data, "{\"a\":1}");
    }

    /// A line that never ends: each piece is scanned once (fed a byte at a time, a scan from
    /// the start each time would read 10¹² bytes here), and past the limit it is an error.
    #[test]
    fn a_line_that_never_ends_is_scanned_once_and_refused() {
        let mut decoder = SseDecoder::default();
        let piece = vec![b'x'; 1024];
        let mut fed = 0;
        let refused = loop {
            match decoder.feed(&piece) {
                Ok(events) => assert!(events.is_empty()),
                Err(e) => break e,
            }
            fed += piece.len();
            assert!(fed <= MAX_LINE_BYTES, "never refused");
        };
        assert_eq!(refused, LineTooLong);
        let mut decoder = SseDecoder::default();
        for _ in 0..(MAX_LINE_BYTES / 2) {
            decoder.feed(b"y").unwrap();
        }
        assert_eq!(decoder.scanned, MAX_LINE_BYTES / 2);
        let events = decoder.feed(b"\n\ndata: z\n\n").unwrap();
        assert_eq!(events.len(), 1);
    }
}
