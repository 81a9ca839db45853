//! Messages rendered to HTML without holding up the server: each text is rendered once and
//! kept (by its content's hash, so an edited message is rendered again), on the blocking pool
//! so that the async workers keep answering, a few at a time and within a time limit. The
//! renderer itself bounds its input (`sambung_web::markdown`); the limit here is the second
//! line: a text that still takes too long is shown as plain text.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// How long one message may take to render before it is shown as plain text instead.
pub const RENDER_TIME_LIMIT: Duration = Duration::from_secs(2);
/// How much rendered HTML the server keeps.
pub const CACHE_BYTES: u64 = 64 << 20;

#[derive(Clone)]
struct HtmlWeight;

impl quick_cache::Weighter<[u8; 32], Arc<str>> for HtmlWeight {
    fn weight(&self, _: &[u8; 32], html: &Arc<str>) -> u64 {
        // The key and the entry's bookkeeping count too, so empty texts are not free.
        html.len() as u64 + 64
    }
}

pub struct Renderer {
    cache: quick_cache::sync::Cache<[u8; 32], Arc<str>, HtmlWeight>,
    /// Renders running at once: one per core, so that rendering never takes every thread. A
    /// render past its time limit keeps its permit until it ends.
    permits: Arc<Semaphore>,
}

impl Default for Renderer {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Renderer {
            cache: quick_cache::sync::Cache::with_weighter(4096, CACHE_BYTES, HtmlWeight),
            permits: Arc::new(Semaphore::new(cores)),
        }
    }
}

impl Renderer {
    /// `content` (Markdown) as sanitised HTML.
    pub async fn html(&self, content: &str) -> Arc<str> {
        let key: [u8; 32] = Sha256::digest(content.as_bytes()).into();
        if let Some(html) = self.cache.get(&key) {
            return html;
        }
        let html: Arc<str> = match self.permits.clone().acquire_owned().await {
            Ok(permit) => {
                let owned = content.to_owned();
                let rendering = tokio::task::spawn_blocking(move || {
                    let html = sambung_web::markdown::to_html(&owned);
                    drop(permit);
                    html
                });
                match tokio::time::timeout(RENDER_TIME_LIMIT, rendering).await {
                    Ok(Ok(html)) => html.into(),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "rendering a message failed");
                        plain(content)
                    }
                    Err(_) => {
                        tracing::warn!(
                            bytes = content.len(),
                            "a message took too long to render; shown as text"
                        );
                        plain(content)
                    }
                }
            }
            // The semaphore is never closed.
            Err(_) => plain(content),
        };
        self.cache.insert(key, html.clone());
        html
    }

    /// Each of `contents` as HTML, rendered side by side.
    pub async fn html_of_each<'a>(
        &self,
        contents: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Arc<str>> {
        futures_util::future::join_all(contents.into_iter().map(|c| self.html(c))).await
    }
}

/// A text shown as it is.
fn plain(content: &str) -> Arc<str> {
    format!(
        "<pre class=\"overflow\">{}</pre>\n",
        sambung_web::escape(content)
    )
    .into()
}
