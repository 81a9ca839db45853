//! The server under test, on a database of its own, and clients that talk to it over real
//! HTTP the way a browser does (a cookie jar, an `Origin` header on every request).

#![allow(dead_code)] // each test file uses its own part of the harness

pub mod idp;
pub mod npm;
pub mod pip;
pub mod smtp;

use std::sync::{Arc, Mutex};

use reqwest::header::{HeaderMap, HeaderValue, ORIGIN};
use reqwest::Method;
use sambung_ai::fake::FakeProvider;
use sambung_config::{AuthSecret, EncryptionKey};
use sambung_server::{RateLimits, Server, ServerSettings};
use sambung_testkit::TestDb;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

pub const AUTH_SECRET: &str = "test-auth-secret-of-at-least-32-characters";

pub struct TestApp {
    pub db: TestDb,
    /// A fake AI provider the server may reach (its port is in the server's allowed hosts).
    pub provider: FakeProvider,
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Every response body any client of this app received, to search for leaks.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl TestApp {
    /// The JSON body of the last request the fake provider received.
    pub fn last_request(&self) -> Value {
        let sent = self.provider.requests().last().unwrap().clone();
        request_body(&sent)
    }

    /// The JSON body of the turn's request that asked `question` (not the title's that may
    /// follow it).
    pub fn request_asking(&self, question: &str) -> Value {
        let sent = self
            .provider
            .requests()
            .into_iter()
            .find(|r| r.contains(question) && !r.contains("Name a chat"))
            .unwrap_or_else(|| panic!("no request asked {question:?}"));
        request_body(&sent)
    }

    /// A server without rate limits (tests about them use [`TestApp::with_limits`]).
    pub async fn start() -> TestApp {
        Self::with_limits(RateLimits::unlimited()).await
    }

    pub async fn with_limits(rate_limits: RateLimits) -> TestApp {
        Self::with_settings(|settings| settings.rate_limits = rate_limits).await
    }

    /// A server whose settings `tweak` changes from the tests' usual ones.
    pub async fn with_settings(tweak: impl FnOnce(&mut ServerSettings)) -> TestApp {
        Self::serving(|db| db.pool().clone(), tweak).await
    }

    /// A server whose request pool holds at most `connections` (`DATABASE_POOL_MAX`), waiting
    /// 3 s for one before answering 503.
    pub async fn with_pool_of(connections: u32) -> TestApp {
        let pool = |db: &TestDb| {
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(std::time::Duration::from_secs(3))
                .connect_lazy_with(db.connect_options().clone())
        };
        Self::serving(pool, |_| {}).await
    }

    /// A server on a new database, through the pool `pool` makes for it.
    async fn serving(
        pool: impl FnOnce(&TestDb) -> PgPool,
        tweak: impl FnOnce(&mut ServerSettings),
    ) -> TestApp {
        let db = TestDb::migrated().await;
        let provider = FakeProvider::start().await.unwrap();
        let (url, stop) = spawn_server(&pool(&db), &provider, tweak).await;
        TestApp {
            db,
            provider,
            url,
            stop: Some(stop),
            seen: Arc::default(),
        }
    }

    /// A second server on this app's database (as behind a load balancer), until dropped.
    pub async fn another_server(&self) -> OtherServer {
        let (url, stop) = spawn_server(self.pool(), &self.provider, |_| {}).await;
        OtherServer { url, _stop: stop }
    }

    /// A client of the server at `base` carrying `token` as a bearer token (no cookies).
    pub fn bearer_client(&self, base: &str, token: &str) -> Client {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        Client {
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .unwrap(),
            base: base.to_owned(),
            seen: self.seen.clone(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        self.db.pool()
    }

    /// A client with no session, sending this server's own origin.
    pub fn anonymous(&self) -> Client {
        self.client_with_origin(Some(&self.url))
    }

    pub fn client_with_origin(&self, origin: Option<&str>) -> Client {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .default_headers(headers)
                .build()
                .unwrap(),
            base: self.url.clone(),
            seen: self.seen.clone(),
        }
    }

    /// Sign up `name@example.com` (password `password-of-NAME`), signed in.
    pub async fn user(&self, name: &str) -> User {
        let client = self.anonymous();
        let email = format!("{name}@example.com");
        let password = format!("password-of-{name}");
        let reply = client
            .post(
                "/api/auth/sign-up/email",
                json!({"name": name, "email": email, "password": password}),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        User {
            id: reply.body["user"]["id"].as_str().unwrap().parse().unwrap(),
            token: reply.body["token"].as_str().unwrap().to_owned(),
            email,
            password,
            client,
        }
    }

    /// A user with an API key, a default model at the fake provider (system prompt "Be
    /// brief.", temperature 0.3) and a chat of theirs, titled (so no title request follows
    /// its first reply and takes a script meant for a later turn).
    pub async fn user_with_model(&self, name: &str) -> (User, String) {
        let user = self.user(name).await;
        let key = user
            .post(
                "/api/v1/api-keys",
                json!({"provider": "openai", "key": "sk-fake-KEYVALUE-0001"}),
            )
            .await;
        let model = user
            .post(
                "/api/v1/models",
                json!({"provider": "openai", "modelId": "gpt-test", "name": "Test", "baseUrl": self.provider.url("/v1"),
                       "apiKeyId": key.body["id"], "settings": {"system": "Be brief.", "temperature": 0.3}, "isDefault": true}),
            )
            .await;
        assert_eq!(model.status, 201, "{model:?}");
        let chat = user
            .post("/api/v1/chats", json!({"title": "Test chat"}))
            .await;
        (user, chat.body["id"].as_str().unwrap().to_owned())
    }

    /// `member` joins the team `slug` by an invitation `admin` (one of its admins) makes.
    pub async fn join_team(&self, admin: &Client, slug: &str, member: &User) {
        let invite = admin
            .post(
                &format!("/api/v1/teams/{slug}/invites"),
                json!({"email": member.email}),
            )
            .await;
        let accepted = member
            .post(
                &format!(
                    "/api/v1/invites/{}/accept",
                    invite.body["token"].as_str().unwrap()
                ),
                json!({}),
            )
            .await;
        assert_eq!(accepted.status, 200, "{accepted:?}");
    }

    /// How many rows each table holds: bad input must change none of them.
    pub async fn row_counts(&self) -> Vec<(String, i64)> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .fetch_all(self.pool())
        .await
        .unwrap();
        let mut counts = Vec::new();
        for table in tables {
            let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\""))
                .fetch_one(self.pool())
                .await
                .unwrap();
            counts.push((table, count));
        }
        counts
    }
}

/// A server on `pool` that may reach `provider`, with the tests' settings changed by `tweak`;
/// it stops when the sender is dropped.
async fn spawn_server(
    pool: &PgPool,
    provider: &FakeProvider,
    tweak: impl FnOnce(&mut ServerSettings),
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut settings = ServerSettings {
        encryption_key: Some(EncryptionKey::parse(&"ab".repeat(32)).unwrap()),
        trusted_origins: vec!["http://trusted.example".into()],
        rate_limits: RateLimits::unlimited(),
        ai_allowed_hosts: vec![format!("127.0.0.1:{}", provider.port)],
        ai_timeouts: sambung_ai::Timeouts {
            idle: std::time::Duration::from_millis(800),
            backoff: std::time::Duration::from_millis(10),
            ..Default::default()
        },
        reply_save_every: std::time::Duration::from_millis(50),
        // Tests sign many people up; those about who may sign up set their own policy.
        signup: Some(sambung_db::instance::SignupPolicy::Open),
        pdf_reader: Some(sambung_testkit::sambung_executable().to_owned()),
        ..ServerSettings::new(AuthSecret::parse(AUTH_SECRET).unwrap())
    };
    tweak(&mut settings);
    let server = Server::bind(pool.clone(), &settings).await.unwrap();
    let url = format!("http://{}", server.address());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    (url, stop)
}

/// Another server of a [`TestApp`]'s database.
pub struct OtherServer {
    pub url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What better-call's `encodeURIComponent` does to a signed value's base64.
/// A raw HTTP request's JSON body.
fn request_body(raw: &str) -> Value {
    serde_json::from_str(&raw[raw.find("\r\n\r\n").unwrap() + 4..]).unwrap()
}

pub fn percent(value: &str) -> String {
    value
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// The signature better-call makes for `value` under the test secret, computed here
/// independently of the server's code.
pub fn signature(value: &str) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(AUTH_SECRET.as_bytes()).unwrap();
    mac.update(value.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `Cookie:` header of a signed-in session.
pub fn session_cookie(token: &str) -> String {
    format!(
        "sambungchat-auth.session_token={}",
        percent(&format!("{token}.{}", signature(token)))
    )
}

/// The signed-in page, shown and drawn: the page it opens first (a chat, or the first admin's
/// setup) is on screen, so that a page opened after it stays open.
pub const APP_DRAWN: &str = "#app:not([hidden]):not([aria-busy])";

/// Sign `name` up in the browser's sign-up form: `name@example.com`, password
/// `password-of-name` (lowercased), as [`TestApp::user`] does.
pub async fn sign_up_in(browser: &sambung_testkit::browser::Browser, name: &str) {
    let lower = name.to_lowercase();
    browser.type_into("#auth-name", name).await;
    browser
        .type_into("#auth-email", &format!("{lower}@example.com"))
        .await;
    browser
        .type_into("#auth-password", &format!("password-of-{lower}"))
        .await;
    browser.click("#auth-submit").await;
}

/// A signed-in user and their browser.
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password: String,
    /// The session token sign-up returned.
    pub token: String,
    pub client: Client,
}

impl std::ops::Deref for User {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Client {
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.request(Method::GET, self.url(path)))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.patch(self.url(path)).json(&body)).await
    }

    /// A turn in `chat` (`POST /api/v1/chats/{chat}/generate`): its status, whole body (the
    /// stream, read to its end) and headers.
    pub async fn generate(
        &self,
        chat: &str,
        body: Value,
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let response = self
            .http
            .post(self.url(&format!("/api/v1/chats/{chat}/generate")))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.text().await.unwrap(), headers)
    }

    /// `POST /api/auth/sign-in/email` with `body`.
    pub async fn sign_in(&self, body: Value) -> Reply {
        self.post("/api/auth/sign-in/email", body).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.http.delete(self.url(path))).await
    }

    /// Any request, body as given (not necessarily JSON).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self.http.request(method, self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        self.send(request).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        self.seen.lock().unwrap().push(text.clone());
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }
}
