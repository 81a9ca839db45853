//! Chats read out whole for an export: every message of the tree with its files, the chat's
//! folder path and tags, in our JSON form (`sambung_transfer::ours`). An account's or a
//! team's chats are listed a page of ids at a time, so an export of any size holds one chat.

use sqlx::PgPool;

use crate::chats::get_chat;
use crate::error::Result;
use crate::files::File;
use crate::ids::{ChatId, FileId, MessageId, TeamId, UserId};
use sambung_transfer::ours::{
    file_path, ChatExport, FileExport, MessageExport, CHAT_FORMAT, CHAT_VERSION,
};

/// Whose chats an export holds.
#[derive(Debug, Clone, Copy)]
pub enum Whose {
    /// A user's personal chats.
    User(UserId),
    /// A team's chats (its admins export them).
    Team(TeamId),
}

/// The next `limit` chats of `whose` after `after`, oldest first.
pub async fn chat_ids(
    pool: &PgPool,
    whose: Whose,
    after: Option<ChatId>,
    limit: i64,
) -> Result<Vec<ChatId>> {
    let (user, team) = match whose {
        Whose::User(user) => (Some(user), None),
        Whose::Team(team) => (None, Some(team)),
    };
    Ok(sqlx::query_scalar(
        "SELECT id FROM chats
          WHERE (($1::uuid IS NOT NULL AND user_id = $1 AND team_id IS NULL) OR ($2::uuid IS NOT NULL AND team_id = $2))
            AND ($3::uuid IS NULL OR id > $3)
          ORDER BY id LIMIT $4",
    )
    .bind(user)
    .bind(team)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A chat the actor may read, whole, as our JSON export holds it.
pub async fn chat_export(
    pool: &PgPool,
    actor: UserId,
    chat: ChatId,
) -> Result<(ChatExport, Vec<File>)> {
    let chat = get_chat(pool, actor, chat).await?;
    #[derive(sqlx::FromRow)]
    struct Row {
        id: MessageId,
        parent_id: Option<MessageId>,
        role: String,
        content: String,
        metadata: Option<serde_json::Value>,
        created_at: chrono::DateTime<chrono::Utc>,
        off_path: bool,
    }
    // Read in message_chat_id_idx's own order, so no statistics (stale right after a large
    // import) can make a scan of message_created_at_idx look cheaper; written oldest first.
    let mut rows: Vec<Row> = sqlx::query_as(
        "SELECT id, parent_id, role, content, metadata, created_at, off_path
           FROM messages WHERE chat_id = $1 ORDER BY off_path, created_at, id",
    )
    .bind(chat.id)
    .fetch_all(pool)
    .await?;
    rows.sort_by_key(|r| (r.created_at, r.id));
    let ids: Vec<MessageId> = rows.iter().map(|r| r.id).collect();
    let attached = crate::files::files_of(pool, &ids).await?;
    let mut by_message: std::collections::HashMap<MessageId, Vec<FileExport>> = Default::default();
    let mut files: Vec<File> = Vec::new();
    let mut seen: std::collections::HashSet<FileId> = Default::default();
    for (message, file) in attached {
        by_message.entry(message).or_default().push(FileExport {
            id: file.id.to_string(),
            name: file.name.clone(),
            media_type: file.media_type.clone(),
            size: file.size,
            path: file_path(&file.id.to_string(), &file.name),
        });
        if seen.insert(file.id) {
            files.push(file);
        }
    }
    let folder: Option<String> = match chat.folder_id {
        None => None,
        Some(folder) => sqlx::query_scalar(
            "WITH RECURSIVE up(id, parent_id, name, depth) AS (
                 SELECT id, parent_id, name, 0 FROM folders WHERE id = $1
               UNION ALL
                 SELECT f.id, f.parent_id, f.name, up.depth + 1 FROM folders f JOIN up ON f.id = up.parent_id
                  WHERE up.depth < 16)
             SELECT string_agg(name, ' / ' ORDER BY depth DESC) FROM up",
        )
        .bind(folder)
        .fetch_one(pool)
        .await?,
    };
    let tags: Vec<String> = sqlx::query_scalar(
        "SELECT t.name FROM chat_tags ct JOIN tags t ON t.id = ct.tag_id WHERE ct.chat_id = $1 ORDER BY t.name",
    )
    .bind(chat.id)
    .fetch_all(pool)
    .await?;
    let messages = rows
        .into_iter()
        .map(|r| MessageExport {
            files: by_message.remove(&r.id).unwrap_or_default(),
            id: r.id.to_string(),
            parent_id: r.parent_id.map(|p| p.to_string()),
            role: r.role,
            content: r.content,
            metadata: r.metadata,
            created_at: r.created_at,
            on_path: !r.off_path,
        })
        .collect();
    Ok((
        ChatExport {
            format: CHAT_FORMAT.to_owned(),
            version: CHAT_VERSION,
            id: chat.id.to_string(),
            title: chat.title,
            model: chat.model,
            provider: chat.provider,
            settings: chat.settings,
            folder,
            tags,
            pinned: chat.pinned_at.is_some(),
            archived: chat.archived_at.is_some(),
            created_at: chat.created_at,
            updated_at: chat.updated_at,
            messages,
        },
        files,
    ))
}
