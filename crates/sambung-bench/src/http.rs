//! The HTTP workloads: the same operations through a running `sambung serve` (in this
//! process, on loopback), as signed-in users with their session cookies.

use std::collections::HashMap;
use std::sync::Arc;

use sambung_config::AuthSecret;
use sambung_db::{ChatId, SessionId, UserId};
use sambung_server::auth::cookie::{Cookies, SESSION_TOKEN};
use sambung_server::{RateLimits, Server, ServerSettings};
use sqlx::PgPool;

use crate::BenchError;

/// A server to send requests to and a signed-in cookie for every user the workloads act as.
pub struct HttpTarget {
    client: reqwest::Client,
    base: String,
    cookies: HashMap<UserId, String>,
    sessions: Vec<SessionId>,
    pool: PgPool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The cookies are live sessions: never printed.
        f.debug_struct("HttpTarget")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HttpTarget {
    /// Start a server on `pool`'s database and open a session for each of `users`.
    pub async fn start(
        pool: &PgPool,
        users: &[UserId],
        concurrency: usize,
        ai_allowed_hosts: Vec<String>,
    ) -> Result<HttpTarget, BenchError> {
        let secret =
            AuthSecret::parse(&sambung_config::random_token()).map_err(BenchError::Setup)?;
        let cookies = Cookies::new(secret.clone(), false);
        let mut by_user = HashMap::new();
        let mut sessions = Vec::new();
        for &user in users {
            if by_user.contains_key(&user) {
                continue;
            }
            let (session, token) = sambung_db::auth::create_session(
                pool,
                user,
                chrono::Duration::hours(2),
                None,
                Some("sambung bench"),
            )
            .await
            .map_err(crate::domain)?;
            sessions.push(session.id);
            by_user.insert(user, cookies.pair(SESSION_TOKEN, &token));
        }
        let settings = ServerSettings {
            host: "127.0.0.1".into(),
            port: 0,
            auth_secret: secret,
            encryption_key: None,
            public_url: None,
            trusted_origins: Vec::new(),
            rate_limits: RateLimits::unlimited(),
            ai_allowed_hosts,
            ai_timeouts: Default::default(),
            reply_save_every: sambung_server::REPLY_SAVE_EVERY,
            read_replicas: Vec::new(),
            read_max_lag: std::time::Duration::from_secs(5),
        };
        let server = Server::bind(pool.clone(), &settings)
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let base = format!("http://{}", server.address());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency.max(1))
            .build()
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        Ok(HttpTarget {
            client,
            base,
            cookies: by_user,
            sessions,
            pool: pool.clone(),
            stop: Some(stop),
        })
    }

    fn cookie(&self, user: UserId) -> &str {
        self.cookies
            .get(&user)
            .map(String::as_str)
            .unwrap_or_default()
    }

    async fn send(&self, request: reqwest::RequestBuilder, user: UserId) -> Result<(), BenchError> {
        let response = request
            .header(reqwest::header::COOKIE, self.cookie(user))
            .header(reqwest::header::ORIGIN, &self.base)
            .send()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?;
        let status = response.status();
        // Read the whole body: a client would.
        let _ = response
            .bytes()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?;
        if !status.is_success() {
            return Err(BenchError::Http(format!("status {status}")));
        }
        Ok(())
    }

    pub async fn list_chats(&self, user: UserId) -> Result<(), BenchError> {
        self.send(
            self.client
                .get(format!("{}/api/v1/chats?limit=50", self.base)),
            user,
        )
        .await
    }

    pub async fn chat_messages(&self, user: UserId, chat: ChatId) -> Result<(), BenchError> {
        self.send(
            self.client.get(format!(
                "{}/api/v1/chats/{chat}/messages?limit=500",
                self.base
            )),
            user,
        )
        .await
    }

    pub async fn append_message(&self, user: UserId, chat: ChatId) -> Result<(), BenchError> {
        let request = self
            .client
            .post(format!("{}/api/v1/chats/{chat}/messages", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(r#"{"content":"benchmark message"}"#);
        self.send(request, user).await
    }

    pub async fn search_messages(&self, user: UserId, word: &str) -> Result<(), BenchError> {
        self.send(
            self.client.get(format!(
                "{}/api/v1/search/messages?q={word}&limit=20",
                self.base
            )),
            user,
        )
        .await
    }

    /// Start a turn in `chat` as `user` and read its stream: the time to the first text
    /// delta, and to the end.
    pub async fn generate(
        &self,
        user: UserId,
        chat: ChatId,
    ) -> Result<(std::time::Duration, std::time::Duration), BenchError> {
        use futures_util::StreamExt as _;
        let started = std::time::Instant::now();
        let response = self
            .client
            .post(format!("{}/api/v1/chats/{chat}/generate", self.base))
            .header(reqwest::header::COOKIE, self.cookie(user))
            .header(reqwest::header::ORIGIN, &self.base)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(r#"{"content":"benchmark question"}"#)
            .send()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?;
        if !response.status().is_success() {
            return Err(BenchError::Http(format!("status {}", response.status())));
        }
        let mut body = response.bytes_stream();
        let mut first = None;
        let mut seen = Vec::new();
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| BenchError::Http(e.to_string()))?;
            if first.is_none() {
                seen.extend_from_slice(&piece);
                if seen.windows(10).any(|w| w == b"text-delta") {
                    first = Some(started.elapsed());
                }
            }
        }
        let first = first.ok_or_else(|| BenchError::Http("no text in the reply".into()))?;
        Ok((first, started.elapsed()))
    }

    /// Stop the server and end the sessions it was given.
    pub async fn close(mut self) -> Result<(), BenchError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let ids: Vec<uuid::Uuid> = self.sessions.iter().map(|s| s.0).collect();
        sqlx::query("DELETE FROM sessions WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Shared by the tasks of a run.
pub type SharedTarget = Arc<HttpTarget>;
