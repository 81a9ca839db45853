//! A completion asked outside a chat (the OpenAI-compatible endpoint, SPEC section 16): the
//! same models, keys, quotas, caps and usage as a turn, and nothing stored but what it used.
//! The caller writes the pieces in its own shape. Asked to, the conversation and its reply are
//! kept as a chat of the caller's when it ends (written as an import is, once).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sambung_ai::{Delta, FinishReason, ProviderError, Request, Role, ToolCall, Turn};
use sambung_db::models::Model;
use sambung_db::{imports, quotas, ChatId, UserId};
use serde_json::json;
use tokio::sync::mpsc::Receiver;

use crate::{store, ReplyLimits, TurnError, Turns};

/// What a completion yields, in order: text, the tools the model called, then at most one
/// usage, then its end.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    /// A call of one of the caller's tools, whole: the caller runs it.
    ToolCall(ToolCall),
    Usage {
        input: u64,
        output: u64,
    },
    /// The end as the provider said it, or `Length` at one of the instance's caps.
    Finish(FinishReason),
    /// The provider failed: nothing more follows.
    Failed(ProviderError),
}

/// Completions running on this server, per person: as many at once as the replies a person
/// may have streaming (the `runningGenerations` quota), so one token cannot hold many
/// providers' connections open. Each server counts its own (a completion keeps no row a
/// replica could count): behind a load balancer with replicas, a person may run that many on
/// each.
#[derive(Default)]
pub(crate) struct Running(Arc<Mutex<HashMap<UserId, i64>>>);

/// One running completion's place, given back when it is dropped.
struct Slot {
    running: Arc<Mutex<HashMap<UserId, i64>>>,
    user: UserId,
}

impl Running {
    fn take(&self, user: UserId, allowed: Option<i64>) -> Result<Slot, TurnError> {
        let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mine = running.entry(user).or_insert(0);
        quotas::running_over(allowed, *mine)?;
        *mine += 1;
        Ok(Slot {
            running: self.0.clone(),
            user,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mine) = running.get_mut(&self.user) {
            *mine -= 1;
            if *mine <= 0 {
                running.remove(&self.user);
            }
        }
    }
}

/// A completion under way: read it with [`Completion::next`] to its end; what it used is
/// counted then (or, dropped half-way, as far as it went).
pub struct Completion {
    /// `chatcmpl-…`: the answer's id, and the kept chat's source id.
    pub id: String,
    /// The chat it was kept as, once it ended (when it was to be kept).
    pub kept: Option<ChatId>,
    /// What is kept as a chat besides the reply; none: nothing is kept.
    keep: Option<Request>,
    reply: String,
    pool: sqlx::PgPool,
    actor: UserId,
    pub model: Model,
    receiver: Receiver<Result<Delta, ProviderError>>,
    limits: ReplyLimits,
    started: Instant,
    /// Estimated from the request until the provider says.
    estimated_input: u64,
    bytes: usize,
    pieces: u32,
    usage: (Option<u64>, Option<u64>),
    finish: Option<FinishReason>,
    /// What is still to be said after the end (its usage, then the end itself).
    after_end: VecDeque<Piece>,
    ended: bool,
    counted: bool,
    _slot: Slot,
}

impl Turns {
    /// Call `model` for `actor` with `request` (the model's settings where it says nothing):
    /// refused before the provider is called when a quota is used up or the model's key may
    /// not be used; `max_tokens` kept within the instance's cap. With `keep`, the conversation and the reply become a chat when it ends.
    pub async fn complete(
        &self,
        actor: UserId,
        model: Model,
        request: Request,
        keep: bool,
    ) -> Result<Completion, TurnError> {
        let mut request = crate::request::with_model_defaults(&model, request);
        let allowance = quotas::check_turn(&self.pool, actor, model.team_id).await?;
        if !allowance.personal_keys && model.api_key_id.is_some() {
            return Err(TurnError::PersonalKeysOff);
        }
        let slot = self
            .completions
            .take(actor, allowance.running_generations)?;
        let limits = self.settings.limits.within(&allowance.reply);
        if let Some(cap) = allowance.reply.max_output_tokens {
            let cap = cap.clamp(1, i64::from(u32::MAX)) as u32;
            request.max_tokens = Some(request.max_tokens.map_or(cap, |m| m.min(cap)));
        }
        let endpoint = self.endpoint_for(&model).await?;
        sambung_ai::preflight(self.guard(), &endpoint, &model.model_id).await?;
        request.model = model.model_id.clone();
        let text: usize = request
            .turns
            .iter()
            .map(|t| t.content.len())
            .chain(request.system.as_ref().map(String::len))
            .sum();
        let images = request
            .turns
            .iter()
            .map(|t| t.attachments.len())
            .sum::<usize>() as u64;
        let estimated_input =
            crate::request::tokens_in(text) + images * crate::request::TOKENS_PER_IMAGE;
        let keep = keep.then(|| request.clone());
        let receiver = sambung_ai::stream(
            self.guard().clone(),
            endpoint,
            request,
            self.settings.timeouts,
        );
        Ok(Completion {
            id: format!("chatcmpl-{}", uuid::Uuid::now_v7().simple()),
            kept: None,
            keep,
            reply: String::new(),
            pool: self.pool.clone(),
            actor,
            model,
            receiver,
            limits,
            started: Instant::now(),
            estimated_input,
            bytes: 0,
            pieces: 0,
            usage: (None, None),
            finish: None,
            after_end: VecDeque::new(),
            ended: false,
            counted: false,
            _slot: slot,
        })
    }
}

impl Completion {
    /// The next piece; none after the end.
    pub async fn next(&mut self) -> Option<Piece> {
        loop {
            if self.ended {
                return self.after_end.pop_front();
            }
            let left = self
                .limits
                .max_duration
                .saturating_sub(self.started.elapsed());
            let item = match tokio::time::timeout(left, self.receiver.recv()).await {
                Ok(item) => item,
                Err(_) => {
                    self.finish = Some(FinishReason::Length);
                    None
                }
            };
            match item {
                Some(Ok(Delta::Text(mut text))) => {
                    self.pieces += 1;
                    let over = self.bytes + text.len() > self.limits.max_bytes;
                    if over {
                        let mut fits = self.limits.max_bytes - self.bytes;
                        while !text.is_char_boundary(fits) {
                            fits -= 1;
                        }
                        text.truncate(fits);
                    }
                    self.bytes += text.len();
                    if self.keep.is_some() {
                        self.reply.push_str(&text);
                    }
                    if over || self.pieces >= self.limits.max_pieces {
                        // At a cap the provider is left (its request cancelled) and the text
                        // that fits is the last.
                        self.finish = Some(FinishReason::Length);
                        self.end().await;
                    }
                    return Some(Piece::Text(text));
                }
                Some(Ok(Delta::ToolCall(call))) => {
                    // Its arguments are output too, for an estimate of what was used.
                    self.bytes += call.name.len() + call.arguments.len();
                    return Some(Piece::ToolCall(call));
                }
                Some(Ok(Delta::Usage { input, output })) => {
                    self.usage = (input.or(self.usage.0), output.or(self.usage.1));
                }
                Some(Ok(Delta::Finish(reason))) => {
                    self.finish.get_or_insert(reason);
                }
                Some(Err(error)) => {
                    self.ended = true;
                    self.count().await;
                    return Some(Piece::Failed(error));
                }
                None => self.end().await,
            }
        }
    }

    /// What it used, as counted: the provider's numbers, else estimates.
    pub fn usage(&self) -> (u64, u64) {
        (
            self.usage.0.unwrap_or(self.estimated_input),
            self.usage
                .1
                .unwrap_or_else(|| crate::request::estimate_output(self.pieces, self.bytes)),
        )
    }

    async fn end(&mut self) {
        self.ended = true;
        self.receiver.close();
        self.count().await;
        self.keep_as_chat().await;
        let (input, output) = self.usage();
        self.after_end.push_back(Piece::Usage { input, output });
        self.after_end
            .push_back(Piece::Finish(self.finish.unwrap_or(FinishReason::Stop)));
    }

    /// The conversation asked and its reply as a chat of the caller's (its system prompt the
    /// chat's; images are not kept). Written as an import is, under the completion's id.
    async fn keep_as_chat(&mut self) {
        use sambung_transfer::{Conversation, Message, Role as Kept, Source};
        let Some(request) = self.keep.take() else {
            return;
        };
        let now = chrono::Utc::now();
        let reply = Turn {
            role: Role::Assistant,
            content: std::mem::take(&mut self.reply),
            attachments: Vec::new(),
            ..Turn::default()
        };
        let title = request
            .turns
            .iter()
            .rev()
            .find(|t| t.role == Role::User)
            .map(|t| crate::request::first_words(&t.content))
            .unwrap_or_default();
        let messages = request
            .turns
            .iter()
            .chain([&reply])
            .enumerate()
            .map(|(at, turn)| Message {
                source_id: format!("{}-{at}", self.id),
                parent: at.checked_sub(1),
                role: match turn.role {
                    Role::User => Kept::User,
                    Role::Assistant => Kept::Assistant,
                },
                content: turn.content.clone(),
                model: (turn.role == Role::Assistant).then(|| self.model.model_id.clone()),
                // Each after the one it follows.
                created_at: now + chrono::Duration::microseconds(at as i64),
                on_path: true,
                metadata: None,
                files: Vec::new(),
            })
            .collect();
        let conversation = Conversation {
            source: Source::Api,
            source_id: self.id.clone(),
            title,
            created_at: now,
            updated_at: now,
            model: Some(self.model.model_id.clone()),
            provider: self.model.provider.clone(),
            settings: request
                .system
                .map_or_else(|| json!({}), |system| json!({"systemPrompt": system})),
            folder: None,
            tags: Vec::new(),
            pinned: false,
            archived: false,
            messages,
            notes: Default::default(),
        };
        let written = async {
            let mut tx = self.pool.begin().await?;
            let done = imports::import_conversation(
                &mut tx,
                self.actor,
                &conversation,
                &[],
                &mut Vec::new(),
            )
            .await?;
            tx.commit().await?;
            Ok::<_, sambung_db::DomainError>(done)
        }
        .await;
        match written {
            Ok(
                imports::Imported::Added { chat, .. } | imports::Imported::AlreadyThere { chat },
            ) => self.kept = Some(chat),
            Err(e) => tracing::error!(error = %e, "cannot keep a completion as a chat"),
        }
    }

    fn usage_row(&self) -> (u64, u64, std::time::Duration) {
        let (input, output) = self.usage();
        (input, output, self.started.elapsed())
    }

    async fn count(&mut self) {
        if std::mem::replace(&mut self.counted, true) {
            return;
        }
        let (input, output, duration) = self.usage_row();
        count_usage(&self.pool, self.actor, &self.model, input, output, duration).await;
    }
}

impl Drop for Completion {
    /// A caller that left half-way (a closed stream) still used what was streamed.
    fn drop(&mut self) {
        if self.counted {
            return;
        }
        let (input, output, duration) = self.usage_row();
        let (pool, actor, model) = (self.pool.clone(), self.actor, self.model.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                count_usage(&pool, actor, &model, input, output, duration).await;
            });
        }
    }
}

/// Add a completion's use to the day's usage (no reply to store).
async fn count_usage(
    pool: &sqlx::PgPool,
    actor: UserId,
    model: &Model,
    input_tokens: u64,
    output_tokens: u64,
    duration: std::time::Duration,
) {
    let usage = store::Usage {
        user: actor,
        team: model.team_id,
        model,
        input_tokens,
        output_tokens,
        duration,
    };
    if let Err(e) = store::finish_turn(pool, None, "", serde_json::Value::Null, &usage).await {
        tracing::error!(error = %e, "cannot count a completion's usage");
    }
}
