//! Personal access tokens (SPEC section 16): made by their owner, shown once as
//! `sk-sambung-…`, kept as a SHA-256, listed with their last use, revoked by their owner or an
//! admin. A token stops at once when it is revoked or expires, when its owner is banned, or
//! when the instance's admins turn tokens off (the setting `accessTokens`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::auth::User;
use crate::error::{DomainError, Result};
use crate::ids::{AccessTokenId, UserId};
use crate::secret::{random_token, token_hash};

/// What every token begins with: a scanner for leaked secrets, or a person, can tell it.
pub const TOKEN_PREFIX: &str = "sk-sambung-";
/// Tokens a person may hold at once.
pub const MAX_TOKENS_PER_USER: i64 = 50;
/// The longest name of a token.
pub const MAX_NAME_CHARS: usize = 100;

/// What a token lets a program do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Call the instance's models (`/v1/*`).
    Chat,
    /// The JSON API's reads (`GET /api/v1/…`).
    Read,
    /// The JSON API's writes.
    Write,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Chat => "chat",
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "chat" => Some(Scope::Chat),
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            _ => None,
        }
    }
}

/// A token as its owner (or an admin) sees it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessToken {
    pub id: AccessTokenId,
    pub user_id: UserId,
    pub name: String,
    /// The secret's last four characters.
    pub last_four: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl AccessToken {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: AccessTokenId,
    user_id: UserId,
    name: String,
    last_four: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    last_used_ip: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<Row> for AccessToken {
    fn from(r: Row) -> AccessToken {
        AccessToken {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            last_four: r.last_four,
            scopes: r.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            last_used_ip: r.last_used_ip,
            created_at: r.created_at,
        }
    }
}

const COLUMNS: &str =
    "t.id, t.user_id, t.name, t.last_four, t.scopes, t.expires_at, t.last_used_at, t.last_used_ip, t.created_at";

/// A new token of `owner`: the token, and its secret (shown this once, kept only hashed).
pub async fn create(
    pool: &PgPool,
    owner: UserId,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
) -> Result<(AccessToken, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.contains('\0') {
        return Err(DomainError::invalid(
            "name",
            format!("a name of 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(DomainError::invalid(
            "scopes",
            "at least one of chat, read, write",
        ));
    }
    if expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(DomainError::invalid("expiresAt", "a time in the future"));
    }
    let secret = format!("{TOKEN_PREFIX}{}", random_token());
    let last_four: String = secret[secret.len() - 4..].to_owned();
    let scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    // The owner's row is locked first, in a statement of its own, so the count below (a
    // statement with a newer snapshot) sees every token made by whoever held the lock before:
    // two requests at once cannot both pass the cap.
    let mut tx = pool.begin().await?;
    crate::auth::lock_user(&mut tx, owner).await?;
    let row: Option<Row> = sqlx::query_as(&format!(
        "INSERT INTO access_tokens AS t (user_id, name, token_hash, last_four, scopes, expires_at)
         SELECT $1, $2, $3, $4, $5, $6
          WHERE (SELECT count(*) FROM access_tokens WHERE user_id = $1) < $7
         RETURNING {COLUMNS}"
    ))
    .bind(owner)
    .bind(name)
    .bind(token_hash(&secret))
    .bind(&last_four)
    .bind(&scope_names)
    .bind(expires_at)
    .bind(MAX_TOKENS_PER_USER)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    match row {
        Some(row) => Ok((row.into(), secret)),
        None => Err(DomainError::Conflict(format!(
            "you hold {MAX_TOKENS_PER_USER} tokens already: revoke one first"
        ))),
    }
}

/// `owner`'s tokens, newest first.
pub async fn list(pool: &PgPool, owner: UserId) -> Result<Vec<AccessToken>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM access_tokens t WHERE t.user_id = $1 ORDER BY t.created_at DESC, t.id DESC"
    ))
    .bind(owner)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(AccessToken::from).collect())
}

/// Every token of the instance with its owner's email, newest first (its admins' view).
pub async fn list_all(pool: &PgPool) -> Result<Vec<(AccessToken, String)>> {
    #[derive(sqlx::FromRow)]
    struct Owned {
        #[sqlx(flatten)]
        token: Row,
        email: String,
    }
    let rows: Vec<Owned> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, u.email FROM access_tokens t JOIN users u ON u.id = t.user_id
          ORDER BY t.created_at DESC, t.id DESC LIMIT 1000"
    ))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|o| (o.token.into(), o.email))
        .collect())
}

/// Revoke token `id`: `owner`'s own (`Some`), or anyone's (`None`, an admin). The token as it
/// was; not found when there is none (or it is another's).
pub async fn revoke(
    pool: &PgPool,
    owner: Option<UserId>,
    id: AccessTokenId,
) -> Result<AccessToken> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "DELETE FROM access_tokens t WHERE t.id = $1 AND ($2::uuid IS NULL OR t.user_id = $2)
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(pool)
    .await?;
    row.map(AccessToken::from)
        .ok_or(DomainError::not_found("token"))
}

/// Revoke every token of `owner`, in the transaction that locks them out (a password reset,
/// an account taken over, an admin ending their sessions): what was made with a lost password
/// or a squatted account must not outlive it. How many.
pub(crate) async fn revoke_all_of(conn: &mut sqlx::PgConnection, owner: UserId) -> Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM access_tokens WHERE user_id = $1",
        owner as UserId
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// The token `secret` is and its owner, when it may be used now (not expired, the owner not
/// banned, tokens not turned off); its last use is noted (at most once a minute per address,
/// so a busy program does not write a row per request).
pub async fn authenticate(
    pool: &PgPool,
    secret: &str,
    address: Option<&str>,
) -> Result<Option<(AccessToken, User)>> {
    if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    #[derive(sqlx::FromRow)]
    struct Found {
        #[sqlx(flatten)]
        user: User,
        token_id: AccessTokenId,
        token_name: String,
        last_four: String,
        scopes: Vec<String>,
        expires_at: Option<DateTime<Utc>>,
        last_used_at: Option<DateTime<Utc>>,
        last_used_ip: Option<String>,
        token_created_at: DateTime<Utc>,
    }
    let found: Option<Found> = sqlx::query_as(
        "WITH found AS (
           SELECT t.id AS token_id, t.name AS token_name, t.last_four, t.scopes, t.expires_at,
                  t.last_used_at, t.last_used_ip, t.created_at AS token_created_at,
                  u.id, u.name, u.email, u.email_verified, u.image, u.created_at, u.updated_at,
                  u.role, u.banned, u.ban_reason, u.ban_expires, u.approved, u.locale,
                  u.two_factor_enabled
             FROM access_tokens t JOIN users u ON u.id = t.user_id
            WHERE t.token_hash = $1
              AND (t.expires_at IS NULL OR t.expires_at > now())
              AND NOT (u.banned AND (u.ban_expires IS NULL OR u.ban_expires > now()))
              AND coalesce((SELECT value = 'true'::jsonb FROM instance_settings WHERE key = 'accessTokens'), true)),
         noted AS (
           UPDATE access_tokens t SET last_used_at = now(), last_used_ip = $2
             FROM found
            WHERE t.id = found.token_id
              AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'
                   OR t.last_used_ip IS DISTINCT FROM $2))
         SELECT * FROM found",
    )
    .bind(token_hash(secret))
    .bind(address)
    .fetch_optional(pool)
    .await?;
    Ok(found.map(|f| {
        let token = AccessToken {
            id: f.token_id,
            user_id: f.user.id,
            name: f.token_name,
            last_four: f.last_four,
            scopes: f.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            expires_at: f.expires_at,
            last_used_at: f.last_used_at,
            last_used_ip: f.last_used_ip,
            created_at: f.token_created_at,
        };
        (token, f.user)
    }))
}
