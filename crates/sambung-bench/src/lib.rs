//! SPEC section 6's benchmark workloads, and Studio's table pages. Each runs through the
//! product's real code (the data layer's functions, Studio's page query) or, as the baseline,
//! as the best hand-written SQL through plain prepared statements, so that `ours / baseline`
//! shows what our layer costs. The `http-*` workloads run the same operations through the
//! server (`http`), against the direct data-layer call as their baseline.

pub mod attacks;
pub mod branches;
pub mod completions;
pub mod files;
pub mod generate;
pub mod http;
pub mod people;
mod served;
pub mod transfer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sambung_db::chats::{self, ChatQuery, ChatScope};
use sambung_db::seed::{vocabulary, Frequency};
use sambung_db::{prompts, ChatId, MessageId, UserId};
use sambung_studio::browse::{self, Filter, FilterOp, Sort, View};
use serde::Serialize;
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("no synthetic dataset in this database")]
    NoDataset,
    #[error("unknown workload {0:?} (one of: list-chats, chat-messages, append-message, search-prompts[-common|-middling|-rare], can-access-chat, search-messages[-common|-middling|-rare], studio-first-page, studio-filtered-page, http-list-chats, http-chat-messages, http-append-message, http-search-messages, all)")]
    UnknownWorkload(String),
    #[error("cannot set up the benchmark: {0}")]
    Setup(String),
    #[error("HTTP request failed: {0}")]
    Http(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A benchmark that could not be set up, saying why.
pub(crate) fn setup(error: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(error.to_string())
}

impl sambung_config::Hint for BenchError {
    fn hint(&self) -> Option<String> {
        match self {
            BenchError::NoDataset => Some("load one first: `sambung db seed --scale 1`".into()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    ListChats,
    ChatMessages,
    AppendMessage,
    /// For words of one frequency band (the dataset's text follows Zipf's law).
    SearchPrompts(Frequency),
    CanAccessChat,
    SearchMessages(Frequency),
    /// Studio's first page of `messages` as it opens (no filter, key order).
    StudioFirstPage,
    /// Studio's page of one chat's messages, newest first (a filter and a sort).
    StudioFilteredPage,
    HttpListChats,
    HttpChatMessages,
    HttpAppendMessage,
    /// Words of every band in turn.
    HttpSearchMessages,
}

impl Workload {
    pub const ALL: [Workload; 16] = [
        Workload::ListChats,
        Workload::ChatMessages,
        Workload::AppendMessage,
        Workload::SearchPrompts(Frequency::Common),
        Workload::SearchPrompts(Frequency::Middling),
        Workload::SearchPrompts(Frequency::Rare),
        Workload::CanAccessChat,
        Workload::SearchMessages(Frequency::Common),
        Workload::SearchMessages(Frequency::Middling),
        Workload::SearchMessages(Frequency::Rare),
        Workload::StudioFirstPage,
        Workload::StudioFilteredPage,
        Workload::HttpListChats,
        Workload::HttpChatMessages,
        Workload::HttpAppendMessage,
        Workload::HttpSearchMessages,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::ListChats => "list-chats",
            Workload::ChatMessages => "chat-messages",
            Workload::AppendMessage => "append-message",
            Workload::SearchPrompts(Frequency::Common) => "search-prompts-common",
            Workload::SearchPrompts(Frequency::Middling) => "search-prompts-middling",
            Workload::SearchPrompts(Frequency::Rare) => "search-prompts-rare",
            Workload::CanAccessChat => "can-access-chat",
            Workload::SearchMessages(Frequency::Common) => "search-messages-common",
            Workload::SearchMessages(Frequency::Middling) => "search-messages-middling",
            Workload::SearchMessages(Frequency::Rare) => "search-messages-rare",
            Workload::StudioFirstPage => "studio-first-page",
            Workload::StudioFilteredPage => "studio-filtered-page",
            Workload::HttpListChats => "http-list-chats",
            Workload::HttpChatMessages => "http-chat-messages",
            Workload::HttpAppendMessage => "http-append-message",
            Workload::HttpSearchMessages => "http-search-messages",
        }
    }

    /// The data-layer operation an HTTP workload sends through the server (its baseline).
    pub fn direct(self) -> Option<Workload> {
        match self {
            Workload::HttpListChats => Some(Workload::ListChats),
            Workload::HttpChatMessages => Some(Workload::ChatMessages),
            Workload::HttpAppendMessage => Some(Workload::AppendMessage),
            Workload::HttpSearchMessages => Some(Workload::SearchMessages(Frequency::Common)),
            _ => None,
        }
    }

    /// One workload by name, the three bands of a search by its name without one
    /// (`search-prompts`), or every workload for `all`.
    pub fn parse(name: &str) -> Result<Vec<Workload>, BenchError> {
        if name == "all" {
            return Ok(Workload::ALL.to_vec());
        }
        let found: Vec<Workload> = Workload::ALL
            .into_iter()
            .filter(|w| {
                w.name() == name
                    || w.name()
                        .strip_prefix(name)
                        .and_then(|band| band.strip_prefix('-'))
                        .is_some_and(|band| Frequency::ALL.iter().any(|f| f.name() == band))
            })
            .collect();
        if found.is_empty() {
            return Err(BenchError::UnknownWorkload(name.to_owned()));
        }
        Ok(found)
    }
}

/// Whose code runs the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    DataLayer,
    Baseline,
    /// Through the running server.
    Http,
}

impl Mode {
    /// What a workload is measured with, and what it is compared to.
    fn sides(workload: Workload) -> (Mode, Mode) {
        match workload.direct() {
            Some(_) => (Mode::Http, Mode::DataLayer),
            None => (Mode::DataLayer, Mode::Baseline),
        }
    }
}

/// The ids operations draw from, sampled once from the dataset.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Users with personal chats.
    pub users: Vec<UserId>,
    /// (owner, personal chat)
    pub personal_chats: Vec<(UserId, ChatId)>,
    /// (a member of its team, team chat)
    pub team_chats: Vec<(UserId, ChatId)>,
    /// Search words of each frequency band (`Frequency as usize`).
    pub words: [Vec<&'static str>; 3],
    /// The `messages` table as Studio sees it.
    pub messages: Arc<sambung_schema::Table>,
    /// The server the `http-*` workloads talk to, once started ([`Inputs::serve`]).
    pub http: Option<http::SharedTarget>,
}

impl Inputs {
    pub async fn sample(pool: &PgPool) -> Result<Inputs, BenchError> {
        let personal_chats: Vec<(UserId, ChatId)> = sqlx::query_as(
            "SELECT user_id, id FROM chats WHERE team_id IS NULL AND title <> 'Sample Chat' ORDER BY id LIMIT 5000",
        )
        .fetch_all(pool)
        .await?;
        let team_chats: Vec<(UserId, ChatId)> = sqlx::query_as(
            "SELECT m.user_id, c.id FROM chats c JOIN team_members m ON m.team_id = c.team_id
              WHERE m.user_id <> c.user_id ORDER BY c.id, m.user_id LIMIT 5000",
        )
        .fetch_all(pool)
        .await?;
        if personal_chats.len() < 10 || team_chats.is_empty() {
            return Err(BenchError::NoDataset);
        }
        let mut users: Vec<UserId> = personal_chats.iter().map(|(u, _)| *u).collect();
        users.sort();
        users.dedup();
        let mut conn = pool.acquire().await?;
        let schema = sambung_schema::introspect(&mut conn).await?;
        let messages = schema
            .table("messages")
            .cloned()
            .ok_or(BenchError::NoDataset)?;
        Ok(Inputs {
            users,
            personal_chats,
            team_chats,
            words: Frequency::ALL.map(|band| vocabulary().band(band, 50)),
            messages: Arc::new(messages),
            http: None,
        })
    }

    /// Start the server for the `http-*` workloads, with a session for every user they act as.
    pub async fn serve(
        &mut self,
        pool: &PgPool,
        concurrency: usize,
        topology: &http::Topology,
    ) -> Result<(), BenchError> {
        let mut users = self.users.clone();
        users.extend(self.personal_chats.iter().map(|(u, _)| *u));
        let target =
            http::HttpTarget::start(pool, &users, concurrency, Vec::new(), topology).await?;
        self.http = Some(Arc::new(target));
        Ok(())
    }

    /// Stop the server, if one was started, and end its sessions.
    pub async fn close(&mut self) -> Result<(), BenchError> {
        if let Some(target) = self.http.take().and_then(|t| Arc::try_unwrap(t).ok()) {
            target.close().await?;
        }
        Ok(())
    }
}

/// One operation, the `i`-th of the run.
pub async fn run_once(
    pool: &PgPool,
    inputs: &Inputs,
    workload: Workload,
    mode: Mode,
    i: usize,
) -> Result<(), BenchError> {
    let user = inputs.users[i % inputs.users.len()];
    let (owner, chat) = inputs.personal_chats[i % inputs.personal_chats.len()];
    let (member, team_chat) = inputs.team_chats[i % inputs.team_chats.len()];
    let word = |band: Frequency| {
        let words = &inputs.words[band as usize];
        words[i % words.len()]
    };
    if let Some(direct) = workload.direct() {
        if mode != Mode::Http {
            return Box::pin(run_once(pool, inputs, direct, Mode::DataLayer, i)).await;
        }
        let http = inputs
            .http
            .as_ref()
            .ok_or_else(|| BenchError::Setup("no server started".into()))?;
        return match direct {
            Workload::ListChats => http.list_chats(user).await,
            Workload::ChatMessages => http.chat_messages(owner, chat).await,
            Workload::AppendMessage => http.append_message(owner, chat).await,
            _ => {
                http.search_messages(user, word(Frequency::ALL[i % 3]))
                    .await
            }
        };
    }
    match (workload, mode) {
        (Workload::ListChats, Mode::DataLayer) => {
            chats::list_chats(pool, user, &ChatQuery::new(ChatScope::Personal))
                .await
                .map_err(domain)?;
        }
        (Workload::ListChats, Mode::Baseline) => {
            // Read into plain tuples, as hand-written code would: the data layer's structs cost
            // no more than that.
            let _: Vec<ChatTuple> = sqlx::query_as(
                "SELECT c.id, c.user_id, c.team_id, c.folder_id, c.title, c.model, c.provider, c.settings, c.metadata,
                        c.public_token, c.is_public, c.created_at, c.updated_at,
                        (SELECT count(*) FROM messages m WHERE m.chat_id = c.id) AS message_count
                   FROM chats c WHERE c.user_id = $1 AND c.team_id IS NULL
                  ORDER BY c.updated_at DESC, c.id DESC LIMIT 50",
            )
            .bind(user)
            .fetch_all(pool)
            .await?;
        }
        (Workload::ChatMessages, Mode::DataLayer) => {
            chats::chat_with_messages(pool, owner, chat, None, 10_000)
                .await
                .map_err(domain)?;
        }
        (Workload::ChatMessages, Mode::Baseline) => {
            // The access check folded into fetching the chat, then its messages.
            let found = sqlx::query(
                "SELECT c.* FROM chats c LEFT JOIN team_members m ON m.team_id = c.team_id AND m.user_id = $2
                  WHERE c.id = $1 AND ((c.team_id IS NULL AND c.user_id = $2) OR m.user_id IS NOT NULL)",
            )
            .bind(chat)
            .bind(owner)
            .fetch_optional(pool)
            .await?;
            if found.is_some() {
                let _: Vec<MessageTuple> = sqlx::query_as(
                    "SELECT id, chat_id, role, content, metadata, created_at FROM messages WHERE chat_id = $1 ORDER BY created_at, id",
                )
                .bind(chat)
                .fetch_all(pool)
                .await?;
            }
        }
        (Workload::AppendMessage, Mode::DataLayer) => {
            chats::append_message(pool, owner, chat, "benchmark message", None)
                .await
                .map_err(domain)?;
        }
        (Workload::AppendMessage, Mode::Baseline) => {
            // Who may post: the chat's owner for a personal chat, any member for a team chat.
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO messages (id, chat_id, role, content)
                 SELECT $1, c.id, 'user', 'benchmark message' FROM chats c
                   LEFT JOIN team_members m ON m.team_id = c.team_id AND m.user_id = $3
                  WHERE c.id = $2 AND ((c.team_id IS NULL AND c.user_id = $3) OR m.user_id IS NOT NULL)",
            )
            .bind(MessageId::new())
            .bind(chat)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 1 {
                sqlx::query("UPDATE chats SET updated_at = now() WHERE id = $1")
                    .bind(chat)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
        (Workload::SearchPrompts(band), Mode::DataLayer) => {
            prompts::search_prompts(pool, user, word(band), 20)
                .await
                .map_err(domain)?;
        }
        (Workload::SearchPrompts(band), Mode::Baseline) => {
            let word = word(band);
            // Written here, not taken from the data layer: ranked full-text matches of the
            // user's own and public prompts, then substring matches to fill up to 20.
            let ranked: Vec<PromptTuple> = sqlx::query_as(
                "SELECT p.id, p.user_id, p.name, p.content, p.variables, p.category, p.is_public, p.created_at, p.updated_at
                   FROM prompts p
                  WHERE to_tsvector('simple', p.name || ' ' || p.content) @@ plainto_tsquery('simple', $2)
                    AND (p.user_id = $1 OR p.is_public)
                  ORDER BY ts_rank(to_tsvector('simple', p.name || ' ' || p.content), plainto_tsquery('simple', $2)) DESC, p.id
                  LIMIT 20",
            )
            .bind(user)
            .bind(word)
            .fetch_all(pool)
            .await?;
            if ranked.len() < 20 {
                let seen: Vec<uuid::Uuid> = ranked.iter().map(|p| p.0).collect();
                let _: Vec<PromptTuple> = sqlx::query_as(
                    "(SELECT p.id, p.user_id, p.name, p.content, p.variables, p.category, p.is_public, p.created_at, p.updated_at
                        FROM prompts p WHERE p.user_id = $1 AND (p.name || ' ' || p.content) ILIKE $2 AND NOT p.id = ANY($3))
                     UNION ALL
                     (SELECT p.id, p.user_id, p.name, p.content, p.variables, p.category, p.is_public, p.created_at, p.updated_at
                        FROM prompts p WHERE p.is_public AND p.user_id <> $1 AND (p.name || ' ' || p.content) ILIKE $2 AND NOT p.id = ANY($3))
                     ORDER BY 9 DESC, 1 LIMIT $4",
                )
                .bind(user)
                .bind(format!("%{word}%"))
                .bind(&seen)
                .bind(20 - ranked.len() as i64)
                .fetch_all(pool)
                .await?;
            }
        }
        (Workload::CanAccessChat, Mode::DataLayer) => {
            let mut conn = pool.acquire().await?;
            chats::chat_access(&mut conn, member, team_chat)
                .await
                .map_err(domain)?;
        }
        (Workload::CanAccessChat, Mode::Baseline) => {
            // The rule written out by hand: the chat and the user's membership, decided here.
            let row: Option<(uuid::Uuid, Option<uuid::Uuid>, Option<String>)> = sqlx::query_as(
                "SELECT c.user_id, c.team_id, m.role FROM chats c
                   LEFT JOIN team_members m ON m.team_id = c.team_id AND m.user_id = $2
                  WHERE c.id = $1",
            )
            .bind(team_chat)
            .bind(member)
            .fetch_optional(pool)
            .await?;
            let _can_change = row.map(|(owner, team, role)| match team {
                None => owner == member.0,
                Some(_) => {
                    role.as_deref() == Some("admin") || (role.is_some() && owner == member.0)
                }
            });
        }
        (Workload::SearchMessages(band), Mode::DataLayer) => {
            chats::search_messages(pool, user, word(band), 20)
                .await
                .map_err(domain)?;
        }
        (Workload::SearchMessages(band), Mode::Baseline) => {
            let word = word(band);
            // The chats the user reads, written out by hand, then their newest matches.
            let _: Vec<MessageTuple> = sqlx::query_as(
                "SELECT m.id, m.chat_id, m.role, m.content, m.metadata, m.created_at FROM messages m
                  WHERE m.chat_id IN (SELECT c.id FROM chats c WHERE c.user_id = $1 AND c.team_id IS NULL
                                      UNION ALL
                                      SELECT c.id FROM chats c JOIN team_members tm ON tm.team_id = c.team_id
                                       WHERE tm.user_id = $1)
                    AND m.content_tsv @@ plainto_tsquery('simple', $2)
                  ORDER BY m.created_at DESC, m.id DESC LIMIT 20",
            )
            .bind(user)
            .bind(word)
            .fetch_all(pool)
            .await?;
        }
        (Workload::StudioFirstPage, Mode::DataLayer) => {
            browse::page(pool, &inputs.messages, &View::default())
                .await
                .map_err(studio)?;
        }
        (Workload::StudioFirstPage, Mode::Baseline) => {
            // The same page by hand: every value as text, long ones cut, for a grid.
            let _: Vec<PageTuple> = sqlx::query_as(&format!(
                "SELECT {STUDIO_PAGE_COLUMNS} FROM messages ORDER BY messages.id LIMIT 51"
            ))
            .fetch_all(pool)
            .await?;
        }
        (Workload::StudioFilteredPage, Mode::DataLayer) => {
            let view = View {
                sort: Some(Sort {
                    column: "created_at".into(),
                    descending: true,
                }),
                filters: vec![Filter {
                    column: "chat_id".into(),
                    op: FilterOp::Eq,
                    value: Some(chat.to_string()),
                }],
                ..View::default()
            };
            browse::page(pool, &inputs.messages, &view)
                .await
                .map_err(studio)?;
        }
        (_, Mode::Http) => {
            return Err(BenchError::Setup(format!(
                "{} has no HTTP form",
                workload.name()
            )))
        }
        (
            Workload::HttpListChats
            | Workload::HttpChatMessages
            | Workload::HttpAppendMessage
            | Workload::HttpSearchMessages,
            _,
        ) => {
            unreachable!("handled above")
        }
        (Workload::StudioFilteredPage, Mode::Baseline) => {
            let _: Vec<PageTuple> = sqlx::query_as(&format!(
                "SELECT {STUDIO_PAGE_COLUMNS} FROM messages WHERE chat_id = $1 \
                 ORDER BY messages.created_at DESC NULLS LAST, messages.id DESC LIMIT 51"
            ))
            .bind(chat)
            .fetch_all(pool)
            .await?;
        }
    }
    Ok(())
}

fn studio(e: sambung_studio::ApiError) -> BenchError {
    BenchError::Database(sqlx::Error::Protocol(e.error))
}

/// What a hand-written grid page of messages reads: every value as text. (The ORDER BY is
/// qualified: a bare `id` would be the text output column.)
const STUDIO_PAGE_COLUMNS: &str =
    "id::text, chat_id::text, role, content, metadata::text, created_at::text, content_tsv::text";
type PageTuple = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
);

type Json = sqlx::types::JsonValue;
type Time = sqlx::types::chrono::DateTime<sqlx::types::chrono::Utc>;
type ChatTuple = (
    uuid::Uuid,
    uuid::Uuid,
    Option<uuid::Uuid>,
    Option<uuid::Uuid>,
    String,
    String,
    String,
    Json,
    Json,
    Option<String>,
    bool,
    Time,
    Time,
    i64,
);
type MessageTuple = (uuid::Uuid, uuid::Uuid, String, String, Option<Json>, Time);
type PromptTuple = (
    uuid::Uuid,
    uuid::Uuid,
    String,
    String,
    Json,
    String,
    bool,
    Time,
    Time,
);

pub(crate) fn domain(e: sambung_db::DomainError) -> BenchError {
    match e {
        sambung_db::DomainError::Database(e) => BenchError::Database(e),
        other => BenchError::Database(sqlx::Error::Protocol(other.to_string())),
    }
}

/// What one workload measured.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub workload: &'static str,
    pub mode: Mode,
    pub ops: u64,
    pub seconds: f64,
    pub ops_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

/// How a run is shaped: seconds measured per side, tasks at once, warm-up before each part.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub seconds: f64,
    pub concurrency: usize,
    pub warmup: Duration,
}

/// Run `workload` through our code for `run.seconds`.
pub async fn measure(pool: &PgPool, inputs: &Inputs, workload: Workload, run: Run) -> Stats {
    let (ours, _) = Mode::sides(workload);
    let sample = sample(pool, inputs, workload, ours, run, run.seconds).await;
    sample.stats(workload, ours)
}

/// Ours against the baseline, each for `run.seconds` in two halves run ours, baseline,
/// baseline, ours: neither side always goes first (a workload that writes makes the tables
/// grow under whoever runs later).
pub async fn compare(
    pool: &PgPool,
    inputs: &Inputs,
    workload: Workload,
    run: Run,
) -> (Stats, Stats) {
    let half = run.seconds / 2.0;
    let (ours_mode, baseline_mode) = Mode::sides(workload);
    let mut ours = sample(pool, inputs, workload, ours_mode, run, half).await;
    let mut baseline = sample(pool, inputs, workload, baseline_mode, run, half).await;
    baseline.merge(sample(pool, inputs, workload, baseline_mode, run, half).await);
    ours.merge(sample(pool, inputs, workload, ours_mode, run, half).await);
    (
        ours.stats(workload, ours_mode),
        baseline.stats(workload, baseline_mode),
    )
}

/// Latencies of a part of a run.
struct Sample {
    latencies: Vec<Duration>,
    errors: u64,
    seconds: f64,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.seconds += other.seconds;
    }

    fn stats(mut self, workload: Workload, mode: Mode) -> Stats {
        self.latencies.sort_unstable();
        let latencies = &self.latencies;
        let percentile = |p: f64| percentile_ms(latencies, p);
        let ops = latencies.len() as u64;
        Stats {
            workload: workload.name(),
            mode,
            ops,
            seconds: self.seconds,
            ops_per_s: ops as f64 / self.seconds,
            p50_ms: percentile(0.50),
            p95_ms: percentile(0.95),
            p99_ms: percentile(0.99),
            errors: self.errors,
        }
    }
}

/// Run `workload` from `run.concurrency` tasks for `seconds` (after `run.warmup` unmeasured).
async fn sample(
    pool: &PgPool,
    inputs: &Inputs,
    workload: Workload,
    mode: Mode,
    run: Run,
    seconds: f64,
) -> Sample {
    let counter = Arc::new(AtomicUsize::new(0));
    let part = |duration: Duration| {
        let tasks: Vec<_> = (0..run.concurrency.max(1))
            .map(|_| {
                let (pool, inputs, counter) = (pool.clone(), inputs.clone(), counter.clone());
                tokio::spawn(async move {
                    let deadline = Instant::now() + duration;
                    let (mut latencies, mut errors) = (Vec::new(), 0u64);
                    while Instant::now() < deadline {
                        let i = counter.fetch_add(1, Ordering::Relaxed);
                        let started = Instant::now();
                        match run_once(&pool, &inputs, workload, mode, i).await {
                            Ok(()) => latencies.push(started.elapsed()),
                            Err(_) => errors += 1,
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        async move {
            let mut all = Vec::new();
            let mut errors = 0;
            for task in tasks {
                if let Ok((latencies, e)) = task.await {
                    all.extend(latencies);
                    errors += e;
                }
            }
            (all, errors)
        }
    };
    part(run.warmup).await;
    let started = Instant::now();
    let (latencies, errors) = part(Duration::from_secs_f64(seconds)).await;
    Sample {
        latencies,
        errors,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The `p`-th percentile of sorted samples (nearest rank); none of none.
pub(crate) fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(index).copied()
}

/// [`percentile`] of sorted durations, in milliseconds (0 of none).
pub(crate) fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    percentile(sorted, p).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
