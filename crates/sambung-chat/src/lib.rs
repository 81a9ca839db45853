//! The chat turn, in one home: a question (asked, regenerated or edited) answered by the
//! chat's model, streamed to whoever follows it in the AI SDK's UI message stream, and kept.
//! A turn reads top to bottom in [`turn`]: what is sent ([`request`]) → the provider's stream
//! → each piece to the followers ([`registry`], [`ui_stream`]) and saved now and then
//! ([`store`]) → the reply finished and stored → the first reply's title. A turn belongs to
//! the server writing it, not to the caller: it goes on when the caller leaves, can be
//! stopped, and can be followed again from its start, on this server or, through PostgreSQL,
//! from another one ([`relay`], [`lease`]).
//!
//! Why a crate of its own: everything a turn needs besides HTTP lives here, so the HTTP
//! handlers only parse, call and write the response, and the other ways in (an
//! OpenAI-compatible endpoint, the benchmarks) call the same turn. It sits on the data layer
//! (chats, messages, models and their access rules) and the providers (`sambung-ai`).

pub mod completion;
pub mod follow;
pub mod lease;
#[cfg(test)]
mod plans;
pub mod registry;
pub mod relay;
pub mod request;
pub mod store;
pub mod turn;
pub mod ui_stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sambung_ai::{Guard, ProviderError, Timeouts};
use sambung_db::secret::Cipher;
use sambung_db::DomainError;
use sqlx::PgPool;

pub use request::ProbeKey;
pub use store::TurnKind;
pub use turn::{ReplyStream, TurnReads};

/// Where a reply stands (`metadata.status` of an assistant message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    /// Being written by a live server.
    Streaming,
    /// Ended as the provider ended it (or at a cap).
    Complete,
    /// Stopped by someone who may.
    Stopped,
    /// The provider failed; the text so far is kept.
    Error,
    /// Its server stopped before it ended ([`lease`]).
    Incomplete,
}

impl ReplyStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ReplyStatus::Streaming => "streaming",
            ReplyStatus::Complete => "complete",
            ReplyStatus::Stopped => "stopped",
            ReplyStatus::Error => "error",
            ReplyStatus::Incomplete => "incomplete",
        }
    }
}

#[cfg(test)]
mod status_tests {
    use super::ReplyStatus;

    /// SQL finds running replies by the word the data layer writes in it
    /// (`REPLY_STREAMING_SQL`, a literal for the partial index): the same as the one stored.
    #[test]
    fn sql_names_the_running_status_as_it_is_stored() {
        assert_eq!(
            sambung_db::chats::REPLY_STREAMING_SQL,
            format!(
                "m.metadata->>'status' = '{}'",
                ReplyStatus::Streaming.as_str()
            )
        );
    }
}

/// Where a reply is cut off, whatever the provider does: it ends with `finishReason: "length"`
/// and its text so far (`metadata.capped` says which limit).
#[derive(Debug, Clone, Copy)]
pub struct ReplyLimits {
    /// Bytes of text: as much as a user's message may hold.
    pub max_bytes: usize,
    /// How long a reply may stream.
    pub max_duration: Duration,
    /// Pieces of text the provider streams (about a token each).
    pub max_pieces: u32,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_bytes: sambung_db::chats::MAX_MESSAGE_BYTES,
            max_duration: Duration::from_secs(15 * 60),
            max_pieces: 65_536,
        }
    }
}

impl ReplyLimits {
    /// These limits, narrowed by the caps the instance's admins set.
    pub fn within(self, caps: &sambung_db::quotas::ReplyCaps) -> ReplyLimits {
        let clamp = |cap: Option<i64>, max: u64| cap.map_or(max, |c| (c.max(1) as u64).min(max));
        ReplyLimits {
            max_bytes: clamp(caps.max_bytes, self.max_bytes as u64) as usize,
            max_duration: caps.max_seconds.map_or(self.max_duration, |s| {
                self.max_duration.min(Duration::from_secs(s.max(1) as u64))
            }),
            max_pieces: clamp(caps.max_output_tokens, u64::from(self.max_pieces)) as u32,
        }
    }
}

/// How often a reply's text so far is stored while it streams (what a server that dies
/// mid-reply leaves behind).
pub const REPLY_SAVE_EVERY: Duration = Duration::from_secs(5);

/// How turns run.
#[derive(Debug, Clone)]
pub struct TurnSettings {
    /// Where provider requests may go (the SSRF guard).
    pub guard: Guard,
    /// Limits of each provider call.
    pub timeouts: Timeouts,
    /// How often a streaming reply is saved ([`REPLY_SAVE_EVERY`] unless a test wants it
    /// sooner).
    pub save_every: Duration,
    pub limits: ReplyLimits,
}

/// Why a turn was refused or could not begin.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("no model is configured: add one under Settings, Models")]
    NoModel,
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("the server cannot read API keys (ENCRYPTION_KEY is not set)")]
    NoEncryptionKey,
    #[error(
        "the instance's admins turned personal API keys off: pick one of the instance's models"
    )]
    PersonalKeysOff,
    /// A file the chosen model cannot take: which, why, and what would.
    #[error("{0}")]
    FileNotTaken(String),
}

/// The turns of this server: those it writes, and those it follows for its callers.
pub struct Turns {
    pool: PgPool,
    cipher: Option<Cipher>,
    settings: TurnSettings,
    /// This server's lease: the replies it writes carry its number, so other servers can
    /// tell when it died.
    lease: lease::ServerLease,
    /// The replies being written here.
    generations: registry::Registry,
    /// Callers here following a reply another server writes: its relayed stream goes to them.
    remote_followers: Mutex<HashMap<String, tokio::sync::mpsc::Sender<Bytes>>>,
    /// Completions outside a chat running here, per person ([`completion`]).
    completions: completion::Running,
}

impl Turns {
    /// Turns on `pool`, with this server's lease taken (replies left unfinished by a dead
    /// server that held the same number are marked incomplete).
    pub async fn new(
        pool: PgPool,
        cipher: Option<Cipher>,
        settings: TurnSettings,
    ) -> Result<Arc<Turns>, DomainError> {
        let lease = lease::ServerLease::acquire(&pool).await?;
        Ok(Arc::new(Turns {
            pool,
            cipher,
            settings,
            lease,
            generations: Default::default(),
            remote_followers: Default::default(),
            completions: Default::default(),
        }))
    }

    pub fn guard(&self) -> &Guard {
        &self.settings.guard
    }

    pub fn timeouts(&self) -> Timeouts {
        self.settings.timeouts
    }

    /// How many replies this server is writing now.
    pub fn running(&self) -> usize {
        self.generations.len()
    }
}
