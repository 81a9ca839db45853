//! Imported conversations written as chats, inside the caller's transaction (a file's import
//! keeps everything or nothing). What each conversation became is kept in `imported_rows`, so
//! the same file imported again adds nothing; the imports of one user take turns.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::chats::{MAX_MESSAGE_BYTES, MAX_TITLE_CHARS};
use crate::error::{DomainError, Result};
use crate::ids::{ChatId, FileId, FolderId, MessageId, TagId, UserId};
use sambung_transfer::{Conversation, Note, NoteKind, Source};

/// Take the user's turn to import, held until this transaction ends: false when another
/// import of theirs holds it (one at a time per user, never queued).
///
/// The transaction's statements are also planned afresh each time from then on. An import
/// grows tables by thousands of rows that no statistics can see until it commits; a plan
/// cached while a table was nearly empty (the path trigger's lookup, the foreign keys'
/// checks) would scan it whole once per conversation, and a large import would slow to a
/// crawl (sambung bench --workload transfer).
pub async fn take_turn(conn: &mut PgConnection, owner: UserId) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtext('sambung import'), hashtext($1::text))
           FROM set_config('plan_cache_mode', 'force_custom_plan', true)",
    )
    .bind(owner)
    .fetch_one(conn)
    .await?)
}

/// What became of one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Added {
        chat: ChatId,
        messages: usize,
    },
    /// Imported before (and still there): nothing added.
    AlreadyThere {
        chat: ChatId,
    },
}

/// The chat `imported_rows` says this conversation became, if it is still there (or, for our
/// own export, the chat itself in the account it came from).
pub async fn imported_before(
    conn: &mut PgConnection,
    owner: UserId,
    conversation: &Conversation,
) -> Result<Option<ChatId>> {
    let mapped: Option<ChatId> = sqlx::query_scalar(
        "SELECT c.id FROM imported_rows r JOIN chats c ON c.id = r.target_id AND c.user_id = r.user_id
          WHERE r.user_id = $1 AND r.source = $2 AND r.kind = 'chat' AND r.source_id = $3",
    )
    .bind(owner)
    .bind(conversation.source.as_str())
    .bind(&conversation.source_id)
    .fetch_optional(&mut *conn)
    .await?;
    if mapped.is_some() || conversation.source != Source::Sambung {
        return Ok(mapped);
    }
    // Our own export read back into the account it came from: the chat itself.
    let Ok(id) = conversation.source_id.parse::<uuid::Uuid>() else {
        return Ok(None);
    };
    Ok(
        sqlx::query_scalar("SELECT id FROM chats WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(owner)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Write `conversation` as a chat of `owner`, unless it was imported before; `files[i]` (the
/// owner's files, kept by the caller beforehand like uploads) are attached to its message `i`.
/// What could not be kept is added to `notes`.
pub async fn import_conversation(
    conn: &mut PgConnection,
    owner: UserId,
    conversation: &Conversation,
    files: &[Vec<FileId>],
    notes: &mut Vec<Note>,
) -> Result<Imported> {
    if let Some(chat) = imported_before(conn, owner, conversation).await? {
        return Ok(Imported::AlreadyThere { chat });
    }
    let mut note = |item: Option<&str>, kind| {
        notes.push(Note {
            chat: Some(conversation.title.clone()),
            item: item.map(str::to_owned),
            kind,
        })
    };
    // Our export keeps its ids where they are free (links to the chat keep working). An id
    // another import is writing right now (two people importing the same export at once) is
    // not free either: which one claims it is decided by a lock on the id, taken without
    // waiting, since its rows are not to be seen until that import commits (waiting for them
    // held this import, then failed it whole on the duplicate).
    let own_id = match conversation.source {
        Source::Sambung => conversation.source_id.parse::<uuid::Uuid>().ok(),
        _ => None,
    };
    let claimed: bool = match own_id {
        Some(id) => {
            sqlx::query_scalar(
                "SELECT pg_try_advisory_xact_lock(hashtextextended('chat ' || $1::text, 0))",
            )
            .bind(id)
            .fetch_one(&mut *conn)
            .await?
        }
        None => false,
    };
    // Looked for in a statement of its own, after the claim: its snapshot sees a chat that
    // an import which held the claim committed meanwhile.
    let free: bool = match own_id.filter(|_| claimed) {
        Some(id) => {
            sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM chats WHERE id = $1)")
                .bind(id)
                .fetch_one(&mut *conn)
                .await?
        }
        None => false,
    };
    let chat = match own_id.filter(|_| free) {
        Some(id) => ChatId(id),
        None => ChatId::new(),
    };
    let folder = match &conversation.folder {
        Some(path) => Some(folder_path(conn, owner, path).await?),
        None => None,
    };
    let mut settings = conversation.settings.clone();
    // jsonb holds no NUL character: such settings are dropped rather than fail the file.
    if crate::models::check_generation_settings(&settings, "systemPrompt").is_err()
        || settings.to_string().contains("\\u0000")
    {
        note(None, NoteKind::SettingsDropped);
        settings = serde_json::json!({});
    }
    let title = clean_text(&conversation.title, MAX_TITLE_CHARS * 4);
    let title: String = title.trim().chars().take(MAX_TITLE_CHARS).collect();
    let model = clean_text(conversation.model.as_deref().unwrap_or("imported"), 800);
    let model: String = model.trim().chars().take(200).collect();
    let provider: String = clean_text(&conversation.provider, 400)
        .trim()
        .chars()
        .take(100)
        .collect();
    sqlx::query(
        "INSERT INTO chats (id, user_id, folder_id, title, model, provider, settings, created_at, updated_at, pinned_at, archived_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $10 THEN $9 END, CASE WHEN $11 THEN $9 END)",
    )
    .bind(chat)
    .bind(owner)
    .bind(folder)
    .bind(if title.is_empty() { "Imported chat" } else { &title })
    .bind(if model.is_empty() { "imported" } else { &model })
    .bind(if provider.is_empty() { "imported" } else { &provider })
    .bind(settings)
    .bind(conversation.created_at)
    .bind(conversation.updated_at)
    .bind(conversation.pinned)
    .bind(conversation.archived)
    .execute(&mut *conn)
    .await?;

    // The messages' own ids too, when every one of them is free.
    let own: Option<Vec<uuid::Uuid>> = conversation
        .messages
        .iter()
        .map(|m| m.source_id.parse::<uuid::Uuid>().ok())
        .collect::<Option<_>>()
        .filter(|_| free);
    let free_messages = match &own {
        Some(ids) => {
            sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM messages WHERE id = ANY($1))")
                .bind(ids)
                .fetch_one(&mut *conn)
                .await?
        }
        None => false,
    };
    let ids: Vec<MessageId> = match own.filter(|_| free_messages) {
        Some(ids) => ids.into_iter().map(MessageId).collect(),
        None => conversation
            .messages
            .iter()
            .map(|_| MessageId::new())
            .collect(),
    };
    let mut parents = Vec::with_capacity(ids.len());
    let mut roles = Vec::with_capacity(ids.len());
    let mut contents = Vec::with_capacity(ids.len());
    let mut metadata = Vec::with_capacity(ids.len());
    let mut times: Vec<DateTime<Utc>> = Vec::with_capacity(ids.len());
    let mut off_path = Vec::with_capacity(ids.len());
    for m in &conversation.messages {
        parents.push(m.parent.map(|p| ids[p].0));
        roles.push(m.role.as_str());
        let mut content = clean_text(&m.content, usize::MAX);
        if content.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES;
            while !content.is_char_boundary(cut) {
                cut -= 1;
            }
            content.truncate(cut);
            note(Some(&m.source_id), NoteKind::MessageCut);
        }
        contents.push(content);
        metadata.push(message_metadata(conversation, m));
        times.push(m.created_at);
        off_path.push(!m.on_path);
    }
    let raw_ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
    sqlx::query(
        "INSERT INTO messages (id, chat_id, parent_id, role, content, metadata, created_at, off_path)
         SELECT m.id, $2, m.parent_id, m.role, m.content, m.metadata, m.created_at, m.off_path
           FROM unnest($1::uuid[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[], $8::bool[])
             WITH ORDINALITY AS m(id, parent_id, role, content, metadata, created_at, off_path, n)
          ORDER BY m.n",
    )
    .bind(&raw_ids)
    .bind(chat)
    .bind(&parents)
    .bind(&roles)
    .bind(&contents)
    .bind(&metadata)
    .bind(&times)
    .bind(&off_path)
    .execute(&mut *conn)
    .await?;

    for (message, message_files) in ids.iter().zip(files) {
        for (position, file) in message_files.iter().enumerate() {
            attach_file(conn, owner, *message, *file, position as i16).await?;
        }
    }
    for tag in conversation.tags.iter().take(20) {
        let Some(tag) = tag_named(conn, owner, tag).await? else {
            continue;
        };
        sqlx::query(
            "INSERT INTO chat_tags (chat_id, tag_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(chat)
        .bind(tag)
        .execute(&mut *conn)
        .await?;
    }
    remember(
        conn,
        owner,
        conversation.source.as_str(),
        "chat",
        &conversation.source_id,
        chat.0,
    )
    .await?;
    Ok(Imported::Added {
        chat,
        messages: ids.len(),
    })
}

/// Keep that `source_id` of `source` became `target` for `owner`.
pub async fn remember(
    conn: &mut PgConnection,
    owner: UserId,
    source: &str,
    kind: &str,
    source_id: &str,
    target: uuid::Uuid,
) -> Result<()> {
    let source_id: String = source_id.chars().take(512).collect();
    sqlx::query(
        "INSERT INTO imported_rows (user_id, source, kind, source_id, target_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, source, kind, source_id) DO UPDATE SET target_id = excluded.target_id",
    )
    .bind(owner)
    .bind(source)
    .bind(kind)
    .bind(source_id)
    .bind(target)
    .execute(conn)
    .await?;
    Ok(())
}

/// Attach the owner's `file` (another's never) to `message`.
async fn attach_file(
    conn: &mut PgConnection,
    owner: UserId,
    message: MessageId,
    file: FileId,
    position: i16,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO message_files (message_id, file_id, position)
         SELECT $1, f.id, $3 FROM files f WHERE f.id = $2 AND f.user_id = $4
         ON CONFLICT DO NOTHING",
    )
    .bind(message)
    .bind(file)
    .bind(position)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a message keeps beside its text: ours as exported; others' their model and where
/// they came from.
fn message_metadata(
    conversation: &Conversation,
    m: &sambung_transfer::Message,
) -> Option<serde_json::Value> {
    if let Some(metadata) = &m.metadata {
        // jsonb holds no NUL characters: such metadata is left out rather than fail the file.
        let text = metadata.to_string();
        return (!text.contains("\\u0000") && metadata.is_object()).then(|| metadata.clone());
    }
    let mut metadata = serde_json::json!({
        "import": {"source": conversation.source.as_str(), "id": clean_text(&m.source_id, 512)},
    });
    if let Some(model) = &m.model {
        metadata["model"] = clean_text(model, 200).into();
        metadata["status"] = "complete".into();
    }
    Some(metadata)
}

/// Text PostgreSQL can hold (no NUL), at most `max_bytes` of it.
pub(crate) fn clean_text(text: &str, max_bytes: usize) -> String {
    let mut clean: String = text.chars().filter(|c| *c != '\0').collect();
    if clean.len() > max_bytes {
        let mut cut = max_bytes;
        while !clean.is_char_boundary(cut) {
            cut -= 1;
        }
        clean.truncate(cut);
    }
    clean
}

/// The owner's personal folder at `path` (`A / B`), made where missing.
async fn folder_path(conn: &mut PgConnection, owner: UserId, path: &str) -> Result<FolderId> {
    let mut parent: Option<FolderId> = None;
    for name in path
        .split(" / ")
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .take(8)
    {
        let name: String = clean_text(name, 400).trim().chars().take(100).collect();
        if name.is_empty() {
            continue;
        }
        let found: Option<FolderId> = sqlx::query_scalar(
            "SELECT id FROM folders WHERE user_id = $1 AND team_id IS NULL AND name = $2
               AND parent_id IS NOT DISTINCT FROM $3 ORDER BY created_at LIMIT 1",
        )
        .bind(owner)
        .bind(&name)
        .bind(parent)
        .fetch_optional(&mut *conn)
        .await?;
        parent = Some(match found {
            Some(id) => id,
            None => sqlx::query_scalar(
                "INSERT INTO folders (user_id, name, parent_id) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(owner)
            .bind(&name)
            .bind(parent)
            .fetch_one(&mut *conn)
            .await?,
        });
    }
    parent.ok_or(DomainError::invalid("folder", "a folder needs a name"))
}

/// The owner's personal tag named `name`, made when missing.
async fn tag_named(conn: &mut PgConnection, owner: UserId, name: &str) -> Result<Option<TagId>> {
    let name: String = clean_text(name, 400).trim().chars().take(50).collect();
    if name.trim().is_empty() {
        return Ok(None);
    }
    let found: Option<TagId> = sqlx::query_scalar(
        "SELECT id FROM tags WHERE user_id = $1 AND team_id IS NULL AND name = $2 ORDER BY created_at LIMIT 1",
    )
    .bind(owner)
    .bind(&name)
    .fetch_optional(&mut *conn)
    .await?;
    match found {
        Some(id) => Ok(Some(id)),
        None => Ok(Some(
            sqlx::query_scalar("INSERT INTO tags (user_id, name) VALUES ($1, $2) RETURNING id")
                .bind(owner)
                .bind(&name)
                .fetch_one(&mut *conn)
                .await?,
        )),
    }
}
