//! Running generations told across servers through PostgreSQL's `LISTEN`/`NOTIFY`, no broker:
//! a stop asked of any server reaches the one writing the reply, and a server asked to follow
//! a reply another one writes gets its UI message stream relayed, from its start, while it
//! runs. Every server listens on the three channels on a connection of its own.

use sambung_db::chats::REPLY_STREAMING_SQL;
use sambung_db::{ChatId, Result};
use sqlx::PgPool;

use crate::lease::writer_alive;

/// Payload: the chat's id. The writer stops its generation.
pub const STOP_CHANNEL: &str = "sambung_stop_generation";
/// Payload: `CHAT FOLLOWER`. The writer relays its stream to `FOLLOWER`.
pub const FOLLOW_CHANNEL: &str = "sambung_follow_generation";
/// Payload: `FOLLOWER` and a newline, then a part of the stream; nothing after the newline
/// ends it.
pub const STREAM_CHANNEL: &str = "sambung_generation_stream";

/// A notification's payload must stay under 8000 bytes: longer stream pieces go in parts.
pub const MAX_PART_BYTES: usize = 7000;

/// Send `payload` on `channel` only if a live server writes a reply in `chat` (looked up in
/// the same statement); whether one did.
async fn notify_writer(pool: &PgPool, chat: ChatId, channel: &str, payload: &str) -> Result<bool> {
    let sent: Option<i32> = sqlx::query_scalar(&format!(
        "SELECT 1 FROM (SELECT pg_notify($2, $3) FROM messages m
                         WHERE m.chat_id = $1 AND {REPLY_STREAMING_SQL} AND {alive}
                         LIMIT 1) AS notified",
        alive = writer_alive()
    ))
    .bind(chat)
    .bind(channel)
    .bind(payload)
    .fetch_optional(pool)
    .await?;
    Ok(sent.is_some())
}

/// Ask whichever live server writes a reply in `chat` to stop it (the caller checked that the
/// actor may); false when none does.
pub async fn request_stop(pool: &PgPool, chat: ChatId) -> Result<bool> {
    notify_writer(pool, chat, STOP_CHANNEL, &chat.to_string()).await
}

/// Ask whichever live server writes a reply in `chat` to relay it to `follower` (a random
/// id of the asking server's listener); false when none does.
pub async fn request_follow(pool: &PgPool, chat: ChatId, follower: &str) -> Result<bool> {
    notify_writer(pool, chat, FOLLOW_CHANNEL, &format!("{chat} {follower}")).await
}

/// Relay one piece of a stream to `follower` (in parts when long; each waits for the one
/// before, so they arrive in order), or end it (`None`).
pub async fn relay(pool: &PgPool, follower: &str, piece: Option<&str>) -> Result<()> {
    let Some(mut rest) = piece else {
        return notify(pool, &format!("{follower}\n")).await;
    };
    while !rest.is_empty() {
        let mut end = rest.len().min(MAX_PART_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        notify(pool, &format!("{follower}\n{}", &rest[..end])).await?;
        rest = &rest[end..];
    }
    Ok(())
}

async fn notify(pool: &PgPool, payload: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(STREAM_CHANNEL)
        .bind(payload)
        .execute(pool)
        .await?;
    Ok(())
}
