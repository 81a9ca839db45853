//! Anthropic's Messages API stream: named SSE events `message_start` (input tokens),
//! `content_block_start` (a `tool_use` block's id and name), `content_block_delta`
//! (`text_delta`, `input_json_delta`), `content_block_stop`,
//! `message_delta` (stop reason, output tokens), `message_stop`, `ping` at any time, and
//! `error` (`overloaded_error`, ...).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use url::Url;

use crate::{
    json, sse, Attachment, Delta, Endpoint, FinishReason, Parser, ProviderError, Request, Role,
    ToolChoice, Turn, WireFormat,
};

pub(crate) struct Anthropic;

impl WireFormat for Anthropic {
    fn request(
        &self,
        endpoint: &Endpoint,
        request: &Request,
    ) -> Result<(Url, HeaderMap, Value), ProviderError> {
        messages_request(endpoint, request)
    }

    fn event(&self, parser: &mut Parser, event: &sse::Event) -> Result<Vec<Delta>, ProviderError> {
        messages_event(parser, event)
    }

    fn ended(&self, parser: &Parser) -> Result<(), ProviderError> {
        match parser.done {
            true => Ok(()),
            false => Err(ProviderError::Protocol(
                "the stream ended before message_stop".into(),
            )),
        }
    }

    /// `GET /v1/models`: `{data: [{id}]}`.
    fn models(&self, endpoint: &Endpoint) -> Result<(Url, HeaderMap), ProviderError> {
        let (url, headers, _) = messages_request(endpoint, &Request::default())?;
        let url = url
            .join("models")
            .map_err(|e| ProviderError::Config(e.to_string()))?;
        Ok((url, headers))
    }

    fn model_names(&self, listing: &Value) -> Vec<String> {
        crate::ids_in_data(listing)
    }
}

/// Anthropic requires `max_tokens`; this is used when the model's settings give none.
const DEFAULT_MAX_TOKENS: u32 = 4096;

fn messages_request(
    endpoint: &Endpoint,
    request: &Request,
) -> Result<(Url, HeaderMap, Value), ProviderError> {
    let path = if endpoint.base_url.path().ends_with("/v1/") {
        "messages"
    } else {
        "v1/messages"
    };
    let url = endpoint
        .base_url
        .join(path)
        .map_err(|e| ProviderError::Config(e.to_string()))?;
    let mut headers = HeaderMap::new();
    if let Some(key) = &endpoint.key {
        headers.insert(HeaderName::from_static("x-api-key"), key.header("")?);
    }
    headers.insert(
        HeaderName::from_static("anthropic-version"),
        HeaderValue::from_static("2023-06-01"),
    );
    let messages: Vec<Value> = request
        .turns
        .iter()
        .map(|turn| {
            let role = match turn.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            Ok(json!({"role": role, "content": content(turn)?}))
        })
        .collect::<Result<_, ProviderError>>()?;
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
        "stream": true,
    });
    if let Some(system) = &request.system {
        body["system"] = json!(system);
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = request.top_p {
        body["top_p"] = json!(p);
    }
    if !request.stop.is_empty() {
        body["stop_sequences"] = json!(request.stop);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut out = json!({"name": tool.name, "input_schema": tool.parameters});
                if let Some(description) = &tool.description {
                    out["description"] = json!(description);
                }
                out
            })
            .collect();
        body["tools"] = json!(tools);
    }
    if let Some(choice) = &request.tool_choice {
        body["tool_choice"] = match choice {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Required => json!({"type": "any"}),
            ToolChoice::Function(name) => json!({"type": "tool", "name": name}),
        };
    }
    Ok((url, headers, body))
}

fn messages_event(parser: &mut Parser, event: &sse::Event) -> Result<Vec<Delta>, ProviderError> {
    let name = event.name.as_str();
    if name == "ping" || event.data.trim().is_empty() {
        return Ok(Vec::new());
    }
    let data = json(&event.data)?;
    let kind = if name.is_empty() {
        data.get("type").and_then(Value::as_str).unwrap_or("")
    } else {
        name
    };
    match kind {
        "message_start" => {
            let usage = data.pointer("/message/usage");
            parser.usage.0 = usage
                .and_then(|u| u.get("input_tokens"))
                .and_then(Value::as_u64);
            parser.usage.1 = usage
                .and_then(|u| u.get("output_tokens"))
                .and_then(Value::as_u64);
            Ok(Vec::new())
        }
        // A tool call is a `tool_use` block: its id and name at its start, its input as
        // pieces of JSON (`input_json_delta`).
        "content_block_start" => {
            let block = data.get("content_block");
            if block.and_then(|b| b.get("type")).and_then(Value::as_str) == Some("tool_use") {
                let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                let call = parser.tool_call(index)?;
                let field = |name: &str| {
                    block
                        .and_then(|b| b.get(name))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                call.id = field("id");
                call.name = field("name");
            }
            Ok(Vec::new())
        }
        "content_block_delta" => match data.pointer("/delta/type").and_then(Value::as_str) {
            Some("text_delta") => Ok(match data.pointer("/delta/text").and_then(Value::as_str) {
                Some(text) if !text.is_empty() => vec![Delta::Text(text.to_owned())],
                _ => Vec::new(),
            }),
            Some("input_json_delta") => {
                let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                let piece = data
                    .pointer("/delta/partial_json")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                parser.tool_arguments(index, piece)?;
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        },
        "message_delta" => {
            if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                parser.finish = Some(match reason {
                    "end_turn" | "stop_sequence" => FinishReason::Stop,
                    "max_tokens" => FinishReason::Length,
                    "tool_use" => FinishReason::ToolCalls,
                    "refusal" => FinishReason::ContentFilter,
                    _ => FinishReason::Other,
                });
            }
            if let Some(output) = data.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                parser.usage.1 = Some(output);
            }
            Ok(Vec::new())
        }
        "message_stop" => {
            parser.done = true;
            Ok(Vec::new())
        }
        "error" => {
            let kind = data
                .pointer("/error/type")
                .and_then(Value::as_str)
                .unwrap_or("");
            let message = data
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("an error");
            Err(match kind {
                "overloaded_error" => ProviderError::Overloaded,
                "rate_limit_error" => ProviderError::RateLimited,
                "authentication_error" | "permission_error" => ProviderError::InvalidKey,
                "not_found_error" => ProviderError::ModelNotFound,
                _ => ProviderError::Http {
                    status: 500,
                    message: message.to_owned(),
                },
            })
        }
        _ => Ok(Vec::new()),
    }
}

/// A turn's content: its text, or Anthropic's content blocks: tool results first (as
/// Anthropic requires), files (`image` and `document` with base64 sources, text blocks) before
/// the text as it advises, tool calls (`tool_use`) after it.
fn content(turn: &Turn) -> Result<Value, ProviderError> {
    if turn.attachments.is_empty() && turn.tool_calls.is_empty() && turn.tool_results.is_empty() {
        return Ok(json!(turn.content));
    }
    let results = turn.tool_results.iter().map(|result| {
        json!({"type": "tool_result", "tool_use_id": result.call_id, "content": result.content})
    });
    let mut blocks: Vec<Value> = results.collect();
    blocks.extend(turn.attachments.iter().map(|attachment| match attachment {
        Attachment::Image { media_type, base64 } => json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": base64.as_ref()},
        }),
        Attachment::Pdf { name, base64 } => json!({
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": base64.as_ref()},
            "title": name,
        }),
        Attachment::Text { name, text } => {
            json!({"type": "text", "text": Attachment::text_block(name, text)})
        }
    }));
    // Anthropic refuses an empty text block.
    if !turn.content.is_empty() {
        blocks.push(json!({"type": "text", "text": turn.content}));
    }
    for call in &turn.tool_calls {
        let input: Value = serde_json::from_str(&call.arguments).map_err(|_| {
            ProviderError::Config(format!(
                "the arguments of the tool call {} are not JSON",
                call.id
            ))
        })?;
        blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
    }
    Ok(Value::Array(blocks))
}
