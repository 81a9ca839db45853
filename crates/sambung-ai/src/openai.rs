//! The OpenAI-compatible chat completions stream (OpenAI, Groq, OpenRouter, Ollama's `/v1`,
//! custom endpoints): `data:` JSON chunks, usage in a last chunk without choices (asked for
//! with `stream_options.include_usage`), then `data: [DONE]`. Comment lines (OpenRouter's
//! `: OPENROUTER PROCESSING`) are skipped by the SSE decoder.

use reqwest::header::{HeaderMap, AUTHORIZATION};
use serde_json::{json, Value};
use url::Url;

use crate::{
    json, sse, Attachment, Delta, Endpoint, FinishReason, Parser, ProviderError, Request, Role,
    ToolChoice, Turn, WireFormat,
};

pub(crate) struct OpenAiCompatible;

impl WireFormat for OpenAiCompatible {
    fn request(
        &self,
        endpoint: &Endpoint,
        request: &Request,
    ) -> Result<(Url, HeaderMap, Value), ProviderError> {
        chat_request(endpoint, request)
    }

    fn event(&self, parser: &mut Parser, event: &sse::Event) -> Result<Vec<Delta>, ProviderError> {
        chat_event(parser, event)
    }

    fn ended(&self, parser: &Parser) -> Result<(), ProviderError> {
        match parser.done || parser.finish.is_some() {
            true => Ok(()),
            false => Err(ProviderError::Protocol(
                "the stream ended before it finished".into(),
            )),
        }
    }

    /// `GET {base}models` (Ollama's `/v1` too): `{data: [{id}]}`.
    fn models(&self, endpoint: &Endpoint) -> Result<(Url, HeaderMap), ProviderError> {
        let (_, headers, _) = chat_request(endpoint, &Request::default())?;
        let url = endpoint
            .base_url
            .join("models")
            .map_err(|e| ProviderError::Config(e.to_string()))?;
        Ok((url, headers))
    }

    fn model_names(&self, listing: &Value) -> Vec<String> {
        crate::ids_in_data(listing)
    }
}

fn chat_request(
    endpoint: &Endpoint,
    request: &Request,
) -> Result<(Url, HeaderMap, Value), ProviderError> {
    let url = endpoint
        .base_url
        .join("chat/completions")
        .map_err(|e| ProviderError::Config(e.to_string()))?;
    let mut headers = HeaderMap::new();
    if let Some(key) = &endpoint.key {
        headers.insert(AUTHORIZATION, key.header("Bearer ")?);
    }
    let mut messages = Vec::new();
    if let Some(system) = &request.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for turn in &request.turns {
        for result in &turn.tool_results {
            messages.push(
                json!({"role": "tool", "tool_call_id": result.call_id, "content": result.content}),
            );
        }
        match turn.role {
            Role::Assistant if !turn.tool_calls.is_empty() => {
                let calls: Vec<Value> = turn
                    .tool_calls
                    .iter()
                    .map(|call| {
                        json!({"id": call.id, "type": "function",
                               "function": {"name": call.name, "arguments": call.arguments}})
                    })
                    .collect();
                let text = (!turn.content.is_empty()).then_some(&turn.content);
                messages.push(json!({"role": "assistant", "content": text, "tool_calls": calls}));
            }
            Role::Assistant => {
                messages.push(json!({"role": "assistant", "content": content(turn)}));
            }
            // A turn that only carries tool results has said everything in them.
            Role::User if !turn.tool_results.is_empty() && turn.content.is_empty() => {}
            Role::User => messages.push(json!({"role": "user", "content": content(turn)})),
        }
    }
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = request.max_tokens {
        body["max_tokens"] = json!(m);
    }
    if let Some(p) = request.top_p {
        body["top_p"] = json!(p);
    }
    if !request.stop.is_empty() {
        body["stop"] = json!(request.stop);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name, "description": tool.description, "parameters": tool.parameters}})
            })
            .collect();
        body["tools"] = json!(tools);
    }
    if let Some(choice) = &request.tool_choice {
        body["tool_choice"] = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
        };
    }
    Ok((url, headers, body))
}

/// A turn's content: its text, or with files the parts OpenAI's chat completions take
/// (`image_url` with a data URL, `file` with `file_data`, text parts), files first.
fn content(turn: &Turn) -> Value {
    if turn.attachments.is_empty() {
        return json!(turn.content);
    }
    let mut parts: Vec<Value> = turn
        .attachments
        .iter()
        .map(|attachment| match attachment {
            Attachment::Image { media_type, base64 } => json!({
                "type": "image_url",
                "image_url": {"url": format!("data:{media_type};base64,{base64}")},
            }),
            Attachment::Pdf { name, base64 } => json!({
                "type": "file",
                "file": {"filename": name, "file_data": format!("data:application/pdf;base64,{base64}")},
            }),
            Attachment::Text { name, text } => {
                json!({"type": "text", "text": Attachment::text_block(name, text)})
            }
        })
        .collect();
    parts.push(json!({"type": "text", "text": turn.content}));
    Value::Array(parts)
}

fn chat_event(parser: &mut Parser, event: &sse::Event) -> Result<Vec<Delta>, ProviderError> {
    if event.data.trim() == "[DONE]" {
        parser.done = true;
        return Ok(Vec::new());
    }
    if event.data.trim().is_empty() {
        return Ok(Vec::new());
    }
    let chunk = json(&event.data)?;
    if let Some(error) = chunk.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("an error")
            .to_owned();
        let code = error.get("code").and_then(Value::as_u64).unwrap_or(500) as u16;
        return Err(crate::status_error(
            code,
            &json!({"error": {"message": message}}).to_string(),
            None,
        ));
    }
    let mut out = Vec::new();
    for choice in chunk
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str) {
            if !text.is_empty() {
                out.push(Delta::Text(text.to_owned()));
            }
        }
        // A tool call comes in pieces: its id and name first, its arguments a piece a chunk.
        for piece in choice
            .pointer("/delta/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = piece.get("index").and_then(Value::as_u64).unwrap_or(0);
            let call = parser.tool_call(index)?;
            if let Some(id) = piece.get("id").and_then(Value::as_str) {
                call.id = id.to_owned();
            }
            if let Some(name) = piece.pointer("/function/name").and_then(Value::as_str) {
                call.name = name.to_owned();
            }
            if let Some(arguments) = piece.pointer("/function/arguments").and_then(Value::as_str) {
                parser.tool_arguments(index, arguments)?;
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            parser.finish = Some(match reason {
                "stop" => FinishReason::Stop,
                "length" => FinishReason::Length,
                "content_filter" => FinishReason::ContentFilter,
                "tool_calls" | "function_call" => FinishReason::ToolCalls,
                _ => FinishReason::Other,
            });
        }
    }
    if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
        parser.usage = (
            usage.get("prompt_tokens").and_then(Value::as_u64),
            usage.get("completion_tokens").and_then(Value::as_u64),
        );
    }
    Ok(out)
}
