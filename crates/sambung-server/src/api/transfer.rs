//! Data in and out (SPEC section 15). Out: a chat as Markdown or JSON, an account's (or a
//! team's) chats, prompts, models and files as a zip written while it streams to the browser,
//! one chat in memory at a time. In: an export of ChatGPT, Claude, Open WebUI or ours,
//! spooled to disk within a size limit, read as a stream on a blocking thread
//! (`sambung-transfer`) and written in one transaction (`sambung_db::imports`): all of a
//! file or none of it, bounded in time, two imports at once on the whole server.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{AsyncWriteExt, StreamExt};
use sambung_db::exports::{self, Whose};
use sambung_db::imports::{self, FileToKeep, Imported};
use sambung_db::{ChatId, FileId, TeamId, UserId};
use sambung_transfer::archive::{self, Archive};
use sambung_transfer::{markdown, ours, Conversation, FileBytes, Limits, Note, NoteKind};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{mpsc, Semaphore};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::files::prepare;
use crate::auth::SignedIn;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiPath;
use crate::state::AppState;

type Shared = State<Arc<AppState>>;

/// The largest file an import takes (a 200 MB ChatGPT export fits; a 1 GB one is refused
/// before it is all read).
pub const MAX_IMPORT_BYTES: u64 = 256 << 20;
/// The most a zip's conversations may unpack to.
const MAX_UNPACKED_BYTES: u64 = 512 << 20;
/// How long one import may take, all told.
const IMPORT_TIME: Duration = Duration::from_secs(600);
/// Imports at once on the whole server (each reads on a thread of its own).
static IMPORTS: Semaphore = Semaphore::const_new(2);
/// Chats read per page of an account's export.
const EXPORT_PAGE: i64 = 50;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(export_chat))
        .routes(routes!(export_account))
        .routes(routes!(export_team))
        .routes(routes!(export_prompts))
        .routes(routes!(import_prompts))
        .routes(routes!(import))
        // The import reads its own limit as it streams.
        .layer(DefaultBodyLimit::max(
            MAX_IMPORT_BYTES as usize + (64 << 10),
        ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// `md` (to read) or `json` (everything, to import again); `md` when left out.
    format: Option<String>,
}

/// A chat the caller may read, as Markdown (its shown branch) or as our JSON (its whole tree,
/// metadata, folder, tags and settings), as a download.
#[utoipa::path(get, path = "/chats/{id}/export", tag = "transfer", params(("id" = Uuid, Path), ExportQuery),
    responses((status = 200, description = "the chat as a file"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn export_chat(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    let (chat, _) = exports::chat_export(&state.pool, me.user.id, ChatId(id)).await?;
    let stem = file_stem(&chat.title);
    let (body, media_type, extension) = match query.format.as_deref().unwrap_or("md") {
        "md" => (
            markdown::chat(&chat, |file| format!("/api/v1/files/{}", file.id)),
            "text/markdown; charset=utf-8",
            "md",
        ),
        "json" => (
            serde_json::to_string_pretty(&chat).map_err(|_| ApiError::internal())?,
            "application/json",
            "json",
        ),
        _ => return Err(ApiError::invalid("format", "md or json")),
    };
    Ok(download(
        body.into(),
        media_type,
        &format!("{stem}.{extension}"),
    ))
}

/// A response the browser saves as `name`.
fn download(body: Body, media_type: &'static str, name: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A file name from a title: its words, at most 60 characters.
fn file_stem(title: &str) -> String {
    let stem: String = title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .take(60)
        .collect();
    if stem.is_empty() {
        "chat".to_owned()
    } else {
        stem
    }
}

/// Everything of the caller's as a zip, written while it streams: `chats.json` (our JSON of
/// every personal chat), `chats/*.md`, `files/`, `prompts.json` (upstream's prompt format),
/// `models.json` (without keys), `folders.json`, `tags.json` and `manifest.json`.
#[utoipa::path(post, path = "/me/export", tag = "transfer",
    responses((status = 200, description = "a zip", content_type = "application/zip"), (status = 401, body = ErrorBody)))]
async fn export_account(State(state): Shared, me: SignedIn) -> ApiResult<Response> {
    Ok(zip_response(
        state,
        me.user.id,
        Whose::User(me.user.id),
        &me.user.email,
    ))
}

/// A team's chats as a zip, for the team's admins.
#[utoipa::path(post, path = "/teams/{id}/export", tag = "transfer", params(("id" = Uuid, Path)),
    responses((status = 200, description = "a zip", content_type = "application/zip"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn export_team(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let team = TeamId(id);
    let mut conn = state
        .pool
        .acquire()
        .await
        .map_err(sambung_db::DomainError::from)?;
    match sambung_db::teams::role_of(&mut conn, team, me.user.id).await? {
        Some(sambung_db::teams::Role::Admin) => {}
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "only the team's admins export its chats",
            ))
        }
        None => return Err(sambung_db::DomainError::not_found("team").into()),
    }
    drop(conn);
    let name = format!("team-{id}");
    Ok(zip_response(state, me.user.id, Whose::Team(team), &name))
}

fn zip_response(state: Arc<AppState>, actor: UserId, whose: Whose, who: &str) -> Response {
    let (writer, reader) = tokio::io::duplex(256 << 10);
    tokio::spawn(async move {
        if let Err(error) = write_zip(&state, actor, whose, writer).await {
            // The browser sees a cut download (no end of the zip): never half a file as whole.
            tracing::warn!(error = %error, "an export stopped");
        }
    });
    let chunks = futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buffer = vec![0; 64 << 10];
        match tokio::io::AsyncReadExt::read(&mut reader, &mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buffer)), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    })
    // The body is polled once more after its end (by the compression layer).
    .fuse();
    let stem = file_stem(who);
    let date = chrono::Utc::now().format("%Y-%m-%d");
    download(
        Body::from_stream(chunks),
        "application/zip",
        &format!("sambung-export-{stem}-{date}.zip"),
    )
}

#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Zip(#[from] async_zip::error::ZipError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Db(#[from] sambung_db::DomainError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

async fn write_zip(
    state: &AppState,
    actor: UserId,
    whose: Whose,
    sink: tokio::io::DuplexStream,
) -> Result<(), ExportError> {
    let mut zip = ZipFileWriter::with_tokio(sink);
    let pool = &state.pool;
    let entry = |name: &str| ZipEntryBuilder::new(name.to_owned().into(), Compression::Deflate);
    // chats.json: a list, one chat at a time; the files they carry remembered by id.
    let mut files: Vec<(FileId, String)> = Vec::new();
    let mut seen: HashSet<FileId> = HashSet::new();
    let mut chats = 0usize;
    {
        let mut out = zip.write_entry_stream(entry("chats.json")).await?;
        out.write_all(b"[").await?;
        let mut after = None;
        loop {
            let page = exports::chat_ids(pool, whose, after, EXPORT_PAGE).await?;
            let Some(last) = page.last().copied() else {
                break;
            };
            after = Some(last);
            for id in page {
                let (chat, chat_files) = exports::chat_export(pool, actor, id).await?;
                if chats > 0 {
                    out.write_all(b",\n").await?;
                }
                out.write_all(&serde_json::to_vec(&chat)?).await?;
                chats += 1;
                for file in chat_files {
                    if seen.insert(file.id) {
                        files.push((file.id, file.name));
                    }
                }
            }
        }
        out.write_all(b"]\n").await?;
        out.close().await?;
    }
    // chats/*.md: each chat to read, its files linked inside the archive.
    let mut after = None;
    loop {
        let page = exports::chat_ids(pool, whose, after, EXPORT_PAGE).await?;
        let Some(last) = page.last().copied() else {
            break;
        };
        after = Some(last);
        for id in page {
            let (chat, _) = exports::chat_export(pool, actor, id).await?;
            let text = markdown::chat(&chat, |file| format!("../{}", file.path));
            let name = format!("chats/{}-{}.md", file_stem(&chat.title), &chat.id[..8]);
            zip.write_entry_whole(entry(&name), text.as_bytes()).await?;
        }
    }
    // files/<id>/<name>: the bytes, a chunk at a time.
    for (file, name) in &files {
        let mut out = zip
            .write_entry_stream(entry(&ours::file_path(&file.to_string(), name)))
            .await?;
        for seq in 0.. {
            let chunk = match sambung_db::files::file_chunk(pool, *file, seq).await {
                Ok(chunk) => chunk,
                Err(sambung_db::DomainError::NotFound { .. }) => break,
                Err(e) => return Err(e.into()),
            };
            out.write_all(&chunk).await?;
        }
        out.close().await?;
    }
    if let Whose::User(user) = whose {
        let prompts = sambung_db::prompts::export_prompts(pool, user).await?;
        zip.write_entry_whole(
            entry(archive::PROMPTS_ENTRY),
            &serde_json::to_vec_pretty(&prompts)?,
        )
        .await?;
        let models = sambung_db::models::list_models(pool, user, None).await?;
        let models: Vec<serde_json::Value> = models
            .into_iter()
            .filter(|m| m.user_id == Some(user) && m.team_id.is_none())
            .map(|m| {
                serde_json::json!({
                    "id": m.id, "name": m.name, "provider": m.provider, "modelId": m.model_id,
                    "baseUrl": m.base_url, "settings": m.settings, "isDefault": m.is_default,
                })
            })
            .collect();
        zip.write_entry_whole(entry("models.json"), &serde_json::to_vec_pretty(&models)?)
            .await?;
        let folders = sambung_db::folders::list_folders(
            pool,
            user,
            sambung_db::folders::Scope::Personal(user),
        )
        .await?;
        zip.write_entry_whole(entry("folders.json"), &serde_json::to_vec_pretty(&folders)?)
            .await?;
        let tags = sambung_db::tags::list_tags(pool, user, None).await?;
        zip.write_entry_whole(entry("tags.json"), &serde_json::to_vec_pretty(&tags)?)
            .await?;
    }
    let manifest = serde_json::json!({
        "format": "sambung-chat/export", "version": 1,
        "exportedAt": chrono::Utc::now(), "chats": chats, "files": files.len(),
    });
    zip.write_entry_whole(
        entry("manifest.json"),
        &serde_json::to_vec_pretty(&manifest)?,
    )
    .await?;
    let mut sink = zip.close().await?.into_inner();
    sink.shutdown().await?;
    Ok(())
}

/// The caller's prompts in upstream SambungChat's export format (a list).
#[utoipa::path(get, path = "/prompts/export", tag = "transfer",
    responses((status = 200, description = "the prompts, as upstream exports them")))]
async fn export_prompts(State(state): Shared, me: SignedIn) -> ApiResult<Response> {
    let prompts = sambung_db::prompts::export_prompts(&state.pool, me.user.id).await?;
    let body = serde_json::to_vec_pretty(&prompts).map_err(|_| ApiError::internal())?;
    Ok(download(body.into(), "application/json", "prompts.json"))
}

/// Prompts in upstream's format (its export's list, or its import's `{prompts: [...]}`),
/// added in one go; a prompt the caller has already (same name and text) is not added again.
#[utoipa::path(post, path = "/prompts/import", tag = "transfer",
    request_body(content = serde_json::Value, description = "the prompts, as upstream exports them"),
    responses((status = 200, body = PromptsImportedOut), (status = 400, body = ErrorBody)))]
async fn import_prompts(
    State(state): Shared,
    me: SignedIn,
    body: Bytes,
) -> ApiResult<Json<PromptsImportedOut>> {
    let items = sambung_transfer::prompts::read(&body)
        .map_err(|e| ApiError::invalid("prompts", e.to_string()))?;
    let done = sambung_db::prompts::import_prompts(&state.pool, me.user.id, &items).await?;
    Ok(Json(PromptsImportedOut {
        added: done.added,
        unchanged: done.unchanged,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromptsImportedOut {
    pub added: usize,
    pub unchanged: usize,
}

/// What an import did.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    /// Which service made the file, by the shape of its first conversation.
    pub source: Option<String>,
    /// Chats added, and their messages and files.
    pub chats: usize,
    pub messages: usize,
    pub files: usize,
    /// Conversations imported before, so not added again.
    pub already_imported: usize,
    /// Prompts added from our account zip.
    pub prompts: usize,
    /// Items left out, each with its reason (the first 500).
    #[schema(value_type = Vec<Object>)]
    pub skipped: Vec<Note>,
    pub skipped_count: usize,
    /// Items kept in another form (code as a code block, a missing time), the first 500.
    #[schema(value_type = Vec<Object>)]
    pub changed: Vec<Note>,
    pub changed_count: usize,
}

const LISTED_NOTES: usize = 500;

impl ImportSummary {
    fn note(&mut self, note: Note) {
        let (list, count) = if note.kind.dropped() {
            (&mut self.skipped, &mut self.skipped_count)
        } else {
            (&mut self.changed, &mut self.changed_count)
        };
        *count += 1;
        if list.len() < LISTED_NOTES {
            list.push(note);
        }
    }
}

/// What the reading thread hands the writer.
enum FromFile {
    Conversation(Box<Conversation>, Vec<Vec<(String, Vec<u8>)>>),
    Refused(Note),
    Prompts(Vec<u8>),
}

/// Import a file (multipart field `file`): ChatGPT's `conversations.json` or its zip, Claude's
/// export (zip or `conversations.json`), Open WebUI's chat export, or ours (a chat's JSON or
/// the account's zip). All of it or nothing; conversations imported before are not added
/// again.
#[utoipa::path(post, path = "/imports", tag = "transfer",
    request_body(content_type = "multipart/form-data", description = "the export, in a field named `file`"),
    responses((status = 200, body = ImportSummary), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn import(
    State(state): Shared,
    me: SignedIn,
    mut multipart: Multipart,
) -> ApiResult<Json<ImportSummary>> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "IMPORT_TOO_LARGE",
            format!("an import may be at most {} MiB", MAX_IMPORT_BYTES >> 20),
        )
    };
    let malformed = |e: axum::extract::multipart::MultipartError| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        _ => ApiError::invalid("file", format!("the upload is not readable multipart: {e}")),
    };
    let mut field = loop {
        match multipart.next_field().await.map_err(malformed)? {
            Some(field) if field.name() == Some("file") => break field,
            Some(_) => continue,
            None => {
                return Err(ApiError::invalid(
                    "file",
                    "send the export in a multipart field named file",
                ))
            }
        }
    };
    let _turn = tokio::time::timeout(Duration::from_secs(30), IMPORTS.acquire())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "IMPORTS_BUSY",
                "other imports are running: try again in a minute",
            )
        })?
        .map_err(|_| ApiError::internal())?;
    let spool = tokio::task::spawn_blocking(tempfile::NamedTempFile::new)
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(io_error)?;
    let mut file = tokio::fs::File::from_std(spool.reopen().map_err(io_error)?);
    let mut size = 0u64;
    let mut head = Vec::new();
    while let Some(piece) = field.chunk().await.map_err(malformed)? {
        size += piece.len() as u64;
        if size > MAX_IMPORT_BYTES {
            return Err(too_large());
        }
        if head.len() < 8 {
            head.extend_from_slice(&piece[..piece.len().min(8)]);
        }
        file.write_all(&piece).await.map_err(io_error)?;
    }
    file.flush().await.map_err(io_error)?;
    drop(file);
    if size == 0 {
        return Err(ApiError::invalid("file", "the file is empty"));
    }
    let path = spool.path().to_owned();
    let (sender, mut received) = mpsc::channel::<FromFile>(2);
    let limits = state.instance_settings().await?.files;
    let max_file = limits.max_file_bytes.max(0) as u64;
    let zipped = archive::is_zip(&head);
    let reading = tokio::task::spawn_blocking(move || read_file(&path, zipped, max_file, sender));

    let writing = async {
        let mut summary = ImportSummary::default();
        let mut tx = state
            .pool
            .begin()
            .await
            .map_err(sambung_db::DomainError::from)?;
        imports::take_turn(&mut tx, me.user.id).await?;
        while let Some(read) = received.recv().await {
            match read {
                FromFile::Refused(note) => summary.note(note),
                FromFile::Prompts(json) => {
                    // Our zip's prompts, in upstream's format.
                    let items = sambung_transfer::prompts::read(&json)
                        .map_err(|e| ApiError::invalid("file", format!("prompts.json: {e}")))?;
                    let done =
                        sambung_db::prompts::import_prompts_in(&mut tx, me.user.id, &items).await?;
                    summary.prompts = done.added;
                }
                FromFile::Conversation(conversation, files) => {
                    summary
                        .source
                        .get_or_insert_with(|| conversation.source.as_str().to_owned());
                    let mut notes = conversation.notes.clone();
                    let mut kept = Vec::with_capacity(files.len());
                    for message_files in files {
                        let mut prepared = Vec::new();
                        for (name, bytes) in message_files {
                            let piece =
                                futures_util::stream::once(async { Ok(Bytes::from(bytes)) });
                            match prepare(&state, &limits, &name, None, piece).await {
                                Ok(file) => prepared.push(file),
                                Err(_) => notes.push(Note {
                                    chat: Some(conversation.title.clone()),
                                    item: Some(name),
                                    kind: NoteKind::FileNotKept,
                                }),
                            }
                        }
                        kept.push(prepared);
                    }
                    let count = kept.iter().map(Vec::len).sum::<usize>();
                    let to_keep = kept
                        .iter_mut()
                        .map(|files| {
                            files
                                .iter_mut()
                                .map(|p| FileToKeep {
                                    new: p.file.new_file(),
                                    bytes: &mut p.spool,
                                })
                                .collect()
                        })
                        .collect();
                    let outcome = imports::import_conversation(
                        &mut tx,
                        me.user.id,
                        &conversation,
                        to_keep,
                        limits.user_storage_bytes,
                        &mut notes,
                    )
                    .await?;
                    match outcome {
                        Imported::Added { messages, .. } => {
                            summary.chats += 1;
                            summary.messages += messages;
                            summary.files += count;
                            for note in notes {
                                summary.note(note);
                            }
                        }
                        Imported::AlreadyThere { .. } => summary.already_imported += 1,
                    }
                }
            }
        }
        ApiResult::Ok((tx, summary))
    };
    let outcome = tokio::time::timeout(IMPORT_TIME, writing).await;
    let read = reading.await.map_err(|_| ApiError::internal())?;
    let (tx, summary) = match outcome {
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IMPORT_TOO_SLOW",
                format!(
                    "the import took longer than {} minutes: nothing was kept",
                    IMPORT_TIME.as_secs() / 60
                ),
            ))
        }
        Ok(written) => written?,
    };
    // The file as a whole: a reading error keeps nothing of it.
    read.map_err(|reason| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "IMPORT_REFUSED",
            format!("{reason}: nothing was imported"),
        )
    })?;
    if summary.chats + summary.already_imported == 0
        && summary.skipped_count == 0
        && summary.prompts == 0
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "IMPORT_REFUSED",
            "the file holds no conversations: nothing was imported",
        ));
    }
    tx.commit().await.map_err(sambung_db::DomainError::from)?;
    Ok(Json(summary))
}

fn io_error(error: std::io::Error) -> ApiError {
    tracing::error!(error = %error, "cannot spool an import to a temporary file");
    ApiError::internal()
}

/// Read the spooled file on a blocking thread, handing what it holds to the writer; the
/// reason the file as a whole is refused, if it is.
fn read_file(
    path: &std::path::Path,
    zipped: bool,
    max_file: u64,
    sender: mpsc::Sender<FromFile>,
) -> Result<(), String> {
    let limits = Limits::default();
    let send = |read| sender.blocking_send(read).is_ok();
    if !zipped {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        return sambung_transfer::read_conversations(file, &limits, |element| match element {
            Ok(mut conversation) => {
                let files = inline_files(&mut conversation);
                send(FromFile::Conversation(Box::new(conversation), files))
            }
            Err(note) => send(FromFile::Refused(note)),
        })
        .map_err(|e| e.to_string());
    }
    let mut conversations = Archive::open(path).map_err(|e| e.to_string())?;
    // A second reader of the same archive for the files the conversations name.
    let mut files = Archive::open(path).map_err(|e| e.to_string())?;
    let entry = conversations
        .conversations_entry()
        .map_err(|e| e.to_string())?;
    let reader = conversations
        .reader(&entry, MAX_UNPACKED_BYTES)
        .map_err(|e| e.to_string())?;
    sambung_transfer::read_conversations(reader, &limits, |element| match element {
        Ok(mut conversation) => {
            let bytes = archive_files(&mut files, &mut conversation, max_file);
            send(FromFile::Conversation(Box::new(conversation), bytes))
        }
        Err(note) => send(FromFile::Refused(note)),
    })
    .map_err(|e| e.to_string())?;
    if files.contains(archive::PROMPTS_ENTRY) {
        let json = files
            .read(archive::PROMPTS_ENTRY, 64 << 20)
            .map_err(|e| e.to_string())?;
        send(FromFile::Prompts(json));
    }
    Ok(())
}

/// The bytes of the files a conversation's messages carry inline (data URLs); those in an
/// archive the file did not come in are said missing.
fn inline_files(conversation: &mut Conversation) -> Vec<Vec<(String, Vec<u8>)>> {
    let mut notes = Vec::new();
    let files = conversation
        .messages
        .iter()
        .map(|m| {
            m.files
                .iter()
                .filter_map(|f| match &f.bytes {
                    FileBytes::Inline(bytes) => Some((f.name.clone(), bytes.clone())),
                    FileBytes::InArchive(_) => {
                        notes.push(Note {
                            chat: Some(conversation.title.clone()),
                            item: Some(f.name.clone()),
                            kind: NoteKind::FileNotInExport,
                        });
                        None
                    }
                })
                .collect()
        })
        .collect();
    conversation.notes.extend(notes);
    files
}

/// The bytes of the files a conversation's messages name in the archive (each at most
/// `max_file`, as an upload may be); one missing or too large is said in its notes.
fn archive_files(
    archive: &mut Archive,
    conversation: &mut Conversation,
    max_file: u64,
) -> Vec<Vec<(String, Vec<u8>)>> {
    let mut notes = Vec::new();
    let files = conversation
        .messages
        .iter()
        .map(|m| {
            m.files
                .iter()
                .filter_map(|f| {
                    let found = match &f.bytes {
                        FileBytes::Inline(bytes) => return Some((f.name.clone(), bytes.clone())),
                        FileBytes::InArchive(path) if archive.contains(path) => Some(path.clone()),
                        FileBytes::InArchive(prefix) => archive.find_by_prefix(prefix),
                    };
                    let read = found.as_deref().map(|entry| archive.read(entry, max_file));
                    match (found, read) {
                        (Some(entry), Some(Ok(bytes))) => {
                            let name = entry.rsplit('/').next().unwrap_or(&f.name).to_owned();
                            Some((name, bytes))
                        }
                        (found, _) => {
                            notes.push(Note {
                                chat: Some(conversation.title.clone()),
                                item: Some(f.name.clone()),
                                kind: if found.is_some() {
                                    NoteKind::FileNotKept
                                } else {
                                    NoteKind::FileNotInExport
                                },
                            });
                            None
                        }
                    }
                })
                .collect()
        })
        .collect();
    conversation.notes.extend(notes);
    files
}
