//! Hostile and broken input on every endpoint that takes some: each is answered with a clear
//! 4xx carrying a code (never a 500), and the database is left exactly as it was.

use crate::common;

use common::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

/// Endpoints that take a body, with a valid body each (so a broken variant is the only fault).
fn endpoints(
    chat: &str,
    folder: &str,
    tag: &str,
    prompt: &str,
    key: &str,
) -> Vec<(Method, String, Value)> {
    vec![
        (
            Method::POST,
            "/api/v1/teams".into(),
            json!({"name": "T", "slug": "team-x"}),
        ),
        (
            Method::PATCH,
            "/api/v1/teams/kopi".into(),
            json!({"name": "T"}),
        ),
        (
            Method::POST,
            "/api/v1/teams/kopi/invites".into(),
            json!({"email": "x@example.com"}),
        ),
        (Method::POST, "/api/v1/folders".into(), json!({"name": "F"})),
        (
            Method::PATCH,
            format!("/api/v1/folders/{folder}"),
            json!({"name": "F"}),
        ),
        (Method::POST, "/api/v1/tags".into(), json!({"name": "t"})),
        (
            Method::PATCH,
            format!("/api/v1/tags/{tag}"),
            json!({"name": "t"}),
        ),
        (Method::POST, "/api/v1/chats".into(), json!({"title": "c"})),
        (
            Method::PATCH,
            format!("/api/v1/chats/{chat}"),
            json!({"title": "c"}),
        ),
        (
            Method::POST,
            format!("/api/v1/chats/{chat}/messages"),
            json!({"content": "m"}),
        ),
        (
            Method::POST,
            "/api/v1/prompts".into(),
            json!({"name": "p", "content": "c"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/prompts/{prompt}"),
            json!({"name": "p"}),
        ),
        (
            Method::POST,
            "/api/v1/api-keys".into(),
            json!({"provider": "openai", "key": "sk-0123456789"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/api-keys/{key}"),
            json!({"name": "k"}),
        ),
        (
            Method::POST,
            "/api/auth/sign-up/email".into(),
            json!({"name": "n", "email": "n@example.com", "password": "long enough"}),
        ),
        (
            Method::POST,
            "/api/auth/change-password".into(),
            json!({"currentPassword": "password-of-ana", "newPassword": "long enough"}),
        ),
        (
            Method::POST,
            "/api/auth/update-user".into(),
            json!({"name": "n"}),
        ),
    ]
}

/// The broken variants of a valid body.
fn broken(valid: &Value) -> Vec<(&'static str, Option<&'static str>, Vec<u8>)> {
    let object = valid.as_object().unwrap();
    let first = object.keys().next().unwrap().clone();
    let mut wrong_type = object.clone();
    wrong_type.insert(first, json!({"nested": [1, 2, 3]}));
    let mut unknown = object.clone();
    unknown.insert("isAdmin".into(), json!(true));
    vec![
        (
            "malformed JSON",
            Some("application/json"),
            b"{\"name\": ".to_vec(),
        ),
        (
            "trailing garbage",
            Some("application/json"),
            [serde_json::to_vec(valid).unwrap(), b" {}".to_vec()].concat(),
        ),
        (
            "not an object",
            Some("application/json"),
            b"[1, 2, 3]".to_vec(),
        ),
        ("empty body", Some("application/json"), Vec::new()),
        (
            "wrong type",
            Some("application/json"),
            serde_json::to_vec(&wrong_type).unwrap(),
        ),
        (
            "not JSON at all",
            Some("text/plain"),
            serde_json::to_vec(valid).unwrap(),
        ),
        ("no content type", None, serde_json::to_vec(valid).unwrap()),
        (
            "invalid UTF-8",
            Some("application/json"),
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
        ),
        ("oversized", Some("application/json"), {
            let mut big = b"{\"name\": \"".to_vec();
            big.extend(std::iter::repeat_n(b'a', 3 << 20));
            big.extend(b"\"}");
            big
        }),
        (
            "unknown field",
            Some("application/json"),
            serde_json::to_vec(&unknown).unwrap(),
        ),
    ]
}

#[tokio::test]
async fn broken_bodies_get_a_clear_4xx_and_change_nothing() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let get = |reply: common::Reply| reply.body["id"].as_str().unwrap().to_owned();
    ana.post("/api/v1/teams", json!({"name": "Kopi", "slug": "kopi"}))
        .await;
    let chat = get(ana.post("/api/v1/chats", json!({"title": "c"})).await);
    let folder = get(ana.post("/api/v1/folders", json!({"name": "f"})).await);
    let tag = get(ana.post("/api/v1/tags", json!({"name": "t"})).await);
    let prompt = get(ana
        .post("/api/v1/prompts", json!({"name": "p", "content": "c"}))
        .await);
    let key = get(ana
        .post(
            "/api/v1/api-keys",
            json!({"provider": "openai", "key": "sk-0123456789"}),
        )
        .await);
    let before = app.row_counts().await;
    let mut wrong = Vec::new();
    for (method, path, valid) in endpoints(&chat, &folder, &tag, &prompt, &key) {
        for (what, content_type, body) in broken(&valid) {
            // Auth bodies ignore unknown fields, as Better Auth does.
            if what == "unknown field" && path.starts_with("/api/auth") {
                continue;
            }
            let reply = ana.raw(method.clone(), &path, content_type, body).await;
            let fine = (400..500).contains(&reply.status)
                && !reply.code().is_empty()
                && !reply.body["message"].as_str().unwrap_or("").is_empty();
            if !fine {
                wrong.push(format!(
                    "{method} {path} with {what}: {} {}",
                    reply.status,
                    reply.text.chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        app.row_counts().await,
        before,
        "bad input changed the database"
    );
}

#[tokio::test]
async fn wrong_types_name_the_field() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let reply = ana.post("/api/v1/chats", json!({"title": 42})).await;
    assert_eq!(
        (reply.status, reply.code(), reply.body["field"].as_str()),
        (400, "VALIDATION_ERROR", Some("title"))
    );
    let reply = ana
        .post(
            "/api/v1/chats",
            json!({"title": "ok", "folderId": "not-a-uuid"}),
        )
        .await;
    assert_eq!(reply.body["field"], "folderId");
    let reply = ana
        .post("/api/v1/chats", json!({"title": "ok", "secret": 1}))
        .await;
    assert_eq!(reply.code(), "VALIDATION_ERROR");
    assert!(
        reply.body["message"].as_str().unwrap().contains("secret"),
        "{reply:?}"
    );
    let reply = ana.post("/api/v1/chats", json!({"title": "   "})).await;
    assert_eq!(
        (reply.status, reply.body["field"].as_str()),
        (400, Some("title"))
    );
    let chat = ana.post("/api/v1/chats", json!({})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = ana
        .post(
            &format!("/api/v1/chats/{chat}/messages"),
            json!({"content": null}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.body["field"].as_str()),
        (400, Some("content"))
    );
    let reply = ana
        .post("/api/v1/tags", json!({"name": "t", "color": "red"}))
        .await;
    assert_eq!(reply.body["field"], "color");
    let reply = ana
        .post("/api/v1/teams", json!({"name": "T", "slug": "admin"}))
        .await;
    assert_eq!(reply.body["field"], "slug");
    let reply = ana
        .post(
            "/api/v1/api-keys",
            json!({"provider": "nobody", "key": "sk-0123456789"}),
        )
        .await;
    assert_eq!(reply.body["field"], "provider");
}

#[tokio::test]
async fn bad_ids_queries_and_hostile_strings_are_refused_or_stored_verbatim() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    for path in [
        "/api/v1/chats/not-a-uuid",
        "/api/v1/chats/1%27%20OR%201=1--",
        "/api/v1/folders/..%2F..%2Fetc",
        "/api/v1/prompts/00000000-0000-0000-0000-00000000000g",
        "/api/v1/chats?limit=0",
        "/api/v1/chats?limit=100000",
        "/api/v1/chats?limit=abc",
        "/api/v1/chats?cursor=garbage",
        "/api/v1/chats?cursor=eyJ4IjoxfQ",
        "/api/v1/chats?team=nope",
        "/api/v1/chats?pinned=maybe",
        "/api/v1/chats?whatever=1",
        "/api/v1/search/messages",
        "/api/v1/search/messages?q=",
        "/api/v1/search/messages?q=%00",
    ] {
        let reply = ana.get(path).await;
        assert!(
            (400..500).contains(&reply.status) && !reply.code().is_empty(),
            "{path}: {reply:?}"
        );
    }
    // Hostile strings are data: stored and returned verbatim, never interpreted.
    let before = app.row_counts().await;
    for title in [
        "'); DROP TABLE chats; --",
        "<script>alert(1)</script>",
        "\u{202e}evil\u{200b}",
        "%s%n%x",
        "😀 Kopi ☕",
    ] {
        let reply = ana.post("/api/v1/chats", json!({"title": title})).await;
        assert_eq!(
            (reply.status, reply.body["title"].as_str()),
            (201, Some(title))
        );
    }
    let nul = ana
        .post("/api/v1/chats", json!({"title": "nul\u{0}byte"}))
        .await;
    assert_eq!(
        (nul.status, nul.body["field"].as_str()),
        (400, Some("title"))
    );
    let huge = ana
        .post("/api/v1/chats", json!({"title": "x".repeat(10_000)}))
        .await;
    assert_eq!(huge.status, 400);
    let search = ana
        .get("/api/v1/search/messages?q=%27%29%3B%20DROP%20TABLE%20messages%3B%20--")
        .await;
    assert_eq!(search.status, 200);
    let after = app.row_counts().await;
    let chats = |counts: &[(String, i64)]| counts.iter().find(|(t, _)| t == "chats").unwrap().1;
    assert_eq!(chats(&after), chats(&before) + 5);
}
