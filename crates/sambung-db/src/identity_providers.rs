//! Identity providers an admin set up in the UI (SPEC section 13): each one's settings as
//! JSON (what `sambung-sso` reads, without the client secret) and its client secret sealed by
//! the caller. Those of `OIDC_PROVIDERS` live in the environment, never here.

use sqlx::PgPool;

use crate::error::{DomainError, Result};

/// A stored provider: its settings, and its sealed client secret.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProvider {
    pub id: String,
    pub config: serde_json::Value,
    pub sealed_secret: Vec<u8>,
}

/// Every stored provider, by id.
pub async fn list(pool: &PgPool) -> Result<Vec<StoredProvider>> {
    let rows = sqlx::query!("SELECT id, config, client_secret FROM identity_providers ORDER BY id")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| StoredProvider {
            id: r.id,
            config: r.config,
            sealed_secret: r.client_secret,
        })
        .collect())
}

/// The sealed secret of provider `id`, if it is stored.
pub async fn sealed_secret(pool: &PgPool, id: &str) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar!(
        "SELECT client_secret FROM identity_providers WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?)
}

/// Store provider `id` (new, or in place of the one stored).
pub async fn put(
    pool: &PgPool,
    id: &str,
    config: &serde_json::Value,
    sealed_secret: &[u8],
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO identity_providers (id, config, client_secret) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET config = EXCLUDED.config, client_secret = EXCLUDED.client_secret",
        id,
        config,
        sealed_secret,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Remove provider `id` (its accounts stay: set up again, its people sign in again).
pub async fn delete(pool: &PgPool, id: &str) -> Result<()> {
    let removed = sqlx::query!("DELETE FROM identity_providers WHERE id = $1", id)
        .execute(pool)
        .await?;
    match removed.rows_affected() {
        0 => Err(DomainError::not_found("identity provider")),
        _ => Ok(()),
    }
}
