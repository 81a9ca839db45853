//! Better Auth's tables: users, credential accounts (Argon2id passwords), sessions (tokens
//! stored only as hashes) and verification records.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::{conflict_on, expect_row, required_text, DomainError, Result};
use crate::ids::{AccountId, SessionId, UserId, VerificationId};
use crate::secret::{
    hash_password, random_token, token_hash, verify_nothing, verify_password, PasswordMatch,
};

/// Passwords shorter than this are refused (in characters).
pub const MIN_PASSWORD_LEN: usize = 8;
/// Passwords longer than this are refused (in characters), as Better Auth does.
pub const MAX_PASSWORD_LEN: usize = 128;

/// A new password of an acceptable length.
pub fn validate_password(password: &str) -> Result<()> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("too short: at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if length > MAX_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("too long: at most {MAX_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

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
    validate_password(new.password)?;
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

/// The user with this email and password, if they match. An unknown email costs the time of
/// a wrong password. A hash imported from Better Auth (scrypt) is replaced by Argon2id once it
/// has matched.
pub async fn check_password(pool: &PgPool, email: &str, password: &str) -> Result<Option<User>> {
    let Ok(email) = normalize_email(email) else {
        verify_nothing(password);
        return Ok(None);
    };
    let found = sqlx::query!(
        r#"SELECT a.id AS "account: AccountId", a.password FROM accounts a JOIN users u ON u.id = a.user_id
          WHERE u.email = $1 AND a.provider_id = 'credential'"#,
        email,
    )
    .fetch_optional(pool)
    .await?;
    let Some((account, Some(hash))) = found.map(|row| (row.account, row.password)) else {
        verify_nothing(password);
        return Ok(None);
    };
    match verify_password(password, &hash) {
        PasswordMatch::No => Ok(None),
        PasswordMatch::Yes => get_user_by_email(pool, &email).await,
        PasswordMatch::YesRehash => {
            set_account_password(pool, account, password).await?;
            get_user_by_email(pool, &email).await
        }
    }
}

async fn set_account_password(pool: &PgPool, account: AccountId, password: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE accounts SET password = $2 WHERE id = $1",
        account as AccountId,
        hash_password(password)?,
    )
    .execute(pool)
    .await?;
    Ok(())
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

/// Change a user's password (credential account), checking the current one first: a wrong
/// current password is `Forbidden`.
pub async fn change_password(pool: &PgPool, user: UserId, current: &str, new: &str) -> Result<()> {
    validate_password(new)?;
    let found = sqlx::query!(
        r#"SELECT id AS "id: AccountId", password FROM accounts
            WHERE user_id = $1 AND provider_id = 'credential'"#,
        user as UserId,
    )
    .fetch_optional(pool)
    .await?;
    let Some(found) = found else {
        return Err(DomainError::not_found("credential account"));
    };
    let matched = found
        .password
        .is_some_and(|hash| verify_password(current, &hash) != PasswordMatch::No);
    if !matched {
        return Err(DomainError::forbidden(
            "change the password without the current one",
        ));
    }
    set_account_password(pool, found.id, new).await
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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
                     ip_address, user_agent, created_at, updated_at"#,
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

/// The session and user a token belongs to, while the session has not expired (one query).
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<(Session, User)>> {
    let row = sqlx::query!(
        r#"SELECT s.id AS "id: SessionId", s.expires_at, s.ip_address, s.user_agent,
                  s.created_at, s.updated_at, u.id AS "user_id: UserId", u.name, u.email,
                  u.email_verified, u.image, u.created_at AS user_created_at,
                  u.updated_at AS user_updated_at
             FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.token_hash = $1 AND s.expires_at > now()"#,
        token_hash(token),
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        let session = Session {
            id: r.id,
            user_id: r.user_id,
            expires_at: r.expires_at,
            ip_address: r.ip_address,
            user_agent: r.user_agent,
            created_at: r.created_at,
            updated_at: r.updated_at,
        };
        let user = User {
            id: r.user_id,
            name: r.name,
            email: r.email,
            email_verified: r.email_verified,
            image: r.image,
            created_at: r.user_created_at,
            updated_at: r.user_updated_at,
        };
        (session, user)
    }))
}

/// Give a session a new expiry, `lifetime` from now (a session in use is kept alive).
pub async fn extend_session(
    pool: &PgPool,
    session: SessionId,
    lifetime: Duration,
) -> Result<Session> {
    sqlx::query_as!(
        Session,
        r#"UPDATE sessions SET expires_at = now() + $2 WHERE id = $1 AND expires_at > now()
           RETURNING id AS "id: SessionId", user_id AS "user_id: UserId", expires_at, ip_address,
                     user_agent, created_at, updated_at"#,
        session as SessionId,
        lifetime as _,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("session"))
}

/// A user's sessions that have not expired, newest first.
pub async fn list_sessions(pool: &PgPool, user: UserId) -> Result<Vec<Session>> {
    Ok(sqlx::query_as!(
        Session,
        r#"SELECT id AS "id: SessionId", user_id AS "user_id: UserId", expires_at, ip_address,
                  user_agent, created_at, updated_at
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

/// End the user's session that `token` opened (sign-out, or revoking by a real token).
pub async fn revoke_session_token(pool: &PgPool, user: UserId, token: &str) -> Result<()> {
    let done = sqlx::query!(
        "DELETE FROM sessions WHERE token_hash = $1 AND user_id = $2",
        token_hash(token),
        user as UserId,
    )
    .execute(pool)
    .await?;
    expect_row(done, "session")
}

/// End every session of the user but `keep` (all of them when `keep` is `None`); returns how
/// many ended.
pub async fn revoke_other_sessions(
    pool: &PgPool,
    user: UserId,
    keep: Option<SessionId>,
) -> Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2",
        user as UserId,
        keep as Option<SessionId>,
    )
    .execute(pool)
    .await?
    .rows_affected())
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
