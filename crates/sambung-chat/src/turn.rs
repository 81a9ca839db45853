//! A turn, top to bottom: refused early or begun (the question stored, the provider called
//! while it is), the reply streamed to its followers and saved now and then, ended at the
//! provider's end, a stop or a cap, stored with its metadata, and the first reply's chat
//! named.

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use sambung_ai::{Delta, Endpoint, FinishReason, ProviderError};
use sambung_db::auth::Caller;
use sambung_db::chats::{Message, MessageRole, ReadChat, NEW_CHAT_TITLE};
use sambung_db::models::{self, Model, StoredEndpoint, TurnModel};
use sambung_db::{quotas, ChatId, ModelId, TeamId, UserId};
use serde_json::json;
use sqlx::types::Json;
use sqlx::PgPool;
use tokio::sync::mpsc::Receiver;

use crate::registry::Generation;
use crate::ui_stream::{Chunk, DONE};
use crate::{request, store, ReplyLimits, ReplyStatus, TurnError, TurnKind, Turns};

/// A reply as Server-Sent Events of the AI SDK's UI message stream.
pub type ReplyStream = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// What a turn reads before anything about it is decided: the chat as its asker reads it
/// (and who they are), its model (where it is called, its key still sealed), the
/// conversation it would send and the asker's allowance.
pub struct TurnReads {
    chat: ReadChat,
    model: sambung_db::Result<Option<(Model, StoredEndpoint)>>,
    preview: sambung_db::Result<Vec<Message>>,
    allowance: sambung_db::Result<quotas::Allowance>,
}

/// The row of [`TURN_READS_SQL`], each module's answer as JSON.
type TurnReadsRow = (
    Option<Json<ReadChat>>,
    Option<Json<TurnModel>>,
    Option<Json<Vec<store::PreviewRow>>>,
    Json<quotas::AllowanceRow>,
);

/// A turn's reads as one statement: `$1`–`$3` the caller ([`Caller::bind`]), `$4` the chat,
/// `$5` the model the turn asks for (else NULL); the chat read once (`readable`) and the rest
/// read on it; the chat's team's allowance is spent too.
pub(crate) static TURN_READS_SQL: LazyLock<String> = LazyLock::new(|| {
    Caller::with_me(
        &[
            &sambung_db::chats::readable_sql(),
            "team AS (SELECT team_id AS id FROM readable)",
        ],
        &format!(
            "SELECT (SELECT row_to_json(r) FROM readable r) AS chat,
                    (SELECT row_to_json(r) FROM ({model}) r) AS model,
                    (SELECT json_agg(r ORDER BY r.created_at, r.id) FROM ({preview}) r) AS preview,
                    (SELECT row_to_json(r) FROM ({allowance}) r) AS allowance",
            model = models::turn_model_sql(),
            preview = store::preview_sql(),
            allowance = *quotas::ALLOWANCE_SQL,
        ),
    )
});

impl TurnReads {
    /// Read what a turn in `chat` needs in one statement: the chat as the caller reads it,
    /// its model (the one asked for, else the chat's) and where it is called, the
    /// conversation and the caller's allowance, each by its own module's query. For a session
    /// `caller` the statement checks the session itself, and the chat's read says whether it
    /// was accepted (not found otherwise, as for a chat one may not read). The access is
    /// answered first: nothing about models, quotas or input is said of a chat one may not
    /// read.
    pub async fn read(
        pool: &PgPool,
        caller: Caller,
        chat: ChatId,
        kind: &TurnKind<'_>,
        model: Option<ModelId>,
    ) -> sambung_db::Result<TurnReads> {
        let (readable, turn_model, preview, allowance): TurnReadsRow = caller
            .bind(sqlx::query_as(&TURN_READS_SQL))
            .bind(chat)
            .bind(model)
            .fetch_one(pool)
            .await?;
        let readable = readable.ok_or(sambung_db::DomainError::not_found("chat"))?;
        let preview = store::check_turn_content(kind).and_then(|()| {
            store::preview_from(preview.map_or_else(Vec::new, |rows| rows.0), chat, kind)
        });
        Ok(TurnReads {
            chat: readable.0,
            model: TurnModel::for_turn(turn_model.map(|row| row.0), model),
            preview,
            allowance: quotas::allowance(allowance.0),
        })
    }

    /// The conversation the turn would send (its question or edit included), or why it
    /// cannot be sent.
    pub fn preview(&self) -> Result<&[Message], &sambung_db::DomainError> {
        self.preview.as_deref()
    }
}

impl Turns {
    /// Begin the turn `reads` were read for and answer with its stream. Everything a turn
    /// can be refused for is checked before the provider is called.
    pub async fn start(
        self: &Arc<Self>,
        reads: TurnReads,
        kind: TurnKind<'_>,
    ) -> Result<ReplyStream, TurnError> {
        let pool = &self.pool;
        let actor = reads.chat.reader_id;
        let readable = reads.chat.chat;
        let chat = readable.id;
        let team = readable.team_id;
        let allowance = reads.allowance?;
        let (model, stored) = reads.model?.ok_or(TurnError::NoModel)?;
        if !allowance.personal_keys && model.api_key_id.is_some() {
            return Err(TurnError::PersonalKeysOff);
        }
        let limits = self.settings.limits.within(&allowance.reply);
        let endpoint = self.endpoint(&model.provider, stored.open(&model, self.cipher.as_ref()))?;
        sambung_ai::preflight(self.guard(), &endpoint, &model.model_id).await?;
        // The provider request leaves now and the turn is stored while it travels (a
        // provider's first token takes far longer than that). Should storing fail (a turn
        // begun elsewhere meanwhile, too many replies running), dropping the receiver cancels
        // the request; should the conversation have changed meanwhile, it is sent again as
        // stored.
        let max_output = allowance
            .reply
            .max_output_tokens
            .map(|cap| cap.clamp(1, i64::from(u32::MAX)) as u32);
        let preview = reads.preview?;
        // Files are read, and refused when the model cannot take them, before it is called.
        let files = request::turn_files(pool, actor, &model, &preview, &kind).await?;
        let sent = request::for_turn(&model, &readable.settings, &preview, &files, max_output);
        let call = |request| {
            let receiver = sambung_ai::stream(
                self.guard().clone(),
                endpoint.clone(),
                request,
                self.settings.timeouts,
            );
            (receiver, Instant::now())
        };
        let (mut receiver, mut started) = call(sent.clone());
        // The request's task (just spawned) runs until it first waits (with a pooled
        // connection to an address, its socket write) before the turn's own statements
        // start: they would otherwise compete with it for the cores and often go first.
        tokio::task::yield_now().await;
        let metadata = json!({"model": model.model_id, "provider": model.provider});
        let pending = store::begin_turn(
            pool,
            &self.lease,
            actor,
            chat,
            kind,
            metadata,
            allowance.running_generations,
        )
        .await?;
        let stored = request::for_turn(
            &model,
            &readable.settings,
            &pending.turn.history,
            &files,
            max_output,
        );
        if stored != sent {
            (receiver, started) = call(stored);
        }
        let turn = pending.commit().await?;
        let generation = self
            .generations
            .start(&chat.to_string(), turn.reply.id.to_string());
        let followed = Box::pin(generation.subscribe());
        let context = TurnContext {
            actor,
            team,
            model,
            endpoint,
            limits,
        };
        tokio::spawn(
            self.clone()
                .run(generation, turn, context, receiver, started),
        );
        Ok(followed)
    }

    /// Run a turn to its end: stream the provider's reply to every follower, store it, name
    /// a new chat, end the stream.
    async fn run(
        self: Arc<Self>,
        generation: Arc<Generation>,
        turn: store::Turn,
        context: TurnContext,
        receiver: Receiver<Result<Delta, ProviderError>>,
        started: Instant,
    ) {
        let model = &context.model;
        let text_id = format!("text-{}", turn.reply.id);
        generation.push(Chunk::Start {
            message_id: turn.reply.id.to_string(),
            message_metadata: Some(json!({"model": model.model_id, "provider": model.provider})),
        });
        generation.push(Chunk::StartStep);
        generation.push(Chunk::TextStart {
            id: text_id.clone(),
        });
        let reply = self
            .stream_reply(
                &generation,
                &turn,
                &text_id,
                receiver,
                started,
                context.limits,
            )
            .await;
        let metadata = reply.metadata(model, started);
        let mut stored = metadata.clone();
        stored["status"] = reply.status().as_str().into();
        // Who asked stays with the reply: a team chat names them beside the question.
        stored["askedBy"] = context.actor.to_string().into();
        if let Some(e) = &reply.error {
            stored["error"] = e.to_string().into();
        }
        let usage = store::Usage {
            user: context.actor,
            team: context.team,
            model,
            input_tokens: reply
                .usage
                .0
                .unwrap_or_else(|| request::estimate_tokens(&turn.history)),
            output_tokens: reply
                .usage
                .1
                .unwrap_or_else(|| request::estimate_output(reply.pieces, reply.text.len())),
            duration: started.elapsed(),
        };
        if let Err(e) =
            store::finish_turn(&self.pool, Some(turn.reply.id), &reply.text, stored, &usage).await
        {
            tracing::error!(error = %e, "cannot store a reply");
        }
        // The reply ends for its followers now; the chat's title follows in the background.
        generation.push(Chunk::TextEnd { id: text_id });
        generation.push(Chunk::FinishStep);
        if let Some(e) = &reply.error {
            generation.push(Chunk::Error {
                error_text: e.to_string(),
            });
        }
        generation.push(Chunk::Finish {
            finish_reason: reply.finish_reason(),
            message_metadata: Some(metadata),
        });
        generation.finish(DONE);
        self.generations
            .remove(&turn.chat.id.to_string(), &generation);
        if turn.chat.title == NEW_CHAT_TITLE && reply.status() == ReplyStatus::Complete {
            self.name_chat(&turn, &context).await;
        }
    }

    /// The provider's reply, piece by piece to the followers, saved every
    /// [`crate::TurnSettings::save_every`], until it ends, is stopped or reaches a cap.
    async fn stream_reply(
        &self,
        generation: &Generation,
        turn: &store::Turn,
        text_id: &str,
        mut receiver: Receiver<Result<Delta, ProviderError>>,
        started: Instant,
        limits: ReplyLimits,
    ) -> Reply {
        let mut reply = Reply::default();
        let (mut saved_at, mut saved_bytes) = (Instant::now(), 0);
        let out_of_time = tokio::time::sleep(limits.max_duration);
        tokio::pin!(out_of_time);
        loop {
            tokio::select! {
                item = receiver.recv() => match item {
                    None => break,
                    Some(Ok(Delta::Text(mut delta))) => {
                        reply.first_token.get_or_insert_with(|| started.elapsed());
                        // A reply ends at its caps (a provider that never stops is cut off),
                        // what fits kept, as a model that ran out of tokens would end it.
                        if reply.text.len() + delta.len() > limits.max_bytes {
                            let mut fits = limits.max_bytes - reply.text.len();
                            while !delta.is_char_boundary(fits) {
                                fits -= 1;
                            }
                            delta.truncate(fits);
                            reply.capped = Some("bytes");
                        }
                        reply.pieces += 1;
                        if reply.pieces >= limits.max_pieces {
                            reply.capped.get_or_insert("tokens");
                        }
                        reply.text.push_str(&delta);
                        if !delta.is_empty() {
                            generation.push(Chunk::TextDelta { id: text_id.to_owned(), delta });
                        }
                        if reply.capped.is_some() {
                            break;
                        }
                        if saved_at.elapsed() >= self.settings.save_every && saved_bytes < reply.text.len() {
                            if let Err(e) = store::save_partial_reply(&self.pool, turn.reply.id, &reply.text).await {
                                tracing::warn!(error = %e, "cannot store a partial reply");
                            }
                            (saved_at, saved_bytes) = (Instant::now(), reply.text.len());
                        }
                    }
                    Some(Ok(Delta::Usage { input, output })) => reply.usage = (input, output),
                    Some(Ok(Delta::Finish(reason))) => reply.finish = Some(reason),
                    // A chat's turn offers the model no tools; a call it makes anyway is dropped.
                    Some(Ok(Delta::ToolCall(_))) => {}
                    Some(Err(e)) => {
                        reply.error = Some(e);
                        break;
                    }
                },
                () = generation.stopped() => {
                    reply.stopped = true;
                    break;
                }
                () = &mut out_of_time => {
                    reply.capped = Some("duration");
                    break;
                }
            }
        }
        // Dropping the receiver ends the provider request.
        reply
    }

    /// Give a new chat a title: asked of its own model (10 seconds at most), else its first
    /// words.
    async fn name_chat(&self, turn: &store::Turn, context: &TurnContext) {
        let Some(question) = turn
            .history
            .iter()
            .rev()
            .find(|m| m.role == MessageRole::User)
        else {
            return;
        };
        let title = match self.ask_title(context, &question.content).await {
            Some(title) => title,
            None => request::first_words(&question.content),
        };
        if let Err(e) = store::title_new_chat(&self.pool, turn.chat.id, &title).await {
            tracing::warn!(error = %e, "cannot title a chat");
        }
    }

    async fn ask_title(&self, context: &TurnContext, question: &str) -> Option<String> {
        const LIMIT: Duration = Duration::from_secs(10);
        let model = &context.model;
        let timeouts = sambung_ai::Timeouts {
            retries: 0,
            first_byte: LIMIT,
            idle: LIMIT,
            ..self.settings.timeouts
        };
        let mut receiver = sambung_ai::stream(
            self.guard().clone(),
            context.endpoint.clone(),
            request::for_title(model, question),
            timeouts,
        );
        let mut answer = String::new();
        let collect = async {
            while let Some(item) = receiver.recv().await {
                match item {
                    Ok(Delta::Text(text)) => answer.push_str(&text),
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
            true
        };
        let finished = tokio::time::timeout(LIMIT, collect).await.unwrap_or(false);
        finished.then(|| request::title_from(&answer)).flatten()
    }
}

/// Who asked, in which chat, of which model, within which caps.
struct TurnContext {
    actor: UserId,
    team: Option<TeamId>,
    model: Model,
    /// Where the model is called (the chat's title is asked there too).
    endpoint: Endpoint,
    limits: ReplyLimits,
}

/// A reply as it ended.
#[derive(Default)]
struct Reply {
    text: String,
    /// Pieces of text the provider streamed (about a token each).
    pieces: u32,
    first_token: Option<Duration>,
    usage: (Option<u64>, Option<u64>),
    /// As the provider said.
    finish: Option<FinishReason>,
    error: Option<ProviderError>,
    stopped: bool,
    /// The limit it reached: `bytes`, `tokens` or `duration`.
    capped: Option<&'static str>,
}

impl Reply {
    fn status(&self) -> ReplyStatus {
        match (&self.error, self.stopped) {
            (Some(_), _) => ReplyStatus::Error,
            (None, true) => ReplyStatus::Stopped,
            (None, false) => ReplyStatus::Complete,
        }
    }

    fn finish_reason(&self) -> FinishReason {
        match (&self.error, self.stopped, self.capped) {
            (Some(_), _, _) => FinishReason::Error,
            (None, true, _) => FinishReason::Other,
            (None, false, Some(_)) => FinishReason::Length,
            (None, false, None) => self.finish.unwrap_or(FinishReason::Stop),
        }
    }

    /// What the reply's message keeps, and its followers get at the end.
    fn metadata(&self, model: &Model, started: Instant) -> serde_json::Value {
        let mut metadata = json!({
            "model": model.model_id,
            "provider": model.provider,
            "inputTokens": self.usage.0,
            "outputTokens": self.usage.1,
            "finishReason": self.finish_reason(),
            "ttftMs": self.first_token.map(|t| t.as_millis() as u64),
            "durationMs": started.elapsed().as_millis() as u64,
        });
        if let Some(limit) = self.capped {
            metadata["capped"] = limit.into();
        }
        if self.stopped {
            metadata["stopped"] = true.into();
        }
        metadata
    }
}

#[cfg(test)]
mod tests {
    use sambung_db::chats::{self, NewChat};
    use sambung_db::models::{self, ModelFields};
    use sambung_testkit::TestDb;

    use super::*;

    /// A personal chat of `owner`'s.
    async fn chat_of(pool: &PgPool, owner: UserId) -> ChatId {
        let chat = NewChat {
            title: "ana's",
            model: "gpt-4o",
            provider: "openai",
            ..NewChat::default()
        };
        chats::create_chat(pool, owner, chat).await.unwrap().id
    }

    /// The turn's statement in `chat` as `caller`, asking for `model`.
    async fn reads(
        pool: &PgPool,
        caller: UserId,
        chat: ChatId,
        model: Option<ModelId>,
    ) -> TurnReadsRow {
        Caller::User(caller)
            .bind(sqlx::query_as(&TURN_READS_SQL))
            .bind(chat)
            .bind(model)
            .fetch_one(pool)
            .await
            .unwrap()
    }

    /// Everything in the statement is read on the chat as its caller reads it: a stranger
    /// gets no chat, and no model, conversation or team of it either (the model's fallbacks
    /// once read their own default beside a chat they could not read).
    #[tokio::test]
    async fn a_stranger_reads_nothing_of_a_chat_in_the_turns_statement() {
        let db = TestDb::migrated().await;
        let pool = db.pool();
        let ana = UserId::from(sambung_testkit::insert_user(pool, "ana@example.com").await);
        let eve = UserId::from(sambung_testkit::insert_user(pool, "eve@example.com").await);
        let mut defaults = Vec::new();
        for owner in [ana, eve] {
            let fields = ModelFields {
                provider: "openai",
                model_id: "gpt-4o",
                name: "Default",
                base_url: None,
                api_key_id: None,
                settings: json!({}),
                is_default: true,
            };
            defaults.push(
                models::create_model(pool, owner, None, fields)
                    .await
                    .unwrap()
                    .id,
            );
        }
        let chat = chat_of(pool, ana).await;
        chats::append_message(pool, ana, chat, "secret", None)
            .await
            .unwrap();
        let read = |caller: UserId, model: Option<ModelId>| reads(pool, caller, chat, model);

        let (readable, model, preview, _) = read(ana, None).await;
        assert_eq!(readable.map(|r| r.0.reader_id), Some(ana));
        assert_eq!(model.map(|m| m.0.model.user_id), Some(Some(ana)));
        assert_eq!(preview.map(|p| p.0.len()), Some(1));

        // Her own model asked for by name; another's is not one she may use.
        let (_, model, _, _) = read(ana, Some(defaults[0])).await;
        let named = TurnModel::for_turn(model.map(|m| m.0), Some(defaults[0])).unwrap();
        assert_eq!(named.map(|(m, _)| m.id), Some(defaults[0]));
        let (_, model, _, _) = read(ana, Some(defaults[1])).await;
        let named = TurnModel::for_turn(model.map(|m| m.0), Some(defaults[1]));
        assert!(
            matches!(named, Err(sambung_db::DomainError::NotFound { .. })),
            "{named:?}"
        );

        // A stranger reads nothing, whether naming a model (her own) or not.
        for named in [None, Some(defaults[1])] {
            let (readable, model, preview, _) = read(eve, named).await;
            assert!(readable.is_none() && model.is_none() && preview.is_none());
        }
    }

    /// Keys as long as hosted providers' (sealed, over 57 bytes: PostgreSQL's base64 of the sealed
    /// key breaks its lines, which the statement takes out).
    const ANA_KEY: &str = "sk-proj-ana-4f9c2a7e1b8d3c6f0a5e9b2d7c1f4a8e3b6d0c9f2a5e8b1d4c7f0a3e6b9d2c5f8a1e4b7d0c3f6a9e2b5d8c1f4a7e0b3d6c9f2a5e8b1d4c7f0a3e6b9d2c5f8a1e";
    const SHARED_KEY: &str = "sk-proj-shared-9e2b5d8c1f4a7e0b3d6c9f2a5e8b1d4c7f0a3e6b9d2c5f8a1e4b7d0c3f6a9e2b5d8c1f4a7e0b3d6c9f2a5e8b1d4c7f0a3e6b9d2c5f8a1e4b7d0c3f6a9e2b5d";

    /// The turn's statement brings its model's endpoint with it (no statement of its own
    /// before the provider is called): a personal model's key sealed as stored, opened with
    /// the master key only; an instance model's connection, its URL and key.
    #[tokio::test]
    async fn the_turns_statement_brings_its_models_key_sealed() {
        use sambung_db::connections::{self, ConnectionFields};
        use sambung_db::secret::Cipher;

        let db = TestDb::migrated().await;
        let pool = db.pool();
        let cipher = Cipher::new(&[7; 32]);
        let ana = UserId::from(sambung_testkit::insert_user(pool, "ana@example.com").await);
        let key = sambung_db::api_keys::add_api_key(
            pool,
            &cipher,
            ana,
            sambung_db::api_keys::Provider::Openai,
            "mine",
            ANA_KEY,
        )
        .await
        .unwrap();
        let fields = ModelFields {
            provider: "openai",
            model_id: "gpt-4o",
            name: "Mine",
            base_url: Some("https://llm.example.com/v1"),
            api_key_id: Some(key.id),
            settings: json!({}),
            is_default: true,
        };
        let own = models::create_model(pool, ana, None, fields).await.unwrap();
        let connection = connections::add_connection(
            pool,
            ana,
            ConnectionFields {
                name: "Shared",
                provider: "openai",
                base_url: Some("https://shared.example.com/v1"),
            },
            Some((&cipher, SHARED_KEY)),
        )
        .await
        .unwrap();
        let shared = models::create_instance_model(
            pool,
            models::InstanceModelFields {
                connection: connection.id,
                model_id: "gpt-shared",
                name: "Shared",
                settings: json!({}),
                is_default: false,
                teams: Vec::new(),
                input_price: None,
                output_price: None,
            },
        )
        .await
        .unwrap();
        let chat = chat_of(pool, ana).await;
        let read = |model: Option<ModelId>| async move {
            let (_, turn_model, _, _) = reads(pool, ana, chat, model).await;
            TurnModel::for_turn(turn_model.map(|m| m.0), model)
                .unwrap()
                .unwrap()
        };

        // Her default, its key sealed: opened with the master key, refused without it or
        // with another.
        let (model, stored) = read(None).await;
        assert_eq!(model.id, own.id);
        assert_eq!(
            stored.open(&model, Some(&cipher)).unwrap(),
            (
                Some("https://llm.example.com/v1".to_owned()),
                Some(ANA_KEY.to_owned())
            )
        );
        for wrong in [None, Some(&Cipher::new(&[8; 32]))] {
            assert!(matches!(
                stored.open(&model, wrong),
                Err(sambung_db::DomainError::Decrypt)
            ));
        }
        // A sealed key opens for its own row only: moved onto another model's, it does not.
        let mut elsewhere = model.clone();
        elsewhere.api_key_id = Some(sambung_db::ApiKeyId::new());
        assert!(matches!(
            stored.open(&elsewhere, Some(&cipher)),
            Err(sambung_db::DomainError::Decrypt)
        ));

        // The instance's model, asked for by name: its connection's URL and key.
        let (model, stored) = read(Some(shared.model.id)).await;
        assert_eq!(model.connection_id, Some(connection.id));
        assert_eq!(
            stored.open(&model, Some(&cipher)).unwrap(),
            (
                Some("https://shared.example.com/v1".to_owned()),
                Some(SHARED_KEY.to_owned())
            )
        );
    }

    /// A model asked for serves only the chats it is for, even to a reader who may use it: a
    /// team's model its team's chats (not another team's of hers), an instance model for a
    /// team that team's chats (not her personal ones).
    #[tokio::test]
    async fn a_model_asked_for_serves_only_the_chats_it_is_for() {
        use sambung_db::connections::{self, ConnectionFields};

        let db = TestDb::migrated().await;
        let pool = db.pool();
        let ana = UserId::from(sambung_testkit::insert_user(pool, "ana@example.com").await);
        let mut teams = Vec::new();
        for slug in ["kopi", "teh"] {
            let team = sambung_db::teams::create_team(pool, ana, slug, slug, None)
                .await
                .unwrap();
            teams.push(team.id);
        }
        let fields = ModelFields {
            provider: "openai",
            model_id: "gpt-kopi",
            name: "Kopi's",
            base_url: None,
            api_key_id: None,
            settings: json!({}),
            is_default: false,
        };
        let kopis = models::create_model(pool, ana, Some(teams[0]), fields)
            .await
            .unwrap();
        let connection = connections::add_connection(
            pool,
            ana,
            ConnectionFields {
                name: "Local",
                provider: "ollama",
                base_url: Some("http://127.0.0.1:11434"),
            },
            None,
        )
        .await
        .unwrap();
        let for_kopi = models::create_instance_model(
            pool,
            models::InstanceModelFields {
                connection: connection.id,
                model_id: "llama",
                name: "Llama for Kopi",
                settings: json!({}),
                is_default: false,
                teams: vec![teams[0]],
                input_price: None,
                output_price: None,
            },
        )
        .await
        .unwrap();
        let mut chats_in = Vec::new();
        for team in [Some(teams[0]), Some(teams[1]), None] {
            let chat = NewChat {
                team_id: team,
                title: "a chat",
                model: "gpt-4o",
                provider: "openai",
                ..NewChat::default()
            };
            chats_in.push(chats::create_chat(pool, ana, chat).await.unwrap().id);
        }
        let (kopi, teh, personal) = (chats_in[0], chats_in[1], chats_in[2]);
        let asked = |chat: ChatId, model: ModelId| async move {
            let (_, turn_model, _, _) = reads(pool, ana, chat, Some(model)).await;
            TurnModel::for_turn(turn_model.map(|m| m.0), Some(model)).map(|m| m.map(|(m, _)| m.id))
        };
        let refused = |answer: sambung_db::Result<Option<ModelId>>, says: &str| match answer {
            Err(sambung_db::DomainError::Invalid { reason, .. }) => {
                assert!(reason.contains(says), "{reason}")
            }
            other => panic!("{other:?}"),
        };

        assert_eq!(asked(kopi, kopis.id).await.unwrap(), Some(kopis.id));
        refused(asked(teh, kopis.id).await, "team's chats only");
        refused(asked(personal, kopis.id).await, "team's chats only");
        let llama = for_kopi.model.id;
        assert_eq!(asked(kopi, llama).await.unwrap(), Some(llama));
        refused(asked(personal, llama).await, "its teams' chats only");
        refused(asked(teh, llama).await, "its teams' chats only");
    }
}
