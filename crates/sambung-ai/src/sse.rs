//! Server-Sent Events and newline-delimited JSON, decoded from a byte stream whose chunks
//! may end anywhere: inside a line, a JSON object or a UTF-8 character.

/// One event: its `event:` name (empty when none) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// Feed bytes in, take whole events out.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: Vec<u8>,
    name: String,
    data: Vec<String>,
}

impl SseDecoder {
    /// The events completed by `bytes` (a blank line ends an event; `:` lines are comments).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
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
        events
    }

    /// What is left when the stream ends: an event not closed by a blank line.
    pub fn finish(&mut self) -> Option<Event> {
        let rest = std::mem::take(&mut self.buffer);
        if !rest.is_empty() {
            let mut events = self.feed(&[&rest[..], b"\n\n"].concat());
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
                events.extend(decoder.feed(chunk));
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
        assert!(decoder.feed(b"data: {\"a\":1}").is_empty());
        assert_eq!(decoder.finish().unwrap().data, "{\"a\":1}");
    }
}
