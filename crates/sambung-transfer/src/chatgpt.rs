//! ChatGPT's `conversations.json`: each conversation a `mapping` of nodes (`{id, message,
//! parent, children}`), `current_node` the one the app showed last. A message's `content` has a
//! `content_type`: `text` and `multimodal_text` (its `parts` strings, or image pointers to
//! files of the export's zip), `code` (what the model ran), `execution_output` (what that
//! printed), and kinds kept out of the conversation (browsing, reasoning, errors, the user's
//! custom instructions). An assistant message addressed to a tool (`recipient` other than
//! `all`, or `python` for the code it runs) is the model's own call (a search, a memory, an
//! image's prompt), not part of its answer; the images a tool made are. Fields come and go
//! between versions: every one is optional here.

use serde_json::Value;

use crate::conversation::{
    clean_id, fenced, from_seconds, shown, text_of, titled, FileBytes, FileRef, Head, Note,
    NoteKind, Notes, Role, Source, MAX_FILES_PER_MESSAGE,
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
    let recipient = message
        .get("recipient")
        .and_then(Value::as_str)
        .unwrap_or("all");
    match (role, content_type) {
        ("system", _) if hidden || content_type != "text" => Err(NoteKind::HiddenSystemMessage),
        // The user's custom instructions, and what the model remembers of them.
        (_, "user_editable_context" | "model_editable_context") => {
            Err(NoteKind::HiddenSystemMessage)
        }
        _ if hidden => Err(NoteKind::HiddenSystemMessage),
        _ if content_type.starts_with("tether") || content_type.starts_with("sonic") => {
            Err(NoteKind::BrowsingResult)
        }
        (_, "thoughts" | "reasoning_recap") => Err(NoteKind::Reasoning),
        (_, "system_error") => Err(NoteKind::ErrorMessage),
        // What the model sends a tool (a search, a memory, an image's prompt) is not its answer;
        // the code it runs (`python`, `python_user_visible`) is.
        ("assistant", _) if recipient != "all" && !recipient.starts_with("python") => {
            canvas_document(recipient, content)
                .map(|text| {
                    (
                        kept(Role::Assistant, text, true, vec![]),
                        Some(NoteKind::CodeAsBlock),
                    )
                })
                .ok_or(NoteKind::ToolMessage)
        }
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
        // The images an image tool made belong to the answer; its other words do not.
        ("tool", "multimodal_text") => {
            let (_, files, _) = parts(content);
            if files.is_empty() {
                return Err(NoteKind::ToolMessage);
            }
            Ok((kept(Role::Assistant, String::new(), true, files), None))
        }
        ("tool", _) => Err(NoteKind::ToolMessage),
        ("user" | "assistant" | "system", "text" | "multimodal_text") => {
            let (text, mut files, missing) = parts(content);
            attachments(metadata, &mut files);
            let text = without_citations(&text);
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
            // The model's words after its own code run are the rest of that answer. A part
            // the export holds no file for (a voice chat's audio) is said.
            let dropped = missing.then_some(NoteKind::FileNotInExport);
            Ok((kept(role, text, role == Role::Assistant, files), dropped))
        }
        _ => Err(NoteKind::UnknownContent),
    }
}

/// The document a canvas call writes (`canmore.create_textdoc`: `{name, type, content}`), as
/// the user saw it: code fenced in its language, prose as it is. Other tool calls: none.
fn canvas_document(recipient: &str, content: &Value) -> Option<String> {
    /// The call's fields read, all others skipped unread (the text is the export's: a list of
    /// a million values here must not be built).
    #[derive(serde::Deserialize)]
    struct Call {
        name: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        content: Option<String>,
    }
    if recipient != "canmore.create_textdoc" {
        return None;
    }
    let call: Call = serde_json::from_str(content.get("text")?.as_str()?).ok()?;
    let document = call.content.filter(|d| !d.trim().is_empty())?;
    let body = match call.kind.as_deref().and_then(|t| t.strip_prefix("code/")) {
        Some(language) => fenced(language, &document),
        None => document,
    };
    Some(titled(call.name.as_deref().unwrap_or_default(), body))
}

/// Files a message carries beside its parts (`metadata.attachments`: documents, and the same
/// images its parts point to), each in the export's zip under its id as a prefix.
fn attachments(metadata: Option<&Value>, files: &mut Vec<FileRef>) {
    let listed = metadata
        .and_then(|m| m.get("attachments"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for attachment in listed {
        let Some(id) = text_of(attachment.get("id")).filter(|id| !id.is_empty()) else {
            continue;
        };
        let named = |f: &FileRef| matches!(&f.bytes, FileBytes::InArchive(p) if *p == id);
        if files.len() == MAX_FILES_PER_MESSAGE || files.iter().any(named) {
            continue;
        }
        let name = text_of(attachment.get("name")).filter(|n| !n.trim().is_empty());
        files.push(FileRef {
            name: name.unwrap_or_else(|| id.clone()),
            bytes: FileBytes::InArchive(id),
        });
    }
}

/// `text` without the citation marks ChatGPT's search answers carry (`\u{e200}cite\u{e202}
/// turn0search3\u{e201}`: private-use characters around a reference the export does not
/// resolve), which would show as stray words.
fn without_citations(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('\u{e200}') {
        kept.push_str(&rest[..start]);
        match rest[start..].find('\u{e201}') {
            Some(end) => rest = &rest[start + end + '\u{e201}'.len_utf8()..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    kept.push_str(rest);
    kept
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
