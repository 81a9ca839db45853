//! A raw API key never leaves the server: not in an answer, an error or a log line; and the
//! access log names routes, never the share and invitation tokens in their paths. (A test
//! binary of its own: the log capture is this process's only subscriber.)

#[path = "server/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};

use common::TestApp;
use serde_json::{json, Value};

fn ok(reply: common::Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{reply:?}");
    reply.body
}

/// Log lines the server writes, collected while this test process runs.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_raw_api_key_never_leaves_the_server() {
    let mut steps = sambung_testkit::Steps::new();
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    const RAW: &str = "sk-live-UNMISTAKABLE-secret-9f8e7d";
    let key = ok(
        ana.post(
            "/api/v1/api-keys",
            json!({"provider": "openai", "name": "work", "key": RAW}),
        )
        .await,
        201,
    );
    assert_eq!(key["last4"], "8e7d");
    let id = key["id"].as_str().unwrap();
    // Every way of getting it wrong with the key in the body.
    steps.at("Every way of getting it wrong with the key in the body");
    for body in [
        json!({"provider": "openai", "key": RAW, "extra": 1}),
        json!({"provider": "nobody", "key": RAW}),
        json!({"provider": "openai", "key": RAW, "name": "x".repeat(101)}),
        json!({"provider": "openai", "key": [RAW]}),
        json!({"provider": RAW, "key": RAW}),
    ] {
        let reply = ana.post("/api/v1/api-keys", body).await;
        assert_eq!(reply.status, 400, "{reply:?}");
    }
    let broken = ana
        .raw(
            reqwest::Method::POST,
            "/api/v1/api-keys",
            Some("application/json"),
            format!("{{\"key\": \"{RAW}\", ").into_bytes(),
        )
        .await;
    assert_eq!(broken.code(), "INVALID_JSON");
    ok(
        ana.patch(
            &format!("/api/v1/api-keys/{id}"),
            json!({"name": "renamed"}),
        )
        .await,
        200,
    );
    let listed = ok(ana.get("/api/v1/api-keys").await, 200);
    assert_eq!(listed["items"][0]["name"], "renamed");
    // Used for a turn, refused by the provider with a message that echoes it, and listed.
    steps.at("Used for a turn, refused by the provider with a message that echoes it, and listed");
    let model = ok(
        ana.post("/api/v1/models", json!({"provider": "openai", "modelId": "m", "baseUrl": app.provider.url("/v1"), "apiKeyId": id, "isDefault": true}))
            .await,
        201,
    );
    let chat = ok(ana.post("/api/v1/chats", json!({})).await, 201);
    app.provider.push(sambung_ai::fake::Script::json(
        401,
        &format!(r#"{{"error":{{"message":"Incorrect API key provided: {RAW}"}}}}"#),
    ));
    let turn = ana
        .post(
            &format!("/api/v1/chats/{}/generate", chat["id"].as_str().unwrap()),
            json!({"content": "hi"}),
        )
        .await;
    assert_eq!(turn.status, 200);
    assert!(turn.text.contains("refused the API key"), "{}", turn.text);
    assert!(
        app.provider.requests()[0].contains(RAW),
        "the provider did get the key"
    );
    app.provider.push(sambung_ai::fake::Script::json(
        500,
        &format!(r#"{{"error":{{"message":"upstream: {RAW}"}}}}"#),
    ));
    app.provider.push(sambung_ai::fake::Script::json(
        500,
        &format!(r#"{{"error":{{"message":"upstream: {RAW}"}}}}"#),
    ));
    app.provider.push(sambung_ai::fake::Script::json(
        500,
        &format!(r#"{{"error":{{"message":"upstream: {RAW}"}}}}"#),
    ));
    let listed = ana
        .get(&format!(
            "/api/v1/models/{}/available",
            model["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(listed.status, 502);
    let stored: String = sqlx::query_scalar("SELECT string_agg(metadata::text, ' ') FROM messages")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(
        !stored.contains("UNMISTAKABLE"),
        "a stored error held the key: {stored}"
    );
    let openapi = ok(ana.get("/api/v1/openapi.json").await, 200);
    assert!(openapi["openapi"].is_string());

    // Tokens in paths: a share link read by anyone, an invitation accepted.
    steps.at("Tokens in paths");
    let share = ok(
        ana.post(
            &format!("/api/v1/chats/{}/share", chat["id"].as_str().unwrap()),
            json!({}),
        )
        .await,
        200,
    );
    let share_token = share["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.anonymous()
            .get(&format!("/share/{share_token}"))
            .await
            .status,
        200
    );
    ok(
        app.anonymous()
            .get(&format!("/api/v1/public/chats/{share_token}"))
            .await,
        200,
    );
    ok(
        ana.post("/api/v1/teams", json!({"name": "Kopi", "slug": "kopi"}))
            .await,
        201,
    );
    let bo = app.user("bo").await;
    let invite = ok(
        ana.post("/api/v1/teams/kopi/invites", json!({"email": bo.email}))
            .await,
        201,
    );
    let invite_token = invite["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.anonymous()
            .get(&format!("/invites/{invite_token}"))
            .await
            .status,
        200
    );
    ok(
        bo.post(&format!("/api/v1/invites/{invite_token}/accept"), json!({}))
            .await,
        200,
    );

    let seen = app.seen.lock().unwrap().join("\n");
    assert!(
        !seen.contains(RAW) && !seen.contains("UNMISTAKABLE"),
        "a response held the key"
    );
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("served"),
        "the access log was captured: {logged}"
    );
    assert!(!logged.contains("UNMISTAKABLE"), "a log line held the key");
    for token in [&share_token, &invite_token] {
        assert!(
            !logged.contains(token.as_str()),
            "a log line held a token {token}"
        );
    }
    assert!(
        logged.contains("route=\"/share/{token}\"")
            && logged.contains("route=\"/api/v1/invites/{token}/accept\""),
        "the access log names routes"
    );
    let stored: Vec<u8> = sqlx::query_scalar("SELECT encrypted_key FROM api_keys")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("UNMISTAKABLE"));
}
