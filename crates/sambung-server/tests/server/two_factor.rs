//! Two-factor sign-in (SPEC section 13) as an attacker meets it: the secret and backup codes
//! are not readable from the database, codes are counted (a pending sign-in takes five wrong
//! codes and dies at the next attempt, the account locks at its tenth), a forged pending cookie is nothing, the QR code
//! exists only while setting up, and an instance that requires a second factor lets a
//! password account do nothing else until it has one. (The whole flow through Better Auth's
//! own client is `better_auth_client::better_auths_two_factor_client_works_unchanged`.)

use crate::common;

use chrono::{DateTime, Utc};
use common::{Client, TestApp, User};
use serde_json::json;
use totp_rs::{Algorithm, Secret, TOTP};
use uuid::Uuid;

/// An authenticator app's TOTP for the base32 key `secret` of `email`'s account.
pub fn app_totp(secret: &str, email: &str) -> TOTP {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        Secret::Encoded(secret.to_owned()).to_bytes().unwrap(),
        Some("SambungChat".into()),
        email.to_owned(),
    )
    .unwrap()
}

/// Begin setting up TOTP for `user`: the app's TOTP, the backup codes, and the answer.
pub async fn begin(user: &User) -> (TOTP, Vec<String>, common::Reply) {
    let begun = user
        .post(
            "/api/auth/two-factor/enable",
            json!({"password": user.password}),
        )
        .await;
    assert_eq!(begun.status, 200, "{begun:?}");
    let uri = begun.body["totpURI"].as_str().unwrap();
    let secret = url::Url::parse(uri)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .unwrap()
        .1
        .into_owned();
    let totp = app_totp(&secret, &user.email);
    let codes = begun.body["backupCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (totp, codes, begun)
}

/// Begin and confirm TOTP for `user`: the app's TOTP and the backup codes.
pub async fn enable(user: &User) -> (TOTP, Vec<String>) {
    let (totp, codes, _) = begin(user).await;
    let confirmed = user
        .post(
            "/api/auth/two-factor/verify-totp",
            json!({"code": code(&totp, -1)}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    (totp, codes)
}

/// The code of the time step `offset` steps from now.
pub fn code(totp: &TOTP, offset: i64) -> String {
    let step = chrono::Utc::now().timestamp() / 30 + offset;
    totp.generate(step as u64 * 30)
}

/// A code that is none of those now accepted.
fn wrong(totp: &TOTP) -> String {
    let near: Vec<String> = (-1..=1).map(|o| code(totp, o)).collect();
    (0..)
        .map(|n: u32| format!("{:06}", n * 7919 % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// A fresh browser's password sign-in, which must wait for a code.
async fn pending(app: &TestApp, user: &User) -> Client {
    let browser = app.anonymous();
    let reply = browser
        .sign_in(json!({"email": user.email, "password": user.password}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body,
        json!({"twoFactorRedirect": true, "twoFactorMethods": ["totp"]})
    );
    // No session before the code, and one the browser had ends (as the plugin does).
    let session_cookies: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .filter(|c| c.contains("session_token=") || c.contains("session_data="))
        .collect();
    assert_eq!(session_cookies.len(), 2, "{reply:?}");
    assert!(
        session_cookies.iter().all(|c| c.contains("=; Max-Age=0")),
        "{session_cookies:?}"
    );
    browser
}

#[tokio::test]
async fn codes_are_counted_and_the_stored_secret_is_sealed() {
    let mut steps = sambung_testkit::Steps::new();
    let app = TestApp::start().await;
    let ana = app.user("ana").await;

    steps.at("while setting up, a QR code is drawn here; once on, it is gone");
    let begun = ana
        .post(
            "/api/auth/two-factor/enable",
            json!({"password": ana.password}),
        )
        .await;
    assert_eq!(begun.status, 200, "{begun:?}");
    let qr = ana
        .http
        .get(ana.url("/api/v1/me/two-factor/qr"))
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert_eq!(qr.headers()["x-content-type-options"], "nosniff");
    assert!(qr.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    let svg = qr.text().await.unwrap();
    assert!(svg.contains("<svg") && !svg.contains("<script"), "{svg}");
    let (totp, backup) = enable(&ana).await;
    assert_eq!(ana.get("/api/v1/me/two-factor/qr").await.status, 400);
    assert_eq!(ana.get("/api/v1/me").await.body["twoFactorEnabled"], true);

    steps.at("the database holds neither the secret nor a backup code readable");
    let (secret, codes): (Vec<u8>, Vec<String>) =
        sqlx::query_as("SELECT secret, backup_codes FROM two_factors")
            .fetch_one(app.pool())
            .await
            .unwrap();
    let base32 = totp.get_secret_base32();
    let raw = String::from_utf8_lossy(&totp.secret).into_owned();
    let stored = String::from_utf8_lossy(&secret).into_owned();
    assert!(!stored.contains(&raw) && !stored.contains(&base32));
    assert_eq!(codes.len(), 10);
    assert!(codes
        .iter()
        .all(|hash| !backup.contains(hash) && hash.len() == 64));

    steps.at("a forged or missing pending cookie is no sign-in");
    let stranger = app.anonymous();
    let forged = stranger
        .post(
            "/api/auth/two-factor/verify-totp",
            json!({"code": code(&totp, 0)}),
        )
        .await;
    assert_eq!(
        (forged.status, forged.code()),
        (401, "INVALID_TWO_FACTOR_COOKIE")
    );
    let forged = stranger
        .send(
            stranger
                .http
                .post(stranger.url("/api/auth/two-factor/verify-backup-code"))
                .header("cookie", "sambungchat-auth.two_factor=abc.def")
                .json(&json!({"code": backup[0]})),
        )
        .await;
    assert_eq!(
        (forged.status, forged.code()),
        (401, "INVALID_TWO_FACTOR_COOKIE")
    );

    steps.at("a pending sign-in takes five wrong codes, as the plugin's does, then dies");
    let browser = pending(&app, &ana).await;
    for _ in 0..5 {
        let refused = browser
            .post(
                "/api/auth/two-factor/verify-totp",
                json!({"code": wrong(&totp)}),
            )
            .await;
        assert_eq!((refused.status, refused.code()), (401, "INVALID_CODE"));
    }
    let challenges = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM verifications WHERE starts_with(identifier, 'two-factor:')",
        )
        .fetch_one(app.pool())
        .await
        .unwrap()
    };
    let pending_before = challenges().await;
    let sixth = browser
        .post(
            "/api/auth/two-factor/verify-totp",
            json!({"code": code(&totp, 0)}),
        )
        .await;
    assert_eq!(
        challenges().await,
        pending_before - 1,
        "the spent sign-in is gone, not only its cookie"
    );
    assert_eq!(
        (sixth.status, sixth.code()),
        (400, "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE"),
        "the right code is too late after five wrong ones"
    );
    let after = browser
        .post(
            "/api/auth/two-factor/verify-totp",
            json!({"code": code(&totp, 0)}),
        )
        .await;
    assert_eq!(
        (after.status, after.code()),
        (401, "INVALID_TWO_FACTOR_COOKIE"),
        "the sign-in is over, its cookie gone"
    );

    steps.at("the account locks at the tenth wrong code in a row, whatever the browser");
    let browser = pending(&app, &ana).await;
    for _ in 0..4 {
        browser
            .post(
                "/api/auth/two-factor/verify-totp",
                json!({"code": wrong(&totp)}),
            )
            .await;
    }
    let browser = pending(&app, &ana).await;
    let tenth = browser
        .post(
            "/api/auth/two-factor/verify-backup-code",
            json!({"code": "AAAAA-AAAAA"}),
        )
        .await;
    assert_eq!((tenth.status, tenth.code()), (401, "INVALID_BACKUP_CODE"));
    let locked = browser
        .post(
            "/api/auth/two-factor/verify-backup-code",
            json!({"code": backup[0]}),
        )
        .await;
    assert_eq!(
        (locked.status, locked.code()),
        (429, "ACCOUNT_TEMPORARILY_LOCKED"),
        "{locked:?}"
    );
    assert!(locked.headers.contains_key("x-retry-after"));
    // The lock ends (made to end now here); then the backup code works, once.
    sqlx::query("UPDATE two_factors SET locked_until = now() - interval '1 second'")
        .execute(app.pool())
        .await
        .unwrap();
    let opened = browser
        .post(
            "/api/auth/two-factor/verify-backup-code",
            json!({"code": backup[0]}),
        )
        .await;
    assert_eq!(opened.status, 200, "{opened:?}");
    assert_eq!(
        browser.get("/api/v1/me").await.body["email"],
        ana.email.as_str()
    );
}

#[tokio::test]
async fn an_instance_that_requires_a_second_factor_lets_nothing_else_happen_until_one_is_set() {
    let app = TestApp::start().await;
    let boss = app.user("boss").await; // the first account: the instance's admin
    let ana = app.user("ana").await;
    let set = boss
        .patch("/api/v1/admin/settings", json!({"requireTwoFactor": true}))
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(
        app.anonymous().get("/api/v1/instance").await.body["requireTwoFactor"],
        true
    );

    let refused = ana.get("/api/v1/chats").await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "TWO_FACTOR_REQUIRED"),
        "{refused:?}"
    );
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("Settings"));
    // What setting one up needs stays open.
    assert_eq!(ana.get("/api/v1/me").await.status, 200);
    assert_eq!(ana.get("/api/v1/me/preferences").await.status, 200);
    enable(&ana).await;
    assert_eq!(ana.get("/api/v1/chats").await.status, 200);
    // The admin too, until they have one: administering included.
    assert_eq!(
        boss.get("/api/v1/chats").await.code(),
        "TWO_FACTOR_REQUIRED"
    );
    assert_eq!(
        boss.get("/api/auth/admin/list-users").await.code(),
        "TWO_FACTOR_REQUIRED"
    );
    enable(&boss).await;
    assert_eq!(boss.get("/api/v1/chats").await.status, 200);
}

/// Codes sent at once on one pending sign-in are all counted before any is checked: twenty
/// wrong ones together get at most five answers of "wrong code" (the next ends it), never
/// more guesses, and the account counts only those.
#[tokio::test]
async fn codes_sent_at_once_are_counted_before_they_are_checked() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let (totp, _) = enable(&ana).await;
    let browser = pending(&app, &ana).await;
    let wrong = wrong(&totp);
    let mut running = Vec::new();
    for _ in 0..20 {
        let browser = browser.clone();
        let wrong = wrong.clone();
        running.push(tokio::spawn(async move {
            browser
                .post("/api/auth/two-factor/verify-totp", json!({"code": wrong}))
                .await
        }));
    }
    let mut checked = 0;
    for task in running {
        let reply = task.await.unwrap();
        match reply.code() {
            "INVALID_CODE" => checked += 1,
            "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE" | "INVALID_TWO_FACTOR_COOKIE" => {}
            other => panic!("{other}: {reply:?}"),
        }
    }
    assert!(checked <= 5, "{checked} codes were checked on one sign-in");
    let failures: i32 = sqlx::query_scalar("SELECT failed_attempts FROM two_factors")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(failures <= 5, "{failures}");
}

/// Turning two-factor sign-in on (its first code) or off gives the session it is done in a
/// new token, as Better Auth does: the token before stops working at once, for cookies and
/// bearers alike; the session is otherwise the same row (device, end, remember-me); the new
/// token is set as the cookie and said in `set-auth-token` (Better Auth's bearer plugin); the
/// person's other sessions live on.
#[tokio::test]
async fn turning_two_factor_on_or_off_gives_the_session_a_new_token() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let sign_in = |remember: bool| {
        let client = app.anonymous();
        let body = json!({"email": ana.email, "password": ana.password, "rememberMe": remember});
        async move {
            let reply = client.sign_in(body).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            (client, reply)
        }
    };
    let said_token = |reply: &common::Reply| -> String {
        let said = reply.headers["set-auth-token"].to_str().unwrap().to_owned();
        let cookie = reply
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|c| c.to_str().unwrap())
            .find_map(|c| c.strip_prefix("sambungchat-auth.session_token="))
            .expect("the session's cookie");
        let value = cookie.split(';').next().unwrap();
        let decoded = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .unwrap();
        assert_eq!(
            said, decoded,
            "set-auth-token is the cookie's value, decoded"
        );
        assert!(reply.headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("set-auth-token"));
        said
    };
    let plain = |said: &str| said.split('.').next().unwrap().to_owned();
    let me_by_bearer = |token: String| {
        let client = app.bearer_client(&app.url, &token);
        async move { client.get("/api/v1/me").await.status }
    };
    type Row = (
        Uuid,
        DateTime<Utc>,
        Option<String>,
        Option<String>,
        Option<Uuid>,
    );
    let row = |token: String| {
        let pool = app.pool().clone();
        async move {
            sqlx::query_as::<_, Row>(
                "SELECT id, expires_at, ip_address, user_agent, impersonated_by FROM sessions
                  WHERE token_hash = encode(sha256(convert_to($1, 'UTF8')), 'hex')",
            )
            .bind(token)
            .fetch_optional(&pool)
            .await
            .unwrap()
        }
    };

    // A phone without cookies signs in and uses its token as a bearer.
    let (_, phone_signed_in) = sign_in(true).await;
    let said = said_token(&phone_signed_in);
    let phone_token = phone_signed_in.body["token"].as_str().unwrap().to_owned();
    assert_eq!(plain(&said), phone_token);
    let phone = User {
        id: ana.id,
        email: ana.email.clone(),
        password: ana.password.clone(),
        token: phone_token.clone(),
        client: app.bearer_client(&app.url, &phone_token),
    };
    let (laptop, laptop_signed_in) = sign_in(false).await;
    let laptop_token = laptop_signed_in.body["token"].as_str().unwrap().to_owned();

    // On, from the phone: the set-up alone changes nothing; its first code does.
    let phone_before = row(phone_token.clone()).await.expect("the phone's session");
    let (totp, _, begun) = begin(&phone).await;
    assert!(!begun.headers.contains_key("set-cookie"));
    assert!(!begun.headers.contains_key("set-auth-token"));
    assert_eq!(me_by_bearer(phone_token.clone()).await, 200);
    let on = phone
        .post(
            "/api/auth/two-factor/verify-totp",
            json!({"code": code(&totp, 0)}),
        )
        .await;
    assert_eq!(on.status, 200, "{on:?}");
    let said = said_token(&on);
    let new_token = plain(&said);
    assert_ne!(new_token, phone_token);
    assert_eq!(
        on.body["token"],
        new_token.as_str(),
        "the answer names the new token"
    );
    assert_eq!(
        me_by_bearer(phone_token.clone()).await,
        401,
        "the old token is dead"
    );
    assert!(row(phone_token).await.is_none());
    assert_eq!(
        row(new_token.clone()).await,
        Some(phone_before),
        "the same session: its device and end"
    );
    assert_eq!(
        me_by_bearer(said.clone()).await,
        200,
        "as set-auth-token says it"
    );
    let phone = app.bearer_client(&app.url, &new_token);
    assert_eq!(phone.get("/api/v1/me").await.body["twoFactorEnabled"], true);
    assert_eq!(
        ana.get("/api/v1/me").await.status,
        200,
        "other sessions live on"
    );
    assert_eq!(laptop.get("/api/v1/me").await.status, 200);

    // A code checked again while signed in (not the first) keeps the token.
    let again = phone
        .post(
            "/api/auth/two-factor/verify-totp",
            json!({"code": code(&totp, 1)}),
        )
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert!(!again.headers.contains_key("set-cookie"));
    assert_eq!(again.body["token"], new_token.as_str());

    // Off, from the laptop's browser (not remembered): a wrong password changes nothing; the
    // right one gives its session a new token, still kept for the browser's session only.
    let wrong = laptop
        .post(
            "/api/auth/two-factor/disable",
            json!({"password": "not-it"}),
        )
        .await;
    assert_eq!(wrong.status, 400, "{wrong:?}");
    assert_eq!(me_by_bearer(laptop_token.clone()).await, 200);
    let laptop_before = row(laptop_token.clone())
        .await
        .expect("the laptop's session");
    let off = laptop
        .post(
            "/api/auth/two-factor/disable",
            json!({"password": ana.password}),
        )
        .await;
    assert_eq!(off.status, 200, "{off:?}");
    let said = said_token(&off);
    let cookie = off
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .find(|c| c.starts_with("sambungchat-auth.session_token="))
        .unwrap();
    assert!(!cookie.contains("Max-Age"), "not remembered: {cookie}");
    assert_eq!(me_by_bearer(laptop_token.clone()).await, 401);
    assert_eq!(row(plain(&said)).await, Some(laptop_before));
    assert_eq!(
        laptop.get("/api/v1/me").await.body["twoFactorEnabled"],
        false,
        "the browser's jar holds the new cookie"
    );
    assert_eq!(phone.get("/api/v1/me").await.status, 200);
    assert_eq!(ana.get("/api/v1/me").await.status, 200);
}
