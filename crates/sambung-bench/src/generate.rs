//! The `generate` benchmark: turns through the server against the built-in fake provider on
//! loopback, which streams `tokens` tokens `pace` apart. It reports what the server adds to
//! the time to the first token (over the fake's own `pace`), and the process's memory while
//! `streams` replies stream at once. The benchmark's users get a default model at the fake
//! with a stored key (sealed, as a hosted provider's is), named in each turn as the web page
//! names its picker's model; both removed afterwards.

use std::time::Duration;

use sambung_ai::fake::{Answered, FakeProvider, Script};
use sambung_db::api_keys::{self, Provider};
use sambung_db::models::{self, ModelFields};
use sambung_db::{ChatId, ModelId, UserId};
use serde::Serialize;
use sqlx::PgPool;

use crate::http::{HttpTarget, Turned};
use crate::BenchError;

/// What the `generate` benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateReport {
    pub turns: usize,
    pub concurrency: usize,
    /// The fake provider's own time to its first token (request read to first piece
    /// written), measured: its timer rounds the pace up.
    pub provider_first_token_p50_ms: f64,
    pub provider_first_token_p95_ms: f64,
    /// Time to the first text delta at the client, minus the provider's own (each
    /// percentile of the one minus the same percentile of the other).
    pub added_first_token_p50_ms: f64,
    pub added_first_token_p95_ms: f64,
    /// Where the added time goes, at concurrency 1 (where each turn's provider request is
    /// known by its order): from the turn asked for to the provider's request read (the
    /// server's reads and decisions), and from the provider's first piece to the client's
    /// first text delta (the relay). `None` (`null`) at any other concurrency, and when the
    /// turns and the provider's answers do not pair one to one ([`AddedSplit::of`]).
    pub split: Option<AddedSplit>,
    /// Connections the fake provider accepted for every turn of the run (its warm-up and the
    /// streams included): the server's provider client keeps them open between turns.
    pub provider_connections: usize,
    pub streams: usize,
    pub rss_before_mb: f64,
    pub rss_peak_mb: f64,
    pub rss_after_mb: f64,
    pub errors: usize,
}

/// The added time to the first token in its two parts, each percentile of its own.
#[derive(Debug, Clone, Serialize)]
pub struct AddedSplit {
    pub to_provider_p50_ms: f64,
    pub to_provider_p95_ms: f64,
    pub relay_p50_ms: f64,
    pub relay_p95_ms: f64,
}

impl AddedSplit {
    /// The split of `turns` whose provider requests were `answers`, one each in the same
    /// order; `None` when they do not pair (a failed turn, a request of another kind).
    fn of(turns: &[Turned], answers: &[Answered]) -> Option<AddedSplit> {
        if turns.is_empty() || turns.len() != answers.len() {
            return None;
        }
        let paired = || turns.iter().zip(answers);
        let pairs_in_time = paired().all(|(turn, answer)| {
            turn.started <= answer.request_read && answer.first_piece <= turn.first_delta
        });
        if !pairs_in_time {
            return None;
        }
        let mut to_provider: Vec<Duration> = paired()
            .map(|(turn, answer)| answer.request_read - turn.started)
            .collect();
        let mut relay: Vec<Duration> = paired()
            .map(|(turn, answer)| turn.first_delta - answer.first_piece)
            .collect();
        to_provider.sort_unstable();
        relay.sort_unstable();
        Some(AddedSplit {
            to_provider_p50_ms: crate::percentile_ms(&to_provider, 0.50),
            to_provider_p95_ms: crate::percentile_ms(&to_provider, 0.95),
            relay_p50_ms: crate::percentile_ms(&relay, 0.50),
            relay_p95_ms: crate::percentile_ms(&relay, 0.95),
        })
    }
}

/// The reply the fake streams: `tokens` text deltas, usage, `[DONE]`, one event per piece.
pub(crate) fn reply(tokens: usize, pace: Duration) -> Script {
    let mut pieces = Vec::new();
    for i in 0..tokens {
        pieces.push(format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}},\"finish_reason\":null}}]}}\n\n").into_bytes());
    }
    pieces.push(b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n".to_vec());
    let mut script = Script::sse("", 1).paced(pace);
    script.pieces = pieces;
    script
}

/// Resident memory of this process, in MiB (Linux).
fn rss_mb() -> f64 {
    rss_mb_of("self")
}

/// Resident memory of the process `pid` (`self` for this one), in MiB (Linux).
pub(crate) fn rss_mb_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// How a `generate` run goes: named, so that no two of its counts can be swapped.
#[derive(Debug, Clone, Copy)]
pub struct GenerateRun {
    /// Turns timed.
    pub turns: usize,
    /// Unmeasured turns before them ([`warmup_turns`]).
    pub warmup: usize,
    /// Turns in flight at once.
    pub concurrency: usize,
    /// Replies streaming at once while memory is watched.
    pub streams: usize,
    /// The fake provider's pause before each token.
    pub pace: Duration,
}

/// Run `settings.turns` turns at `settings.concurrency` (each on a chat of its own at a
/// time) after `settings.warmup` unmeasured ones to measure the first token, then
/// `settings.streams` at once to measure memory.
pub async fn run(
    pool: &PgPool,
    chats: &[(UserId, ChatId)],
    settings: GenerateRun,
) -> Result<GenerateReport, BenchError> {
    let GenerateRun {
        concurrency,
        streams,
        pace,
        ..
    } = settings;
    let fake = FakeProvider::start()
        .await
        .map_err(|e| BenchError::Setup(format!("cannot start the fake provider: {e}")))?
        .always(reply(20, pace))
        .keeping_connections();
    let base_url = fake.url("/v1");
    // One chat per user (a default model belongs to a user), as many as the streams need.
    let mut chosen: Vec<(UserId, ChatId)> = Vec::new();
    for &(user, chat) in chats {
        if !chosen.iter().any(|(u, _)| *u == user) {
            chosen.push((user, chat));
        }
    }
    if chosen.len() < concurrency.max(1) {
        return Err(BenchError::NoDataset);
    }
    let users: Vec<UserId> = chosen.iter().map(|(u, _)| *u).collect();
    let made = fake_models(pool, &users, &base_url).await?;
    let chosen = Asker::each(&chosen, &made);
    let target = std::sync::Arc::new(
        HttpTarget::start(
            pool,
            &users,
            concurrency.max(streams),
            vec![format!("127.0.0.1:{}", fake.port)],
            &crate::http::Topology::default(),
        )
        .await?,
    );
    let result = measure(&target, &fake, &chosen, settings).await;
    if let Ok(target) = std::sync::Arc::try_unwrap(target) {
        target.close().await?;
    }
    remove_models(pool, &made).await?;
    result
}

/// Who asks in which chat, naming which model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asker {
    pub user: UserId,
    pub chat: ChatId,
    pub model: ModelId,
}

impl Asker {
    /// Each user asking in their chat of `chosen`, naming the model [`fake_models`] `made`
    /// for them (in the same order).
    pub(crate) fn each(chosen: &[(UserId, ChatId)], made: &[ModelId]) -> Vec<Asker> {
        chosen
            .iter()
            .zip(made)
            .map(|(&(user, chat), &model)| Asker { user, chat, model })
            .collect()
    }
}

/// `turns` turns at `concurrency`, each task keeping to its own chats (so no two turns meet
/// in one chat): when each one was asked and answered (each task's in order), and how many
/// failed.
async fn turns_at(
    target: &std::sync::Arc<HttpTarget>,
    chats: &[Asker],
    turns: usize,
    concurrency: usize,
) -> (Vec<Turned>, usize) {
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let target = target.clone();
        let mine: Vec<Asker> = chats
            .iter()
            .skip(worker)
            .step_by(concurrency)
            .copied()
            .collect();
        let count = turns / concurrency + usize::from(worker < turns % concurrency);
        tasks.push(tokio::spawn(async move {
            let (mut firsts, mut errors) = (Vec::new(), 0);
            for i in 0..count {
                let asker = mine[i % mine.len()];
                match target
                    .generate(asker.user, asker.chat, asker.model, &[])
                    .await
                {
                    Ok(turned) => firsts.push(turned),
                    Err(_) => errors += 1,
                }
            }
            (firsts, errors)
        }));
    }
    let (mut firsts, mut errors) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((f, e)) = task.await {
            firsts.extend(f);
            errors += e;
        }
    }
    (firsts, errors)
}

/// The name of the benchmark's keys. A key is sealed under its run's own master key: one left
/// by a run killed before its end could never be opened again, and would stop `sambung keys
/// rotate` (which opens every key or none), so each run first removes those of its users.
const KEY_NAME: &str = "Benchmark key";

/// A default model named `Benchmark fake` at the fake provider's `base_url` for each user
/// (in `users`' order), with a key of its own sealed under the servers' master key (the fake
/// takes any key); what an earlier run left of them removed first.
pub(crate) async fn fake_models(
    pool: &PgPool,
    users: &[UserId],
    base_url: &str,
) -> Result<Vec<ModelId>, BenchError> {
    let ids: Vec<uuid::Uuid> = users.iter().map(|u| u.0).collect();
    // Their models go with them (the key's foreign key cascades).
    sqlx::query("DELETE FROM api_keys WHERE user_id = ANY($1) AND name = $2")
        .bind(&ids)
        .bind(KEY_NAME)
        .execute(pool)
        .await?;
    let cipher = crate::http::cipher();
    let mut made = Vec::new();
    for &user in users {
        let key = api_keys::add_api_key(
            pool,
            &cipher,
            user,
            Provider::Custom,
            KEY_NAME,
            "sk-benchmark-key-0123456789",
        )
        .await
        .map_err(crate::domain)?;
        let model = models::create_model(
            pool,
            user,
            None,
            ModelFields {
                provider: "custom",
                model_id: "fake",
                name: "Benchmark fake",
                base_url: Some(base_url),
                api_key_id: Some(key.id),
                settings: serde_json::json!({}),
                is_default: true,
            },
        )
        .await
        .map_err(crate::domain)?;
        made.push(model.id);
    }
    Ok(made)
}

/// Remove [`fake_models`]' models and their keys.
pub(crate) async fn remove_models(pool: &PgPool, made: &[ModelId]) -> Result<(), BenchError> {
    let ids: Vec<uuid::Uuid> = made.iter().map(|m| m.0).collect();
    sqlx::query(
        "WITH gone AS (DELETE FROM models WHERE id = ANY($1) RETURNING api_key_id)
         DELETE FROM api_keys WHERE id IN (SELECT api_key_id FROM gone)",
    )
    .bind(&ids)
    .execute(pool)
    .await?;
    Ok(())
}

/// How many unmeasured turns to run, in all, before the measured ones at `concurrency` on a
/// pool of `pool_connections`: 30 per concurrent client, and at least six for each of the
/// pool's connections. PostgreSQL plans a prepared statement afresh for its first five runs
/// on each connection, then once more for the plan it keeps, and the pool hands its idle
/// connections out in turn (first in, first out): a turn at concurrency 1 spreads over six
/// to eight of them, so 30 turns left a dozen of the turn's plannings (3-4 ms each) among the
/// measured ones. What is measured is a server that has served a while, as the database
/// workloads measure after their warm-up.
pub fn warmup_turns(pool_connections: u32, concurrency: usize) -> usize {
    (30 * concurrency).max(6 * pool_connections as usize)
}

async fn measure(
    target: &std::sync::Arc<HttpTarget>,
    fake: &FakeProvider,
    chats: &[Asker],
    settings: GenerateRun,
) -> Result<GenerateReport, BenchError> {
    let GenerateRun {
        turns,
        warmup,
        streams,
        ..
    } = settings;
    let concurrency = settings.concurrency.clamp(1, chats.len());
    let (_, mut errors) = turns_at(target, chats, warmup, concurrency).await;
    let warmed = fake.answers().len();
    let (turned, measured_errors) = turns_at(target, chats, turns, concurrency).await;
    errors += measured_errors;
    let answers = fake.answers().split_off(warmed);
    let split = (concurrency == 1)
        .then(|| AddedSplit::of(&turned, &answers))
        .flatten();
    let mut firsts: Vec<Duration> = turned.iter().map(Turned::first).collect();
    firsts.sort_unstable();
    let mut own: Vec<Duration> = answers.iter().map(Answered::own_first_token).collect();
    own.sort_unstable();

    let streams = streams.min(chats.len());
    let rss_before = rss_mb();
    let mut running = Vec::new();
    for &asker in chats.iter().take(streams) {
        let target = target.clone();
        running.push(tokio::spawn(async move {
            target
                .generate(asker.user, asker.chat, asker.model, &[])
                .await
        }));
    }
    let mut peak = rss_before;
    while running.iter().any(|t| !t.is_finished()) {
        peak = peak.max(rss_mb());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for task in running {
        if !matches!(task.await, Ok(Ok(_))) {
            errors += 1;
        }
    }
    Ok(GenerateReport {
        turns: firsts.len(),
        concurrency,
        provider_first_token_p50_ms: crate::percentile_ms(&own, 0.50),
        provider_first_token_p95_ms: crate::percentile_ms(&own, 0.95),
        added_first_token_p50_ms: crate::percentile_ms(&firsts, 0.50)
            - crate::percentile_ms(&own, 0.50),
        added_first_token_p95_ms: crate::percentile_ms(&firsts, 0.95)
            - crate::percentile_ms(&own, 0.95),
        split,
        provider_connections: fake.connections(),
        streams,
        rss_before_mb: rss_before,
        rss_peak_mb: peak,
        rss_after_mb: rss_mb(),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use sambung_db::secret::Cipher;
    use sambung_testkit::TestDb;

    use super::*;

    /// A run killed before its end leaves its key, sealed under a master key gone with it:
    /// the next run removes it (and its model) before making its own.
    #[tokio::test]
    async fn a_killed_runs_keys_are_removed_by_the_next() {
        let db = TestDb::migrated().await;
        let pool = db.pool();
        let ana = UserId::from(sambung_testkit::insert_user(pool, "ana@example.com").await);
        let gone = Cipher::new(&[9; 32]);
        let left = api_keys::add_api_key(
            pool,
            &gone,
            ana,
            Provider::Custom,
            KEY_NAME,
            "sk-left-behind-0123",
        )
        .await
        .unwrap();
        let own = api_keys::add_api_key(
            pool,
            &gone,
            ana,
            Provider::Openai,
            "mine",
            "sk-mine-0123456",
        )
        .await
        .unwrap();

        let made = fake_models(pool, &[ana], "http://127.0.0.1:9/v1")
            .await
            .unwrap();
        let keys: Vec<(uuid::Uuid, String)> =
            sqlx::query_as("SELECT id, name FROM api_keys ORDER BY name")
                .fetch_all(pool)
                .await
                .unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(!keys.iter().any(|(id, _)| *id == left.id.0), "{keys:?}");
        assert!(keys.iter().any(|(id, _)| *id == own.id.0), "{keys:?}");
        let opened = sambung_db::api_keys::reveal_api_key(
            pool,
            &crate::http::cipher(),
            ana,
            sambung_db::ApiKeyId(keys.iter().find(|(_, n)| n == KEY_NAME).unwrap().0),
        )
        .await
        .unwrap();
        assert_eq!(opened, "sk-benchmark-key-0123456789");
        remove_models(pool, &made).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE name = $1")
            .bind(KEY_NAME)
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(left, 0);
    }

    /// A turn's parts pair with the provider's answers only one to one and in time: a turn
    /// whose provider request came before it was asked (another's) gives no split.
    #[test]
    fn the_added_time_splits_only_where_turns_and_answers_pair() {
        let t0 = std::time::Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let turn = |start, first| Turned {
            started: ms(start),
            first_delta: ms(first),
            ended: ms(first + 50),
        };
        let answer = |read, piece| Answered {
            request_read: ms(read),
            first_piece: ms(piece),
        };
        let turns = [turn(0, 30), turn(100, 126)];
        let answers = [answer(2, 27), answer(101, 122)];
        let split = AddedSplit::of(&turns, &answers).unwrap();
        assert!((split.to_provider_p50_ms - 1.0).abs() < 1e-9, "{split:?}");
        assert!((split.to_provider_p95_ms - 2.0).abs() < 1e-9, "{split:?}");
        assert!((split.relay_p50_ms - 3.0).abs() < 1e-9, "{split:?}");
        assert!((split.relay_p95_ms - 4.0).abs() < 1e-9, "{split:?}");

        assert!(AddedSplit::of(&turns, &answers[..1]).is_none());
        assert!(AddedSplit::of(&turns, &[answers[1], answers[0]]).is_none());
        assert!(AddedSplit::of(&[], &[]).is_none());
        // Each bound on its own: a request read before its turn was asked, a first piece
        // written after the client's first delta.
        assert!(AddedSplit::of(&turns[1..], &[answer(99, 110)]).is_none());
        assert!(AddedSplit::of(&turns[1..], &[answer(101, 127)]).is_none());
    }
}
