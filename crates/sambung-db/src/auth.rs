//! Better Auth's tables: users, credential accounts (Argon2id passwords), sessions (tokens
//! stored only as hashes) and verification records.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::{conflict_on, expect_row, required_text, DomainError, Result};
use crate::ids::{AccountId, SessionId, UserId, VerificationId};
use crate::secret::{hash_password, random_token, token_hash, verify_password};

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_LEN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub image: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What sign-up needs.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
}

/// An email trimmed and lower-cased, with the shape of an address.
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.contains(char::is_whitespace)
        });
    if !valid {
        return Err(DomainError::invalid("email", "not an email address"));
    }
    Ok(email)
}

/// Create a user and their credential account (provider `credential`) in one transaction.
pub async fn sign_up(pool: &PgPool, new: NewUser<'_>) -> Result<User> {
    let name = required_text("name", new.name, 200)?;
    let email = normalize_email(new.email)?;
    if new.password.chars().count() < MIN_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    let hash = hash_password(new.password)?;
    let mut tx = pool.begin().await?;
    let user = sqlx::query_as!(
        User,
        r#"INSERT INTO users (id, name, email) VALUES ($1, $2, $3)
           RETURNING id AS "id: UserId", name, email, email_verified, image, created_at, updated_at"#,
        UserId::new() as UserId,
        name,
        email,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        conflict_on(
            e,
            "users_email_key",
            format!("an account with {email} exists already"),
        )
    })?;
    sqlx::query!(
        "INSERT INTO accounts (user_id, account_id, provider_id, password)
         VALUES ($1, $2, 'credential', $3)",
        user.id as UserId,
        user.id.to_string(),
        hash,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// The user with this email and password, if they match.
pub async fn check_password(pool: &PgPool, email: &str, password: &str) -> Result<Option<User>> {
    let Ok(email) = normalize_email(email) else {
        return Ok(None);
    };
    let hash = sqlx::query_scalar!(
        "SELECT a.password FROM accounts a JOIN users u ON u.id = a.user_id
          WHERE u.email = $1 AND a.provider_id = 'credential'",
        email,
    )
    .fetch_optional(pool)
    .await?
    .flatten();
    match hash {
        Some(hash) if verify_password(password, &hash) => get_user_by_email(pool, &email).await,
        _ => Ok(None),
    }
}

pub async fn get_user(pool: &PgPool, id: UserId) -> Result<User> {
    sqlx::query_as!(
        User,
        r#"SELECT id AS "id: UserId", name, email, email_verified, image, created_at, updated_at
             FROM users WHERE id = $1"#,
        id as UserId,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("user"))
}

pub async fn get_user_by_email(pool: &PgPool, email: &str) -> Result<Option<User>> {
    let email = normalize_email(email)?;
    Ok(sqlx::query_as!(
        User,
        r#"SELECT id AS "id: UserId", name, email, email_verified, image, created_at, updated_at
             FROM users WHERE email = $1"#,
        email,
    )
    .fetch_optional(pool)
    .await?)
}

/// Change a user's name and image.
pub async fn update_user(
    pool: &PgPool,
    id: UserId,
    name: &str,
    image: Option<&str>,
) -> Result<User> {
    let name = required_text("name", name, 200)?;
    sqlx::query_as!(
        User,
        r#"UPDATE users SET name = $2, image = $3 WHERE id = $1
           RETURNING id AS "id: UserId", name, email, email_verified, image, created_at, updated_at"#,
        id as UserId,
        name,
        image,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("user"))
}

/// Delete a user and, by cascade, everything they own.
pub async fn delete_user(pool: &PgPool, id: UserId) -> Result<()> {
    let done = sqlx::query!("DELETE FROM users WHERE id = $1", id as UserId)
        .execute(pool)
        .await?;
    expect_row(done, "user")
}

/// A sign-in method of a user (Better Auth's account); the password hash is never read out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Account {
    pub id: AccountId,
    pub user_id: UserId,
    pub account_id: String,
    pub provider_id: String,
    pub scope: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user's accounts (`credential`, and OAuth providers later).
pub async fn list_accounts(pool: &PgPool, user: UserId) -> Result<Vec<Account>> {
    Ok(sqlx::query_as!(
        Account,
        r#"SELECT id AS "id: AccountId", user_id AS "user_id: UserId", account_id, provider_id,
                  scope, created_at, updated_at
             FROM accounts WHERE user_id = $1 ORDER BY provider_id, id"#,
        user as UserId,
    )
    .fetch_all(pool)
    .await?)
}

/// Change a user's password (credential account), checking the current one first.
pub async fn change_password(pool: &PgPool, user: UserId, current: &str, new: &str) -> Result<()> {
    if new.chars().count() < MIN_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    let hash = sqlx::query_scalar!(
        "SELECT password FROM accounts WHERE user_id = $1 AND provider_id = 'credential'",
        user as UserId,
    )
    .fetch_optional(pool)
    .await?;
    match hash {
        Some(Some(hash)) if verify_password(current, &hash) => {}
        Some(_) => {
            return Err(DomainError::forbidden(
                "change the password without the current one",
            ))
        }
        None => return Err(DomainError::not_found("credential account")),
    }
    sqlx::query!(
        "UPDATE accounts SET password = $2 WHERE user_id = $1 AND provider_id = 'credential'",
        user as UserId,
        hash_password(new)?,
    )
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A new session and its token: the token is returned this once and stored only hashed.
pub async fn create_session(
    pool: &PgPool,
    user: UserId,
    lifetime: Duration,
    ip_address: Option<&str>,
    user_agent: Option<&str>,
) -> Result<(Session, String)> {
    let token = random_token();
    let session = sqlx::query_as!(
        Session,
        r#"INSERT INTO sessions (id, user_id, token_hash, expires_at, ip_address, user_agent)
           VALUES ($1, $2, $3, now() + $4, $5, $6)
           RETURNING id AS "id: SessionId", user_id AS "user_id: UserId", expires_at,
                     ip_address, user_agent, created_at"#,
        SessionId::new() as SessionId,
        user as UserId,
        token_hash(&token),
        lifetime as _,
        ip_address,
        user_agent,
    )
    .fetch_one(pool)
    .await?;
    Ok((session, token))
}

/// The session and user a token belongs to, while the session has not expired.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<(Session, User)>> {
    let session = sqlx::query_as!(
        Session,
        r#"SELECT id AS "id: SessionId", user_id AS "user_id: UserId", expires_at, ip_address,
                  user_agent, created_at
             FROM sessions WHERE token_hash = $1 AND expires_at > now()"#,
        token_hash(token),
    )
    .fetch_optional(pool)
    .await?;
    match session {
        Some(session) => {
            let user = get_user(pool, session.user_id).await?;
            Ok(Some((session, user)))
        }
        None => Ok(None),
    }
}

/// A user's sessions that have not expired, newest first.
pub async fn list_sessions(pool: &PgPool, user: UserId) -> Result<Vec<Session>> {
    Ok(sqlx::query_as!(
        Session,
        r#"SELECT id AS "id: SessionId", user_id AS "user_id: UserId", expires_at, ip_address,
                  user_agent, created_at
             FROM sessions WHERE user_id = $1 AND expires_at > now()
            ORDER BY created_at DESC, id DESC"#,
        user as UserId,
    )
    .fetch_all(pool)
    .await?)
}

/// End one of the user's own sessions.
pub async fn revoke_session(pool: &PgPool, user: UserId, session: SessionId) -> Result<()> {
    let done = sqlx::query!(
        "DELETE FROM sessions WHERE id = $1 AND user_id = $2",
        session as SessionId,
        user as UserId,
    )
    .execute(pool)
    .await?;
    expect_row(done, "session")
}

/// Delete every expired session; returns how many.
pub async fn purge_expired_sessions(pool: &PgPool) -> Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM sessions WHERE expires_at <= now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// Store a verification value (an email code, a reset token) for `identifier`.
pub async fn create_verification(
    pool: &PgPool,
    identifier: &str,
    value: &str,
    lifetime: Duration,
) -> Result<VerificationId> {
    let identifier = required_text("identifier", identifier, 320)?;
    let id = VerificationId::new();
    sqlx::query!(
        "INSERT INTO verifications (id, identifier, value, expires_at)
         VALUES ($1, $2, $3, now() + $4)",
        id as VerificationId,
        identifier,
        token_hash(value),
        lifetime as _,
    )
    .execute(pool)
    .await?;
    Ok(id)
}

/// Use a verification value once: true when it matched and had not expired (it is deleted).
pub async fn consume_verification(pool: &PgPool, identifier: &str, value: &str) -> Result<bool> {
    let used = sqlx::query!(
        "DELETE FROM verifications WHERE identifier = $1 AND value = $2 AND expires_at > now()",
        identifier.trim(),
        token_hash(value),
    )
    .execute(pool)
    .await?;
    Ok(used.rows_affected() > 0)
}
