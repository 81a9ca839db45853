//! The one shape every export is read into.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The service a conversation came from: part of its identity (the same id from two
/// services is two conversations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[serde(rename = "chatgpt")]
    ChatGpt,
    Claude,
    #[serde(rename = "openwebui")]
    OpenWebUi,
    /// Our own JSON export.
    Sambung,
    /// A completion asked through the OpenAI-compatible endpoint with `store: true`.
    Api,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::ChatGpt => "chatgpt",
            Source::Claude => "claude",
            Source::OpenWebUi => "openwebui",
            Source::Sambung => "sambung",
            Source::Api => "api",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }
}

/// A conversation as its service kept it, ready to be written as a chat.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub source: Source,
    /// The service's id of the conversation: importing it again adds nothing.
    pub source_id: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The model it was held with, when the service says.
    pub model: Option<String>,
    /// Its provider (our export's), or the service.
    pub provider: String,
    /// Our export's own settings and metadata (`{}` from other services).
    pub settings: serde_json::Value,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub pinned: bool,
    pub archived: bool,
    /// Parents before their children; exactly the messages on the shown branch have
    /// `on_path`, and they form one chain from a root.
    pub messages: Vec<Message>,
    /// What was dropped or changed on the way in, each with its reason.
    pub notes: Notes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub source_id: String,
    /// The index in [`Conversation::messages`] of the message this one follows.
    pub parent: Option<usize>,
    pub role: Role,
    pub content: String,
    pub model: Option<String>,
    /// Never earlier than the parent's.
    pub created_at: DateTime<Utc>,
    pub on_path: bool,
    /// Our export's message metadata (none from other services).
    pub metadata: Option<serde_json::Value>,
    pub files: Vec<FileRef>,
}

/// A file a message carried: where the archive holds its bytes, or the bytes themselves
/// (a data URL in the export).
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    pub name: String,
    pub bytes: FileBytes,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FileBytes {
    /// The path of an entry of the archive the conversation came in.
    InArchive(String),
    Inline(Vec<u8>),
}

/// The most files one message brings (the instance's limit applies after).
pub(crate) const MAX_FILES_PER_MESSAGE: usize = 10;

/// The most notes listed for one conversation (a hostile one could make millions).
const LISTED_NOTES: usize = 200;

/// What was said about a conversation: the first [`LISTED_NOTES`] notes, and how many more.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notes {
    pub list: Vec<Note>,
    pub unlisted: usize,
}

impl Notes {
    pub fn push(&mut self, note: Note) {
        if self.list.len() < LISTED_NOTES {
            self.list.push(note);
        } else {
            self.unlisted += 1;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Note> {
        self.list.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && self.unlisted == 0
    }
}

/// The most characters of a title or an id a note repeats, and an id is compared by.
pub(crate) const SHOWN_CHARS: usize = 200;
const ID_CHARS: usize = 512;

/// A title as notes repeat it: at most [`SHOWN_CHARS`] characters.
pub(crate) fn shown(title: &str) -> String {
    title.chars().take(SHOWN_CHARS).collect()
}

/// A service's id as it is kept and compared: no NUL, at most 512 characters; an empty one
/// is named by `otherwise` (what the same export repeats for it).
pub(crate) fn clean_id(id: &str, otherwise: impl FnOnce() -> String) -> String {
    let id: String = id.chars().filter(|c| *c != '\0').take(ID_CHARS).collect();
    if !id.trim().is_empty() {
        return id;
    }
    let other: String = otherwise()
        .chars()
        .filter(|c| *c != '\0')
        .take(ID_CHARS)
        .collect();
    if other.trim().is_empty() {
        "untitled".to_owned()
    } else {
        other
    }
}

/// One thing said about an import: an item dropped, or kept in another form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// The conversation's title (none: the file as a whole).
    pub chat: Option<String>,
    /// The service's id of the item (a message, a file), when it has one.
    pub item: Option<String>,
    pub kind: NoteKind,
}

/// Why something was dropped or changed: a code the UI words in the user's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    // Dropped.
    HiddenSystemMessage,
    EmptyMessage,
    ToolMessage,
    BrowsingResult,
    Reasoning,
    ErrorMessage,
    UnknownContent,
    FileNotInExport,
    FileNotKept,
    RepeatedId,
    Unreachable,
    NotAConversation,
    NoMessages,
    TooManyMessages,
    SettingsDropped,
    AlreadyImported,
    // Kept in another form.
    CodeAsBlock,
    MessageCut,
    ToolOutputAsText,
    AttachmentAsText,
    TimeMissing,
    TimeOutOfOrder,
    TitleMissing,
}

impl NoteKind {
    /// Whether the item was dropped (rather than kept in another form).
    pub fn dropped(self) -> bool {
        !matches!(
            self,
            NoteKind::CodeAsBlock
                | NoteKind::MessageCut
                | NoteKind::ToolOutputAsText
                | NoteKind::AttachmentAsText
                | NoteKind::TimeMissing
                | NoteKind::TimeOutOfOrder
                | NoteKind::TitleMissing
        )
    }
}

/// What every reader knows of a conversation besides its nodes.
pub(crate) struct Head {
    pub source: Source,
    pub source_id: String,
    pub title: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub model: Option<String>,
    pub current: Option<String>,
}

/// Longest title kept (our chats' limit).
const TITLE_CHARS: usize = 200;

impl Head {
    /// The conversation of these nodes; a conversation with nothing to keep is a note.
    pub(crate) fn finish(
        self,
        nodes: Vec<crate::tree::Node>,
        mut notes: Notes,
    ) -> Result<Conversation, Note> {
        let title = self
            .title
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.chars().take(TITLE_CHARS).collect::<String>());
        let start = self
            .created_at
            .or_else(|| nodes.iter().filter_map(|n| n.time).min())
            .unwrap_or(DateTime::UNIX_EPOCH);
        let shown_title = shown(title.as_deref().unwrap_or(&self.source_id));
        let messages = crate::tree::build(
            nodes,
            crate::tree::Shape {
                chat: &shown_title,
                current: self.current.as_deref(),
                start,
            },
            &mut notes,
        );
        if messages.is_empty() {
            return Err(Note {
                chat: Some(shown_title),
                item: Some(self.source_id),
                kind: NoteKind::NoMessages,
            });
        }
        let title = match title {
            Some(title) => title,
            None => {
                let title = untitled(&messages);
                notes.push(Note {
                    chat: Some(title.clone()),
                    item: Some(self.source_id.clone()),
                    kind: NoteKind::TitleMissing,
                });
                title
            }
        };
        let last = messages.iter().map(|m| m.created_at).max().unwrap_or(start);
        Ok(Conversation {
            source: self.source,
            source_id: self.source_id,
            title,
            created_at: start,
            updated_at: self.updated_at.filter(|u| *u >= start).unwrap_or(last),
            model: self.model,
            provider: self.source.as_str().to_owned(),
            settings: serde_json::json!({}),
            folder: None,
            tags: Vec::new(),
            pinned: false,
            archived: false,
            messages,
            notes,
        })
    }
}

/// A title from the first question, as the chat would have been named.
fn untitled(messages: &[Message]) -> String {
    let first = messages
        .iter()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let title: String = first.chars().take(60).collect();
    if title.is_empty() {
        "Imported chat".to_owned()
    } else {
        title
    }
}

/// A time given as seconds since 1970 (a float, as ChatGPT writes it).
pub(crate) fn from_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 1e11 {
        return None;
    }
    DateTime::from_timestamp_micros((seconds * 1e6) as i64)
}

/// A time as services write it: seconds or milliseconds since 1970, or RFC 3339 text.
pub(crate) fn time_of(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    match value {
        serde_json::Value::Number(n) => {
            let n = n.as_f64()?;
            // Milliseconds from 2001 on are above 1e12; seconds stay below 1e11 until 5138.
            from_seconds(if n > 1e12 { n / 1000.0 } else { n })
        }
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| s.parse::<f64>().ok().and_then(from_seconds)),
        _ => None,
    }
}

/// A text field, however the service spelled its absence.
pub(crate) fn text_of(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `text` as a fenced code block in `language` (a word: a file's name for it could carry a
/// line break or a fence of its own), its fence longer than any run of backticks inside.
pub(crate) fn fenced(language: &str, text: &str) -> String {
    let language: String = language
        .chars()
        .filter(|c| c.is_alphanumeric() || "+-_.#".contains(*c))
        .take(40)
        .collect();
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!(
        "{fence}{language}\n{}\n{fence}",
        text.trim_end_matches('\n')
    )
}

/// A document under its name, as a bold line above it: one line of at most 200 characters,
/// its Markdown emphasis and code marks escaped (a name is the file's, not formatting); the
/// document alone when the name is blank.
pub(crate) fn titled(name: &str, document: String) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    if words.is_empty() {
        return document;
    }
    let mut line = String::new();
    for c in words.join(" ").chars().take(200) {
        if matches!(c, '*' | '_' | '`' | '\\' | '[' | ']' | '<') {
            line.push('\\');
        }
        line.push(c);
    }
    format!("**{line}**\n\n{document}")
}
