//! The generations running in this server, one per chat at most. A client that went away (or
//! another tab) can follow one again from its start, and it can be told to stop.
//!
//! What a generation keeps for those late followers is bounded by the reply, not by how it was
//! streamed: consecutive text pieces are kept as one text, so a replay is the chunks before
//! the text, the text so far as one delta, and what followed. Followers who keep up get each
//! chunk as it comes; one that falls [`LIVE_BACKLOG`] chunks behind is dropped, never buffered
//! for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::{broadcast, watch};

use crate::ui_stream::Chunk;

/// How many chunks a live follower may be behind before it is dropped.
pub const LIVE_BACKLOG: usize = 1024;

/// What a replay is made of.
enum Kept {
    Chunk(Bytes),
    /// Consecutive text deltas of one text part, joined.
    Text {
        id: String,
        text: String,
    },
}

struct State {
    kept: Vec<Kept>,
    /// `None` once the generation finished: followers end after what they were sent.
    live: Option<broadcast::Sender<Bytes>>,
}

/// A chat's running generation.
pub struct Generation {
    state: Mutex<State>,
    stop: watch::Sender<bool>,
    pub message_id: String,
}

impl Generation {
    fn new(message_id: String) -> Generation {
        Generation {
            state: Mutex::new(State {
                kept: Vec::new(),
                live: Some(broadcast::channel(LIVE_BACKLOG).0),
            }),
            stop: watch::channel(false).0,
            message_id,
        }
    }

    /// Send a chunk to every follower, now and later.
    pub fn push(&self, chunk: Chunk) {
        self.push_encoded(chunk.to_sse().into(), Some(chunk));
    }

    /// Send the stream's last line (`data: [DONE]`) and end it.
    pub fn finish(&self, last: &'static str) {
        self.push_encoded(Bytes::from_static(last.as_bytes()), None);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.live = None;
    }

    fn push_encoded(&self, encoded: Bytes, chunk: Option<Chunk>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.live.is_none() {
            return;
        }
        match (chunk, state.kept.last_mut()) {
            (Some(Chunk::TextDelta { id, delta }), Some(Kept::Text { id: last, text }))
                if *last == id =>
            {
                text.push_str(&delta)
            }
            (Some(Chunk::TextDelta { id, delta }), _) => {
                state.kept.push(Kept::Text { id, text: delta })
            }
            _ => state.kept.push(Kept::Chunk(encoded.clone())),
        }
        if let Some(live) = &state.live {
            // No follower is not an error: the generation goes on for the database.
            let _ = live.send(encoded);
        }
    }

    pub fn is_finished(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .is_none()
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

    /// The generation from its start (what it kept), then each chunk as it comes, until its
    /// end; a follower that falls too far behind is ended early.
    pub fn subscribe(&self) -> impl Stream<Item = Bytes> + Send + 'static {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let replay: Vec<Bytes> = state
            .kept
            .iter()
            .map(|kept| match kept {
                Kept::Chunk(bytes) => bytes.clone(),
                Kept::Text { id, text } => Chunk::TextDelta {
                    id: id.clone(),
                    delta: text.clone(),
                }
                .to_sse()
                .into(),
            })
            .collect();
        let live = state.live.as_ref().map(broadcast::Sender::subscribe);
        drop(state);
        let replay = futures_util::stream::iter(replay);
        let live = futures_util::stream::unfold(live, |live| async move {
            let mut receiver = live?;
            match receiver.recv().await {
                Ok(chunk) => Some((chunk, Some(receiver))),
                Err(broadcast::error::RecvError::Closed) => None,
                Err(broadcast::error::RecvError::Lagged(behind)) => {
                    tracing::info!(behind, "dropped a follower too slow to keep up");
                    None
                }
            }
        });
        futures_util::StreamExt::chain(replay, live)
    }
}

#[derive(Default)]
pub struct Registry {
    running: Mutex<HashMap<String, Arc<Generation>>>,
}

impl Registry {
    /// Register the generation of `chat`'s new reply. Whether a turn may begin is the
    /// database's decision (under a lock on the chat, across servers); an earlier generation
    /// still sending its last chunks here is replaced, its followers keep following it.
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

    /// Forget a finished generation (its followers keep their handle).
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
    use crate::ui_stream::DONE;

    fn delta(text: &str) -> Chunk {
        Chunk::TextDelta {
            id: "t".into(),
            delta: text.into(),
        }
    }

    fn sse(chunk: Chunk) -> Bytes {
        chunk.to_sse().into()
    }

    #[tokio::test]
    async fn late_followers_replay_from_the_start_and_follow_live() {
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
        generation.push(Chunk::StartStep);
        generation.push(delta("a"));
        let early = generation.subscribe();
        generation.push(delta("b"));
        let late = generation.subscribe();
        let pusher = {
            let generation = generation.clone();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                generation.push(delta("c"));
                generation.push(Chunk::FinishStep);
                generation.finish(DONE);
            })
        };
        let (early, late): (Vec<Bytes>, Vec<Bytes>) = tokio::join!(early.collect(), late.collect());
        pusher.await.unwrap();
        let tail = [sse(delta("c")), sse(Chunk::FinishStep), Bytes::from(DONE)];
        let mut expected_early = vec![sse(Chunk::StartStep), sse(delta("a")), sse(delta("b"))];
        expected_early.extend(tail.clone());
        assert_eq!(early, expected_early);
        let mut expected_late = vec![sse(Chunk::StartStep), sse(delta("ab"))];
        expected_late.extend(tail);
        assert_eq!(late, expected_late, "text so far as one piece, then live");
        assert!(registry.running("chat").is_none());
        // After the end, a follower gets the whole reply at once.
        let after: Vec<Bytes> = generation.subscribe().collect().await;
        assert_eq!(after.len(), 4);
        assert_eq!(after[1], sse(delta("abc")));
    }

    /// A reply of a million one-byte pieces keeps a million bytes for replay, not a million
    /// chunks; a follower that stops reading is dropped once it is far behind.
    #[tokio::test]
    async fn what_is_kept_is_bounded_by_the_text_and_slow_followers_are_dropped() {
        let generation = Registry::default().start("chat", "m".into());
        let stalled = generation.subscribe();
        for _ in 0..1_000_000 {
            generation.push(delta("x"));
        }
        {
            let state = generation.state.lock().unwrap();
            assert_eq!(state.kept.len(), 1);
        }
        generation.finish(DONE);
        let received: Vec<Bytes> = stalled.collect().await;
        assert!(received.is_empty(), "the stalled follower was dropped");
        let replay: Vec<Bytes> = generation.subscribe().collect().await;
        assert_eq!(replay.len(), 2);
        assert!(replay[0].len() > 1_000_000 && replay[0].len() < 1_000_100);
    }
}
