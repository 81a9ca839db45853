//! What a turn keeps in the database: the question and the reply's placeholder stored in one
//! transaction (under a lock on the chat, so two servers agree on one turn at a time), the
//! conversation as the provider will get it, the reply's text saved as it streams and at its
//! end, the first reply's title, and who may stop a reply.

use chrono::{DateTime, Utc};
use sambung_db::chats::{
    Chat, Message, MessageRole, CHAT_COLUMNS, MAX_MESSAGE_BYTES, MAX_TITLE_CHARS, NEW_CHAT_TITLE,
};
use sambung_db::models::Model;
use sambung_db::{ChatId, DomainError, FileId, MessageId, Result, TeamId, UserId};
use sqlx::{PgConnection, PgPool};

use crate::lease::{self, ServerLease};
use crate::ReplyStatus;

/// What a turn does with the conversation before the reply.
#[derive(Debug, Clone)]
pub enum TurnKind<'a> {
    /// A new user message, with the actor's files attached (ids from `POST /files`).
    Ask {
        content: &'a str,
        files: &'a [FileId],
    },
    /// Answer the last user message again: the reply after it is deleted.
    Regenerate,
    /// Change a user message: everything after it is deleted, then it is answered.
    Edit {
        message: MessageId,
        content: &'a str,
    },
}

/// A turn begun: the conversation to send (oldest first) and the reply's placeholder.
#[derive(Debug, Clone)]
pub struct Turn {
    pub chat: Chat,
    pub history: Vec<Message>,
    pub reply: Message,
}

/// A turn stored in a transaction not yet committed: the server may start the provider
/// request first and commit while it travels (a failed commit cancels the request).
pub struct PendingTurn {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    pub turn: Turn,
}

impl PendingTurn {
    pub async fn commit(self) -> Result<Turn> {
        self.tx.commit().await?;
        Ok(self.turn)
    }
}

#[derive(sqlx::FromRow)]
struct LockedChat {
    #[sqlx(flatten)]
    chat: Chat,
    can_change: bool,
}

const MESSAGE_COLUMNS: &str = "id, chat_id, role, content, metadata, created_at";

/// The advisory lock space of a user's turns ("TURN"): beginning a turn holds its user's lock,
/// so two servers count the user's running replies one after the other.
const TURNS_LOCK_SPACE: i32 = 0x5455_524e;

/// A question (asked or edited) must have words, at most 1 MiB, no NUL characters.
pub(crate) fn check_turn_content(kind: &TurnKind<'_>) -> Result<()> {
    if let TurnKind::Ask { content, .. } | TurnKind::Edit { content, .. } = *kind {
        if content.trim().is_empty() {
            return Err(DomainError::invalid("content", "must not be empty"));
        }
        if content.len() > MAX_MESSAGE_BYTES || content.contains('\0') {
            return Err(DomainError::invalid(
                "content",
                "at most 1 MiB, no NUL characters",
            ));
        }
    }
    Ok(())
}

/// Begin a turn in one transaction: the user message (asked, or edited), the earlier reply
/// removed (regenerate, edit), and an empty assistant reply marked `streaming` by `writer`
/// with `metadata`. Asking needs what posting needs (reading the chat); regenerating and
/// editing change the conversation, so they need the right to change the chat. The chat's
/// row is locked first, so two servers on one database agree on one turn at a time; so is
/// the actor's count of running replies, held to `running_limit` on every server.
#[allow(clippy::too_many_arguments)]
pub async fn begin_turn(
    pool: &PgPool,
    writer: &ServerLease,
    actor: UserId,
    chat: ChatId,
    kind: TurnKind<'_>,
    metadata: serde_json::Value,
    running_limit: Option<i64>,
) -> Result<PendingTurn> {
    check_turn_content(&kind)?;
    let mut tx = pool.begin().await?;
    // The access decision and the locks in one statement (a turn's every round trip delays
    // the first token): the actor's turns first, then the chat, always in that order.
    let locked: Option<LockedChat> = sqlx::query_as(&format!(
        "SELECT {CHAT_COLUMNS}, p.can_change FROM chats c
           CROSS JOIN sambung_chat_reader(c.id, $2) p
           CROSS JOIN LATERAL (SELECT pg_advisory_xact_lock({TURNS_LOCK_SPACE}, hashtext($2::text))) turns
          WHERE c.id = $1 FOR UPDATE OF c"
    ))
    .bind(chat)
    .bind(actor)
    .fetch_optional(&mut *tx)
    .await?;
    let locked = locked.ok_or(DomainError::not_found("chat"))?;
    if !matches!(kind, TurnKind::Ask { .. }) && !locked.can_change {
        return Err(DomainError::forbidden("regenerate or edit in this chat"));
    }
    // A reply being written by a live server (this one or another) blocks a new turn; one
    // whose server died is marked incomplete instead. So do too many replies of the actor.
    let (busy, running) = lease::chat_busy(&mut tx, chat, actor).await?;
    if busy {
        return Err(DomainError::Conflict(
            "a reply is being generated in this chat already".into(),
        ));
    }
    sambung_db::quotas::running_over(running_limit, running)?;
    let history: Vec<Message> = match kind {
        TurnKind::Ask { content, files } => {
            // The question stored and the conversation read in one statement; the new row
            // comes from RETURNING (the statement's own snapshot cannot see it).
            let asked = MessageId::new();
            let history = sqlx::query_as(&format!(
                "WITH asked AS (
                   INSERT INTO messages (id, chat_id, role, content) VALUES ($1, $2, 'user', $3)
                   RETURNING {MESSAGE_COLUMNS})
                 SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = $2 AND NOT off_path
                 UNION ALL SELECT {MESSAGE_COLUMNS} FROM asked
                 ORDER BY created_at, id"
            ))
            .bind(asked)
            .bind(chat)
            .bind(content)
            .fetch_all(&mut *tx)
            .await?;
            if !files.is_empty() {
                sambung_db::files::attach(&mut tx, actor, asked, files).await?;
            }
            history
        }
        TurnKind::Regenerate => {
            let last_user: Option<(DateTime<Utc>, MessageId)> = sqlx::query_as(
                "SELECT created_at, id FROM messages WHERE chat_id = $1 AND NOT off_path
                    AND role = 'user'
                  ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .bind(chat)
            .fetch_optional(&mut *tx)
            .await?;
            let (at, id) = last_user.ok_or_else(|| {
                DomainError::invalid("regenerate", "there is no message to answer")
            })?;
            // The replies being replaced stay, as a branch beside the new one.
            leave_path(&mut tx, chat, at, id, false).await?;
            conversation(&mut tx, chat).await?
        }
        TurnKind::Edit { message, content } => {
            let edited: Option<(DateTime<Utc>, MessageId)> = sqlx::query_as(
                "SELECT created_at, id FROM messages
                  WHERE id = $1 AND chat_id = $2 AND role = 'user' AND NOT off_path",
            )
            .bind(message)
            .bind(chat)
            .fetch_optional(&mut *tx)
            .await?;
            let (at, id) = edited
                .ok_or_else(|| DomainError::invalid("edit", "no such user message in this chat"))?;
            // The question as it was, and what followed it, stay as a branch; the edited
            // question is its sibling (following the same message, by messages_follow_path).
            leave_path(&mut tx, chat, at, id, true).await?;
            let edited = MessageId::new();
            sqlx::query(
                "INSERT INTO messages (id, chat_id, role, content) VALUES ($1, $2, 'user', $3)",
            )
            .bind(edited)
            .bind(chat)
            .bind(content)
            .execute(&mut *tx)
            .await?;
            // The edited question keeps the files of the one it replaces.
            sambung_db::files::copy_attached(&mut tx, id, edited).await?;
            conversation(&mut tx, chat).await?
        }
    };
    let mut metadata = metadata;
    if let Some(object) = metadata.as_object_mut() {
        object.insert("status".into(), ReplyStatus::Streaming.as_str().into());
        object.insert("server".into(), writer.number().to_string().into());
        // Who asked may stop the reply, besides those who may change the chat.
        object.insert("askedBy".into(), actor.to_string().into());
    }
    let reply: Message = sqlx::query_as(&format!(
        "WITH touched AS (UPDATE chats SET updated_at = now() WHERE id = $2)
         INSERT INTO messages (id, chat_id, role, content, metadata) VALUES ($1, $2, 'assistant', '', $3)
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(MessageId::new())
    .bind(chat)
    .bind(metadata)
    .fetch_one(&mut *tx)
    .await?;
    Ok(PendingTurn {
        tx,
        turn: Turn {
            chat: locked.chat,
            history,
            reply,
        },
    })
}

/// A message of the conversation a turn would send, and whether a live server is writing it.
#[derive(serde::Deserialize)]
pub(crate) struct PreviewRow {
    #[serde(flatten)]
    message: Message,
    busy: bool,
}

/// The conversation a turn would send to the provider, read before its transaction, so the
/// provider request can leave while the turn is stored ([`begin_turn`] returns the
/// conversation as stored: a caller compares the two): [`PreviewRow`]s of the chat `$4` (a
/// caller orders them by `created_at`, `id`) on the common table `readable`
/// ([`sambung_db::chats::readable_sql`]: none for a chat the caller may not read).
/// [`preview_from`] makes it the conversation. A message without a status reads as not
/// running before the lock table is asked (`NULL AND …` would ask it: a third of the turn's
/// statement).
pub(crate) fn preview_sql() -> String {
    format!(
        "SELECT m.id, m.chat_id, m.role, m.content, m.metadata, m.created_at,
                EXISTS (SELECT 1 FROM message_files mf WHERE mf.message_id = m.id) AS has_files,
                COALESCE(COALESCE({streaming}, false) AND {alive}, false) AS busy
           FROM messages m
          WHERE m.chat_id = $4 AND NOT m.off_path
            AND EXISTS (SELECT 1 FROM readable)",
        streaming = sambung_db::chats::REPLY_STREAMING_SQL,
        alive = lease::writer_alive(),
    )
}

/// The conversation `kind` would send, from the shown path's `rows`: refused while a live
/// server writes a reply in it.
pub(crate) fn preview_from(
    rows: Vec<PreviewRow>,
    chat: ChatId,
    kind: &TurnKind<'_>,
) -> Result<Vec<Message>> {
    if rows.iter().any(|row| row.busy) {
        return Err(DomainError::Conflict(
            "a reply is being generated in this chat already".into(),
        ));
    }
    let mut history: Vec<Message> = rows.into_iter().map(|row| row.message).collect();
    match *kind {
        TurnKind::Ask { content, .. } => history.push(Message {
            id: MessageId::new(),
            chat_id: chat,
            role: MessageRole::User,
            content: content.to_owned(),
            metadata: None,
            created_at: Utc::now(),
            parent_id: history.last().map(|m| m.id),
            off_path: false,
            siblings: None,
            has_files: false,
        }),
        TurnKind::Regenerate => {
            let last_user = history.iter().rposition(|m| m.role == MessageRole::User);
            let last_user = last_user.ok_or_else(|| {
                DomainError::invalid("regenerate", "there is no message to answer")
            })?;
            history.truncate(last_user + 1);
        }
        TurnKind::Edit { message, content } => {
            let edited = history
                .iter()
                .position(|m| m.id == message && m.role == MessageRole::User)
                .ok_or_else(|| DomainError::invalid("edit", "no such user message in this chat"))?;
            history.truncate(edited + 1);
            history[edited].content = content.to_owned();
        }
    }
    Ok(history)
}

/// The shown path of a chat: what a turn sends.
async fn conversation(conn: &mut PgConnection, chat: ChatId) -> Result<Vec<Message>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = $1 AND NOT off_path
          ORDER BY created_at, id"
    ))
    .bind(chat)
    .fetch_all(conn)
    .await?)
}

/// Take the shown path's messages after (`inclusive`: from) the message written at `at` with
/// `id` off the path: they stay in the tree, as a branch.
async fn leave_path(
    conn: &mut PgConnection,
    chat: ChatId,
    at: DateTime<Utc>,
    id: MessageId,
    inclusive: bool,
) -> Result<()> {
    sqlx::query(
        "UPDATE messages SET off_path = true
          WHERE chat_id = $1 AND NOT off_path
            AND ((created_at, id) > ($2, $3) OR ($4 AND id = $3))",
    )
    .bind(chat)
    .bind(at)
    .bind(id)
    .bind(inclusive)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether `actor` may stop the reply being written in `chat`: who asked for it, and whoever
/// may change the chat (as regenerating needs). A chat they may not read is not found.
pub async fn require_stop(pool: &PgPool, actor: UserId, chat: ChatId) -> Result<()> {
    let decision: Option<(bool, bool)> = sqlx::query_as(&format!(
        "SELECT p.can_change,
                EXISTS (SELECT 1 FROM messages m
                         WHERE m.chat_id = p.id AND m.role = 'assistant' AND {streaming}
                           AND m.metadata->>'askedBy' = $2::text) AS asked
           FROM sambung_chat_reader($1, $2) p",
        streaming = sambung_db::chats::REPLY_STREAMING_SQL
    ))
    .bind(chat)
    .bind(actor)
    .fetch_optional(pool)
    .await?;
    match decision {
        None => Err(DomainError::not_found("chat")),
        Some((false, false)) => Err(DomainError::forbidden(
            "stop a reply someone else asked for",
        )),
        Some(_) => Ok(()),
    }
}

/// What a reply used: counted into the day's usage as it is stored.
#[derive(Debug, Clone)]
pub struct Usage<'a> {
    /// Who asked.
    pub user: UserId,
    /// The chat's team (none: a personal chat).
    pub team: Option<TeamId>,
    pub model: &'a Model,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub duration: std::time::Duration,
}

/// The team of a personal chat in `usage_daily` (part of its key, so never null).
const PERSONAL: uuid::Uuid = uuid::Uuid::nil();

/// Store a reply's text and metadata (its status among them), and add what it used to the
/// day's usage, in one statement (no round trip more on the turn's path). A reply deleted
/// meanwhile (the chat was deleted) is not an error; what it used still counts. Without a
/// reply (a completion outside a chat) only the usage is added.
pub async fn finish_turn(
    pool: &PgPool,
    reply: Option<MessageId>,
    content: &str,
    metadata: serde_json::Value,
    usage: &Usage<'_>,
) -> Result<()> {
    let content = content.replace('\0', "");
    let tokens = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let model = usage.model;
    sqlx::query(
        "WITH stored AS (UPDATE messages SET content = $2, metadata = $3 WHERE id = $1)
         INSERT INTO usage_daily AS u (day, user_id, team_id, model, provider, connection_id,
                                       requests, input_tokens, output_tokens, duration_ms, cost)
         VALUES ((now() AT TIME ZONE 'UTC')::date, $4, $5, $6, $7, $8, 1, $9, $10, $11,
                 ($9 * coalesce($12::float8, 0) + $10 * coalesce($13::float8, 0))::numeric / 1000000)
         ON CONFLICT (day, user_id, team_id, model, provider) DO UPDATE
            SET requests = u.requests + 1,
                input_tokens = u.input_tokens + EXCLUDED.input_tokens,
                output_tokens = u.output_tokens + EXCLUDED.output_tokens,
                duration_ms = u.duration_ms + EXCLUDED.duration_ms,
                cost = u.cost + EXCLUDED.cost,
                connection_id = coalesce(EXCLUDED.connection_id, u.connection_id)",
    )
    .bind(reply)
    .bind(content)
    .bind(metadata)
    .bind(usage.user)
    .bind(usage.team.map_or(PERSONAL, |t| t.0))
    .bind(&model.model_id)
    .bind(&model.provider)
    .bind(model.connection_id)
    .bind(tokens(usage.input_tokens))
    .bind(tokens(usage.output_tokens))
    .bind(i64::try_from(usage.duration.as_millis()).unwrap_or(i64::MAX))
    .bind(model.input_price)
    .bind(model.output_price)
    .execute(pool)
    .await?;
    Ok(())
}

/// Store the text of a reply still being written, so a server that dies mid-reply leaves what
/// it had; a reply that ended meanwhile is left as it is.
pub async fn save_partial_reply(pool: &PgPool, reply: MessageId, content: &str) -> Result<()> {
    sqlx::query("UPDATE messages SET content = $2 WHERE id = $1 AND metadata->>'status' = $3")
        .bind(reply)
        .bind(content.replace('\0', ""))
        .bind(ReplyStatus::Streaming.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

/// Give a chat still called [`NEW_CHAT_TITLE`] a title.
pub async fn title_new_chat(pool: &PgPool, chat: ChatId, title: &str) -> Result<()> {
    let title: String = title.chars().take(MAX_TITLE_CHARS).collect();
    if title.trim().is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE chats SET title = $2 WHERE id = $1 AND title = $3")
        .bind(chat)
        .bind(title.trim())
        .bind(NEW_CHAT_TITLE)
        .execute(pool)
        .await?;
    Ok(())
}
