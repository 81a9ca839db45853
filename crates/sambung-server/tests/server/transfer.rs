//! Data in and out: exports of each service imported (their branches, their files), the same
//! file twice adding nothing, our own export read back, and hostile files refused whole.

use std::io::{Cursor, Read, Write};

use sambung_files::fixtures::png;
use serde_json::{json, Value};

use crate::common::{self, Client, Reply, TestApp};

async fn import(client: &Client, name: &str, bytes: Vec<u8>) -> Reply {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
    let form = reqwest::multipart::Form::new().part("file", part);
    client
        .send(
            client
                .http
                .post(client.url("/api/v1/imports"))
                .multipart(form),
        )
        .await
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            (entry.name().to_owned(), data)
        })
        .collect()
}

/// A ChatGPT export of one conversation: a question with an image, answered twice (the
/// first answer is the one the user left showing), a hidden system message and a null root.
fn chatgpt_export() -> Value {
    let message = |id: &str, role: &str, time: f64, content: Value, meta: Value| {
        json!({"id": id, "author": {"role": role, "metadata": {}}, "create_time": time, "content": content,
               "status": "finished_successfully", "metadata": meta, "recipient": "all"})
    };
    json!([{
        "title": "Sunset photo", "create_time": 1_715_000_000.0, "update_time": 1_715_000_100.0,
        "conversation_id": "gpt-conv-1", "id": "gpt-conv-1", "current_node": "a1",
        "mapping": {
            "root": {"id": "root", "message": null, "parent": null, "children": ["sys"]},
            "sys": {"id": "sys", "parent": "root", "children": ["u1"],
                    "message": message("sys", "system", 1_715_000_000.0, json!({"content_type": "text", "parts": [""]}), json!({"is_visually_hidden_from_conversation": true}))},
            "u1": {"id": "u1", "parent": "sys", "children": ["a1", "a2"],
                   "message": message("u1", "user", 1_715_000_001.0, json!({"content_type": "multimodal_text", "parts": [
                       {"content_type": "image_asset_pointer", "asset_pointer": "file-service://file-Sunset42", "size_bytes": 100, "width": 8, "height": 8},
                       "What is in this photo?"]}), json!({}))},
            "a1": {"id": "a1", "parent": "u1", "children": [],
                   "message": message("a1", "assistant", 1_715_000_002.0, json!({"content_type": "text", "parts": ["A sunset over the sea."]}), json!({"model_slug": "gpt-4o"}))},
            "a2": {"id": "a2", "parent": "u1", "children": [],
                   "message": message("a2", "assistant", 1_715_000_050.0, json!({"content_type": "text", "parts": ["An orange sky."]}), json!({"model_slug": "gpt-4o"}))}
        }
    }])
}

/// A ChatGPT export of `count` conversations like [`chatgpt_export`]'s, each its own.
fn many_chatgpt_conversations(count: usize) -> Vec<u8> {
    let one = chatgpt_export()[0].clone();
    let conversations: Vec<Value> = (0..count)
        .map(|i| {
            let mut conversation = one.clone();
            conversation["id"] = json!(format!("many-{i}"));
            conversation["conversation_id"] = json!(format!("many-{i}"));
            conversation["title"] = json!(format!("Conversation {i}"));
            conversation
        })
        .collect();
    serde_json::to_vec(&conversations).unwrap()
}

async fn chat_titled(client: &Client, title: &str) -> Value {
    let chats = client.get("/api/v1/chats?limit=50").await;
    chats.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", chats.text))
        .iter()
        .find(|c| c["title"] == title)
        .unwrap_or_else(|| panic!("no chat {title} in {}", chats.text))
        .clone()
}

/// The chat titled `title`: what it shows, and the page of its messages (with their files).
async fn read_chat(client: &Client, title: &str) -> (Vec<(String, String)>, Value) {
    let chat = chat_titled(client, title).await;
    let id = chat["id"].as_str().unwrap();
    let page = client.get(&format!("/api/v1/chats/{id}/messages")).await;
    (shown(client, id).await, page.body)
}

/// The kinds of an import summary's notes.
fn note_kinds(notes: &Value) -> Vec<&str> {
    notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect()
}

async fn shown(client: &Client, chat: &str) -> Vec<(String, String)> {
    let page = client.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    page.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_chatgpt_zip_imports_with_its_branch_and_image_and_again_adds_nothing() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let image = png(8, 8);
    let conversations = chatgpt_export().to_string();
    let export = zip_of(&[
        ("conversations.json", conversations.as_bytes()),
        ("file-Sunset42-photo.png", &image),
        ("chat.html", b"<html></html>"),
    ]);
    let done = import(&ana, "chatgpt-export.zip", export.clone()).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["source"], "chatgpt");
    assert_eq!(
        (
            done.body["chats"].as_u64(),
            done.body["messages"].as_u64(),
            done.body["files"].as_u64()
        ),
        (Some(1), Some(3), Some(1))
    );
    let skipped = note_kinds(&done.body["skipped"]);
    assert_eq!(skipped, ["hidden_system_message"]);

    let chat = chat_titled(&ana, "Sunset photo").await;
    let id = chat["id"].as_str().unwrap();
    assert_eq!(
        shown(&ana, id).await,
        [
            ("user".into(), "What is in this photo?".into()),
            ("assistant".into(), "A sunset over the sea.".into())
        ]
    );
    // The other answer is kept beside it, a switch away.
    let tree = ana
        .get(&format!("/api/v1/chats/{id}/messages?branches=all"))
        .await;
    assert_eq!(tree.status, 200, "{}", tree.text);
    let off: Vec<&str> = tree.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["offPath"] == true)
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(off, ["An orange sky."]);
    // The image is the user's file, readable through the chat.
    let page = ana.get(&format!("/api/v1/chats/{id}/messages")).await;
    let file = &page.body["items"][0]["files"][0];
    assert_eq!(file["mediaType"], "image/png", "{}", page.text);
    let bytes = ana
        .http
        .get(ana.url(&format!("/api/v1/files/{}", file["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], &image[..]);

    let before = app.row_counts().await;
    let again = import(&ana, "chatgpt-export.zip", export).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        (
            again.body["chats"].as_u64(),
            again.body["alreadyImported"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(app.row_counts().await, before, "nothing doubles");

    // Another user importing the same file gets their own chat.
    let bo = app.user("bo").await;
    let theirs = import(&bo, "conversations.json", conversations.into_bytes()).await;
    assert_eq!(theirs.body["chats"], 1, "{}", theirs.text);
    // Without the zip, the image is said to be missing and the question kept.
    let missing = note_kinds(&theirs.body["skipped"]);
    assert!(missing.contains(&"file_not_in_export"), "{missing:?}");
}

/// ChatGPT's export of 2026 splits its conversations over `conversations-000.json`,
/// `conversations-001.json`, ... (no `conversations.json`); a document the user attached is in
/// `metadata.attachments` and in the zip under its id; a picture an image tool made is a tool
/// message's part; the model's own call to that tool is not the answer.
#[tokio::test]
async fn a_split_chatgpt_export_imports_every_piece_with_its_documents_and_pictures() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let time = std::cell::Cell::new(1_770_000_000.0);
    let message = |id: &str, role: &str, recipient: &str, content: Value, meta: Value| {
        time.set(time.get() + 1.0);
        json!({"id": id, "author": {"role": role, "name": (role == "tool").then_some("dalle.text2im"), "metadata": {}},
               "create_time": time.get(), "content": content, "status": "finished_successfully",
               "metadata": meta, "recipient": recipient})
    };
    let node = |id: &str, parent: Option<&str>, child: Option<&str>, message: Value| {
        (
            id.to_owned(),
            json!({"id": id, "parent": parent, "children": child.into_iter().collect::<Vec<_>>(), "message": message}),
        )
    };
    let first = json!([{
        "title": "Report", "id": "split-1", "create_time": 1_770_000_000.0, "conversation_id": "split-1", "current_node": "a1",
        "mapping": serde_json::Map::from_iter([
            node("root", None, Some("u1"), Value::Null),
            node("u1", Some("root"), Some("a1"), message("u1", "user", "all",
                json!({"content_type": "text", "parts": ["Summarise this"]}),
                json!({"attachments": [{"id": "file-Doc12345", "name": "notes.txt", "mime_type": "text/plain"}]}))),
            node("a1", Some("u1"), None, message("a1", "assistant", "all",
                json!({"content_type": "text", "parts": ["It says hello.\u{e200}cite\u{e202}turn0file0\u{e201}"]}),
                json!({"model_slug": "gpt-5"}))),
        ])
    }]);
    let second = json!([{
        "title": "Picture", "id": "split-2", "create_time": 1_770_000_000.0, "conversation_id": "split-2", "current_node": "a2",
        "mapping": serde_json::Map::from_iter([
            node("root", None, Some("u1"), Value::Null),
            node("u1", Some("root"), Some("call"), message("u1", "user", "all",
                json!({"content_type": "text", "parts": ["Draw a cat"]}), json!({}))),
            node("call", Some("u1"), Some("img"), message("call", "assistant", "dalle.text2im",
                json!({"content_type": "text", "parts": ["{\"prompt\": \"a cat\"}"]}), json!({}))),
            node("img", Some("call"), Some("a2"), message("img", "tool", "all",
                json!({"content_type": "multimodal_text", "parts": [
                    {"content_type": "image_asset_pointer", "asset_pointer": "sediment://file_00000000cat", "size_bytes": 100, "width": 8, "height": 8}]}),
                json!({}))),
            node("a2", Some("img"), None, message("a2", "assistant", "all",
                json!({"content_type": "text", "parts": ["Here is your cat."]}), json!({}))),
        ])
    }]);
    let image = png(8, 8);
    let (first, second) = (first.to_string(), second.to_string());
    let export = zip_of(&[
        ("conversations-001.json", second.as_bytes()),
        ("conversations-000.json", first.as_bytes()),
        ("conversations.json.index", b"{}"),
        ("export_manifest.json", b"{}"),
        ("file-Doc12345-notes.txt", b"hello"),
        ("user-abc/file_00000000cat-picture.png", &image),
    ]);
    let done = import(&ana, "chatgpt-export.zip", export.clone()).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(
        (done.body["chats"].as_u64(), done.body["files"].as_u64()),
        (Some(2), Some(2)),
        "{}",
        done.text
    );
    // The citation's private-use marks are gone from the answer.
    let (said, page) = read_chat(&ana, "Report").await;
    assert_eq!(
        said,
        [
            ("user".into(), "Summarise this".into()),
            ("assistant".into(), "It says hello.".into())
        ]
    );
    assert_eq!(page["items"][0]["files"][0]["name"], "notes.txt", "{page}");
    let (said, page) = read_chat(&ana, "Picture").await;
    assert_eq!(
        said,
        [
            ("user".into(), "Draw a cat".into()),
            ("assistant".into(), "Here is your cat.".into())
        ]
    );
    assert_eq!(
        page["items"][1]["files"][0]["mediaType"], "image/png",
        "{page}"
    );
    let skipped = note_kinds(&done.body["skipped"]);
    assert_eq!(skipped, ["tool_message"]);
    assert_eq!(done.body["changedCount"], 0, "{}", done.text);

    // Both pieces again: nothing added.
    let again = import(&ana, "chatgpt-export.zip", export).await;
    assert_eq!(again.body["alreadyImported"], 2, "{}", again.text);
    // A zip with neither file says what it looked for.
    let none = import(
        &ana,
        "export.zip",
        zip_of(&[("conversations-x.json", b"[]")]),
    )
    .await;
    assert_eq!(none.status, 400, "{}", none.text);
    assert!(
        none.text.contains("conversations-000.json"),
        "{}",
        none.text
    );
}

/// An import keeps its files on a connection of its own beside its transaction: two people
/// importing at once on a small pool (three) both keep every file (each held one connection
/// and waited for a second, and their files were dropped); a pool too small to spare two is
/// refused at once, saying why, and the server goes on answering.
#[tokio::test]
async fn imports_on_a_small_pool_keep_every_file_or_are_refused_whole() {
    let app = TestApp::with_pool_of(3).await;
    let export = |who: &str| {
        let mut chats = chatgpt_export();
        let mut second = chats[0].clone();
        second["id"] = json!(format!("{who}-2"));
        second["conversation_id"] = second["id"].clone();
        second["title"] = json!("Second photo");
        second["mapping"]["u1"]["message"]["content"]["parts"][0]["asset_pointer"] =
            json!("file-service://file-Second42");
        chats.as_array_mut().unwrap().push(second);
        let conversations = chats.to_string();
        zip_of(&[
            ("conversations.json", conversations.as_bytes()),
            ("file-Sunset42-photo.png", &png(8, 8)),
            ("file-Second42-photo.png", &png(9, 9)),
        ])
    };
    let (ana, bo) = (app.user("ana").await, app.user("bo").await);
    let (a, b) = tokio::join!(
        import(&ana, "a.zip", export("ana")),
        import(&bo, "b.zip", export("bo"))
    );
    for done in [a, b] {
        assert_eq!(done.status, 200, "{}", done.text);
        assert_eq!(done.body["files"], 2, "{}", done.text);
    }

    let app = TestApp::with_pool_of(2).await;
    let ana = app.user("ana").await;
    let refused = import(&ana, "a.zip", export("ana")).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(
        refused.body["code"], "IMPORTS_UNAVAILABLE",
        "{}",
        refused.text
    );
    assert!(
        refused.text.contains("DATABASE_POOL_MAX of at least 3"),
        "{}",
        refused.text
    );
    assert_eq!(ana.get("/api/v1/chats?limit=50").await.status, 200);
}

#[tokio::test]
async fn an_open_webui_export_imports_the_branch_it_showed() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let export = json!([{
        "id": "owui-1", "user_id": "x", "title": "Llamas", "created_at": 1_720_000_000, "updated_at": 1_720_000_100,
        "archived": false, "pinned": false, "meta": {"tags": ["animals"]},
        "chat": {"title": "Llamas", "models": ["llama3:8b"], "history": {"currentId": "a2", "messages": {
            "u1": {"id": "u1", "parentId": null, "childrenIds": ["a1", "a2"], "role": "user", "content": "Llamas?", "timestamp": 1_720_000_000},
            "a1": {"id": "a1", "parentId": "u1", "childrenIds": [], "role": "assistant", "content": "First answer", "model": "llama3:8b", "timestamp": 1_720_000_010},
            "a2": {"id": "a2", "parentId": "u1", "childrenIds": [], "role": "assistant", "content": "Second answer", "model": "llama3:8b", "timestamp": 1_720_000_020}
        }}, "messages": []}
    }]);
    let done = import(&ana, "chat-export.json", export.to_string().into_bytes()).await;
    assert_eq!(
        (done.status, done.body["source"].as_str()),
        (200, Some("openwebui")),
        "{}",
        done.text
    );
    let chat = chat_titled(&ana, "Llamas").await;
    assert_eq!(
        shown(&ana, chat["id"].as_str().unwrap()).await,
        [
            ("user".into(), "Llamas?".into()),
            ("assistant".into(), "Second answer".into())
        ]
    );
    let detail = ana
        .get(&format!("/api/v1/chats/{}", chat["id"].as_str().unwrap()))
        .await;
    assert_eq!(detail.body["tags"][0]["name"], "animals", "{}", detail.text);
}

#[tokio::test]
async fn our_exports_read_back_into_the_same_chats() {
    let app = TestApp::start().await;
    let (ana, _) = app.user_with_model("ana").await;
    // A model that sees images, for a turn with one.
    let models = ana.get("/api/v1/models").await;
    let model = &models.body["items"][0];
    let seeing = ana
        .patch(
            &format!("/api/v1/models/{}", model["id"].as_str().unwrap()),
            json!({"provider": "openai", "modelId": "gpt-test", "name": "Test", "baseUrl": app.provider.url("/v1"),
                   "apiKeyId": model["apiKeyId"], "isDefault": true, "settings": {"vision": true}}),
        )
        .await;
    assert_eq!(seeing.status, 200, "{}", seeing.text);
    let created = ana
        .post(
            "/api/v1/chats",
            json!({"title": "Plans *for* [May]", "model": "m", "provider": "openai"}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let image = png(4, 4);
    let part = reqwest::multipart::Part::bytes(image.clone()).file_name("map.png");
    let file = ana
        .send(
            ana.http
                .post(ana.url("/api/v1/files"))
                .multipart(reqwest::multipart::Form::new().part("file", part)),
        )
        .await;
    assert_eq!(file.status, 201, "{}", file.text);
    for text in ["First question", "Second question"] {
        let posted = ana
            .post(
                &format!("/api/v1/chats/{id}/messages"),
                json!({"content": text}),
            )
            .await;
        assert_eq!(posted.status, 201, "{}", posted.text);
    }
    // A file on a message, through a turn's files.
    let (status, body, _) = ana
        .generate(
            &id,
            json!({"content": "Look at this", "files": [file.body["id"]]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let md = ana
        .get(&format!("/api/v1/chats/{id}/export?format=md"))
        .await;
    assert_eq!(md.status, 200);
    assert!(
        md.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"Plans-for-May.md\""),
        "{:?}",
        md.headers
    );
    assert!(md.text.starts_with("# Plans *for* [May]\n"), "{}", md.text);
    assert!(
        md.text.contains("## User · ") && md.text.contains("First question"),
        "{}",
        md.text
    );
    assert!(
        md.text.contains(&format!(
            "- [map.png](</api/v1/files/{}>)",
            file.body["id"].as_str().unwrap()
        )),
        "{}",
        md.text
    );
    let json = ana
        .get(&format!("/api/v1/chats/{id}/export?format=json"))
        .await;
    assert_eq!(json.body["format"], "sambung-chat/chat");
    assert_eq!(
        json.body["messages"].as_array().unwrap().len(),
        4,
        "{}",
        json.text
    );
    assert_eq!(
        ana.get(&format!("/api/v1/chats/{id}/export?format=pdf"))
            .await
            .status,
        400
    );
    let bo = app.user("bo").await;
    assert_eq!(
        bo.get(&format!("/api/v1/chats/{id}/export?format=json"))
            .await
            .status,
        404
    );

    // Into the same account: it is there already.
    let same = import(&ana, "chat.json", json.text.clone().into_bytes()).await;
    assert_eq!(
        (
            same.body["chats"].as_u64(),
            same.body["alreadyImported"].as_u64()
        ),
        (Some(0), Some(1)),
        "{}",
        same.text
    );

    // The account as a zip, streamed: its chats, their Markdown, the file, prompts, models.
    let prompt = ana
        .post(
            "/api/v1/prompts",
            json!({"name": "Review", "content": "Review {code}"}),
        )
        .await;
    assert_eq!(prompt.status, 201, "{}", prompt.text);
    let response = ana
        .http
        .post(ana.url("/api/v1/me/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let zip = unzip(&response.bytes().await.unwrap());
    let names: Vec<&str> = zip.keys().map(String::as_str).collect();
    for wanted in [
        "chats.json",
        "prompts.json",
        "models.json",
        "folders.json",
        "tags.json",
        "manifest.json",
    ] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    let kept = format!("files/{}/map.png", file.body["id"].as_str().unwrap());
    assert_eq!(zip[&kept], image);
    let models = String::from_utf8(zip["models.json"].clone()).unwrap();
    assert!(
        !models.to_lowercase().contains("key\""),
        "no keys: {models}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("chats/Plans-for-May-") && n.ends_with(".md")),
        "{names:?}"
    );

    // Into another account: the same chat, its file, its prompts.
    let zip_bytes = ana
        .http
        .post(ana.url("/api/v1/me/export"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let moved = import(&bo, "export.zip", zip_bytes.clone()).await;
    assert_eq!(
        (
            moved.status,
            moved.body["chats"].as_u64(),
            moved.body["files"].as_u64(),
            moved.body["prompts"].as_u64()
        ),
        (200, Some(1), Some(1), Some(1)),
        "{}",
        moved.text
    );
    let theirs = chat_titled(&bo, "Plans *for* [May]").await;
    assert_ne!(theirs["id"], id.as_str(), "the id is taken: a new one");
    let again = bo
        .get(&format!(
            "/api/v1/chats/{}/export?format=json",
            theirs["id"].as_str().unwrap()
        ))
        .await;
    let contents = |v: &Value| {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["role"].clone(),
                    m["content"].clone(),
                    m["onPath"].clone(),
                    m["files"].as_array().unwrap().len(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(contents(&again.body), contents(&json.body));
    let twice = import(&bo, "export.zip", zip_bytes).await;
    assert_eq!(
        (
            twice.body["chats"].as_u64(),
            twice.body["alreadyImported"].as_u64(),
            twice.body["prompts"].as_u64()
        ),
        (Some(0), Some(1), Some(0)),
        "{}",
        twice.text
    );
}

#[tokio::test]
async fn prompts_go_out_and_in_in_upstreams_format() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    ana.post(
        "/api/v1/prompts",
        json!({"name": "Review", "content": "Review {code}", "category": "coding"}),
    )
    .await;
    let out = ana.get("/api/v1/prompts/export").await;
    assert_eq!(out.body[0]["name"], "Review", "{}", out.text);
    assert_eq!(out.body[0]["variables"], json!(["code"]));
    assert_eq!(out.body[0]["isPublic"], false);
    // Upstream's import form: a clashing name becomes "Review (1)"; the same prompt is not added.
    let body = json!({"prompts": [{"name": "Review", "content": "Review {code}"}, {"name": "Review", "content": "Check {code} twice", "category": "coding"}]});
    let done = ana
        .raw(
            reqwest::Method::POST,
            "/api/v1/prompts/import",
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(
        (done.body["added"].as_u64(), done.body["unchanged"].as_u64()),
        (Some(1), Some(1)),
        "{}",
        done.text
    );
    let names: Vec<String> = ana
        .get("/api/v1/prompts/export")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"Review (1)".to_owned()), "{names:?}");
    // A name with a bracket of its own is kept as it is, and found again the next time.
    let bracket = json!([{"name": "Review (Python)", "content": "Review {code} in Python"}])
        .to_string()
        .into_bytes();
    for added in [1, 0] {
        let done = ana
            .raw(
                reqwest::Method::POST,
                "/api/v1/prompts/import",
                Some("application/json"),
                bracket.clone(),
            )
            .await;
        assert_eq!(done.body["added"].as_u64(), Some(added), "{}", done.text);
    }
    let names = ana.get("/api/v1/prompts/export").await.text;
    assert!(names.contains("\"Review (Python)\""), "{names}");
    let bad = ana
        .raw(
            reqwest::Method::POST,
            "/api/v1/prompts/import",
            Some("application/json"),
            br#"[{"name":"","content":"x"}]"#.to_vec(),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(bad.text.contains("prompt 0"), "{}", bad.text);
}

#[tokio::test]
async fn hostile_files_are_refused_whole_with_their_reason() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let refused = |reply: &Reply, status: u16, words: &str| {
        assert_eq!(reply.status, status, "{}", reply.text);
        assert!(
            reply.body["message"].as_str().unwrap_or("").contains(words),
            "{words:?} in {}",
            reply.text
        );
    };
    // A good conversation followed by a broken one: nothing of the file is kept.
    let good = chatgpt_export()[0].clone();
    let half = format!("[{good}, {{\"mapping\": ");
    refused(
        &import(&ana, "c.json", half.into_bytes()).await,
        400,
        "nothing was imported",
    );
    // Nested deeper than any export.
    let deep = format!("[{}{}]", "[".repeat(50_000), "]".repeat(50_000));
    refused(
        &import(&ana, "c.json", deep.into_bytes()).await,
        400,
        "recursion",
    );
    // Not UTF-8.
    refused(
        &import(
            &ana,
            "c.json",
            b"[{\"title\": \"\xc3\x28\", \"mapping\": {}}]".to_vec(),
        )
        .await,
        400,
        "not JSON",
    );
    // A name that climbs out of the archive.
    let escape = zip_of(&[("../../etc/conversations.json", b"[]")]);
    refused(&import(&ana, "x.zip", escape).await, 400, "outside itself");
    // A zip bomb: 600 MiB of spaces in a small file, stopped at the limit.
    let mut bomb = zip::ZipWriter::new(Cursor::new(Vec::new()));
    bomb.start_file(
        "conversations.json",
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true),
    )
    .unwrap();
    bomb.write_all(b"[").unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..600 {
        bomb.write_all(&spaces).unwrap();
    }
    bomb.write_all(b"]").unwrap();
    let bomb = bomb.finish().unwrap().into_inner();
    assert!(bomb.len() < 4 << 20, "{}", bomb.len());
    refused(
        &import(&ana, "bomb.zip", bomb).await,
        400,
        "unpacks to more than 512 MiB",
    );
    // Larger than an import may be: refused before it is all read.
    let huge = vec![b' '; (256 << 20) + 1];
    let reply = import(&ana, "huge.json", huge).await;
    assert_eq!(
        (reply.status, reply.code()),
        (413, "IMPORT_TOO_LARGE"),
        "{}",
        reply.text
    );
    // Neither an export nor a zip.
    refused(
        &import(&ana, "x.json", br#"{"hello": "world"}"#.to_vec()).await,
        400,
        "neither",
    );
    refused(&import(&ana, "x.json", Vec::new()).await, 400, "empty");
    assert_eq!(chat_count(&app).await, 0, "nothing was kept of any of them");
}

async fn chat_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM chats")
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_team_is_exported_by_its_admins_only() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let team = ana
        .post("/api/v1/teams", json!({"name": "Crew", "slug": "crew"}))
        .await;
    let team_id = team.body["id"].as_str().unwrap().to_owned();
    let bo = app.user("bo").await;
    app.join_team(&ana, "crew", &bo).await;
    let chat = bo
        .post(
            "/api/v1/chats",
            json!({"title": "Team plans", "model": "m", "provider": "openai", "team": team_id}),
        )
        .await;
    assert_eq!(chat.status, 201, "{}", chat.text);
    let member = bo
        .send(
            bo.http
                .post(bo.url(&format!("/api/v1/teams/{team_id}/export"))),
        )
        .await;
    assert_eq!(member.status, 403, "{}", member.text);
    let admin = ana
        .http
        .post(ana.url(&format!("/api/v1/teams/{team_id}/export")))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    let zip = unzip(&admin.bytes().await.unwrap());
    let chats: Value = serde_json::from_slice(&zip["chats.json"]).unwrap();
    assert_eq!(chats[0]["title"], "Team plans");
    assert!(
        !zip.contains_key("prompts.json"),
        "a team's export holds its chats only"
    );
}

/// A new user brings their ChatGPT and Open WebUI chats in through Settings, sees each with
/// the branch it showed, imports a file again (nothing doubles), and takes a chat out as
/// Markdown and their account as a zip.
#[tokio::test]
async fn a_user_imports_and_exports_in_chromium() {
    use sambung_testkit::browser::Browser;
    let app = TestApp::start().await;
    let browser = Browser::start().await;
    browser.client.goto(&app.url).await.unwrap();
    browser.click("#auth-switch").await;
    common::sign_up_in(&browser, "Ana").await;
    browser.element(common::APP_DRAWN).await;
    browser.click("#open-settings").await;

    let dir = tempfile::tempdir().unwrap();
    let chatgpt = dir.path().join("conversations.json");
    std::fs::write(&chatgpt, chatgpt_export().to_string()).unwrap();
    let choose = |path: std::path::PathBuf| choose_import(&browser, path);
    choose(chatgpt.clone()).await;
    browser
        .until_text(
            "#import-counts",
            "Imported from ChatGPT. Chats: 1, messages: 3",
        )
        .await;
    browser.click("#import-skipped-title").await;
    let notes = browser.texts("#import-skipped li").await;
    assert!(
        notes.iter().any(|n| n.contains("a hidden system message")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("a file the export does not include")),
        "{notes:?}"
    );
    browser.screenshot(screenshot("import-summary.png")).await;

    choose(chatgpt).await;
    browser.until_text("#import-counts", "Nothing new").await;

    let owui = dir.path().join("chat-export.json");
    std::fs::write(&owui, json!([{"id": "w-9", "title": "Llamas", "created_at": 1_720_000_000, "chat": {"history": {"currentId": "b", "messages": {
        "a": {"id": "a", "parentId": null, "role": "user", "content": "Llamas?", "timestamp": 1_720_000_000},
        "b": {"id": "b", "parentId": "a", "role": "assistant", "content": "They hum.", "timestamp": 1_720_000_001}}}}}]).to_string()).unwrap();
    choose(owui.clone()).await;
    browser
        .until_text("#import-counts", "Imported from Open WebUI. Chats: 1,")
        .await;

    // A broken file: said where it was chosen; the choice stays to try again.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "[{\"mapping\": ").unwrap();
    choose(broken).await;
    browser
        .until_text("#import-status.error", "nothing was imported")
        .await;

    browser.click("#close-settings").await;
    let open = "const link = [...document.querySelectorAll('#chat-list a[data-chat]')].find(a => a.textContent === 'Sunset photo'); if (link) link.click(); return !!link;";
    browser
        .until("the imported chat in the list", open, |v| v == &json!(true))
        .await;
    until_says(&browser, "#messages", "A sunset over the sea.").await;
    let shown = browser.text("#messages").await;
    assert!(
        !shown.contains("An orange sky."),
        "the other branch is not shown: {shown}"
    );

    browser.click("#chat-menu-button").await;
    browser.click("#export-chat-md").await;
    let md = browser.downloaded("Sunset-photo.md").await;
    assert!(md.starts_with("# Sunset photo\n"), "{md}");

    browser.click("#open-settings").await;
    browser.click("#export-account").await;
    browser.until_text("#export-status", "Exported").await;
    browser.close().await;

    // Another person at a phone's width in the dark theme: the section and its summary fit.
    let phone = Browser::start_dark().await;
    phone.client.set_window_size(390, 844).await.unwrap();
    phone.client.goto(&app.url).await.unwrap();
    phone.click("#auth-switch").await;
    common::sign_up_in(&phone, "Bo").await;
    phone.element(common::APP_DRAWN).await;
    phone.click("#open-settings").await;
    // A large export: once uploaded, how far the server has come is shown as it goes.
    let many = dir.path().join("many").join("conversations.json");
    std::fs::create_dir(many.parent().unwrap()).unwrap();
    std::fs::write(&many, many_chatgpt_conversations(1_500)).unwrap();
    let choose_phone = |path: std::path::PathBuf| choose_import(&phone, path);
    choose_phone(many).await;
    phone
        .until_text("#import-status", "of the file read;")
        .await;
    phone
        .client
        .execute(
            "document.querySelector('#import-status').scrollIntoView({block: 'center'});",
            vec![],
        )
        .await
        .unwrap();
    phone
        .screenshot(screenshot("import-progress-phone-dark.png"))
        .await;
    let counts = "return document.querySelector('#import-counts').innerText;";
    for waited in 0.. {
        let said = phone.client.execute(counts, vec![]).await.unwrap();
        if said.as_str().is_some_and(|s| s.contains("Chats: 1,500,")) {
            break;
        }
        assert!(waited < 600, "the large import did not end: {said}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    choose_phone(owui).await;
    phone
        .until_text("#import-counts", "Imported from Open WebUI. Chats: 1,")
        .await;
    let fits = "const s = document.querySelector('#import-form').closest('section'); const r = s.getBoundingClientRect(); return document.documentElement.scrollWidth <= window.innerWidth && r.left >= 0 && r.right <= window.innerWidth;";
    phone
        .until_text("#storage-used", "Your files take 0 bytes of")
        .await;
    phone
        .until("the import section within the phone's width", fits, |v| {
            v == &json!(true)
        })
        .await;
    phone
        .client
        .execute(
            "document.querySelector('#import-form').closest('section').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    phone
        .screenshot(screenshot("import-summary-phone-dark.png"))
        .await;
    phone.close().await;
}

/// Choose `path` in the Import form and send it.
async fn choose_import(browser: &sambung_testkit::browser::Browser, path: std::path::PathBuf) {
    browser
        .element("#import-file")
        .await
        .send_keys(path.to_str().unwrap())
        .await
        .unwrap();
    browser.click("#import-submit").await;
}

async fn until_says(browser: &sambung_testkit::browser::Browser, css: &str, wanted: &str) {
    let script = format!(
        "const e = document.querySelector({}); return e ? e.innerText : null;",
        serde_json::to_string(css).unwrap()
    );
    browser
        .until(&format!("{css} to say {wanted:?}"), &script, |v| {
            v.as_str().is_some_and(|t| t.contains(wanted))
        })
        .await;
}

fn screenshot(file: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("screenshots")
        .join(file)
}

/// What a hostile file could make of the import's own rules: an empty id, one image named a
/// thousand times, a reply that claims to be still streaming for someone else, a path that
/// forks, another person's ids, a second import at once.
#[tokio::test]
async fn an_imports_rules_hold_against_a_file_made_to_break_them() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let bo = app.user("bo").await;

    // An empty id and a title of a megabyte: kept under a name of its own, notes cut short.
    let mut export = chatgpt_export();
    export[0]["conversation_id"] = json!("");
    export[0]["id"] = json!("");
    export[0]["title"] = json!("T".repeat(1 << 20));
    let done = import(&ana, "c.json", export.to_string().into_bytes()).await;
    assert_eq!(
        (done.status, done.body["chats"].as_u64()),
        (200, Some(1)),
        "{}",
        &done.text[..done.text.len().min(500)]
    );
    assert!(
        done.text.len() < 64 << 10,
        "notes repeat a short title: {} bytes",
        done.text.len()
    );
    let again = import(&ana, "c.json", export.to_string().into_bytes()).await;
    assert_eq!(
        again.body["alreadyImported"],
        1,
        "{}",
        &again.text[..again.text.len().min(500)]
    );

    // One image named a thousand times in one message: kept once, attached at most as often
    // as a message may carry files.
    let mut many = chatgpt_export();
    let parts: Vec<Value> = (0..1000)
        .map(|_| json!({"content_type": "image_asset_pointer", "asset_pointer": "file-service://file-Sunset42"}))
        .chain([json!("So many")])
        .collect();
    many[0]["mapping"]["u1"]["message"]["content"]["parts"] = json!(parts);
    many[0]["conversation_id"] = json!("gpt-many");
    let conversations = many.to_string();
    let image = png(8, 8);
    let zip = zip_of(&[
        ("conversations.json", conversations.as_bytes()),
        ("file-Sunset42.png", &image),
    ]);
    let done = import(&bo, "many.zip", zip).await;
    assert_eq!(
        (done.status, done.body["files"].as_u64()),
        (200, Some(1)),
        "{}",
        &done.text[..done.text.len().min(800)]
    );
    let attached: i64 = sqlx::query_scalar("SELECT count(*) FROM message_files mf JOIN files f ON f.id = mf.file_id JOIN users u ON u.id = f.user_id WHERE u.email = $1")
        .bind(&bo.email)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(attached, 1);

    // Our own format, forged: a reply "still streaming" for Ana on some server, two answers
    // both on the path, and ids of Ana's chat.
    let chat = ana
        .post(
            "/api/v1/chats",
            json!({"title": "Ana's own", "model": "m", "provider": "openai"}),
        )
        .await;
    let ana_chat = chat.body["id"].as_str().unwrap().to_owned();
    ana.post(
        &format!("/api/v1/chats/{ana_chat}/messages"),
        json!({"content": "private"}),
    )
    .await;
    let ana_message: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM messages WHERE chat_id = $1::uuid")
            .bind(&ana_chat)
            .fetch_one(app.pool())
            .await
            .unwrap();
    let forged = json!({
        "format": "sambung-chat/chat", "version": 1, "id": ana_chat, "title": "Forged", "model": "m", "provider": "openai",
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        "messages": [
            {"id": ana_message.to_string(), "role": "user", "content": "q", "createdAt": "2026-01-01T00:00:01Z", "onPath": true},
            {"id": "a", "parentId": ana_message.to_string(), "role": "assistant", "content": "first", "createdAt": "2026-01-01T00:00:02Z", "onPath": true,
             "metadata": {"status": "streaming", "askedBy": ana.id.to_string(), "server": "x"}},
            {"id": "b", "parentId": ana_message.to_string(), "role": "assistant", "content": "second", "createdAt": "2026-01-01T00:00:03Z", "onPath": true}
        ]
    });
    let done = import(&bo, "forged.json", forged.to_string().into_bytes()).await;
    assert_eq!(
        (done.status, done.body["chats"].as_u64()),
        (200, Some(1)),
        "{}",
        done.text
    );
    let theirs = chat_titled(&bo, "Forged").await;
    assert_ne!(
        theirs["id"],
        ana_chat.as_str(),
        "another's chat id is not taken"
    );
    let path = shown(&bo, theirs["id"].as_str().unwrap()).await;
    assert_eq!(path.len(), 2, "one path: {path:?}");
    let statuses: Vec<Option<String>> = sqlx::query_scalar("SELECT m.metadata->>'status' FROM messages m JOIN chats c ON c.id = m.chat_id WHERE c.title = 'Forged' AND m.role = 'assistant' ORDER BY m.created_at")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(statuses, [Some("incomplete".to_owned()), None]);
    let asked: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE metadata ? 'askedBy'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(asked, 0);
    assert_eq!(
        shown(&ana, &ana_chat).await,
        [("user".to_owned(), "private".to_owned())],
        "Ana's chat is untouched"
    );

    // One import at a time per person: a second is told so at once.
    let mut held = app.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('sambung import'), hashtext($1::text))")
        .bind(ana.id.to_string())
        .execute(&mut *held)
        .await
        .unwrap();
    let busy = import(&ana, "c.json", chatgpt_export().to_string().into_bytes()).await;
    assert_eq!(
        (busy.status, busy.code()),
        (409, "IMPORT_RUNNING"),
        "{}",
        busy.text
    );
    held.rollback().await.unwrap();
}

#[tokio::test]
async fn a_running_import_says_how_far_it_has_come_to_its_owner_only() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let bea = app.user("bea").await;
    let idle = json!({"running": false, "bytesRead": 0, "bytesTotal": 0,
                      "conversations": 0, "messages": 0, "alreadyImported": 0});
    assert_eq!(ana.get("/api/v1/imports/current").await.body, idle);
    let count = 1_500;
    let conversations = many_chatgpt_conversations(count);
    let export = zip_of(&[("conversations.json", &conversations)]);
    let watching = async {
        let mut seen: Vec<Value> = Vec::new();
        for _ in 0..3_000 {
            let now = ana.get("/api/v1/imports/current").await;
            if now.body["running"] == true {
                seen.push(now.body);
            } else if !seen.is_empty() {
                break;
            }
            assert_eq!(bea.get("/api/v1/imports/current").await.body, idle);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        seen
    };
    let (done, seen) = tokio::join!(import(&ana, "chatgpt.zip", export), watching);
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["chats"], count);
    // Of a zip, the conversations as they unpack; counts that only grow; some seen midway.
    for (before, after) in seen.iter().zip(seen.iter().skip(1)) {
        for field in ["bytesRead", "conversations", "messages"] {
            assert!(
                before[field].as_u64() <= after[field].as_u64(),
                "{before} then {after}"
            );
        }
    }
    for now in &seen {
        assert_eq!(now["bytesTotal"], conversations.len(), "{now}");
        assert!(
            now["bytesRead"].as_u64() <= now["bytesTotal"].as_u64(),
            "{now}"
        );
    }
    assert!(
        seen.iter().any(|now| now["conversations"]
            .as_u64()
            .is_some_and(|c| c > 0 && c < count as u64)
            && now["bytesRead"]
                .as_u64()
                .is_some_and(|b| b > 0 && b < conversations.len() as u64)),
        "no progress seen midway: {seen:?}"
    );
    assert_eq!(ana.get("/api/v1/imports/current").await.body, idle);
}
