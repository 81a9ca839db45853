//! The AI SDK's own code (`ai` 6.0.230, pinned in `ai-sdk-client/`): its strict
//! `uiMessageChunkSchema` and `readUIMessageStream` reading replies from the server, and its
//! `DefaultChatTransport` (what `useChat` sends) against `POST /api/chat`.

use crate::common;

use common::TestApp;
use sambung_ai::fake::Script;
use serde_json::{json, Value};

const OPENAI: &str = concat!(
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Halo \"},\"finish_reason\":null}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"dunia ☕\"},\"finish_reason\":null}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n",
    "data: [DONE]\n\n",
);

/// Run `check.mjs` (the AI SDK's code) in `mode` against the chat, as the user of `cookie`.
async fn check(
    dir: &std::path::Path,
    mode: &str,
    url: &str,
    chat: &str,
    cookie: &str,
    options: Value,
) -> std::process::Output {
    tokio::process::Command::new("node")
        .args(["check.mjs", mode, url, chat, cookie, &options.to_string()])
        .current_dir(dir)
        .output()
        .await
        .expect("node must be installed (scripts/test installs it)")
}

#[tokio::test]
async fn the_ai_sdks_parser_reads_our_stream_unchanged() {
    let dir = tokio::task::spawn_blocking(|| common::npm::installed("ai-sdk-client"))
        .await
        .unwrap();
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let model = ana
        .post("/api/v1/models", json!({"provider": "custom", "modelId": "m1", "baseUrl": app.provider.url("/v1"), "isDefault": true}))
        .await;
    assert_eq!(model.status, 201);
    let chat = ana.post("/api/v1/chats", json!({})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cookie = common::session_cookie(&ana.token);
    for (mode, script, question) in [
        ("raw", Script::sse(OPENAI, 5), "pertama"),
        ("raw", Script::sse(&OPENAI[..90], 4096), "kedua"),
        ("transport", Script::sse(OPENAI, 64), "ketiga"),
    ] {
        app.provider.push(script);
        let output = check(
            &dir,
            mode,
            &app.url,
            &chat,
            &cookie,
            json!({"content": question}),
        )
        .await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: Value = serde_json::from_str(stdout.trim()).unwrap();
        let message = &result["message"];
        assert_eq!(message["role"], "assistant");
        let text: String = message["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["type"] == "text")
            .map(|p| p["text"].as_str().unwrap())
            .collect();
        if question != "kedua" {
            assert_eq!(text, "Halo dunia ☕");
            assert_eq!(result["errors"], json!([]));
            assert_eq!(message["metadata"]["finishReason"], "length");
            assert_eq!(message["metadata"]["outputTokens"], 4);
        } else {
            // The stream was cut: the SDK still parses every chunk and reports the error.
            assert_eq!(text, "Halo ");
            assert_eq!(message["metadata"]["finishReason"], "error");
        }
    }
    // Every turn was stored, the transport's too; nothing runs any more.
    let stored = ana
        .get(&format!("/api/v1/chats/{chat}/messages"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    let questions: Vec<&str> = stored
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(questions, ["pertama", "kedua", "ketiga"]);
    let idle = ana
        .send(ana.http.get(ana.url(&format!("/api/chat/{chat}/stream"))))
        .await;
    assert_eq!(idle.status, 204);
}

#[tokio::test]
async fn the_ai_sdks_transport_sends_files_as_data_urls_and_the_model_sees_them() {
    use base64::Engine as _;
    let dir = tokio::task::spawn_blocking(|| common::npm::installed("ai-sdk-client"))
        .await
        .unwrap();
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let model = ana
        .post(
            "/api/v1/models",
            json!({"provider": "custom", "modelId": "m1", "baseUrl": app.provider.url("/v1"),
                   "isDefault": true, "settings": {"vision": true}}),
        )
        .await;
    assert_eq!(model.status, 201, "{model:?}");
    let chat = ana.post("/api/v1/chats", json!({})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cookie = common::session_cookie(&ana.token);
    let image = sambung_files::fixtures::png(4, 4);
    let data = base64::engine::general_purpose::STANDARD.encode(&image);
    let files = json!([{"type": "file", "mediaType": "image/png", "filename": "kotak.png",
                        "url": format!("data:image/png;base64,{data}")}]);
    let run = |options: Value| check(&dir, "transport", &app.url, &chat, &cookie, options);
    app.provider.push(Script::sse(OPENAI, 64));
    let output = run(json!({"content": "Apa ini?", "files": files})).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sent = app.request_asking("Apa ini?");
    assert_eq!(
        sent["messages"][0]["content"][0]["image_url"]["url"],
        format!("data:image/png;base64,{data}"),
        "the model got the image: {sent}"
    );
    let stored = ana.get(&format!("/api/v1/chats/{chat}/messages")).await;
    let question = &stored.body["items"][0];
    assert_eq!(question["files"][0]["name"], "kotak.png");
    assert_eq!(question["files"][0]["mediaType"], "image/png");
    // A URL elsewhere is never fetched; bytes that are not what they claim are refused.
    for (bad, says) in [
        (
            json!([{"type": "file", "mediaType": "image/png", "url": "https://example.org/x.png"}]),
            "data URL",
        ),
        (
            json!([{"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,aGFsbw=="}]),
            "its bytes are text/plain",
        ),
    ] {
        let asked = app.provider.requests().len();
        let output = run(json!({"content": "Lagi", "files": bad})).await;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(said.contains(says), "{said}");
        assert_eq!(
            app.provider.requests().len(),
            asked,
            "the model was not called"
        );
    }
}
