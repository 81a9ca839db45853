//! Anthropic's Messages API stream: named SSE events `message_start` (input tokens),
//! `content_block_start`, `content_block_delta` (`text_delta`), `content_block_stop`,
//! `message_delta` (stop reason, output tokens), `message_stop`, `ping` at any time, and
//! `error` (`overloaded_error`, ...).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use url::Url;

use crate::{
    json, sse, Attachment, Delta, Endpoint, FinishReason, Parser, ProviderError, Request, Role,
    Turn, WireFormat,
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
            json!({"role": role, "content": content(turn)})
        })
        .collect();
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
        "content_block_delta" => Ok(match data.pointer("/delta/text").and_then(Value::as_str) {
            Some(text)
                if data.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta")
                    && !text.is_empty() =>
            {
                vec![Delta::Text(text.to_owned())]
            }
            _ => Vec::new(),
        }),
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

/// A turn's content: its text, or with files Anthropic's content blocks (`image` and
/// `document` with base64 sources, text blocks), files first as Anthropic advises.
fn content(turn: &Turn) -> Value {
    if turn.attachments.is_empty() {
        return json!(turn.content);
    }
    let mut blocks: Vec<Value> = turn
        .attachments
        .iter()
        .map(|attachment| match attachment {
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
        })
        .collect();
    blocks.push(json!({"type": "text", "text": turn.content}));
    Value::Array(blocks)
}
