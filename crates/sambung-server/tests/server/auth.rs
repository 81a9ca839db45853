//! Better Auth's contract over real HTTP: sign-up, sign-in, sessions and their cookies,
//! password changes, imported scrypt hashes, rate limits and origin checks.

use crate::common;

use std::time::Duration;

use common::TestApp;
use reqwest::header::{AUTHORIZATION, COOKIE};
use sambung_server::RateLimits;
use serde_json::json;
use sha2_hash::sha256_hex;

mod sha2_hash {
    pub fn sha256_hex(text: &str) -> String {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    }
}

/// `name=value` of the Set-Cookie for `name`, and its attributes.
fn cookie<'a>(set_cookies: &'a [String], name: &str) -> Option<&'a String> {
    set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

#[tokio::test]
async fn sign_up_signs_in_with_a_signed_cookie_and_stores_only_the_token_hash() {
    let app = TestApp::start().await;
    let client = app.anonymous();
    let reply = client
        .post(
            "/api/auth/sign-up/email",
            json!({"name": "Ana", "email": "Ana@Example.COM", "password": "long enough"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["user"]["email"], "ana@example.com");
    assert_eq!(reply.body["user"]["emailVerified"], false);
    let created = reply.body["user"]["createdAt"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.len() == "2026-01-01T00:00:00.000Z".len(),
        "{created}"
    );
    let token = reply.body["token"].as_str().unwrap();

    let cookies = reply.set_cookies();
    let session = cookie(&cookies, "sambungchat-auth.session_token").expect("a session cookie");
    assert!(
        session.ends_with("; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"),
        "{session}"
    );
    let value = session
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    let decoded = percent_decode(value);
    let (cookie_token, signature) = decoded.rsplit_once('.').unwrap();
    assert_eq!(
        cookie_token, token,
        "the cookie carries the token of the body"
    );
    assert_eq!(signature.len(), 44);
    assert_eq!(signature, common::signature(token));

    let session = client.get("/api/auth/get-session").await;
    assert_eq!(
        session.body["user"]["email"], "ana@example.com",
        "{session:?}"
    );
    assert_eq!(session.body["session"]["token"], token);

    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, [sha256_hex(token)]);
    let everything: String = sqlx::query_scalar("SELECT string_agg(s::text, ' ') FROM sessions s")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(
        !everything.contains(token),
        "the raw token is stored nowhere"
    );
}

fn percent_decode(text: &str) -> String {
    text.replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=")
}

#[tokio::test]
async fn sign_up_refuses_duplicates_and_bad_passwords_without_creating_anyone() {
    let app = TestApp::start().await;
    app.user("ana").await;
    let client = app.anonymous();
    let cases = [
        (
            json!({"name": "Ana", "email": "ANA@example.com", "password": "another one"}),
            422,
            "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
        ),
        (
            json!({"name": "Bo", "email": "bo@example.com", "password": "seven77"}),
            400,
            "PASSWORD_TOO_SHORT",
        ),
        (
            json!({"name": "Bo", "email": "bo@example.com", "password": "x".repeat(129)}),
            400,
            "PASSWORD_TOO_LONG",
        ),
        (
            json!({"name": "Bo", "email": "not an email", "password": "long enough"}),
            400,
            "INVALID_EMAIL",
        ),
        (
            json!({"name": "Bo", "email": "bo@example.com"}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"name": "Bo", "email": "bo@example.com", "password": 12345678}),
            400,
            "VALIDATION_ERROR",
        ),
    ];
    for (body, status, code) in cases {
        let reply = client.post("/api/auth/sign-up/email", body.clone()).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{body}: {reply:?}"
        );
        assert!(reply.set_cookies().is_empty());
    }
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(users, 1);
    // 128 characters is the longest accepted.
    let reply = client
        .post(
            "/api/auth/sign-up/email",
            json!({"name": "Bo", "email": "bo@example.com", "password": "y".repeat(128)}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_answered_alike() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let client = app.anonymous();
    let wrong = client
        .sign_in(json!({"email": ana.email, "password": "not her password"}))
        .await;
    let unknown = client
        .sign_in(json!({"email": "nobody@example.com", "password": "not her password"}))
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.code(), "INVALID_EMAIL_OR_PASSWORD");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.status, unknown.status);
    assert!(wrong.set_cookies().is_empty() && unknown.set_cookies().is_empty());
    let right = client
        .sign_in(json!({"email": "ANA@example.com", "password": ana.password}))
        .await;
    assert_eq!(right.status, 200, "{right:?}");
    assert_eq!(right.body["redirect"], false);
    assert_eq!(right.body["user"]["id"], ana.id.to_string());
}

#[tokio::test]
async fn sign_out_ends_this_session_only_and_expires_the_cookies() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let laptop = app.anonymous();
    let second = laptop
        .sign_in(json!({"email": ana.email, "password": ana.password}))
        .await;
    let second_token = second.body["token"].as_str().unwrap().to_owned();

    let out = ana.post("/api/auth/sign-out", json!({})).await;
    assert_eq!((out.status, &out.body), (200, &json!({"success": true})));
    let cookies = out.set_cookies();
    for name in ["session_token", "session_data", "dont_remember"] {
        let expired = cookie(&cookies, &format!("sambungchat-auth.{name}"))
            .unwrap_or_else(|| panic!("{name} expired: {cookies:?}"));
        assert!(
            expired.starts_with(&format!("sambungchat-auth.{name}=; Max-Age=0")),
            "{expired}"
        );
    }
    assert_eq!(
        ana.get("/api/auth/get-session").await.body,
        serde_json::Value::Null
    );
    // The old token is dead for bearer use too.
    let bearer = app
        .anonymous()
        .send(
            app.anonymous()
                .http
                .get(format!("{}/api/v1/me", app.url))
                .header(AUTHORIZATION, format!("Bearer {}", ana.token)),
        )
        .await;
    assert_eq!((bearer.status, bearer.code()), (401, "UNAUTHORIZED"));
    // The laptop's session lives on.
    assert_eq!(
        laptop.get("/api/v1/me").await.body["email"],
        ana.email.as_str()
    );
    let bearer = app
        .anonymous()
        .send(
            app.anonymous()
                .http
                .get(format!("{}/api/v1/me", app.url))
                .header(AUTHORIZATION, format!("Bearer {second_token}")),
        )
        .await;
    assert_eq!(bearer.status, 200);
}

#[tokio::test]
async fn an_expired_session_is_refused_and_a_day_old_one_is_extended() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    // Fresh: no new cookie.
    let fresh = ana.get("/api/auth/get-session").await;
    assert!(cookie(&fresh.set_cookies(), "sambungchat-auth.session_token").is_none());

    // A day and a minute later (the clock moved through the data): extended, cookie re-set.
    sqlx::query("UPDATE sessions SET expires_at = now() + interval '6 days' - interval '1 minute'")
        .execute(app.pool())
        .await
        .unwrap();
    let used = ana.get("/api/v1/me").await;
    assert_eq!(used.status, 200);
    let renewed = cookie(&used.set_cookies(), "sambungchat-auth.session_token")
        .cloned()
        .expect("the cookie is re-set");
    assert!(renewed.contains("Max-Age=604800"), "{renewed}");
    let left: f64 =
        sqlx::query_scalar("SELECT extract(epoch FROM expires_at - now())::float8 FROM sessions")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(left > 7.0 * 86400.0 - 120.0, "extended to 7 days: {left}");

    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second'")
        .execute(app.pool())
        .await
        .unwrap();
    let refused = ana.get("/api/v1/me").await;
    assert_eq!((refused.status, refused.code()), (401, "UNAUTHORIZED"));
    let session = ana.get("/api/auth/get-session").await;
    assert_eq!(
        (session.status, &session.body),
        (200, &serde_json::Value::Null)
    );
}

#[tokio::test]
async fn remember_me_false_makes_a_browser_session_of_one_day_never_extended() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let browser = app.anonymous();
    let reply = browser
        .sign_in(json!({"email": ana.email, "password": ana.password, "rememberMe": false}))
        .await;
    let cookies = reply.set_cookies();
    let session = cookie(&cookies, "sambungchat-auth.session_token").unwrap();
    assert!(!session.contains("Max-Age"), "{session}");
    let dont = cookie(&cookies, "sambungchat-auth.dont_remember").expect("dont_remember");
    assert!(
        dont.starts_with(&format!(
            "sambungchat-auth.dont_remember=true.{}",
            common::percent(&common::signature("true"))
        )),
        "{dont}"
    );
    let token = reply.body["token"].as_str().unwrap();
    let left: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM expires_at - now())::float8 FROM sessions WHERE token_hash = $1",
    )
    .bind(sha256_hex(token))
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(
        (86400.0 - 120.0..=86400.0).contains(&left),
        "one day: {left}"
    );
    sqlx::query("UPDATE sessions SET expires_at = now() + interval '1 hour' WHERE token_hash = $1")
        .bind(sha256_hex(token))
        .execute(app.pool())
        .await
        .unwrap();
    let used = browser.get("/api/v1/me").await;
    assert_eq!(used.status, 200);
    assert!(
        cookie(&used.set_cookies(), "sambungchat-auth.session_token").is_none(),
        "not extended"
    );
}

#[tokio::test]
async fn a_tampered_or_foreign_cookie_is_no_session() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let signature = common::signature(&ana.token);
    let mut tampered = signature.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let forged_with_other_secret = {
        use base64::Engine as _;
        use hmac::Mac as _;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(b"another secret of at least 32 characters")
                .unwrap();
        mac.update(ana.token.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    for value in [
        format!("{}.{}", ana.token, String::from_utf8(tampered).unwrap()),
        format!("{}.{forged_with_other_secret}", ana.token),
        ana.token.clone(),
        format!("{}x.{signature}", ana.token),
    ] {
        let encoded = common::percent(&value);
        let client = app.anonymous();
        let request = client
            .http
            .get(client.url("/api/v1/me"))
            .header(COOKIE, format!("sambungchat-auth.session_token={encoded}"));
        let reply = client.send(request).await;
        assert_eq!(reply.status, 401, "{value}");
        let request = client
            .http
            .get(client.url("/api/auth/get-session"))
            .header(COOKIE, format!("sambungchat-auth.session_token={encoded}"));
        assert_eq!(client.send(request).await.body, serde_json::Value::Null);
    }
    // The right signature works (the harness is sound).
    let client = app.anonymous();
    let encoded = format!("{}.{signature}", ana.token);
    let request = client
        .http
        .get(client.url("/api/v1/me"))
        .header(COOKIE, format!("sambungchat-auth.session_token={encoded}"));
    assert_eq!(client.send(request).await.status, 200);
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_one_by_one_or_all_but_this_one() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let phone = app.anonymous();
    let laptop = app.anonymous();
    for device in [&phone, &laptop] {
        assert_eq!(
            device
                .sign_in(json!({"email": ana.email, "password": ana.password}))
                .await
                .status,
            200
        );
    }
    let list = ana.get("/api/auth/list-sessions").await;
    let sessions = list.body.as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    for session in sessions {
        assert_eq!(
            session["token"], session["id"],
            "only hashes are kept: the id stands in for the token"
        );
        assert_eq!(session["userId"], ana.id.to_string());
    }
    // Revoke the phone's session by the id the list gave.
    let phone_session = phone.get("/api/auth/get-session").await.body["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = ana
        .post("/api/auth/revoke-session", json!({"token": phone_session}))
        .await;
    assert_eq!(revoked.body, json!({"status": true}));
    assert_eq!(phone.get("/api/v1/me").await.status, 401);
    assert_eq!(laptop.get("/api/v1/me").await.status, 200);
    // Someone else cannot revoke Ana's session (answered alike, nothing happens).
    let bo = app.user("bo").await;
    let laptop_session = laptop.get("/api/auth/get-session").await.body["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        bo.post("/api/auth/revoke-session", json!({"token": laptop_session}))
            .await
            .body,
        json!({"status": true})
    );
    assert_eq!(laptop.get("/api/v1/me").await.status, 200);

    let others = ana.post("/api/auth/revoke-other-sessions", json!({})).await;
    assert_eq!(others.body, json!({"status": true}));
    assert_eq!(laptop.get("/api/v1/me").await.status, 401);
    assert_eq!(ana.get("/api/v1/me").await.status, 200);
    assert_eq!(
        ana.get("/api/auth/list-sessions")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        bo.get("/api/v1/me").await.status,
        200,
        "other users keep their sessions"
    );
}

#[tokio::test]
async fn change_password_checks_the_current_one_and_may_end_other_sessions() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let laptop = app.anonymous();
    laptop
        .sign_in(json!({"email": ana.email, "password": ana.password}))
        .await;

    let wrong = ana
        .post(
            "/api/auth/change-password",
            json!({"currentPassword": "wrong one!", "newPassword": "brand new pw"}),
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (400, "INVALID_PASSWORD"));
    let short = ana
        .post(
            "/api/auth/change-password",
            json!({"currentPassword": ana.password, "newPassword": "short"}),
        )
        .await;
    assert_eq!((short.status, short.code()), (400, "PASSWORD_TOO_SHORT"));

    let kept = ana
        .post(
            "/api/auth/change-password",
            json!({"currentPassword": ana.password, "newPassword": "second password"}),
        )
        .await;
    assert_eq!(kept.status, 200, "{kept:?}");
    assert_eq!(kept.body["token"], serde_json::Value::Null);
    assert_eq!(laptop.get("/api/v1/me").await.status, 200, "others kept");

    let revoking = ana
        .post("/api/auth/change-password", json!({"currentPassword": "second password", "newPassword": "third password", "revokeOtherSessions": true}))
        .await;
    assert_eq!(revoking.status, 200, "{revoking:?}");
    let new_token = revoking.body["token"].as_str().expect("a new session");
    assert_ne!(new_token, ana.token);
    assert!(cookie(&revoking.set_cookies(), "sambungchat-auth.session_token").is_some());
    assert_eq!(laptop.get("/api/v1/me").await.status, 401, "others ended");
    assert_eq!(
        ana.get("/api/v1/me").await.status,
        200,
        "this browser got the new session"
    );

    let client = app.anonymous();
    let old = client
        .sign_in(json!({"email": ana.email, "password": "second password"}))
        .await;
    assert_eq!(old.status, 401);
    let new = client
        .sign_in(json!({"email": ana.email, "password": "third password"}))
        .await;
    assert_eq!(new.status, 200);
}

/// Made by Python's `hashlib.scrypt` exactly as Better Auth hashes (see sambung-db's secret.rs).
const BETTER_AUTH_HASH: &str = "5f1c0a3e9b7d2c4f8a6e1b3d5c7f9a0b:adedcd4114e3b2205c7f44d7fffa7d20a8b260672193fb79039f409f9ff0acdef967d95a525f62fea5ddcd71d070f15e68dd6aeb4976fb2e7ca6360e1ac4a413";

#[tokio::test]
async fn an_imported_better_auth_hash_signs_in_and_is_rehashed_to_argon2id() {
    let app = TestApp::start().await;
    let id = sambung_testkit::insert_user(app.pool(), "imported@example.com").await;
    sqlx::query("INSERT INTO accounts (user_id, account_id, provider_id, password) VALUES ($1, $1::text, 'credential', $2)")
        .bind(id).bind(BETTER_AUTH_HASH).execute(app.pool()).await.unwrap();
    let client = app.anonymous();
    let wrong = client
        .sign_in(json!({"email": "imported@example.com", "password": "password-unicode"}))
        .await;
    assert_eq!(wrong.status, 401);
    let stored: String = sqlx::query_scalar("SELECT password FROM accounts WHERE user_id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, BETTER_AUTH_HASH, "a failed sign-in changes nothing");

    let right = client
        .sign_in(json!({"email": "imported@example.com", "password": "password-ünïcode"}))
        .await;
    assert_eq!(right.status, 200, "{right:?}");
    let stored: String = sqlx::query_scalar("SELECT password FROM accounts WHERE user_id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    let again = app
        .anonymous()
        .post(
            "/api/auth/sign-in/email",
            json!({"email": "imported@example.com", "password": "password-ünïcode"}),
        )
        .await;
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_client_with_a_retry_after() {
    let app = TestApp::with_limits(RateLimits {
        window: Duration::from_secs(10),
        sensitive: 3,
        general: 100,
        ..RateLimits::default()
    })
    .await;
    let client = app.anonymous();
    for _ in 0..3 {
        let reply = client
            .sign_in(json!({"email": "x@example.com", "password": "whatever1"}))
            .await;
        assert_eq!(reply.status, 401);
    }
    let limited = client
        .sign_in(json!({"email": "x@example.com", "password": "whatever1"}))
        .await;
    assert_eq!((limited.status, limited.code()), (429, "TOO_MANY_REQUESTS"));
    let wait: u64 = limited.headers["x-retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    // Other endpoints have their own, larger allowance.
    assert_eq!(client.get("/api/auth/get-session").await.status, 200);
    for _ in 0..100 {
        client.get("/api/auth/ok").await;
    }
    let general = client.get("/api/auth/get-session").await;
    assert_eq!(
        general.status, 429,
        "100 per 10 s for the other auth routes"
    );
    // The JSON API is not counted.
    assert_eq!(client.get("/api/v1/public/chats/none").await.status, 404);
}

#[tokio::test]
async fn cookie_bearing_writes_must_come_from_a_trusted_origin() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let cookie_header = common::session_cookie(&ana.token);
    let attempt = |origin: Option<&'static str>| {
        let client = app.client_with_origin(origin);
        let request = client
            .http
            .post(client.url("/api/v1/chats"))
            .header(COOKIE, cookie_header.clone())
            .json(&json!({"title": "from elsewhere"}));
        async move { client.send(request).await }
    };
    let foreign = attempt(Some("http://evil.example")).await;
    assert_eq!((foreign.status, foreign.code()), (403, "INVALID_ORIGIN"));
    let missing = attempt(None).await;
    assert_eq!(
        (missing.status, missing.code()),
        (403, "MISSING_OR_NULL_ORIGIN")
    );
    let null = attempt(Some("null")).await;
    assert_eq!(null.code(), "MISSING_OR_NULL_ORIGIN");
    let chats: i64 = sqlx::query_scalar("SELECT count(*) FROM chats")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(chats, 0, "nothing was written");
    assert_eq!(attempt(Some("http://trusted.example")).await.status, 201);
    // Sign-in is checked without cookies too (login CSRF), as Better Auth does.
    let login = |origin: Option<&'static str>, fetch_site: Option<&'static str>| {
        let client = app.client_with_origin(origin);
        let mut request = client
            .http
            .post(client.url("/api/auth/sign-in/email"))
            .json(&json!({"email": ana.email, "password": ana.password}));
        if let Some(site) = fetch_site {
            request = request
                .header("sec-fetch-site", site)
                .header("sec-fetch-mode", "navigate");
        }
        async move { client.send(request).await }
    };
    assert_eq!(
        login(Some("http://evil.example"), None).await.code(),
        "INVALID_ORIGIN"
    );
    assert_eq!(
        login(None, Some("cross-site")).await.code(),
        "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED"
    );
    assert_eq!(
        login(None, Some("same-origin")).await.code(),
        "MISSING_OR_NULL_ORIGIN"
    );
    assert_eq!(
        login(None, None).await.status,
        200,
        "a non-browser client (no origin, no metadata)"
    );
    assert_eq!(
        login(Some("http://trusted.example"), None).await.status,
        200
    );
    // A bearer token without cookies is not a cross-site risk.
    let client = app.client_with_origin(None);
    let request = client
        .http
        .post(client.url("/api/v1/chats"))
        .header(AUTHORIZATION, format!("Bearer {}", ana.token))
        .json(&json!({}));
    assert_eq!(client.send(request).await.status, 201);
}

#[tokio::test]
async fn update_user_and_delete_user_follow_better_auth() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    assert_eq!(
        ana.post("/api/auth/update-user", json!({"name": "Ana Maria"}))
            .await
            .body,
        json!({"status": true})
    );
    assert_eq!(ana.get("/api/v1/me").await.body["name"], "Ana Maria");
    let email = ana
        .post("/api/auth/update-user", json!({"email": "new@example.com"}))
        .await;
    assert_eq!(
        (email.status, email.code()),
        (400, "EMAIL_CAN_NOT_BE_UPDATED")
    );
    let wrong = ana
        .post(
            "/api/auth/delete-user",
            json!({"password": "not it at all"}),
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (400, "INVALID_PASSWORD"));
    ana.post("/api/v1/chats", json!({"title": "mine"})).await;
    let deleted = ana
        .post("/api/auth/delete-user", json!({"password": ana.password}))
        .await;
    assert_eq!(
        deleted.body,
        json!({"success": true, "message": "User deleted"})
    );
    let left: i64 = sqlx::query_scalar("SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM chats) + (SELECT count(*) FROM sessions)")
        .fetch_one(app.pool()).await.unwrap();
    assert_eq!(left, 0);
}

/// The routes every chat page and message uses leave the session to the handler's own
/// statement (one round trip instead of two). A session that stops being valid still fails on
/// the very next request there, for each way it can stop: signed out, expired, its user banned
/// or waiting for approval; a session due to be renewed is renewed and its cookie re-set.
#[tokio::test]
async fn a_session_checked_by_the_statement_fails_on_the_very_next_request() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let chat = ana.post("/api/v1/chats", json!({"title": "Nasi"})).await;
    let chat = chat.body["id"].as_str().unwrap().to_owned();
    let messages = format!("/api/v1/chats/{chat}/messages");
    assert_eq!(
        ana.post(&messages, json!({"content": "nasi goreng"}))
            .await
            .status,
        201
    );
    // Every route, with the signed session cookie (as a browser sends it).
    let cookie = common::session_cookie(&ana.token);
    let each_route = || {
        let client = app.anonymous();
        let cookie = cookie.clone();
        let messages = messages.clone();
        async move {
            let mut statuses = Vec::new();
            for (post, path) in [
                (false, "/api/v1/chats".to_owned()),
                (false, messages.clone()),
                (false, "/api/v1/search/messages?q=goreng".to_owned()),
                (true, messages.clone()),
            ] {
                let request = match post {
                    true => client
                        .http
                        .post(client.url(&path))
                        .json(&json!({"content": "more"})),
                    false => client.http.get(client.url(&path)),
                };
                let reply = client.send(request.header(COOKIE, cookie.clone())).await;
                statuses.push((reply.status, reply.code().to_owned()));
            }
            statuses
        }
    };
    let ok: Vec<(u16, String)> = [200, 200, 200, 201]
        .into_iter()
        .map(|s| (s, String::new()))
        .collect();
    assert_eq!(each_route().await, ok);
    // Input each route refuses before its statement runs: refused for the input only once the
    // session may make the request at all.
    let each_bad_input = || {
        let client = app.anonymous();
        let cookie = cookie.clone();
        let messages = messages.clone();
        let generate = format!("/api/v1/chats/{chat}/generate");
        async move {
            let mut statuses = Vec::new();
            for (body, path) in [
                (None, "/api/v1/chats?limit=0".to_owned()),
                (None, format!("{messages}?cursor=not-a-cursor")),
                (None, "/api/v1/search/messages".to_owned()),
                (Some(json!({"content": 7})), messages.clone()),
                (Some(json!({"messages": "none"})), generate),
            ] {
                let request = match body {
                    Some(body) => client.http.post(client.url(&path)).json(&body),
                    None => client.http.get(client.url(&path)),
                };
                let reply = client.send(request.header(COOKIE, cookie.clone())).await;
                statuses.push((reply.status, reply.code().to_owned()));
            }
            statuses
        }
    };
    let bad_input = each_bad_input().await;
    assert!(
        bad_input
            .iter()
            .all(|(status, code)| (400..=422).contains(status)
                && ![401, 403].contains(status)
                && !code.is_empty()),
        "{bad_input:?}"
    );
    let unauthorized = vec![(401, "UNAUTHORIZED".to_owned()); 4];
    let written = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM messages")
            .fetch_one(app.pool())
            .await
            .unwrap()
    };

    // Due to be renewed: renewed there too, the cookie set again.
    sqlx::query("UPDATE sessions SET expires_at = now() + interval '6 days' - interval '1 minute'")
        .execute(app.pool())
        .await
        .unwrap();
    let listed = app
        .anonymous()
        .send(
            app.anonymous()
                .http
                .get(app.url.clone() + "/api/v1/chats")
                .header(COOKIE, cookie.clone()),
        )
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "asked again once renewed: {listed:?}"
    );
    assert!(
        listed
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("sambungchat-auth.session_token=")
                && c.contains("Max-Age=604800")),
        "{:?}",
        listed.set_cookies()
    );

    for (change, undo, refused) in [
        (
            "UPDATE users SET banned = true",
            "UPDATE users SET banned = false",
            unauthorized.clone(),
        ),
        (
            "UPDATE users SET approved = false",
            "UPDATE users SET approved = true",
            vec![(403, "ACCOUNT_NOT_APPROVED".to_owned()); 4],
        ),
        (
            "UPDATE sessions SET expires_at = now() - interval '1 second'",
            "UPDATE sessions SET expires_at = now() + interval '7 days'",
            unauthorized.clone(),
        ),
    ] {
        let before = written().await;
        sqlx::query(change).execute(app.pool()).await.unwrap();
        assert_eq!(each_route().await, refused, "{change}");
        assert_eq!(
            each_bad_input().await,
            refused.iter().cycle().take(5).cloned().collect::<Vec<_>>(),
            "{change}: the session's refusal, not the input's"
        );
        assert_eq!(written().await, before, "{change}: nothing written");
        sqlx::query(undo).execute(app.pool()).await.unwrap();
        assert_eq!(each_route().await, ok, "{undo}");
    }

    // A post the statement refuses for its content: the refusal, once the session holds.
    let refused_post = || async {
        let client = app.anonymous();
        let request = client
            .http
            .post(client.url(&messages))
            .json(&json!({"content": "nul \u{0} inside"}))
            .header(COOKIE, cookie.clone());
        let reply = client.send(request).await;
        (reply.status, reply.code().to_owned())
    };
    assert_eq!(refused_post().await.0, 400);

    // Signed out: refused at once, and nothing written.
    let out = ana.post("/api/auth/sign-out", json!({})).await;
    assert_eq!(out.status, 200);
    let before = written().await;
    assert_eq!(each_route().await, unauthorized);
    assert_eq!(refused_post().await, (401, "UNAUTHORIZED".to_owned()));
    assert_eq!(
        each_bad_input().await,
        vec![(401, "UNAUTHORIZED".to_owned()); 5]
    );
    assert_eq!(written().await, before);
}
