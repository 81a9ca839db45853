//! Following and stopping a turn wherever it runs: this server's own from its registry, one
//! another server writes through PostgreSQL (`relay`): the stop request reaches the writer,
//! and the writer relays its stream, from its start, to the server whose caller follows it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use sambung_db::{ChatId, UserId};

use crate::registry::Generation;
use crate::turn::ReplyStream;
use crate::{relay, store, TurnError, Turns};

/// How long a server waits for the writer of a reply to start relaying it.
const RELAY_START: Duration = Duration::from_secs(3);
/// How often the lease's connection is checked and dead servers' replies marked incomplete.
const LEASE_CHECK: Duration = Duration::from_secs(30);

impl Turns {
    /// Stop the chat's running reply, wherever it is written (who asked for it may, and whoever
    /// may change the chat); whether one was running.
    pub async fn stop(&self, actor: UserId, chat: ChatId) -> Result<bool, TurnError> {
        store::require_stop(&self.pool, actor, chat).await?;
        Ok(match self.generations.running(&chat.to_string()) {
            Some(generation) => {
                generation.request_stop();
                true
            }
            None => relay::request_stop(&self.pool, chat).await?,
        })
    }

    /// The chat's running reply from its start: this server's own, or relayed from the server
    /// writing it; `None` when none runs.
    pub async fn follow(
        self: &Arc<Self>,
        actor: UserId,
        chat: ChatId,
    ) -> Result<Option<ReplyStream>, TurnError> {
        sambung_db::chats::get_chat(&self.pool, actor, chat).await?;
        if let Some(generation) = self.generations.running(&chat.to_string()) {
            return Ok(Some(Box::pin(generation.subscribe())));
        }
        self.follow_remote(chat).await
    }

    /// Keep this server's lease and listen to the other servers, for as long as the future
    /// is polled (the server aborts it when it stops).
    pub async fn serve_other_servers(self: Arc<Self>) {
        let keeper = self.lease.keep(&self.pool, LEASE_CHECK);
        let listener = async {
            loop {
                if let Err(e) = self.listen().await {
                    tracing::warn!(error = %e, "cannot listen to the other servers; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        tokio::join!(keeper, listener);
    }

    /// What other servers ask of this one, and what they relay to it (a request sent while
    /// the database was away is lost: the caller may send it again).
    async fn listen(self: &Arc<Self>) -> Result<(), sqlx::Error> {
        // On a connection of its own, outside the request pool: a listener holds it for good.
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.pool.options().get_acquire_timeout())
            .connect_lazy_with((*self.pool.connect_options()).clone());
        let mut listener = sqlx::postgres::PgListener::connect_with(&own).await?;
        listener
            .listen_all([
                relay::STOP_CHANNEL,
                relay::FOLLOW_CHANNEL,
                relay::STREAM_CHANNEL,
            ])
            .await?;
        loop {
            let notification = listener.recv().await?;
            let payload = notification.payload();
            match notification.channel() {
                relay::STOP_CHANNEL => {
                    if let Some(generation) = self.generations.running(payload) {
                        generation.request_stop();
                    }
                }
                relay::FOLLOW_CHANNEL => {
                    let Some((chat, follower)) = payload.split_once(' ') else {
                        continue;
                    };
                    if let Some(generation) = self.generations.running(chat) {
                        tokio::spawn(self.clone().relay_to(generation, follower.to_owned()));
                    }
                }
                _ => {
                    let Some((follower, piece)) = payload.split_once('\n') else {
                        continue;
                    };
                    let mut followers = self
                        .remote_followers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if piece.is_empty() {
                        followers.remove(follower);
                    } else if let Some(sender) = followers.get(follower) {
                        // A follower too slow to keep 256 pieces behind loses its stream.
                        if sender.try_send(Bytes::from(piece.to_owned())).is_err() {
                            followers.remove(follower);
                        }
                    }
                }
            }
        }
    }

    /// Relay a generation of this server, from its start, to a follower on another server.
    async fn relay_to(self: Arc<Self>, generation: Arc<Generation>, follower: String) {
        let mut stream = std::pin::pin!(generation.subscribe());
        while let Some(chunk) = stream.next().await {
            let piece = String::from_utf8_lossy(&chunk);
            if let Err(e) = relay::relay(&self.pool, &follower, Some(&piece)).await {
                tracing::warn!(error = %e, "cannot relay a reply to another server");
                return;
            }
        }
        if let Err(e) = relay::relay(&self.pool, &follower, None).await {
            tracing::warn!(error = %e, "cannot end a relayed reply");
        }
    }

    /// Follow a reply another server writes: ask it to relay the stream here, from its start.
    async fn follow_remote(
        self: &Arc<Self>,
        chat: ChatId,
    ) -> Result<Option<ReplyStream>, TurnError> {
        let id = sambung_config::random_token();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(256);
        self.remote_followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), sender);
        let entry = FollowerEntry {
            turns: self.clone(),
            id: id.clone(),
        };
        if !relay::request_follow(&self.pool, chat, &id).await? {
            return Ok(None);
        }
        let Ok(Some(first)) = tokio::time::timeout(RELAY_START, receiver.recv()).await else {
            return Ok(None);
        };
        let rest = futures_util::stream::unfold((receiver, entry), |(mut receiver, entry)| async {
            receiver
                .recv()
                .await
                .map(|piece| (piece, (receiver, entry)))
        });
        Ok(Some(Box::pin(
            futures_util::stream::once(async { first }).chain(rest),
        )))
    }
}

/// A follower's place among [`Turns::remote_followers`], given back when its stream ends.
struct FollowerEntry {
    turns: Arc<Turns>,
    id: String,
}

impl Drop for FollowerEntry {
    fn drop(&mut self) {
        self.turns
            .remote_followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}
