//! Each wire format against a fake provider on loopback that replays the provider's
//! documented stream byte for byte, cut at awkward places, and misbehaves on demand.

use std::time::Duration;

use sambung_ai::fake::{
    FakeProvider, Script, ANTHROPIC_STREAM as ANTHROPIC, ANTHROPIC_TOOL_STREAM,
    GEMINI_STREAM as GEMINI, GEMINI_TOOL_STREAM, OPENAI_STREAM as OPENAI, OPENAI_TOOL_STREAM,
};
use sambung_ai::{
    stream, ApiKey, Delta, Endpoint, FinishReason, Guard, Provider, ProviderError, Request, Role,
    Timeouts, Tool, ToolCall, ToolChoice, ToolResult, Turn,
};

/// The shared fake provider, with a guard that lets the server reach it.
struct Fake {
    inner: FakeProvider,
}

impl Fake {
    async fn start(scripts: Vec<Script>) -> Fake {
        let inner = FakeProvider::start().await.unwrap();
        for script in scripts {
            inner.push(script);
        }
        Fake { inner }
    }

    /// A fake that keeps its connections open, as the providers' servers do.
    async fn keeping_connections(scripts: Vec<Script>) -> Fake {
        let fake = Fake::start(scripts).await;
        Fake {
            inner: fake.inner.keeping_connections(),
        }
    }

    fn guard(&self) -> Guard {
        Guard::new(&[format!("127.0.0.1:{}", self.inner.port)]).unwrap()
    }

    fn endpoint(&self, provider: Provider, path: &str) -> Endpoint {
        Endpoint::new(
            provider,
            Some(&self.inner.url(path)),
            Some(ApiKey::new("sk-test-SECRETKEY123".into())),
        )
        .unwrap()
    }

    fn requests(&self) -> Vec<String> {
        self.inner.requests()
    }

    fn port(&self) -> u16 {
        self.inner.port
    }
}

fn request() -> Request {
    Request {
        model: "test-model".into(),
        system: Some("Be brief.".into()),
        turns: vec![Turn {
            role: Role::User,
            content: "Halo?".into(),
            attachments: Vec::new(),
            ..Turn::default()
        }],
        temperature: Some(0.5),
        max_tokens: Some(100),
        top_p: None,
        stop: Vec::new(),
        ..Request::default()
    }
}

fn quick() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_secs(5),
        idle: Duration::from_millis(500),
        retries: 2,
        backoff: Duration::from_millis(10),
    }
}

/// Everything the stream yields: text joined, the other deltas, the error if any.
async fn collect(guard: Guard, endpoint: Endpoint) -> (String, Vec<Delta>, Option<ProviderError>) {
    collect_request(guard, endpoint, request()).await
}

#[tokio::test]
async fn openai_compatible_streams_text_usage_and_finish_whatever_the_chunking() {
    // 7-byte pieces cut JSON objects and the multi-byte ☕ apart.
    for piece in [1, 7, 64, 4096] {
        let fake = Fake::start(vec![Script::sse(OPENAI, piece)]).await;
        let (text, others, error) = collect(
            fake.guard(),
            fake.endpoint(Provider::Openrouter, "/api/v1/chat/completions"),
        )
        .await;
        assert_eq!(error, None);
        assert_eq!(text, "Halo, apa kabar? ☕", "pieces of {piece}");
        assert_eq!(
            others,
            [
                Delta::Usage {
                    input: Some(9),
                    output: Some(5)
                },
                Delta::Finish(FinishReason::Stop)
            ]
        );
        let sent = fake.requests()[0].clone();
        assert!(
            sent.starts_with("POST /api/v1/chat/completions HTTP/1.1"),
            "{sent}"
        );
        assert!(sent
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-test-secretkey123"));
        let body: serde_json::Value =
            serde_json::from_str(&sent[sent.find("\r\n\r\n").unwrap() + 4..]).unwrap();
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(
            body["messages"][0],
            serde_json::json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(body["max_tokens"], 100);
    }
}

#[tokio::test]
async fn anthropic_streams_with_pings_and_reports_its_stop_reason() {
    for piece in [3, 4096] {
        let fake = Fake::start(vec![Script::sse(ANTHROPIC, piece)]).await;
        let (text, others, error) =
            collect(fake.guard(), fake.endpoint(Provider::Anthropic, "")).await;
        assert_eq!(error, None);
        assert_eq!(text, "Selamat pagi!");
        assert_eq!(
            others,
            [
                Delta::Usage {
                    input: Some(25),
                    output: Some(15)
                },
                Delta::Finish(FinishReason::Length)
            ]
        );
        let sent = fake.requests()[0].clone();
        let lower = sent.to_ascii_lowercase();
        assert!(sent.starts_with("POST /v1/messages HTTP/1.1"), "{sent}");
        assert!(
            lower.contains("x-api-key: sk-test-secretkey123")
                && lower.contains("anthropic-version: 2023-06-01")
        );
        let body: serde_json::Value =
            serde_json::from_str(&sent[sent.find("\r\n\r\n").unwrap() + 4..]).unwrap();
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(
            body["messages"],
            serde_json::json!([{"role": "user", "content": "Halo?"}])
        );
    }
}

#[tokio::test]
async fn an_anthropic_error_event_and_a_cut_stream_are_errors_with_the_text_so_far() {
    let overloaded = ANTHROPIC.replace(
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"pagi!\"}}\n\n",
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    let fake = Fake::start(vec![Script::sse(&overloaded, 4096)]).await;
    let (text, _, error) = collect(fake.guard(), fake.endpoint(Provider::Anthropic, "")).await;
    assert_eq!(
        (text.as_str(), error),
        ("Selamat ", Some(ProviderError::Overloaded))
    );

    let cut = &ANTHROPIC[..ANTHROPIC.find("event: message_delta").unwrap() + 30];
    let fake = Fake::start(vec![Script::sse(cut, 4096)]).await;
    let (text, _, error) = collect(fake.guard(), fake.endpoint(Provider::Anthropic, "")).await;
    assert_eq!(text, "Selamat pagi!");
    assert!(
        matches!(error, Some(ProviderError::Protocol(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn gemini_streams_until_the_body_ends() {
    let fake = Fake::start(vec![Script::sse(GEMINI, 5)]).await;
    let (text, others, error) = collect(fake.guard(), fake.endpoint(Provider::Google, "")).await;
    assert_eq!(error, None);
    assert_eq!(text, "Terima kasih.");
    assert_eq!(
        others,
        [
            Delta::Usage {
                input: Some(7),
                output: Some(4)
            },
            Delta::Finish(FinishReason::Stop)
        ]
    );
    let sent = fake.requests()[0].clone();
    assert!(
        sent.starts_with("POST /v1beta/models/test-model:streamGenerateContent?alt=sse HTTP/1.1"),
        "{sent}"
    );
    assert!(sent
        .to_ascii_lowercase()
        .contains("x-goog-api-key: sk-test-secretkey123"));
    let body: serde_json::Value =
        serde_json::from_str(&sent[sent.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(body["systemInstruction"]["parts"][0]["text"], "Be brief.");
    assert_eq!(body["contents"][0]["role"], "user");
    assert_eq!(body["generationConfig"]["maxOutputTokens"], 100);
}

#[tokio::test]
async fn a_kept_connection_serves_the_next_request_once_the_body_has_ended() {
    // OpenAI's stream ends at its marker, but the body goes on (a comment 50 ms later): the
    // connection is reused only when the rest is read after the reply ended. Gemini's ends
    // with its body (the chunked terminator).
    let after_the_end = |body: &str| {
        let mut script = Script::sse(body, 4096).paced(Duration::from_millis(50));
        script.pieces.push(b": after the end\n\n".to_vec());
        script
    };
    let fake = Fake::keeping_connections(vec![
        after_the_end(OPENAI),
        after_the_end(OPENAI),
        Script::sse(GEMINI, 5),
        Script::sse(GEMINI, 5),
    ])
    .await;
    for _ in 0..2 {
        let (text, _, error) = collect(fake.guard(), fake.endpoint(Provider::Openai, "/v1")).await;
        assert_eq!((text.as_str(), error), ("Halo, apa kabar? ☕", None));
        // The rest of the body comes 50 ms after the reply's end; a margin for a busy machine.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        fake.inner.connections(),
        1,
        "the second request reused the first's connection"
    );
    for _ in 0..2 {
        let (text, _, error) = collect(fake.guard(), fake.endpoint(Provider::Google, "")).await;
        assert_eq!((text.as_str(), error), ("Terima kasih.", None));
    }
    assert_eq!(fake.inner.connections(), 1);
}

#[tokio::test]
async fn http_errors_map_to_clear_messages_and_busy_answers_are_retried() {
    let cases = [
        (
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-test-SECR***123"}}"#,
            ProviderError::InvalidKey,
        ),
        (
            404,
            r#"{"error":{"message":"The model does not exist"}}"#,
            ProviderError::ModelNotFound,
        ),
    ];
    for (status, body, expected) in cases {
        let fake = Fake::start(vec![Script::json(status, body)]).await;
        let (_, _, error) = collect(fake.guard(), fake.endpoint(Provider::Openai, "/v1")).await;
        assert_eq!(error, Some(expected));
    }
    // 429, then 503, then the stream: retried before the first token.
    let fake = Fake::start(vec![
        Script::json(429, "{}"),
        Script::json(503, "{}"),
        Script::sse(OPENAI, 4096),
    ])
    .await;
    let (text, _, error) = collect(fake.guard(), fake.endpoint(Provider::Openai, "/v1")).await;
    assert_eq!((text.as_str(), error), ("Halo, apa kabar? ☕", None));
    assert_eq!(fake.requests().len(), 3);
    // 500 every time: given up after the retries, with the provider's message (key scrubbed).
    let body = r#"{"error":{"message":"upstream failed for sk-test-SECRETKEY123"}}"#;
    let fake = Fake::start(vec![
        Script::json(500, body),
        Script::json(500, body),
        Script::json(500, body),
    ])
    .await;
    let (_, _, error) = collect(fake.guard(), fake.endpoint(Provider::Openai, "/v1")).await;
    let Some(ProviderError::Http {
        status: 500,
        message,
    }) = error
    else {
        panic!("{error:?}")
    };
    assert!(!message.contains("SECRETKEY"), "{message}");
}

#[tokio::test]
async fn malformed_json_a_stall_and_a_redirect_are_refused() {
    let fake = Fake::start(vec![Script::sse("data: {\"choices\": [oops\n\n", 4096)]).await;
    let (_, _, error) = collect(fake.guard(), fake.endpoint(Provider::Openai, "/v1")).await;
    assert!(
        matches!(error, Some(ProviderError::Protocol(_))),
        "{error:?}"
    );

    let fake = Fake::start(vec![Script::sse(OPENAI, 40).stalling_before(4)]).await;
    let (_, _, error) = collect(fake.guard(), fake.endpoint(Provider::Openai, "/v1")).await;
    assert_eq!(error, Some(ProviderError::Timeout("the stream stalled")));

    let mut redirect = Script::json(302, "");
    redirect
        .headers
        .push(("location".into(), "http://127.0.0.1:5432/".into()));
    let fake = Fake::start(vec![redirect]).await;
    let (_, _, error) = collect(fake.guard(), fake.endpoint(Provider::Openai, "/v1")).await;
    assert!(
        matches!(error, Some(ProviderError::Blocked(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn base_urls_at_private_addresses_are_refused_before_any_request() {
    let fake = Fake::start(vec![Script::sse(OPENAI, 4096)]).await;
    let not_allowed = Guard::new(&[]).unwrap();
    for base in [
        format!("http://127.0.0.1:{}/v1", fake.port()),
        format!("https://127.0.0.1:{}/v1", fake.port()),
        "https://169.254.169.254/v1".to_owned(),
        "https://localhost/v1".to_owned(),
    ] {
        let endpoint = Endpoint::new(Provider::Custom, Some(&base), None).unwrap();
        let (_, _, error) = collect(not_allowed.clone(), endpoint).await;
        assert!(
            matches!(error, Some(ProviderError::Blocked(_))),
            "{base}: {error:?}"
        );
    }
    assert!(fake.requests().is_empty(), "nothing reached the fake");
}

#[tokio::test]
async fn models_are_listed_live_from_each_provider() {
    let openai = Script::sse(
        r#"{"object":"list","data":[{"id":"gpt-4o","object":"model"},{"id":"gpt-4o-mini","object":"model"}]}"#,
        4096,
    );
    let anthropic = Script::sse(
        r#"{"data":[{"type":"model","id":"claude-sonnet-4","display_name":"Claude"}],"has_more":false}"#,
        4096,
    );
    let gemini = Script::sse(
        r#"{"models":[{"name":"models/gemini-2.0-flash"},{"name":"models/gemini-1.5-pro"}]}"#,
        4096,
    );
    for (provider, path, script, expected, request_line) in [
        (
            Provider::Openai,
            "/v1",
            openai,
            vec!["gpt-4o", "gpt-4o-mini"],
            "GET /v1/models HTTP/1.1",
        ),
        (
            Provider::Anthropic,
            "",
            anthropic,
            vec!["claude-sonnet-4"],
            "GET /v1/models HTTP/1.1",
        ),
        (
            Provider::Google,
            "",
            gemini,
            vec!["gemini-1.5-pro", "gemini-2.0-flash"],
            "GET /v1beta/models?pageSize=1000 HTTP/1.1",
        ),
    ] {
        let fake = Fake::start(vec![script]).await;
        let names = sambung_ai::list_models(&fake.guard(), &fake.endpoint(provider, path), quick())
            .await
            .unwrap();
        assert_eq!(names, expected);
        assert!(fake.requests()[0].starts_with(request_line), "{provider:?}");
    }
}

/// A conversation where the model called a tool and the caller answered it, with the tools
/// offered again and one of them required.
fn tool_request() -> Request {
    Request {
        turns: vec![
            Turn {
                role: Role::User,
                content: "Weather in Jakarta?".into(),
                ..Turn::default()
            },
            Turn {
                role: Role::Assistant,
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"location":"Bogor"}"#.into(),
                }],
                ..Turn::default()
            },
            Turn {
                role: Role::User,
                tool_results: vec![ToolResult {
                    call_id: "call_1".into(),
                    name: "get_weather".into(),
                    content: "31°C, rain".into(),
                }],
                content: "And Jakarta?".into(),
                ..Turn::default()
            },
        ],
        tools: vec![Tool {
            name: "get_weather".into(),
            description: Some("The weather at a place".into()),
            parameters: serde_json::json!({"type": "object", "properties": {"location": {"type": "string"}}}),
        }],
        tool_choice: Some(ToolChoice::Function("get_weather".into())),
        ..request()
    }
}

/// The tool call each stream carries, gathered whole from its pieces (its arguments as the
/// model wrote them), then the finish.
fn called(others: &[Delta], id: &str, arguments: &str) {
    let Delta::ToolCall(call) = &others[0] else {
        panic!("no tool call first: {others:?}");
    };
    assert_eq!(
        (
            call.id.as_str(),
            call.name.as_str(),
            call.arguments.as_str()
        ),
        (id, "get_weather", arguments)
    );
    assert_eq!(others.last(), Some(&Delta::Finish(FinishReason::ToolCalls)));
}

fn sent_body(fake: &Fake) -> serde_json::Value {
    let sent = fake.requests()[0].clone();
    serde_json::from_str(&sent[sent.find("\r\n\r\n").unwrap() + 4..]).unwrap()
}

/// Everything the stream of `request` yields: text joined, the other deltas, the error if any.
async fn collect_request(
    guard: Guard,
    endpoint: Endpoint,
    request: Request,
) -> (String, Vec<Delta>, Option<ProviderError>) {
    let mut receiver = stream(guard, endpoint, request, quick());
    let (mut text, mut others, mut error) = (String::new(), Vec::new(), None);
    while let Some(item) = receiver.recv().await {
        match item {
            Ok(Delta::Text(t)) => text.push_str(&t),
            Ok(other) => others.push(other),
            Err(e) => error = Some(e),
        }
    }
    (text, others, error)
}

#[tokio::test]
async fn each_wire_format_carries_tools_calls_and_results_both_ways() {
    use serde_json::json;
    // OpenAI: the call's arguments in pieces, cut anywhere.
    for piece in [5, 4096] {
        let fake = Fake::start(vec![Script::sse(OPENAI_TOOL_STREAM, piece)]).await;
        let endpoint = fake.endpoint(Provider::Openai, "/v1");
        let (text, others, error) = collect_request(fake.guard(), endpoint, tool_request()).await;
        assert_eq!((text.as_str(), error), ("", None));
        called(&others, "call_abc123", r#"{"location": "Jakarta"}"#);
        let body = sent_body(&fake);
        assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "function": {"name": "get_weather"}})
        );
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages[2]["tool_calls"][0]["id"], "call_1");
        assert_eq!(messages[2]["content"], serde_json::Value::Null);
        assert_eq!(
            messages[3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "31°C, rain"})
        );
        assert_eq!(
            messages[4],
            json!({"role": "user", "content": "And Jakarta?"})
        );
    }

    // Anthropic: text, then a tool_use block whose input comes as JSON pieces.
    let fake = Fake::start(vec![Script::sse(ANTHROPIC_TOOL_STREAM, 9)]).await;
    let endpoint = fake.endpoint(Provider::Anthropic, "");
    let (text, others, error) = collect_request(fake.guard(), endpoint, tool_request()).await;
    assert_eq!((text.as_str(), error), ("Let me check.", None));
    called(
        &others,
        "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        r#"{"location": "Jakarta"}"#,
    );
    let body = sent_body(&fake);
    assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    assert_eq!(
        body["messages"][1]["content"],
        json!([{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Bogor"}}])
    );
    assert_eq!(
        body["messages"][2]["content"],
        json!([{"type": "tool_result", "tool_use_id": "call_1", "content": "31°C, rain"},
               {"type": "text", "text": "And Jakarta?"}])
    );

    // Gemini: the call whole in one part, its id ours.
    let fake = Fake::start(vec![Script::sse(GEMINI_TOOL_STREAM, 11)]).await;
    let endpoint = fake.endpoint(Provider::Google, "");
    let (_, others, error) = collect_request(fake.guard(), endpoint, tool_request()).await;
    assert_eq!(error, None);
    called(&others, "call_0", r#"{"location":"Jakarta"}"#);
    let body = sent_body(&fake);
    assert_eq!(
        body["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );
    assert_eq!(
        body["toolConfig"]["functionCallingConfig"],
        json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]})
    );
    assert_eq!(
        body["contents"][1]["parts"],
        json!([{"functionCall": {"name": "get_weather", "args": {"location": "Bogor"}}}])
    );
    assert_eq!(
        body["contents"][2]["parts"][0],
        json!({"functionResponse": {"name": "get_weather", "response": {"content": "31°C, rain"}}})
    );
}

/// A provider cannot make the server gather tool calls without end.
#[tokio::test]
async fn a_flood_of_tool_calls_is_refused() {
    let mut flood = String::new();
    for index in 0..200 {
        flood.push_str(&format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":{index},\"id\":\"c{index}\",\"function\":{{\"name\":\"f\",\"arguments\":\"{{}}\"}}}}]}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    flood.push_str("data: [DONE]\n\n");
    let fake = Fake::start(vec![Script::sse(&flood, 4096)]).await;
    let endpoint = fake.endpoint(Provider::Openai, "/v1");
    let (_, others, error) = collect_request(fake.guard(), endpoint, tool_request()).await;
    assert!(
        matches!(&error, Some(ProviderError::Protocol(why)) if why.contains("tool calls")),
        "{error:?} {others:?}"
    );
    assert!(others.is_empty(), "nothing half-gathered is passed on");
}
