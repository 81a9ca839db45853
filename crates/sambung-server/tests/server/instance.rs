//! The instance an organisation runs (SPEC section 12), over real HTTP: who may sign up and
//! the approval of accounts, connections and models everyone uses without a key, usage and
//! quotas, mail through a real SMTP server on loopback (password resets, verification,
//! invitations), the audit log, the admin routes' access matrix and bad input, and the
//! sample account's printed password on a server others can reach.

use crate::common;

use std::time::Duration;

use common::smtp::{link_in, SmtpServer};
use common::{Client, TestApp, User};
use reqwest::Method;
use sambung_ai::fake::Script;
use sambung_db::instance::SignupPolicy;
use serde_json::{json, Value};

const REPLY: &str = concat!(
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Shared \"},\"finish_reason\":null}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"answer\"},\"finish_reason\":null}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":5,\"total_tokens\":14}}\n\n",
    "data: [DONE]\n\n",
);

/// A reply of `tokens` pieces, `pace_ms` apart.
fn slow(tokens: usize, pace_ms: u64) -> Script {
    let mut body = String::new();
    for i in 0..tokens {
        body.push_str(&format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i} \"}},\"finish_reason\":null}}]}}\n\n"));
    }
    body.push_str("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    Script::sse(&body, 60).paced(Duration::from_millis(pace_ms))
}

fn ok(reply: common::Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{reply:?}");
    reply.body
}

/// Sign up `name@domain` with `extra` fields in the body; the raw answer.
async fn sign_up(app: &TestApp, email: &str, extra: Value) -> (Client, common::Reply) {
    let client = app.anonymous();
    let mut body = json!({"name": email.split('@').next().unwrap(), "email": email, "password": "password-123"});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let reply = client.post("/api/auth/sign-up/email", body).await;
    (client, reply)
}

#[tokio::test]
async fn the_first_account_administers_and_the_policy_decides_who_else_gets_in() {
    let mut steps = sambung_testkit::Steps::new();
    // The instance's own default policy (the tests' usual servers let everyone in).
    let app = TestApp::with_settings(|s| s.signup = None).await;

    steps.at("the sample account does not count: the first person to sign up is the admin");
    sqlx::query("INSERT INTO users (name, email) VALUES ('Demo', 'demo@sambung.chat')")
        .execute(app.pool())
        .await
        .unwrap();
    let (boss, reply) = sign_up(&app, "boss@example.com", json!({})).await;
    let body = ok(reply, 200);
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["user"]["approved"], true);
    let instance = ok(boss.get("/api/v1/instance").await, 200);
    assert_eq!(instance["signup"], "approval");
    assert_eq!(instance["needsSetup"], true);

    steps.at("then approval: the account exists and can do nothing but wait, saying so");
    let (ana, reply) = sign_up(&app, "ana@example.com", json!({})).await;
    let body = ok(reply, 200);
    assert_eq!(
        (
            body["user"]["role"].as_str(),
            body["user"]["approved"].as_bool()
        ),
        (Some("user"), Some(false))
    );
    let ana_id = body["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(ok(ana.get("/api/v1/me").await, 200)["approved"], false);
    let refused = ana.get("/api/v1/chats").await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "ACCOUNT_NOT_APPROVED")
    );
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("approve"));
    let refused = ana.post("/api/v1/chats", json!({"title": "x"})).await;
    assert_eq!(refused.status, 403);
    assert_eq!(ana.get("/api/v1/instance").await.status, 200);
    assert!(ana
        .get("/api/v1/instance")
        .await
        .body
        .get("needsSetup")
        .is_none());

    steps.at("an admin finds the waiting account and approves it");
    let waiting = ok(
        boss.get("/api/auth/admin/list-users?filterField=approved&filterValue=false")
            .await,
        200,
    );
    assert_eq!(waiting["total"], 1);
    assert_eq!(waiting["users"][0]["email"], "ana@example.com");
    ok(
        boss.post(
            "/api/auth/admin/update-user",
            json!({"userId": ana_id, "data": {"approved": true}}),
        )
        .await,
        200,
    );
    assert_eq!(ana.get("/api/v1/chats").await.status, 200);

    steps.at(
        "invite: refused without an invitation, with Better Auth's code; an invitation works once",
    );
    let settings = ok(
        boss.patch("/api/v1/admin/settings", json!({"signup": "invite"}))
            .await,
        200,
    );
    assert_eq!(settings["settings"]["signup"], "invite");
    assert_eq!(settings["signupFromEnvironment"], false);
    let (_, refused) = sign_up(&app, "cara@example.com", json!({})).await;
    assert_eq!(
        (refused.status, refused.code()),
        (400, "EMAIL_PASSWORD_SIGN_UP_DISABLED")
    );
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("invitation"));
    let invite = ok(boss.post("/api/v1/admin/invites", json!({})).await, 201);
    let link = invite["link"].as_str().unwrap();
    let token = link.split("invitation=").nth(1).unwrap();
    assert_eq!(invite["mail"], Value::Null, "no address, no mail");
    let (cara, reply) = sign_up(&app, "cara@example.com", json!({"invitation": token})).await;
    assert_eq!(ok(reply, 200)["user"]["approved"], true);
    assert_eq!(cara.get("/api/v1/chats").await.status, 200);
    let (_, again) = sign_up(&app, "dora@example.com", json!({"invitation": token})).await;
    assert_eq!(
        again.code(),
        "EMAIL_PASSWORD_SIGN_UP_DISABLED",
        "an invitation works once"
    );
    let for_eve = ok(
        boss.post("/api/v1/admin/invites", json!({"email": "eve@example.com"}))
            .await,
        201,
    );
    assert_eq!(
        for_eve["mail"], "unsent",
        "no mail server: the link is the admin's to pass on"
    );
    let eve_token = for_eve["link"]
        .as_str()
        .unwrap()
        .split("invitation=")
        .nth(1)
        .unwrap()
        .to_owned();
    let (_, wrong) = sign_up(
        &app,
        "mallory@example.com",
        json!({"invitation": eve_token}),
    )
    .await;
    assert_eq!(
        wrong.status, 400,
        "an invitation for one address is for that address"
    );
    assert_eq!(
        ok(boss.get("/api/v1/admin/invites").await, 200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    steps.at("open, to some domains only");
    ok(
        boss.patch(
            "/api/v1/admin/settings",
            json!({"signup": "open", "allowedEmailDomains": ["@Example.ORG"]}),
        )
        .await,
        200,
    );
    let (_, refused) = sign_up(&app, "dan@example.com", json!({})).await;
    assert_eq!(refused.code(), "EMAIL_PASSWORD_SIGN_UP_DISABLED");
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("example.org"));
    let (_, reply) = sign_up(&app, "dan@example.org", json!({})).await;
    assert_eq!(ok(reply, 200)["user"]["approved"], true);

    steps.at("closed: a team's invitation still lets its invitee in");
    ok(
        boss.patch("/api/v1/admin/settings", json!({"signup": "closed"}))
            .await,
        200,
    );
    let team = ok(
        ana.post("/api/v1/teams", json!({"name": "Ops", "slug": "ops"}))
            .await,
        201,
    );
    let team_invite = ok(
        ana.post(
            "/api/v1/teams/ops/invites",
            json!({"email": "finn@example.com"}),
        )
        .await,
        201,
    );
    assert_eq!(team_invite["mail"], "unsent");
    let (_, refused) = sign_up(&app, "finn@example.com", json!({})).await;
    assert_eq!(refused.code(), "EMAIL_PASSWORD_SIGN_UP_DISABLED");
    let (finn, reply) = sign_up(
        &app,
        "finn@example.com",
        json!({"invitation": team_invite["token"]}),
    )
    .await;
    ok(reply, 200);
    let joined = finn
        .post(
            &format!(
                "/api/v1/invites/{}/accept",
                team_invite["token"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(ok(joined, 200)["teamId"], team["id"]);

    steps.at("settings refuse what they cannot hold, and only admins change them");
    for bad in [
        json!({"signup": "sometimes"}),
        json!({"noSuchSetting": 1}),
        json!({"auditRetentionDays": 0}),
        json!({"quotas": {"userTokensPerDay": -1}}),
        json!({"quotas": {"nope": 1}}),
        json!({"allowedEmailDomains": ["not a domain"]}),
        json!({"personalKeys": "yes"}),
    ] {
        let refused = boss.patch("/api/v1/admin/settings", bad.clone()).await;
        assert_eq!(refused.status, 400, "{bad}: {refused:?}");
    }
    let refused = ana
        .patch("/api/v1/admin/settings", json!({"signup": "open"}))
        .await;
    assert_eq!((refused.status, refused.code()), (403, "ADMIN_ONLY"));
    let audit = ok(
        boss.get("/api/v1/admin/audit?action=instance.settings-changed")
            .await,
        200,
    );
    assert_eq!(audit["items"].as_array().unwrap().len(), 3);
    let audit = ok(boss.get("/api/v1/admin/audit?action=admin.").await, 200);
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "admin.user-approved"));
}

#[tokio::test]
async fn the_environments_sign_up_policy_wins_and_the_admin_is_told() {
    let app = TestApp::with_settings(|s| s.signup = Some(SignupPolicy::Closed)).await;
    // Closed from the start: the operator makes the first admin.
    let (_, refused) = sign_up(&app, "first@example.com", json!({})).await;
    assert_eq!(refused.code(), "EMAIL_PASSWORD_SIGN_UP_DISABLED");
    let boss = sambung_db::admin::create_user(
        app.pool(),
        "Boss",
        "boss@example.com",
        Some("password-123"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(boss.role, "admin");
    let boss = app.anonymous();
    ok(
        boss.sign_in(json!({"email": "boss@example.com", "password": "password-123"}))
            .await,
        200,
    );
    let settings = ok(
        boss.patch("/api/v1/admin/settings", json!({"signup": "open"}))
            .await,
        200,
    );
    assert_eq!(settings["signupFromEnvironment"], true);
    assert_eq!(
        settings["settings"]["signup"], "closed",
        "the environment wins"
    );
    let (_, refused) = sign_up(&app, "second@example.com", json!({})).await;
    assert_eq!(refused.code(), "EMAIL_PASSWORD_SIGN_UP_DISABLED");
}

/// An admin with a connection to the fake provider and a default model of the instance on it
/// (prices 1 and 2 a million tokens), and an ordinary user with no key.
async fn instance_with_a_model(app: &TestApp) -> (User, User, String, String) {
    let boss = app.user("boss").await;
    let ana = app.user("ana").await;
    let connection = ok(
        boss.post(
            "/api/v1/admin/connections",
            json!({"name": "Fake", "provider": "custom", "baseUrl": app.provider.url("/v1"), "key": "sk-instance-SECRET-1234"}),
        )
        .await,
        201,
    );
    assert_eq!(connection["keyLast4"], "1234");
    assert!(!connection.to_string().contains("SECRET"));
    let connection = connection["id"].as_str().unwrap().to_owned();
    let model = ok(
        boss.post(
            "/api/v1/admin/models",
            json!({"connectionId": connection, "modelId": "gpt-test", "name": "Shared", "isDefault": true,
                   "inputPrice": 1.0, "outputPrice": 2.0}),
        )
        .await,
        201,
    );
    (
        boss,
        ana,
        connection,
        model["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn everyone_chats_on_the_instances_model_within_the_quotas() {
    let mut steps = sambung_testkit::Steps::new();
    let app = TestApp::start().await;
    let (boss, ana, connection, model) = instance_with_a_model(&app).await;

    steps.at("only admins set connections up; the provider lists its models");
    let refused = ana
        .post(
            "/api/v1/admin/connections",
            json!({"provider": "openai", "key": "sk-mine-12345678"}),
        )
        .await;
    assert_eq!((refused.status, refused.code()), (403, "ADMIN_ONLY"));
    app.provider.push(Script::json(
        200,
        r#"{"object":"list","data":[{"id":"gpt-test","object":"model"}]}"#,
    ));
    let offered = ok(
        boss.get(&format!("/api/v1/admin/connections/{connection}/models"))
            .await,
        200,
    );
    assert_eq!(offered["models"], json!(["gpt-test"]));
    let refused = boss
        .post("/api/v1/admin/connections", json!({"provider": "openai"}))
        .await;
    assert_eq!(refused.status, 400, "a hosted provider needs its key");

    steps.at("a user without any key picks the instance's model and chats");
    let usable = ok(ana.get("/api/v1/models/usable").await, 200);
    let items = usable["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0]["scope"].as_str(), items[0]["id"].as_str()),
        (Some("instance"), Some(model.as_str()))
    );
    assert!(items[0]["userId"].is_null());
    let chat = ok(
        ana.post("/api/v1/chats", json!({"title": "Ask"})).await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.provider.push(Script::sse(REPLY, 4096));
    let (status, body, _) = ana.generate(&chat, json!({"content": "Hello?"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("answer"));
    let sent = app.provider.requests().last().unwrap().clone();
    assert!(
        sent.contains("Bearer sk-instance-SECRET-1234"),
        "the connection's key calls the provider"
    );
    let changed = ana
        .patch(
            &format!("/api/v1/models/{model}"),
            json!({"provider": "openai", "modelId": "x"}),
        )
        .await;
    assert_eq!(
        changed.status, 403,
        "users use the instance's models, never change them"
    );

    steps.at("the reply's usage is counted, with its cost");
    let usage = ok(ana.get("/api/v1/usage?groupBy=model").await, 200);
    assert_eq!(usage["scope"], "mine");
    let group = &usage["groups"][0];
    assert_eq!(
        (
            group["requests"].as_i64(),
            group["inputTokens"].as_i64(),
            group["outputTokens"].as_i64()
        ),
        (Some(1), Some(9), Some(5))
    );
    assert!(
        (group["cost"].as_f64().unwrap() - 0.000019).abs() < 1e-9,
        "{group}"
    );
    let everyone = ok(boss.get("/api/v1/usage?groupBy=user").await, 200);
    assert_eq!(everyone["scope"], "all");
    assert!(everyone["groups"][0]["label"]
        .as_str()
        .unwrap()
        .contains("ana@example.com"));
    let refused = ana.get("/api/v1/usage?scope=all").await;
    assert_eq!(refused.status, 403);
    for bad in [
        "groupBy=week",
        "from=2026-01-10&to=2026-01-01",
        "from=2020-01-01&to=2026-01-01",
        "scope=theirs",
        "from=yesterday",
    ] {
        assert_eq!(
            ana.get(&format!("/api/v1/usage?{bad}")).await.status,
            400,
            "{bad}"
        );
    }
    let chart = ana.get("/api/v1/usage/chart.svg?groupBy=model").await;
    assert_eq!(chart.status, 200);
    assert_eq!(chart.headers["content-type"], "image/svg+xml");
    assert!(
        chart.text.starts_with("<svg") && chart.text.contains("gpt-test"),
        "{}",
        chart.text
    );
    assert!(chart.text.contains(">tokens by model, "), "{}", chart.text);
    // Drawn in the theme the user chose, whatever the device prefers.
    let dark = ana
        .get("/api/v1/usage/chart.svg?groupBy=model&theme=dark")
        .await;
    assert!(
        dark.text.contains("<style>svg{color:#e6e7ea}</style>"),
        "{}",
        dark.text
    );
    assert_eq!(
        ana.get("/api/v1/usage/chart.svg?theme=neon").await.status,
        400
    );
    let in_indonesian = ana
        .send(
            ana.http
                .get(ana.url("/api/v1/usage/chart.svg?groupBy=model&metric=requests"))
                .header("accept-language", "id"),
        )
        .await;
    assert!(
        in_indonesian.text.contains(">balasan per model, ")
            && in_indonesian.text.contains(" balasan</text>"),
        "{}",
        in_indonesian.text
    );

    steps.at(
        "a quota used up refuses the turn before the provider is called, saying which and when",
    );
    let ana_id = ana.id.to_string();
    assert_eq!(
        boss.raw(
            Method::PUT,
            "/api/v1/admin/quotas",
            Some("application/json"),
            json!({"userId": ana_id, "requestsPerDay": 1})
                .to_string()
                .into_bytes()
        )
        .await
        .status,
        204
    );
    let calls = app.provider.requests().len();
    let (status, body, _) = ana.generate(&chat, json!({"content": "Again?"})).await;
    assert_eq!(status, 429, "{body}");
    let refused: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refused["code"], "QUOTA_EXCEEDED");
    assert_eq!(refused["limit"], "userRequestsPerDay");
    assert_eq!(refused["allowed"], 1);
    let resets = refused["resetsAt"].as_str().unwrap();
    assert!(resets.ends_with("T00:00:00.000Z"), "{resets}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("your 1 reply a day is used up"),
        "{refused}"
    );
    assert_eq!(
        app.provider.requests().len(),
        calls,
        "the provider was not called"
    );
    let quotas = ok(boss.get("/api/v1/admin/quotas").await, 200);
    assert_eq!(quotas["items"][0]["subject"], "ana@example.com");
    assert_eq!(
        boss.raw(
            Method::PUT,
            "/api/v1/admin/quotas",
            Some("application/json"),
            json!({"userId": ana_id, "requestsPerDay": null})
                .to_string()
                .into_bytes()
        )
        .await
        .status,
        204
    );
    let team_quota = boss
        .raw(
            Method::PUT,
            "/api/v1/admin/quotas",
            Some("application/json"),
            json!({"teamId": ana_id, "runningGenerations": 1})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(
        team_quota.status, 400,
        "running replies are counted per user"
    );

    steps.at("replies running at once are held to the limit on every server");
    ok(
        boss.patch(
            "/api/v1/admin/settings",
            json!({"quotas": {"runningGenerations": 1}}),
        )
        .await,
        200,
    );
    let second_chat = ok(
        ana.post("/api/v1/chats", json!({"title": "Two"})).await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.provider.push(slow(400, 10));
    let streaming = {
        let ana = ana.client.clone();
        let chat = chat.clone();
        tokio::spawn(async move { ana.generate(&chat, json!({"content": "Long one"})).await })
    };
    for _ in 0..200 {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM messages WHERE metadata->>'status' = 'streaming'",
        )
        .fetch_one(app.pool())
        .await
        .unwrap();
        if running > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = app.another_server().await;
    let elsewhere = app.bearer_client(&other.url, &ana.token);
    let (status, refused, _) = elsewhere
        .generate(&second_chat, json!({"content": "Meanwhile"}))
        .await;
    assert_eq!(status, 429, "{refused}");
    let refused: Value = serde_json::from_str(&refused).unwrap();
    assert_eq!(refused["limit"], "runningGenerations");
    assert!(refused["resetsAt"].is_null());
    let (status, _, _) = streaming.await.unwrap();
    assert_eq!(status, 200);

    steps.at("a reply at the instance's cap ends as `length` with its text kept");
    ok(
        boss.patch(
            "/api/v1/admin/settings",
            json!({"quotas": {"runningGenerations": 3, "replyMaxOutputTokens": 3}}),
        )
        .await,
        200,
    );
    app.provider.push(slow(20, 1));
    let (status, body, _) = ana
        .generate(&second_chat, json!({"content": "Go on"}))
        .await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""finishReason":"length""#), "{body}");
    let sent = app.provider.requests().last().unwrap().clone();
    assert!(
        sent.contains(r#""max_tokens":3"#),
        "the provider is asked for no more: {sent}"
    );
    assert!(body.contains("t2 ") && !body.contains("t3 "), "{body}");

    steps.at("with personal keys off, a user's own key is refused");
    ok(
        boss.patch("/api/v1/admin/settings", json!({"personalKeys": false}))
            .await,
        200,
    );
    let refused = ana
        .post(
            "/api/v1/api-keys",
            json!({"provider": "openai", "key": "sk-mine-12345678"}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "PERSONAL_KEYS_DISABLED")
    );
    assert_eq!(
        ok(ana.get("/api/v1/instance").await, 200)["personalKeys"],
        false
    );

    steps.at("a model for chosen teams serves their chats only");
    let team = ok(
        boss.post("/api/v1/teams", json!({"name": "Lab", "slug": "lab"}))
            .await,
        201,
    );
    let lab_model = ok(
        boss.post(
            "/api/v1/admin/models",
            json!({"connectionId": connection, "modelId": "gpt-lab", "teams": [team["id"]]}),
        )
        .await,
        201,
    );
    assert_eq!(lab_model["teams"], json!([team["id"]]));
    let usable = ok(ana.get("/api/v1/models/usable").await, 200);
    assert_eq!(
        usable["items"].as_array().unwrap().len(),
        1,
        "Ana is not in the lab"
    );
    let (status, body, _) = ana
        .generate(&chat, json!({"content": "x", "model": lab_model["id"]}))
        .await;
    assert_eq!(status, 404, "{body}");
    let refused = boss
        .post(
            "/api/v1/admin/models",
            json!({"connectionId": connection, "modelId": "x", "teams": [ana_id]}),
        )
        .await;
    assert_eq!(refused.status, 400, "no such team");

    steps.at("the key never reached a user; every change is in the audit log, no secret in it");
    let seen = app.seen.lock().unwrap().join("\n");
    assert!(!seen.contains("sk-instance-SECRET"), "the key was shown");
    let log: Vec<String> = sqlx::query_scalar("SELECT row_to_json(a)::text FROM audit_events a")
        .fetch_all(app.pool())
        .await
        .unwrap();
    let log = log.join("\n");
    for secret in ["sk-instance-SECRET", "sk-mine", "password-of-"] {
        assert!(!log.contains(secret), "{secret} in the audit log");
    }
    for action in [
        "connection.added",
        "model.added",
        "instance.quota-changed",
        "instance.settings-changed",
    ] {
        assert!(log.contains(action), "{action} missing");
    }
    assert_eq!(
        boss.delete(&format!("/api/v1/admin/connections/{connection}"))
            .await
            .status,
        204
    );
    assert_eq!(
        ok(ana.get("/api/v1/models/usable").await, 200)["items"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "its models went with it"
    );
}

#[tokio::test]
async fn a_forgotten_password_and_an_unverified_address_come_back_by_mail() {
    let mut steps = sambung_testkit::Steps::new();
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::with_settings(move |s| {
        s.mailer = sambung_mail::Mailer::smtp(&url, "SambungChat <chat@example.org>").unwrap();
    })
    .await;
    let boss = app.user("boss").await;
    let ana = app.user("ana").await;
    let instance = ok(ana.get("/api/v1/instance").await, 200);
    assert_eq!(instance["mailConfigured"], true);

    let kept = ana
        .post(
            "/api/v1/tokens",
            json!({"name": "made before the reset", "scopes": ["read"]}),
        )
        .await;
    let kept = app.bearer_client(&app.url, ok(kept, 201)["tokenSecret"].as_str().unwrap());
    ok(kept.get("/api/v1/me").await, 200);

    steps.at("a reset asked for: the same answer for any address, a mail for Ana's");
    let anonymous = app.anonymous();
    let answer = ok(
        anonymous
            .post(
                "/api/auth/request-password-reset",
                json!({"email": "ana@example.com", "redirectTo": "/#/reset-password"}),
            )
            .await,
        200,
    );
    let nobody = ok(
        anonymous
            .post(
                "/api/auth/request-password-reset",
                json!({"email": "nobody@example.com", "redirectTo": "/#/reset-password"}),
            )
            .await,
        200,
    );
    assert_eq!(answer, nobody);
    assert_eq!(
        answer["message"],
        "If this email exists in our system, check your email for the reset link"
    );
    let refused = anonymous
        .post(
            "/api/auth/request-password-reset",
            json!({"email": "ana@example.com", "redirectTo": "https://evil.example/steal"}),
        )
        .await;
    assert_eq!(refused.status, 403);
    let mail = smtp.mail_to("ana@example.com").await;
    assert!(mail.contains("Subject: Reset your password"), "{mail}");
    // Asked again at once, thrice together (from anywhere): one mail a minute per address,
    // not a mail cannon.
    let again = || async {
        let answer = app
            .anonymous()
            .post(
                "/api/auth/request-password-reset",
                json!({"email": "ana@example.com"}),
            )
            .await;
        ok(answer, 200);
    };
    tokio::join!(again(), again(), again());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to_ana = smtp
        .received()
        .iter()
        .filter(|m| m.contains("To: ana@example.com"))
        .count();
    assert_eq!(to_ana, 1, "a second reset mail within the minute");
    let link = link_in(&mail);
    assert!(
        link.starts_with(&format!("{}/api/auth/reset-password/", app.url)),
        "{link}"
    );

    steps.at("the link leads to the page with its token; the token sets a password once");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let followed = no_redirects.get(&link).send().await.unwrap();
    assert_eq!(followed.status(), 302);
    let location = followed.headers()["location"].to_str().unwrap().to_owned();
    let token = location.split("token=").nth(1).expect("a token").to_owned();
    assert!(location.contains("#/reset-password?token="), "{location}");
    let bogus = no_redirects
        .get(format!(
            "{}/api/auth/reset-password/not-a-token?callbackURL=%2F%23%2Freset-password",
            app.url
        ))
        .send()
        .await
        .unwrap();
    assert!(bogus.headers()["location"]
        .to_str()
        .unwrap()
        .contains("error=INVALID_TOKEN"));
    let short = anonymous
        .post(
            "/api/auth/reset-password",
            json!({"newPassword": "short", "token": token}),
        )
        .await;
    assert_eq!(short.code(), "PASSWORD_TOO_SHORT");
    ok(
        anonymous
            .post(
                "/api/auth/reset-password",
                json!({"newPassword": "a-new-password", "token": token}),
            )
            .await,
        200,
    );
    let again = anonymous
        .post(
            "/api/auth/reset-password",
            json!({"newPassword": "another-one-1", "token": token}),
        )
        .await;
    assert_eq!((again.status, again.code()), (400, "INVALID_TOKEN"));
    assert!(
        ana.get("/api/auth/get-session").await.body.is_null(),
        "her sessions ended"
    );
    assert_eq!(
        kept.get("/api/v1/me").await.status,
        401,
        "and her tokens: whoever knew the old password may have made them"
    );
    let old = app
        .anonymous()
        .sign_in(json!({"email": "ana@example.com", "password": ana.password}))
        .await;
    assert_eq!(old.status, 401);
    ok(
        app.anonymous()
            .sign_in(json!({"email": "ana@example.com", "password": "a-new-password"}))
            .await,
        200,
    );
    let outbox = ok(boss.get("/api/v1/admin/mail").await, 200);
    let sent = &outbox["items"][0];
    assert_eq!(
        (sent["status"].as_str(), sent["kind"].as_str()),
        (Some("sent"), Some("reset-password"))
    );
    assert!(sent["link"].is_null(), "a mail that went keeps no link");
    let stored: Vec<String> = sqlx::query_scalar("SELECT value FROM verifications")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert!(
        stored.iter().all(|v| !v.contains(&token)),
        "tokens are stored hashed"
    );

    steps.at("invitations go by mail");
    let invite = ok(
        boss.post("/api/v1/admin/invites", json!({"email": "gus@example.com"}))
            .await,
        201,
    );
    assert_eq!(invite["mail"], "sent");
    let mail = smtp.mail_to("gus@example.com").await;
    assert!(link_in(&mail).contains("invitation="), "{mail}");

    steps.at("with verification on, a new account signs in once its address is confirmed");
    ok(
        boss.patch("/api/v1/admin/settings", json!({"emailVerification": true}))
            .await,
        200,
    );
    let (fred, reply) = sign_up(&app, "fred@example.com", json!({"callbackURL": "/"})).await;
    let body = ok(reply, 200);
    assert!(
        body["token"].is_null(),
        "no session before the address is confirmed"
    );
    let refused = fred
        .sign_in(json!({"email": "fred@example.com", "password": "password-123"}))
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "EMAIL_NOT_VERIFIED")
    );
    let mail = smtp.mail_to("fred@example.com").await;
    let link = link_in(&mail);
    assert!(link.contains("/api/auth/verify-email?token="), "{link}");
    let followed = no_redirects.get(&link).send().await.unwrap();
    assert_eq!(followed.status(), 302);
    assert!(followed.headers()["location"]
        .to_str()
        .unwrap()
        .contains("verified=true"));
    ok(
        fred.sign_in(json!({"email": "fred@example.com", "password": "password-123"}))
            .await,
        200,
    );
    let reused = no_redirects
        .get(link.split("&callbackURL").next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 400, "a verification link works once");

    steps.at("all of it is in the audit log");
    let audit = ok(boss.get("/api/v1/admin/audit?limit=200").await, 200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "user.password-reset-requested",
        "user.password-reset",
        "user.email-verified",
        "instance.invite-created",
        "user.sign-in",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

/// Every admin route, with a body an admin could send.
fn admin_routes(someone: &str) -> Vec<(Method, String, Option<Value>)> {
    let id = json!({"userId": someone});
    vec![
        (Method::GET, "/api/auth/admin/list-users".into(), None),
        (
            Method::GET,
            format!("/api/auth/admin/get-user?id={someone}"),
            None,
        ),
        (
            Method::POST,
            "/api/auth/admin/create-user".into(),
            Some(json!({"email": "new@example.com", "name": "New", "password": "password-123"})),
        ),
        (
            Method::POST,
            "/api/auth/admin/update-user".into(),
            Some(json!({"userId": someone, "data": {"name": "X"}})),
        ),
        (
            Method::POST,
            "/api/auth/admin/set-role".into(),
            Some(json!({"userId": someone, "role": "user"})),
        ),
        (
            Method::POST,
            "/api/auth/admin/ban-user".into(),
            Some(id.clone()),
        ),
        (
            Method::POST,
            "/api/auth/admin/unban-user".into(),
            Some(id.clone()),
        ),
        (
            Method::POST,
            "/api/auth/admin/list-user-sessions".into(),
            Some(id.clone()),
        ),
        (
            Method::POST,
            "/api/auth/admin/revoke-user-session".into(),
            Some(json!({"sessionToken": "x"})),
        ),
        (
            Method::POST,
            "/api/auth/admin/revoke-user-sessions".into(),
            Some(id.clone()),
        ),
        (
            Method::POST,
            "/api/auth/admin/set-user-password".into(),
            Some(json!({"userId": someone, "newPassword": "password-999"})),
        ),
        (
            Method::POST,
            "/api/auth/admin/remove-user".into(),
            Some(id.clone()),
        ),
        (
            Method::POST,
            "/api/auth/admin/impersonate-user".into(),
            Some(id),
        ),
        (Method::GET, "/api/v1/admin/settings".into(), None),
        (
            Method::PATCH,
            "/api/v1/admin/settings".into(),
            Some(json!({"signup": "open"})),
        ),
        (Method::GET, "/api/v1/admin/connections".into(), None),
        (
            Method::POST,
            "/api/v1/admin/connections".into(),
            Some(json!({"provider": "ollama"})),
        ),
        (Method::GET, "/api/v1/admin/models".into(), None),
        (Method::GET, "/api/v1/admin/invites".into(), None),
        (
            Method::POST,
            "/api/v1/admin/invites".into(),
            Some(json!({})),
        ),
        (Method::GET, "/api/v1/admin/quotas".into(), None),
        (
            Method::PUT,
            "/api/v1/admin/quotas".into(),
            Some(json!({"userId": someone, "requestsPerDay": 5})),
        ),
        (Method::GET, "/api/v1/admin/audit".into(), None),
        (Method::GET, "/api/v1/admin/mail".into(), None),
        (Method::GET, "/api/v1/usage?scope=all".into(), None),
    ]
}

async fn call(
    client: &Client,
    (method, path, body): &(Method, String, Option<Value>),
) -> common::Reply {
    match body {
        Some(body) => {
            client
                .raw(
                    method.clone(),
                    path,
                    Some("application/json"),
                    body.to_string().into_bytes(),
                )
                .await
        }
        None => client.raw(method.clone(), path, None, Vec::new()).await,
    }
}

#[tokio::test]
async fn admin_routes_refuse_everyone_but_admins() {
    let app = TestApp::start().await;
    let boss = app.user("boss").await;
    let ana = app.user("ana").await;
    let target = ana.id.to_string();
    let before = app.row_counts().await;

    // Anonymous: 401. An ordinary user: 403. A banned user: signed out, and refused sign-in.
    for route in admin_routes(&target) {
        let anonymous = call(&app.anonymous(), &route).await;
        assert_eq!(
            anonymous.status, 401,
            "anonymous {} {}: {anonymous:?}",
            route.0, route.1
        );
        let user = call(&ana, &route).await;
        assert_eq!(user.status, 403, "user {} {}: {user:?}", route.0, route.1);
    }
    assert_eq!(app.row_counts().await, before, "refusals change nothing");

    // An admin acting as Ana is Ana.
    let acting = app.anonymous();
    ok(
        acting
            .sign_in(json!({"email": boss.email, "password": boss.password}))
            .await,
        200,
    );
    ok(
        acting
            .post(
                "/api/auth/admin/impersonate-user",
                json!({"userId": target}),
            )
            .await,
        200,
    );
    assert_eq!(
        ok(acting.get("/api/v1/me").await, 200)["email"],
        "ana@example.com"
    );
    for route in admin_routes(&target) {
        let reply = call(&acting, &route).await;
        assert_eq!(
            reply.status, 403,
            "impersonating {} {}: {reply:?}",
            route.0, route.1
        );
    }
    let me = ok(acting.get("/api/auth/get-session").await, 200);
    assert_eq!(me["session"]["impersonatedBy"], boss.id.to_string());
    ok(
        acting
            .post("/api/auth/admin/stop-impersonating", json!({}))
            .await,
        200,
    );
    assert_eq!(
        ok(acting.get("/api/v1/me").await, 200)["email"],
        "boss@example.com"
    );

    // Banned: every session ends, and no new one opens.
    let banned = app.user("bob").await;
    ok(
        boss.post(
            "/api/auth/admin/ban-user",
            json!({"userId": banned.id, "banReason": "spam"}),
        )
        .await,
        200,
    );
    for route in admin_routes(&target) {
        assert_eq!(
            call(&banned, &route).await.status,
            401,
            "banned {} {}",
            route.0,
            route.1
        );
    }
    let refused = app
        .anonymous()
        .sign_in(json!({"email": banned.email, "password": banned.password}))
        .await;
    assert_eq!((refused.status, refused.code()), (403, "BANNED_USER"));
    assert_eq!(
        refused.body["message"],
        "You have been banned from this application. Please contact support if you believe this is an error."
    );

    // The last admin stays one: not demoted, banned or removed by anyone.
    let refused = boss
        .post(
            "/api/auth/admin/set-role",
            json!({"userId": boss.id, "role": "user"}),
        )
        .await;
    assert_eq!((refused.status, refused.code()), (409, "LAST_ADMIN"));
    ok(
        boss.post(
            "/api/auth/admin/set-role",
            json!({"userId": target, "role": "admin"}),
        )
        .await,
        200,
    );
    let ana_demotes = ana
        .post(
            "/api/auth/admin/set-role",
            json!({"userId": boss.id, "role": "user"}),
        )
        .await;
    ok(ana_demotes, 200);
    let refused = ana
        .post("/api/auth/admin/ban-user", json!({"userId": ana.id}))
        .await;
    assert_eq!(refused.code(), "YOU_CANNOT_BAN_YOURSELF");
    let refused = ana
        .post(
            "/api/auth/admin/set-role",
            json!({"userId": target, "role": "user"}),
        )
        .await;
    assert_eq!(refused.code(), "LAST_ADMIN");
    let refused = ana
        .post("/api/auth/admin/remove-user", json!({"userId": target}))
        .await;
    assert_eq!(refused.code(), "YOU_CANNOT_REMOVE_YOURSELF");
    let refused = boss
        .post(
            "/api/auth/admin/impersonate-user",
            json!({"userId": target}),
        )
        .await;
    assert_eq!(refused.status, 403, "Boss is no admin now");

    // An admin demoted while acting as someone stops acting as them.
    let carl = app.user("carl").await;
    ok(
        ana.post(
            "/api/auth/admin/set-role",
            json!({"userId": boss.id, "role": "admin"}),
        )
        .await,
        200,
    );
    let acting = app.anonymous();
    ok(
        acting
            .sign_in(json!({"email": boss.email, "password": boss.password}))
            .await,
        200,
    );
    ok(
        acting
            .post(
                "/api/auth/admin/impersonate-user",
                json!({"userId": carl.id}),
            )
            .await,
        200,
    );
    assert_eq!(
        ok(acting.get("/api/v1/me").await, 200)["email"],
        "carl@example.com"
    );
    ok(
        ana.post(
            "/api/auth/admin/set-role",
            json!({"userId": boss.id, "role": "user"}),
        )
        .await,
        200,
    );
    assert_eq!(
        acting.get("/api/v1/me").await.status,
        401,
        "the acting session ended with the role"
    );
}

#[tokio::test]
async fn admin_routes_answer_bad_input_clearly_and_change_nothing() {
    let app = TestApp::start().await;
    let boss = app.user("boss").await;
    let ana = app.user("ana").await;
    let before = app.row_counts().await;
    let cases: Vec<(Method, &str, &[u8], u16)> = vec![
        (Method::POST, "/api/auth/admin/set-role", b"{not json", 400),
        (
            Method::POST,
            "/api/auth/admin/set-role",
            br#"{"userId": 5, "role": "admin"}"#,
            404,
        ),
        (
            Method::POST,
            "/api/auth/admin/set-role",
            br#"{"userId": "x"}"#,
            400,
        ),
        (
            Method::POST,
            "/api/auth/admin/ban-user",
            br#"{"userId": [1,2]}"#,
            400,
        ),
        (
            Method::POST,
            "/api/auth/admin/update-user",
            br#"{"userId": "00000000-0000-0000-0000-000000000000", "data": {"name": "x"}}"#,
            404,
        ),
        (
            Method::POST,
            "/api/auth/admin/update-user",
            br#"{"userId": "x", "data": "name"}"#,
            400,
        ),
        (
            Method::POST,
            "/api/auth/admin/create-user",
            br#"{"email": "not an address", "name": "x"}"#,
            400,
        ),
        (
            Method::POST,
            "/api/auth/admin/create-user",
            br#"{"email": "a@example.com", "name": "", "password": "password-1"}"#,
            400,
        ),
        (
            Method::POST,
            "/api/auth/admin/set-user-password",
            br#"{"userId": "x", "newPassword": ""}"#,
            400,
        ),
        (
            Method::POST,
            "/api/auth/admin/has-permission",
            br#"{"permission": {"user": ["list"]}}"#,
            400,
        ),
        (
            Method::GET,
            "/api/auth/admin/list-users?searchOperator=regex",
            b"",
            400,
        ),
        (Method::GET, "/api/auth/admin/get-user", b"", 400),
        (
            Method::PUT,
            "/api/v1/admin/quotas",
            br#"{"requestsPerDay": 5}"#,
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/quotas",
            br#"{"userId": "00000000-0000-0000-0000-000000000000", "tokensPerDay": 5}"#,
            404,
        ),
        (
            Method::PUT,
            "/api/v1/admin/quotas",
            br#"{"userId": "00000000-0000-0000-0000-000000000000", "tokensPerDay": -5}"#,
            400,
        ),
        (
            Method::POST,
            "/api/v1/admin/connections",
            br#"{"provider": "openai", "key": "short"}"#,
            400,
        ),
        (
            Method::POST,
            "/api/v1/admin/connections",
            br#"{"provider": "custom", "baseUrl": "file:///etc/passwd"}"#,
            400,
        ),
        (
            Method::POST,
            "/api/v1/admin/connections",
            br#"{"provider": "custom", "baseUrl": "http://169.254.169.254/"}"#,
            400,
        ),
        (
            Method::POST,
            "/api/v1/admin/models",
            br#"{"connectionId": "00000000-0000-0000-0000-000000000000", "modelId": "x"}"#,
            400,
        ),
        (
            Method::POST,
            "/api/v1/admin/invites",
            br#"{"expiresInDays": 1000}"#,
            400,
        ),
        (
            Method::POST,
            "/api/v1/admin/invites",
            br#"{"email": "<script>"}"#,
            400,
        ),
        (Method::GET, "/api/v1/admin/audit?limit=0", b"", 400),
        (Method::GET, "/api/v1/admin/audit?cursor=garbage", b"", 400),
        (Method::GET, "/api/v1/admin/audit?from=soon", b"", 400),
    ];
    for (method, path, body, status) in cases {
        let reply = boss
            .raw(
                method.clone(),
                path,
                Some("application/json"),
                body.to_vec(),
            )
            .await;
        assert_eq!(
            reply.status,
            status,
            "{method} {path} {}: {reply:?}",
            String::from_utf8_lossy(body)
        );
        assert!(
            !reply.code().is_empty(),
            "{method} {path}: an error says what is wrong: {reply:?}"
        );
    }
    let huge = boss
        .get("/api/auth/admin/list-users?limit=1000000&offset=-5&sortBy=email")
        .await;
    assert_eq!(huge.status, 200, "a page is bounded, not refused");
    assert_eq!(huge.body["total"], 2);
    let odd = boss
        .get("/api/auth/admin/list-users?searchValue=%25_%5C&searchField=email")
        .await;
    assert_eq!(ok(odd, 200)["total"], 0, "LIKE's own characters are text");
    let unknown = ok(
        boss.get("/api/auth/admin/list-users?sortBy=password").await,
        200,
    );
    assert_eq!(unknown, json!({"users": [], "total": 0}));
    let refused = boss
        .post(
            "/api/auth/admin/update-user",
            json!({"userId": ana.id, "data": {"role": 7}}),
        )
        .await;
    assert_eq!(refused.code(), "INVALID_ROLE_TYPE");
    let refused = boss
        .post(
            "/api/auth/admin/update-user",
            json!({"userId": ana.id, "data": {"banExpires": "tomorrow", "banned": true}}),
        )
        .await;
    assert_eq!(refused.status, 400);
    let refused = boss
        .post(
            "/api/auth/admin/update-user",
            json!({"userId": ana.id, "data": {"email": "boss@example.com"}}),
        )
        .await;
    assert_eq!(refused.code(), "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL");
    let refused = boss
        .post(
            "/api/auth/admin/update-user",
            json!({"userId": ana.id, "data": {"id": "x"}}),
        )
        .await;
    assert_eq!(refused.code(), "USER_ID_CANNOT_BE_UPDATED");
    assert_eq!(
        app.row_counts().await,
        before,
        "bad input changed something"
    );
}

#[tokio::test]
async fn the_printed_sample_password_is_refused_where_others_can_reach_the_server() {
    let app =
        TestApp::with_settings(|s| s.public_url = Some("https://chat.example.org".into())).await;
    sambung_db::seed::seed_sample(app.pool()).await.unwrap();
    // No cookies, no browser metadata: sign-in from a script, as an attacker would.
    let client = app.client_with_origin(None);
    let refused = client
        .sign_in(json!({"email": sambung_db::seed::DEMO_EMAIL, "password": sambung_db::seed::DEMO_PASSWORD}))
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "DEMO_PASSWORD_REFUSED")
    );
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("sambung admin reset-password"));

    let local = TestApp::start().await;
    sambung_db::seed::seed_sample(local.pool()).await.unwrap();
    let allowed = local
        .anonymous()
        .sign_in(json!({"email": sambung_db::seed::DEMO_EMAIL, "password": sambung_db::seed::DEMO_PASSWORD}))
        .await;
    assert_eq!(
        allowed.status, 200,
        "on this machine alone the sample account is for looking around"
    );
    assert_eq!(
        allowed.body["user"]["role"], "user",
        "the sample account is never the admin"
    );
}
