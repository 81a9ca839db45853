//! Files (SPEC section 14): `POST /files` takes one in a multipart field, streamed to a
//! temporary file on disk while it is hashed, measured against the limit and scanned (never
//! held whole in memory), then identified by its bytes (`sambung-files`) and kept in
//! PostgreSQL (`sambung_db::files`). `GET /files/{id}` streams it back a megabyte at a time,
//! as an attachment (images inline) that the browser may neither sniff nor run.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use futures_util::{Stream, StreamExt};
use sambung_db::files::{self as db, File, NewFile};
use sambung_db::instance::MAX_FILE_BYTES;
use sambung_db::{FileId, UserId};
use sambung_files::{FileError, Kind, TextScan};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::SignedIn;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiPath;
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        // The upload reads its own limit (the instance's setting) as it streams.
        .layer(DefaultBodyLimit::max(MAX_FILE_BYTES as usize + (64 << 10)))
        .routes(routes!(download))
        .routes(routes!(thumbnail))
        .routes(routes!(storage))
}

/// A file as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileOut {
    pub id: Uuid,
    pub name: String,
    /// Decided by the file's bytes.
    pub media_type: String,
    pub size: i64,
    /// An image's size in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    /// Whether `/files/{id}/thumbnail` has a small PNG of it.
    pub has_thumbnail: bool,
    pub created_at: Timestamp,
}

impl From<File> for FileOut {
    fn from(f: File) -> Self {
        FileOut {
            id: f.id.0,
            name: f.name,
            media_type: f.media_type,
            size: f.size,
            width: f.width,
            height: f.height,
            has_thumbnail: f.has_thumbnail,
            created_at: f.created_at.into(),
        }
    }
}

/// How much of an upload is kept in memory to tell what it is.
const HEAD_BYTES: usize = 8 << 10;

fn refused(error: FileError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "FILE_REFUSED", error.to_string())
}

/// Keep a file (multipart field `file`): its type is decided by its bytes, and a claimed
/// type that disagrees refuses it; an image is opened within limits and thumbnailed; the
/// same bytes uploaded again by the same person answer with the file kept the first time.
#[utoipa::path(post, path = "/files", tag = "files",
    request_body(content_type = "multipart/form-data", description = "the file, in a field named `file`"),
    responses((status = 201, body = FileOut), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn upload(
    State(state): Shared,
    me: SignedIn,
    mut multipart: Multipart,
) -> ApiResult<(StatusCode, Json<FileOut>)> {
    let limits = state.instance_settings().await?.files;
    let malformed = |e: axum::extract::multipart::MultipartError| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(limits.max_file_bytes),
        _ => ApiError::invalid("file", format!("the upload is not readable multipart: {e}")),
    };
    let field = loop {
        match multipart.next_field().await.map_err(malformed)? {
            Some(field) if field.name() == Some("file") => break field,
            Some(_) => continue,
            None => {
                return Err(ApiError::invalid(
                    "file",
                    "send the file in a multipart field named file",
                ))
            }
        }
    };
    let name = field.file_name().unwrap_or("file").to_owned();
    let claimed = field.content_type().map(str::to_owned);
    let file = keep(
        &state,
        me.user.id,
        &name,
        claimed.as_deref(),
        field.map(|piece| piece.map_err(malformed)),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(file.into())))
}

/// Keep a file for `owner` from its `pieces` as they arrive: streamed to a temporary file on
/// disk while hashed, measured against the instance's limit (refused as soon as it passes
/// it) and scanned for text; then identified by its bytes (the `claimed` type must agree), an
/// image opened within limits on a blocking thread, and stored, a megabyte a row. The one
/// way a file comes in: uploads and the AI SDK's file parts alike.
pub async fn keep(
    state: &AppState,
    owner: UserId,
    name: &str,
    claimed: Option<&str>,
    pieces: impl Stream<Item = ApiResult<Bytes>>,
) -> ApiResult<File> {
    let limits = state.instance_settings().await?.files;
    let mut prepared = prepare(state, &limits, name, claimed, pieces).await?;
    Ok(db::store_file(
        &state.pool,
        owner,
        prepared.file.new_file(),
        limits.user_storage_bytes,
        &mut prepared.spool,
    )
    .await?)
}

/// A file read, checked and identified, its bytes spooled on disk: ready to be stored.
pub struct Prepared {
    pub file: Checked,
    /// The bytes, from their start.
    pub spool: tokio::fs::File,
}

/// What a prepared file was found to be.
pub struct Checked {
    name: String,
    media_type: &'static str,
    size: i64,
    sha256: [u8; 32],
    image: Option<sambung_files::ImageInfo>,
    text: Option<String>,
}

impl Checked {
    pub fn new_file(&self) -> NewFile<'_> {
        let side = |v: u32| i32::try_from(v).ok();
        NewFile {
            name: &self.name,
            media_type: self.media_type,
            size: self.size,
            sha256: self.sha256,
            width: self.image.as_ref().and_then(|i| side(i.width)),
            height: self.image.as_ref().and_then(|i| side(i.height)),
            thumbnail: self.image.as_ref().map(|i| i.thumbnail.clone()),
            text: self.text.clone(),
        }
    }
}

/// The first half of [`keep`]: everything but the storing.
pub async fn prepare(
    state: &AppState,
    limits: &sambung_db::instance::FileLimits,
    name: &str,
    claimed: Option<&str>,
    pieces: impl Stream<Item = ApiResult<Bytes>>,
) -> ApiResult<Prepared> {
    let name = db::clean_name(name);
    let spooled = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(disk_error)?;
    let mut spool = tokio::fs::File::from_std(spooled);
    let mut hash = Sha256::new();
    let mut text = TextScan::default();
    let mut head = Vec::with_capacity(HEAD_BYTES);
    let mut size = 0_i64;
    let mut pieces = std::pin::pin!(pieces);
    while let Some(piece) = pieces.next().await {
        let piece = piece?;
        size += piece.len() as i64;
        if size > limits.max_file_bytes {
            return Err(too_large(limits.max_file_bytes));
        }
        hash.update(&piece);
        text.feed(&piece);
        let room = HEAD_BYTES.saturating_sub(head.len()).min(piece.len());
        head.extend_from_slice(&piece[..room]);
        spool.write_all(&piece).await.map_err(disk_error)?;
    }
    if size == 0 {
        return Err(ApiError::invalid("file", "the file is empty"));
    }
    let kind = sambung_files::identify(&name, &head, text.is_text(), claimed).map_err(refused)?;
    spool.flush().await.map_err(disk_error)?;
    let image = if kind.is_image() {
        spool.rewind().await.map_err(disk_error)?;
        let copy = spool
            .try_clone()
            .await
            .map_err(disk_error)?
            .into_std()
            .await;
        let image_name = name.clone();
        let inspected = tokio::task::spawn_blocking(move || {
            sambung_files::inspect_image(&image_name, kind, std::io::BufReader::new(copy))
        })
        .await
        .map_err(|_| ApiError::internal())?;
        Some(inspected.map_err(refused)?)
    } else {
        None
    };
    let text = match kind {
        Kind::Pdf => read_pdf(state, &mut spool, &name).await?,
        _ => None,
    };
    spool.rewind().await.map_err(disk_error)?;
    Ok(Prepared {
        file: Checked {
            name,
            media_type: kind.media_type(),
            size,
            sha256: hash.finalize().into(),
            image,
            text,
        },
        spool,
    })
}

/// How long a PDF's text may take to read, and how many are read at once: a hostile PDF
/// can keep a reader busy, never the server (the upload goes on without its text).
const PDF_READ_TIME: std::time::Duration = std::time::Duration::from_secs(20);
static PDF_READERS: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(2)));
/// The most of a reader's output taken: the text it may print, and its last marker.
const PDF_TEXT_OUTPUT_BYTES: u64 = sambung_files::MAX_PDF_TEXT_BYTES as u64 + 1024;

/// The text of the PDF spooled in `spool`, read by `sambung read-pdf` in a process of its
/// own (limited in memory, killed after [`PDF_READ_TIME`]): none when it has none, cannot
/// be read within its limits, or there is no reader.
async fn read_pdf(
    state: &AppState,
    spool: &mut tokio::fs::File,
    name: &str,
) -> ApiResult<Option<String>> {
    let Some(reader) = &state.pdf_reader else {
        return Ok(None);
    };
    let deadline = tokio::time::Instant::now() + PDF_READ_TIME;
    let Ok(Ok(_turn)) =
        tokio::time::timeout_at(deadline, PDF_READERS.clone().acquire_owned()).await
    else {
        tracing::warn!(
            name,
            "every PDF reader stayed busy: a PDF is kept without its text"
        );
        return Ok(None);
    };
    spool.rewind().await.map_err(disk_error)?;
    let input = spool
        .try_clone()
        .await
        .map_err(disk_error)?
        .into_std()
        .await;
    let spawned = tokio::process::Command::new(reader)
        .arg("read-pdf")
        .env_clear()
        .current_dir("/")
        .stdin(input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            tracing::error!(error = %error, reader = %reader.display(), "cannot start the PDF reader");
            return Ok(None);
        }
    };
    let mut stdout = child.stdout.take().ok_or_else(ApiError::internal)?;
    let reading = async move {
        let mut text = Vec::new();
        (&mut stdout)
            .take(PDF_TEXT_OUTPUT_BYTES)
            .read_to_end(&mut text)
            .await?;
        // A reader with more to say than it may is stopped by its closed pipe.
        drop(stdout);
        let status = child.wait().await?;
        std::io::Result::Ok((status, text))
    };
    match tokio::time::timeout_at(deadline, reading).await {
        Ok(Ok((status, text))) if status.success() => {
            let text = String::from_utf8_lossy(&text).into_owned();
            Ok((!text.is_empty()).then_some(text))
        }
        Ok(Ok((status, _))) => {
            tracing::warn!(name, %status, "a PDF's text could not be read within the reader's limits: kept without it");
            Ok(None)
        }
        Ok(Err(error)) => {
            tracing::warn!(name, error = %error, "the PDF reader failed: kept without its text");
            Ok(None)
        }
        Err(_) => {
            // The child went with the future it was moved into: kill_on_drop ended it.
            tracing::warn!(name, "a PDF's text took too long to read: kept without it");
            Ok(None)
        }
    }
}

fn too_large(max: i64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "FILE_TOO_LARGE",
        format!("a file may be at most {max} bytes"),
    )
}

fn disk_error(error: std::io::Error) -> ApiError {
    tracing::error!(error = %error, "cannot spool an upload to a temporary file");
    ApiError::internal()
}

/// A file whoever may read one of the chats that carry it may read (and its owner).
#[utoipa::path(get, path = "/files/{id}", tag = "files", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the file's bytes"), (status = 404, body = ErrorBody)))]
async fn download(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let file = db::readable_file(&state.pool, me.user.id, FileId(id)).await?;
    Ok(file_response(state.pool.clone(), file))
}

/// A small PNG of an image file.
#[utoipa::path(get, path = "/files/{id}/thumbnail", tag = "files", params(("id" = Uuid, Path)),
    responses((status = 200, description = "a PNG", content_type = "image/png"), (status = 404, body = ErrorBody)))]
async fn thumbnail(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let file = db::readable_file(&state.pool, me.user.id, FileId(id)).await?;
    thumbnail_response(&state.pool, &file).await
}

/// An image's thumbnail, a PNG shown inline.
pub async fn thumbnail_response(pool: &PgPool, file: &File) -> ApiResult<Response> {
    let png = db::thumbnail(pool, file.id).await?;
    let mut response = Response::new(Body::from(png));
    guard_headers(
        &mut response,
        "image/png",
        true,
        &format!("{}.png", file.name),
    );
    Ok(response)
}

/// The bytes of `file`, streamed a chunk at a time from the database.
pub fn file_response(pool: PgPool, file: File) -> Response {
    let id = file.id;
    let chunks = futures_util::stream::iter(0..file.chunks()).then(move |seq| {
        let pool = pool.clone();
        async move {
            let seq = i32::try_from(seq).map_err(|_| std::io::Error::other("too many chunks"))?;
            db::file_chunk(&pool, id, seq)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    let media_type =
        match file.media_type.starts_with("text/") || file.media_type == "application/json" {
            true => format!("{}; charset=utf-8", file.media_type),
            false => file.media_type.clone(),
        };
    guard_headers(&mut response, &media_type, file.is_image(), &file.name);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
    response
}

/// The headers every file answer carries: its type (never sniffed), shown in the page only
/// when it is an image (else saved), a policy that lets nothing in it run, and its name as
/// RFC 6266 writes it.
fn guard_headers(response: &mut Response, media_type: &str, inline: bool, name: &str) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(media_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self' data:"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    if let Ok(value) = HeaderValue::from_str(&content_disposition(inline, name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266, RFC 8187).
fn content_disposition(inline: bool, name: &str) -> String {
    const ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let ascii: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    format!(
        "{}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        percent_encoding::utf8_percent_encode(name, ATTR)
    )
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageOut {
    /// Bytes the user's files take.
    pub used: i64,
    /// Bytes they may keep (`null`: no limit).
    pub allowed: Option<i64>,
    /// The largest file, and the most files a message may carry.
    pub max_file_bytes: i64,
    pub max_files_per_message: i64,
}

/// What the user's files take, and what they may keep.
#[utoipa::path(get, path = "/me/storage", tag = "files",
    responses((status = 200, body = StorageOut)))]
async fn storage(State(state): Shared, me: SignedIn) -> ApiResult<Json<StorageOut>> {
    let limits = state.instance_settings().await?.files;
    Ok(Json(StorageOut {
        used: db::storage_used(&state.pool, me.user.id).await?,
        allowed: limits.user_storage_bytes,
        max_file_bytes: limits.max_file_bytes,
        max_files_per_message: limits.max_files_per_message,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_in_headers_are_quoted_and_encoded() {
        assert_eq!(
            content_disposition(false, "laporan akhir.pdf"),
            "attachment; filename=\"laporan akhir.pdf\"; filename*=UTF-8''laporan%20akhir.pdf"
        );
        let tricky = content_disposition(true, "a\"b\\c é.png");
        assert_eq!(
            tricky,
            "inline; filename=\"a_b_c _.png\"; filename*=UTF-8''a%22b%5Cc%20%C3%A9.png"
        );
        assert!(HeaderValue::from_str(&tricky).is_ok());
    }
}
