//! The `transfer` benchmark (SPEC section 15): a ChatGPT export of about `mb` megabytes,
//! written to a temporary file by this process, imported through the server (streamed up,
//! never held whole), then the account exported back as a zip. The server runs in this
//! process, so the peak of this process's resident memory is what the server took; the
//! baseline, measured in the same run, is parsing the same file with serde_json alone (the
//! least any importer spends reading it).

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use sambung_db::UserId;
use serde::Serialize;
use sqlx::PgPool;

use crate::generate::rss_mb_of;
use crate::http::{HttpTarget, Topology};
use crate::{setup, BenchError};

/// Messages in each generated conversation (a question and an answer, ten times).
const MESSAGES: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file_mb: f64,
    pub conversations: usize,
    pub messages: usize,
    /// serde_json reading the file into values, one conversation at a time (the baseline).
    pub parse_ms: f64,
    /// The import through the server: upload, reading, writing, commit.
    pub import_ms: f64,
    pub import_over_parse: f64,
    pub import_rss_before_mb: f64,
    pub import_rss_peak_mb: f64,
    /// The account's zip streamed back.
    pub export_ms: f64,
    pub export_mb: f64,
    pub export_rss_peak_mb: f64,
}

/// Import and export about `mb` megabytes as a throwaway user, deleted afterwards.
pub async fn run(pool: &PgPool, mb: usize) -> Result<Report, BenchError> {
    let user = UserId::new();
    sqlx::query("INSERT INTO users (id, name, email) VALUES ($1, 'Bench transfer', $2)")
        .bind(user)
        .bind(format!("bench-transfer-{}@example.com", user.0))
        .execute(pool)
        .await?;
    let measured = async {
        let target =
            Arc::new(HttpTarget::start(pool, &[user], 8, Vec::new(), &Topology::default()).await?);
        let result = measure(&target, user, mb).await;
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

async fn measure(target: &HttpTarget, user: UserId, mb: usize) -> Result<Report, BenchError> {
    let file = tempfile::NamedTempFile::new().map_err(|e| setup(e.to_string()))?;
    let (size, conversations) =
        write_export(file.path(), mb << 20).map_err(|e| setup(e.to_string()))?;
    // The baseline: the file read as values, one conversation at a time, nothing kept.
    let started = Instant::now();
    let reader = std::io::BufReader::new(
        std::fs::File::open(file.path()).map_err(|e| setup(e.to_string()))?,
    );
    let parsed: Vec<serde::de::IgnoredAny> =
        serde_json::from_reader(reader).map_err(|e| setup(e.to_string()))?;
    let parse_ms = started.elapsed().as_secs_f64() * 1000.0;
    if parsed.len() != conversations {
        return Err(setup("the export did not read back".to_owned()));
    }

    let own = std::process::id().to_string();
    let before = rss_mb_of(&own);
    let started = Instant::now();
    let importing = target.import(user, file.path());
    let (summary, peak) = while_measuring(&own, importing).await;
    let import_ms = started.elapsed().as_secs_f64() * 1000.0;
    let summary = summary?;
    if summary["chats"].as_u64() != Some(conversations as u64) {
        return Err(setup(format!("the import said {summary}")));
    }
    let started = Instant::now();
    let (exported, export_peak) = while_measuring(&own, target.export_account(user)).await;
    let export_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mib = |bytes: usize| bytes as f64 / (1 << 20) as f64;
    Ok(Report {
        file_mb: mib(size),
        conversations,
        messages: conversations * MESSAGES,
        parse_ms,
        import_ms,
        import_over_parse: import_ms / parse_ms.max(f64::EPSILON),
        import_rss_before_mb: before,
        import_rss_peak_mb: peak,
        export_ms,
        export_mb: mib(exported?),
        export_rss_peak_mb: export_peak,
    })
}

/// `work`'s outcome, and this process's peak resident memory while it ran.
async fn while_measuring<T>(own: &str, work: impl std::future::Future<Output = T>) -> (T, f64) {
    let mut work = std::pin::pin!(work);
    let mut peak = rss_mb_of(own);
    loop {
        tokio::select! {
            done = &mut work => return (done, peak.max(rss_mb_of(own))),
            _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => peak = peak.max(rss_mb_of(own)),
        }
    }
}

/// A ChatGPT `conversations.json` of at least `bytes`: its size and conversations.
fn write_export(path: &std::path::Path, bytes: usize) -> std::io::Result<(usize, usize)> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut written = 0;
    let mut count = 0;
    out.write_all(b"[")?;
    while written < bytes {
        let mut mapping = serde_json::Map::new();
        let mut parent: Option<String> = None;
        for m in 0..MESSAGES {
            let id = format!("c{count}-m{m}");
            let role = if m % 2 == 0 { "user" } else { "assistant" };
            let text = format!("Message {m} of conversation {count}. ").repeat(12);
            mapping.insert(
                id.clone(),
                serde_json::json!({"id": id, "parent": parent, "children": [format!("c{count}-m{}", m + 1)],
                    "message": {"id": id, "author": {"role": role}, "create_time": 1_700_000_000.0 + (count * 100 + m) as f64,
                                "content": {"content_type": "text", "parts": [text]}, "metadata": {"model_slug": "gpt-4o"}}}),
            );
            parent = Some(id);
        }
        let conversation = serde_json::json!({
            "title": format!("Conversation {count}"), "create_time": 1_700_000_000.0 + (count * 100) as f64,
            "mapping": mapping, "current_node": parent, "id": format!("bench-{count}"),
        });
        let text = serde_json::to_vec(&conversation)?;
        if count > 0 {
            out.write_all(b",")?;
        }
        out.write_all(&text)?;
        written += text.len() + 1;
        count += 1;
    }
    out.write_all(b"]")?;
    out.flush()?;
    Ok((written + 1, count))
}
