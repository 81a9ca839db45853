//! The `files` benchmark (SPEC section 14): a 20 MB file uploaded through the server and
//! downloaded back, one at a time, for the time each takes; then 20 such uploads at once, for
//! the memory they take. The server runs in this process (the client streams its uploads and
//! counts its downloads, holding neither), so this process's resident memory is the server's
//! plus a little: an upload is streamed to a temporary file and into PostgreSQL a megabyte at
//! a time, and so is a download, so 20 at once take far less than 20 × 20 MB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sambung_db::UserId;
use serde::Serialize;
use sqlx::PgPool;

use crate::generate::rss_mb_of;
use crate::http::{HttpTarget, Topology};
use crate::{setup, BenchError};

/// The size of each file.
pub const FILE_BYTES: usize = 20 << 20;
/// Uploads running at once for the memory measure.
pub const AT_ONCE: usize = 20;

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
        let target = Arc::new(
            HttpTarget::start(pool, &[user], AT_ONCE, Vec::new(), &Topology::default()).await?,
        );
        let result = measure(pool, &target, user, seconds).await;
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
    let median = |times: &mut Vec<Duration>| {
        times.sort_unstable();
        times
            .get(times.len() / 2)
            .map_or(0.0, |t| t.as_secs_f64() * 1000.0)
    };
    let mb = FILE_BYTES as f64 / (1 << 20) as f64;
    let (upload_p50_ms, download_p50_ms) = (median(&mut uploads), median(&mut downloads));
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
        errors,
    })
}
