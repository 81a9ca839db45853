//! The turn's HTTP routes: `POST /chats/{id}/generate`, its stop and its resume, and the AI
//! SDK's own chat transport (`POST /api/chat`). Each parses, calls the turn
//! (`sambung_chat::Turns`, where the turn reads top to bottom) and answers with its stream as
//! Server-Sent Events.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use sambung_chat::{ui_stream, ReplyStream, TurnKind, TurnReads};
use sambung_db::{ChatId, FileId, MessageId, ModelId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Requester, SignedIn};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::i18n::{tell_stream_errors, Locale, Reader};
use crate::state::AppState;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(generate))
        .routes(routes!(stop))
        .routes(routes!(resume))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateBody {
    /// The question (or, with `edit`, the user message's new text).
    pub content: Option<String>,
    /// A configured model's id; else the chat's, the team's or the user's default.
    pub model: Option<Uuid>,
    /// Answer the last question again (the reply after it is replaced).
    pub regenerate: Option<bool>,
    /// The id of a user message to change to `content`; what followed it is replaced.
    pub edit: Option<Uuid>,
    /// Files to send with the question (ids from `POST /files`, the caller's own), in order.
    #[serde(default)]
    pub files: Vec<Uuid>,
}

/// A reply's stream as the response: Server-Sent Events with the UI message stream's headers,
/// its errors told in the reader's language.
fn sse(stream: ReplyStream, locale: Locale) -> Response {
    let told = stream.map(move |piece| Ok::<Bytes, Infallible>(tell_stream_errors(locale, piece)));
    let mut response = Response::new(Body::from_stream(told));
    for (name, value) in ui_stream::HEADERS {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

/// Ask the chat's model and stream the reply (AI SDK UI message stream v1). The reply is
/// stored as it ends, whether or not the caller is still there.
#[utoipa::path(post, path = "/chats/{id}/generate", tag = "generate", params(("id" = Uuid, Path)), request_body = GenerateBody,
    responses(
        (status = 200, description = "Server-Sent Events: start, start-step, text-start, text-delta..., text-end, finish-step, finish (or error), then [DONE]", content_type = "text/event-stream"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn generate(
    State(state): Shared,
    me: Requester,
    reader: Reader,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<GenerateBody>,
) -> ApiResult<Response> {
    let chat = ChatId(id);
    let files: Vec<FileId> = body.files.iter().copied().map(FileId).collect();
    let kind = match (
        body.regenerate == Some(true),
        body.edit,
        body.content.as_deref(),
    ) {
        (true, None, _) => TurnKind::Regenerate,
        (false, Some(message), Some(content)) => TurnKind::Edit {
            message: MessageId(message),
            content,
        },
        (false, None, Some(content)) => TurnKind::Ask {
            content,
            files: &files,
        },
        (true, Some(_), _) => {
            return Err(ApiError::invalid(
                "edit",
                "edit: not together with regenerate",
            ))
        }
        (false, _, None) => return Err(ApiError::invalid("content", "content: what to ask")),
    };
    if !files.is_empty() && !matches!(kind, TurnKind::Ask { .. }) {
        return Err(ApiError::invalid(
            "files",
            "files: only with a new question (an edit keeps the question's files)",
        ));
    }
    start(&state, &me, reader, chat, kind, body.model.map(ModelId)).await
}

/// Begin a turn and answer with its stream.
async fn start(
    state: &AppState,
    me: &Requester,
    Reader(locale): Reader,
    chat: ChatId,
    kind: TurnKind<'_>,
    model: Option<ModelId>,
) -> ApiResult<Response> {
    // The instance's settings are read only for a question that brings files.
    let brought = match kind {
        TurnKind::Ask { files, .. } => files.len(),
        _ => 0,
    };
    if brought > 0 {
        let max = state.instance_settings().await?.files.max_files_per_message;
        if brought as i64 > max {
            return Err(ApiError::invalid(
                "files",
                format!("at most {max} files a message"),
            ));
        }
    }
    let reads = me
        .run(
            state,
            |caller| TurnReads::read(&state.pool, caller, chat, &kind, model),
            |_| true,
        )
        .await?;
    let stream = state.turns.start(reads, kind).await?;
    Ok(sse(stream, locale))
}

/// The AI SDK's default chat transport (`DefaultChatTransport`, what `useChat` and `Chat`
/// send): `POST /api/chat` and `GET /api/chat/{id}/stream`, with `id` the chat's id.
pub fn transport_router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(chat_transport))
        // Files come inside the JSON as data URLs: the body may be larger than elsewhere.
        .layer(DefaultBodyLimit::max(TRANSPORT_BODY_BYTES))
        .routes(routes!(chat_transport_resume))
}

/// The largest body `POST /api/chat` reads (its files' data URLs included); larger files go
/// through `POST /api/v1/files`, streamed.
pub const TRANSPORT_BODY_BYTES: usize = 64 << 20;

/// A UI message as the AI SDK sends it (only text parts are read).
#[derive(Debug, Deserialize, ToSchema)]
pub struct UiMessage {
    pub id: String,
    pub role: String,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub parts: Vec<serde_json::Value>,
}

/// The body `DefaultChatTransport` posts (extra fields the app adds are ignored).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransportBody {
    /// The chat's id.
    pub id: Uuid,
    pub messages: Vec<UiMessage>,
    /// `submit-message` (default) or `regenerate-message`.
    pub trigger: Option<String>,
    pub message_id: Option<String>,
    /// A configured model's id.
    pub model: Option<Uuid>,
}

/// Ask (the last user message's text) or regenerate, as the AI SDK's chat transport does.
#[utoipa::path(post, path = "/chat", tag = "generate", request_body = TransportBody,
    responses((status = 200, description = "the reply as a UI message stream", content_type = "text/event-stream"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn chat_transport(
    State(state): Shared,
    me: SignedIn,
    reader: Reader,
    ApiJson(body): ApiJson<TransportBody>,
) -> ApiResult<Response> {
    let chat = ChatId(body.id);
    let model = body.model.map(ModelId);
    if body.trigger.as_deref() == Some("regenerate-message") {
        return start(
            &state,
            &me.into(),
            reader,
            chat,
            TurnKind::Regenerate,
            model,
        )
        .await;
    }
    let asked = body
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .ok_or_else(|| ApiError::invalid("messages", "messages: no user message to answer"))?;
    let kind_of = |p: &serde_json::Value| p.get("type").and_then(|t| t.as_str()).map(str::to_owned);
    let question: String = asked
        .parts
        .iter()
        .filter(|p| kind_of(p).as_deref() == Some("text"))
        .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
        .collect::<Vec<_>>()
        .join("");
    // The question's files, as the AI SDK sends them (`sendMessage({ text, files })`): kept
    // the way uploads are, then sent with the question.
    let parts: Vec<&serde_json::Value> = asked
        .parts
        .iter()
        .filter(|p| kind_of(p).as_deref() == Some("file"))
        .collect();
    let max = state.instance_settings().await?.files.max_files_per_message;
    if parts.len() as i64 > max {
        return Err(ApiError::invalid(
            "files",
            format!("at most {max} files a message"),
        ));
    }
    let mut files = Vec::with_capacity(parts.len());
    for part in parts {
        files.push(keep_file_part(&state, &me, part).await?);
    }
    start(
        &state,
        &me.into(),
        reader,
        chat,
        TurnKind::Ask {
            content: &question,
            files: &files,
        },
        model,
    )
    .await
}

/// An AI SDK `file` part (`{type: "file", mediaType, filename?, url}`) kept as a file: its
/// URL must be a base64 data URL (a file is never fetched from elsewhere).
async fn keep_file_part(
    state: &AppState,
    me: &SignedIn,
    part: &serde_json::Value,
) -> ApiResult<FileId> {
    use base64::Engine as _;
    let text = |key: &str| part.get(key).and_then(|v| v.as_str());
    let name = text("filename").unwrap_or("file");
    let url = text("url").unwrap_or_default();
    let (header, data) = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
        .filter(|(header, _)| header.ends_with(";base64"))
        .ok_or_else(|| {
            ApiError::invalid(
                "messages",
                "messages: a file part's url must be a base64 data URL (data:…;base64,…)",
            )
        })?;
    let claimed = text("mediaType").or_else(|| header.strip_suffix(";base64"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| {
            ApiError::invalid("messages", "messages: a file part's data URL is not base64")
        })?;
    let piece = futures_util::stream::once(async move { Ok(Bytes::from(bytes)) });
    let kept = super::files::keep(state, me.user.id, name, claimed, piece).await?;
    Ok(kept.id)
}

/// The transport's resume: the chat's running reply from its start, or 204.
#[utoipa::path(get, path = "/chat/{id}/stream", tag = "generate", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the running reply's events from the start", content_type = "text/event-stream"),
        (status = 204, description = "nothing is running"), (status = 404, body = ErrorBody)))]
async fn chat_transport_resume(
    State(state): Shared,
    me: SignedIn,
    reader: Reader,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    follow(&state, &me, reader, id).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stopping {
    pub stopping: bool,
}

/// Stop the chat's running reply (and the provider request); what was written is kept. Who
/// asked for the reply may stop it, and whoever may change the chat. The
/// reply may be written by another server on the same database: it is told through
/// PostgreSQL (`NOTIFY`).
#[utoipa::path(post, path = "/chats/{id}/generate/stop", tag = "generate", params(("id" = Uuid, Path)),
    responses((status = 200, body = Stopping), (status = 204, description = "nothing is running"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn stop(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let stopping = state.turns.stop(me.user.id, ChatId(id)).await?;
    Ok(match stopping {
        true => Json(Stopping { stopping }).into_response(),
        false => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Follow the chat's running reply from its start (204 when none runs).
#[utoipa::path(get, path = "/chats/{id}/generate/stream", tag = "generate", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the running reply's events from the start", content_type = "text/event-stream"),
        (status = 204, description = "nothing is running"), (status = 404, body = ErrorBody)))]
async fn resume(
    State(state): Shared,
    me: SignedIn,
    reader: Reader,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    follow(&state, &me, reader, id).await
}

/// The chat's running reply from its start, wherever it is written; 204 when none runs.
async fn follow(
    state: &AppState,
    me: &SignedIn,
    Reader(locale): Reader,
    chat: Uuid,
) -> ApiResult<Response> {
    Ok(match state.turns.follow(me.user.id, ChatId(chat)).await? {
        Some(stream) => sse(stream, locale),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}
