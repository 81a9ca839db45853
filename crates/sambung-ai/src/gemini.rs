//! Google Gemini's `streamGenerateContent?alt=sse`: `data:` JSON with candidates' text parts
//! and `usageMetadata`; no `[DONE]`, the stream just ends. Roles are `user` and `model`; the
//! system prompt travels as `systemInstruction`.

use reqwest::header::{HeaderMap, HeaderName};
use serde_json::{json, Value};
use url::Url;

use crate::{
    json, sse, Attachment, Delta, Endpoint, FinishReason, Parser, ProviderError, Request, Role,
    Turn, WireFormat,
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
            json!({"role": role, "parts": parts(turn)})
        })
        .collect();
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
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            parser.finish = Some(match reason {
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

/// A turn's parts: its files as `inline_data` (images and PDFs) or text, then its text.
fn parts(turn: &Turn) -> Vec<Value> {
    let mut parts: Vec<Value> = turn
        .attachments
        .iter()
        .map(|attachment| match attachment {
            Attachment::Image { media_type, base64 } => {
                json!({"inline_data": {"mime_type": media_type, "data": base64.as_ref()}})
            }
            Attachment::Pdf { base64, .. } => {
                json!({"inline_data": {"mime_type": "application/pdf", "data": base64.as_ref()}})
            }
            Attachment::Text { name, text } => json!({"text": Attachment::text_block(name, text)}),
        })
        .collect();
    parts.push(json!({"text": turn.content}));
    parts
}
