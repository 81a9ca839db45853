//! The `people` benchmark: how many people one machine serves. `sambung serve` runs in a
//! process of its own (or two, on one database), and N simulated people use it over HTTP as
//! people do: each signs in, then every few seconds lists their chats, opens one, reads its
//! messages or searches, and about every half minute asks a question, whose reply streams
//! from a fake provider at a person-paced 33 tokens a second. Measured: the page requests'
//! latency, the time the server adds to the first token (the first `text-delta` at the
//! client, minus the fake provider's own time to its first token, by its own clock), errors,
//! and the server's memory per person.
//!
//! The people, their chats and messages are made in SQL beforehand (one password hash for
//! all: hashing is what signing in measures) and removed afterwards. The simulated people run
//! in this process, on the same cores as the server: on a 2-core machine the numbers are what
//! the server does while its clients take a share of the CPU too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use sambung_ai::fake::{FakeProvider, Script};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Connection as _;
use tokio::sync::Mutex;

use crate::served::Served;
use crate::{setup, BenchError};

/// The page requests' p95 a machine must keep for N people to count as served.
pub const PAGE_P95_LIMIT_MS: f64 = 100.0;
/// The time the server may add to the first token, at p95.
pub const FIRST_TOKEN_ADDED_LIMIT_MS: f64 = 50.0;

/// One run of N people.
#[derive(Debug, Clone, Serialize)]
pub struct PeopleReport {
    pub users: usize,
    pub servers: usize,
    pub seconds: f64,
    pub page_requests: usize,
    pub page_p50_ms: f64,
    pub page_p95_ms: f64,
    pub page_max_ms: f64,
    pub questions: usize,
    /// Time to the first token through the server, minus the provider's own median, at the
    /// median and p95.
    pub first_token_added_p50_ms: f64,
    pub first_token_added_p95_ms: f64,
    pub sign_in_p95_ms: f64,
    pub errors: usize,
    /// The servers' resident memory at the end, and its growth per person over idle.
    pub server_rss_mb: f64,
    pub rss_per_person_kb: f64,
    /// Page p95 under 100 ms, first token added under 50 ms at p95, no errors.
    pub served: bool,
}

/// What people are told to do, and how often.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Between two page actions of one person.
    pub page_every: Duration,
    /// Between two questions of one person.
    pub question_every: Duration,
    /// Between two tokens of a reply.
    pub token_every: Duration,
    /// Tokens in a reply.
    pub reply_tokens: usize,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            page_every: Duration::from_secs(5),
            question_every: Duration::from_secs(30),
            token_every: Duration::from_millis(30),
            reply_tokens: 100,
        }
    }
}

/// A reply of `tokens` words, `every` apart, as an OpenAI-compatible stream.
fn reply(tokens: usize, every: Duration) -> Script {
    let mut script = Script::sse("", 1).paced(every);
    script.pieces = (0..tokens)
        .map(|i| {
            format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"word{i} \"}},\"finish_reason\":null}}]}}\n\n")
                .into_bytes()
        })
        .chain([b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".to_vec()])
        .collect();
    script
}

/// The people's accounts (`person-K@people.bench.sambung.chat`, one password), each with two
/// chats of ten messages; and an admin's connection to the fake provider with the instance's
/// default model on it.
async fn make_people(
    database_url: &str,
    users: usize,
    provider: &FakeProvider,
) -> Result<(), BenchError> {
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    let hash = sambung_db::secret::hash_password(PASSWORD)
        .await
        .map_err(setup)?;
    sqlx::query(
        "WITH made AS (
           INSERT INTO users (name, email)
           SELECT 'Person ' || k, 'person-' || k || '@people.bench.sambung.chat' FROM generate_series(1, $1) k
           RETURNING id)
         INSERT INTO accounts (user_id, account_id, provider_id, password)
         SELECT id, id::text, 'credential', $2 FROM made",
    )
    .bind(users as i64)
    .bind(&hash)
    .execute(&mut conn)
    .await?;
    sqlx::query(
        "WITH chats AS (
           INSERT INTO chats (user_id, title, model, provider)
           SELECT u.id, 'Chat ' || n || ' about ' || (ARRAY['gardens','rivers','engines','poems'])[1 + n % 4], 'm', 'custom'
             FROM users u, generate_series(1, 2) n
            WHERE u.email LIKE '%@people.bench.sambung.chat'
           RETURNING id)
         INSERT INTO messages (chat_id, role, content, created_at)
         SELECT c.id, CASE WHEN m % 2 = 0 THEN 'user' ELSE 'assistant' END,
                'Message ' || m || ' on gardens and rivers, written to be searched', now() - (20 - m) * interval '1 minute'
           FROM chats c, generate_series(1, 10) m",
    )
    .execute(&mut conn)
    .await?;
    let connection: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO connections (name, provider, base_url) VALUES ('Bench', 'custom', $1) RETURNING id",
    )
    .bind(provider.url("/v1"))
    .fetch_one(&mut conn)
    .await?;
    sqlx::query(
        "INSERT INTO models (connection_id, provider, model_id, name, is_default)
         VALUES ($1, 'custom', 'm', 'Bench model', true)",
    )
    .bind(connection)
    .execute(&mut conn)
    .await?;
    Ok(())
}

const PASSWORD: &str = "a-person-of-the-bench";

/// Remove what [`make_people`] made.
async fn remove_people(database_url: &str) -> Result<(), BenchError> {
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    sqlx::query("DELETE FROM users WHERE email LIKE '%@people.bench.sambung.chat'")
        .execute(&mut conn)
        .await?;
    sqlx::query("DELETE FROM connections WHERE name = 'Bench'")
        .execute(&mut conn)
        .await?;
    sqlx::query("DELETE FROM usage_daily WHERE model = 'm' AND provider = 'custom'")
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// What every person recorded.
#[derive(Default)]
struct Tally {
    pages: Vec<Duration>,
    first_tokens: Vec<Duration>,
    sign_ins: Vec<Duration>,
    errors: usize,
}

/// The time to the first text of a reply (the UI message stream's first `text-delta`).
async fn ask(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    chat: &str,
) -> Result<Duration, String> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/api/v1/chats/{chat}/generate"))
        .bearer_auth(token)
        .json(&json!({"content": "Tell me about gardens"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("generate answered {}", response.status()));
    }
    let mut body = response.bytes_stream();
    let mut first = None;
    let mut seen = Vec::new();
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| e.to_string())?;
        if first.is_none() {
            seen.extend_from_slice(&piece);
            if seen.windows(12).any(|w| w == b"\"text-delta\"") {
                first = Some(started.elapsed());
                seen.clear();
            }
        }
    }
    first.ok_or_else(|| "a reply without text".into())
}

/// One person's afternoon, until `until`.
#[allow(clippy::too_many_arguments)]
async fn person(
    index: usize,
    bases: Arc<Vec<String>>,
    client: reqwest::Client,
    pace: Pace,
    start_within: Duration,
    until: Instant,
    measure_from: Instant,
    tally: Arc<Mutex<Tally>>,
) {
    // People arrive over the ramp-up, not all in one instant.
    let offset = start_within.mul_f64(fraction(index, 7919));
    tokio::time::sleep(offset).await;
    let base = &bases[index % bases.len()];
    let email = format!("person-{}@people.bench.sambung.chat", index + 1);
    // Each person comes from an address of their own (the loopback is a trusted proxy), as
    // people do: the sign-in limits are per address.
    let address = format!(
        "10.{}.{}.{}",
        (index >> 16) & 255,
        (index >> 8) & 255,
        index & 255
    );
    let client = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-forwarded-for"),
                reqwest::header::HeaderValue::from_str(&address)
                    .unwrap_or(reqwest::header::HeaderValue::from_static("10.0.0.1")),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap_or(client);
    let started = Instant::now();
    let signed_in = client
        .post(format!("{base}/api/auth/sign-in/email"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await;
    let token = match signed_in {
        Ok(r) if r.status().is_success() => r
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["token"].as_str().map(str::to_owned)),
        _ => None,
    };
    let Some(token) = token else {
        tally.lock().await.errors += 1;
        return;
    };
    tally.lock().await.sign_ins.push(started.elapsed());
    let get = |path: String| {
        let request = client.get(format!("{base}{path}")).bearer_auth(&token);
        async move {
            let started = Instant::now();
            match request.send().await {
                Ok(r) if r.status().is_success() => {
                    let body = r.bytes().await.map_err(|_| ())?;
                    Ok((started.elapsed(), body))
                }
                _ => Err(()),
            }
        }
    };
    let chats: Vec<String> = match get("/api/v1/chats?limit=20".into()).await {
        Ok((_, body)) => serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect(),
        Err(()) => Vec::new(),
    };
    if chats.is_empty() {
        tally.lock().await.errors += 1;
        return;
    }
    let mut next_question = Instant::now() + pace.question_every.mul_f64(fraction(index, 104_729));
    let mut step = 0usize;
    while Instant::now() < until {
        step += 1;
        let measured = Instant::now() >= measure_from;
        if Instant::now() >= next_question {
            next_question += pace.question_every;
            let chat = &chats[step % chats.len()];
            let asked = ask(&client, base, &token, chat).await;
            if measured {
                let mut tally = tally.lock().await;
                match asked {
                    Ok(first) => tally.first_tokens.push(first),
                    Err(_) => tally.errors += 1,
                }
            }
            continue;
        }
        let chat = &chats[step % chats.len()];
        let path = match step % 4 {
            0 => "/api/v1/chats?limit=50".to_owned(),
            1 => format!("/api/v1/chats/{chat}"),
            2 => format!("/api/v1/chats/{chat}/messages?limit=100"),
            _ => "/api/v1/search/messages?q=gardens&limit=20".to_owned(),
        };
        let got = get(path).await;
        if measured {
            let mut tally = tally.lock().await;
            match got {
                Ok((took, _)) => tally.pages.push(took),
                Err(()) => tally.errors += 1,
            }
        }
        // About `page_every` apart, not in step with everyone else.
        let pause = pace
            .page_every
            .mul_f64(0.5 + fraction(index * 31 + step, 7919));
        tokio::time::sleep(pause.min(until.saturating_duration_since(Instant::now()))).await;
    }
}

/// A fraction in [0, 1) spread evenly over `index` (a low-discrepancy sequence).
fn fraction(index: usize, prime: usize) -> f64 {
    ((index.wrapping_mul(prime)) % 1000) as f64 / 1000.0
}

/// Run `users` people for `seconds` (after a ramp-up of a third of that, at least 10 s)
/// against `servers` servers on the database at `database_url`.
pub async fn run(
    sambung: &std::path::Path,
    database_url: &str,
    users: usize,
    servers: usize,
    seconds: f64,
    pace: Pace,
) -> Result<PeopleReport, BenchError> {
    let provider = FakeProvider::start()
        .await
        .map_err(setup)?
        .always(reply(pace.reply_tokens, pace.token_every));
    remove_people(database_url).await?;
    make_people(database_url, users, &provider).await?;
    let mut served = Vec::new();
    for _ in 0..servers {
        served.push(
            Served::spawn(
                sambung,
                database_url,
                provider.port,
                &[
                    ("SIGNUP", "closed"),
                    ("MAX_CONNECTIONS", "100000"),
                    ("TRUSTED_PROXIES", "127.0.0.1"),
                ],
            )
            .await?,
        );
    }
    let idle_mb: f64 = served.iter().map(Served::rss_mb).sum();
    let bases = Arc::new(served.iter().map(|s| s.base.clone()).collect::<Vec<_>>());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(users.max(16))
        .build()
        .map_err(setup)?;
    let ramp = Duration::from_secs_f64((seconds / 3.0).max(10.0));
    let measure_from = Instant::now() + ramp;
    let until = measure_from + Duration::from_secs_f64(seconds);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut people = tokio::task::JoinSet::new();
    for index in 0..users {
        people.spawn(person(
            index,
            bases.clone(),
            client.clone(),
            pace,
            ramp.mul_f64(0.8),
            until,
            measure_from,
            tally.clone(),
        ));
    }
    while people.join_next().await.is_some() {}
    let server_rss_mb: f64 = served.iter().map(Served::rss_mb).sum();
    drop(served);
    remove_people(database_url).await?;
    let mut tally = std::mem::take(&mut *tally.lock().await);
    // The provider's own time to its first token (request read to first piece written).
    let mut own = provider.first_piece_times();
    own.sort_unstable();
    let own_median = crate::percentile(&own, 0.5).unwrap_or_default();
    tally.pages.sort_unstable();
    tally.sign_ins.sort_unstable();
    let mut added: Vec<Duration> = tally
        .first_tokens
        .iter()
        .map(|t| t.saturating_sub(own_median))
        .collect();
    added.sort_unstable();
    let page_p95_ms = crate::percentile_ms(&tally.pages, 0.95);
    let first_token_added_p95_ms = crate::percentile_ms(&added, 0.95);
    Ok(PeopleReport {
        users,
        servers,
        seconds,
        page_requests: tally.pages.len(),
        page_p50_ms: crate::percentile_ms(&tally.pages, 0.50),
        page_p95_ms,
        page_max_ms: crate::percentile_ms(&tally.pages, 1.0),
        questions: added.len(),
        first_token_added_p50_ms: crate::percentile_ms(&added, 0.50),
        first_token_added_p95_ms,
        sign_in_p95_ms: crate::percentile_ms(&tally.sign_ins, 0.95),
        errors: tally.errors,
        server_rss_mb,
        rss_per_person_kb: (server_rss_mb - idle_mb).max(0.0) * 1024.0 / users.max(1) as f64,
        served: page_p95_ms < PAGE_P95_LIMIT_MS
            && first_token_added_p95_ms < FIRST_TOKEN_ADDED_LIMIT_MS
            && tally.errors == 0
            && !added.is_empty(),
    })
}
