//! AI providers behind one interface: a chat completion streamed as text deltas, usage and a
//! finish reason. Each wire format is a file implementing [`WireFormat`]: `openai.rs` (the
//! OpenAI-compatible API of OpenAI, Groq, OpenRouter, Ollama's `/v1` and any custom base
//! URL), `anthropic.rs` (the Messages API), `gemini.rs`; which provider speaks which is
//! `sambung-providers`' list. Every request goes through the SSRF guard (`guard`); keys live
//! only in memory for the request and never reach a log, an error or an answer. No HTTP
//! server code, no chat: the turn is `sambung-chat`'s.

mod anthropic;
pub mod fake;
mod gemini;
pub mod guard;
mod openai;
pub mod sse;

use std::fmt;
use std::time::Duration;

use futures_util::StreamExt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use url::Url;

pub use guard::Guard;

pub use sambung_providers::{Provider, Wire};

/// One wire format, in a file of its own: how a request is written, how its stream is read,
/// how the provider lists its models.
pub(crate) trait WireFormat: Sync {
    /// The URL, headers and JSON body of a streamed completion.
    fn request(
        &self,
        endpoint: &Endpoint,
        request: &Request,
    ) -> Result<(Url, reqwest::header::HeaderMap, serde_json::Value), ProviderError>;
    /// The deltas in one event of the stream.
    fn event(&self, parser: &mut Parser, event: &sse::Event) -> Result<Vec<Delta>, ProviderError>;
    /// Whether the stream, now ended, ended as the format ends one.
    fn ended(&self, parser: &Parser) -> Result<(), ProviderError>;
    /// Where and how to ask for the provider's models.
    fn models(
        &self,
        endpoint: &Endpoint,
    ) -> Result<(Url, reqwest::header::HeaderMap), ProviderError>;
    /// The model names in the provider's answer to [`WireFormat::models`].
    fn model_names(&self, listing: &serde_json::Value) -> Vec<String>;
}

/// The file that speaks `wire`: the one place a new format is added.
fn format(wire: Wire) -> &'static dyn WireFormat {
    match wire {
        Wire::OpenAiCompatible => &openai::OpenAiCompatible,
        Wire::Anthropic => &anthropic::Anthropic,
        Wire::Gemini => &gemini::Gemini,
    }
}

/// `data[].id` of a listing (OpenAI's and Anthropic's shape).
fn ids_in_data(listing: &serde_json::Value) -> Vec<String> {
    listing
        .get("data")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("id").and_then(serde_json::Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// An API key, kept out of every `Debug` and `Display`.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> Self {
        ApiKey(key)
    }

    fn expose(&self) -> &str {
        &self.0
    }

    /// A header value carrying the key (with `prefix`, e.g. `Bearer `), marked sensitive so
    /// that no debug output of the request shows it.
    fn header(&self, prefix: &str) -> Result<reqwest::header::HeaderValue, ProviderError> {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("{prefix}{}", self.0))
            .map_err(|_| {
                ProviderError::Config("the API key holds characters a header cannot".into())
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Where to send a model's requests.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub provider: Provider,
    pub base_url: Url,
    pub key: Option<ApiKey>,
}

impl Endpoint {
    /// The provider's endpoint at `base_url` (else its default); a trailing
    /// `/chat/completions` the user pasted is tolerated.
    pub fn new(
        provider: Provider,
        base_url: Option<&str>,
        key: Option<ApiKey>,
    ) -> Result<Endpoint, ProviderError> {
        let raw = base_url
            .filter(|b| !b.trim().is_empty())
            .or(provider.default_base_url())
            .ok_or_else(|| ProviderError::Config("a custom provider needs a base URL".into()))?;
        let trimmed = raw.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/chat/completions").unwrap_or(trimmed);
        let base_url = Url::parse(&format!("{trimmed}/"))
            .map_err(|e| ProviderError::Config(format!("the base URL is not a URL: {e}")))?;
        if provider.needs_key() && key.is_none() {
            return Err(ProviderError::Config(format!(
                "{} needs an API key",
                provider.as_str()
            )));
        }
        Ok(Endpoint {
            provider,
            base_url,
            key,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Turn {
    pub role: Role,
    pub content: String,
    /// The files given with it (a user's turn), before its text in what is sent.
    pub attachments: Vec<Attachment>,
    /// The tools the model called (an assistant's turn), after its text.
    pub tool_calls: Vec<ToolCall>,
    /// What the caller's tools answered to the calls of the turn before (a user's turn),
    /// before its text (which may be empty).
    pub tool_results: Vec<ToolResult>,
}

/// A function the model may call; the caller runs it (the OpenAI-compatible endpoint's
/// `tools`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// Its arguments' JSON Schema.
    pub parameters: serde_json::Value,
}

/// Whether and which tool the model is to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// As it sees fit.
    Auto,
    /// None: text only.
    None,
    /// One at least.
    Required,
    /// This one.
    Function(String),
}

/// A call of a tool the model made: its arguments as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What a tool answered to the call `call_id` (of tool `name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    pub call_id: String,
    pub name: String,
    pub content: String,
}

/// A file given with a turn (SPEC section 14), as the model is to receive it. Each wire
/// format writes it in its own shape (`openai.rs`, `anthropic.rs`, `gemini.rs`); the bytes are
/// base64 once, shared by every copy of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// An image the model sees.
    Image {
        media_type: String,
        base64: Arc<str>,
    },
    /// A PDF the model reads as a document.
    Pdf { name: String, base64: Arc<str> },
    /// A file given as its text (a text file, or a PDF's extracted text).
    Text { name: String, text: Arc<str> },
}

impl Attachment {
    /// A text file as the words the model reads: its name, then its text in a fence longer
    /// than any run of backticks inside it.
    pub fn text_block(name: &str, text: &str) -> String {
        let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        format!("{name}:\n{fence}\n{text}\n{fence}")
    }
}

/// A chat completion to stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub model: String,
    pub system: Option<String>,
    pub turns: Vec<Turn>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub top_p: Option<f64>,
    /// Where the model stops (at most four, as OpenAI takes).
    pub stop: Vec<String>,
    /// The functions the model may call.
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
}

/// Why a reply ended, in the AI SDK's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FinishReason {
    Stop,
    Length,
    ContentFilter,
    ToolCalls,
    Error,
    Other,
}

/// What a provider's stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Text(String),
    /// A whole tool call (its pieces gathered), before the usage and the finish.
    ToolCall(ToolCall),
    Usage {
        input: Option<u64>,
        output: Option<u64>,
    },
    Finish(FinishReason),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the base URL is not allowed: {0}")]
    Blocked(String),
    #[error("{0}")]
    Config(String),
    #[error("the provider refused the API key (check it under Settings → API keys)")]
    InvalidKey,
    #[error("the provider's rate limit or quota is exhausted; try again later")]
    RateLimited,
    #[error("the provider does not know this model")]
    ModelNotFound,
    #[error("the provider is overloaded; try again shortly")]
    Overloaded,
    #[error("the provider did not answer in time ({0})")]
    Timeout(&'static str),
    #[error("cannot reach the provider: {0}")]
    Network(String),
    #[error("the provider answered {status}: {message}")]
    Http { status: u16, message: String },
    #[error("the provider's stream could not be read: {0}")]
    Protocol(String),
}

impl ProviderError {
    /// Worth trying again before anything was streamed.
    fn retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited
                | ProviderError::Overloaded
                | ProviderError::Http {
                    status: 500..=599,
                    ..
                }
        )
    }
}

/// Limits of one streamed call.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Until the answer's headers and first event.
    pub first_byte: Duration,
    /// Between two chunks of the stream.
    pub idle: Duration,
    /// Attempts after the first, on 429 and 5xx before anything was streamed.
    pub retries: u32,
    pub backoff: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            retries: 2,
            backoff: Duration::from_millis(500),
        }
    }
}

/// The provider's error for an HTTP status, with its message (never the key) when useful.
fn status_error(status: u16, body: &str, key: Option<&ApiKey>) -> ProviderError {
    match status {
        401 | 403 => ProviderError::InvalidKey,
        404 => ProviderError::ModelNotFound,
        429 => ProviderError::RateLimited,
        503 | 529 => ProviderError::Overloaded,
        _ => {
            let message = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .or_else(|| v.pointer("/message"))
                        .or_else(|| v.pointer("/0/error/message"))
                        .and_then(|m| m.as_str().map(str::to_owned))
                })
                .unwrap_or_else(|| body.chars().take(200).collect());
            ProviderError::Http {
                status,
                message: scrub(&message, key),
            }
        }
    }
}

/// `text` without the key, or any long piece of it, in it.
fn scrub(text: &str, key: Option<&ApiKey>) -> String {
    let Some(key) = key.map(ApiKey::expose).filter(|k| k.len() >= 8) else {
        return text.to_owned();
    };
    let mut out = text.replace(key, "***");
    for window in key.as_bytes().windows(8) {
        if let Ok(piece) = std::str::from_utf8(window) {
            if out.contains(piece) {
                out = out.replace(piece, "***");
            }
        }
    }
    out
}

/// Stream a completion: deltas arrive on the returned channel; dropping it cancels the call
/// (and the provider request with it).
pub fn stream(
    guard: Guard,
    endpoint: Endpoint,
    request: Request,
    timeouts: Timeouts,
) -> mpsc::Receiver<Result<Delta, ProviderError>> {
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        let outcome = tokio::select! {
            outcome = run(&guard, &endpoint, &request, timeouts, &sender) => outcome,
            () = sender.closed() => return,
        };
        if let Err(error) = outcome {
            let _ = sender.send(Err(error)).await;
        }
    });
    receiver
}

async fn run(
    guard: &Guard,
    endpoint: &Endpoint,
    request: &Request,
    timeouts: Timeouts,
    sender: &mpsc::Sender<Result<Delta, ProviderError>>,
) -> Result<(), ProviderError> {
    let (url, headers, body) = format(endpoint.provider.wire()).request(endpoint, request)?;
    let checked = guard.check(&url).await?;
    let client = client_for(&checked, timeouts)?;
    let mut attempt = 0;
    let response = loop {
        let sent = tokio::time::timeout(
            timeouts.first_byte,
            client
                .post(url.clone())
                .headers(headers.clone())
                .json(&body)
                .send(),
        )
        .await
        .map_err(|_| ProviderError::Timeout("no answer"))?
        .map_err(|e| network_error(&e, endpoint.key.as_ref()))?;
        let status = sent.status().as_u16();
        if (200..300).contains(&status) {
            break sent;
        }
        if (300..400).contains(&status) {
            return Err(ProviderError::Blocked(format!(
                "the provider redirected (status {status}); redirects are not followed"
            )));
        }
        let retry_after = sent
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = sent.text().await.unwrap_or_default();
        let error = status_error(status, &text, endpoint.key.as_ref());
        if attempt >= timeouts.retries || !error.retryable() {
            return Err(error);
        }
        attempt += 1;
        let wait = retry_after
            .filter(|w| *w <= Duration::from_secs(10))
            .unwrap_or(timeouts.backoff * 3u32.pow(attempt - 1));
        tracing::info!(status, attempt, "provider busy, trying again");
        tokio::time::sleep(wait).await;
    };
    let mut parser = Parser::new(endpoint.provider.wire());
    let mut decoder = sse::SseDecoder::default();
    let mut body = response.bytes_stream();
    let mut first = true;
    loop {
        let limit = if first {
            timeouts.first_byte
        } else {
            timeouts.idle
        };
        let chunk = match tokio::time::timeout(limit, body.next()).await {
            Err(_) => {
                return Err(ProviderError::Timeout(if first {
                    "no first token"
                } else {
                    "the stream stalled"
                }))
            }
            Ok(None) => break,
            Ok(Some(chunk)) => chunk.map_err(|e| network_error(&e, endpoint.key.as_ref()))?,
        };
        first = false;
        let events = decoder
            .feed(&chunk)
            .map_err(|e| ProviderError::Protocol(e.to_string()))?;
        for event in events {
            for delta in parser.event(&event)? {
                if sender.send(Ok(delta)).await.is_err() {
                    return Ok(());
                }
            }
        }
        if parser.done {
            // The connection goes back to the client's pool only once its body is read to
            // its end (the chunked terminator, which comes right after the end marker): read
            // it aside, bounded, so the reply ends now and the next request reuses it.
            tokio::spawn(drain(body));
            break;
        }
    }
    if let Some(event) = decoder.finish() {
        for delta in parser.event(&event)? {
            let _ = sender.send(Ok(delta)).await;
        }
    }
    for delta in parser.end()? {
        let _ = sender.send(Ok(delta)).await;
    }
    Ok(())
}

/// Read what is left of a body after its end marker, up to 8 KiB within a second, and drop
/// it (closing the connection if it did not end). An honest provider's terminator follows its
/// marker at once; a hostile one holds a socket and a task for a second at most.
async fn drain<S, B>(mut body: S)
where
    S: futures_util::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut left = 8usize << 10;
        while let Some(Ok(chunk)) = body.next().await {
            left = match left.checked_sub(chunk.as_ref().len()) {
                Some(left) => left,
                None => return,
            };
        }
    })
    .await;
}

/// A client that connects only to the checked address and follows no redirect. Clients are
/// kept per (host, address, connect timeout): building one (its TLS roots) costs more than a
/// whole request to a local model.
pub fn client_for(
    checked: &guard::Checked,
    timeouts: Timeouts,
) -> Result<reqwest::Client, ProviderError> {
    type Key = (String, std::net::SocketAddr, Duration);
    static CLIENTS: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<Key, reqwest::Client>>,
    > = std::sync::LazyLock::new(Default::default);
    let key = (checked.host.clone(), checked.address, timeouts.connect);
    if let Some(client) = CLIENTS.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(client.clone());
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeouts.connect)
        .no_proxy();
    if checked.host.parse::<std::net::IpAddr>().is_err() {
        builder = builder.resolve(&checked.host, checked.address);
    }
    let client = builder
        .build()
        .map_err(|e| ProviderError::Network(e.to_string()))?;
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if clients.len() >= 256 {
        clients.clear();
    }
    clients.insert(key, client.clone());
    Ok(client)
}

fn network_error(error: &reqwest::Error, key: Option<&ApiKey>) -> ProviderError {
    if error.is_timeout() {
        return ProviderError::Timeout("connecting");
    }
    // reqwest's message names the URL; keys travel in headers, but scrub anyway.
    ProviderError::Network(scrub(&error.without_url_ref(), key))
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(url.as_str(), &guard::redact_url(url));
        }
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// Turns one wire format's events into deltas.
pub(crate) struct Parser {
    wire: Wire,
    done: bool,
    finish: Option<FinishReason>,
    usage: (Option<u64>, Option<u64>),
    /// Tool calls as their pieces arrive, by the wire format's own index of them.
    tool_calls: Vec<(u64, ToolCall)>,
}

/// The most tool calls one reply may make, and the longest arguments of one: a provider
/// cannot make the server hold more.
const MAX_TOOL_CALLS: usize = 128;
const MAX_TOOL_ARGUMENTS: usize = 1 << 20;

impl Parser {
    fn new(wire: Wire) -> Parser {
        Parser {
            wire,
            done: false,
            finish: None,
            usage: (None, None),
            tool_calls: Vec::new(),
        }
    }

    /// The tool call the wire format numbers `index`, begun when first seen.
    fn tool_call(&mut self, index: u64) -> Result<&mut ToolCall, ProviderError> {
        let at = match self.tool_calls.iter().position(|(i, _)| *i == index) {
            Some(at) => at,
            None if self.tool_calls.len() < MAX_TOOL_CALLS => {
                self.tool_calls.push((
                    index,
                    ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    },
                ));
                self.tool_calls.len() - 1
            }
            None => {
                return Err(ProviderError::Protocol(format!(
                    "more than {MAX_TOOL_CALLS} tool calls in one reply"
                )))
            }
        };
        Ok(&mut self.tool_calls[at].1)
    }

    /// Add a piece of a tool call's arguments.
    fn tool_arguments(&mut self, index: u64, piece: &str) -> Result<(), ProviderError> {
        let call = self.tool_call(index)?;
        if call.arguments.len() + piece.len() > MAX_TOOL_ARGUMENTS {
            return Err(ProviderError::Protocol(
                "a tool call's arguments are over 1 MiB".into(),
            ));
        }
        call.arguments.push_str(piece);
        Ok(())
    }

    fn event(&mut self, event: &sse::Event) -> Result<Vec<Delta>, ProviderError> {
        format(self.wire).event(self, event)
    }

    /// After the stream: usage and finish reason, once each.
    fn end(&mut self) -> Result<Vec<Delta>, ProviderError> {
        format(self.wire).ended(self)?;
        let mut out: Vec<Delta> = std::mem::take(&mut self.tool_calls)
            .into_iter()
            .enumerate()
            .map(|(n, (_, mut call))| {
                if call.id.is_empty() {
                    call.id = format!("call_{n}");
                }
                if call.arguments.is_empty() {
                    call.arguments = "{}".into();
                }
                Delta::ToolCall(call)
            })
            .collect();
        if self.usage != (None, None) {
            out.push(Delta::Usage {
                input: self.usage.0,
                output: self.usage.1,
            });
        }
        out.push(Delta::Finish(self.finish.unwrap_or(FinishReason::Stop)));
        Ok(out)
    }
}

fn json(data: &str) -> Result<serde_json::Value, ProviderError> {
    serde_json::from_str(data)
        .map_err(|e| ProviderError::Protocol(format!("malformed JSON in the stream: {e}")))
}

/// The models the provider offers, asked live: `GET {base}models` (OpenAI-compatible and
/// Ollama's `/v1`), `GET /v1/models` (Anthropic), `GET /v1beta/models` (Gemini).
pub async fn list_models(
    guard: &Guard,
    endpoint: &Endpoint,
    timeouts: Timeouts,
) -> Result<Vec<String>, ProviderError> {
    let wire = format(endpoint.provider.wire());
    let (url, headers) = wire.models(endpoint)?;
    let checked = guard.check(&url).await?;
    let client = client_for(&checked, timeouts)?;
    let response =
        tokio::time::timeout(timeouts.first_byte, client.get(url).headers(headers).send())
            .await
            .map_err(|_| ProviderError::Timeout("no answer"))?
            .map_err(|e| network_error(&e, endpoint.key.as_ref()))?;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(timeouts.idle, response.text())
        .await
        .map_err(|_| ProviderError::Timeout("the answer stalled"))?
        .map_err(|e| network_error(&e, endpoint.key.as_ref()))?;
    if !(200..300).contains(&status) {
        return Err(status_error(status, &body, endpoint.key.as_ref()));
    }
    let mut names = wire.model_names(&json(&body)?);
    names.sort();
    names.dedup();
    Ok(names)
}

/// Check, before anything is stored or sent, that the guard lets requests for `model` reach
/// the endpoint (the stream checks again, and connects to what it resolved itself).
pub async fn preflight(
    guard: &Guard,
    endpoint: &Endpoint,
    model: &str,
) -> Result<(), ProviderError> {
    let probe = Request {
        model: model.to_owned(),
        ..Request::default()
    };
    let (url, _, _) = format(endpoint.provider.wire()).request(endpoint, &probe)?;
    guard.check(&url).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_scrubbed_from_provider_messages() {
        let key = ApiKey::new("sk-live-abcdefghijklmnop".into());
        let message = scrub(
            "Incorrect API key provided: sk-live-abcd****mnop. Or sk-live-abcdefghijklmnop.",
            Some(&key),
        );
        assert!(
            !message.contains("abcdefgh") && !message.contains("sk-live-abcdefghijklmnop"),
            "{message}"
        );
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
    }

    #[test]
    fn endpoints_tolerate_a_pasted_completions_path() {
        let e = Endpoint::new(
            Provider::Custom,
            Some("https://llm.example.com/v1/chat/completions/"),
            None,
        )
        .unwrap();
        assert_eq!(e.base_url.as_str(), "https://llm.example.com/v1/");
        assert!(
            Endpoint::new(Provider::Openai, None, None).is_err(),
            "OpenAI needs a key"
        );
        assert!(
            Endpoint::new(Provider::Custom, None, None).is_err(),
            "custom needs a URL"
        );
    }
}
