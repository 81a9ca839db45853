//! The `branches` benchmark: a chat that keeps branches opens as fast as a flat one with the
//! same shown path. Two chats of one throwaway user: a flat one, 100 messages; a branched one,
//! the same 100 on its path and 50 branches of 100 messages beside it (5,100 in all). Each is
//! opened (`chat_with_messages`, its first page of 100) in turn, one after the other, for the
//! time given; the report is each one's latency and the ratio of their medians. The user and
//! the chats are made in SQL beforehand and removed afterwards.

use std::time::{Duration, Instant};

use chrono::{TimeZone as _, Utc};
use sambung_db::chats;
use sambung_db::{ChatId, MessageId, UserId};
use serde::Serialize;
use sqlx::PgPool;

use crate::{setup, BenchError};

/// Messages on each chat's shown path, and in each branch beside it.
pub const PATH_LENGTH: usize = 100;
/// Branches of the branched chat.
pub const BRANCHES: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub opens: u64,
    pub flat_p50_ms: f64,
    pub flat_p95_ms: f64,
    pub branched_p50_ms: f64,
    pub branched_p95_ms: f64,
    /// The branched chat's median over the flat one's (1.0: as fast).
    pub ratio_p50: f64,
}

/// Open the two chats in turn for `seconds`.
pub async fn run(pool: &PgPool, seconds: f64) -> Result<Report, BenchError> {
    let user = UserId::new();
    sqlx::query("INSERT INTO users (id, name, email) VALUES ($1, 'Bench branches', $2)")
        .bind(user)
        .bind(format!("bench-branches-{}@example.com", user.0))
        .execute(pool)
        .await?;
    let measured = async {
        let flat = chat_with_tree(pool, user, 0).await?;
        let branched = chat_with_tree(pool, user, BRANCHES).await?;
        let (mut flat_ms, mut branched_ms) = (Vec::new(), Vec::new());
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        while Instant::now() < until {
            for (chat, times) in [(flat, &mut flat_ms), (branched, &mut branched_ms)] {
                let started = Instant::now();
                let (_, page) = chats::chat_with_messages(pool, user, chat, None, 100)
                    .await
                    .map_err(setup)?;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                if page.items.len() != PATH_LENGTH {
                    return Err(setup(format!(
                        "a chat opened with {} messages, not its path's {PATH_LENGTH}",
                        page.items.len()
                    )));
                }
            }
        }
        Ok::<_, BenchError>((flat_ms, branched_ms))
    }
    .await;
    // The user goes, and their chats with them, however the measurement ended.
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user)
        .execute(pool)
        .await?;
    let (mut flat_ms, mut branched_ms) = measured?;
    let flat = (
        percentile(&mut flat_ms, 0.5),
        percentile(&mut flat_ms, 0.95),
    );
    let branched = (
        percentile(&mut branched_ms, 0.5),
        percentile(&mut branched_ms, 0.95),
    );
    Ok(Report {
        opens: (flat_ms.len() + branched_ms.len()) as u64,
        flat_p50_ms: flat.0,
        flat_p95_ms: flat.1,
        branched_p50_ms: branched.0,
        branched_p95_ms: branched.1,
        ratio_p50: branched.0 / flat.0,
    })
}

/// A chat whose path is [`PATH_LENGTH`] messages, with `branches` branches of as many beside
/// it, each leaving the path at another message.
async fn chat_with_tree(
    pool: &PgPool,
    user: UserId,
    branches: usize,
) -> Result<ChatId, BenchError> {
    let chat = ChatId::new();
    sqlx::query("INSERT INTO chats (id, user_id, title, model, provider) VALUES ($1, $2, 'Bench', 'default', 'default')")
        .bind(chat)
        .bind(user)
        .execute(pool)
        .await?;
    let start = Utc
        .timestamp_opt(1_700_000_000, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let (mut ids, mut parents, mut off_path, mut roles, mut times) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut path = Vec::new();
    for at in 0..PATH_LENGTH {
        let id = MessageId::new().0;
        ids.push(id);
        parents.push(path.last().copied());
        off_path.push(false);
        roles.push(if at.is_multiple_of(2) {
            "user"
        } else {
            "assistant"
        });
        times.push(start + chrono::Duration::seconds(at as i64));
        path.push(id);
    }
    for branch in 0..branches {
        // Each branch leaves the path at another question and runs as long as the path.
        let fork = (branch * 2) % PATH_LENGTH;
        let mut parent = (fork > 0).then(|| path[fork - 1]);
        for at in 0..PATH_LENGTH {
            let id = MessageId::new().0;
            ids.push(id);
            parents.push(parent);
            off_path.push(true);
            roles.push(if (fork + at).is_multiple_of(2) {
                "user"
            } else {
                "assistant"
            });
            times.push(
                start
                    + chrono::Duration::seconds((fork + at) as i64)
                    + chrono::Duration::milliseconds(branch as i64 + 1),
            );
            parent = Some(id);
        }
    }
    sqlx::query(
        "INSERT INTO messages (id, chat_id, parent_id, off_path, role, content, created_at)
         SELECT id, $1, parent, off, role, 'a message of some words, as chats have', at
           FROM unnest($2::uuid[], $3::uuid[], $4::bool[], $5::text[], $6::timestamptz[])
                AS t(id, parent, off, role, at)",
    )
    .bind(chat)
    .bind(&ids)
    .bind(&parents)
    .bind(&off_path)
    .bind(&roles)
    .bind(&times)
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE messages").execute(pool).await?;
    Ok(chat)
}

fn percentile(values: &mut [f64], at: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * at).round() as usize]
}
