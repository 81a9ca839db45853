//! The instance's connections (SPEC section 12): a provider its admins set up once, where it
//! is and the key to call it with, sealed as users' keys are. Users use the models on it
//! (`models`, instance scope) without ever seeing the key; only `key_last4` is shown. Who may
//! manage them (the instance's admins) is the caller's check.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::api_keys::{key_last4, provider, validate_key, Provider};
use crate::error::{required_text, DomainError, Result};
use crate::ids::{ConnectionId, UserId};
use crate::models::validate_base_url;
use crate::secret::Cipher;

/// What may be shown of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Connection {
    pub id: ConnectionId,
    pub name: String,
    pub provider: String,
    pub base_url: Option<String>,
    pub key_last4: Option<String>,
    pub key_version: i32,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A connection's fields as an admin gives them.
#[derive(Debug, Clone)]
pub struct ConnectionFields<'a> {
    pub name: &'a str,
    pub provider: &'a str,
    pub base_url: Option<&'a str>,
}

/// Providers that need no key to be called (a local Ollama, an OpenAI-compatible server of
/// one's own).
fn keyless(provider: Provider) -> bool {
    matches!(provider, Provider::Ollama | Provider::Custom)
}

/// A new key sealed for connection `id`, or none.
fn seal(
    id: ConnectionId,
    key: Option<(&Cipher, &str)>,
) -> Result<(Option<Vec<u8>>, Option<String>)> {
    match key {
        Some((cipher, plaintext)) => {
            let plaintext = validate_key(plaintext)?;
            Ok((
                Some(cipher.encrypt(plaintext.as_bytes(), id.0.as_bytes())),
                Some(key_last4(plaintext)),
            ))
        }
        None => Ok((None, None)),
    }
}

/// Set up a connection; `key` is its provider key and the cipher to seal it with (a hosted
/// provider needs one).
pub async fn add_connection(
    pool: &PgPool,
    actor: UserId,
    fields: ConnectionFields<'_>,
    key: Option<(&Cipher, &str)>,
) -> Result<Connection> {
    let name = required_text("name", fields.name, 100)?;
    let provider = provider(fields.provider)?;
    let base_url = validate_base_url(provider, fields.base_url)?;
    if key.is_none() && !keyless(provider) {
        return Err(DomainError::invalid(
            "key",
            format!("a {} connection needs its API key", provider.as_str()),
        ));
    }
    let id = ConnectionId::new();
    let (sealed, last4) = seal(id, key)?;
    Ok(sqlx::query_as!(
        Connection,
        r#"INSERT INTO connections (id, name, provider, base_url, encrypted_key, key_last4, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           RETURNING id AS "id: ConnectionId", name, provider, base_url, key_last4, key_version,
                     created_by AS "created_by: UserId", created_at, updated_at"#,
        id as ConnectionId,
        name,
        provider.as_str(),
        base_url,
        sealed,
        last4,
        actor as UserId,
    )
    .fetch_one(pool)
    .await?)
}

/// Every connection, by name.
pub async fn list_connections(pool: &PgPool) -> Result<Vec<Connection>> {
    Ok(sqlx::query_as!(
        Connection,
        r#"SELECT id AS "id: ConnectionId", name, provider, base_url, key_last4, key_version,
                  created_by AS "created_by: UserId", created_at, updated_at
             FROM connections ORDER BY name, id"#
    )
    .fetch_all(pool)
    .await?)
}

/// Change a connection's name and base URL, and its key when `key` is given (the provider
/// stays: its models are that provider's).
pub async fn update_connection(
    pool: &PgPool,
    connection: ConnectionId,
    name: &str,
    base_url: Option<&str>,
    key: Option<(&Cipher, &str)>,
) -> Result<Connection> {
    let name = required_text("name", name, 100)?;
    let current = sqlx::query_scalar!(
        "SELECT provider FROM connections WHERE id = $1",
        connection as ConnectionId
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("connection"))?;
    let base_url = validate_base_url(provider(&current)?, base_url)?;
    let (sealed, last4) = seal(connection, key)?;
    sqlx::query_as!(
        Connection,
        r#"UPDATE connections SET name = $2, base_url = $3,
                  encrypted_key = CASE WHEN $4::bytea IS NULL THEN encrypted_key ELSE $4 END,
                  key_last4 = CASE WHEN $4::bytea IS NULL THEN key_last4 ELSE $5 END
            WHERE id = $1
           RETURNING id AS "id: ConnectionId", name, provider, base_url, key_last4, key_version,
                     created_by AS "created_by: UserId", created_at, updated_at"#,
        connection as ConnectionId,
        name,
        base_url,
        sealed,
        last4,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("connection"))
}

/// Remove a connection and the models on it.
pub async fn delete_connection(pool: &PgPool, connection: ConnectionId) -> Result<Connection> {
    sqlx::query_as!(
        Connection,
        r#"DELETE FROM connections WHERE id = $1
           RETURNING id AS "id: ConnectionId", name, provider, base_url, key_last4, key_version,
                     created_by AS "created_by: UserId", created_at, updated_at"#,
        connection as ConnectionId,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("connection"))
}

/// Where to call a connection and with which key (plaintext, for the provider request only;
/// never show or log it).
pub async fn reveal_connection(
    pool: &PgPool,
    cipher: Option<&Cipher>,
    connection: ConnectionId,
) -> Result<(Option<String>, Option<String>)> {
    let row = sqlx::query!(
        "SELECT base_url, encrypted_key FROM connections WHERE id = $1",
        connection as ConnectionId
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("connection"))?;
    let key = match (row.encrypted_key, cipher) {
        (Some(sealed), Some(cipher)) => {
            Some(cipher.decrypt_text(&sealed, connection.0.as_bytes())?)
        }
        (Some(_), None) => return Err(DomainError::Decrypt),
        (None, _) => None,
    };
    Ok((row.base_url, key))
}

/// The provider of `connection` (a model is made on it); an unknown one is bad input.
pub(crate) async fn connection_provider(
    conn: &mut sqlx::PgConnection,
    connection: ConnectionId,
) -> Result<Provider> {
    let name = sqlx::query_scalar!(
        "SELECT provider FROM connections WHERE id = $1",
        connection as ConnectionId
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| DomainError::invalid("connectionId", "no such connection"))?;
    provider(&name)
}

/// Re-encrypt every connection's key from `old` to `new` in `tx`, bumping `key_version`
/// (part of [`crate::api_keys::rotate_master_key`]).
pub(crate) async fn rotate_connection_keys(
    tx: &mut sqlx::PgConnection,
    old: &Cipher,
    new: &Cipher,
) -> Result<u64> {
    let rows = sqlx::query!(
        r#"SELECT id AS "id: ConnectionId", encrypted_key AS "encrypted_key!"
             FROM connections WHERE encrypted_key IS NOT NULL ORDER BY id FOR UPDATE"#
    )
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let plaintext = old.decrypt(&row.encrypted_key, row.id.0.as_bytes())?;
        sqlx::query!(
            "UPDATE connections SET encrypted_key = $2, key_version = key_version + 1 WHERE id = $1",
            row.id as ConnectionId,
            new.encrypt(&plaintext, row.id.0.as_bytes()),
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(rows.len() as u64)
}
