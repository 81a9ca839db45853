//! The `completions` benchmark (SPEC section 16): what the OpenAI-compatible endpoint adds
//! over calling the provider directly, against the same reply through a chat's turn
//! (`POST /api/v1/chats/{id}/generate`), at concurrency 1 and 10. The built-in fake provider
//! streams 20 tokens without pause, so what differs is the server's own work. Each request
//! is timed to its stream's end. The benchmark's users get a model at the fake and a token,
//! both removed afterwards.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sambung_ai::fake::FakeProvider;
use sambung_db::tokens::{self, Scope};
use sambung_db::{ChatId, UserId};
use serde::Serialize;
use sqlx::PgPool;

use crate::generate::{fake_models, remove_models, reply, Asker};
use crate::http::{HttpTarget, Topology};
use crate::BenchError;

/// The concurrencies measured.
const LEVELS: [usize; 2] = [1, 10];

#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub concurrency: usize,
    pub requests: usize,
    /// The fake provider called directly (the baseline).
    pub direct_p50_ms: f64,
    pub direct_p95_ms: f64,
    /// `POST /v1/chat/completions` with a personal access token.
    pub endpoint_p50_ms: f64,
    pub endpoint_p95_ms: f64,
    /// The same reply as a chat's turn (stored).
    pub turn_p50_ms: f64,
    pub turn_p95_ms: f64,
    pub errors: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompletionsReport {
    pub levels: Vec<Level>,
}

/// `requests` of each kind at each of [`LEVELS`], on the personal chats of `chats` (a user
/// each, at least 10).
pub async fn run(
    pool: &PgPool,
    chats: &[(UserId, ChatId)],
    requests: usize,
) -> Result<CompletionsReport, BenchError> {
    let fake = FakeProvider::start()
        .await
        .map_err(|e| BenchError::Setup(format!("cannot start the fake provider: {e}")))?
        .always(reply(20, Duration::ZERO));
    let mut chosen: Vec<(UserId, ChatId)> = Vec::new();
    for &(user, chat) in chats {
        if !chosen.iter().any(|(u, _)| *u == user) {
            chosen.push((user, chat));
        }
    }
    chosen.truncate(LEVELS[1]);
    if chosen.len() < LEVELS[1] {
        return Err(BenchError::NoDataset);
    }
    let users: Vec<UserId> = chosen.iter().map(|(u, _)| *u).collect();
    let made = fake_models(pool, &users, &fake.url("/v1")).await?;
    let chosen = Asker::each(&chosen, &made);
    let mut secrets = Vec::new();
    let mut token_ids = Vec::new();
    for &user in &users {
        let (token, secret) = tokens::create(pool, user, "benchmark", &[Scope::Chat], None)
            .await
            .map_err(crate::domain)?;
        token_ids.push(token.id.0);
        secrets.push(secret);
    }
    let target = Arc::new(
        HttpTarget::start(
            pool,
            &users,
            LEVELS[1],
            vec![format!("127.0.0.1:{}", fake.port)],
            &Topology::default(),
        )
        .await?,
    );
    let result = measure(&target, &fake, &chosen, &secrets, requests).await;
    if let Ok(target) = Arc::try_unwrap(target) {
        target.close().await?;
    }
    sqlx::query("DELETE FROM access_tokens WHERE id = ANY($1)")
        .bind(&token_ids)
        .execute(pool)
        .await?;
    remove_models(pool, &made).await?;
    result
}

async fn measure(
    target: &Arc<HttpTarget>,
    fake: &FakeProvider,
    chosen: &[Asker],
    secrets: &[String],
    requests: usize,
) -> Result<CompletionsReport, BenchError> {
    let direct_url = fake.url("/v1/chat/completions");
    let client = reqwest::Client::new();
    let mut levels = Vec::new();
    for concurrency in LEVELS {
        let direct = timed(concurrency, requests, |_| {
            let (client, url) = (client.clone(), direct_url.clone());
            async move {
                let started = Instant::now();
                let body = serde_json::json!({"model": "fake", "stream": true,
                    "messages": [{"role": "user", "content": "benchmark question"}]});
                let response = client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| BenchError::Http(e.to_string()))?;
                response
                    .text()
                    .await
                    .map_err(|e| BenchError::Http(e.to_string()))?;
                Ok(started.elapsed())
            }
        })
        .await;
        let endpoint = timed(concurrency, requests, |worker| {
            let (target, secret) = (target.clone(), secrets[worker].clone());
            async move { target.complete(&secret).await }
        })
        .await;
        let turn = timed(concurrency, requests, |worker| {
            let (target, asker) = (target.clone(), chosen[worker]);
            async move {
                Ok(target
                    .generate(asker.user, asker.chat, asker.model, &[])
                    .await?
                    .whole())
            }
        })
        .await;
        let p = |times: &[Duration], q| crate::percentile_ms(times, q);
        levels.push(Level {
            concurrency,
            requests: endpoint.0.len(),
            direct_p50_ms: p(&direct.0, 0.50),
            direct_p95_ms: p(&direct.0, 0.95),
            endpoint_p50_ms: p(&endpoint.0, 0.50),
            endpoint_p95_ms: p(&endpoint.0, 0.95),
            turn_p50_ms: p(&turn.0, 0.50),
            turn_p95_ms: p(&turn.0, 0.95),
            errors: direct.1 + endpoint.1 + turn.1,
        });
    }
    Ok(CompletionsReport { levels })
}

/// `requests` calls of `call(worker)`, `concurrency` workers at once: the times, sorted, and
/// how many failed.
async fn timed<F, Fut>(concurrency: usize, requests: usize, call: F) -> (Vec<Duration>, usize)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<Duration, BenchError>> + Send + 'static,
{
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let count = requests / concurrency + usize::from(worker < requests % concurrency);
        let calls: Vec<Fut> = (0..count).map(|_| call(worker)).collect();
        tasks.push(tokio::spawn(async move {
            let (mut times, mut errors) = (Vec::new(), 0);
            for one in calls {
                match one.await {
                    Ok(time) => times.push(time),
                    Err(_) => errors += 1,
                }
            }
            (times, errors)
        }));
    }
    let (mut times, mut errors) = (Vec::new(), 0);
    for task in tasks {
        match task.await {
            Ok((t, e)) => {
                times.extend(t);
                errors += e;
            }
            Err(_) => errors += 1,
        }
    }
    times.sort_unstable();
    (times, errors)
}
