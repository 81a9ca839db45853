//! The instance as an OpenAI-compatible endpoint (SPEC section 16): `GET /v1/models` and
//! `POST /v1/chat/completions` in OpenAI's own shapes (`chat.completion`,
//! `chat.completion.chunk`, `data: [DONE]`, `{error: {message, type, param, code}}`), whatever
//! wire format the provider behind the model speaks. Callers present a personal access token
//! with the `chat` scope (or a session). The completion itself is `sambung_chat::completion`'s:
//! the same models, keys, quotas, caps and usage as a chat's turn; this module only reads
//! OpenAI's request and writes OpenAI's answer.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use futures_util::StreamExt;
use sambung_ai::{
    Attachment, FinishReason, Request, Role, Tool, ToolCall, ToolChoice, ToolResult, Turn,
};
use sambung_chat::completion::{Completion, Piece};
use sambung_db::models::{self, Model};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::SignedIn;
use crate::error::ApiError;
use crate::i18n::Untold;
use crate::state::AppState;

/// A request's largest body: images come inline, as data URLs.
pub const MAX_BODY_BYTES: usize = 20 << 20;
/// Messages in one request.
const MAX_MESSAGES: usize = 1000;
/// Images in one request.
const MAX_IMAGES: usize = 20;
/// Image types every provider takes.
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_models))
        .routes(routes!(retrieve_model))
        .routes(routes!(chat_completions))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// An error in OpenAI's shape, with its status (and `Retry-After` when one waits).
#[derive(Debug)]
pub struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<String>,
    retry_after: Option<u64>,
}

impl OpenAiError {
    fn invalid(param: &str, message: impl Into<String>) -> Self {
        OpenAiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some(param.to_owned()),
            code: None,
            retry_after: None,
        }
    }

    fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl From<ApiError> for OpenAiError {
    /// Our error as OpenAI says it: the type and code its clients branch on (and the status
    /// they retry on: a provider's rate limit is a 429 here too).
    fn from(error: ApiError) -> Self {
        let limit = error
            .details
            .as_ref()
            .and_then(|d| d.get("limit"))
            .and_then(Value::as_str);
        let mut status = error.status;
        let (kind, code) = match (error.status.as_u16(), error.code.as_ref()) {
            (401, _) => ("invalid_request_error", "invalid_api_key".to_owned()),
            (429, "QUOTA_EXCEEDED") if limit != Some("runningGenerations") => {
                ("insufficient_quota", "insufficient_quota".to_owned())
            }
            (429, _) => ("requests", "rate_limit_exceeded".to_owned()),
            (_, "PROVIDER_RATE_LIMITED") => {
                status = StatusCode::TOO_MANY_REQUESTS;
                ("requests", "rate_limit_exceeded".to_owned())
            }
            (403, code) => ("permission_error", code.to_ascii_lowercase()),
            (400..=499, code) => ("invalid_request_error", code.to_ascii_lowercase()),
            (_, code) => ("server_error", code.to_ascii_lowercase()),
        };
        // A daily quota says when it resets; a reply running ends soon; a rate limit's wait
        // is set by whoever answers it.
        let retry_after = error
            .details
            .as_ref()
            .and_then(|d| d.get("resetsAt"))
            .and_then(Value::as_str)
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map(|at| (at.timestamp() - chrono::Utc::now().timestamp()).max(1) as u64)
            .or(
                (status == StatusCode::TOO_MANY_REQUESTS).then_some(match limit {
                    Some("runningGenerations") => 1,
                    _ => 60,
                }),
            );
        OpenAiError {
            status,
            message: error.message,
            kind,
            param: error.field,
            code: Some(code),
            retry_after,
        }
    }
}

/// Every refusal on `/v1` made outside its handlers (a token's, a rate limit's, the account
/// gate's, an unknown route's) in OpenAI's shape: its clients read no other. The status and
/// headers (`Retry-After`) stay.
pub async fn in_openai_shape(request: axum::extract::Request, next: Next) -> Response {
    let path = request.uri().path();
    if !(path == "/v1" || path.starts_with("/v1/")) {
        return next.run(request).await;
    }
    let mut response = next.run(request).await;
    let Some(Untold(body)) = response.extensions_mut().remove::<Untold>() else {
        return response;
    };
    let (parts, _) = response.into_parts();
    let error = ApiError {
        status: parts.status,
        code: body.code.clone().into(),
        message: body.message.clone(),
        field: body.field.clone(),
        details: body.details.clone(),
    };
    let mut told = OpenAiError::from(error).into_response();
    // Better Auth's limiter says its wait as `X-Retry-After`; OpenAI's clients read `Retry-After`.
    let wait = parts.headers.get("x-retry-after").cloned();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            told.headers_mut().insert(name, value.clone());
        }
    }
    if let (Some(wait), false) = (wait, parts.headers.contains_key(header::RETRY_AFTER)) {
        told.headers_mut().insert(header::RETRY_AFTER, wait);
    }
    told
}

impl From<sambung_chat::TurnError> for OpenAiError {
    fn from(error: sambung_chat::TurnError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<sambung_db::DomainError> for OpenAiError {
    fn from(error: sambung_db::DomainError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(wait) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        // OpenAI's SDKs retry a 429 after its Retry-After (Node's however long): a used-up
        // quota is not worth a retry before it resets, so they are told not to.
        if self.kind == "insufficient_quota" {
            response.headers_mut().insert(
                HeaderName::from_static("x-should-retry"),
                HeaderValue::from_static("false"),
            );
        }
        response
    }
}

/// The caller, who must be signed in (by token or session); taken before the body is read,
/// so nobody unknown makes the server read 20 MiB.
struct Caller(SignedIn);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = OpenAiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, OpenAiError> {
        parts.extensions.get::<SignedIn>().cloned().map(Caller).ok_or_else(|| OpenAiError {
            status: StatusCode::UNAUTHORIZED,
            message: "You didn't provide an API key. Send a personal access token (Settings, Access tokens) as Authorization: Bearer sk-sambung-…".into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key".into()),
            retry_after: None,
        })
    }
}

/// The model `asked` names for the caller: its id, else the first of that name (the
/// instance's, then their teams', then their own), so a model shadowed by a name is still
/// reachable by its id.
fn find_model(callable: Vec<Model>, asked: &str) -> Option<Model> {
    let by_id = callable.iter().position(|m| m.id.to_string() == asked);
    let at = by_id.or_else(|| callable.iter().position(|m| m.name == asked))?;
    callable.into_iter().nth(at)
}

/// What the caller may call, each once by the name `model` takes, in OpenAI's model list.
#[utoipa::path(get, path = "/v1/models", tag = "openai",
    responses((status = 200, description = "`{object: \"list\", data: [{id, object: \"model\", created, owned_by}]}`", content_type = "application/json"),
              (status = 401, description = "OpenAI's error shape", content_type = "application/json")))]
async fn list_models(
    State(state): State<Arc<AppState>>,
    Caller(me): Caller,
) -> Result<Json<Value>, OpenAiError> {
    let mut seen = std::collections::HashSet::new();
    let data: Vec<Value> = models::list_callable_models(&state.pool, me.user.id)
        .await?
        .into_iter()
        .filter(|m| seen.insert(m.name.clone()))
        .map(|m| model_object(&m))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

/// A model as OpenAI's model list shows it.
fn model_object(model: &Model) -> Value {
    json!({"id": model.name, "object": "model", "created": model.created_at.timestamp(), "owned_by": model.scope().as_str()})
}

/// The caller's model `asked` (a name or an id), or OpenAI's `model_not_found`.
async fn callable_model(
    state: &AppState,
    me: &SignedIn,
    asked: &str,
) -> Result<Model, OpenAiError> {
    let callable = models::list_callable_models(&state.pool, me.user.id).await?;
    find_model(callable, asked).ok_or_else(|| OpenAiError {
        status: StatusCode::NOT_FOUND,
        message: format!("The model `{asked}` does not exist or you do not have access to it."),
        kind: "invalid_request_error",
        param: Some("model".into()),
        code: Some("model_not_found".into()),
        retry_after: None,
    })
}

/// One model the caller may call, as the model list shows it (by its name or its id).
#[utoipa::path(get, path = "/v1/models/{model}", tag = "openai", params(("model" = String, Path)),
    responses((status = 200, description = "`{id, object: \"model\", created, owned_by}`", content_type = "application/json"),
              (status = 401, description = "OpenAI's error shape", content_type = "application/json"),
              (status = 404, description = "An unknown model (code model_not_found)", content_type = "application/json")))]
async fn retrieve_model(
    State(state): State<Arc<AppState>>,
    Caller(me): Caller,
    axum::extract::Path(model): axum::extract::Path<String>,
) -> Result<Json<Value>, OpenAiError> {
    let model = callable_model(&state, &me, &model).await?;
    Ok(Json(model_object(&model)))
}

#[derive(Debug, Deserialize)]
struct CompletionRequest {
    model: String,
    messages: Vec<InMessage>,
    /// Nullable in OpenAI's schema, as `store` is.
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    stop: Option<Stop>,
    n: Option<u32>,
    tools: Option<Vec<InTool>>,
    tool_choice: Option<Value>,
    /// OpenAI's "store the output": here, keep the conversation as one of the caller's chats.
    store: Option<bool>,
    logprobs: Option<bool>,
    top_logprobs: Option<u32>,
    response_format: Option<ResponseFormat>,
}

/// What the reply must be: only text is offered (a JSON mode would need every provider's).
#[derive(Debug, Deserialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    content: Option<Content>,
    tool_calls: Option<Vec<InToolCall>>,
    tool_call_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InTool {
    #[serde(rename = "type")]
    kind: String,
    function: InFunction,
}

#[derive(Debug, Deserialize)]
struct InFunction {
    name: String,
    description: Option<String>,
    parameters: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct InToolCall {
    id: String,
    function: CalledFunction,
}

#[derive(Debug, Deserialize)]
struct CalledFunction {
    name: String,
    arguments: String,
}

/// Tools in one request.
const MAX_TOOLS: usize = 128;
/// What `tool_choice` may be.
const TOOL_CHOICES: &str = "auto, none, required or {type: \"function\", function: {name}}";

/// OpenAI's rule for a function's name: what every provider takes.
fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The caller's tools and its choice among them, checked.
fn tools_of(body: &CompletionRequest) -> Result<(Vec<Tool>, Option<ToolChoice>), OpenAiError> {
    let given = body.tools.as_deref().unwrap_or_default();
    if given.len() > MAX_TOOLS {
        return Err(OpenAiError::invalid(
            "tools",
            format!("at most {MAX_TOOLS} tools"),
        ));
    }
    let mut tools = Vec::with_capacity(given.len());
    for (at, tool) in given.iter().enumerate() {
        if tool.kind != "function" {
            return Err(OpenAiError::invalid(
                &format!("tools[{at}].type"),
                "only function tools are supported",
            ));
        }
        let function = &tool.function;
        if !valid_tool_name(&function.name) {
            return Err(OpenAiError::invalid(
                &format!("tools[{at}].function.name"),
                "1 to 64 letters, digits, underscores or dashes",
            ));
        }
        if tools.iter().any(|t: &Tool| t.name == function.name) {
            return Err(OpenAiError::invalid(
                &format!("tools[{at}].function.name"),
                format!("{:?} is given twice", function.name),
            ));
        }
        let parameters = match &function.parameters {
            None => json!({"type": "object", "properties": {}}),
            Some(schema @ Value::Object(_)) => schema.clone(),
            Some(_) => {
                return Err(OpenAiError::invalid(
                    &format!("tools[{at}].function.parameters"),
                    "a JSON Schema object",
                ))
            }
        };
        tools.push(Tool {
            name: function.name.clone(),
            description: function.description.clone(),
            parameters,
        });
    }
    let choice = match &body.tool_choice {
        None => None,
        Some(Value::String(mode)) => Some(match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(OpenAiError::invalid("tool_choice", TOOL_CHOICES)),
        }),
        Some(named) => {
            let name = named
                .pointer("/function/name")
                .and_then(Value::as_str)
                .filter(|_| named.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(|| OpenAiError::invalid("tool_choice", TOOL_CHOICES))?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(OpenAiError::invalid(
                    "tool_choice",
                    format!("{name:?} is not one of the tools given"),
                ));
            }
            Some(ToolChoice::Function(name.to_owned()))
        }
    };
    if tools.is_empty() && matches!(choice, Some(ToolChoice::Required | ToolChoice::Function(_))) {
        return Err(OpenAiError::invalid(
            "tool_choice",
            "a tool is required, but no tools are given",
        ));
    }
    Ok((tools, choice))
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part {
    Text {
        text: String,
    },
    ImageUrl {
        image_url: ImageUrl,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct ImageUrl {
    url: String,
}

/// OpenAI's request as ours: system and developer messages joined as the system prompt,
/// user and assistant messages as turns, images from data URLs (never fetched: the server
/// would be a proxy to wherever a caller points it).
fn to_request(body: &CompletionRequest) -> Result<Request, OpenAiError> {
    if body.n.is_some_and(|n| n != 1) {
        return Err(OpenAiError::invalid("n", "only n: 1 is supported"));
    }
    // Refused rather than ignored: a caller who asked for them would read an answer without.
    for (param, asked) in [
        ("logprobs", body.logprobs == Some(true)),
        ("top_logprobs", body.top_logprobs.is_some()),
    ] {
        if asked {
            return Err(OpenAiError::invalid(
                param,
                "log probabilities are not returned by this server",
            ));
        }
    }
    if body
        .response_format
        .as_ref()
        .is_some_and(|f| f.kind != "text")
    {
        return Err(OpenAiError::invalid(
            "response_format",
            "only text replies are offered: ask for JSON in the messages instead",
        ));
    }
    let (tools, tool_choice) = tools_of(body)?;
    if body.messages.is_empty() || body.messages.len() > MAX_MESSAGES {
        return Err(OpenAiError::invalid(
            "messages",
            format!("1 to {MAX_MESSAGES} messages"),
        ));
    }
    if body.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
        return Err(OpenAiError::invalid("temperature", "0 to 2"));
    }
    if body.top_p.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
        return Err(OpenAiError::invalid("top_p", "0 to 1"));
    }
    let stop = match &body.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(s)) => s.clone(),
    };
    if stop.len() > 4 || stop.iter().any(|s| s.is_empty() || s.len() > 200) {
        return Err(OpenAiError::invalid(
            "stop",
            "at most 4 sequences, each 1 to 200 bytes",
        ));
    }
    let mut system = Vec::new();
    let mut turns = Vec::new();
    let mut images = 0;
    for (at, message) in body.messages.iter().enumerate() {
        let param = |field: &str| format!("messages[{at}].{field}");
        let (text, attachments) = match &message.content {
            None => (String::new(), Vec::new()),
            Some(Content::Text(text)) => (text.clone(), Vec::new()),
            Some(Content::Parts(parts)) => {
                let mut text = Vec::new();
                let mut attachments = Vec::new();
                for (n, part) in parts.iter().enumerate() {
                    match part {
                        Part::Text { text: t } => text.push(t.as_str()),
                        Part::ImageUrl { image_url } => {
                            images += 1;
                            if images > MAX_IMAGES {
                                return Err(OpenAiError::invalid(
                                    &param("content"),
                                    format!("at most {MAX_IMAGES} images in a request"),
                                ));
                            }
                            attachments.push(image(&image_url.url).map_err(|why| {
                                OpenAiError::invalid(
                                    &param(&format!("content[{n}].image_url.url")),
                                    why,
                                )
                            })?);
                        }
                        Part::Other => {
                            return Err(OpenAiError::invalid(
                                &param(&format!("content[{n}].type")),
                                "only text and image_url parts are supported",
                            ))
                        }
                    }
                }
                (text.join("\n"), attachments)
            }
        };
        // Tool results join the user's turn that follows the calls (as Anthropic and Gemini
        // take them); a user message right after them joins it too.
        let answering = turns
            .last_mut()
            .filter(|t: &&mut Turn| t.role == Role::User && !t.tool_results.is_empty())
            .filter(|t| t.content.is_empty() && t.attachments.is_empty());
        match message.role.as_str() {
            "system" | "developer" => system.push(text),
            "user" => match answering {
                Some(turn) => (turn.content, turn.attachments) = (text, attachments),
                None => turns.push(Turn {
                    role: Role::User,
                    content: text,
                    attachments,
                    ..Turn::default()
                }),
            },
            "assistant" => {
                let mut tool_calls = Vec::new();
                for (n, call) in message.tool_calls.iter().flatten().enumerate() {
                    let bad = |field: &str, why: &str| {
                        OpenAiError::invalid(&param(&format!("tool_calls[{n}].{field}")), why)
                    };
                    if call.id.is_empty() || call.id.len() > 256 {
                        return Err(bad("id", "1 to 256 characters"));
                    }
                    if !valid_tool_name(&call.function.name) {
                        return Err(bad(
                            "function.name",
                            "1 to 64 letters, digits, underscores or dashes",
                        ));
                    }
                    if serde_json::from_str::<Value>(&call.function.arguments).is_err() {
                        return Err(bad("function.arguments", "JSON text"));
                    }
                    tool_calls.push(ToolCall {
                        id: call.id.clone(),
                        name: call.function.name.clone(),
                        arguments: call.function.arguments.clone(),
                    });
                }
                turns.push(Turn {
                    role: Role::Assistant,
                    content: text,
                    tool_calls,
                    ..Turn::default()
                });
            }
            "tool" => {
                let call_id = message.tool_call_id.as_deref().unwrap_or_default();
                // The call it answers, in the assistant's turn before.
                let asked = turns
                    .iter()
                    .rev()
                    .find(|t| t.role == Role::Assistant)
                    .and_then(|t| t.tool_calls.iter().find(|c| c.id == call_id))
                    .ok_or_else(|| {
                        OpenAiError::invalid(
                            &param("tool_call_id"),
                            "the id of a tool call in the assistant message before it",
                        )
                    })?;
                let result = ToolResult {
                    call_id: asked.id.clone(),
                    name: asked.name.clone(),
                    content: text,
                };
                match turns
                    .last_mut()
                    .filter(|t| t.role == Role::User && t.content.is_empty())
                {
                    Some(turn) => turn.tool_results.push(result),
                    None => turns.push(Turn {
                        role: Role::User,
                        tool_results: vec![result],
                        ..Turn::default()
                    }),
                }
            }
            other => {
                return Err(OpenAiError::invalid(
                    &param("role"),
                    format!("{other:?} is not one of system, developer, user, assistant, tool"),
                ))
            }
        }
    }
    // Every call answered before the conversation goes on, as each provider requires.
    for (at, turn) in turns.iter().enumerate() {
        let answered = |id: &str| {
            turns
                .get(at + 1)
                .is_some_and(|next| next.tool_results.iter().any(|r| r.call_id == id))
        };
        if let Some(call) = turn.tool_calls.iter().find(|c| !answered(&c.id)) {
            return Err(OpenAiError::invalid(
                "messages",
                format!(
                    "the tool call {:?} has no tool message answering it right after its assistant message",
                    call.id
                ),
            ));
        }
    }
    if !turns.iter().any(|t| t.role == Role::User) {
        return Err(OpenAiError::invalid(
            "messages",
            "the conversation needs a user message",
        ));
    }
    Ok(Request {
        model: body.model.clone(),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        turns,
        temperature: body.temperature,
        max_tokens: body.max_completion_tokens.or(body.max_tokens),
        top_p: body.top_p,
        stop,
        tools,
        tool_choice,
    })
}

/// An image given as a data URL (`data:image/png;base64,…`).
fn image(url: &str) -> Result<Attachment, String> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(
            "give images as data URLs (data:image/png;base64,…); this server does not fetch URLs"
                .into(),
        );
    };
    let Some((media_type, data)) = rest.split_once(";base64,") else {
        return Err("a data URL with ;base64, is expected".into());
    };
    let media_type = media_type.to_ascii_lowercase();
    if !IMAGE_TYPES.contains(&media_type.as_str()) {
        return Err(format!(
            "{media_type:?} is not one of {}",
            IMAGE_TYPES.join(", ")
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| "the image's base64 does not decode".to_owned())?;
    Ok(Attachment::Image {
        media_type,
        base64: data.into(),
    })
}

/// A chat completion in OpenAI's shape, streamed (`chat.completion.chunk` events, then
/// `data: [DONE]`) or whole (`chat.completion`).
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai",
    request_body(content = Object, description = "OpenAI's chat completion request: model, messages (text and image_url parts), stream, stream_options, temperature, top_p, max_tokens, max_completion_tokens, stop, n: 1", content_type = "application/json"),
    responses((status = 200, description = "`chat.completion`, or Server-Sent Events of `chat.completion.chunk`", content_type = "application/json"),
              (status = 400, description = "OpenAI's error shape: {error: {message, type, param, code}}", content_type = "application/json"),
              (status = 401, description = "OpenAI's error shape", content_type = "application/json"),
              (status = 404, description = "An unknown model (code model_not_found)", content_type = "application/json"),
              (status = 429, description = "A quota used up or too many requests, with Retry-After", content_type = "application/json")))]
async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Caller(me): Caller,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, OpenAiError> {
    let body = body.map_err(|rejected| OpenAiError {
        status: rejected.status(),
        param: None,
        ..OpenAiError::invalid("", rejected.body_text())
    })?;
    let body: CompletionRequest = crate::extract::parse_json(&body).map_err(|e| OpenAiError {
        param: e.field.clone(),
        ..OpenAiError::invalid("", e.message.clone())
    })?;
    let request = to_request(&body)?;
    let model = callable_model(&state, &me, &body.model).await?;
    let mut completion = state
        .turns
        .complete(me.user.id, model, request, body.store == Some(true))
        .await?;
    // The first piece before the answer's status: a provider that refuses is an error status,
    // not a stream that fails.
    let first = completion.next().await;
    if let Some(Piece::Failed(error)) = first {
        return Err(sambung_chat::TurnError::Provider(error).into());
    }
    let created = chrono::Utc::now().timestamp();
    let shape = Shape {
        id: completion.id.clone(),
        created,
        model: body.model.clone(),
        usage_in_stream: body
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    };
    if body.stream == Some(true) {
        Ok(stream(shape, completion, first))
    } else {
        whole(shape, completion, first).await
    }
}

/// What every object of one answer shares.
struct Shape {
    id: String,
    created: i64,
    model: String,
    usage_in_stream: bool,
}

impl Shape {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.usage_in_stream {
            chunk["usage"] = Value::Null;
        }
        chunk
    }
}

fn usage(input: u64, output: u64) -> Value {
    json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output})
}

fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::Stop | FinishReason::Error | FinishReason::Other => "stop",
    }
}

/// A tool call in OpenAI's shape; in a stream's chunk, with its `index` among the calls.
fn tool_call(call: &ToolCall, index: Option<usize>) -> Value {
    let mut out = json!({"id": call.id, "type": "function",
                         "function": {"name": call.name, "arguments": call.arguments}});
    if let Some(index) = index {
        out["index"] = json!(index);
    }
    out
}

/// The whole answer at once (`chat.completion`).
async fn whole(
    shape: Shape,
    mut completion: Completion,
    first: Option<Piece>,
) -> Result<Response, OpenAiError> {
    let (mut text, mut used, mut finish) = (String::new(), (0, 0), "stop");
    let mut calls = Vec::new();
    let mut piece = first;
    while let Some(p) = piece {
        match p {
            Piece::Text(t) => text.push_str(&t),
            Piece::ToolCall(call) => calls.push(tool_call(&call, None)),
            Piece::Usage { input, output } => used = (input, output),
            Piece::Finish(reason) => finish = finish_reason(reason),
            Piece::Failed(error) => return Err(sambung_chat::TurnError::Provider(error).into()),
        }
        piece = completion.next().await;
    }
    let mut message = json!({"role": "assistant", "content": text, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
        if text.is_empty() {
            message["content"] = Value::Null;
        }
    }
    let mut response = Json(json!({
        "id": shape.id, "object": "chat.completion", "created": shape.created, "model": shape.model,
        "system_fingerprint": null,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage(used.0, used.1),
    }))
    .into_response();
    // Kept as a chat (`store: true`): which one.
    if let Some(chat) = completion.kept {
        if let Ok(value) = HeaderValue::from_str(&chat.to_string()) {
            response.headers_mut().insert("x-sambung-chat-id", value);
        }
    }
    Ok(response)
}

/// The answer as Server-Sent Events of `chat.completion.chunk`, then `data: [DONE]`; a
/// provider that fails half-way ends it with a `data:` line holding `{error}`, which OpenAI's SDKs
/// raise.
/// With `stream_options.include_usage`, the usage comes last, in a chunk without choices.
fn stream(shape: Shape, completion: Completion, first: Option<Piece>) -> Response {
    struct Progress {
        shape: Shape,
        completion: Completion,
        pending: Option<Piece>,
        opened: bool,
        usage: Option<Value>,
        calls: usize,
        done: bool,
    }
    let data = |value: &Value| Bytes::from(format!("data: {value}\n\n"));
    let progress = Progress {
        shape,
        completion,
        pending: first,
        opened: false,
        usage: None,
        calls: 0,
        done: false,
    };
    let events = futures_util::stream::unfold(progress, move |mut p| async move {
        if p.done {
            return None;
        }
        if !std::mem::replace(&mut p.opened, true) {
            let opening = p
                .shape
                .chunk(json!({"role": "assistant", "content": ""}), None);
            return Some((vec![data(&opening)], p));
        }
        let piece = match p.pending.take() {
            Some(piece) => Some(piece),
            None => p.completion.next().await,
        };
        let out = match piece {
            Some(Piece::Text(text)) => vec![data(&p.shape.chunk(json!({"content": text}), None))],
            // A call comes whole, in one chunk: OpenAI's clients gather pieces by `index`,
            // and one piece is all of it.
            Some(Piece::ToolCall(call)) => {
                let index = p.calls;
                p.calls += 1;
                let delta = json!({"tool_calls": [tool_call(&call, Some(index))]});
                vec![data(&p.shape.chunk(delta, None))]
            }
            Some(Piece::Usage { input, output }) => {
                if p.shape.usage_in_stream {
                    let mut last = p.shape.chunk(json!({}), None);
                    last["choices"] = json!([]);
                    last["usage"] = usage(input, output);
                    p.usage = Some(last);
                }
                Vec::new()
            }
            Some(Piece::Finish(reason)) => {
                vec![data(&p.shape.chunk(json!({}), Some(finish_reason(reason))))]
            }
            Some(Piece::Failed(error)) => {
                p.done = true;
                let error = OpenAiError::from(sambung_chat::TurnError::Provider(error));
                vec![data(&error.body())]
            }
            None => {
                p.done = true;
                let mut out: Vec<Bytes> = p.usage.take().iter().map(data).collect();
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                out
            }
        };
        Some((out, p))
    })
    .flat_map(|out| futures_util::stream::iter(out.into_iter().map(Ok::<_, Infallible>)));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(events))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
