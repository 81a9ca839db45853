//! A fake AI provider on loopback, for the tests and the `generate` benchmark: each request
//! gets the next scripted answer (or the default one), written piece by piece at a set pace
//! (so chunk boundaries fall where a test wants them: inside a JSON object, inside a UTF-8
//! character), and every request it received is kept. It closes each connection after its
//! answer, or keeps it open for the next request as real providers do
//! ([`FakeProvider::keeping_connections`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A chat completions stream as OpenAI documents it, behind a comment line as OpenRouter
/// sends one first, replayed by the tests of every layer.
pub const OPENAI_STREAM: &str = concat!(
    ": OPENROUTER PROCESSING\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Halo, \"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"apa kabar? ☕\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":5,\"total_tokens\":14}}\n\n",
    "data: [DONE]\n\n",
);

/// A Messages API stream as Anthropic documents it (a ping among the events, a
/// `max_tokens` stop), replayed by the tests of every layer.
pub const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\n",
    "data: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Selamat \"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"pagi!\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

/// A chat completions stream calling a tool, as OpenAI documents it: the call's id and name
/// first, its arguments in pieces, `finish_reason: "tool_calls"`.
pub const OPENAI_TOOL_STREAM: &str = concat!(
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_abc123\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"loc\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ation\\\": \\\"Jakarta\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":80,\"completion_tokens\":17,\"total_tokens\":97}}\n\n",
    "data: [DONE]\n\n",
);

/// A Messages API stream using a tool, as Anthropic documents it: text, then a `tool_use`
/// block whose input arrives as `input_json_delta` pieces, `stop_reason: "tool_use"`.
pub const ANTHROPIC_TOOL_STREAM: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-haiku-20240307\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2},\"content\":[],\"stop_reason\":null}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me check.\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"Jakarta\\\"}\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

/// A `streamGenerateContent?alt=sse` stream as Google documents it: no end marker, usage in
/// every chunk, the finish in the last.
pub const GEMINI_STREAM: &str = concat!(
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Terima \"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 7,\"totalTokenCount\": 7},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"kasih.\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 7,\"candidatesTokenCount\": 4,\"totalTokenCount\": 11},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n",
);

/// A Gemini stream calling a function, as Google documents it (the call whole in one part).
pub const GEMINI_TOOL_STREAM: &str =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"location\": \"Jakarta\"}}}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 60,\"candidatesTokenCount\": 7,\"totalTokenCount\": 67},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n";

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Script {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, written one piece at a time.
    pub pieces: Vec<Vec<u8>>,
    /// Pause this long before each piece (a provider's pace).
    pub pace: Duration,
    /// Stop writing (keeping the connection open) before this piece.
    pub stall_before: Option<usize>,
}

impl Script {
    /// A `text/event-stream` body cut into pieces of `piece` bytes.
    pub fn sse(body: &str, piece: usize) -> Script {
        Script {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            pieces: body
                .as_bytes()
                .chunks(piece.max(1))
                .map(<[u8]>::to_vec)
                .collect(),
            pace: Duration::from_millis(1),
            stall_before: None,
        }
    }

    /// A JSON answer with `status`.
    pub fn json(status: u16, body: &str) -> Script {
        Script {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            pieces: vec![body.as_bytes().to_vec()],
            pace: Duration::ZERO,
            stall_before: None,
        }
    }

    pub fn paced(mut self, pace: Duration) -> Script {
        self.pace = pace;
        self
    }

    pub fn stalling_before(mut self, piece: usize) -> Script {
        self.stall_before = Some(piece);
        self
    }
}

/// The fake provider: `push` scripts, point a model's base URL at [`FakeProvider::url`].
#[derive(Clone)]
pub struct FakeProvider {
    pub port: u16,
    scripts: Arc<Mutex<VecDeque<Script>>>,
    /// Answered when no script is queued.
    fallback: Arc<Mutex<Option<Script>>>,
    requests: Arc<Mutex<Vec<String>>>,
    /// Shared with the accepting task, which holds a clone made before any setting.
    keep_requests: Arc<AtomicBool>,
    keep_alive: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    /// For each answer whose first body piece was written, when its request was read and
    /// when that piece was: the fake's own time to first token, which a benchmark subtracts.
    answered: Arc<Mutex<Vec<Answered>>>,
}

/// When the fake read a request and when it began to write its answer's first body piece
/// (before the write, so that no reader can see the piece before this time).
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    pub request_read: std::time::Instant,
    pub first_piece: std::time::Instant,
}

impl Answered {
    /// The fake's own time to first token.
    pub fn own_first_token(&self) -> Duration {
        self.first_piece - self.request_read
    }
}

impl FakeProvider {
    pub async fn start() -> std::io::Result<FakeProvider> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let fake = FakeProvider {
            port,
            scripts: Arc::default(),
            fallback: Arc::default(),
            requests: Arc::default(),
            keep_requests: Arc::new(AtomicBool::new(true)),
            keep_alive: Arc::default(),
            connections: Arc::default(),
            answered: Arc::default(),
        };
        let server = fake.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move { server.serve(socket).await });
            }
        });
        Ok(fake)
    }

    /// Answer every request without a queued script with `script`, and keep no requests
    /// (a benchmark's many).
    pub fn always(self, script: Script) -> FakeProvider {
        *self.fallback.lock().unwrap_or_else(|e| e.into_inner()) = Some(script);
        self.keep_requests.store(false, Ordering::Relaxed);
        self
    }

    /// Keep each connection open for the next request, every body sent chunked, as the
    /// providers' own servers do (so a client's connection pool is measured as in production).
    pub fn keeping_connections(self) -> FakeProvider {
        self.keep_alive.store(true, Ordering::Relaxed);
        self
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Queue answers for the next requests.
    pub fn push(&self, script: Script) {
        self.scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(script);
    }

    /// Every request received, as text (head and body).
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The fake's own time to first token of every answer so far, in order.
    pub fn first_piece_times(&self) -> Vec<Duration> {
        self.answers()
            .iter()
            .map(Answered::own_first_token)
            .collect()
    }

    /// When every answer so far was asked for and began, in the order their first pieces
    /// were written (an answer whose socket failed before it is not among them).
    pub fn answers(&self) -> Vec<Answered> {
        self.answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `http://127.0.0.1:PORT` and `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answer the requests of one connection: one, or (keeping connections) each in turn.
    async fn serve(&self, mut socket: tokio::net::TcpStream) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let _ = socket.set_nodelay(true);
        let mut unread = Vec::new();
        while let Some(request) = read_request(&mut socket, &mut unread).await {
            let keep_alive = self.keep_alive.load(Ordering::Relaxed);
            if !self.answer(&mut socket, &request, keep_alive).await || !keep_alive {
                break;
            }
        }
        let _ = socket.shutdown().await;
    }

    /// Write the next script's answer to `request`; false once the socket failed.
    async fn answer(
        &self,
        socket: &mut tokio::net::TcpStream,
        request: &[u8],
        chunked: bool,
    ) -> bool {
        let read = std::time::Instant::now();
        if self.keep_requests.load(Ordering::Relaxed) {
            self.requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(String::from_utf8_lossy(request).into_owned());
        }
        let queued = self
            .scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        let fallback = || {
            self.fallback
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        };
        let script = queued.or_else(fallback).unwrap_or_else(|| {
            Script::json(
                500,
                r#"{"error":{"message":"the fake has no script left"}}"#,
            )
        });
        let framing = if chunked {
            "transfer-encoding: chunked"
        } else {
            "connection: close"
        };
        let mut head = format!("HTTP/1.1 {} FAKE\r\n{framing}\r\n", script.status);
        for (name, value) in &script.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if socket.write_all(head.as_bytes()).await.is_err() {
            return false;
        }
        for (i, piece) in script.pieces.iter().enumerate() {
            if script.stall_before == Some(i) {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            if !script.pace.is_zero() {
                tokio::time::sleep(script.pace).await;
            }
            let writing = std::time::Instant::now();
            let written = if !chunked {
                socket.write_all(piece).await
            } else if piece.is_empty() {
                // An empty chunk would end the body.
                Ok(())
            } else {
                let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
                framed.extend_from_slice(piece);
                framed.extend_from_slice(b"\r\n");
                socket.write_all(&framed).await
            };
            if written.is_err() || socket.flush().await.is_err() {
                return false;
            }
            if i == 0 {
                self.answered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Answered {
                        request_read: read,
                        first_piece: writing,
                    });
            }
        }
        !chunked || socket.write_all(b"0\r\n\r\n").await.is_ok()
    }
}

/// The next request on `socket` (head and body, by its `content-length`), starting with what
/// was read past the previous one (`unread`, which keeps what is read past this one); `None`
/// once the peer closed without sending one.
async fn read_request(socket: &mut tokio::net::TcpStream, unread: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut request = std::mem::take(unread);
    let mut buffer = [0u8; 64 << 10];
    // The whole request's length, once its head has come (looked for in what is new only:
    // a request of megabytes is read in linear time).
    let mut whole: Option<usize> = None;
    let mut searched_to = 0;
    loop {
        if whole.is_none() {
            if let Some(at) = request[searched_to..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                let head_end = searched_to + at;
                let length = String::from_utf8_lossy(&request[..head_end])
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                whole = Some(head_end + 4 + length);
            }
            searched_to = request.len().saturating_sub(3);
        }
        if let Some(whole) = whole.filter(|whole| request.len() >= *whole) {
            *unread = request.split_off(whole);
            return Some(request);
        }
        let n = socket.read(&mut buffer).await.unwrap_or(0);
        if n == 0 {
            // The peer stopped sending: answer what came, as a cut request would be.
            return (!request.is_empty()).then_some(request);
        }
        request.extend_from_slice(&buffer[..n]);
    }
}
