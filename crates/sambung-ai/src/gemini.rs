//! Google Gemini's `streamGenerateContent?alt=sse`: `data:` JSON with candidates' text parts
//! and `usageMetadata`; no `[DONE]`, the stream just ends. Roles are `user` and `model`; the
//! system prompt travels as `systemInstruction`.

use reqwest::header::{HeaderMap, HeaderName};
use serde_json::{json, Value};
use url::Url;

use crate::{
    json, sse, Attachment, Delta, Endpoint, FinishReason, Parser, ProviderError, Request, Role,
    ToolChoice, Turn, WireFormat,
};

pub(crate) struct Gemini;

impl WireFormat for Gemini {
    fn request(
        &self,
        endpoint: &Endpoint,
        request: &Request,
    ) -> Result<(Url, HeaderMap, Value), ProviderError> {
        generate_request(endpoint, request)
    }

    fn event(&self, parser: &mut Parser, event: &sse::Event) -> Result<Vec<Delta>, ProviderError> {
        generate_event(parser, event)
    }

    /// Gemini's stream has no end marker: it just ends.
    fn ended(&self, _: &Parser) -> Result<(), ProviderError> {
        Ok(())
    }

    /// `GET /v1beta/models`: `{models: [{name: "models/…"}]}`.
    fn models(&self, endpoint: &Endpoint) -> Result<(Url, HeaderMap), ProviderError> {
        let probe = Request {
            model: "probe".into(),
            ..Request::default()
        };
        let (_, headers, _) = generate_request(endpoint, &probe)?;
        let url = endpoint
            .base_url
            .join(&format!("{}models?pageSize=1000", version_prefix(endpoint)))
            .map_err(|e| ProviderError::Config(e.to_string()))?;
        Ok((url, headers))
    }

    fn model_names(&self, listing: &Value) -> Vec<String> {
        listing
            .get("models")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("name").and_then(Value::as_str))
            .map(|name| name.trim_start_matches("models/").to_owned())
            .collect()
    }
}

/// `v1beta/` unless the base URL ends with it already.
fn version_prefix(endpoint: &Endpoint) -> &'static str {
    if endpoint.base_url.path().ends_with("/v1beta/") {
        ""
    } else {
        "v1beta/"
    }
}

fn generate_request(
    endpoint: &Endpoint,
    request: &Request,
) -> Result<(Url, HeaderMap, Value), ProviderError> {
    let model = request.model.trim_start_matches("models/");
    if model.is_empty() || model.contains(['/', '?', '#', ':']) {
        return Err(ProviderError::Config(
            "a Gemini model id is a plain name like gemini-2.0-flash".into(),
        ));
    }
    let prefix = version_prefix(endpoint);
    let url = endpoint
        .base_url
        .join(&format!(
            "{prefix}models/{model}:streamGenerateContent?alt=sse"
        ))
        .map_err(|e| ProviderError::Config(e.to_string()))?;
    let mut headers = HeaderMap::new();
    if let Some(key) = &endpoint.key {
        headers.insert(HeaderName::from_static("x-goog-api-key"), key.header("")?);
    }
    let contents: Vec<Value> = request
        .turns
        .iter()
        .map(|turn| {
            let role = match turn.role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            Ok(json!({"role": role, "parts": parts(turn)?}))
        })
        .collect::<Result<_, ProviderError>>()?;
    let mut body = json!({"contents": contents});
    if let Some(system) = &request.system {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }
    let mut config = serde_json::Map::new();
    if let Some(t) = request.temperature {
        config.insert("temperature".into(), json!(t));
    }
    if let Some(m) = request.max_tokens {
        config.insert("maxOutputTokens".into(), json!(m));
    }
    if let Some(p) = request.top_p {
        config.insert("topP".into(), json!(p));
    }
    if !request.stop.is_empty() {
        config.insert("stopSequences".into(), json!(request.stop));
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut out = json!({"name": tool.name, "parameters": tool.parameters});
                if let Some(description) = &tool.description {
                    out["description"] = json!(description);
                }
                out
            })
            .collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    if let Some(choice) = &request.tool_choice {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Function(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        body["toolConfig"] = json!({"functionCallingConfig": config});
    }
    Ok((url, headers, body))
}

fn generate_event(parser: &mut Parser, event: &sse::Event) -> Result<Vec<Delta>, ProviderError> {
    if event.data.trim().is_empty() {
        return Ok(Vec::new());
    }
    let chunk = json(&event.data)?;
    if let Some(error) = chunk.get("error") {
        let status = error.get("code").and_then(Value::as_u64).unwrap_or(500) as u16;
        return Err(crate::status_error(
            status,
            &json!({"error": error}).to_string(),
            None,
        ));
    }
    let mut out = Vec::new();
    if let Some(candidate) = chunk.pointer("/candidates/0") {
        for part in candidate
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                if !text.is_empty() && part.get("thought") != Some(&Value::Bool(true)) {
                    out.push(Delta::Text(text.to_owned()));
                }
            }
            // A function call comes whole, in a part of its own.
            if let Some(called) = part.get("functionCall") {
                let index = parser.tool_calls.len() as u64;
                let call = parser.tool_call(index)?;
                if let Some(id) = called.get("id").and_then(Value::as_str) {
                    call.id = id.to_owned();
                }
                call.name = called
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let arguments = called.get("args").unwrap_or(&Value::Null).to_string();
                parser.tool_arguments(index, &arguments)?;
                parser.finish = Some(FinishReason::ToolCalls);
            }
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            parser.finish = Some(match reason {
                // Gemini says STOP after a function call too.
                "STOP" if !parser.tool_calls.is_empty() => FinishReason::ToolCalls,
                "STOP" => FinishReason::Stop,
                "MAX_TOKENS" => FinishReason::Length,
                "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => {
                    FinishReason::ContentFilter
                }
                _ => FinishReason::Other,
            });
        }
    }
    if let Some(usage) = chunk.get("usageMetadata") {
        parser.usage = (
            usage.get("promptTokenCount").and_then(Value::as_u64),
            usage.get("candidatesTokenCount").and_then(Value::as_u64),
        );
    }
    Ok(out)
}

/// A turn's parts: its tools' answers (`functionResponse`), its files as `inline_data`
/// (images and PDFs) or text, then its text, then the functions it called (`functionCall`).
fn parts(turn: &Turn) -> Result<Vec<Value>, ProviderError> {
    let mut parts: Vec<Value> = turn
        .tool_results
        .iter()
        .map(|result| {
            json!({"functionResponse": {"name": result.name, "response": {"content": result.content}}})
        })
        .collect();
    parts.extend(turn.attachments.iter().map(|attachment| match attachment {
        Attachment::Image { media_type, base64 } => {
            json!({"inline_data": {"mime_type": media_type, "data": base64.as_ref()}})
        }
        Attachment::Pdf { base64, .. } => {
            json!({"inline_data": {"mime_type": "application/pdf", "data": base64.as_ref()}})
        }
        Attachment::Text { name, text } => json!({"text": Attachment::text_block(name, text)}),
    }));
    // Gemini refuses a content without parts, and an empty text part beside others.
    if !turn.content.is_empty() || (parts.is_empty() && turn.tool_calls.is_empty()) {
        parts.push(json!({"text": turn.content}));
    }
    for call in &turn.tool_calls {
        let args: Value = serde_json::from_str(&call.arguments).map_err(|_| {
            ProviderError::Config(format!(
                "the arguments of the tool call {} are not JSON",
                call.id
            ))
        })?;
        parts.push(json!({"functionCall": {"name": call.name, "args": args}}));
    }
    Ok(parts)
}
