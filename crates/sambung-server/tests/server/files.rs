//! Files over HTTP (SPEC section 14): kept by their bytes' type, deduplicated, bounded, served
//! so that nothing in them runs, and read only by who may.

use crate::common;

use common::{Client, Reply, TestApp};
use sambung_files::fixtures::{png, png_claiming};
use serde_json::{json, Value};

/// Upload `bytes` as `name`, the browser claiming `claimed`.
async fn upload(client: &Client, name: &str, claimed: Option<&str>, bytes: Vec<u8>) -> Reply {
    let mut part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
    if let Some(claimed) = claimed {
        part = part.mime_str(claimed).unwrap();
    }
    let form = reqwest::multipart::Form::new().part("file", part);
    client
        .send(
            client
                .http
                .post(client.url("/api/v1/files"))
                .multipart(form),
        )
        .await
}

/// A model at the fake provider that neither sees nor reads PDFs (by its name), and a chat.
async fn text_only_model_and_chat(app: &TestApp, user: &Client, title: &str) -> (Value, Value) {
    let model = ok(
        user.post(
            "/api/v1/models",
            json!({"provider": "custom", "modelId": "text-only", "name": "Text only", "baseUrl": app.provider.url("/v1")}),
        )
        .await,
        201,
    );
    let chat = ok(
        user.post("/api/v1/chats", json!({"title": title})).await,
        201,
    );
    (model, chat)
}

fn ok(reply: Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{reply:?}");
    reply.body
}

#[tokio::test]
async fn a_file_is_kept_by_its_bytes_once_and_served_inert() {
    let mut steps = sambung_testkit::Steps::new();
    let app = TestApp::start().await;
    let ana = app.user("ana").await;

    steps.at("an image: its type from its bytes, its size, a thumbnail");
    let image = png(640, 480);
    let kept = ok(
        upload(
            &ana,
            "../../foto \"pantai\".png",
            Some("image/png"),
            image.clone(),
        )
        .await,
        201,
    );
    assert_eq!(kept["mediaType"], "image/png");
    assert_eq!(kept["name"], "foto _pantai_.png");
    assert_eq!(kept["size"], image.len());
    assert_eq!(
        (kept["width"].clone(), kept["height"].clone()),
        (json!(640), json!(480))
    );
    assert_eq!(kept["hasThumbnail"], true);
    let id = kept["id"].as_str().unwrap().to_owned();

    steps.at("the same bytes again: the same file, nothing more kept");
    let again = ok(upload(&ana, "copy.png", None, image.clone()).await, 201);
    assert_eq!(again["id"], id.as_str());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM files")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1);

    steps.at("served whole, inline as an image, never sniffed, in a sandbox");
    let served = ana
        .http
        .get(ana.url(&format!("/api/v1/files/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let headers = served.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("sandbox"));
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline; filename=\"foto _pantai_.png\""));
    assert_eq!(served.bytes().await.unwrap().to_vec(), image);
    let thumbnail = ana
        .http
        .get(ana.url(&format!("/api/v1/files/{id}/thumbnail")))
        .send()
        .await
        .unwrap();
    assert_eq!(thumbnail.headers()["content-type"], "image/png");
    assert!(thumbnail.bytes().await.unwrap().starts_with(b"\x89PNG"));

    steps.at("a text file is an attachment in UTF-8, and a large one comes back whole");
    let text = "baris,nilai\n".repeat(200_000); // 2.4 MB: three chunks
    let kept = ok(
        upload(
            &ana,
            "data.csv",
            Some("text/csv"),
            text.clone().into_bytes(),
        )
        .await,
        201,
    );
    assert_eq!(kept["mediaType"], "text/csv");
    let served = ana
        .http
        .get(ana.url(&format!("/api/v1/files/{}", kept["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(served.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(served.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(served.text().await.unwrap(), text);

    steps.at("nobody else reads them, and strangers are not let in");
    let budi = app.user("budi").await;
    assert_eq!(budi.get(&format!("/api/v1/files/{id}")).await.status, 404);
    assert_eq!(
        budi.get(&format!("/api/v1/files/{id}/thumbnail"))
            .await
            .status,
        404
    );
    assert_eq!(
        app.anonymous()
            .get(&format!("/api/v1/files/{id}"))
            .await
            .status,
        401
    );

    steps.at("what the files take is said");
    let storage = ok(ana.get("/api/v1/me/storage").await, 200);
    assert_eq!(storage["used"], image.len() + text.len());
    assert_eq!(storage["allowed"], 1 << 30);
    assert_eq!(storage["maxFilesPerMessage"], 10);
}

#[tokio::test]
async fn hostile_uploads_are_refused_with_a_reason_and_keep_nothing() {
    let app = TestApp::start().await;
    let boss = app.user("boss").await; // the first account: the instance's admin
    let ana = app.user("ana").await;
    // (name, what, claimed type, bytes, status, what the refusal says)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        // The claim and the bytes disagree, both ways.
        (
            "a.png",
            "pdf claimed",
            Some("application/pdf"),
            png(2, 2),
            400,
            "its bytes are image/png",
        ),
        (
            "a.png",
            "text as png",
            Some("image/png"),
            b"just words".to_vec(),
            400,
            "its bytes are text/plain",
        ),
        // A decompression bomb: 60000 x 60000 pixels in a few bytes.
        (
            "bomb.png",
            "bomb",
            Some("image/png"),
            png_claiming(60_000, 60_000),
            400,
            "at most 10000 pixels a side",
        ),
        // SVG can carry script: refused whatever it claims.
        (
            "x.svg",
            "svg",
            Some("image/svg+xml"),
            b"<svg><script>alert(1)</script></svg>".to_vec(),
            400,
            "SVG",
        ),
        // Bytes that are none of ours.
        (
            "a.zip",
            "zip",
            None,
            b"PK\x03\x04\x14\x00\x00\x00binary\x00".to_vec(),
            400,
            "not a kind of file",
        ),
        ("empty.txt", "empty", None, Vec::new(), 400, "empty"),
    ];
    for (name, what, claimed, bytes, status, says) in cases {
        let refused = upload(&ana, name, claimed, bytes).await;
        assert_eq!(refused.status, status, "{what}: {refused:?}");
        assert!(
            refused.body["message"].as_str().unwrap().contains(says),
            "{what}: {refused:?}"
        );
    }
    // Not multipart, or no field named file.
    let wrong = ana
        .send(
            ana.http
                .post(ana.url("/api/v1/files"))
                .json(&json!({"file": "x"})),
        )
        .await;
    assert_eq!(wrong.status, 400, "{wrong:?}");
    let unnamed = ana
        .send(
            ana.http.post(ana.url("/api/v1/files")).multipart(
                reqwest::multipart::Form::new()
                    .part("other", reqwest::multipart::Part::bytes(b"x".to_vec())),
            ),
        )
        .await;
    assert_eq!((unnamed.status, unnamed.code()), (400, "VALIDATION_ERROR"));

    // Over the size an admin allows: refused while it streams.
    ok(
        boss.patch(
            "/api/v1/admin/settings",
            json!({"files": {"maxFileBytes": 1000, "maxFilesPerMessage": 10, "userStorageBytes": 3000}}),
        )
        .await,
        200,
    );
    let big = upload(&ana, "big.txt", None, vec![b'a'; 1001]).await;
    assert_eq!((big.status, big.code()), (413, "FILE_TOO_LARGE"), "{big:?}");
    // Over the storage they may keep: three files of 1000 bytes fill 3000; a fourth does not
    // fit.
    for i in 0..3 {
        ok(upload(&ana, "t.txt", None, vec![b'a' + i; 1000]).await, 201);
    }
    let full = upload(&ana, "t.txt", None, vec![b'z'; 1000]).await;
    assert_eq!(
        (full.status, full.code()),
        (413, "STORAGE_FULL"),
        "{full:?}"
    );
    assert_eq!(full.body["allowed"], 3000);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM files")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(rows, 3, "nothing refused was kept");
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM file_chunks")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(chunks, 3);
}

/// A PDF that inflates to gigabytes (pdf-extract reads whole streams) is read in a process of
/// its own that its limits end: the upload is kept without its text, other uploads and
/// requests go on meanwhile, and a model that needs the text is told so.
#[tokio::test]
async fn a_pdf_that_never_ends_is_kept_without_its_text_and_stalls_nobody() {
    let mut steps = sambung_testkit::Steps::new();
    let app = TestApp::start().await;
    let ana = app.user("ana").await;

    steps.at("a PDF bomb uploads while a plain PDF and other requests are served");
    let bomb = sambung_files::fixtures::pdf_bomb(4);
    assert!(bomb.len() < 8 << 20, "{} bytes", bomb.len());
    let bomb_upload = {
        let ana = ana.clone();
        tokio::spawn(async move { upload(&ana, "tanpa-akhir.pdf", None, bomb).await })
    };
    let plain = ok(
        upload(
            &ana,
            "biasa.pdf",
            None,
            sambung_files::fixtures::pdf(&["Halaman biasa"]),
        )
        .await,
        201,
    );
    ok(ana.get("/api/v1/me/storage").await, 200);
    let bomb = ok(bomb_upload.await.unwrap(), 201);
    assert_eq!(bomb["mediaType"], "application/pdf");
    let pool = app.pool().clone();
    let text_of = |id: &Value| {
        let id = uuid::Uuid::parse_str(id.as_str().unwrap()).unwrap();
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>("SELECT text FROM files WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(text_of(&bomb["id"]).await, None);
    // Its 4 GiB were asked for by the reader's process, never this one (the server's).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    assert!(
        peak_kib < 2 << 20,
        "the server held {peak_kib} KiB at its peak"
    );
    assert!(text_of(&plain["id"])
        .await
        .is_some_and(|text| text.contains("Halaman biasa")));

    steps.at("a model that reads no PDFs is refused it, saying why, before it is called");
    let (model, chat) = text_only_model_and_chat(&app, &ana, "Bom").await;
    let (status, body, _) = ana
        .generate(
            chat["id"].as_str().unwrap(),
            json!({"content": "Ringkas", "model": model["id"], "files": [bomb["id"]]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("FILE_NOT_TAKEN")
            && body.contains("tanpa-akhir.pdf is a PDF whose text could not be read"),
        "{body}"
    );
    assert!(app.provider.requests().is_empty());
}

/// Uploads and model lists cost the server more than the client: each is counted per client
/// apart from the rest, and over the limit answered 429 with when to try again.
#[tokio::test]
async fn uploads_are_limited_per_client() {
    let app = TestApp::with_limits(sambung_server::RateLimits {
        costly: 2,
        ..sambung_server::RateLimits::unlimited()
    })
    .await;
    let ana = app.user("ana").await;
    for i in 0..2 {
        ok(upload(&ana, "a.txt", None, vec![b'a' + i; 10]).await, 201);
    }
    let refused = upload(&ana, "a.txt", None, b"one more".to_vec()).await;
    assert_eq!((refused.status, refused.code()), (429, "TOO_MANY_REQUESTS"));
    assert!(refused.headers.contains_key("x-retry-after"), "{refused:?}");
    ok(ana.get("/api/v1/me/storage").await, 200);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM files")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(rows, 2, "nothing refused was kept");
}

/// Whether bytes start like a JPEG (SOI, then a segment).
fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// A PDF as its bytes begin (what decides its type), and a little more.
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

#[tokio::test]
async fn files_reach_each_provider_in_its_own_shape_or_are_refused_before_it_is_called() {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use sambung_ai::fake::Script;

    let mut steps = sambung_testkit::Steps::new();
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let image = png(3, 2);
    let picture = ok(
        upload(&ana, "kopi.png", Some("image/png"), image.clone()).await,
        201,
    );
    let document = ok(
        upload(&ana, "laporan.pdf", Some("application/pdf"), PDF.to_vec()).await,
        201,
    );
    let notes = ok(
        upload(
            &ana,
            "catatan.md",
            None,
            b"# Catatan\nada ``` di sini".to_vec(),
        )
        .await,
        201,
    );
    let files = json!([picture["id"], document["id"], notes["id"]]);
    let image64 = STANDARD.encode(&image);
    let pdf64 = STANDARD.encode(PDF);
    let notes_text = "catatan.md:\n````\n# Catatan\nada ``` di sini\n````";

    for (provider, model_id) in [
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-5"),
        ("google", "gemini-2.5-flash"),
    ] {
        steps.at(provider);
        let key = ana
            .post(
                "/api/v1/api-keys",
                json!({"provider": provider, "key": "sk-fake-FILES-0003"}),
            )
            .await;
        let model = ok(
            ana.post(
                "/api/v1/models",
                json!({"provider": provider, "modelId": model_id, "name": provider,
                       "baseUrl": app.provider.url("/v1"), "apiKeyId": key.body["id"]}),
            )
            .await,
            201,
        );
        let chat = ok(
            ana.post(
                "/api/v1/chats",
                json!({"title": provider, "model": model["id"]}),
            )
            .await,
            201,
        );
        let chat = chat["id"].as_str().unwrap();
        // What comes back does not matter here: what was sent does.
        app.provider.push(Script::json(500, "{}"));
        ana.generate(
            chat,
            json!({"content": "Apa isinya?", "model": model["id"], "files": files}),
        )
        .await;
        let sent = app.last_request();
        let (parts, wanted) = match provider {
            "openai" => (
                sent["messages"].as_array().unwrap().last().unwrap()["content"].clone(),
                json!([
                    {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{image64}")}},
                    {"type": "file", "file": {"filename": "laporan.pdf", "file_data": format!("data:application/pdf;base64,{pdf64}")}},
                    {"type": "text", "text": notes_text},
                    {"type": "text", "text": "Apa isinya?"},
                ]),
            ),
            "anthropic" => (
                sent["messages"].as_array().unwrap().last().unwrap()["content"].clone(),
                json!([
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image64}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf64}, "title": "laporan.pdf"},
                    {"type": "text", "text": notes_text},
                    {"type": "text", "text": "Apa isinya?"},
                ]),
            ),
            _ => (
                sent["contents"].as_array().unwrap().last().unwrap()["parts"].clone(),
                json!([
                    {"inline_data": {"mime_type": "image/png", "data": image64}},
                    {"inline_data": {"mime_type": "application/pdf", "data": pdf64}},
                    {"text": notes_text},
                    {"text": "Apa isinya?"},
                ]),
            ),
        };
        assert_eq!(parts, wanted, "{provider}");
        // The files stay with the question, and go again with the next turn.
        app.provider.push(Script::json(500, "{}"));
        ana.generate(chat, json!({"content": "Dan lagi?", "model": model["id"]}))
            .await;
        let again = app.last_request().to_string();
        assert!(
            again.contains(&image64) && again.contains("Dan lagi?"),
            "{provider}: {again}"
        );
    }

    steps.at("a photo leaves without its place; its owner keeps the original");
    let photo = sambung_files::fixtures::jpeg_with_exif("GPSLatitude -6.2088");
    let kept = ok(
        upload(&ana, "foto.jpg", Some("image/jpeg"), photo.clone()).await,
        201,
    );
    let chat = ok(
        ana.post("/api/v1/chats", json!({"title": "Foto"})).await,
        201,
    );
    app.provider.push(Script::json(500, "{}"));
    let last_model = ana.get("/api/v1/models").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["provider"] == "google")
        .unwrap()["id"]
        .clone();
    ana.generate(
        chat["id"].as_str().unwrap(),
        json!({"content": "Di mana ini?", "model": last_model, "files": [kept["id"]]}),
    )
    .await;
    let sent = app.last_request();
    let data = sent["contents"][0]["parts"][0]["inline_data"]["data"]
        .as_str()
        .unwrap();
    let sent_bytes = STANDARD.decode(data).unwrap();
    assert!(
        !sent_bytes.windows(11).any(|w| w == b"GPSLatitude"),
        "the place stayed home"
    );
    assert!(is_jpeg(&sent_bytes), "still a JPEG");
    let original = ana
        .http
        .get(ana.url(&format!("/api/v1/files/{}", kept["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(original.to_vec(), photo, "the owner keeps the original");

    steps.at("a model that cannot see is refused before it is called, and nothing is kept");
    let (model, chat) = text_only_model_and_chat(&app, &ana, "Plain").await;
    let chat = chat["id"].as_str().unwrap();
    let asked = app.provider.requests().len();
    let messages = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM messages")
            .fetch_one(app.pool())
            .await
            .unwrap()
    };
    let before = messages().await;
    let (status, body, _) = ana
        .generate(
            chat,
            json!({"content": "Lihat", "model": model["id"], "files": [picture["id"]]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("FILE_NOT_TAKEN")
            && body.contains("kopi.png is an image, and Text only cannot see images"),
        "{body}"
    );
    let (status, body, _) = ana
        .generate(
            chat,
            json!({"content": "Baca", "model": model["id"], "files": [document["id"]]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("laporan.pdf is a PDF"), "{body}");
    // Said in its settings, it sees.
    ok(
        ana.patch(
            &format!("/api/v1/models/{}", model["id"].as_str().unwrap()),
            json!({"provider": "custom", "modelId": "text-only", "name": "Text only",
                   "baseUrl": app.provider.url("/v1"), "settings": {"vision": true}}),
        )
        .await,
        200,
    );
    assert_eq!(
        app.provider.requests().len(),
        asked,
        "the provider was never called"
    );
    assert_eq!(messages().await, before, "nothing was kept");

    steps.at("a PDF with text goes to a model that reads no PDFs as its text, page by page");
    let readable = ok(
        upload(
            &ana,
            "kuartal.pdf",
            Some("application/pdf"),
            sambung_files::fixtures::pdf(&["Laporan kuartal", "Penjualan naik"]),
        )
        .await,
        201,
    );
    app.provider.push(Script::json(500, "{}"));
    let (status, body, _) = ana
        .generate(
            chat,
            json!({"content": "Ringkas", "model": model["id"], "files": [readable["id"]]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = app.last_request();
    let parts = sent["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    let text = parts[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("kuartal.pdf:\n```\n--- page 1 ---\nLaporan kuartal")
            && text.contains("--- page 2 ---\nPenjualan naik"),
        "{parts}"
    );
    let asked = app.provider.requests().len();
    let before = messages().await;

    steps.at("another's file, too many files, files with a regeneration: refused");
    let budi = app.user("budi").await;
    let theirs = ok(upload(&budi, "lain.png", None, png(5, 5)).await, 201);
    let (status, body, _) = ana
        .generate(
            chat,
            json!({"content": "Curi", "model": model["id"], "files": [theirs["id"]]}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body, _) = ana
        .generate(chat, json!({"regenerate": true, "files": [picture["id"]]}))
        .await;
    assert_eq!(status, 400, "{body}");
    let many: Vec<Value> = (0..11).map(|_| picture["id"].clone()).collect();
    let (status, body, _) = ana
        .generate(
            chat,
            json!({"content": "Banyak", "model": model["id"], "files": many}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at most 10 files"), "{body}");
    assert_eq!(app.provider.requests().len(), asked);
    assert_eq!(messages().await, before);

    steps.at("budi reads the file once he may read a chat that carries it");
    app.provider.push(Script::json(500, "{}"));
    let (status, _, _) = ana
        .generate(
            chat,
            json!({"content": "Lihat", "model": model["id"], "files": [picture["id"]]}),
        )
        .await;
    assert_eq!(status, 200);
    let url = format!("/api/v1/files/{}", picture["id"].as_str().unwrap());
    assert_eq!(budi.get(&url).await.status, 404);
}
