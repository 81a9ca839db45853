//! Data in and out (SPEC section 15). Out: a chat as Markdown or JSON, an account's (or a
//! team's) chats, prompts, models and files as a zip written while it streams to the browser,
//! one chat in memory at a time. In: an export of ChatGPT, Claude, Open WebUI or ours,
//! spooled to disk within a size limit, read as a stream on a blocking thread
//! (`sambung-transfer`) and written in one transaction (`sambung_db::imports`): all of a
//! file or none of it, bounded in time, two imports at once on the whole server.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
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
use sambung_db::imports::{self, Imported};
use sambung_db::{ChatId, FileId, TeamId, UserId};
use sambung_transfer::archive::{self, Archive, ArchiveError};
use sambung_transfer::{
    markdown, ours, Conversation, FileBytes, Limits, Note, NoteKind, ReadError,
};
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
/// The largest file of prompts taken.
const MAX_PROMPT_FILE_BYTES: usize = 16 << 20;
/// The most a zip's conversations may unpack to.
const MAX_UNPACKED_BYTES: u64 = 512 << 20;
/// How long one import may take, all told.
const IMPORT_TIME: Duration = Duration::from_secs(600);
/// Imports at once on the whole server (each reads on a thread of its own).
static IMPORTS: Semaphore = Semaphore::const_new(2);
/// The smallest request pool that imports: the import's two connections and one for everyone
/// else.
const MIN_POOL_FOR_IMPORTS: u32 = 3;
/// Chats read per page of an account's export.
const EXPORT_PAGE: i64 = 50;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    // The import reads its own limit as it streams; a file of prompts is small.
    let import_route = OpenApiRouter::new()
        .routes(routes!(import))
        .layer(DefaultBodyLimit::max(
            MAX_IMPORT_BYTES as usize + (64 << 10),
        ));
    let prompts_route = OpenApiRouter::new()
        .routes(routes!(import_prompts))
        .layer(DefaultBodyLimit::max(MAX_PROMPT_FILE_BYTES));
    OpenApiRouter::new()
        .routes(routes!(export_chat))
        .routes(routes!(export_account))
        .routes(routes!(export_team))
        .routes(routes!(export_prompts))
        .routes(routes!(import_progress))
        .merge(import_route)
        .merge(prompts_route)
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
    zip_response(state, me.user.id, Whose::User(me.user.id), &me.user.email)
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
    zip_response(state, me.user.id, Whose::Team(team), &name)
}

/// Exports written at once on the whole server (each compresses as it streams).
static EXPORTS: std::sync::LazyLock<Arc<Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(Semaphore::new(2)));

fn zip_response(
    state: Arc<AppState>,
    actor: UserId,
    whose: Whose,
    who: &str,
) -> ApiResult<Response> {
    let turn = EXPORTS.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "EXPORTS_BUSY",
            "other exports are running: try again in a minute",
        )
    })?;
    let (writer, reader) = tokio::io::duplex(256 << 10);
    let (done, outcome) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let written = write_zip(&state, actor, whose, writer).await;
        if let Err(error) = &written {
            tracing::warn!(error = %error, "an export stopped");
        }
        let _ = done.send(written.is_ok());
        drop(turn);
    });
    let chunks = futures_util::stream::unfold(Some((reader, outcome)), |state| async move {
        let (mut reader, outcome) = state?;
        let mut buffer = vec![0; 64 << 10];
        match tokio::io::AsyncReadExt::read(&mut reader, &mut buffer).await {
            // The end: whole only if the writer finished; else the download fails as cut
            // (never half a zip saved as if it were all).
            Ok(0) => match outcome.await {
                Ok(true) => None,
                _ => Some((Err(std::io::Error::other("the export stopped")), None)),
            },
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(Bytes::from(buffer)), Some((reader, outcome))))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
    // The body is polled once more after its end (by the compression layer).
    .fuse();
    let stem = file_stem(who);
    let date = chrono::Utc::now().format("%Y-%m-%d");
    Ok(download(
        Body::from_stream(chunks),
        "application/zip",
        &format!("sambung-export-{stem}-{date}.zip"),
    ))
}

/// The export's next page of chats after `after`, which moves past it (empty at the end).
async fn next_page(
    pool: &sqlx::PgPool,
    whose: Whose,
    after: &mut Option<ChatId>,
) -> Result<Vec<ChatId>, ExportError> {
    let page = exports::chat_ids(pool, whose, *after, EXPORT_PAGE).await?;
    if let Some(last) = page.last() {
        *after = Some(*last);
    }
    Ok(page)
}

/// A chat of the export, whole; none when it went meanwhile (deleted, or left the team).
async fn chat_or_gone(
    pool: &sqlx::PgPool,
    actor: UserId,
    chat: ChatId,
) -> Result<Option<(ours::ChatExport, Vec<sambung_db::files::File>)>, ExportError> {
    match exports::chat_export(pool, actor, chat).await {
        Ok(found) => Ok(Some(found)),
        Err(sambung_db::DomainError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
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
            let page = next_page(pool, whose, &mut after).await?;
            if page.is_empty() {
                break;
            }
            for id in page {
                let Some((chat, chat_files)) = chat_or_gone(pool, actor, id).await? else {
                    continue;
                };
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
        let page = next_page(pool, whose, &mut after).await?;
        if page.is_empty() {
            break;
        }
        for id in page {
            let Some((chat, _)) = chat_or_gone(pool, actor, id).await? else {
                continue;
            };
            let text = markdown::chat(&chat, |file| format!("../{}", file.path));
            let name = format!("chats/{}-{}.md", file_stem(&chat.title), chat.id);
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
    /// A conversation, the files its messages carry (each once), and which of them each
    /// message carries.
    Conversation(Box<Conversation>, Files),
    Refused(Note),
    Prompts(Vec<u8>),
}

/// A conversation's files: their names and bytes, each once, and for each message the
/// indexes of its own.
#[derive(Default)]
struct Files {
    blobs: Vec<(String, Vec<u8>)>,
    of_message: Vec<Vec<usize>>,
}

/// Most files one conversation brings, and their bytes all told.
const CONVERSATION_FILES: usize = 100;
const CONVERSATION_FILE_BYTES: usize = 64 << 20;

/// How long the upload itself may take.
const UPLOAD_TIME: Duration = Duration::from_secs(600);

/// Import a file (multipart field `file`): ChatGPT's `conversations.json` or its zip, Claude's
/// export (zip or `conversations.json`), Open WebUI's chat export, or ours (a chat's JSON or
/// the account's zip). All of it or nothing; conversations imported before are not added
/// again; one import at a time per person.
#[utoipa::path(post, path = "/imports", tag = "transfer",
    request_body(content_type = "multipart/form-data", description = "the export, in a field named `file`"),
    responses((status = 200, body = ImportSummary), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn import(
    State(state): Shared,
    me: SignedIn,
    multipart: Multipart,
) -> ApiResult<Json<ImportSummary>> {
    // An import holds two of the pool's connections for as long as it runs (its transaction,
    // and its files beside it): a pool that cannot spare them and still serve refuses at once.
    let pool_max = state.pool.options().get_max_connections();
    if pool_max < MIN_POOL_FOR_IMPORTS {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "IMPORTS_UNAVAILABLE",
            format!(
                "this server cannot import: an import needs DATABASE_POOL_MAX of at least {MIN_POOL_FOR_IMPORTS} (it is {pool_max})"
            ),
        ));
    }
    let (spool, zipped) = tokio::time::timeout(UPLOAD_TIME, spool_upload(multipart))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "IMPORT_UPLOAD_TOO_SLOW",
                format!(
                    "the upload took longer than {} minutes",
                    UPLOAD_TIME.as_secs() / 60
                ),
            )
        })??;
    // The server's two turns are taken only once the file is here, never by a slow upload.
    // A pool too small for two imports' four connections and the other requests runs one.
    let turns = if pool_max < 2 * MIN_POOL_FOR_IMPORTS - 1 {
        2
    } else {
        1
    };
    let _turn = tokio::time::timeout(Duration::from_secs(30), IMPORTS.acquire_many(turns))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "IMPORTS_BUSY",
                "other imports are running: try again in a minute",
            )
        })?
        .map_err(|_| ApiError::internal())?;
    // Read before the turn is taken: nothing between it and the end returns without giving it
    // back.
    let limits = state.instance_settings().await?.files;
    // The conversations' files are kept on a connection of the import's own, beside its
    // transaction (each file in a short transaction, as an upload is): taken now, so that the
    // import never waits for a second connection while it holds one.
    // Two imports each holding one connection and waiting for a second would starve each
    // other on a small pool: one takes its pair at a time.
    let (mut files_db, mut tx) = {
        let _pairing = PAIRING.lock().await;
        let files_db = state.pool.acquire().await.map_err(no_second_connection)?;
        let tx = state.pool.begin().await.map_err(no_second_connection)?;
        (files_db, tx)
    };
    if !imports::take_turn(&mut tx, me.user.id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "IMPORT_RUNNING",
            "another import of yours is running: wait for it to end",
        ));
    }
    let running = Running::start(me.user.id);
    let max_file = limits.max_file_bytes.max(0) as u64;
    let path = spool.path().to_owned();
    let (sender, mut received) = mpsc::channel::<FromFile>(1);
    let progress = running.progress.clone();
    let reading =
        tokio::task::spawn_blocking(move || read_file(&path, zipped, max_file, &progress, sender));
    let writing = async {
        let mut summary = ImportSummary::default();
        while let Some(read) = received.recv().await {
            running.progress.show(&summary);
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
                    if imports::imported_before(&mut tx, me.user.id, &conversation)
                        .await?
                        .is_some()
                    {
                        summary.already_imported += 1;
                        continue;
                    }
                    let mut notes = conversation.notes.list.clone();
                    summary.skipped_count += conversation.notes.unlisted;
                    let kept = keep_files(
                        &state,
                        &mut files_db,
                        &limits,
                        me.user.id,
                        &conversation,
                        files,
                        &mut notes,
                    )
                    .await?;
                    let outcome = imports::import_conversation(
                        &mut tx,
                        me.user.id,
                        &conversation,
                        &kept,
                        &mut notes,
                    )
                    .await?;
                    if let Imported::Added { messages, .. } = outcome {
                        summary.chats += 1;
                        summary.messages += messages;
                        summary.files += kept.iter().flatten().collect::<HashSet<_>>().len();
                        for note in notes {
                            summary.note(note);
                        }
                    } else {
                        summary.already_imported += 1;
                    }
                }
            }
        }
        running.progress.show(&summary);
        ApiResult::Ok(summary)
    };
    let outcome = tokio::time::timeout(IMPORT_TIME, writing).await;
    // Whatever happened, the reader stops at its next conversation.
    drop(received);
    let read = reading.await.map_err(|_| ApiError::internal());
    let checked = (|| {
        let read = read?;
        let summary = match outcome {
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
        ApiResult::Ok(summary)
    })();
    let summary = match checked {
        Ok(summary) => summary,
        Err(error) => {
            // The import's turn (its transaction's lock) is given back now, not whenever the
            // pool next hands out this connection: the next import must not find it taken.
            let _ = tx.rollback().await;
            return Err(error);
        }
    };
    tx.commit().await.map_err(sambung_db::DomainError::from)?;
    Ok(Json(summary))
}

/// How far the caller's import has come while this server runs it: the bytes of the file
/// read (of a zip, of its conversations unpacked) and what has been written so far. Not
/// running here (not started, ended, or run by another server of the instance): `running`
/// false and nothing counted.
#[utoipa::path(get, path = "/imports/current", tag = "transfer",
    responses((status = 200, body = ImportProgress)))]
async fn import_progress(me: SignedIn) -> Json<ImportProgress> {
    let running = RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&me.user.id)
        .cloned();
    Json(match running {
        Some(progress) => ImportProgress {
            running: true,
            bytes_read: progress.read_bytes.load(Ordering::Relaxed),
            bytes_total: progress.total_bytes.load(Ordering::Relaxed),
            conversations: progress.conversations.load(Ordering::Relaxed),
            messages: progress.messages.load(Ordering::Relaxed),
            already_imported: progress.already_imported.load(Ordering::Relaxed),
        },
        None => ImportProgress::default(),
    })
}

#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportProgress {
    pub running: bool,
    /// Of the conversations' JSON: read so far, and its size (as a zip's directory gives it).
    pub bytes_read: u64,
    pub bytes_total: u64,
    /// Written so far (they are kept only if the whole file imports).
    pub conversations: usize,
    pub messages: usize,
    pub already_imported: usize,
}

/// A pool that gave an import no second connection in time: busy, said so.
fn no_second_connection(error: sqlx::Error) -> ApiError {
    match error {
        sqlx::Error::PoolTimedOut => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "IMPORTS_BUSY",
            NO_SECOND_CONNECTION,
        ),
        error => sambung_db::DomainError::from(error).into(),
    }
}

const NO_SECOND_CONNECTION: &str = "an import needs two of the server's database connections and none is free: try again in a minute";

/// Held while an import takes its two connections (see [`import`]).
static PAIRING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The imports this server runs, by person (one each at most).
static RUNNING: LazyLock<Mutex<HashMap<UserId, Arc<Progress>>>> = LazyLock::new(Default::default);

/// One import's progress: its reader counts bytes, its writer what it wrote.
#[derive(Default)]
struct Progress {
    total_bytes: AtomicU64,
    read_bytes: AtomicU64,
    conversations: AtomicUsize,
    messages: AtomicUsize,
    already_imported: AtomicUsize,
}

impl Progress {
    /// `reader`, of `size` bytes, counted as it is read.
    fn reading<R: Read>(self: &Arc<Self>, reader: R, size: u64) -> Counted<R> {
        self.total_bytes.store(size, Ordering::Relaxed);
        Counted {
            inner: reader,
            progress: self.clone(),
        }
    }

    fn show(&self, summary: &ImportSummary) {
        self.conversations.store(summary.chats, Ordering::Relaxed);
        self.messages.store(summary.messages, Ordering::Relaxed);
        self.already_imported
            .store(summary.already_imported, Ordering::Relaxed);
    }
}

struct Counted<R> {
    inner: R,
    progress: Arc<Progress>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.progress
            .read_bytes
            .fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// A person's import, listed in [`RUNNING`] until this is dropped (however the import ends).
struct Running {
    owner: UserId,
    progress: Arc<Progress>,
}

impl Running {
    fn start(owner: UserId) -> Running {
        let progress = Arc::new(Progress::default());
        RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(owner, progress.clone());
        Running { owner, progress }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        if running
            .get(&self.owner)
            .is_some_and(|listed| Arc::ptr_eq(listed, &self.progress))
        {
            running.remove(&self.owner);
        }
    }
}

/// The multipart field `file` spooled to a temporary file (at most [`MAX_IMPORT_BYTES`]),
/// and whether it is a zip.
async fn spool_upload(mut multipart: Multipart) -> ApiResult<(tempfile::NamedTempFile, bool)> {
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
            head.extend_from_slice(&piece[..piece.len().min(8 - head.len())]);
        }
        file.write_all(&piece).await.map_err(io_error)?;
    }
    file.flush().await.map_err(io_error)?;
    if size == 0 {
        return Err(ApiError::invalid("file", "the file is empty"));
    }
    Ok((spool, archive::is_zip(&head)))
}

/// A conversation's files kept as the owner's (each once, checked as an upload is, in a
/// short transaction of its own: one not attached in the end is swept as an abandoned
/// upload is), and for each message the ids of its own, at most as many as a message may
/// carry. One that cannot be kept is said.
async fn keep_files(
    state: &AppState,
    db: &mut sqlx::PgConnection,
    limits: &sambung_db::instance::FileLimits,
    owner: UserId,
    conversation: &Conversation,
    files: Files,
    notes: &mut Vec<Note>,
) -> ApiResult<Vec<Vec<FileId>>> {
    let mut kept: Vec<Option<FileId>> = Vec::with_capacity(files.blobs.len());
    for (name, bytes) in files.blobs {
        let piece = futures_util::stream::once(async { Ok(Bytes::from(bytes)) });
        let stored = match prepare(state, limits, &name, None, piece).await {
            Ok(mut prepared) => sambung_db::files::store_file(
                &mut *db,
                owner,
                prepared.file.new_file(),
                limits.user_storage_bytes,
                &mut prepared.spool,
            )
            .await
            .map_err(ApiError::from),
            Err(e) => Err(e),
        };
        match stored {
            Ok(file) => kept.push(Some(file.id)),
            Err(_) => {
                notes.push(Note {
                    chat: Some(conversation.title.chars().take(200).collect()),
                    item: Some(name),
                    kind: NoteKind::FileNotKept,
                });
                kept.push(None);
            }
        }
    }
    let per_message = usize::try_from(limits.max_files_per_message).unwrap_or(0);
    Ok(files
        .of_message
        .iter()
        .map(|indexes| {
            indexes
                .iter()
                .filter_map(|i| kept.get(*i).copied().flatten())
                .take(per_message)
                .collect()
        })
        .collect())
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
    progress: &Arc<Progress>,
    sender: mpsc::Sender<FromFile>,
) -> Result<(), String> {
    let limits = Limits::default();
    let send = |read| sender.blocking_send(read).is_ok();
    if !zipped {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let size = file.metadata().map_err(|e| e.to_string())?.len();
        let file = progress.reading(file, size);
        return sambung_transfer::read_conversations(file, &limits, |element| match element {
            Ok(mut conversation) => {
                let files = conversation_files(&mut conversation, None, max_file);
                send(FromFile::Conversation(Box::new(conversation), files))
            }
            Err(note) => send(FromFile::Refused(note)),
        })
        .map_err(|e| e.to_string());
    }
    let mut conversations = Archive::open(path).map_err(|e| e.to_string())?;
    // A second reader of the same archive for the files the conversations name.
    let mut files = Archive::open(path).map_err(|e| e.to_string())?;
    let entries = conversations
        .conversations_entries()
        .map_err(|e| e.to_string())?;
    let mut size = 0;
    for entry in &entries {
        size += conversations.size(entry).map_err(|e| e.to_string())?;
    }
    // A split export's pieces are one file: the limits hold for all of them together.
    let mut conversations_left = limits.conversations;
    for entry in &entries {
        let unpacked = progress.read_bytes.load(Ordering::Relaxed);
        let reader = conversations
            .reader(entry, MAX_UNPACKED_BYTES.saturating_sub(unpacked))
            .map_err(|e| match e {
                // The limit is the pieces' together.
                ArchiveError::TooLarge { name, .. } => ArchiveError::TooLarge {
                    name,
                    limit_mib: MAX_UNPACKED_BYTES >> 20,
                },
                e => e,
            })
            .map_err(|e| e.to_string())?;
        let reader = progress.reading(reader, size);
        let piece = Limits {
            conversations: conversations_left,
            ..limits
        };
        sambung_transfer::read_conversations(reader, &piece, |element| {
            conversations_left = conversations_left.saturating_sub(1);
            match element {
                Ok(mut conversation) => {
                    let bytes = conversation_files(&mut conversation, Some(&mut files), max_file);
                    send(FromFile::Conversation(Box::new(conversation), bytes))
                }
                Err(note) => send(FromFile::Refused(note)),
            }
        })
        .map_err(|e| match e {
            ReadError::TooManyConversations { .. } => ReadError::TooManyConversations {
                limit: limits.conversations,
            },
            e => e,
        })
        .map_err(|e| e.to_string())?;
    }
    if files.contains(archive::PROMPTS_ENTRY) {
        let json = files
            .read(archive::PROMPTS_ENTRY, 16 << 20)
            .map_err(|e| e.to_string())?;
        send(FromFile::Prompts(json));
    }
    Ok(())
}

/// The bytes of the files a conversation's messages carry: inline (data URLs), or entries of
/// the `archive` it came in (each read once, at most `max_file` bytes as an upload may be),
/// within the conversation's budget. One missing, too large or past the budget is said.
fn conversation_files(
    conversation: &mut Conversation,
    mut archive: Option<&mut Archive>,
    max_file: u64,
) -> Files {
    let mut files = Files::default();
    let mut by_entry: std::collections::HashMap<String, Option<usize>> = Default::default();
    let mut bytes_taken = 0usize;
    let mut notes = Vec::new();
    for message in &conversation.messages {
        let mut own = Vec::new();
        for file in &message.files {
            let mut note = |kind| {
                notes.push(Note {
                    chat: Some(conversation.title.chars().take(200).collect()),
                    item: Some(file.name.chars().take(200).collect()),
                    kind,
                })
            };
            let entry = match &file.bytes {
                FileBytes::Inline(_) => None,
                FileBytes::InArchive(path) => match archive.as_deref() {
                    None => {
                        note(NoteKind::FileNotInExport);
                        continue;
                    }
                    Some(archive) if archive.contains(path) => Some(path.clone()),
                    Some(archive) => match archive.find_by_prefix(path) {
                        Some(found) => Some(found),
                        None => {
                            note(NoteKind::FileNotInExport);
                            continue;
                        }
                    },
                },
            };
            if let Some(seen) = entry.as_ref().and_then(|e| by_entry.get(e)) {
                match seen {
                    Some(index) if !own.contains(index) => own.push(*index),
                    Some(_) => {}
                    None => note(NoteKind::FileNotKept),
                }
                continue;
            }
            if files.blobs.len() == CONVERSATION_FILES {
                note(NoteKind::FileNotKept);
                continue;
            }
            let read = match (&file.bytes, &entry, archive.as_deref_mut()) {
                (FileBytes::Inline(bytes), _, _) => Some(bytes.clone()),
                (_, Some(entry), Some(archive)) => archive.read(entry, max_file).ok(),
                _ => None,
            };
            let fits = read.as_ref().is_some_and(|b| {
                b.len() as u64 <= max_file && bytes_taken + b.len() <= CONVERSATION_FILE_BYTES
            });
            let index = match read.filter(|_| fits) {
                Some(bytes) => {
                    bytes_taken += bytes.len();
                    // The name the export gives (an attachment's), else the entry's own
                    // (a picture's pointer names only its id).
                    let name = match (&file.bytes, entry.as_deref()) {
                        (FileBytes::InArchive(id), Some(entry)) if *id == file.name => {
                            entry.rsplit('/').next().unwrap_or(entry)
                        }
                        _ => &file.name,
                    }
                    .to_owned();
                    files.blobs.push((name, bytes));
                    own.push(files.blobs.len() - 1);
                    Some(files.blobs.len() - 1)
                }
                None => {
                    note(NoteKind::FileNotKept);
                    None
                }
            };
            if let Some(entry) = entry {
                by_entry.insert(entry, index);
            }
        }
        files.of_message.push(own);
    }
    for note in notes {
        conversation.notes.push(note);
    }
    // The bytes are in `files` now: the conversation need not hold them twice.
    for message in &mut conversation.messages {
        message.files.clear();
    }
    files
}
