//! Turns over real HTTP against a fake provider on loopback: the UI message stream event by
//! event (each chunk held to the AI SDK 6.0 strict schema), what is stored, errors, stop,
//! resume after the client left, one turn at a time, regenerate and edit, SSRF refusals.

use crate::common;

use std::time::Duration;

use common::{TestApp, User};
use futures_util::StreamExt;
use sambung_ai::fake::Script;
use serde_json::{json, Value};

const OPENAI: &str = concat!(
    ": OPENROUTER PROCESSING\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Halo, \"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"apa kabar? ☕\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":5,\"total_tokens\":14}}\n\n",
    "data: [DONE]\n\n",
);

/// A long reply, one token per event, for stop and resume.
fn slow_reply(tokens: usize) -> String {
    let mut body = String::new();
    for i in 0..tokens {
        body.push_str(&format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i} \"}},\"finish_reason\":null}}]}}\n\n"));
    }
    body.push_str("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    body
}

/// `slow_reply(tokens)` in 60-byte pieces, `pace_ms` apart.
fn slow(tokens: usize, pace_ms: u64) -> Script {
    Script::sse(&slow_reply(tokens), 60).paced(Duration::from_millis(pace_ms))
}

/// The AI SDK 6.0 `uiMessageChunkSchema` (strict objects) for the chunk types a text reply
/// uses: each chunk must have exactly these keys (optional ones may be missing).
fn check_chunk(chunk: &Value) {
    let object = chunk.as_object().expect("a chunk is an object");
    let kind = object["type"].as_str().expect("a type");
    let (required, optional): (&[&str], &[&str]) = match kind {
        "start" => (&[], &["messageId", "messageMetadata"]),
        "start-step" | "finish-step" => (&[], &[]),
        "text-start" | "text-end" => (&["id"], &["providerMetadata"]),
        "text-delta" => (&["id", "delta"], &["providerMetadata"]),
        "finish" => (&[], &["finishReason", "messageMetadata"]),
        "error" => (&["errorText"], &[]),
        "message-metadata" => (&["messageMetadata"], &[]),
        "abort" => (&[], &["reason"]),
        other => panic!("a chunk type the SDK does not know: {other}"),
    };
    for key in object.keys().filter(|k| *k != "type") {
        assert!(
            required.contains(&key.as_str()) || optional.contains(&key.as_str()),
            "{kind} has an extra field {key}: {chunk}"
        );
    }
    for key in required {
        assert!(object.contains_key(*key), "{kind} lacks {key}");
    }
    if let Some(reason) = object.get("finishReason") {
        assert!(
            [
                "stop",
                "length",
                "content-filter",
                "tool-calls",
                "error",
                "other"
            ]
            .contains(&reason.as_str().unwrap()),
            "{reason}"
        );
    }
}

/// Parse an SSE body: the chunks, checking the protocol's order and the `[DONE]` end.
fn chunks(body: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut done = false;
    let mut open_texts = std::collections::HashSet::new();
    for event in body.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not a data line: {event:?}"));
        assert!(!done, "nothing after [DONE]");
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        check_chunk(&chunk);
        match chunk["type"].as_str().unwrap() {
            "text-start" => assert!(open_texts.insert(chunk["id"].as_str().unwrap().to_owned())),
            "text-delta" => assert!(
                open_texts.contains(chunk["id"].as_str().unwrap()),
                "a delta before its text-start"
            ),
            _ => {}
        }
        out.push(chunk);
    }
    assert!(done, "the stream ends with [DONE]: {body}");
    out
}

fn types(chunks: &[Value]) -> Vec<&str> {
    chunks.iter().map(|c| c["type"].as_str().unwrap()).collect()
}

fn text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter(|c| c["type"] == "text-delta")
        .map(|c| c["delta"].as_str().unwrap())
        .collect()
}

/// A turn's stream, read piece by piece (to stop, leave or interleave midway).
async fn open_stream(
    user: &User,
    chat: &str,
    body: Value,
) -> impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> {
    user.http
        .post(user.url(&format!("/api/v1/chats/{chat}/generate")))
        .json(&body)
        .send()
        .await
        .unwrap()
        .bytes_stream()
}

async fn messages(user: &User, chat: &str) -> Vec<Value> {
    user.get(&format!("/api/v1/chats/{chat}/messages"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_reply_streams_as_the_ai_sdk_expects_and_is_stored() {
    let app = TestApp::start().await;
    let (ana, chat) = app.user_with_model("ana").await;
    app.provider.push(Script::sse(OPENAI, 7));
    let (status, body, headers) = ana
        .generate(&chat, json!({"content": "Halo, siapa kamu?"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["x-vercel-ai-ui-message-stream"], "v1");
    let chunks = chunks(&body);
    assert_eq!(
        types(&chunks),
        [
            "start",
            "start-step",
            "text-start",
            "text-delta",
            "text-delta",
            "text-end",
            "finish-step",
            "finish"
        ]
    );
    assert_eq!(text(&chunks), "Halo, apa kabar? ☕");
    let finish = chunks.last().unwrap();
    assert_eq!(finish["finishReason"], "stop");
    assert_eq!(finish["messageMetadata"]["inputTokens"], 9);
    assert_eq!(finish["messageMetadata"]["outputTokens"], 5);
    assert_eq!(finish["messageMetadata"]["model"], "gpt-test");

    let stored = messages(&ana, &chat).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        (stored[0]["role"].as_str(), stored[0]["content"].as_str()),
        (Some("user"), Some("Halo, siapa kamu?"))
    );
    assert_eq!(stored[1]["id"], chunks[0]["messageId"]);
    assert_eq!(stored[1]["content"], "Halo, apa kabar? ☕");
    let metadata = &stored[1]["metadata"];
    assert_eq!(
        (
            metadata["status"].as_str(),
            metadata["finishReason"].as_str()
        ),
        (Some("complete"), Some("stop"))
    );
    assert_eq!(
        (
            metadata["inputTokens"].as_u64(),
            metadata["outputTokens"].as_u64()
        ),
        (Some(9), Some(5))
    );
    assert!(
        metadata["ttftMs"].is_u64() && metadata["durationMs"].is_u64(),
        "{metadata}"
    );

    let sent = &app.provider.requests()[0];
    assert!(sent
        .to_ascii_lowercase()
        .contains("authorization: bearer sk-fake-keyvalue-0001"));
    let request: Value = serde_json::from_str(&sent[sent.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(request["model"], "gpt-test");
    assert_eq!(request["temperature"], 0.3);
    assert_eq!(
        request["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Halo, siapa kamu?"}])
    );
}

#[tokio::test]
async fn the_first_reply_titles_the_chat_by_asking_its_model() {
    let app = TestApp::start().await;
    let (ana, _) = app.user_with_model("ana").await;
    let chat = ana.post("/api/v1/chats", json!({})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.provider.push(Script::sse(OPENAI, 4096));
    app.provider.push(Script::sse(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\\"Kopi pagi\\\"\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        4096,
    ));
    let (status, _, _) = ana
        .generate(
            &chat,
            json!({"content": "Apa kopi terbaik untuk pagi hari?"}),
        )
        .await;
    assert_eq!(status, 200);
    // The reply ends first; the title follows in the background.
    let mut title = Value::Null;
    for _ in 0..100 {
        title = ana.get(&format!("/api/v1/chats/{chat}")).await.body["title"].clone();
        if title != "New chat" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(title, "Kopi pagi");
    let asked = app.last_request();
    assert_eq!(asked["max_tokens"], 24);
    assert!(asked["messages"][1]["content"]
        .as_str()
        .unwrap()
        .contains("Apa kopi terbaik"));
    // Only the first reply names the chat.
    app.provider.push(Script::sse(OPENAI, 4096));
    ana.generate(&chat, json!({"content": "Lagi"})).await;
    assert_eq!(app.provider.requests().len(), 3);
}

#[tokio::test]
async fn a_provider_error_keeps_the_partial_text_and_is_recorded() {
    let app = TestApp::start().await;
    let (ana, chat) = app.user_with_model("ana").await;
    let cut = &OPENAI[..OPENAI.find("apa kabar").unwrap() + 30];
    app.provider.push(Script::sse(cut, 4096));
    let (status, body, _) = ana.generate(&chat, json!({"content": "Halo?"})).await;
    assert_eq!(status, 200);
    let chunks = chunks(&body);
    assert_eq!(
        types(&chunks),
        [
            "start",
            "start-step",
            "text-start",
            "text-delta",
            "text-end",
            "finish-step",
            "error",
            "finish"
        ]
    );
    assert_eq!(chunks.last().unwrap()["finishReason"], "error");
    let stored = messages(&ana, &chat).await;
    assert_eq!(stored[1]["content"], "Halo, ");
    assert_eq!(stored[1]["metadata"]["status"], "error");
    assert!(
        stored[1]["metadata"]["error"]
            .as_str()
            .unwrap()
            .contains("stream"),
        "{}",
        stored[1]["metadata"]
    );

    // A refused key is said plainly, and the key never appears.
    app.provider.push(Script::json(
        401,
        r#"{"error":{"message":"Incorrect API key provided: sk-fake-KEYVALUE-0001"}}"#,
    ));
    let (_, body, _) = ana.generate(&chat, json!({"content": "Lagi?"})).await;
    assert!(body.contains("refused the API key"), "{body}");
    assert!(!body.contains("KEYVALUE"), "{body}");
}

#[tokio::test]
async fn stop_ends_the_reply_and_the_provider_request_keeping_what_was_written() {
    let app = TestApp::start().await;
    let (ana, chat) = app.user_with_model("ana").await;
    app.provider
        .push(Script::sse(&slow_reply(200), 4096).paced(Duration::from_millis(1)));
    let (_, _, _) = ana.generate(&chat, json!({"content": "first"})).await;
    app.provider.push(slow(200, 20));
    let mut stream = open_stream(&ana, &chat, json!({"content": "long one"})).await;
    let mut seen = String::new();
    while !seen.contains("text-delta") {
        seen.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    let stopped = ana
        .post(&format!("/api/v1/chats/{chat}/generate/stop"), json!({}))
        .await;
    assert_eq!(stopped.body, json!({"stopping": true}));
    while let Some(piece) = stream.next().await {
        seen.push_str(&String::from_utf8_lossy(&piece.unwrap()));
    }
    let chunks = chunks(&seen);
    let finish = chunks.last().unwrap();
    assert_eq!(finish["messageMetadata"]["stopped"], true, "{finish}");
    let stored = messages(&ana, &chat).await;
    let reply = stored.last().unwrap();
    assert_eq!(reply["metadata"]["status"], "stopped");
    let written = reply["content"].as_str().unwrap();
    assert!(
        !written.is_empty() && !written.contains("t199"),
        "stopped midway: {written}"
    );
    assert_eq!(written, text(&chunks), "what was streamed is what was kept");
    assert_eq!(
        ana.post(&format!("/api/v1/chats/{chat}/generate/stop"), json!({}))
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn a_reply_goes_on_without_its_client_and_can_be_followed_again_from_the_start() {
    let app = TestApp::start().await;
    let (ana, chat) = app.user_with_model("ana").await;
    app.provider.push(slow(60, 20));
    let mut stream = open_stream(&ana, &chat, json!({"content": "go"})).await;
    let _ = stream.next().await;
    drop(stream); // the client goes away

    // The text so far is stored while it streams (this server saves every 50 ms): a server
    // dying now would leave it behind.
    let mut partial = None;
    for _ in 0..100 {
        let reply = messages(&ana, &chat).await.pop().unwrap();
        if reply["metadata"]["status"] != "streaming" {
            break;
        }
        if reply["content"] != "" {
            partial = Some(reply["content"].as_str().unwrap().to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let partial = partial.expect("a partial reply stored while streaming");
    assert!(partial.starts_with("t0 t1 "), "{partial}");

    // Another request (another tab) follows it from its start while it runs.
    let resumed = ana
        .http
        .get(ana.url(&format!("/api/v1/chats/{chat}/generate/stream")))
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let body = resumed.text().await.unwrap();
    let chunks = chunks(&body);
    assert_eq!(types(&chunks)[..3], ["start", "start-step", "text-start"]);
    assert_eq!(
        text(&chunks),
        (0..60).map(|i| format!("t{i} ")).collect::<String>()
    );
    let stored = messages(&ana, &chat).await;
    assert_eq!(stored.last().unwrap()["metadata"]["status"], "complete");
    assert_eq!(stored.last().unwrap()["content"], text(&chunks));
    // Nothing runs any more.
    let none = ana
        .http
        .get(ana.url(&format!("/api/v1/chats/{chat}/generate/stream")))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 204);
}

#[tokio::test]
async fn one_turn_at_a_time_then_regenerate_and_edit_add_branches() {
    let app = TestApp::start().await;
    let (ana, chat) = app.user_with_model("ana").await;
    app.provider.push(slow(20, 10));
    let mut stream = open_stream(&ana, &chat, json!({"content": "one"})).await;
    let _ = stream.next().await;
    let (status, body, _) = ana.generate(&chat, json!({"content": "two"})).await;
    assert_eq!(status, 409, "{body}");
    // Nor may the shown branch change while a reply is written.
    let first = messages(&ana, &chat).await;
    let switch = ana
        .post(
            &format!(
                "/api/v1/chats/{chat}/messages/{}/show",
                first[0]["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(switch.status, 409, "{switch:?}");
    while stream.next().await.is_some() {}
    let first_reply = messages(&ana, &chat).await[1]["id"].clone();

    // Regenerate: a second version of the reply; the first stays, off the path.
    app.provider.push(Script::sse(OPENAI, 4096));
    let (status, body, _) = ana.generate(&chat, json!({"regenerate": true})).await;
    assert_eq!(status, 200, "{body}");
    let stored = messages(&ana, &chat).await;
    assert_eq!(stored.len(), 2, "the path shows one reply: {stored:?}");
    assert_eq!(
        (stored[0]["content"].as_str(), stored[1]["content"].as_str()),
        (Some("one"), Some("Halo, apa kabar? ☕"))
    );
    assert_eq!(stored[1]["parentId"], stored[0]["id"]);
    assert_eq!(stored[1]["siblings"], json!([first_reply, stored[1]["id"]]));
    assert_eq!(
        stored[0].get("siblings"),
        None,
        "one version of the question"
    );
    let regenerate_request = app.last_request();
    assert_eq!(
        regenerate_request["messages"].as_array().unwrap().len(),
        2,
        "system and the question, not the old reply"
    );

    // Edit: a second version of the question, with its own reply.
    app.provider.push(Script::sse(OPENAI, 4096));
    let question = stored[0]["id"].as_str().unwrap().to_owned();
    let (status, _, _) = ana
        .generate(&chat, json!({"edit": question, "content": "one, edited"}))
        .await;
    assert_eq!(status, 200);
    let stored = messages(&ana, &chat).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["content"], "one, edited");
    assert_eq!(stored[0]["siblings"], json!([question, stored[0]["id"]]));
    assert_eq!(stored[1]["parentId"], stored[0]["id"]);
    let sent = app.last_request();
    assert_eq!(sent["messages"][1]["content"], "one, edited");

    // The whole tree: both questions, all three replies.
    let tree = ana
        .get(&format!("/api/v1/chats/{chat}/messages?branches=all"))
        .await
        .body;
    let tree = tree["items"].as_array().unwrap();
    assert_eq!(tree.len(), 5, "{tree:?}");
    assert_eq!(
        tree.iter().filter(|m| m["offPath"] == true).count(),
        3,
        "{tree:?}"
    );

    // Back to the first question: its latest reply comes with it, and the model is sent that
    // path.
    let shown = ana
        .post(
            &format!("/api/v1/chats/{chat}/messages/{question}/show"),
            json!({}),
        )
        .await;
    assert_eq!(shown.status, 204, "{shown:?}");
    let stored = messages(&ana, &chat).await;
    assert_eq!(
        (stored[0]["content"].as_str(), stored[1]["content"].as_str()),
        (Some("one"), Some("Halo, apa kabar? ☕"))
    );
    app.provider.push(Script::sse(OPENAI, 4096));
    ana.generate(&chat, json!({"content": "and then?"})).await;
    let sent = app.last_request();
    let said: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        said,
        ["Be brief.", "one", "Halo, apa kabar? ☕", "and then?"]
    );
    // A message of another chat, or none, is not found; another user cannot switch.
    let unknown = ana
        .post(
            &format!(
                "/api/v1/chats/{chat}/messages/{}/show",
                uuid::Uuid::new_v4()
            ),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let budi = app.user("budi").await;
    let foreign = budi
        .post(
            &format!("/api/v1/chats/{chat}/messages/{question}/show"),
            json!({}),
        )
        .await;
    assert_eq!(foreign.status, 404, "{foreign:?}");
}

#[tokio::test]
async fn servers_on_one_database_tell_a_live_writer_from_a_dead_one() {
    let mut steps = sambung_testkit::Steps::new();
    let app = TestApp::start().await;
    let (ana, chat) = app.user_with_model("ana").await;
    let other = app.another_server().await;
    let ana_elsewhere = app.bearer_client(&other.url, &ana.token);
    app.provider.push(slow(20, 10));
    let mut stream = open_stream(&ana, &chat, json!({"content": "long"})).await;
    let _ = stream.next().await;
    // The first server is writing a reply: the second refuses a turn in that chat too.
    steps.at("The first server is writing a reply");
    let (status, body, _) = ana_elsewhere
        .generate(&chat, json!({"content": "me too"}))
        .await;
    assert_eq!(status, 409, "{body}");
    while stream.next().await.is_some() {}

    // The second server follows a reply the first writes, relayed from its start.
    steps.at("The second server follows a reply the first writes, relayed from its start");
    app.provider.push(slow(40, 10));
    let mut stream = open_stream(&ana, &chat, json!({"content": "follow me elsewhere"})).await;
    let _ = stream.next().await;
    let followed = ana_elsewhere
        .send(
            ana_elsewhere
                .http
                .get(ana_elsewhere.url(&format!("/api/v1/chats/{chat}/generate/stream"))),
        )
        .await;
    assert_eq!(followed.status, 200, "{followed:?}");
    assert_eq!(
        followed.headers["x-vercel-ai-ui-message-stream"], "v1",
        "{followed:?}"
    );
    let relayed = chunks(&followed.text);
    assert_eq!(types(&relayed)[..3], ["start", "start-step", "text-start"]);
    assert_eq!(
        text(&relayed),
        (0..40).map(|i| format!("t{i} ")).collect::<String>()
    );
    assert_eq!(relayed.last().unwrap()["type"], "finish");
    assert!(followed.text.ends_with("data: [DONE]\n\n"));
    while stream.next().await.is_some() {}
    let after = ana_elsewhere
        .send(
            ana_elsewhere
                .http
                .get(ana_elsewhere.url(&format!("/api/v1/chats/{chat}/generate/stream"))),
        )
        .await;
    assert_eq!(after.status, 204, "nothing runs any more");

    // A stop sent to the second server reaches the first, which writes the reply.
    steps.at("A stop sent to the second server reaches the first, which writes the reply");
    app.provider.push(slow(200, 20));
    let mut stream = open_stream(&ana, &chat, json!({"content": "stop me elsewhere"})).await;
    let _ = stream.next().await;
    let stop = ana_elsewhere
        .post(&format!("/api/v1/chats/{chat}/generate/stop"), json!({}))
        .await;
    assert_eq!(
        (stop.status, &stop.body),
        (200, &json!({"stopping": true})),
        "{stop:?}"
    );
    let mut body = String::new();
    while let Some(piece) = stream.next().await {
        body.push_str(&String::from_utf8_lossy(&piece.unwrap()));
    }
    let finish = chunks(&body).pop().unwrap();
    assert_eq!(finish["messageMetadata"]["stopped"], true, "{finish}");
    let stored = messages(&ana, &chat).await;
    assert_eq!(stored.last().unwrap()["metadata"]["status"], "stopped");
    let none = ana_elsewhere
        .post(&format!("/api/v1/chats/{chat}/generate/stop"), json!({}))
        .await;
    assert_eq!(none.status, 204, "nothing runs any more");

    // A server that begins a turn, then dies before it ends (its lease is its connection).
    steps.at("A server that begins a turn, then dies before it ends (its lease is its connection)");
    let dying = sambung_chat::lease::ServerLease::acquire(app.pool())
        .await
        .unwrap();
    let orphan = sambung_chat::store::begin_turn(
        app.pool(),
        &dying,
        sambung_db::UserId(ana.id),
        sambung_db::ChatId(chat.parse().unwrap()),
        sambung_chat::TurnKind::Ask {
            content: "lost",
            files: &[],
        },
        json!({"model": "gpt-test", "provider": "openai"}),
        None,
    )
    .await
    .unwrap()
    .commit()
    .await
    .unwrap()
    .reply;
    let (status, _, _) = ana_elsewhere
        .generate(&chat, json!({"content": "again"}))
        .await;
    assert_eq!(status, 409, "its writer is alive");
    drop(dying);

    // Either server tells once the lease is gone: the reply is marked incomplete and the
    // chat is free again.
    steps.at("Either server tells once the lease is gone");
    app.provider.push(Script::sse(OPENAI, 4096));
    let mut answered = None;
    for _ in 0..100 {
        let (status, body, _) = ana_elsewhere
            .generate(&chat, json!({"content": "again"}))
            .await;
        if status != 409 {
            answered = Some((status, body));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = answered.expect("the chat is freed once its writer's lease is gone");
    assert_eq!(status, 200, "{body}");
    assert_eq!(text(&chunks(&body)), "Halo, apa kabar? ☕");
    let stored = messages(&ana, &chat).await;
    let orphan = stored
        .iter()
        .find(|m| m["id"] == orphan.id.to_string())
        .unwrap();
    assert_eq!(orphan["metadata"]["status"], "incomplete", "{stored:?}");
    assert!(orphan["metadata"]["error"]
        .as_str()
        .unwrap()
        .contains("stopped before it ended"));
    assert_eq!(stored.last().unwrap()["metadata"]["status"], "complete");
}

#[tokio::test]
async fn refusals_no_model_unsafe_base_urls_foreign_keys_and_chats() {
    let app = TestApp::start().await;
    let bo = app.user("bo").await;
    let chat = bo.post("/api/v1/chats", json!({})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body, _) = bo.generate(&chat, json!({"content": "hi"})).await;
    assert_eq!(status, 400);
    assert!(body.contains("NO_MODEL"), "{body}");
    // Refused when saved (a model that could never be used is not kept) ...
    for base in [
        "http://127.0.0.1:5432/v1",
        "https://169.254.169.254/latest",
        "https://localhost/v1",
        "http://10.0.0.1/v1",
        "https://[64:ff9b:1::a00:1]/v1",
        "https://[::ffff:127.0.0.1]/v1",
    ] {
        let model = bo
            .post(
                "/api/v1/models",
                json!({"provider": "custom", "modelId": "m", "baseUrl": base, "isDefault": true}),
            )
            .await;
        assert_eq!(
            (model.status, model.code(), model.body["field"].as_str()),
            (400, "BASE_URL_NOT_ALLOWED", Some("baseUrl")),
            "{base}: {model:?}"
        );
    }
    assert_eq!(bo.get("/api/v1/models").await.body["items"], json!([]));
    // ... and when used, should one be in the database all the same (stored by an earlier
    // version, or its host's address changed since).
    for base in ["http://127.0.0.1:5432/v1", "https://169.254.169.254/latest"] {
        let model: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO models (user_id, provider, model_id, name, base_url) VALUES ($1, 'custom', 'm', 'm', $2) RETURNING id",
        )
        .bind(bo.id)
        .bind(base)
        .fetch_one(app.pool())
        .await
        .unwrap();
        let (status, body, _) = bo
            .generate(&chat, json!({"content": "hi", "model": model}))
            .await;
        assert_eq!(status, 400, "{base}: {body}");
        assert!(body.contains("BASE_URL_NOT_ALLOWED"), "{base}: {body}");
    }
    assert_eq!(messages(&bo, &chat).await.len(), 0, "nothing was stored");
    // A key of someone else's cannot be attached: checked by the database.
    let (ana, anas_chat) = app.user_with_model("ana").await;
    let anas_key = ana.get("/api/v1/api-keys").await.body["items"][0]["id"].clone();
    let stolen = bo
        .post(
            "/api/v1/models",
            json!({"provider": "openai", "modelId": "gpt", "apiKeyId": anas_key}),
        )
        .await;
    assert_eq!(
        (stolen.status, stolen.body["field"].as_str()),
        (400, Some("apiKeyId"))
    );
    // Someone else's chat is not found, and their model cannot be used.
    let (status, _, _) = bo.generate(&anas_chat, json!({"content": "hi"})).await;
    assert_eq!(status, 404);
    let anas_model = ana.get("/api/v1/models").await.body["items"][0]["id"].clone();
    let (status, _, _) = bo
        .generate(&chat, json!({"content": "hi", "model": anas_model}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn team_models_are_configured_by_admins_and_used_by_members() {
    let app = TestApp::start().await;
    let (admin, _) = app.user_with_model("ana").await;
    let member = app.user("member").await;
    let team = admin
        .post("/api/v1/teams", json!({"name": "Kopi", "slug": "kopi"}))
        .await
        .body["id"]
        .clone();
    app.join_team(&admin, "kopi", &member).await;
    let key = admin.get("/api/v1/api-keys").await.body["items"][0]["id"].clone();
    let refused = member
        .post(
            "/api/v1/models",
            json!({"provider": "openai", "modelId": "gpt", "team": team}),
        )
        .await;
    assert_eq!(refused.status, 403);
    let model = admin
        .post("/api/v1/models", json!({"provider": "openai", "modelId": "gpt-team", "baseUrl": app.provider.url("/v1"), "apiKeyId": key, "team": team, "isDefault": true}))
        .await;
    assert_eq!(model.status, 201, "{model:?}");
    assert_eq!(
        member
            .get(&format!("/api/v1/models?team={}", team.as_str().unwrap()))
            .await
            .body["items"][0]["id"],
        model.body["id"]
    );
    let chat = member
        .post("/api/v1/chats", json!({"team": team, "title": "Kopi"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.provider.push(Script::sse(OPENAI, 4096));
    let (status, body, _) = member
        .generate(&chat, json!({"content": "team question"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = app.last_request();
    assert_eq!(
        sent["model"], "gpt-team",
        "the team's default model answered"
    );
    // Live listing, through the same guard and key.
    app.provider.push(Script::json(
        200,
        r#"{"data":[{"id":"gpt-team"},{"id":"gpt-other"}]}"#,
    ));
    let available = member
        .get(&format!(
            "/api/v1/models/{}/available",
            model.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(available.body["models"], json!(["gpt-other", "gpt-team"]));
    // The team's model (and the admin's key behind it) answers in the team's chats only:
    // not in a member's personal chat, asked for or not.
    let personal = member.post("/api/v1/chats", json!({})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let requests = app.provider.requests().len();
    let (status, body, _) = member
        .generate(
            &personal,
            json!({"content": "on the team's key?", "model": model.body["id"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("team's chats only"), "{body}");
    let (status, body, _) = member
        .generate(&personal, json!({"content": "on the team's key?"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("NO_MODEL"), "{body}");
    assert_eq!(
        app.provider.requests().len(),
        requests,
        "the provider was not called"
    );
}

/// A chat's own system prompt and parameters (SPEC 17) override its model's, and reach the
/// provider in each wire format's own fields.
#[tokio::test]
async fn a_chats_own_instructions_override_its_models_in_every_wire_format() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let chat = ana
        .post("/api/v1/chats", json!({"title": "Bahasa"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/chats/{chat}");
    // Bad settings are refused with the reason, and change nothing.
    for (bad, reason) in [
        (json!({"temperature": 3}), "temperature is out of range"),
        (json!({"maxTokens": 0}), "maxTokens is out of range"),
        (json!({"system": "the model's key"}), "unknown setting"),
        (json!("be nice"), "must be a JSON object"),
    ] {
        let refused = ana.patch(&path, json!({"settings": bad})).await;
        assert_eq!(refused.status, 400, "{refused:?}");
        assert!(
            refused.body["message"].as_str().unwrap().contains(reason),
            "{refused:?}"
        );
    }
    let own = json!({"systemPrompt": "Jawab dalam bahasa Indonesia.", "temperature": 0.1, "maxTokens": 50, "topP": 0.5});
    let changed = ana.patch(&path, json!({"settings": own})).await;
    assert_eq!(changed.body["settings"], own, "{changed:?}");

    let mut model_id = Value::Null;
    for provider in ["openai", "anthropic", "google"] {
        let key = ana
            .post(
                "/api/v1/api-keys",
                json!({"provider": provider, "key": "sk-fake-KEYVALUE-0002"}),
            )
            .await;
        let model = ana
            .post(
                "/api/v1/models",
                json!({"provider": provider, "modelId": format!("{provider}-model"), "name": provider,
                       "baseUrl": app.provider.url("/v1"), "apiKeyId": key.body["id"],
                       "settings": {"system": "The model's own.", "temperature": 0.9, "topP": 0.9}}),
            )
            .await;
        assert_eq!(model.status, 201, "{model:?}");
        model_id = model.body["id"].clone();
        // The reply's format does not matter here: what was sent does.
        app.provider.push(Script::json(500, "{}"));
        ana.generate(&chat, json!({"content": "Halo", "model": model.body["id"]}))
            .await;
        let sent = app.last_request();
        let text = sent.to_string();
        assert!(!text.contains("The model's own."), "{provider}: {sent}");
        let (system, temperature, max_tokens, top_p) = match provider {
            "openai" => (
                &sent["messages"][0]["content"],
                &sent["temperature"],
                &sent["max_tokens"],
                &sent["top_p"],
            ),
            "anthropic" => (
                &sent["system"],
                &sent["temperature"],
                &sent["max_tokens"],
                &sent["top_p"],
            ),
            _ => (
                &sent["systemInstruction"]["parts"][0]["text"],
                &sent["generationConfig"]["temperature"],
                &sent["generationConfig"]["maxOutputTokens"],
                &sent["generationConfig"]["topP"],
            ),
        };
        assert_eq!(
            (system, temperature, max_tokens, top_p),
            (
                &json!("Jawab dalam bahasa Indonesia."),
                &json!(0.1),
                &json!(50),
                &json!(0.5)
            ),
            "{provider}: {sent}"
        );
    }

    // Without its own settings, the chat's model's apply again.
    ana.patch(&path, json!({"settings": {}})).await;
    app.provider.push(Script::json(500, "{}"));
    ana.generate(&chat, json!({"content": "Lagi", "model": model_id}))
        .await;
    let sent = app.last_request();
    assert_eq!(
        sent["systemInstruction"]["parts"][0]["text"],
        "The model's own."
    );
    assert_eq!(sent["generationConfig"]["temperature"], 0.9);
}

#[tokio::test]
async fn a_failed_reply_is_told_in_each_followers_language() {
    let app = TestApp::start().await;
    let (ana, chat) = app.user_with_model("ana").await;
    let refused = || {
        Script::json(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-fake-KEYVALUE-0001"}}"#,
        )
    };
    // Her browser asks for Indonesian.
    app.provider.push(refused());
    let body = ana
        .http
        .post(ana.url(&format!("/api/v1/chats/{chat}/generate")))
        .header("accept-language", "id")
        .json(&json!({"content": "Halo?"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains(r#"{"type":"error","errorText":"penyedia menolak kunci API (periksa di Pengaturan → Kunci API)"}"#),
        "{body}"
    );
    assert!(!body.contains("KEYVALUE"), "{body}");
    // Without a language asked for, English: the stored reply keeps the English sentence,
    // and each reader of the chat reads it in theirs.
    app.provider.push(refused());
    let (_, body, _) = ana.generate(&chat, json!({"content": "Lagi?"})).await;
    assert!(body.contains("refused the API key"), "{body}");
    let page = ana
        .send(
            ana.http
                .get(ana.url(&format!("/api/v1/chats/{chat}/messages")))
                .header("accept-language", "id"),
        )
        .await;
    let errors: Vec<&str> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["metadata"]["error"].as_str())
        .collect();
    assert!(
        !errors.is_empty()
            && errors
                .iter()
                .all(|e| e.starts_with("penyedia menolak kunci API")),
        "{errors:?}"
    );
    let stored: String = sqlx::query_scalar(
        "SELECT metadata->>'error' FROM messages WHERE metadata ? 'error' LIMIT 1",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(
        stored.contains("refused the API key"),
        "kept as written: {stored}"
    );
}

/// A turn's own reads check its session (no statement of its own before them): a session
/// ended, expired, or of a person banned or not approved is refused on the very next turn,
/// before the provider is called and with nothing written; one due to be renewed is renewed
/// (the cookie set again) and the turn goes on.
#[tokio::test]
async fn a_turns_reads_check_its_session_and_refuse_it_at_once() {
    let app = TestApp::start().await;
    let (ana, chat) = app.user_with_model("ana").await;
    let written = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM messages")
            .fetch_one(app.pool())
            .await
            .unwrap()
    };
    app.provider.push(Script::sse(OPENAI, 7));
    let (status, body, _) = ana.generate(&chat, json!({"content": "Halo"})).await;
    assert_eq!(status, 200, "{body}");
    let called = app.provider.requests().len();
    for (change, undo, refused, code) in [
        (
            "UPDATE users SET banned = true",
            "UPDATE users SET banned = false",
            401,
            "UNAUTHORIZED",
        ),
        (
            "UPDATE users SET approved = false",
            "UPDATE users SET approved = true",
            403,
            "ACCOUNT_NOT_APPROVED",
        ),
        (
            "UPDATE sessions SET expires_at = now() - interval '1 second'",
            "UPDATE sessions SET expires_at = now() + interval '7 days'",
            401,
            "UNAUTHORIZED",
        ),
    ] {
        let before = written().await;
        sqlx::query(change).execute(app.pool()).await.unwrap();
        let (status, body, _) = ana.generate(&chat, json!({"content": "again"})).await;
        assert_eq!(status, refused, "{change}: {body}");
        assert!(body.contains(code), "{change}: {body}");
        assert_eq!(written().await, before, "{change}: nothing written");
        assert_eq!(app.provider.requests().len(), called, "{change}: no call");
        sqlx::query(undo).execute(app.pool()).await.unwrap();
    }

    // Due to be renewed: the long way renews it and the turn goes on.
    sqlx::query("UPDATE sessions SET expires_at = now() + interval '6 days' - interval '1 minute'")
        .execute(app.pool())
        .await
        .unwrap();
    app.provider.push(Script::sse(OPENAI, 7));
    let (status, body, headers) = ana.generate(&chat, json!({"content": "renewed"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().contains("Max-Age=604800")),
        "{headers:?}"
    );
    let renewed: bool = sqlx::query_scalar(
        "SELECT bool_and(expires_at > now() + interval '6 days 23 hours') FROM sessions",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(renewed);

    // Signed out: the very next turn is refused.
    sqlx::query("DELETE FROM sessions")
        .execute(app.pool())
        .await
        .unwrap();
    let before = written().await;
    let (status, body, _) = ana.generate(&chat, json!({"content": "gone"})).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(written().await, before);
}
