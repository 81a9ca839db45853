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

/// Provider `id`, if it is stored.
pub async fn get(pool: &PgPool, id: &str) -> Result<Option<StoredProvider>> {
    let row = sqlx::query!(
        "SELECT id, config, client_secret FROM identity_providers WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| StoredProvider {
        id: r.id,
        config: r.config,
        sealed_secret: r.client_secret,
    }))
}

/// Store provider `id` (new, or in place of the one stored). `moved`: it now points at
/// another provider (issuer or endpoints), whose subjects are not the old one's: the accounts
/// linked through it go (their people link again, or are found by their verified email).
pub async fn put(
    pool: &PgPool,
    id: &str,
    config: &serde_json::Value,
    sealed_secret: &[u8],
    moved: bool,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    if moved {
        forget_accounts(&mut tx, id).await?;
    }
    sqlx::query!(
        "INSERT INTO identity_providers (id, config, client_secret) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET config = EXCLUDED.config, client_secret = EXCLUDED.client_secret",
        id,
        config,
        sealed_secret,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn forget_accounts(tx: &mut sqlx::PgConnection, id: &str) -> Result<()> {
    sqlx::query!("DELETE FROM accounts WHERE provider_id = $1", id)
        .execute(tx)
        .await?;
    Ok(())
}

/// Remove provider `id`, and the accounts linked through it (a provider set up again under
/// the id may be another one, whose subjects are not these).
pub async fn delete(pool: &PgPool, id: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    let removed = sqlx::query!("DELETE FROM identity_providers WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    if removed.rows_affected() == 0 {
        return Err(DomainError::not_found("identity provider"));
    }
    forget_accounts(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}
