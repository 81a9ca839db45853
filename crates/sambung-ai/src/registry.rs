//! The generations running in this server, one per chat at most: each keeps every chunk it
//! has streamed so that a client that went away (or another tab) can replay it from the
//! start and follow it live, and can be told to stop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::watch;

/// A chat's running generation.
pub struct Generation {
    chunks: Mutex<Vec<Bytes>>,
    finished: AtomicBool,
    tick: watch::Sender<u64>,
    stop: watch::Sender<bool>,
    pub message_id: String,
}

impl Generation {
    fn new(message_id: String) -> Generation {
        Generation {
            chunks: Mutex::new(Vec::new()),
            finished: AtomicBool::new(false),
            tick: watch::channel(0).0,
            stop: watch::channel(false).0,
            message_id,
        }
    }

    /// Add a chunk (already in its SSE form) for every listener, now and later.
    pub fn push(&self, chunk: impl Into<Bytes>) {
        self.chunks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(chunk.into());
        self.tick.send_modify(|n| *n += 1);
    }

    /// No more chunks will come.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
        self.tick.send_modify(|n| *n += 1);
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Ask the generation to stop (its task watches [`Generation::stopped`]).
    pub fn request_stop(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves once a stop was asked for.
    pub async fn stopped(&self) {
        let mut receiver = self.stop.subscribe();
        let _ = receiver.wait_for(|stop| *stop).await;
    }

    fn chunk(&self, index: usize) -> Option<Bytes> {
        self.chunks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(index)
            .cloned()
    }

    /// Every chunk from the first, then the new ones as they come, until the end.
    pub fn subscribe(self: &Arc<Self>) -> impl Stream<Item = Bytes> + Send + 'static {
        let receiver = self.tick.subscribe();
        futures_util::stream::unfold(
            (self.clone(), 0usize, receiver),
            |(generation, index, mut receiver)| async move {
                loop {
                    receiver.borrow_and_update();
                    if let Some(chunk) = generation.chunk(index) {
                        return Some((chunk, (generation, index + 1, receiver)));
                    }
                    if generation.is_finished() {
                        return None;
                    }
                    if receiver.changed().await.is_err() && generation.chunk(index).is_none() {
                        return None;
                    }
                }
            },
        )
    }
}

#[derive(Default)]
pub struct Registry {
    running: Mutex<HashMap<String, Arc<Generation>>>,
}

impl Registry {
    /// Register the generation of `chat`'s new reply. Whether a turn may begin is the
    /// database's decision (under a lock on the chat, across servers); an earlier generation
    /// still sending its last chunks here is replaced, its listeners keep following it.
    pub fn start(&self, chat: &str, message_id: String) -> Arc<Generation> {
        let generation = Arc::new(Generation::new(message_id));
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(chat.to_owned(), generation.clone());
        generation
    }

    /// The chat's running generation.
    pub fn running(&self, chat: &str) -> Option<Arc<Generation>> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(chat)
            .filter(|g| !g.is_finished())
            .cloned()
    }

    /// Forget a finished generation (its listeners keep their handle).
    pub fn remove(&self, chat: &str, generation: &Arc<Generation>) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running
            .get(chat)
            .is_some_and(|g| Arc::ptr_eq(g, generation))
        {
            running.remove(chat);
        }
    }

    pub fn len(&self) -> usize {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn late_listeners_replay_from_the_start_and_follow_live() {
        let registry = Registry::default();
        let replaced = registry.start("chat", "m0".into());
        let generation = registry.start("chat", "m".into());
        registry.remove("chat", &replaced);
        assert!(
            registry
                .running("chat")
                .is_some_and(|g| Arc::ptr_eq(&g, &generation)),
            "the newer generation stays when the replaced one is removed"
        );
        generation.push("a");
        let early = generation.subscribe();
        generation.push("b");
        let late = generation.subscribe();
        let pusher = {
            let generation = generation.clone();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                generation.push("c");
                generation.finish();
            })
        };
        let (early, late): (Vec<Bytes>, Vec<Bytes>) = tokio::join!(early.collect(), late.collect());
        pusher.await.unwrap();
        assert_eq!(early, ["a", "b", "c"]);
        assert_eq!(late, ["a", "b", "c"]);
        assert!(registry.running("chat").is_none());
    }
}
