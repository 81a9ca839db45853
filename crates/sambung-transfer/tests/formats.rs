//! Exports in each service's documented shape (several versions where it changed), read
//! into conversations; and files no export is, refused with their reason.

use sambung_transfer::{
    read_conversations, Conversation, FileBytes, Limits, Note, NoteKind, ReadError, Role, Source,
};
use serde_json::{json, Value};

fn read(value: &Value) -> (Vec<Conversation>, Vec<Note>) {
    read_bytes(value.to_string().as_bytes(), &Limits::default()).unwrap()
}

fn read_bytes(bytes: &[u8], limits: &Limits) -> Result<(Vec<Conversation>, Vec<Note>), ReadError> {
    let mut chats = Vec::new();
    let mut refused = Vec::new();
    read_conversations(bytes, limits, |element| {
        match element {
            Ok(c) => chats.push(c),
            Err(n) => refused.push(n),
        }
        true
    })?;
    Ok((chats, refused))
}

fn path(c: &Conversation) -> Vec<(Role, &str)> {
    c.messages
        .iter()
        .filter(|m| m.on_path)
        .map(|m| (m.role, m.content.as_str()))
        .collect()
}

fn kinds(c: &Conversation) -> Vec<NoteKind> {
    c.notes.iter().map(|n| n.kind).collect()
}

/// `c` says each of `expected` of what it left out or changed.
fn says(c: &Conversation, expected: &[NoteKind]) {
    for kind in expected {
        assert!(kinds(c).contains(kind), "{kind:?} in {:?}", kinds(c));
    }
}

/// A ChatGPT node.
fn node(id: &str, parent: Option<&str>, children: &[&str], message: Value) -> (String, Value) {
    (
        id.to_owned(),
        json!({"id": id, "message": message, "parent": parent, "children": children}),
    )
}

fn gpt_message(id: &str, role: &str, time: Option<f64>, content: Value, metadata: Value) -> Value {
    json!({
        "id": id, "author": {"role": role, "name": null, "metadata": {}},
        "create_time": time, "update_time": null, "content": content,
        "status": "finished_successfully", "end_turn": true, "weight": 1.0,
        "metadata": metadata, "recipient": "all"
    })
}

fn text(parts: &[&str]) -> Value {
    json!({"content_type": "text", "parts": parts})
}

#[test]
fn chatgpt_2023_the_branch_shown_becomes_the_chat_and_the_other_is_kept_off_it() {
    let mapping: serde_json::Map<String, Value> = [
        node("root", None, &["sys"], Value::Null),
        node(
            "sys",
            Some("root"),
            &["u1"],
            gpt_message(
                "sys",
                "system",
                Some(1_700_000_000.0),
                text(&[""]),
                json!({"is_visually_hidden_from_conversation": true}),
            ),
        ),
        node(
            "u1",
            Some("sys"),
            &["a1", "a2"],
            gpt_message(
                "u1",
                "user",
                Some(1_700_000_001.5),
                text(&["Name a colour"]),
                json!({}),
            ),
        ),
        node(
            "a1",
            Some("u1"),
            &[],
            gpt_message(
                "a1",
                "assistant",
                Some(1_700_000_002.0),
                text(&["Red"]),
                json!({"model_slug": "gpt-4"}),
            ),
        ),
        node(
            "a2",
            Some("u1"),
            &["u2"],
            gpt_message(
                "a2",
                "assistant",
                Some(1_700_000_010.0),
                text(&["Blue"]),
                json!({"model_slug": "gpt-4"}),
            ),
        ),
        node(
            "u2",
            Some("a2"),
            &[],
            gpt_message(
                "u2",
                "user",
                Some(1_700_000_020.0),
                text(&["Why?"]),
                json!({}),
            ),
        ),
    ]
    .into_iter()
    .collect();
    // The user went back to the first answer: that branch is the one shown.
    let export = json!([{
        "title": "Colours", "create_time": 1_700_000_000.0, "update_time": 1_700_000_030.0,
        "mapping": mapping, "moderation_results": [], "current_node": "a1",
        "plugin_ids": null, "conversation_id": "c-1", "conversation_template_id": null, "id": "c-1"
    }]);
    let (chats, refused) = read(&export);
    assert!(refused.is_empty());
    let chat = &chats[0];
    assert_eq!(
        (chat.source, chat.source_id.as_str(), chat.title.as_str()),
        (Source::ChatGpt, "c-1", "Colours")
    );
    assert_eq!(
        path(chat),
        [(Role::User, "Name a colour"), (Role::Assistant, "Red")]
    );
    assert_eq!(chat.messages.len(), 4, "the other branch is kept");
    let blue = chat.messages.iter().find(|m| m.content == "Blue").unwrap();
    assert!(!blue.on_path);
    assert_eq!(chat.messages[blue.parent.unwrap()].content, "Name a colour");
    assert_eq!(blue.model.as_deref(), Some("gpt-4"));
    assert_eq!(kinds(chat), [NoteKind::HiddenSystemMessage]);
}

#[test]
fn chatgpt_2024_code_output_images_browsing_and_missing_times_are_each_handled_and_said() {
    let mapping: serde_json::Map<String, Value> = [
        node("root", None, &["ctx"], Value::Null),
        node(
            "ctx",
            Some("root"),
            &["u1"],
            gpt_message("ctx", "user", None, json!({"content_type": "user_editable_context", "user_profile": "I am Ana", "user_instructions": ""}), json!({"is_visually_hidden_from_conversation": true})),
        ),
        node(
            "u1",
            Some("ctx"),
            &["code"],
            gpt_message("u1", "user", Some(1_710_000_000.0), json!({"content_type": "multimodal_text", "parts": [
                {"content_type": "image_asset_pointer", "asset_pointer": "file-service://file-AbC123", "size_bytes": 1000, "width": 10, "height": 10, "fovea": null, "metadata": null},
                "Plot this"
            ]}), json!({})),
        ),
        node("code", Some("u1"), &["out"], gpt_message("code", "assistant", Some(1_710_000_001.0), json!({"content_type": "code", "language": "python", "text": "print(1)"}), json!({"model_slug": "gpt-4o"}))),
        node("out", Some("code"), &["think"], gpt_message("out", "tool", Some(1_710_000_002.0), json!({"content_type": "execution_output", "text": "1"}), json!({}))),
        node("think", Some("out"), &["web"], gpt_message("think", "assistant", Some(1_710_000_003.0), json!({"content_type": "thoughts", "thoughts": []}), json!({}))),
        node("web", Some("think"), &["a1"], gpt_message("web", "tool", Some(1_710_000_004.0), json!({"content_type": "tether_browsing_display", "result": "…", "summary": null}), json!({}))),
        node("a1", Some("web"), &["err"], gpt_message("a1", "assistant", None, text(&["It prints 1."]), json!({"model_slug": "gpt-4o"}))),
        node("err", Some("a1"), &[], gpt_message("err", "assistant", Some(1_710_000_009.0), json!({"content_type": "system_error", "name": "x", "text": "boom"}), json!({}))),
    ]
    .into_iter()
    .collect();
    let export = json!([{"title": "Plot", "create_time": 1_710_000_000.0, "update_time": null, "mapping": mapping, "current_node": "err", "id": "c-2", "default_model_slug": "gpt-4o"}]);
    let (chats, _) = read(&export);
    let chat = &chats[0];
    // The code, its output and the answer are one answer: the user sees them as one.
    assert_eq!(
        path(chat),
        [
            (Role::User, "Plot this"),
            (
                Role::Assistant,
                "```python\nprint(1)\n```\n\n```\n1\n```\n\nIt prints 1."
            )
        ]
    );
    let image = &chat.messages[0].files[0];
    assert_eq!(image.bytes, FileBytes::InArchive("file-AbC123".into()));
    says(
        chat,
        &[
            NoteKind::HiddenSystemMessage,
            NoteKind::CodeAsBlock,
            NoteKind::ToolOutputAsText,
            NoteKind::Reasoning,
            NoteKind::BrowsingResult,
            NoteKind::ErrorMessage,
            NoteKind::TimeMissing,
        ],
    );
    assert_eq!(chat.model.as_deref(), Some("gpt-4o"));
}

#[test]
fn a_chatgpt_conversation_of_nothing_but_null_messages_is_said_not_kept() {
    let export = json!([{"title": "Empty", "mapping": {"r": {"id": "r", "message": null, "parent": null, "children": []}}, "id": "c-3"}]);
    let (chats, refused) = read(&export);
    assert!(chats.is_empty());
    assert_eq!(refused[0].kind, NoteKind::NoMessages);
}

#[test]
fn claude_old_and_new_exports() {
    let old = json!([{
        "uuid": "k-1", "name": "Haiku", "created_at": "2024-03-01T10:00:00.000000Z", "updated_at": "2024-03-01T10:05:00.000000Z",
        "account": {"uuid": "acc"},
        "chat_messages": [
            {"uuid": "m1", "text": "Write a haiku", "sender": "human", "created_at": "2024-03-01T10:00:00.000000Z", "updated_at": "2024-03-01T10:00:00.000000Z", "attachments": [], "files": []},
            {"uuid": "m2", "text": "Autumn moonlight", "sender": "assistant", "created_at": "2024-03-01T10:00:05.000000Z", "updated_at": "2024-03-01T10:00:05.000000Z", "attachments": [], "files": []}
        ]
    }]);
    let (chats, _) = read(&old);
    assert_eq!(
        path(&chats[0]),
        [
            (Role::User, "Write a haiku"),
            (Role::Assistant, "Autumn moonlight")
        ]
    );
    assert_eq!(chats[0].source, Source::Claude);

    let new = json!([{
        "uuid": "k-2", "name": "", "created_at": "2025-05-01T10:00:00Z", "updated_at": "2025-05-01T10:10:00Z",
        "chat_messages": [
            {"uuid": "m1", "text": "", "content": [{"type": "text", "text": "Summarise the notes"}], "sender": "human", "created_at": "2025-05-01T10:00:00Z",
             "parent_message_uuid": "00000000-0000-4000-8000-000000000000",
             "attachments": [{"file_name": "notes.txt", "file_size": 5, "file_type": "txt", "extracted_content": "a b c"}], "files": [{"file_name": "photo.jpg"}]},
            {"uuid": "m2", "text": "", "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "First try"}], "sender": "assistant", "created_at": "2025-05-01T10:00:05Z", "parent_message_uuid": "m1"},
            {"uuid": "m3", "text": "", "content": [{"type": "text", "text": "Second try"}], "sender": "assistant", "created_at": "2025-05-01T10:01:00Z", "parent_message_uuid": "m1"}
        ]
    }]);
    let (chats, _) = read(&new);
    let chat = &chats[0];
    assert_eq!(
        path(chat),
        [
            (Role::User, "Summarise the notes\n\n[notes.txt]\n\na b c"),
            (Role::Assistant, "Second try")
        ]
    );
    assert_eq!(chat.messages.len(), 3);
    assert_eq!(chat.title, "Summarise the notes [notes.txt] a b c");
    says(
        chat,
        &[
            NoteKind::AttachmentAsText,
            NoteKind::FileNotInExport,
            NoteKind::Reasoning,
            NoteKind::TitleMissing,
        ],
    );
}

#[test]
fn open_webui_tree_flat_list_and_bare_chat() {
    let png = "data:image/png;base64,iVBORw0KGgo=";
    let tree = json!([{
        "id": "w-1", "user_id": "u", "title": "Llamas", "created_at": 1_720_000_000, "updated_at": 1_720_000_100,
        "share_id": null, "archived": false, "pinned": true, "meta": {"tags": ["animals"]}, "folder_id": null,
        "chat": {
            "id": "", "title": "Llamas", "models": ["llama3:8b"], "params": {"system": "You are a zoologist."},
            "history": {"currentId": "a1", "messages": {
                "u1": {"id": "u1", "parentId": null, "childrenIds": ["a1", "a2"], "role": "user", "content": "Tell me about llamas", "timestamp": 1_720_000_000, "files": [{"type": "image", "url": png}]},
                "a1": {"id": "a1", "parentId": "u1", "childrenIds": [], "role": "assistant", "content": "Llamas are camelids.", "model": "llama3:8b", "timestamp": 1_720_000_010},
                "a2": {"id": "a2", "parentId": "u1", "childrenIds": [], "role": "assistant", "content": "They hum.", "model": "llama3:8b", "timestamp": 1_720_000_050}
            }},
            "messages": [], "tags": [], "timestamp": 1_720_000_000_000u64
        }
    }]);
    let (chats, _) = read(&tree);
    let chat = &chats[0];
    assert_eq!(
        (chat.source, chat.source_id.as_str()),
        (Source::OpenWebUi, "w-1")
    );
    // The earlier answer is the one shown (currentId), the later kept beside it.
    assert_eq!(
        path(chat),
        [
            (Role::User, "Tell me about llamas"),
            (Role::Assistant, "Llamas are camelids.")
        ]
    );
    assert_eq!(chat.messages.len(), 3);
    assert!(chat.pinned);
    assert_eq!(chat.tags, ["animals"]);
    assert_eq!(
        chat.settings,
        json!({"systemPrompt": "You are a zoologist."})
    );
    assert!(
        matches!(&chat.messages[0].files[0].bytes, FileBytes::Inline(b) if b.starts_with(b"\x89PNG"))
    );

    let flat = json!([{"id": "w-2", "title": "Old", "chat": {"title": "Old", "timestamp": 1_700_000_000_000u64, "messages": [
        {"id": "x", "role": "user", "content": "hi", "timestamp": 1_700_000_000},
        {"id": "y", "role": "assistant", "content": "hello", "timestamp": 1_700_000_001}
    ]}}]);
    let (chats, _) = read(&flat);
    assert_eq!(
        path(&chats[0]),
        [(Role::User, "hi"), (Role::Assistant, "hello")]
    );

    // One chat, not in a list: the chat object alone.
    let bare = json!({"id": "w-3", "title": "Bare", "history": {"currentId": "b", "messages": {
        "a": {"id": "a", "parentId": null, "role": "user", "content": "q", "timestamp": 1_700_000_000},
        "b": {"id": "b", "parentId": "a", "role": "assistant", "content": "r", "timestamp": 1_700_000_001}
    }}});
    let (chats, _) = read(&bare);
    assert_eq!(chats[0].source_id, "w-3");
    assert_eq!(path(&chats[0]).len(), 2);
}

#[test]
fn chatgpt_2025_tool_calls_are_left_out_and_what_they_made_is_kept() {
    let call = |recipient: &str, text: &str| {
        let mut m = gpt_message(
            "c",
            "assistant",
            Some(1_750_000_001.0),
            json!({"content_type": "code", "language": "unknown", "text": text}),
            json!({}),
        );
        m["recipient"] = json!(recipient);
        m
    };
    let canvas =
        json!({"name": "my_fib\n# *Title*", "type": "code/python", "content": "def fib(n):\n    return n"})
            .to_string();
    let mapping: serde_json::Map<String, Value> = [
        node("root", None, &["mem"], Value::Null),
        node("mem", Some("root"), &["u1"], gpt_message("mem", "user", None, json!({"content_type": "model_editable_context", "model_set_context": "Likes Fibonacci"}), json!({}))),
        node("u1", Some("mem"), &["search"], gpt_message("u1", "user", Some(1_750_000_000.0), json!({"content_type": "multimodal_text", "parts": [
            {"content_type": "audio_transcription", "text": "Find fib and remember me", "direction": "in"},
            {"content_type": "audio_asset_pointer", "asset_pointer": "sediment://file_0000audio"}
        ]}), json!({}))),
        node("search", Some("u1"), &["bio"], call("web.run", "search(\"fib\")")),
        node("bio", Some("search"), &["doc"], call("bio", "Likes fib")),
        node("doc", Some("bio"), &["a1"], call("canmore.create_textdoc", &canvas)),
        node("a1", Some("doc"), &[], gpt_message("a1", "assistant", Some(1_750_000_002.0), text(&["Done.\u{e200}cite\u{e202}turn0search1\u{e201} See above.\u{e200}unfinished"]), json!({}))),
    ]
    .into_iter()
    .collect();
    let export = json!([{"title": "Fib", "mapping": mapping, "current_node": "a1", "id": "c-25"}]);
    let (chats, _) = read(&export);
    let chat = &chats[0];
    assert_eq!(
        path(chat),
        [
            (Role::User, "Find fib and remember me"),
            (
                Role::Assistant,
                "**my\\_fib # \\*Title\\***\n\n```python\ndef fib(n):\n    return n\n```\n\nDone. See above.\u{e200}unfinished"
            )
        ]
    );
    says(
        chat,
        &[
            NoteKind::ToolMessage,
            NoteKind::CodeAsBlock,
            NoteKind::FileNotInExport,
            NoteKind::HiddenSystemMessage,
        ],
    );
    assert!(!kinds(chat).contains(&NoteKind::UnknownContent));
}

#[test]
fn claude_artifacts_pictures_and_blocks_it_cannot_show() {
    let export = json!([{
        "uuid": "k-3", "name": "Tools", "created_at": "2025-06-01T10:00:00Z", "updated_at": "2025-06-01T10:10:00Z",
        "chat_messages": [
            {"uuid": "m1", "text": "", "content": [{"type": "text", "text": ""}], "sender": "human", "created_at": "2025-06-01T10:00:00Z",
             "attachments": [], "files": [{"file_name": "cat.png"}]},
            {"uuid": "m2", "text": "Here it is\n\n```\nThis block is not supported on your current device yet.\n```", "sender": "assistant", "created_at": "2025-06-01T10:00:05Z",
             "content": [
                {"type": "text", "text": "Here it is"},
                {"type": "tool_use", "name": "artifacts", "input": {"id": "a", "command": "create", "type": "application/vnd.ant.code", "language": "rust\n```\nhi", "title": "Main", "content": "fn main() {}"}},
                {"type": "tool_use", "name": "web_search", "input": {"query": "cats"}},
                {"type": "tool_result", "name": "web_search", "content": []}
             ]},
            {"uuid": "m3", "text": "```\nThis block is not supported on your current device yet.\n```", "sender": "human", "created_at": "2025-06-01T10:01:00Z",
             "content": [{"type": "tool_use", "name": "web_search", "input": {}}]},
            {"uuid": "m4", "text": "Old style\n\n```\nThis block is not supported on your current device yet.\n```", "sender": "assistant", "created_at": "2025-06-01T10:02:00Z"}
        ]
    }]);
    let (chats, _) = read(&export);
    let chat = &chats[0];
    assert_eq!(
        path(chat),
        [
            (Role::User, "[cat.png]"),
            (
                Role::Assistant,
                "Here it is\n\n**Main**\n\n```rusthi\nfn main() {}\n```"
            ),
            (Role::Assistant, "Old style")
        ]
    );
    says(
        chat,
        &[
            NoteKind::FileNotInExport,
            NoteKind::CodeAsBlock,
            NoteKind::ToolMessage,
            NoteKind::EmptyMessage,
        ],
    );
}

#[test]
fn open_webui_reasoning_and_tool_blocks_are_set_aside_and_code_kept() {
    let answer = "<details type=\"reasoning\" done=\"true\" duration=\"2\">\n<summary>Thought for 2 seconds</summary>\n> hmm\n> <details>nested</details>\n</details>\n\
        <details type=\"tool_calls\" done=\"true\" id=\"t\" name=\"get_time\" arguments=\"{}\" result=\"&quot;noon&quot;\">\n<summary>Tool Executed</summary>\n</details>\n\
        It is noon.\n\
        <details type=\"code_interpreter\" done=\"true\" output=\"2\">\n<summary>Analyzed</summary>\n```python\nprint(1 + 1)\n```\n</details>\n\
        That printed 2. <details type=\"other\">kept</details>";
    let export = json!([{"id": "w-9", "title": "Think", "chat": {"history": {"currentId": "a", "messages": {
        "u": {"id": "u", "parentId": null, "role": "user", "content": "Time?", "timestamp": 1_740_000_000},
        "a": {"id": "a", "parentId": "u", "role": "assistant", "content": answer, "timestamp": 1_740_000_001},
        "c": {"id": "c", "parentId": "a", "role": "assistant", "content": "<details type=\"reasoning\" done=\"false\">\n<summary>Thinking…</summary>\n> still", "timestamp": 1_740_000_002},
        "d": {"id": "d", "parentId": "c", "role": "user", "content": "<details type=\"reasoning\">\nmine\n</details>\nkept", "timestamp": 1_740_000_003},
        "e": {"id": "e", "parentId": "d", "role": "assistant", "content": "<details type=\"reasoning\">\n> a\n</details>: not its end\n</details>\nAnswer", "timestamp": 1_740_000_004}
    }}}}]);
    let (chats, _) = read(&export);
    let chat = &chats[0];
    assert_eq!(
        path(chat)[1],
        (
            Role::Assistant,
            "It is noon.\n```python\nprint(1 + 1)\n```\nThat printed 2. <details type=\"other\">kept</details>"
        )
    );
    // A reply cut off while it thought is kept as it was written.
    assert!(chat.messages[2]
        .content
        .starts_with("<details type=\"reasoning\" done=\"false\">"));
    // A block ends at a line that is `</details>`, not one that starts with it.
    assert_eq!(chat.messages[4].content, "Answer");
    // A person's words are theirs, whatever they look like.
    assert_eq!(
        chat.messages[3].content,
        "<details type=\"reasoning\">\nmine\n</details>\nkept"
    );
    // A block opened again and again and never closed is read in one pass (it took time
    // growing with the square of its length), and kept as written.
    let bomb = format!(
        "<details type=\"reasoning\">\n{}",
        "<details type=\"tool_calls\"\n".repeat(60_000)
    );
    let export = json!([{"id": "w-10", "title": "Bomb", "chat": {"messages": [
        {"id": "u", "role": "user", "content": "q"},
        {"id": "a", "role": "assistant", "content": bomb}
    ]}}]);
    let (chats, _) = read(&export);
    assert_eq!(chats[0].messages[1].content, bomb);
    says(
        chat,
        &[
            NoteKind::Reasoning,
            NoteKind::ToolMessage,
            NoteKind::CodeAsBlock,
        ],
    );
}

#[test]
fn something_else_in_the_list_is_said_and_the_rest_read() {
    let export = json!([{"hello": "world"}, {"id": "w", "title": "T", "chat": {"messages": [{"id": "a", "role": "user", "content": "q"}]}}]);
    let (chats, refused) = read(&export);
    assert_eq!(chats.len(), 1);
    assert_eq!(refused[0].kind, NoteKind::NotAConversation);
}

#[test]
fn hostile_files_are_refused_with_their_reason() {
    let limits = Limits::default();
    // Nested deeper than any export: refused by the parser's depth limit, not the stack.
    let deep = format!("[{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    let err = read_bytes(deep.as_bytes(), &limits).unwrap_err();
    assert!(
        matches!(&err, ReadError::NotJson { reason, .. } if reason.contains("recursion")),
        "{err}"
    );
    // Invalid UTF-8 inside a string.
    let err = read_bytes(b"[{\"title\": \"\xff\xfe\", \"mapping\": {}}]", &limits).unwrap_err();
    assert!(matches!(err, ReadError::NotJson { .. }), "{err}");
    // A conversation larger than the limit, without holding it.
    let small = Limits {
        conversation_bytes: 1 << 20,
        ..limits
    };
    let big = format!("[{{\"title\": \"{}\"}}]", "a".repeat(2 << 20));
    assert_eq!(
        read_bytes(big.as_bytes(), &small).unwrap_err(),
        ReadError::ConversationTooLarge { limit_mib: 1 }
    );
    // Small text that parses into many values: refused by what it would take in memory.
    let values = Limits {
        conversation_memory: 1 << 20,
        ..limits
    };
    let zeros = format!(
        "[{{\"title\": \"z\", \"mapping\": {{}}, \"z\": [{}0]}}]",
        "0,".repeat(100_000)
    );
    assert!(zeros.len() < 1 << 20);
    assert_eq!(
        read_bytes(zeros.as_bytes(), &values).unwrap_err(),
        ReadError::ConversationTooMuchMemory { limit_mib: 1 }
    );
    // Each object takes a node of its own, whatever its text.
    let objects = format!(
        "[{{\"title\": \"o\", \"mapping\": {{}}, \"o\": [{}{{}}]}}]",
        "{\"a\":0},".repeat(2_000)
    );
    assert!(objects.len() < 20_000);
    assert_eq!(
        read_bytes(objects.as_bytes(), &values).unwrap_err(),
        ReadError::ConversationTooMuchMemory { limit_mib: 1 }
    );
    // A conversation of 20 MiB of pictures (as Open WebUI keeps them: data URLs, twice) reads.
    let picture = format!("data:image/png;base64,{}", "A".repeat(10 << 20));
    let pictures = json!([{"id": "w-big", "title": "Photos", "chat": {"history": {"currentId": "a", "messages": {
        "a": {"id": "a", "parentId": null, "role": "user", "content": "look", "files": [{"type": "image", "url": picture}]}
    }}, "messages": [{"id": "a", "role": "user", "content": "look", "files": [{"type": "image", "url": picture}]}]}}]);
    let (chats, refused) = read(&pictures);
    assert_eq!((chats.len(), refused.len()), (1, 0));
    // Too many conversations.
    let few = Limits {
        conversations: 2,
        ..limits
    };
    assert_eq!(
        read_bytes(b"[{},{},{}]", &few).unwrap_err(),
        ReadError::TooManyConversations { limit: 2 }
    );
    // Not an export at all.
    assert_eq!(
        read_bytes(b"{\"a\": 1}", &limits).unwrap_err(),
        ReadError::NotAnExport
    );
    assert!(matches!(
        read_bytes(b"\"text\"", &limits).unwrap_err(),
        ReadError::NotJson { .. }
    ));
    assert!(matches!(
        read_bytes(b"[{}] trailing", &limits).unwrap_err(),
        ReadError::NotJson { .. }
    ));
}

/// Half an emoji as an escape (`"\ud83d"`: an exporter that cut a string between the halves,
/// or Python's `json` writing a string that holds one) is valid JSON text but no Unicode;
/// serde_json alone refuses the whole file for it. It is read as the replacement character,
/// and a whole emoji written as a pair of escapes is read whole.
#[test]
fn half_an_emoji_is_read_as_the_replacement_character_not_a_refusal() {
    let file = r#"[{"uuid": "k-1", "name": "Cut \ud83d", "created_at": "2024-03-01T10:00:00Z", "updated_at": "2024-03-01T10:05:00Z",
        "chat_messages": [
            {"uuid": "m1", "text": "Smile \ud83d\ude00 and \ude00 \\ud83d", "sender": "human", "created_at": "2024-03-01T10:00:00Z"},
            {"uuid": "m2", "text": "Ok", "sender": "assistant", "created_at": "2024-03-01T10:00:05Z"}
        ]}]"#;
    assert!(
        serde_json::from_str::<Value>(file).is_err(),
        "serde_json alone refuses it"
    );
    let (chats, refused) = read_bytes(file.as_bytes(), &Limits::default()).unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(chats[0].title, "Cut \u{fffd}");
    assert_eq!(
        path(&chats[0]),
        [
            (Role::User, "Smile 😀 and \u{fffd} \\ud83d"),
            (Role::Assistant, "Ok")
        ]
    );
}
