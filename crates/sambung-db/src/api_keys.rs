//! AI-provider API keys, sealed with AES-256-GCM under the master key; only `key_last4` is
//! ever shown, and the plaintext only comes out for internal use (calling the provider).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::{expect_row, required_text, DomainError, Result};
use crate::ids::{ApiKeyId, UserId};
use crate::secret::Cipher;

/// The providers a key (and a model) may be for: `sambung-providers`' list, which the schema's
/// CHECK constraints repeat (a schema test holds them to it).
pub use sambung_providers::Provider;

/// A provider by name, or an error naming the field.
pub fn provider(text: &str) -> Result<Provider> {
    Provider::parse(text).ok_or_else(|| {
        DomainError::invalid(
            "provider",
            "one of openai, anthropic, google, groq, ollama, openrouter, custom",
        )
    })
}

/// A provider key as given: trimmed, 8 to 1024 characters.
pub(crate) fn validate_key(plaintext: &str) -> Result<&str> {
    let plaintext = plaintext.trim();
    if plaintext.len() < 8 || plaintext.len() > 1024 || plaintext.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "key",
            "8 to 1024 characters, no control characters",
        ));
    }
    Ok(plaintext)
}

/// What is shown of a key: its last four characters.
pub(crate) fn key_last4(plaintext: &str) -> String {
    let chars: Vec<char> = plaintext.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// What may be shown of a stored key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub provider: String,
    pub name: String,
    pub key_last4: String,
    pub key_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Store a provider key for the actor, sealed under `cipher`.
pub async fn add_api_key(
    pool: &PgPool,
    cipher: &Cipher,
    actor: UserId,
    provider: Provider,
    name: &str,
    plaintext: &str,
) -> Result<ApiKey> {
    let name = required_text("name", name, 100)?;
    let plaintext = validate_key(plaintext)?;
    let id = ApiKeyId::new();
    let last4 = key_last4(plaintext);
    Ok(sqlx::query_as!(
        ApiKey,
        r#"INSERT INTO api_keys (id, user_id, provider, encrypted_key, key_last4, name)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id AS "id: ApiKeyId", user_id AS "user_id: UserId", provider, name, key_last4,
                     key_version, created_at, updated_at"#,
        id as ApiKeyId,
        actor as UserId,
        provider.as_str(),
        cipher.encrypt(plaintext.as_bytes(), id.0.as_bytes()),
        last4,
        name,
    )
    .fetch_one(pool)
    .await?)
}

pub async fn list_api_keys(pool: &PgPool, actor: UserId) -> Result<Vec<ApiKey>> {
    Ok(sqlx::query_as!(
        ApiKey,
        r#"SELECT id AS "id: ApiKeyId", user_id AS "user_id: UserId", provider, name, key_last4,
                  key_version, created_at, updated_at
             FROM api_keys WHERE user_id = $1 ORDER BY provider, created_at, id"#,
        actor as UserId,
    )
    .fetch_all(pool)
    .await?)
}

/// Rename one of the actor's keys (the key itself never changes: add a new one).
pub async fn rename_api_key(
    pool: &PgPool,
    actor: UserId,
    key: ApiKeyId,
    name: &str,
) -> Result<ApiKey> {
    let name = required_text("name", name, 100)?;
    sqlx::query_as!(
        ApiKey,
        r#"UPDATE api_keys SET name = $3 WHERE id = $1 AND user_id = $2
           RETURNING id AS "id: ApiKeyId", user_id AS "user_id: UserId", provider, name, key_last4,
                     key_version, created_at, updated_at"#,
        key as ApiKeyId,
        actor as UserId,
        name,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("API key"))
}

/// Delete one of the actor's keys; models that used it stay, without a key.
pub async fn delete_api_key(pool: &PgPool, actor: UserId, key: ApiKeyId) -> Result<()> {
    let mut tx = pool.begin().await?;
    // The models' foreign key would delete them with the key: detach them first.
    sqlx::query("UPDATE models SET api_key_id = NULL WHERE api_key_id = $1 AND user_id = $2")
        .bind(key)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query!(
        "DELETE FROM api_keys WHERE id = $1 AND user_id = $2",
        key as ApiKeyId,
        actor as UserId,
    )
    .execute(&mut *tx)
    .await?;
    expect_row(done, "API key")?;
    tx.commit().await?;
    Ok(())
}

/// The plaintext of one of the actor's keys, for calling the provider. Never show it.
pub async fn reveal_api_key(
    pool: &PgPool,
    cipher: &Cipher,
    actor: UserId,
    key: ApiKeyId,
) -> Result<String> {
    let sealed = sqlx::query_scalar!(
        "SELECT encrypted_key FROM api_keys WHERE id = $1 AND user_id = $2",
        key as ApiKeyId,
        actor as UserId,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("API key"))?;
    cipher.decrypt_text(&sealed, key.0.as_bytes())
}

/// Re-encrypt every stored key (users' keys and the instance's connections) from `old` to
/// `new` in one transaction, bumping each `key_version`. Any key that `old` cannot open stops
/// it all, and nothing is written. Returns how many keys were sealed again.
pub async fn rotate_master_key(pool: &PgPool, old: &Cipher, new: &Cipher) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query!(
        r#"SELECT id AS "id: ApiKeyId", encrypted_key FROM api_keys ORDER BY id FOR UPDATE"#
    )
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let plaintext = old.decrypt(&row.encrypted_key, row.id.0.as_bytes())?;
        sqlx::query!(
            "UPDATE api_keys SET encrypted_key = $2, key_version = key_version + 1 WHERE id = $1",
            row.id as ApiKeyId,
            new.encrypt(&plaintext, row.id.0.as_bytes()),
        )
        .execute(&mut *tx)
        .await?;
    }
    let connections = crate::connections::rotate_connection_keys(&mut tx, old, new).await?;
    tx.commit().await?;
    Ok(rows.len() as u64 + connections)
}
