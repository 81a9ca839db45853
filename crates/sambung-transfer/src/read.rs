//! Reading an export as a stream: a JSON array of conversations (or one conversation) is read
//! one element at a time, each no larger than [`Limits::conversation_bytes`] of text and
//! [`Limits::conversation_memory`] once parsed, so a file of any size holds one conversation
//! in memory; each element is recognised by its shape.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

use serde::de::{MapAccess, SeqAccess, Visitor};

use crate::conversation::{Conversation, Note, NoteKind};
use crate::surrogates::MendLoneSurrogates;
use crate::{chatgpt, claude, openwebui, ours};

/// How much one file may ask of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The JSON text of one conversation (pictures inside it as data URLs: Open WebUI keeps
    /// each twice, in its tree and in its flat list).
    pub conversation_bytes: u64,
    /// The memory one conversation may take once parsed: its text, and a fixed share for
    /// every value, list entry and key (a list of a million zeros is small text and many
    /// values). One at a time per import.
    pub conversation_memory: usize,
    /// Conversations in one file.
    pub conversations: usize,
    /// Messages in one conversation.
    pub messages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            conversation_bytes: 64 << 20,
            conversation_memory: 256 << 20,
            conversations: 100_000,
            messages: 50_000,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error(
        "the file is not JSON as the export makes it (line {line}, column {column}): {reason}"
    )]
    NotJson {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("a conversation in the file is larger than {limit_mib} MiB")]
    ConversationTooLarge { limit_mib: u64 },
    #[error("a conversation in the file would take more than {limit_mib} MiB of memory once read")]
    ConversationTooMuchMemory { limit_mib: usize },
    #[error("the file holds more than {limit} conversations")]
    TooManyConversations { limit: usize },
    #[error("the file is neither a list of conversations nor one conversation")]
    NotAnExport,
    #[error("reading the file failed: {0}")]
    Io(String),
    /// The receiver of the conversations stopped taking them.
    #[error("the import stopped")]
    Stopped,
}

/// One element of the file: a conversation, or why it is not one.
pub type Element = Result<Conversation, Note>;

/// Read the conversations of `reader`, handing each to `each` as soon as it is read (`false`
/// from `each` stops the reading).
pub fn read_conversations<R: Read>(
    reader: R,
    limits: &Limits,
    each: impl FnMut(Element) -> bool,
) -> Result<(), ReadError> {
    let read = Rc::new(Cell::new(0u64));
    let over = Rc::new(Cell::new(false));
    let metered = Metered {
        inner: BufReader::with_capacity(64 << 10, MendLoneSurrogates::new(reader)),
        read: read.clone(),
        over: over.clone(),
        limit: limits.conversation_bytes,
    };
    let mut de = serde_json::Deserializer::from_reader(metered);
    let mut stopped = false;
    let top = Top {
        limits,
        read,
        each,
        stopped: &mut stopped,
    };
    let outcome = serde::Deserializer::deserialize_any(&mut de, top).and_then(|()| de.end());
    if stopped {
        return Err(ReadError::Stopped);
    }
    if over.get() {
        return Err(ReadError::ConversationTooLarge {
            limit_mib: limits.conversation_bytes >> 20,
        });
    }
    outcome.map_err(|e| from_json(e, limits))
}

fn from_json(e: serde_json::Error, limits: &Limits) -> ReadError {
    if e.is_io() {
        return ReadError::Io(e.to_string());
    }
    let reason = e.to_string();
    if reason.starts_with(TOO_MANY) {
        return ReadError::TooManyConversations {
            limit: limits.conversations,
        };
    }
    if reason.starts_with(NOT_AN_EXPORT) {
        return ReadError::NotAnExport;
    }
    if reason.starts_with(TOO_MUCH_MEMORY) {
        return ReadError::ConversationTooMuchMemory {
            limit_mib: limits.conversation_memory >> 20,
        };
    }
    // serde_json's own words, without its " at line … column …" (said apart).
    let reason = reason
        .split(" at line ")
        .next()
        .unwrap_or_default()
        .to_owned();
    ReadError::NotJson {
        line: e.line(),
        column: e.column(),
        reason,
    }
}

const TOO_MANY: &str = "too many conversations";
const TOO_MUCH_MEMORY: &str = "conversation takes too much memory";
const NOT_AN_EXPORT: &str = "not an export";

/// A reader that fails once more than `limit` bytes were read since the counter was reset.
struct Metered<R> {
    inner: R,
    read: Rc<Cell<u64>>,
    over: Rc<Cell<bool>>,
    limit: u64,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = self.read.get() + n as u64;
        self.read.set(read);
        if read > self.limit {
            self.over.set(true);
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "conversation too large",
            ));
        }
        Ok(n)
    }
}

struct Top<'a, F> {
    limits: &'a Limits,
    read: Rc<Cell<u64>>,
    each: F,
    stopped: &'a mut bool,
}

/// A JSON value read within a memory budget (what is left of it): what
/// `serde_json::Value::deserialize` reads, refused once the budget is spent.
struct Budgeted<'a>(&'a Cell<usize>);

/// What a value takes beside its text: the value itself, a list's slot for it (lists grow by
/// doubling), a map entry's share of its node.
const VALUE_BYTES: usize = 80;
/// What an object takes before its entries: the first node of its B-tree (room for eleven
/// keys and values), allocated whole for one key.
const OBJECT_BYTES: usize = 640;

impl Budgeted<'_> {
    fn charge<E: serde::de::Error>(&self, bytes: usize) -> Result<(), E> {
        let left = self.0.get();
        let cost = VALUE_BYTES.saturating_add(bytes);
        if cost > left {
            return Err(E::custom(TOO_MUCH_MEMORY));
        }
        self.0.set(left - cost);
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Budgeted<'_> {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budgeted<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.charge(0)?;
        Ok(serde_json::Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.charge(0)?;
        Ok(v.into())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.charge(0)?;
        Ok(v.into())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.charge(0)?;
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.charge(v.len())?;
        Ok(serde_json::Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.charge(v.len())?;
        Ok(serde_json::Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.charge(0)?;
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.charge(0)?;
        let mut values = Vec::new();
        while let Some(value) = seq.next_element_seed(Budgeted(self.0))? {
            values.push(value);
        }
        Ok(serde_json::Value::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        self.charge(OBJECT_BYTES)?;
        let mut entries = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.charge(key.len())?;
            let value = map.next_value_seed(Budgeted(self.0))?;
            entries.insert(key, value);
        }
        Ok(serde_json::Value::Object(entries))
    }
}

impl<'de, F: FnMut(Element) -> bool> Visitor<'de> for Top<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of conversations or one conversation")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut count = 0;
        let budget = Cell::new(0);
        loop {
            self.read.set(0);
            budget.set(self.limits.conversation_memory);
            let Some(value) = seq.next_element_seed(Budgeted(&budget))? else {
                return Ok(());
            };
            count += 1;
            if count > self.limits.conversations {
                return Err(serde::de::Error::custom(TOO_MANY));
            }
            if !(self.each)(recognise(value, self.limits)) {
                *self.stopped = true;
                return Err(serde::de::Error::custom("stopped"));
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, map: A) -> Result<(), A::Error> {
        // One conversation counts too (a split export's last piece may be one).
        if self.limits.conversations == 0 {
            return Err(serde::de::Error::custom(TOO_MANY));
        }
        let budget = Cell::new(self.limits.conversation_memory);
        let value = Budgeted(&budget).visit_map(map)?;
        match recognise(value, self.limits) {
            Err(note) if note.kind == NoteKind::NotAConversation => {
                Err(serde::de::Error::custom(NOT_AN_EXPORT))
            }
            element => {
                if !(self.each)(element) {
                    *self.stopped = true;
                }
                Ok(())
            }
        }
    }
}

/// Which service made this element, by its shape, and the conversation read from it.
fn recognise(value: serde_json::Value, limits: &Limits) -> Element {
    let has = |key: &str| value.get(key).is_some();
    if value.get("format").and_then(|f| f.as_str()) == Some(ours::CHAT_FORMAT) {
        ours::read(value, limits)
    } else if has("mapping") {
        chatgpt::read(value, limits)
    } else if has("chat_messages") {
        claude::read(value, limits)
    } else if value.get("chat").is_some_and(|c| c.is_object()) || has("history") {
        openwebui::read(value, limits)
    } else {
        Err(Note {
            chat: value
                .get("title")
                .or(value.get("name"))
                .and_then(|t| t.as_str())
                .map(|t| t.chars().take(200).collect()),
            item: None,
            kind: NoteKind::NotAConversation,
        })
    }
}

/// A conversation's messages past the limit are refused as one.
pub(crate) fn too_many_messages(title: &str, count: usize, limits: &Limits) -> Option<Note> {
    (count > limits.messages).then(|| Note {
        chat: Some(title.to_owned()),
        item: None,
        kind: NoteKind::TooManyMessages,
    })
}
