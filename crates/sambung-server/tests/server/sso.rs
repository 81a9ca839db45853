//! Sign-in through an identity provider (SPEC section 13), against the fake provider of
//! `common::idp` for every attack a real one will not stage: each forged ID token, a replayed
//! `state`, a `state` from another browser, a callback without its cookie, an unverified email
//! that matches an account, and an open redirect through `callbackURL`.

use crate::common;

use std::sync::Arc;

use common::idp::{person, FakeIdp, Forge};
use common::TestApp;
use reqwest::cookie::CookieStore as _;
use serde_json::{json, Value};

/// A browser that follows no redirect by itself (each hop is looked at).
struct Browser {
    http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    base: String,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("origin", app.url.parse().unwrap());
        Browser {
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .unwrap(),
            jar,
            base: app.url.clone(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// GET `url`; where it redirects to.
    async fn hop(&self, url: &str) -> String {
        let response = self.http.get(url).send().await.unwrap();
        assert!(response.status().is_redirection(), "{url}: {response:?}");
        response.headers()["location"].to_str().unwrap().to_owned()
    }

    /// Start a sign-in with `provider`: the provider's authorization URL.
    async fn start(&self, provider: &str, callback: &str) -> String {
        let (status, body) = self
            .post(
                "/api/auth/sign-in/social",
                json!({"provider": provider, "callbackURL": callback, "newUserCallbackURL": "/#/welcome"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["redirect"], true);
        body["url"].as_str().unwrap().to_owned()
    }

    /// Sign in with `provider` all the way: where the server sends the browser at the end.
    async fn sign_in(&self, provider: &str) -> String {
        let authorize = self.start(provider, "/#/chats").await;
        let callback = self.hop(&authorize).await;
        self.hop(&callback).await
    }

    async fn email(&self) -> Option<String> {
        self.get_json("/api/auth/get-session").await["user"]["email"]
            .as_str()
            .map(str::to_owned)
    }

    fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.base.parse().unwrap())?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }
}

async fn app_with(idp: &FakeIdp, providers: Value) -> TestApp {
    let providers = sambung_sso::parse_providers(&providers.to_string()).unwrap();
    let port = idp.port;
    TestApp::with_settings(move |settings| {
        settings.identity_providers = providers;
        settings.ai_allowed_hosts.push(format!("127.0.0.1:{port}"));
    })
    .await
}

fn error_of(location: &str) -> &str {
    location
        .split_once("error=")
        .map(|(_, e)| e.split('&').next().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn a_person_signs_in_through_the_provider_and_is_found_again() {
    let mut steps = sambung_testkit::Steps::new();
    let idp = FakeIdp::start().await;
    let mut admin_rule = idp.oidc("corp");
    admin_rule["adminClaim"] = json!({"claim": "groups", "value": "chat-admins"});
    let app = app_with(&idp, json!([admin_rule, idp.github("github")])).await;
    app.user("owner").await; // the instance's first account, so that nobody else becomes admin

    steps.at("the instance names its providers for the sign-in page");
    let instance = app.anonymous().get("/api/v1/instance").await;
    assert_eq!(
        instance.body["identityProviders"],
        json!([{"id": "corp", "name": "Fake IdP"}, {"id": "github", "name": "GitHub"}])
    );

    steps.at("a new person: an account made, signed in, sent to the new-user page");
    let browser = Browser::new(&app);
    idp.next(person("u-1", "Rina@Corp.example", true), Forge::Nothing);
    let landed = browser.sign_in("corp").await;
    assert_eq!(landed, "/#/welcome");
    assert_eq!(browser.email().await.as_deref(), Some("rina@corp.example"));
    let session = browser.get_json("/api/auth/get-session").await;
    assert_eq!(session["user"]["emailVerified"], true);
    assert_eq!(session["user"]["role"], "user");
    assert!(
        browser.cookie("sambungchat-auth.oauth_state").is_none(),
        "the sign-in's cookie is gone"
    );
    let accounts = browser.get_json("/api/auth/list-accounts").await;
    assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
    assert_eq!(accounts[0]["providerId"], "corp");
    assert_eq!(accounts[0]["accountId"], "u-1");
    let (status, body) = browser
        .post("/api/auth/unlink-account", json!({"providerId": "corp"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("FAILED_TO_UNLINK_LAST_ACCOUNT"))
    );

    steps.at("the same person again, in another browser: the same user, to the callback");
    let again = Browser::new(&app);
    let mut renamed = person("u-1", "rina.new@corp.example", true);
    renamed.groups = vec!["chat-admins".into()];
    idp.next(renamed, Forge::Nothing);
    assert_eq!(again.sign_in("corp").await, "/#/chats");
    let session = again.get_json("/api/auth/get-session").await;
    assert_eq!(
        session["user"]["email"], "rina@corp.example",
        "found by (provider, subject)"
    );
    assert_eq!(
        session["user"]["role"], "admin",
        "the admin claim makes an admin"
    );
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(users, 2);

    steps.at("GitHub's shape: the primary verified email from /user/emails");
    let octo = Browser::new(&app);
    idp.next(person("4242", "octo@corp.example", true), Forge::Nothing);
    assert_eq!(octo.sign_in("github").await, "/#/welcome");
    assert_eq!(octo.email().await.as_deref(), Some("octo@corp.example"));

    steps.at("a password user links the provider, then may unlink it (the password stays)");
    let ana = app.user("ana").await;
    let linker = Browser::new(&app);
    let (status, _) = linker
        .post(
            "/api/auth/sign-in/email",
            json!({"email": ana.email, "password": ana.password}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = linker
        .post(
            "/api/auth/link-social",
            json!({"provider": "corp", "callbackURL": "/#/settings"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    idp.next(
        person("u-ana", "ana-at-work@corp.example", true),
        Forge::Nothing,
    );
    let callback = linker.hop(body["url"].as_str().unwrap()).await;
    let refused = linker.hop(&callback).await;
    assert_eq!(error_of(&refused), "email_does_not_match", "{refused}");
    let (_, body) = linker
        .post(
            "/api/auth/link-social",
            json!({"provider": "corp", "callbackURL": "/#/settings"}),
        )
        .await;
    idp.next(person("u-ana", "ana@example.com", true), Forge::Nothing);
    let callback = linker.hop(body["url"].as_str().unwrap()).await;
    assert_eq!(linker.hop(&callback).await, "/#/settings");
    let accounts = linker.get_json("/api/auth/list-accounts").await;
    let providers: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["providerId"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["corp", "credential"]);
    // Linked to ana, the identity signs in as ana.
    let elsewhere = Browser::new(&app);
    idp.next(person("u-ana", "ana@example.com", true), Forge::Nothing);
    elsewhere.sign_in("corp").await;
    assert_eq!(elsewhere.email().await.as_deref(), Some("ana@example.com"));
    // Linking it to someone else is refused.
    let (_, body) = browser
        .post(
            "/api/auth/link-social",
            json!({"provider": "corp", "callbackURL": "/#/settings"}),
        )
        .await;
    idp.next(person("u-ana", "rina@corp.example", true), Forge::Nothing);
    let callback = browser.hop(body["url"].as_str().unwrap()).await;
    let refused = browser.hop(&callback).await;
    assert_eq!(
        error_of(&refused),
        "account_already_linked_to_different_user",
        "{refused}"
    );
    let (status, _) = linker
        .post("/api/auth/unlink-account", json!({"providerId": "corp"}))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn forged_tokens_and_stolen_or_replayed_states_are_refused() {
    let mut steps = sambung_testkit::Steps::new();
    let idp = FakeIdp::start().await;
    let app = app_with(&idp, json!([idp.oidc("corp")])).await;
    app.user("owner").await;

    steps.at("each forged ID token: no account, no session, the error named");
    for (forge, what) in [
        (Forge::AlgNone, "alg none"),
        (Forge::ForeignKey, "another key"),
        (Forge::UnknownKid, "an unknown kid"),
        (Forge::HmacWithSecret, "HS256 with the client secret"),
        (Forge::OtherAudience, "another audience"),
        (Forge::Expired, "expired"),
        (Forge::OtherNonce, "another nonce"),
        (Forge::OtherIssuer, "another issuer"),
    ] {
        let browser = Browser::new(&app);
        idp.next(person("mallory", "mallory@corp.example", true), forge);
        let landed = browser.sign_in("corp").await;
        assert_eq!(error_of(&landed), "invalid_id_token", "{what}: {landed}");
        assert!(
            landed.starts_with(&format!("{}/#/chats?error=", app.url)),
            "{what}: {landed}"
        );
        assert_eq!(browser.email().await, None, "{what}");
    }
    let made: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email LIKE 'mallory%'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(made, 0);

    steps.at("a state replayed, with the cookie it came with: refused");
    let browser = Browser::new(&app);
    idp.next(person("p-1", "p1@corp.example", true), Forge::Nothing);
    let authorize = browser.start("corp", "/#/chats").await;
    let callback = browser.hop(&authorize).await;
    let cookie = browser.cookie("sambungchat-auth.oauth_state").unwrap();
    assert_eq!(browser.hop(&callback).await, "/#/welcome");
    let thief = Browser::new(&app);
    thief.jar.add_cookie_str(
        &format!("sambungchat-auth.oauth_state={cookie}; Path=/"),
        &app.url.parse().unwrap(),
    );
    let replayed = thief.hop(&callback).await;
    assert_eq!(error_of(&replayed), "state_mismatch", "{replayed}");
    assert_eq!(thief.email().await, None);

    steps.at("a state from another browser: refused (login CSRF)");
    let victim = Browser::new(&app);
    let attacker = Browser::new(&app);
    idp.next(
        person("attacker", "attacker@corp.example", true),
        Forge::Nothing,
    );
    let attackers = attacker.start("corp", "/#/chats").await;
    let attackers_callback = attacker.hop(&attackers).await;
    victim.start("corp", "/#/chats").await; // the victim has a sign-in of their own going
    let landed = victim.hop(&attackers_callback).await;
    assert_eq!(error_of(&landed), "state_mismatch", "{landed}");
    assert_eq!(victim.email().await, None);

    steps.at("a callback without the sign-in's cookie, or without a state");
    let stranger = Browser::new(&app);
    let landed = stranger.hop(&attackers_callback).await;
    assert_eq!(landed, format!("{}/#/?error=state_mismatch", app.url));
    let landed = stranger
        .hop(&format!("{}/api/auth/callback/corp?code=x", app.url))
        .await;
    assert_eq!(landed, format!("{}/#/?error=state_not_found", app.url));

    steps.at("an unverified email that matches an account is not linked to it");
    app.user("boss").await;
    let sneaky = Browser::new(&app);
    idp.next(person("sneaky", "boss@example.com", false), Forge::Nothing);
    let landed = sneaky.sign_in("corp").await;
    assert_eq!(error_of(&landed), "account_not_linked", "{landed}");
    assert_eq!(sneaky.email().await, None);
    // Verified by the provider, but the account's own email is not: still not linked.
    idp.next(person("sneaky", "boss@example.com", true), Forge::Nothing);
    let landed = Browser::new(&app).sign_in("corp").await;
    assert_eq!(error_of(&landed), "account_not_linked", "{landed}");
    sqlx::query("UPDATE users SET email_verified = true WHERE email = 'boss@example.com'")
        .execute(app.pool())
        .await
        .unwrap();
    let linked = Browser::new(&app);
    idp.next(
        person("boss-at-idp", "boss@example.com", true),
        Forge::Nothing,
    );
    assert_eq!(linked.sign_in("corp").await, "/#/chats");
    assert_eq!(linked.email().await.as_deref(), Some("boss@example.com"));

    steps.at("no account is made for an address the provider does not vouch for");
    let unvouched = Browser::new(&app);
    idp.next(
        person("newbie", "newbie@corp.example", false),
        Forge::Nothing,
    );
    let landed = unvouched.sign_in("corp").await;
    assert_eq!(error_of(&landed), "email_not_verified", "{landed}");
    let made: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'newbie@corp.example'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(made, 0);

    steps.at("an admin's account is never linked by email alone");
    sqlx::query("UPDATE users SET email_verified = true WHERE email = 'owner@example.com'")
        .execute(app.pool())
        .await
        .unwrap();
    let pretender = Browser::new(&app);
    idp.next(
        person("owner-at-idp", "owner@example.com", true),
        Forge::Nothing,
    );
    let landed = pretender.sign_in("corp").await;
    assert_eq!(error_of(&landed), "account_not_linked", "{landed}");

    steps.at("an open redirect through callbackURL is refused before the provider");
    for evil in ["https://evil.example/", "//evil.example", "/\\evil.example"] {
        let (status, body) = Browser::new(&app)
            .post(
                "/api/auth/sign-in/social",
                json!({"provider": "corp", "callbackURL": evil}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("INVALID_CALLBACK_URL")),
            "{evil}"
        );
    }
    let (status, body) = Browser::new(&app)
        .post(
            "/api/auth/sign-in/social",
            json!({"provider": "nope", "callbackURL": "/"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("PROVIDER_NOT_FOUND"))
    );

    steps.at("the provider refusing, and a closed sign-up, are said");
    let refused = Browser::new(&app);
    let authorize = refused.start("corp", "/#/chats").await;
    let state = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let landed = refused
        .hop(&format!(
            "{}/api/auth/callback/corp?error=access_denied&state={state}",
            app.url
        ))
        .await;
    assert_eq!(error_of(&landed), "access_denied");
}

#[tokio::test]
async fn password_sign_in_can_be_left_to_admins_and_sso_accounts_need_no_second_factor_here() {
    let idp = FakeIdp::start().await;
    let app = app_with(&idp, json!([idp.oidc("corp")])).await;
    let boss = app.user("boss").await; // the first account: the instance's admin
    let ana = app.user("ana").await;
    let set = boss
        .patch(
            "/api/v1/admin/settings",
            json!({"passwordSignIn": false, "requireTwoFactor": true}),
        )
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(
        app.anonymous().get("/api/v1/instance").await.body["passwordSignIn"],
        false
    );
    let refused = app
        .anonymous()
        .sign_in(json!({"email": ana.email, "password": ana.password}))
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "PASSWORD_SIGN_IN_DISABLED"),
        "{refused:?}"
    );
    let admin = app
        .anonymous()
        .sign_in(json!({"email": boss.email, "password": boss.password}))
        .await;
    assert_eq!(admin.status, 200, "an admin always may: {admin:?}");
    // Nor is anyone but an admin sent a link to set a password (the answer is the same).
    for email in [&ana.email, &boss.email] {
        let asked = app
            .anonymous()
            .post(
                "/api/auth/request-password-reset",
                json!({"email": email, "redirectTo": "/#/reset-password"}),
            )
            .await;
        assert_eq!(asked.status, 200, "{asked:?}");
    }
    let mailed = || async {
        sqlx::query_scalar::<_, String>("SELECT recipient FROM mail_outbox")
            .fetch_all(app.pool())
            .await
            .unwrap()
    };
    for _ in 0..50 {
        if !mailed().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(mailed().await, vec![boss.email.clone()]);

    // Through the provider, a new account has no password, so no second factor is asked here.
    let browser = Browser::new(&app);
    idp.next(person("u-9", "sari@corp.example", true), Forge::Nothing);
    browser.sign_in("corp").await;
    let chats = browser
        .http
        .get(format!("{}/api/v1/chats", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(chats.status(), 200);
}

#[tokio::test]
async fn a_provider_on_a_private_address_is_not_reached_unless_the_operator_allows_it() {
    let idp = FakeIdp::start().await;
    let providers = sambung_sso::parse_providers(&json!([idp.oidc("corp")]).to_string()).unwrap();
    // Its host is not in OUTBOUND_ALLOWED_HOSTS.
    let app = TestApp::with_settings(move |settings| settings.identity_providers = providers).await;
    let (status, body) = Browser::new(&app)
        .post(
            "/api/auth/sign-in/social",
            json!({"provider": "corp", "callbackURL": "/"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("PROVIDER_UNAVAILABLE"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("the server's log"),
        "{body}"
    );
}

#[tokio::test]
async fn admins_set_up_providers_in_the_ui_and_their_secret_is_never_shown_again() {
    let mut steps = sambung_testkit::Steps::new();
    let idp = FakeIdp::start().await;
    let app = app_with(&idp, json!([idp.oidc("fromenv")])).await;
    let boss = app.user("boss").await;
    let ana = app.user("ana").await;
    let path = "/api/v1/admin/identity-providers/corp";
    let body = json!({"name": "Corp SSO", "issuer": idp.base, "clientId": common::idp::CLIENT_ID,
                      "clientSecret": common::idp::CLIENT_SECRET, "allowedEmailDomains": ["corp.example"]});

    steps.at("only admins; the environment's are listed and left alone");
    assert_eq!(
        ana.get("/api/v1/admin/identity-providers").await.status,
        403
    );
    assert_eq!(
        ana.send(ana.http.put(ana.url(path)).json(&body))
            .await
            .status,
        403
    );
    let listed = boss.get("/api/v1/admin/identity-providers").await;
    assert_eq!(listed.body["providers"][0]["fromEnvironment"], true);
    assert!(listed.body["presets"].as_array().unwrap().len() >= 6);
    let env = boss
        .send(
            boss.http
                .put(boss.url("/api/v1/admin/identity-providers/fromenv"))
                .json(&body),
        )
        .await;
    assert_eq!((env.status, env.code()), (409, "PROVIDER_FROM_ENVIRONMENT"));

    steps.at("what does not answer, or is not a provider, is refused with the reason");
    let mut silent = body.clone();
    silent["issuer"] = json!(format!("http://127.0.0.1:{}/nowhere", idp.port));
    let refused = boss.send(boss.http.put(boss.url(path)).json(&silent)).await;
    assert_eq!(
        (refused.status, refused.code()),
        (400, "PROVIDER_UNAVAILABLE"),
        "{refused:?}"
    );
    let mut unknown = body.clone();
    unknown["preset"] = json!("myspace");
    let refused = boss
        .send(boss.http.put(boss.url(path)).json(&unknown))
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("myspace"));
    let mut secretless = body.clone();
    secretless.as_object_mut().unwrap().remove("clientSecret");
    let refused = boss
        .send(boss.http.put(boss.url(path)).json(&secretless))
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");

    steps.at("set up: shown without its secret, sealed in the database, on the sign-in page");
    let saved = boss.send(boss.http.put(boss.url(path)).json(&body)).await;
    assert_eq!(saved.status, 200, "{saved:?}");
    assert_eq!(
        saved.body["redirectURI"],
        format!("{}/api/auth/callback/corp", app.url)
    );
    assert!(!saved.text.contains(common::idp::CLIENT_SECRET));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT client_secret FROM identity_providers")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(common::idp::CLIENT_SECRET));
    let instance = app.anonymous().get("/api/v1/instance").await;
    assert_eq!(
        instance.body["identityProviders"][1],
        json!({"id": "corp", "name": "Corp SSO"})
    );
    let browser = Browser::new(&app);
    idp.next(person("c-1", "dewi@corp.example", true), Forge::Nothing);
    assert_eq!(browser.sign_in("corp").await, "/#/welcome");

    steps.at("moved without its secret: refused (the secret would go there)");
    let mut moved = secretless.clone();
    moved["issuer"] = json!(format!("http://localhost:{}", idp.port));
    let refused = boss.send(boss.http.put(boss.url(path)).json(&moved)).await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("client secret again"));

    steps.at("changed without its secret: the stored one is kept; removed: gone");
    let mut renamed = secretless.clone();
    renamed["name"] = json!("Corp");
    let saved = boss
        .send(boss.http.put(boss.url(path)).json(&renamed))
        .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    let again = Browser::new(&app);
    idp.next(person("c-1", "dewi@corp.example", true), Forge::Nothing);
    assert_eq!(again.sign_in("corp").await, "/#/chats");
    let removed = boss.delete(path).await;
    assert_eq!(removed.status, 200, "{removed:?}");
    let linked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM accounts WHERE provider_id = 'corp'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(linked, 0, "the accounts linked through it go with it");
    let instance = app.anonymous().get("/api/v1/instance").await;
    assert_eq!(
        instance.body["identityProviders"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_second_factor_is_asked_after_the_provider_and_an_unconfirmed_squatter_loses_the_account()
{
    let mut steps = sambung_testkit::Steps::new();
    let idp = FakeIdp::start().await;
    let mut lenient = idp.oidc("lenient");
    lenient["linkUnverifiedAccounts"] = json!(true);
    let app = app_with(&idp, json!([idp.oidc("corp"), lenient])).await;
    app.user("owner").await;

    steps.at("ana, with a password and a second factor, links the provider");
    let ana = app.user("ana").await;
    let (totp, _) = crate::two_factor::enable(&ana).await;
    let code = |offset: i64| crate::two_factor::code(&totp, offset);
    let linker = Browser::new(&app);
    linker
        .post(
            "/api/auth/sign-in/email",
            json!({"email": ana.email, "password": ana.password}),
        )
        .await;
    // (the password sign-in asks for the code: linking needs a session, so the code is given)
    let (status, _) = linker
        .post("/api/auth/two-factor/verify-totp", json!({"code": code(0)}))
        .await;
    assert_eq!(status, 200);
    let (_, body) = linker
        .post(
            "/api/auth/link-social",
            json!({"provider": "corp", "callbackURL": "/#/settings"}),
        )
        .await;
    idp.next(person("u-ana", "ana@example.com", true), Forge::Nothing);
    let callback = linker.hop(body["url"].as_str().unwrap()).await;
    assert_eq!(linker.hop(&callback).await, "/#/settings");

    steps.at("through the provider, the code is still asked for before any session");
    let browser = Browser::new(&app);
    idp.next(person("u-ana", "ana@example.com", true), Forge::Nothing);
    assert_eq!(browser.sign_in("corp").await, "/#/?two_factor=1");
    assert_eq!(browser.email().await, None);
    let (status, body) = browser
        .post("/api/auth/two-factor/verify-totp", json!({"code": code(1)}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(browser.email().await.as_deref(), Some("ana@example.com"));

    steps.at("an unconfirmed account made by someone who typed the address is taken over");
    let squatter = app.anonymous();
    let made = squatter
        .post(
            "/api/auth/sign-up/email",
            json!({"name": "Squatter", "email": "victim@corp.example", "password": "squatters-password"}),
        )
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    let planted = squatter
        .post(
            "/api/v1/tokens",
            json!({"name": "planted", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(planted.status, 201, "{planted:?}");
    let planted = app.bearer_client(&app.url, planted.body["tokenSecret"].as_str().unwrap());
    assert_eq!(planted.get("/api/v1/me").await.status, 200);
    let victim = Browser::new(&app);
    idp.next(
        person("victim", "victim@corp.example", true),
        Forge::Nothing,
    );
    victim.sign_in("lenient").await;
    assert_eq!(victim.email().await.as_deref(), Some("victim@corp.example"));
    let again = app
        .anonymous()
        .sign_in(json!({"email": "victim@corp.example", "password": "squatters-password"}))
        .await;
    assert_eq!(
        again.status, 401,
        "the squatter's password is gone: {again:?}"
    );
    assert_eq!(
        squatter.get("/api/v1/me").await.status,
        401,
        "and so are the squatter's sessions"
    );
    assert_eq!(
        planted.get("/api/v1/me").await.status,
        401,
        "and the tokens the squatter made"
    );
}
