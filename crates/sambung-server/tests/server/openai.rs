//! Personal access tokens and the OpenAI-compatible endpoint (SPEC section 16): the tokens'
//! access matrix, and OpenAI's official SDKs (Node `openai`, pinned in `openai-client/`, and
//! Python `openai` from PyPI) reading our answers with their own parsers, with a provider of
//! each wire format behind the model.

use crate::common;

use common::{TestApp, User};
use sambung_ai::fake::{
    Script, ANTHROPIC_STREAM, ANTHROPIC_TOOL_STREAM, GEMINI_STREAM, GEMINI_TOOL_STREAM,
    OPENAI_STREAM, OPENAI_TOOL_STREAM,
};
use serde_json::{json, Value};

/// The Python SDK the tests install.
const PYTHON_OPENAI: &str = "openai==3.63.0";

/// A token of `user`'s with `scopes`: its id and secret.
async fn token(user: &User, name: &str, scopes: &[&str]) -> (String, String) {
    let made = user
        .post("/api/v1/tokens", json!({"name": name, "scopes": scopes}))
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let secret = made.body["tokenSecret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk-sambung-"), "{secret}");
    (made.body["id"].as_str().unwrap().to_owned(), secret)
}

fn assert_openai_error(reply: &common::Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    let error = &reply.body["error"];
    assert_eq!(error["code"], code, "{reply:?}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{reply:?}"
    );
    assert!(error["type"].is_string(), "{reply:?}");
    assert!(
        error.as_object().unwrap().contains_key("param"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn tokens_act_within_their_scopes_and_stop_at_once() {
    let app = TestApp::start().await;
    let admin = app.user("root").await;
    let ana = app.user("ana").await;
    let bo = app.user("bo").await;

    // Bad input: said, nothing made.
    for (body, field) in [
        (json!({"name": "x", "scopes": ["admin"]}), "scopes"),
        (json!({"name": " ", "scopes": ["chat"]}), "name"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (
            json!({"name": "x", "scopes": ["chat"], "expiresAt": "2020-01-01T00:00:00Z"}),
            "expiresAt",
        ),
    ] {
        let refused = ana.post("/api/v1/tokens", body.clone()).await;
        assert_eq!(refused.status, 400, "{body}: {refused:?}");
        assert_eq!(refused.body["field"], field, "{body}: {refused:?}");
    }

    let (chat_id, chat) = token(&ana, "editor", &["chat"]).await;
    let (_, read) = token(&ana, "dashboard", &["read"]).await;
    let (_, write) = token(&ana, "script", &["read", "write"]).await;
    let listed = ana.get("/api/v1/tokens").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 3, "{listed:?}");
    assert!(
        !listed.text.contains("sk-sambung-"),
        "a secret is never listed again"
    );

    let as_token = |secret: &str| app.bearer_client(&app.url, secret);
    assert_eq!(as_token(&chat).get("/v1/models").await.status, 200);
    let lowercase = reqwest::Client::new()
        .get(format!("{}/v1/models", app.url))
        .header("authorization", format!("bearer {chat}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        lowercase.status(),
        200,
        "the scheme's case is nobody's concern"
    );
    let refused = as_token(&chat).get("/api/v1/chats").await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "INSUFFICIENT_SCOPE"),
        "{refused:?}"
    );
    assert_eq!(as_token(&read).get("/api/v1/chats").await.status, 200);
    let refused = as_token(&read).post("/api/v1/chats", json!({})).await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "INSUFFICIENT_SCOPE")
    );
    assert_openai_error(
        &as_token(&read).get("/v1/models").await,
        403,
        "insufficient_scope",
    );
    let made = as_token(&write)
        .post("/api/v1/chats", json!({"title": "By script"}))
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let owner: String =
        sqlx::query_scalar("SELECT user_id::text FROM chats WHERE title = 'By script'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(owner, ana.id.to_string(), "a token acts as its owner");
    // ...and the audit log tells what a program did with it from what she did.
    let shared = as_token(&write)
        .post(
            &format!("/api/v1/chats/{}/share", made.body["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(shared.status, 200, "{shared:?}");
    let by: Value = sqlx::query_scalar(
        "SELECT detail->'accessToken' FROM audit_events WHERE action = 'chat.shared'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(by["name"], "script", "{by}");

    // Never the tokens themselves, sign-in, two-factor or administration.
    for (method, path) in [
        ("GET", "/api/v1/tokens"),
        ("POST", "/api/v1/tokens"),
        ("GET", "/api/auth/get-session"),
        ("POST", "/api/auth/sign-out"),
        ("GET", "/api/v1/me/two-factor/qr"),
        ("GET", "/api/v1/admin/settings"),
    ] {
        let client = as_token(&write);
        let reply = match method {
            "GET" => client.get(path).await,
            _ => {
                client
                    .post(path, json!({"name": "more", "scopes": ["chat"]}))
                    .await
            }
        };
        assert_eq!(
            (reply.status, reply.code()),
            (403, "TOKEN_NOT_ALLOWED"),
            "{path}: {reply:?}"
        );
    }
    let (_, admins) = token(&admin, "admin script", &["read", "write"]).await;
    // An admin acting as Ana cannot leave a token of hers behind.
    let acting = app.anonymous();
    acting
        .sign_in(json!({"email": admin.email, "password": admin.password}))
        .await;
    let impersonating = acting
        .post(
            "/api/auth/admin/impersonate-user",
            json!({"userId": ana.id}),
        )
        .await;
    assert_eq!(impersonating.status, 200, "{impersonating:?}");
    let refused = acting
        .post(
            "/api/v1/tokens",
            json!({"name": "backdoor", "scopes": ["chat"]}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "IMPERSONATING"),
        "{refused:?}"
    );
    let refused = as_token(&admins).get("/api/v1/admin/tokens").await;
    assert_eq!(refused.status, 403, "an admin's token does not administer");

    // Its last use is noted; an admin sees every token with its owner.
    let listed = ana.get("/api/v1/tokens").await;
    let editor = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "editor")
        .unwrap()
        .clone();
    assert!(editor["lastUsedAt"].is_string(), "{editor}");
    assert_eq!(editor["lastUsedIp"], "127.0.0.1");
    let all = admin.get("/api/v1/admin/tokens").await;
    assert!(
        all.body
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["userEmail"] == "ana@example.com" && t["name"] == "editor"),
        "{all:?}"
    );
    assert_eq!(bo.get("/api/v1/admin/tokens").await.status, 403);

    // Revoked: refused at once. Another's token cannot be revoked by a non-admin.
    assert_eq!(
        bo.delete(&format!("/api/v1/tokens/{chat_id}")).await.status,
        404
    );
    assert_eq!(
        ana.delete(&format!("/api/v1/tokens/{chat_id}"))
            .await
            .status,
        204
    );
    assert_openai_error(
        &as_token(&chat).get("/v1/models").await,
        401,
        "invalid_api_key",
    );
    let refused = as_token(&chat).get("/api/v1/me").await;
    assert_eq!(
        (refused.status, refused.code()),
        (401, "INVALID_TOKEN"),
        "never quietly anonymous"
    );
    assert_openai_error(
        &as_token("sk-sambung-made-up").get("/v1/models").await,
        401,
        "invalid_api_key",
    );

    // Expired; an owner banned; an admin's revocation; tokens turned off.
    let (_, expiring) = token(&ana, "short", &["read"]).await;
    sqlx::query(
        "UPDATE access_tokens SET expires_at = now() - interval '1 second' WHERE name = 'short'",
    )
    .execute(app.pool())
    .await
    .unwrap();
    assert_eq!(as_token(&expiring).get("/api/v1/me").await.status, 401);
    let (_, bos) = token(&bo, "bo's", &["read"]).await;
    assert_eq!(as_token(&bos).get("/api/v1/me").await.status, 200);
    let banned = admin
        .post("/api/auth/admin/ban-user", json!({"userId": bo.id}))
        .await;
    assert_eq!(banned.status, 200, "{banned:?}");
    assert_eq!(as_token(&bos).get("/api/v1/me").await.status, 401);
    let read_id = ana
        .get("/api/v1/tokens")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "dashboard")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        admin
            .delete(&format!("/api/v1/admin/tokens/{read_id}"))
            .await
            .status,
        204
    );
    assert_eq!(as_token(&read).get("/api/v1/me").await.status, 401);
    let off = admin
        .patch("/api/v1/admin/settings", json!({"accessTokens": false}))
        .await;
    assert_eq!(off.status, 200, "{off:?}");
    assert_eq!(as_token(&write).get("/api/v1/me").await.status, 401);
    let refused = ana
        .post("/api/v1/tokens", json!({"name": "x", "scopes": ["chat"]}))
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "ACCESS_TOKENS_DISABLED")
    );
    admin
        .patch("/api/v1/admin/settings", json!({"accessTokens": true}))
        .await;
    assert_eq!(as_token(&write).get("/api/v1/me").await.status, 200);

    // The audit log keeps who made and revoked which.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events WHERE action LIKE 'user.token-%' ORDER BY at, id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "user.token-created")
            .count(),
        6,
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "user.token-revoked")
            .count(),
        2,
        "{actions:?}"
    );
}

#[tokio::test]
async fn the_endpoint_refuses_bad_requests_in_openais_shape() {
    let app = TestApp::start().await;
    let (ana, _) = app.user_with_model("ana").await;
    let (_, secret) = token(&ana, "editor", &["chat"]).await;
    let client = app.bearer_client(&app.url, &secret);
    let ok = |extra: Value| {
        let mut body = json!({"model": "Test", "messages": [{"role": "user", "content": "Halo"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (body, param) in [
        (ok(json!({"n": 2})), "n"),
        // Null where OpenAI's schema allows it is read as absent: the refusal is the `n`.
        (ok(json!({"n": 2, "stream": null, "store": null})), "n"),
        // Asked for and not given is refused, never ignored.
        (ok(json!({"logprobs": true})), "logprobs"),
        (ok(json!({"top_logprobs": 2})), "top_logprobs"),
        (
            ok(json!({"response_format": {"type": "json_object"}})),
            "response_format",
        ),
        (ok(json!({"temperature": 3})), "temperature"),
        (ok(json!({"stop": ["a", "b", "c", "d", "e"]})), "stop"),
        (ok(json!({"messages": []})), "messages"),
        (
            ok(json!({"messages": [{"role": "wizard", "content": "x"}]})),
            "messages[0].role",
        ),
        (
            ok(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://169.254.169.254/x.png"}}]}]}),
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            ok(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/svg+xml;base64,PHN2Zz4="}}]}]}),
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            ok(json!({"messages": [{"role": "system", "content": "only a system prompt"}]})),
            "messages",
        ),
    ] {
        let reply = client.post("/v1/chat/completions", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(
            reply.body["error"]["type"], "invalid_request_error",
            "{reply:?}"
        );
        assert_eq!(reply.body["error"]["param"], param, "{body}: {reply:?}");
    }
    let broken = client
        .raw(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Some("application/json"),
            b"{\"model\": ".to_vec(),
        )
        .await;
    assert_eq!(broken.status, 400, "{broken:?}");
    assert!(
        broken.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON"),
        "{broken:?}"
    );
    let unknown = client
        .post(
            "/v1/chat/completions",
            json!({"model": "gpt-nope", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_openai_error(&unknown, 404, "model_not_found");
    // A body over the limit is refused in OpenAI's shape too.
    let huge = client
        .raw(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Some("application/json"),
            vec![b' '; 21 << 20],
        )
        .await;
    assert_eq!(huge.status, 413, "{huge:?}");
    assert_eq!(huge.body["error"]["type"], "invalid_request_error");
    assert_eq!(huge.body["error"]["param"], Value::Null);
    // One model, as the list shows it; an unknown one is OpenAI's 404.
    let one = client.get("/v1/models/Test").await;
    assert_eq!(one.status, 200, "{one:?}");
    assert_eq!(one.body["id"], "Test");
    assert_eq!(one.body["object"], "model");
    assert_openai_error(
        &client.get("/v1/models/gpt-nope").await,
        404,
        "model_not_found",
    );
    // Nothing reached the provider.
    assert_eq!(app.provider.requests().len(), 0);
    // Another's model is not the caller's.
    app.user_with_model("bo").await;
    let listed = client.get("/v1/models").await;
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        1,
        "{listed:?}"
    );
}

/// OpenAI's SDKs, installed once: the Node package's directory and the Python with the package.
async fn sdks() -> (std::path::PathBuf, String) {
    let dir = tokio::task::spawn_blocking(|| common::npm::installed("openai-client"))
        .await
        .unwrap();
    let python =
        tokio::task::spawn_blocking(|| common::pip::python_with("openai-venv", PYTHON_OPENAI))
            .await
            .unwrap();
    (dir, python.to_str().unwrap().to_owned())
}

/// Run `check.mjs` or `check.py` (an official SDK) with `request`.
async fn sdk(
    program: &[&str],
    dir: &std::path::Path,
    base: &str,
    token: &str,
    request: Value,
) -> Value {
    let output = tokio::process::Command::new(program[0])
        .args(&program[1..])
        .args([&format!("{base}/v1"), token, &request.to_string()])
        .current_dir(dir)
        .output()
        .await
        .expect("the SDK's interpreter runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "{program:?}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// What an SDK makes of asking `model` a one-word question, whole.
async fn sdk_asking(
    program: &[&str],
    dir: &std::path::Path,
    base: &str,
    token: &str,
    model: &str,
) -> Value {
    let request = json!({"model": model, "messages": [{"role": "user", "content": "x"}]});
    sdk(program, dir, base, token, request).await
}

#[tokio::test]
async fn openais_own_sdks_stream_from_each_provider_and_usage_counts() {
    let (dir, python) = sdks().await;
    let app = TestApp::start().await;
    let (ana, _) = app.user_with_model("ana").await;
    let key = ana
        .post(
            "/api/v1/api-keys",
            json!({"provider": "anthropic", "key": "sk-ant-fake-0001"}),
        )
        .await;
    let claude = ana
        .post("/api/v1/models", json!({"provider": "anthropic", "modelId": "claude-test", "name": "Claude",
                                        "baseUrl": app.provider.url("/v1"), "apiKeyId": key.body["id"]}))
        .await;
    assert_eq!(claude.status, 201, "{claude:?}");
    let (token_id, secret) = token(&ana, "sdk", &["chat"]).await;

    let node = ["node", "check.mjs"];
    let py = [python.as_str(), "check.py"];
    for program in [&node[..], &py[..]] {
        let listed = sdk(
            program,
            &dir,
            &app.url,
            &secret,
            json!({"model": "__list__"}),
        )
        .await;
        let ids: Vec<&str> = listed["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["Test", "Claude"],
            "defaults first: {program:?}: {listed}"
        );

        for (model, script, text, finish) in [
            ("Test", OPENAI_STREAM, "Halo, apa kabar? ☕", "stop"),
            ("Claude", ANTHROPIC_STREAM, "Selamat pagi!", "length"),
        ] {
            // Streamed, with usage last.
            app.provider.push(Script::sse(script, 7));
            let request = json!({"model": model, "stream": true, "stream_options": {"include_usage": true},
                                 "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Halo"}],
                                 "max_completion_tokens": 50, "temperature": 0.2, "stop": ["\n\n"]});
            let streamed = sdk(program, &dir, &app.url, &secret, request).await;
            assert_eq!(streamed["text"], text, "{program:?} {model}: {streamed}");
            let chunks = streamed["chunks"].as_array().unwrap();
            assert!(
                chunks
                    .iter()
                    .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == model),
                "{streamed}"
            );
            let last = chunks.last().unwrap();
            assert_eq!(last["choices"], json!([]), "{streamed}");
            assert!(
                last["usage"]["total_tokens"].as_u64().unwrap() > 0,
                "{streamed}"
            );
            let finished = &chunks[chunks.len() - 2]["choices"][0]["finish_reason"];
            assert_eq!(finished, finish, "{streamed}");
            let sent = app.last_request();
            match model {
                "Test" => assert_eq!(
                    (&sent["stop"], &sent["max_tokens"]),
                    (&json!(["\n\n"]), &json!(50)),
                    "{sent}"
                ),
                _ => assert_eq!(
                    (&sent["stop_sequences"], &sent["system"]),
                    (&json!(["\n\n"]), &json!("Be brief.")),
                    "{sent}"
                ),
            }

            // Whole.
            app.provider.push(Script::sse(script, 64));
            let whole = sdk(program, &dir, &app.url, &secret,
                json!({"model": model, "messages": [{"role": "user", "content": [{"type": "text", "text": "Halo"}]}]})).await;
            assert_eq!(whole["text"], text, "{program:?} {model}: {whole}");
            assert_eq!(whole["completion"]["object"], "chat.completion");
            assert_eq!(whole["completion"]["choices"][0]["finish_reason"], finish);
            assert!(
                whole["completion"]["usage"]["prompt_tokens"]
                    .as_u64()
                    .unwrap()
                    > 0,
                "{whole}"
            );
        }

        // What the SDKs raise: an unknown model, a provider that refuses.
        let unknown = sdk_asking(program, &dir, &app.url, &secret, "nope").await;
        assert_eq!(
            (&unknown["error"]["status"], &unknown["error"]["code"]),
            (&json!(404), &json!("model_not_found")),
            "{unknown}"
        );
        app.provider
            .push(Script::json(401, r#"{"error": {"message": "bad key"}}"#));
        let refused = sdk_asking(program, &dir, &app.url, &secret, "Test").await;
        assert!(
            refused["error"]["status"]
                .as_u64()
                .is_some_and(|s| s >= 400),
            "{refused}"
        );
    }

    // Counted in the usage dashboard, as personal use of each model.
    let used: Vec<(String, i64)> =
        sqlx::query_as("SELECT model, requests FROM usage_daily WHERE user_id = $1 ORDER BY model")
            .bind(ana.id)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        used,
        [("claude-test".to_owned(), 4), ("gpt-test".to_owned(), 6)],
        "{used:?}"
    );

    // A revoked token: refused at once, by both SDKs.
    ana.delete(&format!("/api/v1/tokens/{token_id}")).await;
    for program in [&node[..], &py[..]] {
        let refused = sdk_asking(program, &dir, &app.url, &secret, "Test").await;
        assert_eq!(
            (&refused["error"]["status"], &refused["error"]["code"]),
            (&json!(401), &json!("invalid_api_key")),
            "{refused}"
        );
        assert_eq!(refused["error"]["name"], "AuthenticationError", "{refused}");
    }
}

#[tokio::test]
async fn a_person_makes_uses_and_revokes_a_token_in_chromium() {
    use sambung_testkit::browser::Browser;
    let app = TestApp::start().await;
    app.user("root").await;
    let browser = Browser::start_dark().await;
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.client.goto(&app.url).await.unwrap();
    let shown =
        "const e = document.querySelector('#auth-switch'); return !!e && e.offsetParent !== null;";
    browser
        .until("the sign-in form", shown, |v| v == &json!(true))
        .await;
    browser.click("#auth-switch").await;
    common::sign_up_in(&browser, "Ana").await;
    browser.element(common::APP_DRAWN).await;
    browser.click("#open-settings").await;

    // Nothing it may do: said beside the form, the name kept.
    browser.type_into("#token-name", "My editor").await;
    browser.click("#token-scope-chat").await;
    browser.click("#token-form button[type=submit]").await;
    browser
        .until_text("#token-status.error", "at least one thing")
        .await;
    let kept = browser
        .client
        .execute(
            "return document.querySelector('#token-name').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, json!("My editor"));

    browser.click("#token-scope-chat").await;
    browser.click("#token-form button[type=submit]").await;
    browser
        .until_text("#token-status", "Token My editor made.")
        .await;
    let secret = browser.text("#token-secret").await;
    assert!(secret.starts_with("sk-sambung-"), "{secret}");
    browser.until_text("#token-list li", "My editor").await;
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth;";
    browser
        .until("the tokens within the phone's width", fits, |v| {
            v == &json!(true)
        })
        .await;
    browser
        .client
        .execute(
            "document.querySelector('#token-form').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    browser
        .screenshot(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join("screenshots")
                .join("tokens-phone-dark.png"),
        )
        .await;

    let program = app.bearer_client(&app.url, &secret);
    assert_eq!(program.get("/v1/models").await.status, 200);
    browser.client.refresh().await.unwrap();
    browser.until_text("#token-list li", "last used").await;

    browser
        .client
        .execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    browser.click("#token-list li button").await;
    browser.until_text("#token-status", "revoked").await;
    assert_eq!(program.get("/v1/models").await.status, 401);
    browser.close().await;
}

#[tokio::test]
async fn a_completion_is_kept_as_a_chat_only_when_asked() {
    let app = TestApp::start().await;
    let (ana, _) = app.user_with_model("ana").await;
    let (_, secret) = token(&ana, "notes app", &["chat"]).await;
    let client = app.bearer_client(&app.url, &secret);
    let chats = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM chats WHERE user_id = $1")
            .bind(ana.id)
            .fetch_one(app.pool())
            .await
            .unwrap()
    };
    let before = chats().await;
    let body = |store: bool, stream: bool| {
        json!({"model": "Test", "store": store, "stream": stream, "messages": [
            {"role": "system", "content": "Answer in Indonesian."},
            {"role": "user", "content": "What is a lighthouse for?"},
            {"role": "assistant", "content": "Ships."},
            {"role": "user", "content": "Say more about lighthouses please"}]})
    };
    app.provider.push(Script::sse(OPENAI_STREAM, 64));
    let plain = client
        .post("/v1/chat/completions", body(false, false))
        .await;
    assert_eq!(plain.status, 200, "{plain:?}");
    assert!(plain.headers.get("x-sambung-chat-id").is_none());
    // The model's settings fill in what the request leaves out, and only that.
    let sent = app.last_request();
    assert_eq!(sent["temperature"], 0.3, "{sent}");
    assert_eq!(
        sent["messages"][0]["content"], "Answer in Indonesian.",
        "{sent}"
    );
    assert_eq!(chats().await, before, "nothing is kept unless asked");

    app.provider.push(Script::sse(OPENAI_STREAM, 64));
    let kept = client.post("/v1/chat/completions", body(true, false)).await;
    let chat = kept.headers["x-sambung-chat-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let read = ana.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["title"], "Say more about lighthouses please");
    assert_eq!(
        read.body["settings"]["systemPrompt"],
        "Answer in Indonesian."
    );
    let messages: Vec<(String, String)> = sqlx::query_as(
        "SELECT role, content FROM messages WHERE chat_id = $1::uuid ORDER BY created_at",
    )
    .bind(&chat)
    .fetch_all(app.pool())
    .await
    .unwrap();
    let roles: Vec<&str> = messages.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(messages[3].1, "Halo, apa kabar? ☕");

    app.provider.push(Script::sse(OPENAI_STREAM, 64));
    let streamed = client.post("/v1/chat/completions", body(true, true)).await;
    assert!(
        streamed.text.ends_with("data: [DONE]\n\n"),
        "{}",
        streamed.text
    );
    assert_eq!(chats().await, before + 2, "a streamed one is kept too");
}

#[tokio::test]
async fn quotas_rate_limits_and_a_failing_provider_are_said_in_openais_shape() {
    let app = TestApp::with_limits(sambung_server::RateLimits {
        per_token: 3,
        ..sambung_server::RateLimits::unlimited()
    })
    .await;
    let (ana, _) = app.user_with_model("ana").await;
    let (_, secret) = token(&ana, "script", &["chat"]).await;
    let client = app.bearer_client(&app.url, &secret);
    let ask = |stream: bool| json!({"model": "Test", "stream": stream, "messages": [{"role": "user", "content": "Halo"}]});

    // A provider that breaks off half-way: the text so far, then an error event, no [DONE].
    app.provider.push(Script::sse(&OPENAI_STREAM[..330], 64));
    let broken = client.post("/v1/chat/completions", ask(true)).await;
    assert_eq!(broken.status, 200, "{broken:?}");
    assert!(broken.text.contains("Halo, "), "{}", broken.text);
    let last = broken.text.trim_end().rsplit("\n\n").next().unwrap();
    let error: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{last}"
    );
    assert!(!broken.text.contains("[DONE]"), "{}", broken.text);

    // A day's requests used up: 429 with when it resets.
    sqlx::query("INSERT INTO quotas (user_id, requests_per_day) VALUES ($1, 1)")
        .bind(ana.id)
        .execute(app.pool())
        .await
        .unwrap();
    let over = client.post("/v1/chat/completions", ask(false)).await;
    assert_openai_error(&over, 429, "insufficient_quota");
    let wait: u64 = over.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&wait), "{wait}");
    // OpenAI's SDKs would sleep that long and ask again: they are told not to.
    assert_eq!(over.headers["x-should-retry"], "false");

    // The token's own limit: 3 in the window, two used above.
    let limited = client.get("/v1/models").await;
    assert_eq!(limited.status, 200, "{limited:?}");
    let limited = client.get("/v1/models").await;
    assert_openai_error(&limited, 429, "rate_limit_exceeded");
    assert!(limited.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn a_person_runs_only_as_many_completions_at_once_as_their_quota_allows() {
    let app = TestApp::start().await;
    let (ana, _) = app.user_with_model("ana").await;
    sqlx::query("INSERT INTO quotas (user_id, running_generations) VALUES ($1, 1)")
        .bind(ana.id)
        .execute(app.pool())
        .await
        .unwrap();
    let (_, secret) = token(&ana, "script", &["chat"]).await;
    let client = app.bearer_client(&app.url, &secret);
    let ask =
        json!({"model": "Test", "stream": true, "messages": [{"role": "user", "content": "Halo"}]});

    // One holds its place while its provider streams slowly (about 5 s)...
    app.provider
        .push(Script::sse(OPENAI_STREAM, 40).paced(std::time::Duration::from_millis(300)));
    let first = client
        .http
        .post(client.url("/v1/chat/completions"))
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let second = client.post("/v1/chat/completions", ask.clone()).await;
    // A rate limit to OpenAI's clients (they wait and retry), not a day's quota used up.
    assert_openai_error(&second, 429, "rate_limit_exceeded");
    assert_eq!(second.headers["retry-after"], "1");

    // ...and gives it back when its caller leaves.
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        app.provider.push(Script::sse(OPENAI_STREAM, 64));
        let again = client.post("/v1/chat/completions", ask.clone()).await;
        if again.status == 200 {
            assert!(again.text.ends_with("data: [DONE]\n\n"), "{}", again.text);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the place was never given back: {again:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A write token can change chats, not where a stored key is sent: a model, a key or a
/// provider's model list would each send it to an address of the caller's choosing. And an
/// admin who ends someone's sessions ends their tokens with them.
#[tokio::test]
async fn no_token_reaches_a_providers_key_and_a_lock_out_ends_tokens() {
    let app = TestApp::start().await;
    let admin = app.user("root").await;
    let (ana, _) = app.user_with_model("ana").await;
    let key = ana.get("/api/v1/api-keys").await.body["items"][0]["id"].clone();
    let model = ana.get("/api/v1/models").await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, write) = token(&ana, "script", &["read", "write"]).await;
    let client = app.bearer_client(&app.url, &write);
    let elsewhere = "https://attacker.example/v1";
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/models".to_owned(),
            json!({"provider": "openai", "modelId": "m", "baseUrl": elsewhere, "apiKeyId": key}),
        ),
        (
            "PATCH",
            format!("/api/v1/models/{model}"),
            json!({"baseUrl": elsewhere}),
        ),
        ("DELETE", format!("/api/v1/models/{model}"), json!({})),
        (
            "POST",
            "/api/v1/api-keys".to_owned(),
            json!({"provider": "openai", "key": "sk-x"}),
        ),
        (
            "DELETE",
            format!("/api/v1/api-keys/{}", key.as_str().unwrap()),
            json!({}),
        ),
        (
            "POST",
            "/api/v1/providers/openai/models".to_owned(),
            json!({"apiKeyId": key, "baseUrl": elsewhere}),
        ),
    ] {
        let reply = match method {
            "POST" => client.post(&path, body).await,
            "PATCH" => client.patch(&path, body).await,
            _ => client.delete(&path).await,
        };
        assert_eq!(
            (reply.status, reply.code()),
            (403, "TOKEN_NOT_ALLOWED"),
            "{method} {path}: {reply:?}"
        );
    }
    assert!(app.provider.requests().is_empty(), "no provider was called");
    let models = ana.get("/api/v1/models").await;
    assert_eq!(models.body["items"].as_array().unwrap().len(), 1);
    assert!(!models.text.contains("attacker"), "{models:?}");
    // Reading them stays a read: the key's secret is never in it.
    let keys = client.get("/api/v1/api-keys").await;
    assert_eq!(keys.status, 200, "{keys:?}");
    assert!(!keys.text.contains("KEYVALUE"), "{keys:?}");

    // An admin ends Ana's sessions: her tokens end too, and the audit log says how many.
    assert_eq!(client.get("/api/v1/me").await.status, 200);
    let ended = admin
        .post(
            "/api/auth/admin/revoke-user-sessions",
            json!({"userId": ana.id}),
        )
        .await;
    assert_eq!(ended.status, 200, "{ended:?}");
    assert_eq!(client.get("/api/v1/me").await.status, 401);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM access_tokens")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    let details: Value = sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE action = 'user.sessions-revoked'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(details["tokens"], 1, "{details}");
}

/// Without a token the endpoint answers 401 before it reads a body; a limit, an unknown
/// route and an account that waits for approval answer in OpenAI's shape too.
#[tokio::test]
async fn every_refusal_on_v1_is_in_openais_shape() {
    let app = TestApp::with_limits(sambung_server::RateLimits {
        costly: 2,
        ..sambung_server::RateLimits::unlimited()
    })
    .await;
    let anonymous = app.anonymous();
    // 30 MiB, over the endpoint's own limit: refused for who is asking, not for its size.
    let huge =
        json!({"model": "x", "messages": [{"role": "user", "content": "a".repeat(30 << 20)}]});
    assert_openai_error(
        &anonymous.post("/v1/chat/completions", huge).await,
        401,
        "invalid_api_key",
    );
    let (ana, _) = app.user_with_model("ana").await;
    let (_, secret) = token(&ana, "script", &["chat"]).await;
    let client = app.bearer_client(&app.url, &secret);
    assert_openai_error(&client.get("/v1/embeddings").await, 404, "route_not_found");
    // The address's chat bucket (2 in the window; the 401 above was one).
    let ask = json!({"model": "nobody", "messages": [{"role": "user", "content": "Halo"}]});
    assert_openai_error(
        &client.post("/v1/chat/completions", ask.clone()).await,
        404,
        "model_not_found",
    );
    let limited = client.post("/v1/chat/completions", ask).await;
    assert_openai_error(&limited, 429, "rate_limit_exceeded");
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait), "the limiter's own wait: {wait}");
}

/// A team's model called through the endpoint is the team's use: counted in its usage and
/// held to its quota, as a turn in the team's chat is.
#[tokio::test]
async fn a_teams_model_spends_the_teams_allowance() {
    let app = TestApp::start().await;
    let (ana, _) = app.user_with_model("ana").await;
    let member = app.user("member").await;
    let team = ana
        .post("/api/v1/teams", json!({"name": "Kopi", "slug": "kopi"}))
        .await
        .body["id"]
        .clone();
    app.join_team(&ana, "kopi", &member).await;
    let key = ana.get("/api/v1/api-keys").await.body["items"][0]["id"].clone();
    let made = ana
        .post("/api/v1/models", json!({"provider": "openai", "modelId": "gpt-team", "name": "Kopi model", "baseUrl": app.provider.url("/v1"), "apiKeyId": key, "team": team}))
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let (_, secret) = token(&member, "script", &["chat"]).await;
    let client = app.bearer_client(&app.url, &secret);
    let ask = json!({"model": "Kopi model", "messages": [{"role": "user", "content": "Halo"}]});
    app.provider.push(Script::sse(OPENAI_STREAM, 64));
    let answered = client.post("/v1/chat/completions", ask.clone()).await;
    assert_eq!(answered.status, 200, "{answered:?}");
    // Usage is counted once the answer is whole; give it its moment.
    let mut counted = None;
    for _ in 0..50 {
        counted = sqlx::query_scalar::<_, Option<String>>(
            "SELECT team_id::text FROM usage_daily WHERE user_id = $1",
        )
        .bind(member.id)
        .fetch_optional(app.pool())
        .await
        .unwrap();
        if counted.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(counted.flatten().as_deref(), team.as_str());

    sqlx::query("INSERT INTO quotas (team_id, requests_per_day) VALUES ($1::uuid, 1)")
        .bind(team.as_str().unwrap())
        .execute(app.pool())
        .await
        .unwrap();
    let over = client.post("/v1/chat/completions", ask).await;
    assert_openai_error(&over, 429, "insufficient_quota");
    assert!(over.text.contains("team"), "{over:?}");
}

/// A caller's tools reach each provider, the model's calls come back in OpenAI's shape (read by
/// both SDKs, streamed and whole), and the tools' answers go on to the provider.
#[tokio::test]
async fn openais_own_sdks_call_tools_through_each_provider() {
    let (dir, python) = sdks().await;
    let app = TestApp::start().await;
    let (ana, _) = app.user_with_model("ana").await;
    for (provider, name, model) in [
        ("anthropic", "Claude", "claude-test"),
        ("google", "Gemini", "gemini-test"),
    ] {
        let key = ana
            .post(
                "/api/v1/api-keys",
                json!({"provider": provider, "key": "fake-key-0001"}),
            )
            .await;
        let base = match provider {
            "anthropic" => app.provider.url("/v1"),
            _ => app.provider.url(""),
        };
        let made = ana
            .post(
                "/api/v1/models",
                json!({"provider": provider, "modelId": model, "name": name,
                                            "baseUrl": base, "apiKeyId": key.body["id"]}),
            )
            .await;
        assert_eq!(made.status, 201, "{made:?}");
    }
    let (_, secret) = token(&ana, "agent", &["chat"]).await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "The weather at a place",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]);
    let question = json!({"role": "user", "content": "Weather in Jakarta?"});

    let node = ["node", "check.mjs"];
    let py = [python.as_str(), "check.py"];
    for program in [&node[..], &py[..]] {
        for (model, calling, answering, id) in [
            ("Test", OPENAI_TOOL_STREAM, OPENAI_STREAM, "call_abc123"),
            (
                "Claude",
                ANTHROPIC_TOOL_STREAM,
                ANTHROPIC_STREAM,
                "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            ),
            ("Gemini", GEMINI_TOOL_STREAM, GEMINI_STREAM, "call_0"),
        ] {
            let case = format!("{program:?} {model}");
            // Streamed: the call in a chunk the SDK reads, finish_reason tool_calls.
            app.provider.push(Script::sse(calling, 7));
            let streamed = sdk(program, &dir, &app.url, &secret,
                json!({"model": model, "stream": true, "tools": tools, "tool_choice": "auto", "messages": [question]})).await;
            let calls = streamed["toolCalls"]
                .as_array()
                .unwrap_or_else(|| panic!("{case}: {streamed}"));
            assert_eq!(calls.len(), 1, "{case}: {streamed}");
            assert_eq!(
                (&calls[0]["id"], &calls[0]["name"]),
                (&json!(id), &json!("get_weather")),
                "{case}"
            );
            let arguments: Value =
                serde_json::from_str(calls[0]["arguments"].as_str().unwrap()).unwrap();
            assert_eq!(arguments, json!({"location": "Jakarta"}), "{case}");
            let chunks = streamed["chunks"].as_array().unwrap();
            assert!(
                chunks
                    .iter()
                    .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"),
                "{case}: {streamed}"
            );
            let sent = app.last_request();
            assert!(
                sent.to_string().contains("The weather at a place"),
                "{case}: the tools reached the provider: {sent}"
            );

            // Whole: the SDK's typed message carries the call.
            app.provider.push(Script::sse(calling, 64));
            let whole = sdk(
                program,
                &dir,
                &app.url,
                &secret,
                json!({"model": model, "tools": tools, "messages": [question]}),
            )
            .await;
            let choice = &whole["completion"]["choices"][0];
            assert_eq!(choice["finish_reason"], "tool_calls", "{case}: {whole}");
            let call = &choice["message"]["tool_calls"][0];
            assert_eq!(
                (&call["id"], &call["type"], &call["function"]["name"]),
                (&json!(id), &json!("function"), &json!("get_weather")),
                "{case}: {whole}"
            );

            // The tool's answer goes back with the call it answers; the model replies.
            app.provider.push(Script::sse(answering, 64));
            let answered = sdk(program, &dir, &app.url, &secret, json!({"model": model, "tools": tools, "messages": [
                question,
                {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"location\": \"Jakarta\"}"}}]},
                {"role": "tool", "tool_call_id": id, "content": "31°C, rain"}]})).await;
            assert!(
                answered["text"].as_str().is_some_and(|t| !t.is_empty()),
                "{case}: {answered}"
            );
            let sent = app.last_request().to_string();
            assert!(
                sent.contains("31°C, rain") && sent.contains("get_weather"),
                "{case}: {sent}"
            );
        }
    }

    // A tool message that answers no call, a call left unanswered, a bad tool: 400s naming
    // the field, before any provider is asked.
    let client = app.bearer_client(&app.url, &secret);
    let asked = app.provider.requests().len();
    let call = json!({"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}});
    for (body, param) in [
        (
            json!({"model": "Test", "messages": [question, {"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
            "messages[1].tool_call_id",
        ),
        (
            json!({"model": "Test", "messages": [question, {"role": "assistant", "tool_calls": [call]}, {"role": "user", "content": "and?"}]}),
            "messages",
        ),
        (
            json!({"model": "Test", "messages": [question, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{not json"}}]}]}),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            json!({"model": "Test", "tools": [{"type": "function", "function": {"name": "has space"}}], "messages": [question]}),
            "tools[0].function.name",
        ),
        (
            json!({"model": "Test", "tools": [{"type": "retrieval", "function": {"name": "x"}}], "messages": [question]}),
            "tools[0].type",
        ),
        (
            json!({"model": "Test", "tools": tools, "tool_choice": {"type": "function", "function": {"name": "other"}}, "messages": [question]}),
            "tool_choice",
        ),
        (
            json!({"model": "Test", "tool_choice": "required", "messages": [question]}),
            "tool_choice",
        ),
    ] {
        let refused = client.post("/v1/chat/completions", body.clone()).await;
        assert_eq!(refused.status, 400, "{body}: {refused:?}");
        assert_eq!(refused.body["error"]["type"], "invalid_request_error");
        assert_eq!(refused.body["error"]["param"], param, "{body}: {refused:?}");
    }
    assert_eq!(
        app.provider.requests().len(),
        asked,
        "no provider was asked"
    );
}
