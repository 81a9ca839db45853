//! Single sign-on against a real OpenID Provider: npm's `oidc-provider` (certified by the
//! OpenID Foundation), started on loopback, RS256 ID tokens, its own login and consent forms.
//! Better Auth's own client drives the redirect flow (`better-auth-client/sso.mjs`), then a
//! person does in Chromium.

use crate::common;

use std::time::Duration;

use common::TestApp;
use sambung_testkit::browser::Browser;
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

/// The provider, for as long as it is held.
struct Provider {
    _process: tokio::process::Child,
}

async fn start_provider(port: u16, redirect_uri: &str) -> Provider {
    let dir = tokio::task::spawn_blocking(|| common::npm::installed("oidc-provider"))
        .await
        .unwrap();
    let mut process = tokio::process::Command::new("node")
        .arg("provider.mjs")
        .arg(port.to_string())
        .arg(redirect_uri)
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed (scripts/test installs it)");
    let mut lines = tokio::io::BufReader::new(process.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("listening") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "oidc-provider did not start");
    // Its later output is read (and dropped): a closed pipe would end it at its next line.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Provider { _process: process }
}

async fn app_and_provider() -> (TestApp, Provider) {
    let port = sambung_testkit::free_port();
    let providers = json!([{
        "id": "op", "name": "Test IdP", "issuer": format!("http://127.0.0.1:{port}"),
        "clientId": "sambung", "clientSecret": "the-test-client-secret-of-sambungchat",
    }]);
    let providers = sambung_sso::parse_providers(&providers.to_string()).unwrap();
    let app = TestApp::with_settings(move |settings| {
        settings.identity_providers = providers;
        settings.ai_allowed_hosts.push(format!("127.0.0.1:{port}"));
    })
    .await;
    let provider = start_provider(port, &format!("{}/api/auth/callback/op", app.url)).await;
    (app, provider)
}

#[tokio::test]
async fn better_auths_client_signs_in_through_a_real_openid_provider() {
    let (app, _provider) = app_and_provider().await;
    app.user("owner").await;
    let dir = tokio::task::spawn_blocking(|| common::npm::installed("better-auth-client"))
        .await
        .unwrap();
    let output = tokio::process::Command::new("node")
        .arg("sso.mjs")
        .arg(&app.url)
        .current_dir(&dir)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("sso: every step as expected"), "{stdout}");
}

#[tokio::test]
async fn a_person_signs_in_through_the_provider_in_chromium() {
    let mut steps = sambung_testkit::Steps::new();
    let (app, _provider) = app_and_provider().await;
    app.user("owner").await;
    let browser = Browser::start().await;
    browser.client.goto(&app.url).await.unwrap();

    steps.at("the sign-in page offers the provider; its login and consent, then the app");
    browser.until_text("#sso-buttons", "Test IdP").await;
    browser.screenshot(screenshot_path("sso-sign-in.png")).await;
    browser.click("#sso-buttons button").await;
    browser.type_into("input[name=login]", "rina").await;
    browser.type_into("input[name=password]", "anything").await;
    browser.click("button[type=submit]").await;
    // The consent page (its form names the prompt), once it has replaced the login page.
    browser.element("input[name=prompt][value=consent]").await;
    browser.click("button[type=submit]").await;
    browser.element(common::APP_DRAWN).await;
    browser.until_text("#me", "Rina Wijaya").await;

    steps.at("Settings name the provider as the way in, not to be unlinked");
    browser.click("#open-settings").await;
    browser.until_text("#method-list", "Test IdP").await;
    assert!(browser.all("#method-list button").await.is_empty());
    eval_click(&browser, "#close-settings").await;

    steps.at("signed out and in again: the same user, linked to their identity");
    browser.click("#sign-out").await;
    browser.click("#sso-buttons button").await;
    // The provider may remember the person: straight back, or its forms again.
    let page = "return document.querySelector('#app:not([hidden])') ? 'app' \
        : document.querySelector('input[name=prompt][value=login]') ? 'login' \
        : document.querySelector('input[name=prompt][value=consent]') ? 'consent' : null";
    for _ in 0..5 {
        let at = browser
            .until("back in the app or at the provider", page, |v| {
                v.is_string()
            })
            .await;
        match at.as_str() {
            Some("login") => {
                browser.type_into("input[name=login]", "rina").await;
                browser.type_into("input[name=password]", "anything").await;
                browser.click("button[type=submit]").await;
            }
            Some("consent") => browser.click("button[type=submit]").await,
            _ => break,
        }
        // The next page, once this one is gone.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    browser.element(common::APP_DRAWN).await;
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'rina@idp.example'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(users, 1);
    let accounts: Vec<(String, String)> =
        sqlx::query_as("SELECT provider_id, account_id FROM accounts a JOIN users u ON u.id = a.user_id WHERE u.email = 'rina@idp.example'")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(accounts, [("op".to_owned(), "rina".to_owned())]);

    steps.at("a refusal comes back to the sign-in page in words");
    browser.click("#sign-out").await;
    // Signed out for good before the next page loads, or it would open the app instead.
    browser.element("#auth:not([hidden])").await;
    browser
        .client
        .goto(&format!("{}/#/?error=account_not_linked", app.url))
        .await
        .unwrap();
    browser.client.refresh().await.unwrap();
    let said = browser.until_text("#auth-error", "exists already").await;
    assert!(!said.contains("account_not_linked"), "{said}");
    browser.close().await;
}

fn screenshot_path(file: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("screenshots")
        .join(file)
}

async fn eval_click(browser: &Browser, css: &str) {
    browser
        .client
        .execute(
            &format!(
                "document.querySelector({}).click();",
                serde_json::to_string(css).unwrap()
            ),
            vec![],
        )
        .await
        .unwrap();
}
