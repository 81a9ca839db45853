//! The HTTP workloads: the same operations through a running `sambung serve` (in this
//! process, on loopback), as signed-in users with their session cookies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sambung_config::{AuthSecret, DatabaseUrl, EncryptionKey};
use sambung_db::secret::Cipher;
use sambung_db::{ChatId, ModelId, SessionId, UserId};
use sambung_server::auth::cookie::{Cookies, SESSION_TOKEN};
use sambung_server::{RateLimits, Server, ServerSettings};
use sqlx::PgPool;

use crate::BenchError;

/// How the servers under test are set up.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Servers on the one database, requests taking turns among them.
    pub servers: usize,
    /// Streaming replicas each server reads lists and searches on (`DATABASE_READ_URL`).
    pub read_replicas: Vec<DatabaseUrl>,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            servers: 1,
            read_replicas: Vec::new(),
        }
    }
}

/// The master key of the benchmarks' servers (random, for this process): the benchmark's
/// models keep their keys sealed under it, as a real instance's do, so that a turn reads and
/// opens its model's key as it would there.
pub(crate) fn master_key() -> &'static EncryptionKey {
    static KEY: std::sync::LazyLock<EncryptionKey> =
        std::sync::LazyLock::new(EncryptionKey::random);
    &KEY
}

/// The cipher of [`master_key`].
pub(crate) fn cipher() -> Cipher {
    Cipher::new(master_key().as_bytes())
}

/// The servers to send requests to and a signed-in cookie for every user the workloads act
/// as.
pub struct HttpTarget {
    client: reqwest::Client,
    bases: Vec<String>,
    turn: AtomicUsize,
    cookies: HashMap<UserId, String>,
    sessions: Vec<SessionId>,
    pool: PgPool,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The cookies are live sessions: never printed.
        f.debug_struct("HttpTarget")
            .field("bases", &self.bases)
            .finish_non_exhaustive()
    }
}

impl HttpTarget {
    /// Start the servers of `topology` on `pool`'s database and open a session for each of
    /// `users`.
    pub async fn start(
        pool: &PgPool,
        users: &[UserId],
        concurrency: usize,
        ai_allowed_hosts: Vec<String>,
        topology: &Topology,
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
            // A session as sign-in makes it: one made shorter would be due to be renewed, and
            // every user's first request would measure the renewal.
            let (session, token) = sambung_db::auth::create_session(
                pool,
                user,
                sambung_server::auth::SESSION_LIFETIME,
                None,
                Some("sambung bench"),
            )
            .await
            .map_err(crate::domain)?;
            sessions.push(session.id);
            by_user.insert(user, cookies.pair(SESSION_TOKEN, &token));
        }
        let settings = ServerSettings {
            rate_limits: RateLimits::unlimited(),
            ai_allowed_hosts,
            read_replicas: topology.read_replicas.clone(),
            // Benchmarks run inside `sambung`, whose `read-pdf` reads uploaded PDFs.
            pdf_reader: std::env::current_exe().ok(),
            encryption_key: Some(master_key().clone()),
            ..ServerSettings::new(secret)
        };
        let (mut bases, mut stops) = (Vec::new(), Vec::new());
        for _ in 0..topology.servers.max(1) {
            let server = Server::bind(pool.clone(), &settings)
                .await
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            bases.push(format!("http://{}", server.address()));
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(server.serve(async {
                let _ = stopped.await;
            }));
            stops.push(stop);
        }
        if !topology.read_replicas.is_empty() {
            wait_for_replicas(&bases[0]).await?;
        }
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency.max(1))
            .build()
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        Ok(HttpTarget {
            client,
            bases,
            turn: AtomicUsize::new(0),
            cookies: by_user,
            sessions,
            pool: pool.clone(),
            stops,
        })
    }

    /// The next server's address, taking turns.
    fn base(&self) -> &str {
        &self.bases[self.turn.fetch_add(1, Ordering::Relaxed) % self.bases.len()]
    }

    fn cookie(&self, user: UserId) -> &str {
        self.cookies
            .get(&user)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Send `request(base)` to the next server as `user` (its cookie, and this site's
    /// origin): the response, whatever its status.
    async fn request(
        &self,
        request: impl FnOnce(&str) -> reqwest::RequestBuilder,
        user: UserId,
    ) -> Result<reqwest::Response, BenchError> {
        let base = self.base();
        request(base)
            .header(reqwest::header::COOKIE, self.cookie(user))
            .header(reqwest::header::ORIGIN, base)
            .send()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))
    }

    /// [`Self::request`], which must succeed: the response, to be read.
    async fn successful(
        &self,
        request: impl FnOnce(&str) -> reqwest::RequestBuilder,
        user: UserId,
    ) -> Result<reqwest::Response, BenchError> {
        let response = self.request(request, user).await?;
        match response.status().is_success() {
            true => Ok(response),
            false => Err(BenchError::Http(format!("status {}", response.status()))),
        }
    }

    /// Send `request(base)` to the next server as `user`, and read the whole answer.
    async fn send(
        &self,
        request: impl FnOnce(&str) -> reqwest::RequestBuilder,
        user: UserId,
    ) -> Result<(), BenchError> {
        let response = self.request(request, user).await?;
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
            |base| self.client.get(format!("{base}/api/v1/chats?limit=50")),
            user,
        )
        .await
    }

    pub async fn chat_messages(&self, user: UserId, chat: ChatId) -> Result<(), BenchError> {
        self.send(
            |base| {
                self.client
                    .get(format!("{base}/api/v1/chats/{chat}/messages?limit=500"))
            },
            user,
        )
        .await
    }

    pub async fn append_message(&self, user: UserId, chat: ChatId) -> Result<(), BenchError> {
        let request = |base: &str| {
            self.client
                .post(format!("{base}/api/v1/chats/{chat}/messages"))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(r#"{"content":"benchmark message"}"#)
        };
        self.send(request, user).await
    }

    pub async fn search_messages(&self, user: UserId, word: &str) -> Result<(), BenchError> {
        self.send(
            |base| {
                self.client
                    .get(format!("{base}/api/v1/search/messages?q={word}&limit=20"))
            },
            user,
        )
        .await
    }

    /// Upload `size` bytes of text made on the fly from `seed` (so that no two uploads are
    /// the same file, and the client holds none of it) as `user`: the new file's id.
    pub async fn upload_text(
        &self,
        user: UserId,
        size: usize,
        seed: u64,
    ) -> Result<String, BenchError> {
        const PIECE: usize = 64 << 10;
        let pieces = (0..size.div_ceil(PIECE)).map(move |i| {
            let line = format!("benchmark file {seed}, piece {i}: ");
            let mut piece = line.repeat(PIECE / line.len() + 1).into_bytes();
            piece.truncate(PIECE.min(size - i * PIECE));
            Ok::<_, std::io::Error>(piece)
        });
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(pieces));
        let part = reqwest::multipart::Part::stream_with_length(body, size as u64)
            .file_name(format!("bench-{seed}.txt"));
        self.upload(user, part).await
    }

    /// Import the export at `path` as `user`, streamed from disk: the import's summary.
    pub async fn import(
        &self,
        user: UserId,
        path: &std::path::Path,
    ) -> Result<serde_json::Value, BenchError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?
            .len();
        let body = reqwest::Body::wrap_stream(tokio_util_stream(file));
        let part = reqwest::multipart::Part::stream_with_length(body, size)
            .file_name("conversations.json");
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = self
            .successful(
                |base| {
                    self.client
                        .post(format!("{base}/api/v1/imports"))
                        .multipart(form)
                },
                user,
            )
            .await?;
        response
            .json()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))
    }

    /// The account of `user` exported as a zip, counted as it streams: its size.
    pub async fn export_account(&self, user: UserId) -> Result<usize, BenchError> {
        let response = self
            .successful(
                |base| self.client.post(format!("{base}/api/v1/me/export")),
                user,
            )
            .await?;
        counted(response).await
    }

    /// Upload `part` as `user`: the new file's id.
    pub async fn upload(
        &self,
        user: UserId,
        part: reqwest::multipart::Part,
    ) -> Result<String, BenchError> {
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = self
            .request(
                |base| {
                    self.client
                        .post(format!("{base}/api/v1/files"))
                        .multipart(form)
                },
                user,
            )
            .await?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?;
        match (status.is_success(), body["id"].as_str()) {
            (true, Some(id)) => Ok(id.to_owned()),
            _ => Err(BenchError::Http(format!("status {status}: {body}"))),
        }
    }

    /// Download file `id` as `user`, counting its bytes as they come (none kept).
    pub async fn download(&self, user: UserId, id: &str) -> Result<usize, BenchError> {
        let response = self
            .successful(
                |base| self.client.get(format!("{base}/api/v1/files/{id}")),
                user,
            )
            .await?;
        counted(response).await
    }

    /// Start a turn in `chat` as `user` with `model` named (as the web page names the one its
    /// picker shows) and `files` (their ids), and read its stream to its end.
    pub async fn generate(
        &self,
        user: UserId,
        chat: ChatId,
        model: ModelId,
        files: &[String],
    ) -> Result<Turned, BenchError> {
        use futures_util::StreamExt as _;
        let started = std::time::Instant::now();
        let question =
            serde_json::json!({"content": "benchmark question", "model": model, "files": files});
        let response = self
            .successful(
                |base| {
                    self.client
                        .post(format!("{base}/api/v1/chats/{chat}/generate"))
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(question.to_string())
                },
                user,
            )
            .await?;
        let mut body = response.bytes_stream();
        let mut first = None;
        let mut seen = Vec::new();
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| BenchError::Http(e.to_string()))?;
            if first.is_none() {
                seen.extend_from_slice(&piece);
                if seen.windows(10).any(|w| w == b"text-delta") {
                    first = Some(std::time::Instant::now());
                }
            }
        }
        let first_delta = first.ok_or_else(|| BenchError::Http("no text in the reply".into()))?;
        Ok(Turned {
            started,
            first_delta,
            ended: std::time::Instant::now(),
        })
    }

    /// A streamed completion through the OpenAI-compatible endpoint with the personal access
    /// token `token`, read to its end: how long that took.
    pub async fn complete(&self, token: &str) -> Result<std::time::Duration, BenchError> {
        let started = std::time::Instant::now();
        let body = serde_json::json!({"model": "Benchmark fake", "stream": true,
            "messages": [{"role": "user", "content": "benchmark question"}]});
        let response = self
            .client
            .post(format!("{}/v1/chat/completions", self.base()))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?;
        if !response.status().is_success() {
            return Err(BenchError::Http(format!("status {}", response.status())));
        }
        let text = response
            .text()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?;
        match text.ends_with("data: [DONE]\n\n") {
            true => Ok(started.elapsed()),
            false => Err(BenchError::Http("the stream did not end".into())),
        }
    }

    /// Stop the servers and end the sessions they were given.
    pub async fn close(self) -> Result<(), BenchError> {
        for stop in self.stops {
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

/// Wait (10 s at most) until the server at `base` finds its replicas usable.
async fn wait_for_replicas(base: &str) -> Result<(), BenchError> {
    for _ in 0..100 {
        let health: serde_json::Value = reqwest::get(format!("{base}/health"))
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?
            .json()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?;
        let replicas = health["replicas"].as_array().cloned().unwrap_or_default();
        if !replicas.is_empty() && replicas.iter().all(|r| r["status"] == "ok") {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(BenchError::Setup(
        "the replicas in DATABASE_READ_URL are not usable (see GET /health)".into(),
    ))
}

/// Shared by the tasks of a run.
pub type SharedTarget = Arc<HttpTarget>;

/// A file's bytes as a stream of pieces (what reqwest sends as a body).
fn tokio_util_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    futures_util::stream::unfold(file, |mut file| async move {
        let mut piece = vec![0; 256 << 10];
        match tokio::io::AsyncReadExt::read(&mut file, &mut piece).await {
            Ok(0) => None,
            Ok(n) => {
                piece.truncate(n);
                Some((Ok(piece), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    })
}

/// How many bytes an answer's body holds, read as it streams (never held).
async fn counted(response: reqwest::Response) -> Result<usize, BenchError> {
    use futures_util::StreamExt as _;
    let mut body = response.bytes_stream();
    let mut size = 0;
    while let Some(piece) = body.next().await {
        size += piece.map_err(|e| BenchError::Http(e.to_string()))?.len();
    }
    Ok(size)
}

/// When a turn was asked for, when its first text delta came and when its stream ended.
#[derive(Debug, Clone, Copy)]
pub struct Turned {
    pub started: std::time::Instant,
    pub first_delta: std::time::Instant,
    pub ended: std::time::Instant,
}

impl Turned {
    /// The time to the first text delta.
    pub fn first(&self) -> std::time::Duration {
        self.first_delta - self.started
    }

    /// The time to the stream's end.
    pub fn whole(&self) -> std::time::Duration {
        self.ended - self.started
    }
}
