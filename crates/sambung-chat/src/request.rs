//! What a turn sends: where (the model's endpoint, its key decrypted for the call only) and
//! what (the conversation so far, with the chat's and the model's settings), and the short request that
//! names a new chat.

use sambung_ai::{ApiKey, Endpoint, Provider, Request, Role, Turn};
use sambung_db::chats::{Message, MessageRole};
use sambung_db::models::{self, Model};
use sambung_db::{ApiKeyId, UserId};

use crate::{TurnError, Turns};

impl Turns {
    /// Where a model's requests go, with its key decrypted (in memory for this call only): a
    /// user's or team's model, its own base URL and key; an instance model, its connection's.
    pub async fn endpoint_for(&self, model: &Model) -> Result<Endpoint, TurnError> {
        let found = models::model_endpoint(&self.pool, self.cipher.as_ref(), model).await;
        self.endpoint(&model.provider, found)
    }

    /// Where requests would go for a model not made yet (listing what `provider` offers):
    /// `base_url` (else the provider's own), with `owner`'s stored key `key` decrypted.
    pub async fn personal_endpoint(
        &self,
        owner: UserId,
        provider: &str,
        base_url: Option<&str>,
        key: Option<ApiKeyId>,
    ) -> Result<Endpoint, TurnError> {
        let key = match (key, self.cipher.as_ref()) {
            (None, _) => Ok(None),
            (Some(_), None) => Err(sambung_db::DomainError::Decrypt),
            (Some(key), Some(cipher)) => {
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

    fn endpoint(
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

/// The provider request for a turn: the chat's own settings over its model's (the chat's
/// `systemPrompt` in place of the model's `system`), and the conversation so far (system
/// messages join the system prompt; empty replies are left out), asking for at most
/// `max_output` tokens when the instance caps replies.
pub fn for_turn(
    model: &Model,
    chat_settings: &serde_json::Value,
    history: &[Message],
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
    for message in history {
        match message.role {
            MessageRole::System => system.push(message.content.clone()),
            MessageRole::User => turns.push(Turn {
                role: Role::User,
                content: message.content.clone(),
            }),
            MessageRole::Assistant if !message.content.is_empty() => turns.push(Turn {
                role: Role::Assistant,
                content: message.content.clone(),
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
    }
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
        }],
        temperature: Some(0.2),
        max_tokens: Some(24),
        top_p: None,
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

/// About how many tokens a conversation is, for a provider that does not say (four bytes a
/// token, as tokenizers of English average): quotas count it rather than nothing.
pub fn estimate_tokens(history: &[Message]) -> u64 {
    history
        .iter()
        .map(|m| (m.content.len() as u64).div_ceil(4))
        .sum()
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
