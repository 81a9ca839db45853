//! Open WebUI's chat export: a list of its chat rows `{id, title, chat, created_at,
//! updated_at, archived, pinned, meta: {tags}}` (one row for a single chat), whose `chat` holds
//! `history: {messages: {id: {id, parentId, childrenIds, role, content, timestamp, model,
//! files}}, currentId}` (the tree, and the message shown last) beside a flat `messages` list.
//! Versions before the tree have only that list; some tools hand out the `chat` alone.
//! Images come as data URLs in a message's `files`, and are kept as files.

use base64::Engine;
use serde_json::Value;

use crate::conversation::{
    clean_id, shown, text_of, time_of, FileBytes, FileRef, Head, Note, NoteKind, Notes, Role,
    Source, MAX_FILES_PER_MESSAGE,
};
use crate::read::{too_many_messages, Element, Limits};
use crate::tree::{Kept, Node};

pub(crate) fn read(value: Value, limits: &Limits) -> Element {
    let (row, chat) = match value.get("chat").filter(|c| c.is_object()) {
        Some(chat) => (&value, chat),
        None => (&value, &value),
    };
    let title = text_of(row.get("title")).or_else(|| text_of(chat.get("title")));
    let shown = shown(title.as_deref().unwrap_or_default());
    let source_id = text_of(row.get("id"))
        .filter(|id| !id.is_empty())
        .or_else(|| text_of(chat.get("id")))
        .unwrap_or_default();
    let source_id = clean_id(&source_id, || {
        format!(
            "{}:{shown}",
            text_of(chat.get("timestamp")).unwrap_or_default()
        )
    });
    let history = chat.get("history");
    let tree = history
        .and_then(|h| h.get("messages"))
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty());
    // The tree, or (before it) the flat list, each message following the one before.
    let listed: Vec<(String, Option<String>, &Value)> = match tree {
        Some(tree) => tree
            .iter()
            .map(|(key, m)| {
                let id = text_of(m.get("id")).unwrap_or_else(|| key.clone());
                (id, text_of(m.get("parentId")), m)
            })
            .collect(),
        None => {
            let list = chat
                .get("messages")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut previous = None;
            list.iter()
                .enumerate()
                .map(|(i, m)| {
                    let id = text_of(m.get("id")).unwrap_or_else(|| format!("#{i}"));
                    let parent = previous.replace(id.clone());
                    (id, parent, m)
                })
                .collect()
        }
    };
    if let Some(note) = too_many_messages(&shown, listed.len(), limits) {
        return Err(note);
    }
    let mut notes = Notes::default();
    let mut nodes = Vec::with_capacity(listed.len());
    let mut last = None;
    for (id, parent, message) in listed {
        let mut note = |kind| {
            notes.push(Note {
                chat: Some(shown.clone()),
                item: Some(id.clone()),
                kind,
            })
        };
        let role = match message.get("role").and_then(Value::as_str) {
            Some("user") => Some(Role::User),
            Some("assistant") => Some(Role::Assistant),
            Some("system") => Some(Role::System),
            _ => None,
        };
        // The blocks are Open WebUI's own writing into its answers; a person's words are kept.
        let content = content_of(message.get("content"));
        let content = match role {
            Some(Role::Assistant) => {
                let (content, set_aside) = without_blocks(&content);
                for kind in set_aside {
                    note(kind);
                }
                content
            }
            _ => content,
        };
        let files = files_of(message, &mut note);
        let kept = match role {
            None => {
                note(NoteKind::ToolMessage);
                None
            }
            Some(_) if content.trim().is_empty() && files.is_empty() => {
                note(NoteKind::EmptyMessage);
                None
            }
            Some(role) => Some(Kept {
                role,
                content,
                model: (role == Role::Assistant)
                    .then(|| text_of(message.get("model")))
                    .flatten(),
                metadata: None,
                files,
                continues_answer: false,
            }),
        };
        last = Some(id.clone());
        nodes.push(Node {
            id,
            parent,
            time: message.get("timestamp").and_then(time_of),
            kept,
        });
    }
    let current = if tree.is_some() {
        history.and_then(|h| text_of(h.get("currentId")))
    } else {
        last
    };
    let mut conversation = Head {
        source: Source::OpenWebUi,
        source_id,
        title,
        created_at: row
            .get("created_at")
            .and_then(time_of)
            .or_else(|| chat.get("timestamp").and_then(time_of)),
        updated_at: row.get("updated_at").and_then(time_of),
        model: chat
            .get("models")
            .and_then(Value::as_array)
            .and_then(|m| m.first())
            .and_then(|m| text_of(Some(m))),
        current,
    }
    .finish(nodes, notes)?;
    conversation.archived = row.get("archived").and_then(Value::as_bool) == Some(true);
    conversation.pinned = row.get("pinned").and_then(Value::as_bool) == Some(true);
    // The chat's own system prompt (its controls' `params.system`; `system` before them).
    let system = chat
        .pointer("/params/system")
        .or_else(|| chat.get("system"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(system) = system {
        conversation.settings = serde_json::json!({ "systemPrompt": system });
    }
    let tags = row
        .pointer("/meta/tags")
        .or_else(|| chat.get("tags"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    conversation.tags = tags
        .iter()
        .filter_map(|t| text_of(Some(t)).or_else(|| text_of(t.get("name"))))
        .filter(|t| !t.trim().is_empty())
        .take(20)
        .collect();
    Ok(conversation)
}

/// A message's `content`: text, or (in some versions) a list of `{type: text, text}` parts.
fn content_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// `content` without the blocks Open WebUI writes into an answer around its words
/// (`<details type="reasoning|tool_calls|code_interpreter" …>…</details>`, shown folded in its
/// page): the model's reasoning and its tool calls are left out, the code it ran kept as the
/// fenced code inside; what was set aside, once for each kind. Open WebUI closes each block on
/// a line of its own and quotes the reasoning inside (`> …`), so the first line that is
/// `</details>` ends a block (one pass over the text, whatever it holds).
fn without_blocks(content: &str) -> (String, Vec<NoteKind>) {
    const OPEN: &str = "<details type=\"";
    const CLOSE: &str = "\n</details>";
    let mut kept = String::with_capacity(content.len());
    let mut kinds = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let kind = match after.split('"').next() {
            Some("reasoning") => NoteKind::Reasoning,
            Some("tool_calls") => NoteKind::ToolMessage,
            Some("code_interpreter") => NoteKind::CodeAsBlock,
            _ => {
                kept.push_str(&rest[..start + OPEN.len()]);
                rest = after;
                continue;
            }
        };
        let block = &rest[start..];
        // An unfinished block (a reply cut off while it thought) is kept as it is.
        let Some(end) = closing_line(block, CLOSE) else {
            break;
        };
        kept.push_str(&rest[..start]);
        if kind == NoteKind::CodeAsBlock {
            kept.push_str(code_of(&block[..end]));
            kept.push('\n');
        }
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
        rest = block[end..].strip_prefix('\n').unwrap_or(&block[end..]);
    }
    if kinds.is_empty() {
        return (content.to_owned(), kinds);
    }
    kept.push_str(rest);
    (kept.trim().to_owned(), kinds)
}

/// Where the first line of `text` that is `close` (after its line break) ends; each match is
/// looked at once.
fn closing_line(text: &str, close: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(close) {
        let end = from + at + close.len();
        if matches!(text.as_bytes().get(end), None | Some(b'\n' | b'\r')) {
            return Some(end);
        }
        from = end;
    }
    None
}

/// The fenced code inside a `code_interpreter` block: what follows its `<summary>` line, up
/// to its `</details>`.
fn code_of(block: &str) -> &str {
    let inner = block.strip_suffix("</details>").unwrap_or(block);
    let inner = inner
        .find("</summary>")
        .map_or("", |at| &inner[at + "</summary>".len()..]);
    inner.trim()
}

/// The images a message carried as data URLs; others (files kept by Open WebUI itself) are
/// said and left out.
fn files_of(message: &Value, note: &mut impl FnMut(NoteKind)) -> Vec<FileRef> {
    let mut files = Vec::new();
    for (i, file) in message
        .get("files")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if files.len() == MAX_FILES_PER_MESSAGE {
            note(NoteKind::FileNotKept);
            continue;
        }
        let url = file.get("url").and_then(Value::as_str).unwrap_or("");
        match data_url(url) {
            Some(bytes) => files.push(FileRef {
                name: text_of(file.get("name")).unwrap_or_else(|| format!("image-{}", i + 1)),
                bytes: FileBytes::Inline(bytes),
            }),
            None => note(NoteKind::FileNotInExport),
        }
    }
    files
}

/// The bytes of a base64 `data:` URL.
fn data_url(url: &str) -> Option<Vec<u8>> {
    let rest = url.strip_prefix("data:")?;
    let (head, data) = rest.split_once(',')?;
    if !head.ends_with(";base64") {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()
}
