//! What a turn sends: where (the model's endpoint, its key decrypted for the call only) and
//! what (the conversation so far, with the chat's and the model's settings), and the short
//! request that names a new chat.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sambung_ai::{ApiKey, Attachment, Endpoint, Provider, Request, Role, Turn};
use sambung_db::chats::{Message, MessageRole};
use sambung_db::files;
use sambung_db::models::{self, Model};
use sambung_db::{ApiKeyId, MessageId, UserId};
use sambung_providers::Capabilities;
use sqlx::PgPool;

use crate::{TurnError, TurnKind, Turns};

impl Turns {
    /// Where a model's requests go, with its key decrypted (in memory for this call only; a
    /// turn opens its own from its statement, `StoredEndpoint::open`, and keeps it for the
    /// turn): a user's or team's model, its own base URL and key; an instance model, its
    /// connection's.
    pub async fn endpoint_for(&self, model: &Model) -> Result<Endpoint, TurnError> {
        let found = models::model_endpoint(&self.pool, self.cipher.as_ref(), model).await;
        self.endpoint(&model.provider, found)
    }

    /// Where requests would go for a model not made yet (listing what `provider` offers):
    /// `base_url` (else the provider's own), with `owner`'s stored key decrypted, or a key
    /// typed for this one call and kept nowhere.
    pub async fn personal_endpoint(
        &self,
        owner: UserId,
        provider: &str,
        base_url: Option<&str>,
        key: Option<ProbeKey>,
    ) -> Result<Endpoint, TurnError> {
        let key = match (key, self.cipher.as_ref()) {
            (None, _) => Ok(None),
            (Some(ProbeKey::Typed(key)), _) => Ok(Some(key)),
            (Some(ProbeKey::Stored(_)), None) => Err(sambung_db::DomainError::Decrypt),
            (Some(ProbeKey::Stored(key)), Some(cipher)) => {
                sambung_db::api_keys::reveal_api_key(&self.pool, cipher, owner, key)
                    .await
                    .map(Some)
            }
        };
        self.endpoint(provider, key.map(|key| (base_url.map(str::to_owned), key)))
    }

    /// Where a connection's requests go (listing what it offers), its key decrypted.
    pub async fn connection_endpoint(
        &self,
        connection: &sambung_db::connections::Connection,
    ) -> Result<Endpoint, TurnError> {
        let found = sambung_db::connections::reveal_connection(
            &self.pool,
            self.cipher.as_ref(),
            connection.id,
        )
        .await;
        self.endpoint(&connection.provider, found)
    }

    pub(crate) fn endpoint(
        &self,
        provider: &str,
        found: Result<(Option<String>, Option<String>), sambung_db::DomainError>,
    ) -> Result<Endpoint, TurnError> {
        let provider = Provider::parse(provider).ok_or_else(|| {
            TurnError::Provider(sambung_ai::ProviderError::Config("unknown provider".into()))
        })?;
        let (base_url, key) = found.map_err(|e| match (e, &self.cipher) {
            (sambung_db::DomainError::Decrypt, None) => TurnError::NoEncryptionKey,
            (e, _) => e.into(),
        })?;
        Ok(Endpoint::new(
            provider,
            base_url.as_deref(),
            key.map(ApiKey::new),
        )?)
    }
}

/// The key a listing of a provider's models is asked with.
pub enum ProbeKey {
    /// One of the user's stored keys.
    Stored(ApiKeyId),
    /// A key typed in the model form, not stored yet.
    Typed(String),
}

/// The files a turn's conversation carries, as the model is to take them: each earlier
/// question's by its id, and the question being asked (or edited) apart, since the stored
/// question has an id the preview's does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnFiles {
    by_message: HashMap<MessageId, Vec<Attachment>>,
    question: Vec<Attachment>,
}

/// How many bytes of files one request carries: the newest first; older files past it are
/// named, not sent again (providers take 20 to 50 MB a request).
pub const REQUEST_FILE_BYTES: i64 = 30 << 20;

/// Read the files of a turn (`history` as the preview has it) and make them what `model`
/// takes: images when it sees, PDFs when it reads them, text files as their text. A file it
/// cannot take is refused here, before the provider is called, naming the file, why, and what
/// would take it. The question's files come from `kind` (the actor's own, by id).
pub async fn turn_files(
    pool: &PgPool,
    actor: UserId,
    model: &Model,
    history: &[Message],
    kind: &TurnKind<'_>,
) -> Result<TurnFiles, TurnError> {
    // Only the questions that carry files are asked about (a conversation without files
    // costs no statement).
    let earlier: Vec<MessageId> = history
        .iter()
        .filter(|m| m.role == MessageRole::User && m.has_files)
        .map(|m| m.id)
        .collect();
    let (carried, question) = match *kind {
        TurnKind::Ask { files, .. } if !files.is_empty() => (
            files::files_of(pool, &earlier).await?,
            files::own_files(pool, actor, files).await?,
        ),
        TurnKind::Edit { message, .. } => {
            let carried = files::files_of(pool, &earlier).await?;
            let kept = carried
                .iter()
                .filter(|(m, _)| *m == message)
                .map(|(_, f)| f.clone())
                .collect();
            (carried, kept)
        }
        _ => (files::files_of(pool, &earlier).await?, Vec::new()),
    };
    if carried.is_empty() && question.is_empty() {
        return Ok(TurnFiles::default());
    }
    let taker = Taker::of(model);
    let mut budget = REQUEST_FILE_BYTES;
    let mut turn_files = TurnFiles::default();
    for file in &question {
        turn_files
            .question
            .push(taker.take(pool, file, &mut budget, true).await?);
    }
    // Newest first: the budget goes to what the conversation said last.
    for (message, file) in carried.iter().rev() {
        let attachment = taker.take(pool, file, &mut budget, false).await?;
        turn_files
            .by_message
            .entry(*message)
            .or_default()
            .insert(0, attachment);
    }
    Ok(turn_files)
}

/// What a model takes beside text: known by its name, or its own settings (`vision`, `pdf`).
struct Taker<'a> {
    model: &'a Model,
    capabilities: Capabilities,
}

impl<'a> Taker<'a> {
    fn of(model: &'a Model) -> Self {
        let mut capabilities = Provider::parse(&model.provider)
            .map(|p| Capabilities::known(p, &model.model_id))
            .unwrap_or_default();
        if let Some(vision) = model.settings.get("vision").and_then(|v| v.as_bool()) {
            capabilities.vision = vision;
        }
        if let Some(pdf) = model.settings.get("pdf").and_then(|v| v.as_bool()) {
            capabilities.pdf = pdf;
        }
        Taker {
            model,
            capabilities,
        }
    }

    /// `file` as an attachment, its bytes read; past the budget, an earlier file is named
    /// only, and the question's own is refused.
    async fn take(
        &self,
        pool: &PgPool,
        file: &files::File,
        budget: &mut i64,
        asked_now: bool,
    ) -> Result<Attachment, TurnError> {
        let name = file.name.clone();
        let model = &self.model.name;
        if file.is_image() && !self.capabilities.vision {
            return Err(TurnError::FileNotTaken(format!(
                "{name} is an image, and {model} cannot see images: choose a model that can (GPT-4o, Claude, Gemini, LLaVA), or say in the model's settings that it sees"
            )));
        }
        if file.media_type == "application/pdf" && !self.capabilities.pdf {
            // Its text instead, read when it was kept, page by page.
            return match files::pdf_text(pool, file.id).await? {
                Some(text) => {
                    *budget -= text.len() as i64;
                    Ok(Attachment::Text { name, text: text.into() })
                }
                None => Err(TurnError::FileNotTaken(format!(
                    "{name} is a PDF whose text could not be read (a scan?), and {model} cannot read PDFs themselves: choose a model that can (Claude, Gemini, GPT-4o)"
                ))),
            };
        }
        if file.size > *budget {
            if asked_now {
                return Err(TurnError::FileNotTaken(format!(
                    "{name} does not fit in one request with the other files ({REQUEST_FILE_BYTES} bytes at most): send fewer or smaller files"
                )));
            }
            return Ok(Attachment::Text {
                name: name.clone(),
                text: format!("({name} was given earlier in this chat; it is not sent again)")
                    .into(),
            });
        }
        *budget -= file.size;
        let bytes = files::file_bytes(pool, file.id).await?;
        Ok(
            if let Some(kind) = sambung_files::Kind::image(&file.media_type) {
                // What leaves carries no camera, place or time; the owner keeps the original.
                let sent = sambung_files::without_metadata(kind, bytes);
                Attachment::Image {
                    media_type: file.media_type.clone(),
                    base64: STANDARD.encode(&sent).into(),
                }
            } else if file.media_type == "application/pdf" {
                Attachment::Pdf {
                    name,
                    base64: STANDARD.encode(&bytes).into(),
                }
            } else {
                Attachment::Text {
                    name,
                    // Kept only when its bytes were UTF-8 (`sambung-files`).
                    text: String::from_utf8_lossy(&bytes).into(),
                }
            },
        )
    }
}

/// The provider request for a turn: the chat's own settings over its model's (the chat's
/// `systemPrompt` in place of the model's `system`), and the conversation so far (system
/// messages join the system prompt; empty replies are left out), asking for at most
/// `max_output` tokens when the instance caps replies.
pub fn for_turn(
    model: &Model,
    chat_settings: &serde_json::Value,
    history: &[Message],
    files: &TurnFiles,
    max_output: Option<u32>,
) -> Request {
    let setting = |chat_key: &str, model_key: &str| {
        chat_settings
            .get(chat_key)
            .filter(|v| !v.is_null())
            .or_else(|| model.settings.get(model_key))
    };
    let mut system: Vec<String> = setting("systemPrompt", "system")
        .and_then(|s| s.as_str())
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .into_iter()
        .collect();
    let mut turns = Vec::new();
    let question = history.iter().rposition(|m| m.role == MessageRole::User);
    for (at, message) in history.iter().enumerate() {
        match message.role {
            MessageRole::System => system.push(message.content.clone()),
            MessageRole::User => turns.push(Turn {
                role: Role::User,
                content: message.content.clone(),
                attachments: match files.by_message.get(&message.id) {
                    Some(carried) => carried.clone(),
                    None if Some(at) == question => files.question.clone(),
                    None => Vec::new(),
                },
                ..Turn::default()
            }),
            MessageRole::Assistant if !message.content.is_empty() => turns.push(Turn {
                role: Role::Assistant,
                content: message.content.clone(),
                ..Turn::default()
            }),
            MessageRole::Assistant => {}
        }
    }
    Request {
        model: model.model_id.clone(),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        turns,
        temperature: setting("temperature", "temperature").and_then(|v| v.as_f64()),
        max_tokens: setting("maxTokens", "maxTokens")
            .and_then(|v| v.as_u64())
            .map(|m| m.min(u64::from(u32::MAX)) as u32)
            .into_iter()
            .chain(max_output)
            .min(),
        top_p: setting("topP", "topP").and_then(|v| v.as_f64()),
        stop: Vec::new(),
        ..Request::default()
    }
}

/// A caller's own request (the OpenAI-compatible endpoint's) with its model's settings where
/// it says nothing: the model's system prompt, temperature, top-p and longest reply.
pub fn with_model_defaults(model: &Model, mut request: Request) -> Request {
    let setting = |key: &str| model.settings.get(key);
    if request.system.is_none() {
        request.system = setting("system")
            .and_then(|s| s.as_str())
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned);
    }
    request.temperature = request
        .temperature
        .or_else(|| setting("temperature").and_then(|v| v.as_f64()));
    request.top_p = request
        .top_p
        .or_else(|| setting("topP").and_then(|v| v.as_f64()));
    request.max_tokens = request.max_tokens.or_else(|| {
        setting("maxTokens")
            .and_then(|v| v.as_u64())
            .map(|m| m.min(u64::from(u32::MAX)) as u32)
    });
    request
}

/// The request that names a chat from its first question.
pub fn for_title(model: &Model, question: &str) -> Request {
    Request {
        model: model.model_id.clone(),
        system: Some(
            "You name chats. Answer with a title of at most six words, nothing else.".into(),
        ),
        turns: vec![Turn {
            role: Role::User,
            content: format!(
                "Name a chat that begins with this message:\n\n{}",
                question.chars().take(2000).collect::<String>()
            ),
            ..Turn::default()
        }],
        temperature: Some(0.2),
        max_tokens: Some(24),
        top_p: None,
        stop: Vec::new(),
        ..Request::default()
    }
}

/// A model's answer to [`for_title`] as a title: its first line without quotes or markup, at
/// most 60 characters.
pub fn title_from(answer: &str) -> Option<String> {
    let title = answer
        .lines()
        .next()
        .unwrap_or("")
        .trim_matches(|c: char| matches!(c, '"' | '\'' | '*' | '#') || c.is_whitespace());
    (!title.is_empty()).then(|| title.chars().take(60).collect())
}

/// About how many tokens `bytes` of text are, for a provider that does not say (four bytes a
/// token, as tokenizers of English average): quotas count it rather than nothing.
pub fn tokens_in(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// About how many tokens an image is for a provider that does not say: OpenAI's count for
/// one of 1024×1024 pixels in high detail.
pub const TOKENS_PER_IMAGE: u64 = 765;

/// About how many tokens a conversation is (see [`tokens_in`]).
pub fn estimate_tokens(history: &[Message]) -> u64 {
    history.iter().map(|m| tokens_in(m.content.len())).sum()
}

/// About how many tokens a reply of `pieces` streamed pieces and `bytes` of text used, for a
/// provider that does not say: a piece is a token at least, and a provider that sends whole
/// sentences a piece is counted by its text.
pub fn estimate_output(pieces: u32, bytes: usize) -> u64 {
    u64::from(pieces).max(tokens_in(bytes))
}

/// The first words of a question, as a title when the model gives none.
pub fn first_words(question: &str) -> String {
    let words: String = question
        .split_whitespace()
        .take(8)
        .collect::<Vec<_>>()
        .join(" ");
    words.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider that sends whole sentences a piece is counted by its text, not its pieces.
    #[test]
    fn an_unreported_reply_is_counted_by_its_pieces_or_its_text() {
        assert_eq!(estimate_output(3, 4000), 1000);
        assert_eq!(estimate_output(50, 40), 50);
        assert_eq!(estimate_output(0, 0), 0);
        assert_eq!(tokens_in(5), 2);
    }

    #[test]
    fn titles_are_one_short_line() {
        assert_eq!(
            title_from("\"Kopi pagi\"\nmore").as_deref(),
            Some("Kopi pagi")
        );
        assert_eq!(title_from("## **Resep**").as_deref(), Some("Resep"));
        assert_eq!(title_from("  \n"), None);
        assert_eq!(title_from(&"x".repeat(100)).unwrap().chars().count(), 60);
        assert_eq!(
            first_words("Halo,   siapa kamu? Aku ingin bertanya tentang kopi pagi ini"),
            "Halo, siapa kamu? Aku ingin bertanya tentang kopi"
        );
    }
}
