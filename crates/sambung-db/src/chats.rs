//! Chats and their messages, with access control: a personal chat is its owner's alone; a
//! team chat is read by every member and changed by its creator and the team's admins. Every
//! decision is one query. A chat the user may not read is "not found", so its existence is
//! not revealed.

use std::fmt;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::auth::Caller;
use crate::error::{required_text, DomainError, Result};
use crate::ids::{ChatId, FolderId, MessageId, TagId, TeamId, UserId};
use crate::secret::random_token;

/// Longest chat title accepted.
pub const MAX_TITLE_CHARS: usize = 200;

/// The title of a chat until its first reply names it.
pub const NEW_CHAT_TITLE: &str = "New chat";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Chat {
    pub id: ChatId,
    pub user_id: UserId,
    pub team_id: Option<TeamId>,
    pub folder_id: Option<FolderId>,
    pub title: String,
    pub model: String,
    pub provider: String,
    pub settings: serde_json::Value,
    pub metadata: serde_json::Value,
    pub public_token: Option<String>,
    pub is_public: bool,
    pub pinned_at: Option<DateTime<Utc>>,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A chat's columns, as [`Chat`] reads them, for queries on `chats c`.
pub const CHAT_COLUMNS: &str = "c.id, c.user_id, c.team_id, c.folder_id, c.title, c.model, c.provider, c.settings, c.metadata, c.public_token, c.is_public, c.pinned_at, c.archived_at, c.created_at, c.updated_at";

/// A new chat: personal when `team_id` is `None`.
#[derive(Debug, Clone, Default)]
pub struct NewChat<'a> {
    pub team_id: Option<TeamId>,
    pub folder_id: Option<FolderId>,
    pub title: &'a str,
    pub model: &'a str,
    pub provider: &'a str,
    /// `{systemPrompt, temperature, maxTokens, topP}`, over the model's; `{}` when `None`.
    pub settings: Option<serde_json::Value>,
}

/// A chat's own settings checked: those of a model, the system prompt as `systemPrompt`.
fn check_chat_settings(settings: &serde_json::Value) -> Result<()> {
    crate::models::check_generation_settings(settings, "systemPrompt")
}

/// SQL true when the message `m` is a reply being written (by a live server or a dead one):
/// the one place SQL names that status (`sambung_chat::ReplyStatus::Streaming`, whose tests
/// hold the two to the same word). A literal, never a parameter: the partial index
/// `message_streaming_idx` then serves a generic plan too (with a parameter, a generic plan
/// scans every message).
pub const REPLY_STREAMING_SQL: &str = "m.metadata->>'status' = 'streaming'";

/// The access decision: ($1 chat, $2 user) → whether the user may change the chat, no row when
/// they may not read it. The rule itself is the schema's `sambung_chat_reader` (`05_chat.sql`),
/// which every query deciding access reads.
pub const CHAT_ACCESS_SQL: &str = "SELECT can_change FROM sambung_chat_reader($1, $2)";

/// What a user may do with a chat they may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChatAccess {
    /// Read it and post in it.
    pub read: bool,
    /// Change, delete or share it.
    pub change: bool,
}

/// The access decision for `user` on `chat`; `None` when they may not read it (or it does not
/// exist: the two are not told apart).
pub async fn chat_access(
    conn: &mut PgConnection,
    user: UserId,
    chat: ChatId,
) -> Result<Option<ChatAccess>> {
    let change: Option<bool> = sqlx::query_scalar(CHAT_ACCESS_SQL)
        .bind(chat)
        .bind(user)
        .fetch_optional(conn)
        .await?;
    Ok(change.map(|change| ChatAccess { read: true, change }))
}

pub(crate) async fn require_read(
    conn: &mut PgConnection,
    user: UserId,
    chat: ChatId,
) -> Result<()> {
    match chat_access(conn, user, chat).await? {
        Some(access) if access.read => Ok(()),
        _ => Err(DomainError::not_found("chat")),
    }
}

pub(crate) async fn require_change(
    conn: &mut PgConnection,
    user: UserId,
    chat: ChatId,
    action: &'static str,
) -> Result<()> {
    match chat_access(conn, user, chat).await? {
        Some(access) if access.change => Ok(()),
        Some(access) if access.read => Err(DomainError::forbidden(action)),
        _ => Err(DomainError::not_found("chat")),
    }
}

/// Whether `user` belongs to `team`.
pub(crate) async fn is_member(conn: &mut PgConnection, user: UserId, team: TeamId) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM team_members WHERE team_id = $1 AND user_id = $2) AS "member!""#,
        team as TeamId,
        user as UserId,
    )
    .fetch_one(conn)
    .await?)
}

/// A folder fits a chat when it has the chat's scope: the owner's personal folder for a
/// personal chat, a folder of the same team for a team chat.
async fn require_folder_in_scope(
    conn: &mut PgConnection,
    folder: FolderId,
    owner: UserId,
    team: Option<TeamId>,
) -> Result<()> {
    let scope = sqlx::query!(
        r#"SELECT user_id AS "user_id: UserId", team_id AS "team_id: TeamId" FROM folders WHERE id = $1"#,
        folder as FolderId,
    )
    .fetch_optional(conn)
    .await?
    .map(|row| (row.user_id, row.team_id));
    let fits = match (scope, team) {
        (Some((_, Some(folder_team))), Some(chat_team)) => folder_team == chat_team,
        (Some((Some(folder_user), None)), None) => folder_user == owner,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "folder_id",
            "no such folder in the chat's scope",
        ))
    }
}

fn validate_chat_text(
    title: &str,
    model: &str,
    provider: &str,
) -> Result<(String, String, String)> {
    Ok((
        required_text("title", title, MAX_TITLE_CHARS)?,
        required_text("model", model, 200)?,
        required_text("provider", provider, 100)?,
    ))
}

/// Create a chat owned by `actor` (a team chat needs membership; a folder must fit its scope).
pub async fn create_chat(pool: &PgPool, actor: UserId, new: NewChat<'_>) -> Result<Chat> {
    let (title, model, provider) = validate_chat_text(new.title, new.model, new.provider)?;
    let settings = new.settings.unwrap_or_else(|| serde_json::json!({}));
    check_chat_settings(&settings)?;
    let mut tx = pool.begin().await?;
    if let Some(team) = new.team_id {
        if !is_member(&mut tx, actor, team).await? {
            return Err(DomainError::not_found("team"));
        }
    }
    if let Some(folder) = new.folder_id {
        require_folder_in_scope(&mut tx, folder, actor, new.team_id).await?;
    }
    let chat = sqlx::query_as(&format!(
        "INSERT INTO chats AS c (id, user_id, team_id, folder_id, title, model, provider, settings)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {CHAT_COLUMNS}"
    ))
    .bind(ChatId::new())
    .bind(actor)
    .bind(new.team_id)
    .bind(new.folder_id)
    .bind(title)
    .bind(model)
    .bind(provider)
    .bind(settings)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(chat)
}

async fn fetch_chat(conn: &mut PgConnection, chat: ChatId) -> Result<Chat> {
    sqlx::query_as(&format!(
        "SELECT {CHAT_COLUMNS} FROM chats c WHERE c.id = $1"
    ))
    .bind(chat)
    .fetch_optional(conn)
    .await?
    .ok_or(DomainError::not_found("chat"))
}

/// A chat the acting user may read: the access decision and the row in one query.
pub async fn get_chat(pool: &PgPool, actor: UserId, chat: ChatId) -> Result<Chat> {
    Ok(read_chat(pool, actor, chat).await?.chat)
}

/// A chat and who reads it: the user, or the session's user for a session the statement
/// accepts (not found otherwise, as for a chat the reader may not read).
#[derive(Debug, Clone, Deserialize, sqlx::FromRow)]
pub struct ReadChat {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub chat: Chat,
    pub reader_id: UserId,
}

/// [`read_chat`]'s query (a [`ReadChat`] row), on the common table `me` ([`Caller::with_me`])
/// and `$4` the chat: for a statement that reads more beside it.
pub fn read_chat_sql() -> String {
    format!("SELECT {CHAT_COLUMNS}, c.reader_id FROM me, sambung_chat_reader($4, me.id) c")
}

/// The common table `readable`: [`read_chat_sql`]'s row (nothing for a chat the caller may
/// not read), for a statement that reads more of the chat only as its reader may.
pub fn readable_sql() -> String {
    format!("readable AS ({})", read_chat_sql())
}

/// The chat, if `caller` may read it, and who they are.
pub async fn read_chat(pool: &PgPool, caller: impl Into<Caller>, chat: ChatId) -> Result<ReadChat> {
    let caller = caller.into();
    static READ_CHAT: LazyLock<String> = LazyLock::new(|| Caller::with_me(&[], &read_chat_sql()));
    caller
        .bind(sqlx::query_as(&READ_CHAT))
        .bind(chat)
        .fetch_optional(pool)
        .await?
        .ok_or(DomainError::not_found("chat"))
}

/// Changes to a chat; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ChatChanges<'a> {
    pub title: Option<&'a str>,
    /// `Some(None)` takes the chat out of its folder.
    pub folder_id: Option<Option<FolderId>>,
    /// Pin it (to the top of its list) or unpin it.
    pub pinned: Option<bool>,
    /// The model (and its provider) new replies use.
    pub model: Option<(&'a str, &'a str)>,
    /// Its own settings (all of them), over the model's.
    pub settings: Option<serde_json::Value>,
    /// Archive it (out of the list, kept) or bring it back.
    pub archived: Option<bool>,
}

/// Change a chat (its creator, or an admin of its team).
pub async fn update_chat(
    pool: &PgPool,
    actor: UserId,
    chat: ChatId,
    changes: ChatChanges<'_>,
) -> Result<Chat> {
    let mut tx = pool.begin().await?;
    require_change(&mut tx, actor, chat, "change this chat").await?;
    let current = fetch_chat(&mut tx, chat).await?;
    let title = match changes.title {
        Some(title) => required_text("title", title, MAX_TITLE_CHARS)?,
        None => current.title.clone(),
    };
    let folder = changes.folder_id.unwrap_or(current.folder_id);
    if let Some(folder) = folder {
        require_folder_in_scope(&mut tx, folder, current.user_id, current.team_id).await?;
    }
    let (model, provider) = match changes.model {
        Some((model, provider)) => (
            required_text("model", model, 200)?,
            required_text("provider", provider, 100)?,
        ),
        None => (current.model.clone(), current.provider.clone()),
    };
    let pinned_at = match changes.pinned {
        Some(true) => Some(current.pinned_at.unwrap_or_else(Utc::now)),
        Some(false) => None,
        None => current.pinned_at,
    };
    let settings = match changes.settings {
        Some(settings) => {
            check_chat_settings(&settings)?;
            settings
        }
        None => current.settings.clone(),
    };
    let archived_at = match changes.archived {
        Some(true) => Some(current.archived_at.unwrap_or_else(Utc::now)),
        Some(false) => None,
        None => current.archived_at,
    };
    let updated = sqlx::query_as(&format!(
        "UPDATE chats AS c SET title = $2, folder_id = $3, model = $4, provider = $5, pinned_at = $6,
                settings = $7, archived_at = $8
          WHERE c.id = $1 RETURNING {CHAT_COLUMNS}"
    ))
    .bind(chat)
    .bind(title)
    .bind(folder)
    .bind(model)
    .bind(provider)
    .bind(pinned_at)
    .bind(settings)
    .bind(archived_at)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Delete a chat and its messages (its creator, or an admin of its team).
pub async fn delete_chat(pool: &PgPool, actor: UserId, chat: ChatId) -> Result<()> {
    let mut tx = pool.begin().await?;
    require_change(&mut tx, actor, chat, "delete this chat").await?;
    sqlx::query!("DELETE FROM chats WHERE id = $1", chat as ChatId)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Share a chat publicly: a new random token; an earlier share's token stops working.
pub async fn share_chat(pool: &PgPool, actor: UserId, chat: ChatId) -> Result<String> {
    let mut tx = pool.begin().await?;
    require_change(&mut tx, actor, chat, "share this chat").await?;
    let token = random_token();
    sqlx::query!(
        "UPDATE chats SET is_public = true, public_token = $2 WHERE id = $1",
        chat as ChatId,
        token,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Stop sharing a chat: its token is revoked.
pub async fn unshare_chat(pool: &PgPool, actor: UserId, chat: ChatId) -> Result<()> {
    let mut tx = pool.begin().await?;
    require_change(&mut tx, actor, chat, "unshare this chat").await?;
    sqlx::query!(
        "UPDATE chats SET is_public = false, public_token = NULL WHERE id = $1",
        chat as ChatId
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A shared chat and a page of its messages, by its public token, while it is public.
pub async fn get_public_chat(
    pool: &PgPool,
    token: &str,
    after: Option<MessageCursor>,
    limit: i64,
) -> Result<(Chat, Page<Message, MessageCursor>)> {
    if limit < 1 {
        return Err(DomainError::invalid("limit", "at least 1"));
    }
    let chat: Chat = sqlx::query_as(&format!(
        "SELECT {CHAT_COLUMNS} FROM chats c WHERE c.public_token = $1 AND c.is_public = true"
    ))
    .bind(token)
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("shared chat"))?;
    let page = page_of(pool, MESSAGES_PAGE_SQL, chat.id, after, limit).await?;
    Ok((chat, page))
}

/// Which chats a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatScope {
    /// The acting user's personal chats.
    Personal,
    /// A team's chats (the acting user must be a member).
    Team(TeamId),
}

/// Where the previous page ended: the last chat's `updated_at` and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatCursor {
    pub updated_at: DateTime<Utc>,
    pub id: ChatId,
}

/// A listing of chats, newest first, page by page.
#[derive(Debug, Clone)]
pub struct ChatQuery {
    pub scope: ChatScope,
    pub folder_id: Option<FolderId>,
    pub tag_id: Option<TagId>,
    /// Only pinned chats (`true`) or only the others (`false`).
    pub pinned: Option<bool>,
    /// Only archived chats (`true`) or only the others (`false`).
    pub archived: Option<bool>,
    /// Only chats whose title contains this text (case-insensitive).
    pub title_contains: Option<String>,
    pub updated_after: Option<DateTime<Utc>>,
    pub updated_before: Option<DateTime<Utc>>,
    pub after: Option<ChatCursor>,
    pub limit: i64,
}

impl ChatQuery {
    pub fn new(scope: ChatScope) -> Self {
        ChatQuery {
            scope,
            folder_id: None,
            tag_id: None,
            pinned: None,
            archived: None,
            title_contains: None,
            updated_after: None,
            updated_before: None,
            after: None,
            limit: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ChatSummary {
    #[sqlx(flatten)]
    pub chat: Chat,
    pub message_count: i64,
}

/// One page and where the next one starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// `list_chats`' query with only the filters in use, so the planner sees the plain query a
/// hand-written one would be (each combination is its own cached prepared statement).
fn list_chats_builder<'q>(
    caller: &'q Caller,
    team: Option<TeamId>,
    query: &ChatQuery,
) -> sqlx::QueryBuilder<'q, sqlx::Postgres> {
    let mut sql = sqlx::QueryBuilder::new(format!(
        "SELECT {CHAT_COLUMNS}, (SELECT count(*) FROM messages m WHERE m.chat_id = c.id AND NOT m.off_path) AS message_count FROM chats c WHERE "
    ));
    match team {
        None => {
            sql.push("c.user_id = ");
            caller.push(&mut sql);
            sql.push(" AND c.team_id IS NULL")
        }
        Some(team) => sql.push("c.team_id = ").push_bind(team),
    };
    if let Some(folder) = query.folder_id {
        sql.push(" AND c.folder_id = ").push_bind(folder);
    }
    if let Some(tag) = query.tag_id {
        sql.push(" AND EXISTS (SELECT 1 FROM chat_tags t WHERE t.chat_id = c.id AND t.tag_id = ")
            .push_bind(tag)
            .push(")");
    }
    match query.pinned {
        Some(true) => sql.push(" AND c.pinned_at IS NOT NULL"),
        Some(false) => sql.push(" AND c.pinned_at IS NULL"),
        None => &mut sql,
    };
    match query.archived {
        Some(true) => sql.push(" AND c.archived_at IS NOT NULL"),
        Some(false) => sql.push(" AND c.archived_at IS NULL"),
        None => &mut sql,
    };
    if let Some(text) = &query.title_contains {
        sql.push(" AND c.title ILIKE '%' || ")
            .push_bind(sambung_sql::escape_like(text))
            .push(" || '%'");
    }
    if let Some(after) = query.updated_after {
        sql.push(" AND c.updated_at >= ").push_bind(after);
    }
    if let Some(before) = query.updated_before {
        sql.push(" AND c.updated_at < ").push_bind(before);
    }
    if let Some(cursor) = query.after {
        sql.push(" AND (c.updated_at, c.id) < (")
            .push_bind(cursor.updated_at)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
    sql.push(" ORDER BY c.updated_at DESC, c.id DESC LIMIT ")
        .push_bind(query.limit);
    sql
}

/// The SQL of `list_chats` without filters, for a view (for reading its plan).
pub fn list_chats_sql(team_view: bool) -> String {
    let team = team_view.then(TeamId::new);
    let caller = Caller::User(UserId::new());
    list_chats_builder(&caller, team, &ChatQuery::new(ChatScope::Personal)).into_sql()
}

/// The design's "user's chats with message count", newest first, with keyset pagination.
pub async fn list_chats(
    pool: &PgPool,
    caller: impl Into<Caller>,
    query: &ChatQuery,
) -> Result<Page<ChatSummary, ChatCursor>> {
    let caller = caller.into();
    if !(1..=500).contains(&query.limit) {
        return Err(DomainError::invalid("limit", "1 to 500"));
    }
    if let Some(text) = &query.title_contains {
        required_text("q", text, 200)?;
    }
    let team = match query.scope {
        ChatScope::Personal => None,
        ChatScope::Team(team) => {
            let mut conn = pool.acquire().await?;
            let Some(actor) = caller.user(&mut *conn).await? else {
                return Ok(Page {
                    items: Vec::new(),
                    next: None,
                });
            };
            if !is_member(&mut conn, actor, team).await? {
                return Err(DomainError::not_found("team"));
            }
            Some(team)
        }
    };
    let items: Vec<ChatSummary> = list_chats_builder(&caller, team, query)
        .build_query_as()
        .fetch_all(pool)
        .await?;
    let next = (items.len() as i64 == query.limit)
        .then(|| {
            items.last().map(|s| ChatCursor {
                updated_at: s.chat.updated_at,
                id: s.chat.id,
            })
        })
        .flatten();
    Ok(Page { items, next })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum MessageRole {
    User,
    Assistant,
    System,
}

impl MessageRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
            MessageRole::System => "system",
        }
    }
}

impl fmt::Display for MessageRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Message {
    pub id: MessageId,
    pub chat_id: ChatId,
    pub role: MessageRole,
    pub content: String,
    pub metadata: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    /// The message it follows (read by the pages of a chat; `None` elsewhere).
    #[sqlx(default)]
    #[serde(default)]
    pub parent_id: Option<MessageId>,
    /// Off the shown path (only the whole tree's pages list such messages).
    #[sqlx(default)]
    #[serde(default)]
    pub off_path: bool,
    /// The versions of this message, itself among them, oldest first, when there are several
    /// (an edit or a regeneration made them): what `‹ 2/3 ›` switches between.
    #[sqlx(default)]
    #[serde(default)]
    pub siblings: Option<Vec<uuid::Uuid>>,
    /// Whether files are attached to it (read by the pages of a chat, so that the files are
    /// asked for only when some message carries any; `false` elsewhere).
    #[sqlx(default)]
    #[serde(default)]
    pub has_files: bool,
}

/// The ids of those of `messages` that carry files (read by the pages of a chat), for which
/// alone the files are asked.
pub fn carrying_files(messages: &[Message]) -> Vec<MessageId> {
    messages
        .iter()
        .filter(|m| m.has_files)
        .map(|m| m.id)
        .collect()
}

/// Where the previous page of messages ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCursor {
    pub created_at: DateTime<Utc>,
    pub id: MessageId,
}

/// Longest message accepted (1 MiB of text).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Largest client annotations a message may carry (serialised JSON).
pub const MAX_ANNOTATION_BYTES: usize = 16 * 1024;

/// Post a user's message in a chat without asking a model, and bump the chat's `updated_at`,
/// in one statement. Clients only ever write user messages with plain content: the role,
/// the status and everything else the server reads back from `metadata` are the server's.
/// What a client wants to keep beside its message (`annotations`, a JSON object) is stored
/// under `metadata.annotations`, a namespace the server never interprets.
pub async fn append_message(
    pool: &PgPool,
    caller: impl Into<Caller>,
    chat: ChatId,
    content: &str,
    annotations: Option<serde_json::Value>,
) -> Result<Message> {
    if content.len() > MAX_MESSAGE_BYTES {
        return Err(DomainError::invalid("content", "at most 1 MiB"));
    }
    if content.contains('\0') {
        return Err(DomainError::invalid(
            "content",
            "must not contain NUL characters",
        ));
    }
    let metadata = match annotations {
        None => None,
        Some(notes) if !notes.is_object() => {
            return Err(DomainError::invalid("annotations", "must be a JSON object"))
        }
        Some(notes) if notes.to_string().len() > MAX_ANNOTATION_BYTES => {
            return Err(DomainError::invalid(
                "annotations",
                "at most 16 KiB of JSON",
            ))
        }
        Some(notes) => Some(serde_json::json!({ "annotations": notes })),
    };
    // Whoever may read a chat may post in it (a team chat is a conversation of its team): the
    // decision is part of the INSERT, and the chat's `updated_at` moves in the same statement,
    // so that the whole append is one round trip (a transaction around two statements took
    // four) and as atomic as a transaction.
    let caller = caller.into();
    let message: Message = caller
        .bind(
            sqlx::query_as(&format!(
                "WITH {}, added AS (
                     INSERT INTO messages (id, chat_id, role, content, metadata)
                     SELECT $1, p.id, 'user', $3, $4 FROM me, sambung_chat_reader($2, me.id) p
                     RETURNING id, chat_id, role, content, metadata, created_at),
                 bumped AS (
                     UPDATE chats SET updated_at = now() WHERE id IN (SELECT chat_id FROM added))
                 SELECT id, chat_id, role, content, metadata, created_at FROM added",
                Caller::me_sql(5)
            ))
            .bind(MessageId::new())
            .bind(chat)
            .bind(content)
            .bind(metadata),
        )
        .fetch_optional(pool)
        .await?
        .ok_or(DomainError::not_found("chat"))?;
    Ok(message)
}

/// Most message text one page carries: a page ends at its row limit or once this much content
/// is in it (always at least one message), so no answer or page is unbounded however long the
/// messages are.
pub const MAX_PAGE_CONTENT_BYTES: i64 = 4 << 20;

/// A chat's messages in order: ($1 chat, $2/$3 cursor, $4 limit, $5 content budget). The
/// budget is counted over the rows the limit takes (`octet_length` reads a stored value's
/// size without reading the value), and the page keeps those that begin within it; `fetched`
/// says how many the limit took, so a caller knows whether the budget cut the page short.
/// A page of messages (those `$filter` keeps), each with its versions when it has several:
/// the messages of the chat with the same parent (the chat's roots, for a first question).
macro_rules! messages_page_sql {
    ($filter:literal) => {
        concat!(
            "SELECT id, chat_id, role, content, metadata, created_at, parent_id, off_path, fetched,
        EXISTS (SELECT 1 FROM message_files mf WHERE mf.message_id = page.id) AS has_files,
        (SELECT CASE WHEN count(*) > 1 THEN array_agg(s.id ORDER BY s.created_at, s.id) END
           FROM messages s
          WHERE s.chat_id = page.chat_id
            AND (s.parent_id = page.parent_id OR (page.parent_id IS NULL AND s.parent_id IS NULL))) AS siblings
   FROM (
   SELECT m.*, sum(octet_length(m.content)) OVER (ORDER BY m.created_at, m.id) - octet_length(m.content) AS before,
          count(*) OVER () AS fetched
     FROM (SELECT id, chat_id, role, content, metadata, created_at, parent_id, off_path FROM messages
            WHERE chat_id = $1 ",
            $filter,
            " AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
            ORDER BY created_at, id LIMIT $4) m) page
  WHERE before < $5
  ORDER BY created_at, id"
        )
    };
}

pub const MESSAGES_PAGE_SQL: &str = messages_page_sql!("AND NOT off_path");

/// [`MESSAGES_PAGE_SQL`] over every branch of the chat, not only its shown path.
pub const TREE_PAGE_SQL: &str = messages_page_sql!("");

#[derive(sqlx::FromRow)]
struct PageRow {
    #[sqlx(flatten)]
    message: Message,
    fetched: i64,
}

/// A page of the messages `sql` lists (at most `limit`, and [`MAX_PAGE_CONTENT_BYTES`] of
/// content) after `after`, with where the next one starts.
async fn page_of(
    pool: &PgPool,
    sql: &'static str,
    chat: ChatId,
    after: Option<MessageCursor>,
    limit: i64,
) -> Result<Page<Message, MessageCursor>> {
    let rows: Vec<PageRow> = sqlx::query_as(sql)
        .bind(chat)
        .bind(after.map(|c| c.created_at))
        .bind(after.map(|c| c.id))
        .bind(limit)
        .bind(MAX_PAGE_CONTENT_BYTES)
        .fetch_all(pool)
        .await?;
    let fetched = rows.first().map(|row| row.fetched);
    Ok(into_page(
        rows.into_iter().map(|row| row.message).collect(),
        fetched,
        limit,
    ))
}

/// A page of `items`, which the page's query `fetched` (before its content budget cut it) of
/// at most `limit`: it goes on after its last item when either cut it short.
fn into_page(
    items: Vec<Message>,
    fetched: Option<i64>,
    limit: i64,
) -> Page<Message, MessageCursor> {
    let more = fetched.is_some_and(|fetched| fetched == limit || (fetched as usize) > items.len());
    let next = items.last().filter(|_| more).map(|m| MessageCursor {
        created_at: m.created_at,
        id: m.id,
    });
    Page { items, next }
}

/// A row of [`readable_page`]'s statement: the chat, and one message of the page (none when
/// the page is empty).
#[derive(sqlx::FromRow)]
struct ChatPageRow {
    #[sqlx(flatten)]
    chat: Chat,
    message_id: Option<MessageId>,
    message_role: Option<MessageRole>,
    message_content: Option<String>,
    message_metadata: Option<serde_json::Value>,
    message_created_at: Option<DateTime<Utc>>,
    message_parent_id: Option<MessageId>,
    message_off_path: Option<bool>,
    message_siblings: Option<Vec<uuid::Uuid>>,
    message_has_files: Option<bool>,
    fetched: Option<i64>,
}

impl ChatPageRow {
    fn message(&mut self) -> Option<Message> {
        Some(Message {
            id: self.message_id?,
            chat_id: self.chat.id,
            role: self.message_role?,
            content: self.message_content.take()?,
            metadata: self.message_metadata.take(),
            created_at: self.message_created_at?,
            parent_id: self.message_parent_id,
            off_path: self.message_off_path?,
            siblings: self.message_siblings.take(),
            has_files: self.message_has_files?,
        })
    }
}

/// The chat ($1) if the caller (`$6`–`$8`, read once in the common table `me`,
/// [`Caller::me_sql`]) may read it, each row with one message of the page `page` lists (its
/// parameters `$2`–`$5`, as [`MESSAGES_PAGE_SQL`]'s), or one row without a message when the
/// page is empty: the session, the access decision, the chat and its page in one round trip.
pub fn chat_page_sql(page: &str) -> String {
    format!(
        "WITH {} SELECT {CHAT_COLUMNS}, page.id AS message_id, page.role AS message_role,
                page.content AS message_content, page.metadata AS message_metadata,
                page.created_at AS message_created_at, page.parent_id AS message_parent_id,
                page.off_path AS message_off_path, page.siblings AS message_siblings,
                page.has_files AS message_has_files, page.fetched
           FROM me, sambung_chat_reader($1, me.id) c
           LEFT JOIN ({page}) page ON true
          ORDER BY page.created_at, page.id",
        Caller::me_sql(6)
    )
}

/// A chat with its messages in order, a page at a time for long chats.
pub async fn chat_with_messages(
    pool: &PgPool,
    actor: impl Into<Caller>,
    chat: ChatId,
    after: Option<MessageCursor>,
    limit: i64,
) -> Result<(Chat, Page<Message, MessageCursor>)> {
    readable_page(pool, &actor.into(), chat, MESSAGES_PAGE_SQL, after, limit).await
}

/// Every message of a chat, its branches too (each with its parent and whether it is on the
/// shown path), in the order they were written, a page at a time.
pub async fn chat_tree(
    pool: &PgPool,
    actor: impl Into<Caller>,
    chat: ChatId,
    after: Option<MessageCursor>,
    limit: i64,
) -> Result<Page<Message, MessageCursor>> {
    Ok(
        readable_page(pool, &actor.into(), chat, TREE_PAGE_SQL, after, limit)
            .await?
            .1,
    )
}

/// A chat the actor may read, and a page of the messages `sql` lists.
async fn readable_page(
    pool: &PgPool,
    caller: &Caller,
    chat: ChatId,
    sql: &'static str,
    after: Option<MessageCursor>,
    limit: i64,
) -> Result<(Chat, Page<Message, MessageCursor>)> {
    if limit < 1 {
        return Err(DomainError::invalid("limit", "at least 1"));
    }
    let mut rows: Vec<ChatPageRow> = caller
        .bind(
            sqlx::query_as(&chat_page_sql(sql))
                .bind(chat)
                .bind(after.map(|c| c.created_at))
                .bind(after.map(|c| c.id))
                .bind(limit)
                .bind(MAX_PAGE_CONTENT_BYTES),
        )
        .fetch_all(pool)
        .await?;
    let fetched = rows.first().and_then(|row| row.fetched);
    let items = rows.iter_mut().filter_map(ChatPageRow::message).collect();
    let chat = rows
        .into_iter()
        .next()
        .ok_or(DomainError::not_found("chat"))?
        .chat;
    Ok((chat, into_page(items, fetched, limit)))
}

/// Show the branch `message` is on: its ancestors, itself, and below it the latest message
/// at each step become the chat's path; the rest of the tree stays, off the path. Whoever
/// may change the chat may switch it (it is what the chat shows everyone), not while a reply
/// is being written in it.
pub async fn show_branch(
    pool: &PgPool,
    actor: UserId,
    chat: ChatId,
    message: MessageId,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let locked: Option<(bool, bool)> = sqlx::query_as(&format!(
        "SELECT p.can_change,
                EXISTS (SELECT 1 FROM messages m WHERE m.chat_id = c.id AND NOT m.off_path
                         AND {REPLY_STREAMING_SQL})
           FROM chats c, sambung_chat_reader(c.id, $2) p
          WHERE c.id = $1 FOR UPDATE OF c"
    ))
    .bind(chat)
    .bind(actor)
    .fetch_optional(&mut *tx)
    .await?;
    let (can_change, busy) = locked.ok_or(DomainError::not_found("chat"))?;
    if !can_change {
        return Err(DomainError::forbidden("switch the branch of this chat"));
    }
    if busy {
        return Err(DomainError::Conflict(
            "a reply is being written in this chat: switch when it ends".into(),
        ));
    }
    let changed = sqlx::query(
        "WITH RECURSIVE
           up AS (SELECT id, parent_id FROM messages WHERE id = $2 AND chat_id = $1
                  UNION ALL
                  SELECT m.id, m.parent_id FROM messages m JOIN up ON m.id = up.parent_id),
           down AS (SELECT id FROM messages WHERE id = $2 AND chat_id = $1
                    UNION ALL
                    SELECT latest.id FROM down, LATERAL (
                      SELECT c.id FROM messages c WHERE c.parent_id = down.id AND c.chat_id = $1
                       ORDER BY c.created_at DESC, c.id DESC LIMIT 1) latest),
           path AS (SELECT id FROM up UNION SELECT id FROM down)
         UPDATE messages m SET off_path = NOT EXISTS (SELECT 1 FROM path WHERE path.id = m.id)
          WHERE m.chat_id = $1
            AND m.off_path = EXISTS (SELECT 1 FROM path WHERE path.id = m.id)
            AND EXISTS (SELECT 1 FROM up)",
    )
    .bind(chat)
    .bind(message)
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() == 0 {
        let known: Option<bool> =
            sqlx::query_scalar("SELECT true FROM messages WHERE id = $1 AND chat_id = $2")
                .bind(message)
                .bind(chat)
                .fetch_optional(&mut *tx)
                .await?;
        known.ok_or(DomainError::not_found("message"))?;
    }
    tx.commit().await?;
    Ok(())
}

/// `search_messages`' query: ($1–$3 the caller, in the common table `me`,
/// [`Caller::me_sql`]; $4 words, $5 limit), each match with its chat's title. For each chat the user may read (`sambung_chats_of`, the
/// access rule from the user's side), its newest matches, walking the chat's messages newest first (`message_chat_id_idx`), then
/// the newest of those. So a search costs what the user can read, never what the whole table
/// holds, and its plan is the same for every word: prepared, it keeps it.
///
/// Why the match is written `(… @@ q) IS TRUE`: it keeps the GIN index out of the plan. A
/// prepared statement switches to a generic plan after five runs, and there the planner cannot
/// see the word and estimates a match in 0.5 % of all messages (PostgreSQL's default for `@@`);
/// the GIN index then looks cheap, and a plan intersected it with each chat's messages. For a
/// common word that read 380,000 index entries per chat: 1.9 s a search at scale 1, where a
/// walk of the chats takes 2 ms for every word.
pub fn search_messages_sql() -> String {
    format!(
        "WITH {}
         SELECT m.id, m.chat_id, m.role, m.content, m.metadata, m.created_at, r.title AS chat_title
           FROM me, sambung_chats_of(me.id) r, plainto_tsquery('simple', $4) q,
                LATERAL (SELECT m.id, m.chat_id, m.role, m.content, m.metadata, m.created_at
                           FROM messages m
                          WHERE m.chat_id = r.id AND NOT m.off_path AND (m.content_tsv @@ q) IS TRUE
                          ORDER BY m.created_at DESC, m.id DESC
                          LIMIT $5) m
          ORDER BY m.created_at DESC, m.id DESC
          LIMIT $5",
        Caller::me_sql(1)
    )
}

/// The newest messages containing the words of `query` in the chats the user may read, each
/// with its chat's title.
pub async fn search_messages(
    pool: &PgPool,
    caller: impl Into<Caller>,
    query: &str,
    limit: i64,
) -> Result<Vec<FoundMessage>> {
    let query = required_text("query", query, 200)?;
    let caller = caller.into();
    Ok(caller
        .bind(sqlx::query_as(&search_messages_sql()))
        .bind(query)
        .bind(limit.clamp(1, 100))
        .fetch_all(pool)
        .await?)
}

/// A message a search found, with its chat's title.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FoundMessage {
    #[sqlx(flatten)]
    pub message: Message,
    pub chat_title: String,
}
