//! Turns: the server asks the chat's model and streams the reply to the caller in the AI
//! SDK's UI message stream; the turn belongs to the server, so it goes on when the caller
//! leaves, can be stopped, and can be followed again from its start while it runs.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{Stream, StreamExt};
use sambung_ai::registry::Generation;
use sambung_ai::ui_stream::{self, Chunk};
use sambung_ai::{ApiKey, Delta, Endpoint, FinishReason, Provider, ProviderError, Role, Turn};
use sambung_db::chats::{self, MessageRole, TurnKind};
use sambung_db::models::{self, Model};
use sambung_db::relay;
use sambung_db::{ChatId, MessageId, ModelId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::SignedIn;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(generate))
        .routes(routes!(stop))
        .routes(routes!(resume))
}

/// A provider's error as an API error: the URL refused is the user's to fix (400); the
/// provider failing is a bad gateway (502) with a code saying how.
pub fn provider_error(error: ProviderError) -> ApiError {
    let code = match &error {
        ProviderError::Blocked(_) => "BASE_URL_NOT_ALLOWED",
        ProviderError::Config(_) => "MODEL_MISCONFIGURED",
        ProviderError::InvalidKey => "PROVIDER_INVALID_KEY",
        ProviderError::RateLimited => "PROVIDER_RATE_LIMITED",
        ProviderError::ModelNotFound => "PROVIDER_MODEL_NOT_FOUND",
        ProviderError::Overloaded => "PROVIDER_OVERLOADED",
        ProviderError::Timeout(_) => "PROVIDER_TIMEOUT",
        ProviderError::Network(_) => "PROVIDER_UNREACHABLE",
        ProviderError::Http { .. } | ProviderError::Protocol(_) => "PROVIDER_ERROR",
    };
    let status = match error {
        ProviderError::Blocked(_) | ProviderError::Config(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_GATEWAY,
    };
    ApiError::new(status, code, error.to_string())
}

/// Where a model's requests go, with its key decrypted (in memory for this call only).
pub async fn endpoint_for(state: &AppState, model: &Model) -> ApiResult<Endpoint> {
    let provider = Provider::parse(&model.provider).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MODEL_MISCONFIGURED",
            "unknown provider",
        )
    })?;
    let key = match model.api_key_id {
        Some(_) => {
            let cipher = state.cipher.as_ref().ok_or_else(|| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ENCRYPTION_KEY_MISSING",
                    "the server cannot read API keys",
                )
            })?;
            models::model_key(&state.pool, cipher, model)
                .await?
                .map(ApiKey::new)
        }
        None => None,
    };
    Endpoint::new(provider, model.base_url.as_deref(), key).map_err(provider_error)
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
}

fn sse(stream: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    let mut response = Response::new(Body::from_stream(stream.map(Ok::<Bytes, Infallible>)));
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
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<GenerateBody>,
) -> ApiResult<Response> {
    let chat = ChatId(id);
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
        (false, None, Some(content)) => TurnKind::Ask { content },
        (true, Some(_), _) => {
            return Err(ApiError::invalid(
                "edit",
                "edit: not together with regenerate",
            ))
        }
        (false, _, None) => return Err(ApiError::invalid("content", "content: what to ask")),
    };
    start(&state, &me, chat, kind, body.model.map(ModelId)).await
}

/// Begin a turn and answer with its stream.
async fn start(
    state: &Arc<AppState>,
    me: &SignedIn,
    chat: ChatId,
    kind: TurnKind<'_>,
    model: Option<ModelId>,
) -> ApiResult<Response> {
    let actor = me.user.id;
    // The chat's access, its model and the conversation to send are read at once (one round
    // trip's wait, not three); the access is answered first, so nothing about models or
    // input is said of a chat one may not read.
    let (readable, model, preview) = tokio::join!(
        chats::get_chat(&state.pool, actor, chat),
        models::model_for_chat(&state.pool, actor, chat, model),
        chats::preview_turn(&state.pool, actor, chat, &kind),
    );
    readable?;
    let model = model?.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "NO_MODEL",
            "no model is configured: add one under Settings, Models",
        )
    })?;
    let endpoint = endpoint_for(state, &model).await?;
    sambung_ai::preflight(&state.guard, &endpoint, &model.model_id)
        .await
        .map_err(provider_error)?;
    // Everything a turn can be refused for is checked: the provider request leaves now and the
    // turn is stored while it travels (a provider's first token takes far longer than that).
    // Should storing fail (a turn begun elsewhere meanwhile), dropping the receiver cancels
    // the request; should the conversation have changed meanwhile, the request is sent again
    // with the conversation as stored.
    let request = provider_request(&model, &preview?);
    let mut started = Instant::now();
    let mut receiver = sambung_ai::stream(
        state.guard.clone(),
        endpoint.clone(),
        request.clone(),
        state.ai_timeouts,
    );
    let metadata = json!({"model": model.model_id, "provider": model.provider});
    let pending = chats::begin_turn(&state.pool, &state.lease, actor, chat, kind, metadata).await?;
    let stored = provider_request(&model, &pending.turn.history);
    if stored != request {
        started = Instant::now();
        receiver = sambung_ai::stream(state.guard.clone(), endpoint, stored, state.ai_timeouts);
    }
    let turn = pending.commit().await?;
    let generation = state
        .generations
        .start(&chat.to_string(), turn.reply.id.to_string());
    let listener = generation.subscribe();
    tokio::spawn(run_turn(
        state.clone(),
        generation,
        turn,
        model,
        receiver,
        started,
    ));
    Ok(sse(listener))
}

/// The AI SDK's default chat transport (`DefaultChatTransport`, what `useChat` and `Chat`
/// send): `POST /api/chat` and `GET /api/chat/{id}/stream`, with `id` the chat's id.
pub fn transport_router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(chat_transport))
        .routes(routes!(chat_transport_resume))
}

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
    ApiJson(body): ApiJson<TransportBody>,
) -> ApiResult<Response> {
    let chat = ChatId(body.id);
    let model = body.model.map(ModelId);
    if body.trigger.as_deref() == Some("regenerate-message") {
        return start(&state, &me, chat, TurnKind::Regenerate, model).await;
    }
    let question: String = body
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| {
            m.parts
                .iter()
                .filter(|p| p.get("type").and_then(|t| t.as_str()) == Some("text"))
                .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
                .collect::<Vec<_>>()
                .join("")
        })
        .ok_or_else(|| ApiError::invalid("messages", "messages: no user message to answer"))?;
    start(
        &state,
        &me,
        chat,
        TurnKind::Ask { content: &question },
        model,
    )
    .await
}

/// The transport's resume: the chat's running reply from its start, or 204.
#[utoipa::path(get, path = "/chat/{id}/stream", tag = "generate", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the running reply's events from the start", content_type = "text/event-stream"),
        (status = 204, description = "nothing is running"), (status = 404, body = ErrorBody)))]
async fn chat_transport_resume(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    follow(&state, &me, id).await
}

/// The provider request for a turn: the model's settings and the conversation so far.
fn provider_request(model: &Model, history: &[chats::Message]) -> sambung_ai::Request {
    let settings = &model.settings;
    let mut system: Vec<String> = settings
        .get("system")
        .and_then(|s| s.as_str())
        .map(str::to_owned)
        .into_iter()
        .collect();
    let mut turns = Vec::new();
    for message in history {
        match message.role {
            MessageRole::System => system.push(message.content.clone()),
            MessageRole::User => turns.push(Turn {
                role: Role::User,
                content: message.content.clone(),
            }),
            MessageRole::Assistant if !message.content.is_empty() => turns.push(Turn {
                role: Role::Assistant,
                content: message.content.clone(),
            }),
            MessageRole::Assistant => {}
        }
    }
    sambung_ai::Request {
        model: model.model_id.clone(),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        turns,
        temperature: settings.get("temperature").and_then(|v| v.as_f64()),
        max_tokens: settings
            .get("maxTokens")
            .and_then(|v| v.as_u64())
            .map(|m| m.min(u64::from(u32::MAX)) as u32),
        top_p: settings.get("topP").and_then(|v| v.as_f64()),
    }
}

/// Run a turn to its end: stream the provider's reply to every listener, store it with its
/// metadata, title a new chat.
async fn run_turn(
    state: Arc<AppState>,
    generation: Arc<Generation>,
    turn: chats::Turn,
    model: Model,
    mut receiver: tokio::sync::mpsc::Receiver<Result<Delta, ProviderError>>,
    started: Instant,
) {
    let reply = turn.reply.id;
    let text_id = format!("text-{reply}");
    let base_metadata = json!({"model": model.model_id, "provider": model.provider});
    generation.push(Chunk::Start {
        message_id: reply.to_string(),
        message_metadata: Some(base_metadata),
    });
    generation.push(Chunk::StartStep);
    generation.push(Chunk::TextStart {
        id: text_id.clone(),
    });
    let (mut text, mut first_token, mut usage, mut finish) =
        (String::new(), None, (None, None), None);
    let (mut error, mut stopped, mut capped) = (None, false, None);
    let (mut saved, mut pieces) = ((Instant::now(), 0), 0u32);
    let limits = state.reply_limits;
    let out_of_time = tokio::time::sleep(limits.max_duration);
    tokio::pin!(out_of_time);
    loop {
        tokio::select! {
            item = receiver.recv() => match item {
                None => break,
                Some(Ok(Delta::Text(mut delta))) => {
                    first_token.get_or_insert_with(|| started.elapsed());
                    // A reply ends at its caps (a provider that never stops is cut off), with
                    // what fits kept, as a model that ran out of tokens would end it.
                    if text.len() + delta.len() > limits.max_bytes {
                        let mut fits = limits.max_bytes - text.len();
                        while !delta.is_char_boundary(fits) {
                            fits -= 1;
                        }
                        delta.truncate(fits);
                        capped = Some("bytes");
                    }
                    pieces += 1;
                    if pieces >= limits.max_pieces {
                        capped.get_or_insert("tokens");
                    }
                    text.push_str(&delta);
                    if !delta.is_empty() {
                        generation.push(Chunk::TextDelta { id: text_id.clone(), delta });
                    }
                    if capped.is_some() {
                        break;
                    }
                    if saved.0.elapsed() >= state.reply_save_every && saved.1 < text.len() {
                        if let Err(e) = chats::save_partial_reply(&state.pool, reply, &text).await {
                            tracing::warn!(error = %e, "cannot store a partial reply");
                        }
                        saved = (Instant::now(), text.len());
                    }
                }
                Some(Ok(Delta::Usage { input, output })) => usage = (input, output),
                Some(Ok(Delta::Finish(reason))) => finish = Some(reason),
                Some(Err(e)) => {
                    error = Some(e);
                    break;
                }
            },
            () = generation.stopped() => {
                stopped = true;
                break;
            }
            () = &mut out_of_time => {
                capped = Some("duration");
                break;
            }
        }
    }
    // Dropping the receiver ends the provider request.
    drop(receiver);
    let finish_reason = match (&error, stopped, capped) {
        (Some(_), _, _) => FinishReason::Error,
        (None, true, _) => FinishReason::Other,
        (None, false, Some(_)) => FinishReason::Length,
        (None, false, None) => finish.unwrap_or(FinishReason::Stop),
    };
    let status = match (&error, stopped) {
        (Some(_), _) => "error",
        (None, true) => "stopped",
        (None, false) => "complete",
    };
    let mut metadata = json!({
        "model": model.model_id,
        "provider": model.provider,
        "inputTokens": usage.0,
        "outputTokens": usage.1,
        "finishReason": finish_reason,
        "ttftMs": first_token.map(|t| t.as_millis() as u64),
        "durationMs": started.elapsed().as_millis() as u64,
    });
    if let Some(limit) = capped {
        metadata["capped"] = limit.into();
    }
    let mut stored = metadata.clone();
    stored["status"] = status.into();
    if let Some(e) = &error {
        stored["error"] = e.to_string().into();
    }
    if let Err(e) = chats::finish_turn(&state.pool, reply, &text, stored).await {
        tracing::error!(error = %e, "cannot store a reply");
    }
    if turn.chat.title == "New chat" && error.is_none() && !stopped {
        if let Some(question) = turn
            .history
            .iter()
            .rev()
            .find(|m| m.role == MessageRole::User)
        {
            let title = match ask_title(&state, &model, &question.content).await {
                Some(title) => title,
                None => first_words(&question.content),
            };
            if let Err(e) = chats::title_new_chat(&state.pool, turn.chat.id, &title).await {
                tracing::warn!(error = %e, "cannot title a chat");
            }
        }
    }
    generation.push(Chunk::TextEnd { id: text_id });
    generation.push(Chunk::FinishStep);
    if let Some(e) = &error {
        generation.push(Chunk::Error {
            error_text: e.to_string(),
        });
    }
    if stopped {
        metadata["stopped"] = true.into();
    }
    generation.push(Chunk::Finish {
        finish_reason,
        message_metadata: Some(metadata),
    });
    generation.finish(ui_stream::DONE);
    state
        .generations
        .remove(&turn.chat.id.to_string(), &generation);
}

/// A chat's title asked of its own model (a short request, 10 seconds at most); `None` when
/// that fails.
async fn ask_title(state: &AppState, model: &Model, question: &str) -> Option<String> {
    let endpoint = endpoint_for(state, model).await.ok()?;
    let request = sambung_ai::Request {
        model: model.model_id.clone(),
        system: Some(
            "You name chats. Answer with a title of at most six words, nothing else.".into(),
        ),
        turns: vec![Turn {
            role: Role::User,
            content: format!(
                "Name a chat that begins with this message:\n\n{}",
                question.chars().take(2000).collect::<String>()
            ),
        }],
        temperature: Some(0.2),
        max_tokens: Some(24),
        top_p: None,
    };
    let timeouts = sambung_ai::Timeouts {
        retries: 0,
        first_byte: std::time::Duration::from_secs(10),
        idle: std::time::Duration::from_secs(10),
        ..state.ai_timeouts
    };
    let mut receiver = sambung_ai::stream(state.guard.clone(), endpoint, request, timeouts);
    let mut title = String::new();
    let collect = async {
        while let Some(item) = receiver.recv().await {
            match item {
                Ok(Delta::Text(text)) => title.push_str(&text),
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        true
    };
    let finished = tokio::time::timeout(std::time::Duration::from_secs(10), collect)
        .await
        .unwrap_or(false);
    let title = title
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches(|c| matches!(c, '"' | '\'' | '*' | '#'))
        .trim();
    (finished && !title.is_empty()).then(|| title.chars().take(60).collect())
}

/// The first words of a question, as a title.
fn first_words(question: &str) -> String {
    let words: String = question
        .split_whitespace()
        .take(8)
        .collect::<Vec<_>>()
        .join(" ");
    words.chars().take(60).collect()
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
    chats::require_stop(&state.pool, me.user.id, ChatId(id)).await?;
    let stopping = match state.generations.running(&id.to_string()) {
        Some(generation) => {
            generation.request_stop();
            true
        }
        None => relay::request_stop(&state.pool, ChatId(id)).await?,
    };
    Ok(match stopping {
        true => Json(Stopping { stopping }).into_response(),
        false => StatusCode::NO_CONTENT.into_response(),
    })
}

/// What other servers on the database ask of this one, and what they relay to it, for as
/// long as the server runs (`sambung_db::relay`); listening again after the database went
/// away (a request sent meanwhile is lost: the caller may send it again).
pub async fn listen_to_other_servers(state: Arc<AppState>) {
    loop {
        if let Err(e) = listen(&state).await {
            tracing::warn!(error = %e, "cannot listen to the other servers; trying again");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}

async fn listen(state: &Arc<AppState>) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(&state.pool).await?;
    listener
        .listen_all([
            relay::STOP_CHANNEL,
            relay::FOLLOW_CHANNEL,
            relay::STREAM_CHANNEL,
        ])
        .await?;
    loop {
        let notification = listener.recv().await?;
        let payload = notification.payload();
        match notification.channel() {
            relay::STOP_CHANNEL => {
                if let Some(generation) = state.generations.running(payload) {
                    generation.request_stop();
                }
            }
            relay::FOLLOW_CHANNEL => {
                let Some((chat, follower)) = payload.split_once(' ') else {
                    continue;
                };
                if let Some(generation) = state.generations.running(chat) {
                    tokio::spawn(relay_to(state.clone(), generation, follower.to_owned()));
                }
            }
            _ => {
                let Some((follower, piece)) = payload.split_once('\n') else {
                    continue;
                };
                let mut followers = state
                    .remote_followers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if piece.is_empty() {
                    followers.remove(follower);
                } else if let Some(sender) = followers.get(follower) {
                    // A follower too slow to keep 256 pieces behind loses its stream.
                    if sender.try_send(Bytes::from(piece.to_owned())).is_err() {
                        followers.remove(follower);
                    }
                }
            }
        }
    }
}

/// Relay a generation of this server, from its start, to a follower on another server.
async fn relay_to(state: Arc<AppState>, generation: Arc<Generation>, follower: String) {
    let mut stream = std::pin::pin!(generation.subscribe());
    while let Some(chunk) = stream.next().await {
        let piece = String::from_utf8_lossy(&chunk);
        if let Err(e) = relay::relay(&state.pool, &follower, Some(&piece)).await {
            tracing::warn!(error = %e, "cannot relay a reply to another server");
            return;
        }
    }
    if let Err(e) = relay::relay(&state.pool, &follower, None).await {
        tracing::warn!(error = %e, "cannot end a relayed reply");
    }
}

/// A follower's place in [`AppState::remote_followers`], given back when its stream ends.
struct FollowerEntry {
    state: Arc<AppState>,
    id: String,
}

impl Drop for FollowerEntry {
    fn drop(&mut self) {
        self.state
            .remote_followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// How long a server waits for the writer of a reply to start relaying it.
const RELAY_START: std::time::Duration = std::time::Duration::from_secs(3);

/// Follow a reply another server writes: ask it to relay the stream here, from its start.
async fn follow_remote(state: &Arc<AppState>, chat: ChatId) -> ApiResult<Option<Response>> {
    let id = sambung_config::random_token();
    let (sender, mut receiver) = tokio::sync::mpsc::channel(256);
    state
        .remote_followers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), sender);
    let entry = FollowerEntry {
        state: state.clone(),
        id: id.clone(),
    };
    if !relay::request_follow(&state.pool, chat, &id).await? {
        return Ok(None);
    }
    let Ok(Some(first)) = tokio::time::timeout(RELAY_START, receiver.recv()).await else {
        return Ok(None);
    };
    let rest = futures_util::stream::unfold((receiver, entry), |(mut receiver, entry)| async {
        receiver
            .recv()
            .await
            .map(|piece| (piece, (receiver, entry)))
    });
    Ok(Some(sse(
        futures_util::stream::once(async { first }).chain(rest)
    )))
}

/// Follow the chat's running reply from its start (204 when none runs).
#[utoipa::path(get, path = "/chats/{id}/generate/stream", tag = "generate", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the running reply's events from the start", content_type = "text/event-stream"),
        (status = 204, description = "nothing is running"), (status = 404, body = ErrorBody)))]
async fn resume(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    follow(&state, &me, id).await
}

/// The chat's running reply from its start: this server's own, or relayed from the server
/// writing it; 204 when none runs.
async fn follow(state: &Arc<AppState>, me: &SignedIn, chat: Uuid) -> ApiResult<Response> {
    chats::get_chat(&state.pool, me.user.id, ChatId(chat)).await?;
    if let Some(generation) = state.generations.running(&chat.to_string()) {
        return Ok(sse(generation.subscribe()));
    }
    Ok(follow_remote(state, ChatId(chat))
        .await?
        .unwrap_or_else(|| StatusCode::NO_CONTENT.into_response()))
}
