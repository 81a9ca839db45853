//! Our JSON export of a chat: every message of its tree with its metadata, which branch is
//! shown, its folder, tags and settings, and its files (as entries of the account's zip).
//! Read back, it gives the same chat: the ids are kept as the source's ids.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::conversation::{
    Conversation, FileBytes, FileRef, Message, Note, NoteKind, Role, Source,
};
use crate::read::{too_many_messages, Element, Limits};

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
    let mut notes = Vec::new();
    let mut at = std::collections::HashMap::new();
    let mut messages = Vec::with_capacity(export.messages.len());
    for m in export.messages {
        let role = match m.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "system" => Role::System,
            _ => {
                notes.push(note(&export.title, &m.id, NoteKind::UnknownContent));
                continue;
            }
        };
        let parent = match &m.parent_id {
            None => None,
            Some(p) => match at.get(p) {
                Some(i) => Some(*i),
                None => {
                    notes.push(note(&export.title, &m.id, NoteKind::Unreachable));
                    continue;
                }
            },
        };
        if at.contains_key(&m.id) {
            notes.push(note(&export.title, &m.id, NoteKind::RepeatedId));
            continue;
        }
        at.insert(m.id.clone(), messages.len());
        let model = m
            .metadata
            .as_ref()
            .and_then(|meta| meta.get("model"))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        messages.push(Message {
            source_id: m.id,
            parent,
            role,
            content: m.content,
            model,
            created_at: m.created_at,
            on_path: m.on_path,
            metadata: m.metadata,
            files: m
                .files
                .into_iter()
                .map(|f| FileRef {
                    name: f.name,
                    bytes: FileBytes::InArchive(f.path),
                })
                .collect(),
        });
    }
    if messages.is_empty() {
        return Err(note(&export.title, &export.id, NoteKind::NoMessages));
    }
    Ok(Conversation {
        source: Source::Sambung,
        source_id: export.id,
        title: export.title,
        created_at: export.created_at,
        updated_at: export.updated_at,
        model: Some(export.model),
        provider: export.provider,
        settings: export.settings,
        folder: export.folder,
        tags: export.tags,
        pinned: export.pinned,
        archived: export.archived,
        messages,
        notes,
    })
}

fn note(chat: &str, id: &str, kind: NoteKind) -> Note {
    Note {
        chat: Some(chat.to_owned()),
        item: Some(id.to_owned()),
        kind,
    }
}
