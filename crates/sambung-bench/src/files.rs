//! The `files` benchmark (SPEC section 14): a 20 MB file uploaded through the server and
//! downloaded back, one at a time, for the time each takes; then 20 such uploads at once, for
//! the memory they take. The server runs in this process (the client streams its uploads and
//! counts its downloads, holding neither), so this process's resident memory is the server's
//! plus a little: an upload is streamed to a temporary file and into PostgreSQL a megabyte at
//! a time, and so is a download, so 20 at once take far less than 20 × 20 MB.
//!
//! Then turns against the fake provider on loopback, each in a new chat, alternately with a
//! 5 MB photo-like PNG and without: what the image adds to the time to the first token, and
//! the server's own part of it (reading the file, leaving its metadata out, base64), measured
//! apart in this process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sambung_ai::fake::FakeProvider;
use sambung_db::chats::{create_chat, NewChat};
use sambung_db::models::{create_model, ModelFields};
use sambung_db::{FileId, UserId};
use serde::Serialize;
use sqlx::PgPool;

use crate::generate::rss_mb_of;
use crate::http::{HttpTarget, Topology};
use crate::{setup, BenchError};

/// The size of each file.
pub const FILE_BYTES: usize = 20 << 20;
/// Uploads running at once for the memory measure.
pub const AT_ONCE: usize = 20;
/// The image turns' PNG: noise, as a photo is to a compressor, of about 5 MB.
const IMAGE_SIDE: u32 = 1300;
/// Turns of each kind, with the image and without.
const IMAGE_TURNS: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file_mb: f64,
    /// One at a time: how many of each, and their median times.
    pub rounds: usize,
    pub upload_p50_ms: f64,
    pub download_p50_ms: f64,
    pub upload_mb_per_s: f64,
    pub download_mb_per_s: f64,
    /// `AT_ONCE` uploads at once: this process's resident memory before, at its peak, after.
    pub at_once: usize,
    pub at_once_ms: f64,
    pub rss_before_mb: f64,
    pub rss_peak_mb: f64,
    pub rss_after_mb: f64,
    /// Turns with the image and without (`image_turns` each): medians of the time to the
    /// first text delta, and what the image adds.
    pub image_mb: f64,
    pub image_turns: usize,
    pub plain_first_token_p50_ms: f64,
    pub image_first_token_p50_ms: f64,
    pub image_added_ms: f64,
    /// The server's own work on the image, medians: its bytes read from PostgreSQL, its
    /// metadata left out, base64.
    pub image_read_ms: f64,
    pub image_strip_ms: f64,
    pub image_base64_ms: f64,
    pub errors: usize,
}

/// Measure for about `seconds` (at least three rounds), as a throwaway user whose files are
/// deleted afterwards.
pub async fn run(pool: &PgPool, seconds: f64) -> Result<Report, BenchError> {
    let user = UserId::new();
    sqlx::query("INSERT INTO users (id, name, email) VALUES ($1, 'Bench files', $2)")
        .bind(user)
        .bind(format!("bench-files-{}@example.com", user.0))
        .execute(pool)
        .await?;
    let measured = async {
        let fake = FakeProvider::start()
            .await
            .map_err(|e| setup(format!("cannot start the fake provider: {e}")))?
            .always(crate::generate::reply(20, Duration::from_millis(1)));
        let allowed = vec![format!("127.0.0.1:{}", fake.port)];
        let target = Arc::new(
            HttpTarget::start(pool, &[user], AT_ONCE, allowed, &Topology::default()).await?,
        );
        let result = match measure(pool, &target, user, seconds).await {
            Ok(report) => image_turns(pool, &target, &fake, user, report).await,
            failed => failed,
        };
        if let Ok(target) = Arc::try_unwrap(target) {
            target.close().await?;
        }
        result
    }
    .await;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user)
        .execute(pool)
        .await?;
    measured
}

async fn measure(
    pool: &PgPool,
    target: &Arc<HttpTarget>,
    user: UserId,
    seconds: f64,
) -> Result<Report, BenchError> {
    let (mut uploads, mut downloads, mut errors) = (Vec::new(), Vec::new(), 0);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut seed = 0;
    while uploads.len() < 3 || Instant::now() < until {
        seed += 1;
        let started = Instant::now();
        let id = match target.upload_text(user, FILE_BYTES, seed).await {
            Ok(id) => id,
            Err(e) => {
                errors += 1;
                if errors > 3 {
                    return Err(e);
                }
                continue;
            }
        };
        uploads.push(started.elapsed());
        let started = Instant::now();
        match target.download(user, &id).await {
            Ok(size) if size == FILE_BYTES => downloads.push(started.elapsed()),
            Ok(size) => return Err(setup(format!("a download came back with {size} bytes"))),
            Err(_) => errors += 1,
        }
        // Gone again, so that the user's storage never fills however long the run.
        sqlx::query("DELETE FROM files WHERE user_id = $1")
            .bind(user)
            .execute(pool)
            .await?;
    }
    let own = std::process::id().to_string();
    let rss_before = rss_mb_of(&own);
    let started = Instant::now();
    let mut running = Vec::new();
    for i in 0..AT_ONCE {
        let target = target.clone();
        let seed = 1_000_000 + seed + i as u64;
        running.push(tokio::spawn(async move {
            target.upload_text(user, FILE_BYTES, seed).await
        }));
    }
    let mut peak = rss_before;
    while running.iter().any(|t| !t.is_finished()) {
        peak = peak.max(rss_mb_of(&own));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let at_once_ms = started.elapsed().as_secs_f64() * 1000.0;
    for task in running {
        if !matches!(task.await, Ok(Ok(_))) {
            errors += 1;
        }
    }
    let mb = FILE_BYTES as f64 / (1 << 20) as f64;
    let (upload_p50_ms, download_p50_ms) = (median_ms(&mut uploads), median_ms(&mut downloads));
    Ok(Report {
        file_mb: mb,
        rounds: uploads.len(),
        upload_p50_ms,
        download_p50_ms,
        upload_mb_per_s: mb / (upload_p50_ms / 1000.0).max(f64::EPSILON),
        download_mb_per_s: mb / (download_p50_ms / 1000.0).max(f64::EPSILON),
        at_once: AT_ONCE,
        at_once_ms,
        rss_before_mb: rss_before,
        rss_peak_mb: peak,
        rss_after_mb: rss_mb_of(&own),
        image_mb: 0.0,
        image_turns: 0,
        plain_first_token_p50_ms: 0.0,
        image_first_token_p50_ms: 0.0,
        image_added_ms: 0.0,
        image_read_ms: 0.0,
        image_strip_ms: 0.0,
        image_base64_ms: 0.0,
        errors,
    })
}

/// Turns with the image and without, each in a chat of its own; `report` filled in.
async fn image_turns(
    pool: &PgPool,
    target: &HttpTarget,
    fake: &FakeProvider,
    user: UserId,
    mut report: Report,
) -> Result<Report, BenchError> {
    let model = create_model(
        pool,
        user,
        None,
        ModelFields {
            provider: "custom",
            model_id: "fake-vision",
            name: "Benchmark vision",
            base_url: Some(&fake.url("/v1")),
            api_key_id: None,
            settings: serde_json::json!({"vision": true}),
            is_default: true,
        },
    )
    .await
    .map_err(crate::domain)?;
    let png = sambung_files::fixtures::noisy_png(IMAGE_SIDE, IMAGE_SIDE);
    report.image_mb = png.len() as f64 / (1 << 20) as f64;
    let part = reqwest::multipart::Part::bytes(png).file_name("photo.png");
    let image = target.upload(user, part).await?;
    let (mut plain, mut with_image) = (Vec::new(), Vec::new());
    for round in 0..IMAGE_TURNS * 2 {
        let chat = create_chat(
            pool,
            user,
            NewChat {
                team_id: None,
                folder_id: None,
                title: "Benchmark image",
                model: "fake-vision",
                provider: "custom",
                settings: None,
            },
        )
        .await
        .map_err(crate::domain)?;
        let files = if round % 2 == 0 {
            Vec::new()
        } else {
            vec![image.clone()]
        };
        match target.generate(user, chat.id, model.id, &files).await {
            Ok(turned) if files.is_empty() => plain.push(turned.first()),
            Ok(turned) => with_image.push(turned.first()),
            Err(_) => report.errors += 1,
        }
    }
    report.image_turns = plain.len().min(with_image.len());
    report.plain_first_token_p50_ms = median_ms(&mut plain);
    report.image_first_token_p50_ms = median_ms(&mut with_image);
    report.image_added_ms = report.image_first_token_p50_ms - report.plain_first_token_p50_ms;

    // The server's part, as a turn does it (`sambung_chat::request`).
    let id = FileId(
        image
            .parse()
            .map_err(|_| setup("the upload's id is no uuid"))?,
    );
    let (mut read, mut strip, mut encode) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..IMAGE_TURNS {
        let started = Instant::now();
        let bytes = sambung_db::files::file_bytes(pool, id)
            .await
            .map_err(crate::domain)?;
        read.push(started.elapsed());
        let started = Instant::now();
        let sent = sambung_files::without_metadata(sambung_files::Kind::Png, bytes);
        strip.push(started.elapsed());
        let started = Instant::now();
        std::hint::black_box(STANDARD.encode(&sent));
        encode.push(started.elapsed());
    }
    report.image_read_ms = median_ms(&mut read);
    report.image_strip_ms = median_ms(&mut strip);
    report.image_base64_ms = median_ms(&mut encode);
    Ok(report)
}

fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort_unstable();
    times
        .get(times.len() / 2)
        .map_or(0.0, |t| t.as_secs_f64() * 1000.0)
}
