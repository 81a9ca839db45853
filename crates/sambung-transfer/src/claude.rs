//! Claude's export (`conversations.json` of its zip): each conversation `{uuid, name,
//! created_at, chat_messages}`, a message `{uuid, sender: human|assistant, text, content,
//! created_at, attachments, files}`. Older exports have only `text`; newer ones a `content`
//! list (`text`, `thinking`, `tool_use`, `tool_result`) and `parent_message_uuid`, which makes
//! the messages a tree (its root's parent is a zero uuid no message has).

use serde_json::Value;

use crate::conversation::{
    clean_id, shown, text_of, time_of, Head, Note, NoteKind, Notes, Role, Source,
};
use crate::read::{too_many_messages, Element, Limits};
use crate::tree::{Kept, Node};

pub(crate) fn read(value: Value, limits: &Limits) -> Element {
    let title = text_of(value.get("name"));
    let shown = shown(title.as_deref().unwrap_or_default());
    let source_id = clean_id(&text_of(value.get("uuid")).unwrap_or_default(), || {
        format!(
            "{}:{shown}",
            text_of(value.get("created_at")).unwrap_or_default()
        )
    });
    let messages = value
        .get("chat_messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some(note) = too_many_messages(&shown, messages.len(), limits) {
        return Err(note);
    }
    let mut notes = Notes::default();
    let mut nodes = Vec::with_capacity(messages.len());
    let mut previous: Option<String> = None;
    for (i, message) in messages.iter().enumerate() {
        let id = text_of(message.get("uuid")).unwrap_or_else(|| format!("#{i}"));
        // Without parents, the messages follow one another.
        let parent = match message.get("parent_message_uuid") {
            Some(parent) => text_of(Some(parent)),
            None => previous.clone(),
        };
        let mut note = |kind| {
            notes.push(Note {
                chat: Some(shown.clone()),
                item: Some(id.clone()),
                kind,
            })
        };
        let role = match message.get("sender").and_then(Value::as_str) {
            Some("human") => Some(Role::User),
            Some("assistant") => Some(Role::Assistant),
            _ => None,
        };
        let kept = match role {
            None => {
                note(NoteKind::UnknownContent);
                None
            }
            Some(role) => {
                let content = content_of(message, &mut note);
                if content.trim().is_empty() {
                    note(NoteKind::EmptyMessage);
                    None
                } else {
                    Some(Kept {
                        role,
                        content,
                        model: None,
                        metadata: None,
                        files: Vec::new(),
                        continues_answer: false,
                    })
                }
            }
        };
        nodes.push(Node {
            id: id.clone(),
            parent,
            time: message.get("created_at").and_then(time_of),
            kept,
        });
        previous = Some(id);
    }
    Head {
        source: Source::Claude,
        source_id,
        title,
        created_at: value.get("created_at").and_then(time_of),
        updated_at: value.get("updated_at").and_then(time_of),
        model: text_of(value.get("model")),
        current: text_of(value.get("current_leaf_message_uuid")).or(previous),
    }
    .finish(nodes, notes)
}

/// What Claude's export writes in a message's `text` for each block of its `content` that is
/// not text (a tool's use, an artifact).
const NOT_SUPPORTED: &str = "```\nThis block is not supported on your current device yet.\n```";

/// A message's text: its `content` list's text and the documents it wrote (artifacts), or
/// `text` when it has no `content` (older exports), then the text of its attachments;
/// thinking and other tool use are said and left out, files without text too (named, so
/// that a message of nothing but a picture is still there).
fn content_of(message: &Value, note: &mut impl FnMut(NoteKind)) -> String {
    let mut text = Vec::new();
    let parts = message
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = part.get("text").and_then(Value::as_str) {
                    text.push(t.to_owned());
                }
            }
            Some("thinking") => note(NoteKind::Reasoning),
            Some("tool_use") => match artifact(part) {
                Some(document) => {
                    text.push(document);
                    note(NoteKind::CodeAsBlock);
                }
                None => note(NoteKind::ToolMessage),
            },
            Some("tool_result") => note(NoteKind::ToolMessage),
            _ => note(NoteKind::UnknownContent),
        }
    }
    if parts.is_empty() {
        text = text_of(message.get("text"))
            .map(|t| t.replace(NOT_SUPPORTED, "").trim().to_owned())
            .into_iter()
            .collect();
    }
    text.retain(|t| !t.trim().is_empty());
    for attachment in message
        .get("attachments")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = text_of(attachment.get("file_name")).unwrap_or_default();
        match text_of(attachment.get("extracted_content")) {
            Some(content) if !content.is_empty() => {
                text.push(format!("[{name}]\n\n{content}"));
                note(NoteKind::AttachmentAsText);
            }
            _ => note(NoteKind::FileNotInExport),
        }
    }
    let files = message
        .get("files")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !files.is_empty() {
        note(NoteKind::FileNotInExport);
        if text.is_empty() {
            let names = files
                .iter()
                .filter_map(|f| text_of(f.get("file_name")))
                .map(|name| format!("[{name}]"));
            text.push(names.collect::<Vec<_>>().join(" "));
        }
    }
    text.join("\n\n")
}

/// The document an artifact's creation (or rewrite) holds, under its title: code fenced in
/// its language. Other tools' use: none.
fn artifact(part: &Value) -> Option<String> {
    if part.get("name").and_then(Value::as_str) != Some("artifacts") {
        return None;
    }
    let input = part.get("input")?;
    if !matches!(
        input.get("command").and_then(Value::as_str),
        Some("create" | "rewrite")
    ) {
        return None;
    }
    let content = input.get("content")?.as_str()?;
    if content.trim().is_empty() {
        return None;
    }
    let language = text_of(input.get("language")).unwrap_or_default();
    let body = match (input.get("type").and_then(Value::as_str), language.as_str()) {
        (Some("text/markdown"), _) => content.to_owned(),
        (_, language) => crate::conversation::fenced(language, content),
    };
    let title = text_of(input.get("title")).unwrap_or_default();
    Some(crate::conversation::titled(&title, body))
}
