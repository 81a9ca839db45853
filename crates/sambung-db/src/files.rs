//! Files people attach to messages (SPEC section 14): their bytes stored a megabyte a row
//! (`file_chunks`), one copy per owner of the same bytes (SHA-256), counted against the
//! owner's storage in the insert's own transaction, and read by their owner and by whoever may
//! read a chat one of whose messages carries them. What a file is, and whether it is safe, is
//! decided before it reaches this module (the server sniffs and decodes it).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{DomainError, Result};
use crate::ids::{FileId, MessageId, UserId};

/// The bytes of one `file_chunks` row.
pub const CHUNK_BYTES: usize = 1 << 20;

/// The media types a file may have (the schema's CHECK repeats them).
pub const MEDIA_TYPES: [&str; 9] = [
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
];

/// A file as its readers see it (never its bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct File {
    pub id: FileId,
    pub user_id: UserId,
    pub media_type: String,
    pub size: i64,
    pub name: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub has_thumbnail: bool,
    pub created_at: DateTime<Utc>,
}

impl File {
    pub fn is_image(&self) -> bool {
        self.media_type.starts_with("image/")
    }

    /// How many `file_chunks` rows hold its bytes.
    pub fn chunks(&self) -> i64 {
        (self.size + CHUNK_BYTES as i64 - 1) / CHUNK_BYTES as i64
    }
}

const FILE_COLUMNS: &str = "f.id, f.user_id, f.media_type, f.size, f.name, f.width, f.height, \
     f.thumbnail IS NOT NULL AS has_thumbnail, f.created_at";

/// A file to store: what the server found its bytes to be.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    pub name: &'a str,
    pub media_type: &'static str,
    pub size: i64,
    pub sha256: [u8; 32],
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub thumbnail: Option<Vec<u8>>,
    /// A PDF's text, page by page (for models that read no PDFs).
    pub text: Option<String>,
}

/// A file name fit to keep and to show: its last path segment, control characters and the
/// characters headers and file systems trip on replaced, at most 255 characters (the
/// extension kept), never empty.
pub fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| match c {
            c if c.is_control() => '_',
            '"' | '<' | '>' | ':' | '|' | '?' | '*' | ';' => '_',
            c => c,
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let cleaned = if cleaned.is_empty() { "file" } else { cleaned };
    if cleaned.chars().count() <= 255 {
        return cleaned.to_owned();
    }
    let (stem, extension) = match cleaned.rsplit_once('.') {
        Some((stem, ext)) if ext.chars().count() <= 16 => (stem, Some(ext)),
        _ => (cleaned, None),
    };
    let room = 255 - extension.map_or(0, |e| e.chars().count() + 1);
    let stem: String = stem.chars().take(room).collect();
    match extension {
        Some(ext) => format!("{stem}.{ext}"),
        None => stem,
    }
}

/// Store `new` for `owner`, its bytes read from `bytes` (exactly `new.size` of them), unless
/// the owner has these bytes already: then that file is the answer, and nothing is written.
/// The owner's storage (`storage_bytes`, none: no limit) is checked under a lock on the
/// owner, so uploads at once cannot pass it together.
///
/// `db`: the pool, or a connection of the caller's (an import keeps its files on a connection
/// it holds beside its transaction, so that it never waits for a second one from the pool).
pub async fn store_file<'c>(
    db: impl sqlx::Acquire<'c, Database = sqlx::Postgres>,
    owner: UserId,
    new: NewFile<'_>,
    storage_bytes: Option<i64>,
    bytes: &mut (impl AsyncRead + Unpin),
) -> Result<File> {
    let name = clean_name(new.name);
    if !MEDIA_TYPES.contains(&new.media_type) {
        return Err(DomainError::invalid("file", "not a type that can be kept"));
    }
    let mut tx = db.begin().await?;
    crate::auth::lock_user(&mut tx, owner).await?;
    let same = sqlx::query_as::<_, File>(&format!(
        "SELECT {FILE_COLUMNS} FROM files f WHERE f.user_id = $1 AND f.sha256 = $2"
    ))
    .bind(owner)
    .bind(&new.sha256[..])
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(same) = same {
        tx.commit().await?;
        return Ok(same);
    }
    if let Some(allowed) = storage_bytes {
        let used = sqlx::query_scalar!(
            r#"SELECT coalesce(sum(size), 0)::bigint AS "used!" FROM files WHERE user_id = $1"#,
            owner as UserId
        )
        .fetch_one(&mut *tx)
        .await?;
        if used + new.size > allowed {
            return Err(DomainError::StorageFull { allowed, used });
        }
    }
    let id = FileId::new();
    sqlx::query!(
        "INSERT INTO files (id, user_id, sha256, media_type, size, name, width, height, thumbnail, text)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        id as FileId,
        owner as UserId,
        &new.sha256[..],
        new.media_type,
        new.size,
        name,
        new.width,
        new.height,
        new.thumbnail,
        new.text,
    )
    .execute(&mut *tx)
    .await?;
    let mut chunk = vec![0; CHUNK_BYTES];
    let mut written = 0_i64;
    for seq in 0.. {
        let filled = fill(bytes, &mut chunk).await?;
        if filled == 0 {
            break;
        }
        written += filled as i64;
        sqlx::query!(
            "INSERT INTO file_chunks (file_id, seq, data) VALUES ($1, $2, $3)",
            id as FileId,
            seq,
            &chunk[..filled],
        )
        .execute(&mut *tx)
        .await?;
    }
    if written != new.size {
        return Err(DomainError::invalid(
            "file",
            "its bytes changed while it was kept",
        ));
    }
    let stored = sqlx::query_as::<_, File>(&format!(
        "SELECT {FILE_COLUMNS} FROM files f WHERE f.id = $1"
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(stored)
}

/// Read into `buffer` until it is full or `bytes` ends; how much was read.
async fn fill(bytes: &mut (impl AsyncRead + Unpin), buffer: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let read = bytes
            .read(&mut buffer[filled..])
            .await
            .map_err(|e| DomainError::invalid("file", format!("cannot read it: {e}")))?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    Ok(filled)
}

/// Who may read file `$1` as user `$2`: its owner, and the readers of a chat one of whose
/// messages carries it.
const READABLE: &str = "(f.user_id = $2 OR EXISTS (
       SELECT 1 FROM message_files mf
         JOIN messages m ON m.id = mf.message_id,
              sambung_chat_reader(m.chat_id, $2) p
        WHERE mf.file_id = f.id))";

/// A file `actor` may read; another's file is not found.
pub async fn readable_file(pool: &PgPool, actor: UserId, file: FileId) -> Result<File> {
    sqlx::query_as::<_, File>(&format!(
        "SELECT {FILE_COLUMNS} FROM files f WHERE f.id = $1 AND {READABLE}"
    ))
    .bind(file)
    .bind(actor)
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("file"))
}

/// A file a message of the public chat shared as `token` carries, for anyone with the link.
pub async fn shared_file(pool: &PgPool, token: &str, file: FileId) -> Result<File> {
    sqlx::query_as::<_, File>(&format!(
        "SELECT {FILE_COLUMNS} FROM files f WHERE f.id = $1 AND EXISTS (
           SELECT 1 FROM message_files mf
             JOIN messages m ON m.id = mf.message_id AND NOT m.off_path
             JOIN chats c ON c.id = m.chat_id AND c.is_public AND c.public_token = $2
            WHERE mf.file_id = f.id)"
    ))
    .bind(file)
    .bind(token)
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("file"))
}

/// The `seq`th megabyte of a file the caller may read (checked by the caller first).
pub async fn file_chunk(pool: &PgPool, file: FileId, seq: i32) -> Result<Vec<u8>> {
    sqlx::query_scalar!(
        "SELECT data FROM file_chunks WHERE file_id = $1 AND seq = $2",
        file as FileId,
        seq
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("file"))
}

/// A file's whole bytes (for a provider request: bounded by the per-file limit).
pub async fn file_bytes(pool: &PgPool, file: FileId) -> Result<Vec<u8>> {
    let chunks = sqlx::query_scalar!(
        "SELECT data FROM file_chunks WHERE file_id = $1 ORDER BY seq",
        file as FileId
    )
    .fetch_all(pool)
    .await?;
    Ok(chunks.concat())
}

/// A PDF's text as it was read when it was kept, when it had one.
pub async fn pdf_text(pool: &PgPool, file: FileId) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar!("SELECT text FROM files WHERE id = $1", file as FileId)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}

/// An image's thumbnail (a PNG), when it has one.
pub async fn thumbnail(pool: &PgPool, file: FileId) -> Result<Vec<u8>> {
    sqlx::query_scalar!("SELECT thumbnail FROM files WHERE id = $1", file as FileId)
        .fetch_optional(pool)
        .await?
        .flatten()
        .ok_or(DomainError::not_found("thumbnail"))
}

/// Attach `files` (the actor's own, each once) to `message`, in their order. How many a
/// message may carry is the instance's setting, checked by the caller.
pub async fn attach(
    conn: &mut sqlx::PgConnection,
    actor: UserId,
    message: MessageId,
    files: &[FileId],
) -> Result<()> {
    let ids: Vec<uuid::Uuid> = files.iter().map(|f| f.0).collect();
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    if unique.len() != ids.len() {
        return Err(DomainError::invalid("files", "a file is named twice"));
    }
    let done = sqlx::query!(
        "INSERT INTO message_files (message_id, file_id, position)
         SELECT $1, f.id, a.position - 1
           FROM unnest($2::uuid[]) WITH ORDINALITY AS a(id, position)
           JOIN files f ON f.id = a.id AND f.user_id = $3",
        message as MessageId,
        &ids,
        actor as UserId,
    )
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != ids.len() as u64 {
        // Someone else's file, or none: not found, whichever it was.
        return Err(DomainError::not_found("file"));
    }
    Ok(())
}

/// `files`, in their order, each the actor's own (another's, or none, is not found).
pub async fn own_files(pool: &PgPool, actor: UserId, files: &[FileId]) -> Result<Vec<File>> {
    let ids: Vec<uuid::Uuid> = files.iter().map(|f| f.0).collect();
    let found = sqlx::query_as::<_, File>(&format!(
        "SELECT {FILE_COLUMNS} FROM unnest($1::uuid[]) WITH ORDINALITY AS a(id, position)
           JOIN files f ON f.id = a.id AND f.user_id = $2
          ORDER BY a.position"
    ))
    .bind(&ids)
    .bind(actor)
    .fetch_all(pool)
    .await?;
    if found.len() != ids.len() {
        return Err(DomainError::not_found("file"));
    }
    Ok(found)
}

/// Copy the files `from` carries onto `to` (an edited question keeps its files).
pub async fn copy_attached(
    conn: &mut sqlx::PgConnection,
    from: MessageId,
    to: MessageId,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO message_files (message_id, file_id, position)
         SELECT $2, file_id, position FROM message_files WHERE message_id = $1",
        from as MessageId,
        to as MessageId,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The files each of `messages` carries, in their order (no statement for no messages).
pub async fn files_of(pool: &PgPool, messages: &[MessageId]) -> Result<Vec<(MessageId, File)>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<uuid::Uuid> = messages.iter().map(|m| m.0).collect();
    #[derive(sqlx::FromRow)]
    struct Row {
        message_id: MessageId,
        #[sqlx(flatten)]
        file: File,
    }
    let rows = sqlx::query_as::<_, Row>(&format!(
        "SELECT mf.message_id, {FILE_COLUMNS}
           FROM message_files mf JOIN files f ON f.id = mf.file_id
          WHERE mf.message_id = ANY($1)
          ORDER BY mf.message_id, mf.position"
    ))
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.message_id, r.file)).collect())
}

/// The bytes `user`'s files take.
pub async fn storage_used(pool: &PgPool, user: UserId) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT coalesce(sum(size), 0)::bigint AS "used!" FROM files WHERE user_id = $1"#,
        user as UserId
    )
    .fetch_one(pool)
    .await?)
}

/// Delete uploads no message carries that are older than `age` (uploaded, never sent). One
/// that another transaction holds a lock on is being given to a message (an import's, not
/// yet committed): it is skipped, neither waited for nor deleted from under that message.
pub async fn sweep_unattached(pool: &PgPool, age: Duration) -> Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM files f WHERE f.id IN (
            SELECT l.id FROM files l WHERE l.created_at < now() - make_interval(secs => $1)
               AND NOT EXISTS (SELECT 1 FROM message_files mf WHERE mf.file_id = l.id)
               FOR UPDATE SKIP LOCKED)",
        age.num_seconds() as f64
    )
    .execute(pool)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_for_headers_and_disks() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\ana\\foto.png"), "foto.png");
        assert_eq!(clean_name("a\"b\r\nc.txt"), "a_b__c.txt");
        assert_eq!(clean_name("..."), "file");
        assert_eq!(clean_name(""), "file");
        assert_eq!(clean_name(".hidden"), "hidden");
        let long = format!("{}.pdf", "x".repeat(400));
        let cleaned = clean_name(&long);
        assert_eq!(cleaned.chars().count(), 255);
        assert!(cleaned.ends_with(".pdf"));
        assert_eq!(clean_name("résumé – 2026.pdf"), "résumé – 2026.pdf");
    }
}
