//! ChatGPT's `conversations.json`: each conversation a `mapping` of nodes (`{id, message,
//! parent, children}`), `current_node` the one the app showed last. A message's `content` has a
//! `content_type`: `text` and `multimodal_text` (its `parts` strings, or image pointers to
//! files of the export's zip), `code` (what the model ran), `execution_output` (what that
//! printed), and kinds kept out of the conversation (browsing, reasoning, errors, the user's
//! custom instructions). Fields come and go between versions: every one is optional here.

use serde_json::Value;

use crate::conversation::{
    clean_id, from_seconds, shown, text_of, FileBytes, FileRef, Head, Note, NoteKind, Notes, Role,
    Source, MAX_FILES_PER_MESSAGE,
};
use crate::read::{too_many_messages, Element, Limits};
use crate::tree::{Kept, Node};

pub(crate) fn read(value: Value, limits: &Limits) -> Element {
    let title = text_of(value.get("title"));
    let shown = shown(title.as_deref().unwrap_or_default());
    let source_id = text_of(value.get("conversation_id"))
        .filter(|id| !id.is_empty())
        .or_else(|| text_of(value.get("id")))
        .unwrap_or_default();
    let source_id = clean_id(&source_id, || fallback_id(&value));
    let Some(mapping) = value.get("mapping").and_then(Value::as_object) else {
        return Err(Note {
            chat: title,
            item: Some(source_id),
            kind: NoteKind::NotAConversation,
        });
    };
    if let Some(note) = too_many_messages(&shown, mapping.len(), limits) {
        return Err(note);
    }
    let mut notes = Notes::default();
    let mut nodes = Vec::with_capacity(mapping.len());
    let mut models = Vec::new();
    for (key, node) in mapping {
        let id = text_of(node.get("id")).unwrap_or_else(|| key.clone());
        let message = node.get("message").filter(|m| m.is_object());
        let time = message
            .and_then(|m| m.get("create_time"))
            .and_then(Value::as_f64)
            .and_then(from_seconds);
        let kept = match message {
            None => None,
            Some(message) => match keep(message) {
                Ok((kept, changed)) => {
                    if let Some(kind) = changed {
                        notes.push(note(&shown, &id, kind));
                    }
                    if let Some(model) = &kept.model {
                        models.push(model.clone());
                    }
                    Some(kept)
                }
                Err(kind) => {
                    notes.push(note(&shown, &id, kind));
                    None
                }
            },
        };
        nodes.push(Node {
            id,
            parent: text_of(node.get("parent")),
            time,
            kept,
        });
    }
    let head = Head {
        source: Source::ChatGpt,
        source_id,
        title,
        created_at: value
            .get("create_time")
            .and_then(Value::as_f64)
            .and_then(from_seconds),
        updated_at: value
            .get("update_time")
            .and_then(Value::as_f64)
            .and_then(from_seconds),
        model: text_of(value.get("default_model_slug")).or(models.pop()),
        current: text_of(value.get("current_node")),
    };
    let mut conversation = head.finish(nodes, notes)?;
    conversation.archived = value.get("is_archived").and_then(Value::as_bool) == Some(true);
    Ok(conversation)
}

fn note(chat: &str, id: &str, kind: NoteKind) -> Note {
    Note {
        chat: Some(chat.to_owned()),
        item: Some(id.to_owned()),
        kind,
    }
}

/// A conversation without an id of its own: named by its creation time and title, which
/// the same export repeats (so importing it again still finds it).
fn fallback_id(value: &Value) -> String {
    format!(
        "{}:{}",
        value
            .get("create_time")
            .map(Value::to_string)
            .unwrap_or_default(),
        text_of(value.get("title")).unwrap_or_default()
    )
}

/// What of a message is kept (and whether in another form), or why none of it is.
fn keep(message: &Value) -> Result<(Kept, Option<NoteKind>), NoteKind> {
    let role = message
        .pointer("/author/role")
        .and_then(Value::as_str)
        .unwrap_or("");
    let metadata = message.get("metadata");
    let hidden = metadata
        .and_then(|m| m.get("is_visually_hidden_from_conversation"))
        .and_then(Value::as_bool)
        == Some(true);
    let content = message.get("content").unwrap_or(&Value::Null);
    let content_type = content
        .get("content_type")
        .and_then(Value::as_str)
        .unwrap_or("text");
    let model = metadata
        .and_then(|m| m.get("model_slug"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let kept = |role, content: String, continues_answer, files| Kept {
        role,
        content,
        model: if role == Role::Assistant {
            model.clone()
        } else {
            None
        },
        metadata: None,
        files,
        continues_answer,
    };
    match (role, content_type) {
        ("system", _) if hidden || content_type != "text" => Err(NoteKind::HiddenSystemMessage),
        (_, "user_editable_context") => Err(NoteKind::HiddenSystemMessage),
        _ if hidden => Err(NoteKind::HiddenSystemMessage),
        _ if content_type.starts_with("tether") || content_type.starts_with("sonic") => {
            Err(NoteKind::BrowsingResult)
        }
        (_, "thoughts" | "reasoning_recap") => Err(NoteKind::Reasoning),
        (_, "system_error") => Err(NoteKind::ErrorMessage),
        ("assistant", "code") => {
            let language = content
                .get("language")
                .and_then(Value::as_str)
                .filter(|l| *l != "unknown")
                .unwrap_or("");
            let text = text_of(content.get("text")).unwrap_or_default();
            if text.trim().is_empty() {
                return Err(NoteKind::EmptyMessage);
            }
            Ok((
                kept(Role::Assistant, fenced(language, &text), true, vec![]),
                Some(NoteKind::CodeAsBlock),
            ))
        }
        ("tool", "execution_output") => {
            let text = text_of(content.get("text")).unwrap_or_default();
            if text.trim().is_empty() {
                return Err(NoteKind::EmptyMessage);
            }
            Ok((
                kept(Role::Assistant, fenced("", &text), true, vec![]),
                Some(NoteKind::ToolOutputAsText),
            ))
        }
        ("tool", _) => Err(NoteKind::ToolMessage),
        ("user" | "assistant" | "system", "text" | "multimodal_text") => {
            let (text, files, missing) = parts(content);
            if text.trim().is_empty() && files.is_empty() {
                return Err(if missing {
                    NoteKind::FileNotInExport
                } else {
                    NoteKind::EmptyMessage
                });
            }
            let role = match role {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                _ => Role::System,
            };
            // The model's words after its own code run are the rest of that answer.
            Ok((kept(role, text, role == Role::Assistant, files), None))
        }
        _ => Err(NoteKind::UnknownContent),
    }
}

fn fenced(language: &str, text: &str) -> String {
    // A fence longer than any run of backticks inside.
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!(
        "{fence}{language}\n{}\n{fence}",
        text.trim_end_matches('\n')
    )
}

/// The text of `parts`, and the files its image pointers name (in the export's zip as
/// `<file id>-<name>` or `<file id>.<ext>`, found by the archive reader by prefix).
fn parts(content: &Value) -> (String, Vec<FileRef>, bool) {
    let mut text = Vec::new();
    let mut files = Vec::new();
    let mut missing = false;
    let parts = content
        .get("parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for part in parts {
        match part {
            Value::String(s) => text.push(s.clone()),
            Value::Object(object) => match object.get("content_type").and_then(Value::as_str) {
                Some("image_asset_pointer") => {
                    let pointer = object
                        .get("asset_pointer")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    match pointer.rsplit_once("://") {
                        // One message's images, as many as a message may carry.
                        Some(_) if files.len() == MAX_FILES_PER_MESSAGE => missing = true,
                        Some((_, file)) if !file.is_empty() => files.push(FileRef {
                            name: file.to_owned(),
                            bytes: FileBytes::InArchive(file.to_owned()),
                        }),
                        _ => missing = true,
                    }
                }
                Some("audio_transcription") => {
                    if let Some(t) = object.get("text").and_then(Value::as_str) {
                        text.push(t.to_owned());
                    }
                }
                _ => missing = true,
            },
            _ => {}
        }
    }
    if text.is_empty() {
        if let Some(t) = content.get("text").and_then(Value::as_str) {
            text.push(t.to_owned());
        }
    }
    (text.join("\n"), files, missing)
}
