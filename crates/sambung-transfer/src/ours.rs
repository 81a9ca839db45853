//! Our JSON export of a chat: every message of its tree with its metadata, which branch is
//! shown, its folder, tags and settings, and its files (as entries of the account's zip).
//! Read back, it gives the same chat: the ids are kept as the source's ids.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::conversation::{
    clean_id, shown, FileBytes, FileRef, Head, Note, NoteKind, Notes, Role, Source,
    MAX_FILES_PER_MESSAGE,
};
use crate::read::{too_many_messages, Element, Limits};
use crate::tree::{Kept, Node};

/// The `format` of a chat exported as JSON.
pub const CHAT_FORMAT: &str = "sambung-chat/chat";

/// The version of [`CHAT_FORMAT`] written now.
pub const CHAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatExport {
    pub format: String,
    pub version: u32,
    pub id: String,
    pub title: String,
    pub model: String,
    pub provider: String,
    #[serde(default)]
    pub settings: serde_json::Value,
    /// The folder's path from the top (`Work / Clients`), none at the top.
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub pinned: bool,
    #[serde(default)]
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Parents before children.
    pub messages: Vec<MessageExport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageExport {
    pub id: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    pub role: String,
    pub content: String,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    /// On the branch the chat shows.
    #[serde(default = "yes")]
    pub on_path: bool,
    #[serde(default)]
    pub files: Vec<FileExport>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileExport {
    pub id: String,
    pub name: String,
    pub media_type: String,
    pub size: i64,
    /// The entry of the account's zip holding its bytes.
    pub path: String,
}

/// Where an account's zip keeps a file's bytes.
pub fn file_path(id: &str, name: &str) -> String {
    format!("files/{id}/{name}")
}

pub(crate) fn read(value: serde_json::Value, limits: &Limits) -> Element {
    let title = value
        .get("title")
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    let export: ChatExport = serde_json::from_value(value).map_err(|_| Note {
        chat: title.clone(),
        item: None,
        kind: NoteKind::NotAConversation,
    })?;
    if let Some(note) = too_many_messages(&export.title, export.messages.len(), limits) {
        return Err(note);
    }
    let title = shown(&export.title);
    let mut notes = Notes::default();
    // The shown branch: where the path the export marks ends (the builder keeps it one chain
    // whatever the file says).
    let continued: std::collections::HashSet<&str> = export
        .messages
        .iter()
        .filter(|m| m.on_path)
        .filter_map(|m| m.parent_id.as_deref())
        .collect();
    let current = export
        .messages
        .iter()
        .rev()
        .find(|m| m.on_path && !continued.contains(m.id.as_str()))
        .map(|m| clean_id(&m.id, String::new));
    let mut nodes = Vec::with_capacity(export.messages.len());
    for (i, m) in export.messages.into_iter().enumerate() {
        let id = clean_id(&m.id, || format!("#{i}"));
        let role = match m.role.as_str() {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "system" => Some(Role::System),
            _ => {
                notes.push(note(&title, &id, NoteKind::UnknownContent));
                None
            }
        };
        let metadata = m.metadata.map(safe_metadata);
        let model = metadata
            .as_ref()
            .and_then(|meta| meta.get("model"))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        nodes.push(Node {
            parent: m.parent_id.map(|p| clean_id(&p, String::new)),
            time: Some(m.created_at),
            kept: role.map(|role| Kept {
                role,
                content: m.content,
                model,
                metadata,
                files: m
                    .files
                    .into_iter()
                    .take(MAX_FILES_PER_MESSAGE)
                    .map(|f| FileRef {
                        name: f.name,
                        bytes: FileBytes::InArchive(f.path),
                    })
                    .collect(),
                continues_answer: false,
            }),
            id,
        });
    }
    let mut conversation = Head {
        source: Source::Sambung,
        source_id: clean_id(&export.id, || format!("{}:{title}", export.created_at)),
        title: Some(export.title),
        created_at: Some(export.created_at),
        updated_at: Some(export.updated_at),
        model: Some(export.model),
        current,
    }
    .finish(nodes, notes)?;
    conversation.provider = export.provider;
    conversation.settings = export.settings;
    conversation.folder = export.folder;
    conversation.tags = export.tags;
    conversation.pinned = export.pinned;
    conversation.archived = export.archived;
    Ok(conversation)
}

/// A message's metadata as our export wrote it, without what would make a live server act
/// on it: a reply shown as still being written (and who asked it, on which server) is one
/// that stopped.
fn safe_metadata(mut metadata: serde_json::Value) -> serde_json::Value {
    if let Some(object) = metadata.as_object_mut() {
        for key in ["askedBy", "server", "lease"] {
            object.remove(key);
        }
        if object.get("status").and_then(|s| s.as_str()) == Some("streaming") {
            object.insert("status".to_owned(), "incomplete".into());
        }
    }
    metadata
}

fn note(chat: &str, id: &str, kind: NoteKind) -> Note {
    Note {
        chat: Some(chat.to_owned()),
        item: Some(id.to_owned()),
        kind,
    }
}
